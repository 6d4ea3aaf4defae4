//! Errors of the benchmark client and of the processes it starts.

use std::time::Duration;

use deepstream_protocol::DecodeError;
use tokio_tungstenite::tungstenite;

/// The failure of a workload, a connection or a server process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The WebSocket to the target could not be opened.
    #[error("failed to open a WebSocket to {url}")]
    Connect {
        /// The target URL.
        url: String,
        /// The WebSocket library's error.
        #[source]
        source: tungstenite::Error,
    },
    /// Sending or receiving on an open WebSocket failed.
    #[error("WebSocket error")]
    WebSocket(#[from] tungstenite::Error),
    /// A frame from the target is not a valid deepstream message.
    #[error("invalid frame from the server")]
    Decode(#[from] DecodeError),
    /// The target did not send what a step waits for in time.
    #[error("timed out after {timeout:?} waiting for {expected}")]
    Timeout {
        /// The message the step waited for.
        expected: &'static str,
        /// How long it waited.
        timeout: Duration,
    },
    /// The target closed the connection before a step finished.
    #[error(
        "the server closed the connection while the client waited for {expected}; check the server log \
         (a message over its maxMessageSize closes the connection)"
    )]
    Closed {
        /// The message the step waited for.
        expected: &'static str,
    },
    /// The target replied to a step with something other than the expected message.
    #[error("expected {expected}, received {received}")]
    Unexpected {
        /// The message the step waited for.
        expected: &'static str,
        /// The message that arrived instead, in debug notation.
        received: String,
    },
    /// A file or process operation failed.
    #[error("{action} failed")]
    Io {
        /// The failed action, such as "starting the Node.js server".
        action: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A server process did not become ready.
    #[error("{0}")]
    Server(String),
}

impl BenchError {
    /// Wraps an I/O error with the action that failed.
    pub fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let action = action.into();
        move |source| BenchError::Io { action, source }
    }
}

/// Formats an error with all of its sources, for logs and the results table.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
