//! Authentication services: they decide who a connecting client is.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

/// The user name of clients that log in without one.
pub const ANONYMOUS_USER: &str = "open";

/// The outcome of a login attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthOutcome {
    /// The client may use the server as `user`.
    Accepted {
        /// The user name handlers and other clients see.
        user: String,
        /// Data returned to the client in AUTH_SUCCESSFUL.
        client_data: Option<Value>,
    },
    /// The credentials were refused.
    Rejected {
        /// Data returned to the client in AUTH_UNSUCCESSFUL, such as a reason.
        client_data: Option<Value>,
    },
}

/// A boxed future returned by [`Authenticator::authenticate`].
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = AuthOutcome> + Send + 'a>>;

/// Decides whether login data is valid. Implementations must not log the
/// credentials they receive.
pub trait Authenticator: Send + Sync + 'static {
    /// Checks `auth_data`, the JSON object the client sent with its login.
    fn authenticate<'a>(&'a self, auth_data: &'a Map<String, Value>) -> AuthFuture<'a>;
}

/// The `none` authentication type: everyone gets in, under the name in
/// `authData.username` when it is a string, else as [`ANONYMOUS_USER`].
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenAuthenticator;

impl Authenticator for OpenAuthenticator {
    fn authenticate<'a>(&'a self, auth_data: &'a Map<String, Value>) -> AuthFuture<'a> {
        let user = match auth_data.get("username") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => ANONYMOUS_USER.to_owned(),
        };
        Box::pin(std::future::ready(AuthOutcome::Accepted {
            user,
            client_data: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn user_of(auth_data: Value) -> String {
        let Value::Object(map) = auth_data else {
            panic!("test data must be an object")
        };
        match OpenAuthenticator.authenticate(&map).await {
            AuthOutcome::Accepted { user, .. } => user,
            other => panic!("open authentication rejected: {other:?}"),
        }
    }

    #[tokio::test]
    async fn open_uses_username() {
        assert_eq!(user_of(serde_json::json!({"username": "ada"})).await, "ada");
    }

    #[tokio::test]
    async fn open_without_username_is_anonymous() {
        assert_eq!(user_of(serde_json::json!({})).await, "open");
        assert_eq!(user_of(serde_json::json!({"username": 7})).await, "open");
        assert_eq!(user_of(serde_json::json!({"username": ""})).await, "open");
    }
}
