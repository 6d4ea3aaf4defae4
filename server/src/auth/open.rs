//! The `none` authentication type.

use serde_json::{Map, Value};

use super::{AuthFuture, AuthOutcome, Authenticator, ConnectionData};

/// The user name of clients that log in without one.
pub const ANONYMOUS_USER: &str = "open";

/// The `none` authentication type: everyone gets in, under the name in
/// `authData.username` when it is a non-empty string, else as [`ANONYMOUS_USER`].
///
/// NOTE: deepstream turns any other truthy `username` into text (`7` becomes `"7"`); this
/// server logs such clients in as [`ANONYMOUS_USER`].
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenAuthenticator;

impl Authenticator for OpenAuthenticator {
    fn authenticate<'a>(
        &'a self,
        _connection: &'a ConnectionData,
        auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a> {
        let user = match auth_data.get("username") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => ANONYMOUS_USER.to_owned(),
        };
        Box::pin(std::future::ready(AuthOutcome::Accepted {
            user,
            client_data: None,
            server_data: None,
        }))
    }

    fn description(&self) -> String {
        "none (every login is accepted)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn user_of(auth_data: Value) -> String {
        let Value::Object(map) = auth_data else {
            panic!("test data must be an object")
        };
        match OpenAuthenticator
            .authenticate(&ConnectionData::default(), &map)
            .await
        {
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
