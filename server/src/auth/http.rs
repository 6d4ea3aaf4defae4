//! The `http` authentication type: an HTTP endpoint of the application decides each login.
//!
//! Each login is posted as the JSON object `{"connectionData": ..., "authData": ...}` to
//! `endpointUrl`. A response status in `permittedStatusCodes` accepts the login; any other
//! status rejects it. The response body can name the user and carry data:
//!
//! - a JSON object: `id` is the user name (`username` is read when `id` is missing, as older
//!   webhooks send it), `clientData` goes to the client and `serverData` stays on the server.
//!   An `isValid` field that is present and not `true` rejects the login, as in deepstream.
//! - non-empty text (or a JSON string): the user name on acceptance, and
//!   `{"error": text}` as client data on rejection.
//! - anything else: the login is accepted as user `open`, as deepstream does.
//!
//! A JSON content type (`application/json` or `…+json`) is parsed as JSON and read as text
//! when it is not valid JSON. Other `text/…`, XML and JSON types are read as text. Bodies of
//! other types are ignored.

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::open::ANONYMOUS_USER;
use super::{AuthError, AuthFuture, AuthOutcome, Authenticator, ConnectionData};
use crate::config::HttpAuthConfig;

/// The largest response body read, in bytes. A larger one fails the request.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The redirects followed per request, as deepstream's HTTP client is configured.
const MAX_REDIRECTS: usize = 2;

/// The client data of a login rejected because every attempt failed, as deepstream 7.0
/// sends it.
const RETRIES_EXCEEDED: &str = "AUTH_RETRY_ATTEMPTS_EXCEEDED";

/// The `http` authentication type. See the module documentation for the request and how the
/// response decides.
///
/// A request that fails (connection error, timeout, oversized body) or returns a status in
/// `retryStatusCodes` is sent again after `retryInterval`, up to `retryAttempts` more times.
/// When every attempt failed the login is rejected with `{"error":
/// "AUTH_RETRY_ATTEMPTS_EXCEEDED"}`, or left to the next service when
/// `reportInvalidParameters` is false. So is a status that is not permitted.
///
/// NOTE: a status that is not permitted always rejects here. deepstream 7.0 copies the
/// response body over its result, so a body with `"isValid": true` accepts the login there.
pub struct HttpAuthenticator {
    client: reqwest::Client,
    config: HttpAuthConfig,
}

/// A response body, read as deepstream's HTTP client reads it.
#[derive(Debug, PartialEq)]
enum Body {
    /// A JSON body that parsed.
    Json(Value),
    /// A text body, or a JSON body that did not parse.
    Text(String),
    /// No body, or one of a type that is neither text nor JSON.
    Ignored,
}

/// A response of the endpoint.
struct Reply {
    status: u16,
    body: Body,
}

impl HttpAuthenticator {
    /// Creates the service. Requests go to `config.endpoint_url` directly, without a proxy.
    ///
    /// # Errors
    ///
    /// [`AuthError::HttpClient`] when the HTTP client cannot be created.
    pub fn new(config: HttpAuthConfig) -> Result<HttpAuthenticator, AuthError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(AuthError::HttpClient)?;
        Ok(HttpAuthenticator { client, config })
    }

    async fn check(
        &self,
        connection: &ConnectionData,
        auth_data: &Map<String, Value>,
    ) -> AuthOutcome {
        let mut request = Map::new();
        request.insert("connectionData".to_owned(), connection.to_json());
        request.insert("authData".to_owned(), Value::Object(auth_data.clone()));
        let body = Bytes::from(Value::Object(request).to_string());
        let headers = self.promoted_headers(auth_data);

        let attempts = self.config.retry_attempts.saturating_add(1);
        let mut attempt = 1;
        loop {
            let problem = match self.send(body.clone(), &headers).await {
                Ok(reply) if self.config.retry_status_codes.contains(&reply.status) => {
                    format!("the endpoint responded with status {}", reply.status)
                }
                Ok(reply) => return self.decide(reply),
                Err(problem) => problem,
            };
            if attempt >= attempts {
                tracing::warn!(
                    endpoint = %self.config.endpoint_url,
                    attempt,
                    "http authentication failed: {problem}; no retries left, so the login is not accepted"
                );
                return self.give_up();
            }
            tracing::warn!(
                endpoint = %self.config.endpoint_url,
                attempt,
                retry_in_ms = self.config.retry_interval.as_millis(),
                "http authentication failed: {problem}"
            );
            attempt += 1;
            tokio::time::sleep(self.config.retry_interval).await;
        }
    }

    /// Sends one request and reads the response, or returns why that failed.
    async fn send(&self, body: Bytes, headers: &HeaderMap) -> Result<Reply, String> {
        let request = self
            .client
            .post(self.config.endpoint_url.url().clone())
            .timeout(self.config.request_timeout)
            .headers(headers.clone())
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .header(ACCEPT, "application/json")
            .body(body);
        let mut response = request
            .send()
            .await
            .map_err(|error| self.describe(&error))?;

        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let mut raw = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.describe(&error))?
        {
            if raw.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(format!(
                    "the response body is larger than the maximum of {MAX_RESPONSE_BYTES} bytes"
                ));
            }
            raw.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            body: Body::read(content_type.as_deref(), &raw),
        })
    }

    /// Decides a login from a response whose status is not a retry status.
    fn decide(&self, reply: Reply) -> AuthOutcome {
        if reply.status >= 500 {
            tracing::warn!(
                endpoint = %self.config.endpoint_url,
                status = reply.status,
                "the http authentication endpoint responded with a server error"
            );
        }
        if !self.config.permitted_status_codes.contains(&reply.status) {
            tracing::debug!(
                status = reply.status,
                "http authentication rejected the login"
            );
            if !self.config.report_invalid_parameters {
                return AuthOutcome::Undecided;
            }
            return AuthOutcome::Rejected {
                client_data: rejection_data(reply.body),
            };
        }

        match reply.body {
            Body::Text(user) | Body::Json(Value::String(user)) if !user.is_empty() => {
                AuthOutcome::Accepted {
                    user,
                    client_data: None,
                    server_data: None,
                }
            }
            Body::Json(Value::Object(mut fields)) => {
                let client_data = fields.remove("clientData");
                if fields
                    .get("isValid")
                    .is_some_and(|valid| *valid != Value::Bool(true))
                {
                    return AuthOutcome::Rejected { client_data };
                }
                AuthOutcome::Accepted {
                    user: user_name(&fields),
                    client_data,
                    server_data: fields.remove("serverData").filter(|data| !data.is_null()),
                }
            }
            _ => AuthOutcome::Accepted {
                user: ANONYMOUS_USER.to_owned(),
                client_data: None,
                server_data: None,
            },
        }
    }

    fn give_up(&self) -> AuthOutcome {
        if self.config.report_invalid_parameters {
            AuthOutcome::Rejected {
                client_data: Some(serde_json::json!({ "error": RETRIES_EXCEEDED })),
            }
        } else {
            AuthOutcome::Undecided
        }
    }

    /// Returns the headers made from the login fields named by `promoteToHeader`. A field
    /// that is missing, false, zero, empty or not a scalar is left out, as deepstream leaves
    /// out falsy fields, and so is a value that is not a valid header value.
    fn promoted_headers(&self, auth_data: &Map<String, Value>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for field in &self.config.promote_to_header {
            let text = match auth_data.get(field) {
                Some(Value::String(text)) if !text.is_empty() => text.clone(),
                Some(Value::Number(number)) if number.as_f64() != Some(0.0) => number.to_string(),
                Some(Value::Bool(true)) => "true".to_owned(),
                _ => continue,
            };
            // The config loader checked that every field name is a valid header name.
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(field.as_bytes()),
                HeaderValue::from_str(&text),
            ) else {
                tracing::debug!(%field, "login field is not a valid header value, so it is not sent");
                continue;
            };
            headers.insert(name, value);
        }
        headers
    }

    /// Describes a failed request without the URL, which may hold credentials.
    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!(
                "the request timed out after {} ms (requestTimeout)",
                self.config.request_timeout.as_millis()
            );
        }
        let mut text = String::from("the request failed");
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

impl Authenticator for HttpAuthenticator {
    fn authenticate<'a>(
        &'a self,
        connection: &'a ConnectionData,
        auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a> {
        Box::pin(self.check(connection, auth_data))
    }

    fn description(&self) -> String {
        format!("http (webhook at {})", self.config.endpoint_url)
    }
}

impl Body {
    fn read(content_type: Option<&str>, raw: &[u8]) -> Body {
        let Some(content_type) = content_type else {
            return Body::Ignored;
        };
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let json = media_type == "application/json" || media_type.ends_with("+json");
        let text = json
            || media_type.starts_with("text/")
            || media_type.ends_with("/xml")
            || media_type.ends_with("+xml");

        if json {
            if let Ok(value) = serde_json::from_slice(raw) {
                return Body::Json(value);
            }
        }
        if text {
            return Body::Text(String::from_utf8_lossy(raw).into_owned());
        }
        Body::Ignored
    }
}

/// Returns the client data of a rejection, taken from the body as deepstream takes it.
fn rejection_data(body: Body) -> Option<Value> {
    match body {
        Body::Text(text) | Body::Json(Value::String(text)) if !text.is_empty() => {
            Some(serde_json::json!({ "error": text }))
        }
        Body::Json(Value::Object(mut fields)) => fields.remove("clientData"),
        _ => None,
    }
}

/// Returns the user name of an accepting JSON body: `id` when it is a non-empty string or a
/// number, else `username` when it is a non-empty string, else [`ANONYMOUS_USER`].
fn user_name(fields: &Map<String, Value>) -> String {
    match fields.get("id") {
        Some(Value::String(id)) if !id.is_empty() => return id.clone(),
        Some(Value::Number(id)) => return id.to_string(),
        _ => {}
    }
    match fields.get("username") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => ANONYMOUS_USER.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn body_is_read_by_content_type() {
        let cases = [
            (
                Some("application/json"),
                "{\"id\":\"ada\"}",
                Body::Json(json!({"id": "ada"})),
            ),
            (
                Some("application/vnd.api+json; charset=utf-8"),
                "[1]",
                Body::Json(json!([1])),
            ),
            (
                Some("application/json"),
                "not json",
                Body::Text("not json".to_owned()),
            ),
            (
                Some("text/plain; charset=utf-8"),
                "ada",
                Body::Text("ada".to_owned()),
            ),
            (Some("TEXT/HTML"), "<b>", Body::Text("<b>".to_owned())),
            (Some("application/octet-stream"), "ada", Body::Ignored),
            (None, "ada", Body::Ignored),
        ];
        for (content_type, raw, expected) in cases {
            assert_eq!(
                Body::read(content_type, raw.as_bytes()),
                expected,
                "{content_type:?} {raw:?}"
            );
        }
    }

    #[test]
    fn user_name_prefers_id() {
        let name = |value: Value| {
            let Value::Object(fields) = value else {
                panic!("fields must be an object")
            };
            user_name(&fields)
        };
        assert_eq!(name(json!({"id": "ada", "username": "bob"})), "ada");
        assert_eq!(name(json!({"id": 42})), "42");
        assert_eq!(name(json!({"id": "", "username": "bob"})), "bob");
        assert_eq!(name(json!({"id": null})), ANONYMOUS_USER);
        assert_eq!(name(json!({})), ANONYMOUS_USER);
    }

    #[test]
    fn rejection_data_follows_deepstream() {
        assert_eq!(
            rejection_data(Body::Text("locked".to_owned())),
            Some(json!({"error": "locked"}))
        );
        assert_eq!(rejection_data(Body::Text(String::new())), None);
        assert_eq!(
            rejection_data(Body::Json(
                json!({"clientData": {"reason": "x"}, "id": "ada"})
            )),
            Some(json!({"reason": "x"}))
        );
        assert_eq!(rejection_data(Body::Json(json!(5))), None);
        assert_eq!(rejection_data(Body::Ignored), None);
    }
}
