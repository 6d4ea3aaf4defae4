//! The `httpServer` and `connectionEndpoints` sections.

use serde_yaml::Value;

use super::read::{Check, KeyPath, Reader, describe, is_empty_request};
use super::{ConfigError, HttpApiConfig, HttpConfig, WebSocketConfig};

/// The endpoint types deepstream 7.0 has built in.
const ENDPOINT_TYPES: &[&str] = &["ws-binary", "ws-text", "ws-json", "http", "mqtt"];

/// The options deepstream's schema checks on every connection endpoint, whatever its type.
const ENDPOINT_OPTION_CHECKS: &[(&str, Check)] = &[
    ("port", Check::WholeNumber { min: 1 }),
    ("host", Check::Text),
    ("healthCheckPath", Check::Text),
    ("maxMessageSize", Check::WholeNumber { min: 0 }),
    ("urlPath", Check::Text),
    ("heartbeatInterval", Check::WholeNumber { min: 1 }),
    ("outgoingBufferTimeout", Check::WholeNumber { min: 0 }),
    ("unauthenticatedClientTimeout", Check::WholeNumberOrBool),
    ("maxAuthAttempts", Check::WholeNumber { min: 1 }),
    ("allowAuthData", Check::Bool),
    ("enableAuthEndpoint", Check::Bool),
    ("authPath", Check::Text),
    ("postPath", Check::Text),
    ("getPath", Check::Text),
];

/// The `httpServer` section as read.
pub(super) struct HttpServer {
    /// The listener's settings over the defaults.
    pub(super) config: HttpConfig,
    /// Whether the file sets `host`, which decides the notice about the default address.
    pub(super) host_set: bool,
}

/// Reads `httpServer`: a plugin entry whose `options` configure the HTTP listener.
pub(super) fn http_server(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<HttpServer, ConfigError> {
    let mut server = HttpServer {
        config: HttpConfig::default(),
        host_set: false,
    };
    for (key, value) in reader.entries(path, value)? {
        let path = path.key(key);
        match key {
            "type" => match reader.text(&path, value)? {
                "default" => {}
                "uws" => reader.notice(
                    &path,
                    "the uWebSockets server is not available in this server; the built-in HTTP \
                     server runs with the same options",
                ),
                _ => return Err(reader.invalid(&path, "one of default, uws", value)),
            },
            "name" | "path" => {
                reader.text(&path, value)?;
                reader.notice(
                    &path,
                    "custom HTTP service plugins are not supported; the built-in HTTP server is used",
                );
            }
            "options" => http_options(reader, &path, value, &mut server)?,
            _ => reader.unknown_option(&path),
        }
    }
    Ok(server)
}

/// The endpoints of `connectionEndpoints` that this server starts.
pub(super) struct Endpoints {
    /// The first `ws-binary` endpoint, if any.
    pub(super) websocket: Option<WebSocketConfig>,
    /// The first `http` endpoint, if any.
    pub(super) http_api: Option<HttpApiConfig>,
}

/// Reads `connectionEndpoints` and returns the settings of the first `ws-binary` and the
/// first `http` endpoint. Every other endpoint is checked and produces a notice.
pub(super) fn connection_endpoints(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<Endpoints, ConfigError> {
    let Value::Sequence(items) = value else {
        return Err(reader.invalid(path, "a list of connection endpoints", value));
    };

    let mut websocket = None;
    let mut http_api = None;
    let mut endpoint_count = 0;
    for (index, item) in items.iter().enumerate() {
        // deepstream drops `null` entries, the documented way to disable an endpoint.
        if item.is_null() {
            continue;
        }
        endpoint_count += 1;
        let item_path = path.index(index);
        let endpoint = read_endpoint(reader, &item_path, item)?;

        match endpoint.kind {
            Some("ws-binary") if websocket.is_none() => {
                websocket = Some(ws_binary(
                    reader,
                    &item_path.key("options"),
                    endpoint.options,
                )?);
            }
            Some("ws-binary") => {
                check_endpoint_options(reader, &item_path.key("options"), endpoint.options)?;
                reader.notice(
                    &item_path,
                    "only the first `ws-binary` endpoint is served by this server, so this one is not started",
                );
            }
            Some("http") if http_api.is_none() => {
                http_api = Some(http(reader, &item_path.key("options"), endpoint.options)?);
            }
            Some("http") => {
                check_endpoint_options(reader, &item_path.key("options"), endpoint.options)?;
                reader.notice(
                    &item_path,
                    "only the first `http` endpoint is served by this server, so this one is not started",
                );
            }
            Some(kind) => {
                check_endpoint_options(reader, &item_path.key("options"), endpoint.options)?;
                reader.notice(
                    &item_path,
                    format!(
                        "the `{kind}` endpoint type is not supported yet by this server, so this \
                         endpoint is not started"
                    ),
                );
            }
            None if endpoint.is_plugin => {
                check_endpoint_options(reader, &item_path.key("options"), endpoint.options)?;
                reader.notice(
                    &item_path,
                    "custom connection endpoint plugins are not supported, so this endpoint is not started",
                );
            }
            None => {
                return Err(reader.invalid(
                    &item_path.key("type"),
                    format!(
                        "one of {} (or a plugin `name` or `path`)",
                        ENDPOINT_TYPES.join(", ")
                    ),
                    &Value::Null,
                ));
            }
        }
    }

    if endpoint_count == 0 {
        return Err(reader.invalid(path, "at least one connection endpoint", value));
    }
    Ok(Endpoints {
        websocket,
        http_api,
    })
}

/// One entry of `connectionEndpoints`, as far as the keys that choose its implementation.
struct Endpoint<'v> {
    /// The built-in type, when `type` is set.
    kind: Option<&'v str>,
    /// Whether `name` or `path` names a plugin.
    is_plugin: bool,
    /// The `options` mapping, when set.
    options: Option<&'v Value>,
}

fn read_endpoint<'v>(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &'v Value,
) -> Result<Endpoint<'v>, ConfigError> {
    let mut endpoint = Endpoint {
        kind: None,
        is_plugin: false,
        options: None,
    };
    for (key, value) in reader.entries(path, value)? {
        let path = path.key(key);
        match key {
            "type" => {
                let kind = reader.text(&path, value)?;
                if !ENDPOINT_TYPES.contains(&kind) {
                    return Err(reader.invalid(
                        &path,
                        format!("one of {}", ENDPOINT_TYPES.join(", ")),
                        value,
                    ));
                }
                endpoint.kind = Some(kind);
            }
            "name" | "path" => {
                reader.text(&path, value)?;
                endpoint.is_plugin = true;
            }
            "options" => endpoint.options = Some(value),
            _ => reader.unknown_option(&path),
        }
    }
    Ok(endpoint)
}

/// Reads the options of the `ws-binary` endpoint over deepstream's defaults.
fn ws_binary(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    options: Option<&Value>,
) -> Result<WebSocketConfig, ConfigError> {
    let mut websocket = WebSocketConfig::default();
    let Some(options) = options else {
        return Ok(websocket);
    };

    for (key, value) in reader.entries(path, options)? {
        let path = path.key(key);
        match key {
            "urlPath" => websocket.url_path = reader.url_path(&path, value)?,
            "heartbeatInterval" => websocket.heartbeat_interval = reader.millis(&path, value, 1)?,
            "outgoingBufferTimeout" => {
                websocket.outgoing_buffer_timeout = reader.millis(&path, value, 0)?;
            }
            "maxBufferByteSize" => {
                websocket.max_buffer_byte_size = reader.bytes(&path, value, 0)?
            }
            "unauthenticatedClientTimeout" => {
                websocket.unauthenticated_client_timeout = match value {
                    Value::Null | Value::Bool(false) => None,
                    Value::Number(_) => Some(reader.millis(&path, value, 1)?),
                    _ => {
                        return Err(reader.invalid(
                            &path,
                            "a whole number of milliseconds, or false to disable the timeout",
                            value,
                        ));
                    }
                };
            }
            "maxAuthAttempts" => {
                let attempts =
                    reader.whole_number(&path, value, 1, u64::from(u32::MAX), "a whole number")?;
                // The range check above keeps `attempts` within u32.
                websocket.max_auth_attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
            }
            "logInvalidAuthData" => {
                websocket.log_invalid_auth_data = reader.boolean(&path, value)?
            }
            "maxMessageSize" => {
                // deepstream hands this to the `ws` library as maxPayload, where 0 means no limit.
                websocket.max_message_size = match reader.bytes(&path, value, 0)? {
                    0 => usize::MAX,
                    size => size,
                };
            }
            "maxOutgoingQueueBytes" => {
                websocket.max_outgoing_queue_bytes = reader.bytes(&path, value, 1)?;
            }
            "headers" => {
                reader.check(&path, value, Check::Texts)?;
                reader.not_supported_yet(&path, value);
            }
            _ => match ENDPOINT_OPTION_CHECKS.iter().find(|(name, _)| *name == key) {
                Some(&(_, check)) => {
                    reader.check(&path, value, check)?;
                    reader.notice(
                        &path,
                        "not used by a `ws-binary` endpoint (in deepstream either), so it is ignored",
                    );
                }
                None => reader.unknown_option(&path),
            },
        }
    }
    Ok(websocket)
}

/// Reads the options of the `http` endpoint (deepstream's HTTP API) over deepstream's
/// defaults.
fn http(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    options: Option<&Value>,
) -> Result<HttpApiConfig, ConfigError> {
    let mut http = HttpApiConfig::default();
    let Some(options) = options else {
        return Ok(http);
    };

    for (key, value) in reader.entries(path, options)? {
        let path = path.key(key);
        match key {
            "allowAuthData" => http.allow_auth_data = reader.boolean(&path, value)?,
            "enableAuthEndpoint" => http.enable_auth_endpoint = reader.boolean(&path, value)?,
            "authPath" => http.auth_path = route_path(reader, &path, value)?,
            "postPath" => http.post_path = route_path(reader, &path, value)?,
            "getPath" => http.get_path = route_path(reader, &path, value)?,
            "logInvalidAuthData" => http.log_invalid_auth_data = reader.boolean(&path, value)?,
            "requestTimeout" => http.request_timeout = reader.millis(&path, value, 1)?,
            "tokenTimeout" => http.token_timeout = reader.millis(&path, value, 1)?,
            _ => match ENDPOINT_OPTION_CHECKS.iter().find(|(name, _)| *name == key) {
                Some(&(_, check)) => {
                    reader.check(&path, value, check)?;
                    reader.notice(
                        &path,
                        "not used by an `http` endpoint (in deepstream either), so it is ignored",
                    );
                }
                None => reader.unknown_option(&path),
            },
        }
    }
    Ok(http)
}

/// Reads a URL path that the router serves as it is: it must start with `/` and contain no
/// `{`, `}` or `*`, which the router would read as parameters.
fn route_path(reader: &Reader<'_>, path: &KeyPath, value: &Value) -> Result<String, ConfigError> {
    let url_path = reader.url_path(path, value)?;
    if url_path.contains(['{', '}', '*']) {
        return Err(reader.invalid(
            path,
            "a URL path starting with `/` without `{`, `}` or `*`",
            value,
        ));
    }
    Ok(url_path)
}

/// Checks the options of an endpoint that is not started against deepstream's schema.
fn check_endpoint_options(
    reader: &Reader<'_>,
    path: &KeyPath,
    options: Option<&Value>,
) -> Result<(), ConfigError> {
    let Some(options) = options else {
        return Ok(());
    };
    for (key, value) in reader.entries(path, options)? {
        if let Some(&(_, check)) = ENDPOINT_OPTION_CHECKS.iter().find(|(name, _)| *name == key) {
            reader.check(&path.key(key), value, check)?;
        }
    }
    Ok(())
}

fn http_options(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
    server: &mut HttpServer,
) -> Result<(), ConfigError> {
    let http = &mut server.config;
    for (key, value) in reader.entries(path, value)? {
        let path = path.key(key);
        match key {
            "host" => {
                http.host = reader.text(&path, value)?.to_owned();
                server.host_set = true;
            }
            "port" => {
                let port =
                    reader.whole_number(&path, value, 1, u64::from(u16::MAX), "a port number")?;
                // The range check above keeps `port` within u16.
                http.port = u16::try_from(port).unwrap_or(u16::MAX);
            }
            "healthCheckPath" => http.health_check_path = reader.url_path(&path, value)?,
            "allowAllOrigins" => http.allow_all_origins = reader.boolean(&path, value)?,
            "origins" => {
                let Value::Sequence(items) = value else {
                    return Err(reader.invalid(&path, "a list of absolute URIs", value));
                };
                http.origins = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| reader.uri(&path.index(index), item))
                    .collect::<Result<_, _>>()?;
            }
            "maxMessageSize" => http.max_message_size = reader.bytes(&path, value, 0)?,
            "headers" => {
                reader.check(&path, value, Check::Texts)?;
                reader.not_supported_yet(&path, value);
            }
            "hostUrl" => {
                reader.check(&path, value, Check::Text)?;
                reader.not_supported_yet(&path, value);
            }
            "ssl" => {
                if !value.is_null() {
                    reader.check(&path, value, Check::Mapping)?;
                }
                if !is_empty_request(value) {
                    reader.notice(
                        &path,
                        "TLS is not supported yet by this server, so it listens without TLS. \
                         Put a proxy that terminates TLS in front of it.",
                    );
                }
            }
            _ => reader.unknown_option(&path),
        }
    }

    // deepstream logs this combination as a fatal error: no browser origin could connect.
    if !http.allow_all_origins && http.origins.is_empty() {
        let origins = value.get("origins").unwrap_or(&Value::Null);
        return Err(ConfigError::InvalidValue {
            file: reader.file().to_path_buf(),
            key: path.key("origins").to_string(),
            expected: "at least one origin when `allowAllOrigins` is false".to_owned(),
            found: describe(origins),
        });
    }
    Ok(())
}
