//! Requests the HTTP API rejects as a whole, each with its HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A request rejected as a whole, without per-item results. Its message becomes the plain
/// text response body, so it states what was wrong and what the server expects instead.
#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    /// The method is neither `POST` nor a CORS preflight `OPTIONS`.
    #[error("method {0} is not allowed; send a POST request with a JSON body")]
    MethodNotAllowed(String),
    /// The `Content-Type` header is missing or is not `application/json`.
    #[error("invalid Content-Type header; send the body as `application/json`")]
    UnsupportedMediaType,
    /// The body is larger than `httpServer.options.maxMessageSize`.
    #[error(
        "request body larger than the maximum of {limit} bytes (httpServer.options.maxMessageSize)"
    )]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body did not arrive within the request timeout.
    #[error("request body not received within {millis} ms (requestTimeout)")]
    BodyTimeout {
        /// The request timeout in milliseconds.
        millis: u128,
    },
    /// Reading the body failed, for example because the client closed the connection.
    #[error("reading the request body failed: {0}")]
    BodyRead(#[source] axum::Error),
    /// The body is not valid JSON.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// The body is valid JSON but not an object.
    #[error("request body must be a JSON object, found {found}")]
    NotAnObject {
        /// The type of JSON value found.
        found: String,
    },
    /// The request object has a field other than `body`, `authData` and `token`.
    #[error("unknown field `{0}` in the request object; expected only body, authData and token")]
    UnknownField(String),
    /// `body` is missing.
    #[error(
        "missing field `body`: expected a non-empty list of requests such as {{\"topic\": \"event\", \"action\": \"emit\", \"eventName\": \"news\"}}"
    )]
    MissingBody,
    /// `body` is not a list, or an empty one.
    #[error("invalid field `body`: expected a non-empty list of requests, found {found}")]
    InvalidBody {
        /// The type of JSON value found.
        found: String,
    },
    /// One item of `body` is invalid, so no item was run.
    #[error("invalid request at body[{index}]: {reason}; no request of this body was run")]
    InvalidItem {
        /// The item's index in `body`.
        index: usize,
        /// The problem with the item.
        reason: String,
    },
    /// `authData` was sent, but `allowAuthData` is false.
    #[error(
        "logging in with `authData` is disabled on this server (allowAuthData); send a `token` instead"
    )]
    AuthDataDisabled,
    /// `authData` is not an object.
    #[error("invalid field `authData`: expected an object, found {found}")]
    InvalidAuthData {
        /// The type of JSON value found.
        found: String,
    },
    /// `token` is not a non-empty string.
    #[error("invalid field `token`: expected a non-empty string, found {found}")]
    InvalidToken {
        /// The type of JSON value found.
        found: String,
    },
    /// The authentication services rejected the credentials.
    #[error(
        "authentication failed: invalid credentials{}",
        client_data.as_deref().map(|data| format!("; the authentication service returned {data}")).unwrap_or_default()
    )]
    Unauthorized {
        /// The JSON text of the `clientData` that the rejecting service returned, if any.
        client_data: Option<String>,
    },
    /// The token was issued here but its time ran out.
    #[error("authentication failed: the token has expired; request a new one from {auth_path}")]
    TokenExpired {
        /// The URL path that issues tokens.
        auth_path: String,
    },
    /// The request's origin is not in `httpServer.options.origins`.
    #[error("origin {0:?} is not allowed (httpServer.options.origins)")]
    OriginForbidden(String),
    /// `allowAllOrigins` is false and the request names no origin.
    #[error(
        "missing Origin header: this server only accepts requests from the origins in httpServer.options.origins"
    )]
    OriginMissing,
    /// A CORS preflight without `Access-Control-Request-Method`.
    #[error("missing header Access-Control-Request-Method in a CORS preflight request")]
    PreflightMethodMissing,
    /// A CORS preflight for a method other than `POST`.
    #[error("method {0} is not allowed; allowed methods: {allowed}", allowed = super::cors::ALLOWED_METHODS)]
    PreflightMethodForbidden(String),
    /// A CORS preflight for a header that the API does not accept.
    #[error("header {0} is not allowed; allowed headers: {allowed}", allowed = super::cors::ALLOWED_HEADERS)]
    PreflightHeaderForbidden(String),
}

impl ApiError {
    /// Returns the HTTP status of the response.
    pub(super) fn status(&self) -> StatusCode {
        match self {
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized { .. } | ApiError::TokenExpired { .. } => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::OriginForbidden(_)
            | ApiError::OriginMissing
            | ApiError::PreflightMethodForbidden(_)
            | ApiError::PreflightHeaderForbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BodyRead(_)
            | ApiError::InvalidJson(_)
            | ApiError::NotAnObject { .. }
            | ApiError::UnknownField(_)
            | ApiError::MissingBody
            | ApiError::InvalidBody { .. }
            | ApiError::InvalidItem { .. }
            | ApiError::AuthDataDisabled
            | ApiError::InvalidAuthData { .. }
            | ApiError::InvalidToken { .. }
            | ApiError::PreflightMethodMissing => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), self.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if matches!(self, ApiError::MethodNotAllowed(_)) {
            headers.insert(
                header::ALLOW,
                HeaderValue::from_static(super::cors::ALLOWED_METHODS),
            );
        }
        response
    }
}
