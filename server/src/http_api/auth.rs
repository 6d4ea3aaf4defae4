//! Authentication of HTTP API requests: their credentials, checked by the same
//! authentication services as WebSocket logins.

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::HttpApi;
use super::error::ApiError;
use super::items::describe;
use super::tokens::{Identity, Lookup};
use crate::auth::{AuthOutcome, ConnectionData};
use crate::monitoring::Endpoint;
use crate::registry::lock;

/// The credentials a request carries.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Credentials {
    /// `authData`: the same object a WebSocket client sends with its login.
    AuthData(Map<String, Value>),
    /// `token`: one that `authPath` issued, or one for the authentication services.
    Token(String),
    /// Neither, which logs in with empty auth data, as deepstream does.
    Anonymous,
}

impl Credentials {
    /// Reads `authData` or `token` from a request object. `authData` wins when both are
    /// present, as in deepstream.
    pub(super) fn read(
        request: &Map<String, Value>,
        allow_auth_data: bool,
    ) -> Result<Credentials, ApiError> {
        if let Some(auth_data) = request.get("authData") {
            if !allow_auth_data {
                return Err(ApiError::AuthDataDisabled);
            }
            return match auth_data {
                Value::Object(auth_data) => Ok(Credentials::AuthData(auth_data.clone())),
                other => Err(ApiError::InvalidAuthData {
                    found: describe(other),
                }),
            };
        }
        match request.get("token") {
            None => Ok(Credentials::Anonymous),
            Some(Value::String(token)) if !token.is_empty() => {
                Ok(Credentials::Token(token.clone()))
            }
            Some(other) => Err(ApiError::InvalidToken {
                found: describe(other),
            }),
        }
    }
}

impl HttpApi {
    /// Finds who `credentials` stand for. A token issued here that is still valid stands
    /// for its login. Any other credentials go to the authentication services: a token
    /// this server did not issue as `{"token": ...}`, as deepstream sends it, so that an
    /// HTTP webhook can accept its own tokens. Each outcome counts as an HTTP login in the
    /// monitoring counters. Credentials are never logged.
    pub(super) async fn authenticate(
        &self,
        connection: &ConnectionData,
        credentials: Credentials,
    ) -> Result<Identity, ApiError> {
        let auth_data = match credentials {
            Credentials::AuthData(auth_data) => auth_data,
            Credentials::Anonymous => Map::new(),
            Credentials::Token(token) => match lock(&self.tokens).lookup(&token, Instant::now()) {
                Lookup::Valid(identity) => {
                    self.services.monitor.login(true, Endpoint::Http);
                    return Ok(identity);
                }
                Lookup::Expired => {
                    self.services.monitor.login(false, Endpoint::Http);
                    tracing::debug!("HTTP API request with an expired token rejected");
                    return Err(ApiError::TokenExpired {
                        auth_path: self.config.auth_path.clone(),
                    });
                }
                Lookup::Unknown => {
                    let mut auth_data = Map::new();
                    auth_data.insert("token".to_owned(), Value::String(token));
                    auth_data
                }
            },
        };

        let outcome = self
            .services
            .authenticator
            .authenticate(connection, &auth_data)
            .await;
        match outcome {
            AuthOutcome::Accepted {
                user,
                client_data,
                server_data,
            } => {
                self.services.monitor.login(true, Endpoint::Http);
                Ok(Identity {
                    user: user.into(),
                    client_data,
                    server_data,
                })
            }
            AuthOutcome::Rejected { client_data } => {
                self.on_rejected(&auth_data);
                Err(ApiError::Unauthorized {
                    client_data: client_data.map(|data| data.to_string()),
                })
            }
            _ => {
                self.on_rejected(&auth_data);
                Err(ApiError::Unauthorized { client_data: None })
            }
        }
    }

    /// Counts and logs a rejected login: with `logInvalidAuthData`, the names of the auth
    /// data fields, never their values.
    fn on_rejected(&self, auth_data: &Map<String, Value>) {
        self.services.monitor.login(false, Endpoint::Http);
        if self.config.log_invalid_auth_data {
            let fields: Vec<&str> = auth_data.keys().map(String::as_str).collect();
            tracing::info!(
                fields = %fields.join(", "),
                "HTTP API login rejected"
            );
        } else {
            tracing::debug!("HTTP API login rejected");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(request: Value, allow_auth_data: bool) -> Result<Credentials, String> {
        let Value::Object(request) = request else {
            panic!("requests are objects");
        };
        Credentials::read(&request, allow_auth_data).map_err(|error| error.to_string())
    }

    #[test]
    fn credentials_are_read() {
        assert_eq!(
            read(json!({"authData": {"username": "ada"}}), true),
            Ok(Credentials::AuthData(
                json!({"username": "ada"}).as_object().unwrap().clone()
            ))
        );
        assert_eq!(
            read(json!({"token": "t-1"}), false),
            Ok(Credentials::Token("t-1".into()))
        );
        assert_eq!(read(json!({}), true), Ok(Credentials::Anonymous));
        assert!(matches!(
            read(json!({"authData": {}, "token": "t-1"}), true),
            Ok(Credentials::AuthData(_))
        ));
    }

    #[test]
    fn invalid_credentials_are_rejected() {
        let disabled = read(json!({"authData": {"username": "ada"}}), false).unwrap_err();
        assert!(disabled.contains("allowAuthData"), "{disabled}");
        assert_eq!(
            read(json!({"authData": "ada"}), true),
            Err("invalid field `authData`: expected an object, found a string".into())
        );
        assert_eq!(
            read(json!({"token": ""}), true),
            Err("invalid field `token`: expected a non-empty string, found an empty string".into())
        );
        assert_eq!(
            read(json!({"token": 5}), true),
            Err("invalid field `token`: expected a non-empty string, found the number 5".into())
        );
    }
}
