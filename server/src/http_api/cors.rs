//! Cross-origin requests from browsers, with `httpServer.options.allowAllOrigins` and
//! `origins` as in deepstream 7.0: every origin, or only the listed ones.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The methods a preflight may request: the API serves `POST` only.
pub(super) const ALLOWED_METHODS: &str = "POST, OPTIONS";
/// The request headers a preflight may request, deepstream's list.
pub(super) const ALLOWED_HEADERS: &str =
    "X-Requested-With, X-HTTP-Method-Override, Content-Type, Accept";

/// The origins that may call the API.
#[derive(Debug, Clone)]
pub(super) struct Cors {
    allow_all: bool,
    origins: Vec<String>,
}

/// The CORS headers that a response to an allowed request carries.
#[derive(Debug, Clone)]
pub(super) enum Allowed {
    /// Every origin: `Access-Control-Allow-Origin: *`.
    Any,
    /// One listed origin, echoed with credentials allowed.
    Origin(HeaderValue),
}

impl Cors {
    /// Creates the policy of `allowAllOrigins` and `origins`.
    pub(super) fn new(allow_all: bool, origins: Vec<String>) -> Cors {
        Cors { allow_all, origins }
    }

    /// Checks the request's origin: its `Origin` header, or its `Referer` when it has
    /// none, which must equal one of the configured origins unless every origin is
    /// allowed. Requests without either header are rejected then too, as in deepstream.
    pub(super) fn check(&self, headers: &HeaderMap) -> Result<Allowed, ApiError> {
        if self.allow_all {
            return Ok(Allowed::Any);
        }
        let origin = headers
            .get(header::ORIGIN)
            .or_else(|| headers.get(header::REFERER));
        let Some(origin) = origin else {
            return Err(ApiError::OriginMissing);
        };
        let text = String::from_utf8_lossy(origin.as_bytes());
        if self.origins.iter().any(|allowed| *allowed == text) {
            Ok(Allowed::Origin(origin.clone()))
        } else {
            Err(ApiError::OriginForbidden(text.into_owned()))
        }
    }
}

impl Allowed {
    /// Adds the CORS headers to `response`.
    pub(super) fn apply(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        match self {
            Allowed::Any => {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            Allowed::Origin(origin) => {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
                headers.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
        }
        response
    }
}

/// Responds to a CORS preflight: `204 No Content` with the allowed methods and headers when
/// the browser requests `POST` and headers from [`ALLOWED_HEADERS`].
pub(super) fn preflight(headers: &HeaderMap) -> Result<Response, ApiError> {
    let Some(method) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) else {
        return Err(ApiError::PreflightMethodMissing);
    };
    let method = String::from_utf8_lossy(method.as_bytes());
    if method != "POST" && method != "OPTIONS" {
        return Err(ApiError::PreflightMethodForbidden(method.into_owned()));
    }

    // Unlike deepstream, which rejects a preflight without this header, its absence is
    // fine: browsers leave it out when a request sends only simple headers.
    if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        let requested = String::from_utf8_lossy(requested.as_bytes());
        let forbidden = requested
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .find(|name| {
                !ALLOWED_HEADERS
                    .split(", ")
                    .any(|allowed| allowed.eq_ignore_ascii_case(name))
            });
        if let Some(name) = forbidden {
            return Err(ApiError::PreflightHeaderForbidden(name.to_owned()));
        }
    }

    let mut response = StatusCode::NO_CONTENT.into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    response_headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOWED_HEADERS),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn listed_origin_is_echoed() {
        let cors = Cors::new(false, vec!["https://app.example".into()]);

        let allowed = cors
            .check(&headers(&[("origin", "https://app.example")]))
            .unwrap();
        let response = allowed.apply(StatusCode::OK.into_response());

        let headers = response.headers();
        assert_eq!(
            headers["access-control-allow-origin"],
            "https://app.example"
        );
        assert_eq!(headers["access-control-allow-credentials"], "true");
        assert_eq!(headers["vary"], "Origin");
    }

    #[test]
    fn other_or_missing_origin_is_rejected() {
        let cors = Cors::new(false, vec!["https://app.example".into()]);

        let other = cors.check(&headers(&[("origin", "https://evil.example")]));
        assert!(
            matches!(other, Err(ApiError::OriginForbidden(ref origin)) if origin == "https://evil.example"),
            "{other:?}"
        );
        let missing = cors.check(&HeaderMap::new());
        assert!(
            matches!(missing, Err(ApiError::OriginMissing)),
            "{missing:?}"
        );
    }

    #[test]
    fn referer_stands_for_missing_origin() {
        let cors = Cors::new(false, vec!["https://app.example".into()]);

        let allowed = cors.check(&headers(&[("referer", "https://app.example")]));

        assert!(allowed.is_ok(), "{allowed:?}");
    }

    #[test]
    fn allow_all_sends_wildcard() {
        let cors = Cors::new(true, Vec::new());

        let response = cors
            .check(&HeaderMap::new())
            .unwrap()
            .apply(StatusCode::OK.into_response());

        assert_eq!(response.headers()["access-control-allow-origin"], "*");
    }

    #[test]
    fn preflight_lists_methods_and_headers() {
        let response = preflight(&headers(&[
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type, Accept"),
        ]))
        .unwrap();

        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            response.headers()["access-control-allow-methods"],
            ALLOWED_METHODS
        );
        assert_eq!(
            response.headers()["access-control-allow-headers"],
            ALLOWED_HEADERS
        );
    }

    #[test]
    fn preflight_rejects_other_methods_and_headers() {
        let missing = preflight(&HeaderMap::new());
        assert!(
            matches!(missing, Err(ApiError::PreflightMethodMissing)),
            "{missing:?}"
        );

        let delete = preflight(&headers(&[("access-control-request-method", "DELETE")]));
        assert!(
            matches!(delete, Err(ApiError::PreflightMethodForbidden(ref method)) if method == "DELETE"),
            "{delete:?}"
        );

        let header = preflight(&headers(&[
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type, x-secret"),
        ]));
        assert!(
            matches!(header, Err(ApiError::PreflightHeaderForbidden(ref name)) if name == "x-secret"),
            "{header:?}"
        );
    }
}
