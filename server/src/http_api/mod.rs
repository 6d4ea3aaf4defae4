//! deepstream's HTTP API: events, RPCs, records and presence queries in batches of JSON
//! requests, for clients that do not keep a WebSocket open.
//!
//! `POST postPath` (`/api` by default) takes `{"body": [item, ...]}` with credentials in
//! `authData` or `token`. It runs the items in order and responds with `{"result": ...,
//! "body": [...]}`, one result per item (see [`items`] and [`results`]). Each request gets
//! a short-lived virtual connection on the same topic handlers and permission rules as
//! WebSocket clients ([`execute`]). `POST authPath` (`/api/auth`) exchanges credentials
//! for a token ([`tokens`]). Requests that cannot run at all get a 4xx status with a plain
//! text body that states what is wrong ([`error`]).
//!
//! Both paths take `POST` and CORS preflight `OPTIONS` requests only, and match exactly
//! (deepstream also serves any path below them).

mod auth;
mod cors;
mod error;
mod execute;
mod items;
mod pending;
mod results;
mod tokens;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::auth::ConnectionData;
use crate::config::{HttpApiConfig, HttpConfig};
use crate::registry::lock;
use crate::services::Services;
use auth::Credentials;
use cors::Cors;
use error::ApiError;
use items::{Item, describe};
use tokens::TokenStore;

/// The HTTP API's settings, its token store and the services its requests use.
pub(crate) struct HttpApi {
    config: HttpApiConfig,
    services: Arc<Services>,
    cors: Cors,
    /// The maximum request body in bytes (`httpServer.options.maxMessageSize`).
    body_limit: usize,
    tokens: Mutex<TokenStore>,
}

/// The two paths of the API.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// `postPath`: batches of requests.
    Batch,
    /// `authPath`: tokens.
    Token,
}

impl HttpApi {
    /// Creates the API of `config`, with the CORS settings and body limit of the listener.
    pub(crate) fn new(
        config: HttpApiConfig,
        http: &HttpConfig,
        services: Arc<Services>,
    ) -> Arc<HttpApi> {
        Arc::new(HttpApi {
            tokens: Mutex::new(TokenStore::new(config.token_timeout)),
            config,
            services,
            cors: Cors::new(http.allow_all_origins, http.origins.clone()),
            body_limit: http.max_message_size,
        })
    }

    /// Returns the routes of `postPath` and, when `enableAuthEndpoint` is set, `authPath`.
    pub(crate) fn routes<S>(self: &Arc<Self>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let mut router = Router::new().route(&self.config.post_path, any(serve_batch));
        if self.config.enable_auth_endpoint {
            router = router.route(&self.config.auth_path, any(serve_token));
        }
        router.with_state(self.clone())
    }

    async fn serve(
        &self,
        route: Route,
        ConnectInfo(remote): ConnectInfo<SocketAddr>,
        request: Request,
    ) -> Response {
        let allowed = match self.cors.check(request.headers()) {
            Ok(allowed) => allowed,
            Err(error) => return reject(error),
        };
        let result = match (request.method(), route) {
            (&Method::POST, Route::Batch) => self.post_batch(remote, request).await,
            (&Method::POST, Route::Token) => self.post_token(remote, request).await,
            (&Method::OPTIONS, _) => cors::preflight(request.headers()),
            (method, _) => Err(ApiError::MethodNotAllowed(method.to_string())),
        };
        allowed.apply(result.unwrap_or_else(reject))
    }

    /// Authenticates a batch and runs its items.
    async fn post_batch(&self, remote: SocketAddr, request: Request) -> Result<Response, ApiError> {
        let (parts, body) = request.into_parts();
        let object = self.read_object(&parts.headers, body).await?;
        if let Some(key) = object
            .keys()
            .find(|key| !matches!(key.as_str(), "body" | "authData" | "token"))
        {
            return Err(ApiError::UnknownField(key.clone()));
        }
        let items = read_items(&object)?;
        let credentials = Credentials::read(&object, self.config.allow_auth_data)?;

        let connection = ConnectionData::from_request(remote, &parts.headers);
        let identity = self.authenticate(&connection, credentials).await?;
        tracing::debug!(user = %identity.user, items = items.len(), "HTTP API request");
        let response = execute::run(
            &self.services,
            &identity,
            items,
            self.config.request_timeout,
        )
        .await;
        Ok(json_response(&response))
    }

    /// Authenticates the body, which is the auth data itself as in deepstream, and issues a
    /// token for the login.
    async fn post_token(&self, remote: SocketAddr, request: Request) -> Result<Response, ApiError> {
        let (parts, body) = request.into_parts();
        let auth_data = self.read_object(&parts.headers, body).await?;
        let connection = ConnectionData::from_request(remote, &parts.headers);
        let identity = self
            .authenticate(&connection, Credentials::AuthData(auth_data))
            .await?;

        let client_data = identity.client_data.clone().unwrap_or(Value::Null);
        let user = identity.user.clone();
        let token = lock(&self.tokens).issue(identity, Instant::now());
        tracing::debug!(%user, "HTTP API token issued");
        let mut response = Map::new();
        response.insert("token".to_owned(), Value::String(token));
        response.insert("clientData".to_owned(), client_data);
        Ok(json_response(&Value::Object(response)))
    }

    /// Reads a JSON object body of at most `body_limit` bytes within the request timeout.
    async fn read_object(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Map<String, Value>, ApiError> {
        if !is_json(headers) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let timeout = self.config.request_timeout;
        let bytes = tokio::time::timeout(timeout, read_body(headers, body, self.body_limit))
            .await
            .map_err(|_| ApiError::BodyTimeout {
                millis: timeout.as_millis(),
            })??;
        match serde_json::from_slice(&bytes).map_err(ApiError::InvalidJson)? {
            Value::Object(object) => Ok(object),
            other => Err(ApiError::NotAnObject {
                found: describe(&other),
            }),
        }
    }
}

async fn serve_batch(
    State(api): State<Arc<HttpApi>>,
    info: ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    api.serve(Route::Batch, info, request).await
}

async fn serve_token(
    State(api): State<Arc<HttpApi>>,
    info: ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    api.serve(Route::Token, info, request).await
}

/// Reads and checks `body`, the list of items. Rejects the whole request when one item is
/// invalid, as deepstream does, so that no item runs.
fn read_items(object: &Map<String, Value>) -> Result<Vec<Item>, ApiError> {
    let items = match object.get("body") {
        None => return Err(ApiError::MissingBody),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(other) => {
            return Err(ApiError::InvalidBody {
                found: match other {
                    Value::Array(_) => "an empty list".to_owned(),
                    other => describe(other),
                },
            });
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            Item::parse(item).map_err(|reason| ApiError::InvalidItem {
                index,
                reason: reason.to_string(),
            })
        })
        .collect()
}

/// Returns true when `Content-Type` is `application/json`, with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(content_type) = content_type.to_str() else {
        return false;
    };
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case("application/json")
}

/// Collects a body of at most `limit` bytes. A `Content-Length` over the limit is rejected
/// before anything is read.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok())
        .and_then(|length| length.parse::<u64>().ok());
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if declared.is_some_and(|length| length > limit_u64) {
        return Err(ApiError::BodyTooLarge { limit });
    }

    let mut stream = body.into_data_stream();
    let mut collected = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ApiError::BodyRead)?;
        if collected.len().saturating_add(chunk.len()) > limit {
            return Err(ApiError::BodyTooLarge { limit });
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(collected.freeze())
}

fn json_response(body: &Value) -> Response {
    let mut response = body.to_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Turns a rejected request into its response, logging it at debug level: a client's
/// mistake, which the client sees in the response.
fn reject(error: ApiError) -> Response {
    tracing::debug!(status = error.status().as_u16(), %error, "HTTP API request rejected");
    error.into_response()
}
