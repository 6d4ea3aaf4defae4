//! Authentication services: they decide who a connecting client is.
//!
//! Each service implements [`Authenticator`], the counterpart of deepstream's authentication
//! plugin interface. The `auth` section of the configuration lists the services to ask, in
//! order; [`from_config`] builds them. A service accepts a login, rejects it, or leaves it
//! to the next service of the list ([`AuthOutcome::Undecided`]). A login that no service
//! decides is rejected.
//!
//! Built in: `none` ([`OpenAuthenticator`]), `file` ([`FileAuthenticator`], users and hashed
//! passwords from a file), `http` ([`HttpAuthenticator`], a webhook of the application) and
//! the list of several ([`ChainAuthenticator`]). Services never log credentials.

mod chain;
mod file;
mod hash;
mod http;
mod open;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::HeaderMap;
use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::config::{AuthConfig, ConfigError};

pub use chain::ChainAuthenticator;
pub use file::{FileAuthenticator, UsersError, UsersTable};
pub use hash::{encoded_key_length, hash_password, verify_password};
pub use http::HttpAuthenticator;
pub use open::{ANONYMOUS_USER, OpenAuthenticator};

/// The outcome of a login attempt.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuthOutcome {
    /// The client may use the server as `user`.
    Accepted {
        /// The user name handlers and other clients see.
        user: String,
        /// Data returned to the client in AUTH_SUCCESSFUL (deepstream's `clientData`).
        client_data: Option<Value>,
        /// Data about the user that stays on the server, for permission rules (deepstream's
        /// `serverData`).
        server_data: Option<Value>,
    },
    /// The credentials were rejected.
    Rejected {
        /// Data returned to the client in AUTH_UNSUCCESSFUL, such as a reason.
        client_data: Option<Value>,
    },
    /// The service cannot decide, for example because it does not know the user, and leaves
    /// the login to the next service of the `auth` list. The last service's `Undecided`
    /// rejects the login without data.
    Undecided,
}

/// A boxed future returned by [`Authenticator::authenticate`].
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = AuthOutcome> + Send + 'a>>;

/// Decides whether login data is valid. Implementations must not log the credentials they
/// receive.
pub trait Authenticator: Send + Sync + 'static {
    /// Checks `auth_data`, the JSON object the client sent with its login, from the
    /// connection described by `connection`.
    fn authenticate<'a>(
        &'a self,
        connection: &'a ConnectionData,
        auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a>;

    /// Describes the service for the start-up log, without secrets.
    fn description(&self) -> String {
        "custom authentication".to_owned()
    }
}

/// Details of a connection at login, taken from its WebSocket upgrade request. HTTP
/// authentication sends them to the webhook as deepstream's `connectionData`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectionData {
    /// The `x-forwarded-for` header when the request has one, else the client's IP address
    /// (`remoteAddress`). A proxy, or the client itself, can set that header.
    pub remote_address: String,
    /// The headers of the WebSocket upgrade request, with lowercase names (`headers`). A
    /// repeated header has its values joined with `, `, or with `; ` for `cookie`, as Node.js
    /// joins them.
    pub headers: IndexMap<String, String>,
    /// The `referer` header (`referer`).
    pub referer: Option<String>,
}

/// Setting up an authentication service failed at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The users file of file authentication is missing, unreadable or not valid YAML or JSON.
    #[error("failed to load the users file of file authentication")]
    UsersFile(#[source] ConfigError),
    /// The users file's name does not end in `.yml`, `.yaml` or `.json`.
    #[error(
        "unsupported users file {}: expected a name ending in .yml, .yaml or .json",
        file.display()
    )]
    UsersFileFormat {
        /// The file.
        file: PathBuf,
    },
    /// The users file parses, but its content is not a table of users.
    #[error("invalid users file {}: {source}", file.display())]
    InvalidUsers {
        /// The file.
        file: PathBuf,
        /// The problem with its content.
        #[source]
        source: UsersError,
    },
    /// The HTTP client of HTTP authentication could not be created.
    #[error("failed to create the HTTP client of http authentication")]
    HttpClient(#[source] reqwest::Error),
}

impl ConnectionData {
    /// Describes a WebSocket upgrade request from `remote` with `headers`.
    pub fn from_request(remote: SocketAddr, headers: &HeaderMap) -> ConnectionData {
        let mut joined: IndexMap<String, String> = IndexMap::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match joined.get_mut(name.as_str()) {
                Some(existing) => {
                    existing.push_str(if name == "cookie" { "; " } else { ", " });
                    existing.push_str(&value);
                }
                None => {
                    joined.insert(name.as_str().to_owned(), value);
                }
            }
        }
        let remote_address = match joined.get("x-forwarded-for") {
            Some(forwarded) if !forwarded.is_empty() => forwarded.clone(),
            _ => remote.ip().to_string(),
        };
        ConnectionData {
            remote_address,
            referer: joined.get("referer").cloned(),
            headers: joined,
        }
    }

    /// Returns the JSON object that deepstream sends as `connectionData`.
    pub fn to_json(&self) -> Value {
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect();
        let mut object = Map::new();
        object.insert(
            "remoteAddress".to_owned(),
            Value::String(self.remote_address.clone()),
        );
        object.insert("headers".to_owned(), Value::Object(headers));
        if let Some(referer) = &self.referer {
            object.insert("referer".to_owned(), Value::String(referer.clone()));
        }
        Value::Object(object)
    }
}

impl fmt::Debug for ConnectionData {
    /// Lists header names only, because cookies and authorization headers are credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionData")
            .field("remote_address", &self.remote_address)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("referer", &self.referer.is_some())
            .finish()
    }
}

/// Builds the services of the `auth` list. One entry is used as it is; several are asked in
/// order by a [`ChainAuthenticator`]. An empty list rejects every login.
///
/// # Errors
///
/// An [`AuthError`] when a users file cannot be loaded or an HTTP client cannot be created.
pub fn from_config(entries: &[AuthConfig]) -> Result<Arc<dyn Authenticator>, AuthError> {
    let mut services = entries.iter().map(build).collect::<Result<Vec<_>, _>>()?;
    if services.len() == 1 {
        if let Some(service) = services.pop() {
            return Ok(service);
        }
    }
    Ok(Arc::new(ChainAuthenticator::new(services)))
}

fn build(entry: &AuthConfig) -> Result<Arc<dyn Authenticator>, AuthError> {
    Ok(match entry {
        AuthConfig::Open => Arc::new(OpenAuthenticator),
        AuthConfig::File(config) => Arc::new(FileAuthenticator::from_config(config)?),
        AuthConfig::Http(config) => Arc::new(HttpAuthenticator::new(config.clone())?),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn connection_data_joins_repeated_headers() {
        let mut headers = HeaderMap::new();
        headers.append("accept", HeaderValue::from_static("text/plain"));
        headers.append("accept", HeaderValue::from_static("text/html"));
        headers.append("cookie", HeaderValue::from_static("a=1"));
        headers.append("cookie", HeaderValue::from_static("b=2"));
        headers.append("referer", HeaderValue::from_static("http://127.0.0.1/app"));
        let remote: SocketAddr = "127.0.0.1:4000".parse().unwrap();

        let data = ConnectionData::from_request(remote, &headers);

        assert_eq!(data.remote_address, "127.0.0.1");
        assert_eq!(data.headers["accept"], "text/plain, text/html");
        assert_eq!(data.headers["cookie"], "a=1; b=2");
        assert_eq!(data.referer.as_deref(), Some("http://127.0.0.1/app"));
        assert_eq!(
            data.to_json(),
            serde_json::json!({
                "remoteAddress": "127.0.0.1",
                "headers": {
                    "accept": "text/plain, text/html",
                    "cookie": "a=1; b=2",
                    "referer": "http://127.0.0.1/app",
                },
                "referer": "http://127.0.0.1/app",
            })
        );
    }

    #[test]
    fn connection_data_prefers_forwarded_address() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("forwarded-client"),
        );
        let remote: SocketAddr = "127.0.0.1:4000".parse().unwrap();

        let data = ConnectionData::from_request(remote, &headers);

        assert_eq!(data.remote_address, "forwarded-client");
        assert_eq!(data.to_json().get("referer"), None);
    }

    #[test]
    fn connection_data_debug_hides_header_values() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_static("session=secret-value"));
        let remote: SocketAddr = "127.0.0.1:4000".parse().unwrap();

        let debug = format!("{:?}", ConnectionData::from_request(remote, &headers));

        assert!(debug.contains("cookie"), "{debug}");
        assert!(!debug.contains("secret-value"), "{debug}");
    }
}
