//! A command's failure, and the one mapping from the client's errors to the
//! driver protocol's error codes.

use deepstream_client::core::{EventError, LoginError, PresenceError, RecordError, RpcError};

/// The error actions that mean the server's permissions denied a request.
const DENIED_ACTIONS: [&str; 2] = ["MESSAGE_DENIED", "MESSAGE_PERMISSION_ERROR"];

/// A command's failure: an error code of the driver protocol and a message.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl Failure {
    pub(super) fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// Returns the failure of a command that is unknown, lacks an argument
    /// or has a mistyped one.
    pub(super) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new("INVALID_COMMAND", message)
    }

    /// Returns the failure for any other error, with the client's message.
    pub(super) fn failed(message: impl Into<String>) -> Failure {
        Failure::new("FAILED", message)
    }
}

impl From<LoginError> for Failure {
    fn from(error: LoginError) -> Failure {
        let code = match error {
            LoginError::Rejected { .. } => "LOGIN_REJECTED",
            LoginError::TooManyAttempts => "TOO_MANY_AUTH_ATTEMPTS",
            _ => "FAILED",
        };
        Failure::new(code, error.to_string())
    }
}

impl From<RpcError> for Failure {
    fn from(error: RpcError) -> Failure {
        match &error {
            RpcError::NoProvider => Failure::new("NO_RPC_PROVIDER", error.to_string()),
            RpcError::Provider { message } => Failure::new("RPC_ERROR", provider_text(message)),
            RpcError::Denied { .. } => Failure::new("MESSAGE_DENIED", error.to_string()),
            _ => Failure::failed(error.to_string()),
        }
    }
}

impl From<RecordError> for Failure {
    fn from(error: RecordError) -> Failure {
        match &error {
            RecordError::NotFound { .. } => Failure::new("RECORD_NOT_FOUND", error.to_string()),
            RecordError::Server { action } if is_denied(action) => {
                Failure::new("MESSAGE_DENIED", error.to_string())
            }
            _ => Failure::failed(error.to_string()),
        }
    }
}

impl From<PresenceError> for Failure {
    fn from(error: PresenceError) -> Failure {
        match &error {
            PresenceError::Server { action } if is_denied(action) => {
                Failure::new("MESSAGE_DENIED", error.to_string())
            }
            _ => Failure::failed(error.to_string()),
        }
    }
}

impl From<EventError> for Failure {
    fn from(error: EventError) -> Failure {
        Failure::failed(error.to_string())
    }
}

fn is_denied(action: &str) -> bool {
    DENIED_ACTIONS.contains(&action)
}

/// Returns the text of a provider's error. Providers usually send a JSON
/// string, which the README requires as plain text in the reply's `message`.
fn provider_text(message: &str) -> String {
    match serde_json::from_str(message) {
        Ok(serde_json::Value::String(text)) => text,
        _ => message.to_owned(),
    }
}
