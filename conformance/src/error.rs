//! Errors of the conformance runner.

use std::path::PathBuf;

/// A failure that stops the runner before or outside a scenario's checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConformanceError {
    /// A file or process operation failed.
    #[error("{action} failed")]
    Io {
        /// The operation that failed.
        action: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A scenario file does not follow the documented format.
    #[error("invalid scenario {path}: {reason}")]
    InvalidScenario {
        /// The scenario file.
        path: PathBuf,
        /// The first problem found.
        reason: String,
    },
    /// The expected-failures file does not follow the documented format.
    #[error("invalid expected-failures file {path}: {reason}")]
    InvalidExpectations {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// A server target did not start or is missing.
    #[error("server {target}: {reason}")]
    Server {
        /// The target name.
        target: String,
        /// The problem found.
        reason: String,
    },
    /// The command line selects nothing to run, or names something twice.
    #[error("{0}")]
    Usage(String),
    /// A driver process did not start or broke the driver protocol.
    #[error("driver {client}: {reason}")]
    Driver {
        /// The client name of the scenario.
        client: String,
        /// The problem found.
        reason: String,
    },
}
