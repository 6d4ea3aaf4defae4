//! The server's configuration, read from a deepstream `config.yml` (or `.yaml`, `.json`).
//!
//! A file written for the Node.js deepstream server (version 4 and later) loads unchanged: the
//! same keys, the same defaults, `${VAR}` substitution from the environment, and
//! `fileLoad(path)` / `file(path)` resolved relative to the config file's folder. Values are
//! checked once here and turned into the typed [`Config`] that the rest of the server reads.
//!
//! Keys that deepstream defines but this server does not implement yet are accepted, and each
//! one produces a [`Notice`] for the caller to log at start-up. Some are errors instead,
//! because running without them would silently weaken security: the `storage` authentication
//! type, and custom authentication and permission plugins.
//!
//! Where this loader differs from deepstream 7.0:
//! - The HTTP listener binds 127.0.0.1 unless the file sets `httpServer.options.host`
//!   (deepstream binds all interfaces).
//! - `${VAR}` is replaced before `fileLoad(...)` and `file(...)` are resolved, so a path may
//!   contain a variable. Text inside YAML comments is left alone.
//! - `fileLoad(...)` must be the whole value of a string, which is the only form that works
//!   in deepstream too.
//! - `.js` config files are not supported, and neither are `.js` users files.
//! - `auth` file options accept `hash: false` for plain-text passwords, which deepstream's
//!   schema rejects although its file authentication reads it that way.
//! - `storage: {type: default}` is a persistent embedded file, where deepstream's default
//!   storage keeps nothing. The storage and cache types `memory`, `postgres` and `redis` are
//!   built in, and deepstream's plugin form `name: postgres` / `name: redis` selects them.

mod auth;
mod discover;
mod document;
mod endpoints;
mod error;
mod include;
mod monitoring;
mod permission;
mod read;
mod services;
mod storage;
mod text;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use auth::{
    AuthConfig, FileAuthConfig, HashAlgorithm, HashSettings, HttpAuthConfig, UsersSource,
    WebhookUrl,
};
pub use error::{ConfigError, FileFormat, TextPosition};
pub use monitoring::{HttpMonitoringConfig, MonitoringConfig};
pub use permission::{PermissionConfig, PermissionRules};
pub use storage::{
    CacheConfig, PostgresConfig, PostgresConnection, RecordConfig, RedisConfig, RedisConnection,
    Secret, StorageConfig,
};

/// The settings the server runs with, after defaults, the file and its includes are merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The server's name in a cluster. A file value of `UUID`, or no value, gives a generated
    /// unique name.
    pub server_name: String,
    /// The lowest level of log messages to print (`logLevel`).
    pub log_level: LogLevel,
    /// The HTTP listener (`httpServer.options`).
    pub http: HttpConfig,
    /// The binary WebSocket endpoint, or `None` when `connectionEndpoints` has no `ws-binary`
    /// entry.
    pub websocket: Option<WebSocketConfig>,
    /// The HTTP API, or `None` when `connectionEndpoints` has no `http` entry.
    pub http_api: Option<HttpApiConfig>,
    /// Remote procedure call timeouts and options (`rpc`).
    pub rpc: RpcConfig,
    /// Listening (providers for subscriptions) timeouts and options (`listen`).
    pub listen: ListenConfig,
    /// Record timeouts and storage prefixes (`record`).
    pub record: RecordConfig,
    /// The storage that keeps records across restarts (`storage`).
    pub storage: StorageConfig,
    /// The cache that is read before the storage (`cache`).
    pub cache: CacheConfig,
    /// The authentication services a login is checked against, in order (`auth`). The
    /// default is `none`, which accepts every login.
    pub auth: Vec<AuthConfig>,
    /// The permission rules (`permission`).
    pub permission: PermissionConfig,
    /// The report of deepstream's statistics (`monitoring`).
    pub monitoring: MonitoringConfig,
    /// The topics that clients may use (`enabledFeatures`).
    pub features: EnabledFeatures,
    /// The file the settings were loaded from, or `None` for the embedded defaults.
    pub source: Option<PathBuf>,
}

/// Settings of the HTTP listener that serves the WebSocket endpoint, the HTTP API and the
/// health check (`httpServer.options`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// The address to bind (`host`), 127.0.0.1 unless configured.
    pub host: String,
    /// The TCP port to bind (`port`), 6020 by default.
    pub port: u16,
    /// The URL path of the health check (`healthCheckPath`), `/health-check` by default.
    pub health_check_path: String,
    /// Whether requests from any origin are allowed (`allowAllOrigins`), true by default.
    pub allow_all_origins: bool,
    /// The origins allowed when `allow_all_origins` is false (`origins`).
    pub origins: Vec<String>,
    /// The maximum size of an HTTP request body in bytes (`maxMessageSize`), 1 MiB by default.
    pub max_message_size: usize,
}

/// Settings of the binary WebSocket endpoint (the `ws-binary` entry of `connectionEndpoints`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketConfig {
    /// The URL path clients connect to (`urlPath`), `/deepstream` by default.
    pub url_path: String,
    /// The time between two pings (`heartbeatInterval`), 30 s by default.
    pub heartbeat_interval: Duration,
    /// How long outgoing messages are buffered before a flush (`outgoingBufferTimeout`),
    /// zero by default.
    pub outgoing_buffer_timeout: Duration,
    /// The buffered byte count that forces a flush (`maxBufferByteSize`), 100 000 by default.
    pub max_buffer_byte_size: usize,
    /// How long a connection may stay open without logging in
    /// (`unauthenticatedClientTimeout`), 180 s by default. `None` when the file sets `false`
    /// or `null`, which disables the timeout.
    pub unauthenticated_client_timeout: Option<Duration>,
    /// Failed logins after which the connection is closed (`maxAuthAttempts`), 3 by default.
    pub max_auth_attempts: u32,
    /// Whether the auth data of a failed login is logged (`logInvalidAuthData`), false by
    /// default.
    pub log_invalid_auth_data: bool,
    /// The maximum size of one incoming message in bytes (`maxMessageSize`), 1 MiB by default.
    /// A file value of 0 means no limit, as in deepstream, and is stored as `usize::MAX`.
    pub max_message_size: usize,
    /// The unsent bytes a client may have queued before it is disconnected
    /// (`maxOutgoingQueueBytes`, an option of this server that deepstream does not have),
    /// 16 MiB by default.
    pub max_outgoing_queue_bytes: usize,
}

/// Settings of deepstream's HTTP API (the `http` entry of `connectionEndpoints`). Its CORS
/// settings and body size limit are those of the listener, in [`HttpConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpApiConfig {
    /// Whether a request may log in with the credentials in its `authData`
    /// (`allowAuthData`), true by default. Without it, requests use a token or log in with
    /// empty auth data.
    pub allow_auth_data: bool,
    /// Whether `auth_path` issues tokens (`enableAuthEndpoint`), true by default.
    pub enable_auth_endpoint: bool,
    /// The URL path that exchanges credentials for a token (`authPath`), `/api/auth` by
    /// default.
    pub auth_path: String,
    /// The URL path that takes batches of requests (`postPath`), `/api` by default.
    pub post_path: String,
    /// The URL path of deepstream's GET requests (`getPath`), `/api` by default. It is
    /// checked but not served, because deepstream 7.0 responds to every GET request with
    /// an error too.
    pub get_path: String,
    /// Whether a rejected login logs the names of its auth data fields
    /// (`logInvalidAuthData`), false by default. Values are never logged.
    pub log_invalid_auth_data: bool,
    /// How long a request may wait for the results of its items (`requestTimeout`), 20 s
    /// by default. Items still waiting then fail with a timeout.
    pub request_timeout: Duration,
    /// How long a token from `auth_path` stays valid (`tokenTimeout`, an option of this
    /// server that deepstream does not have), 1 hour by default.
    pub token_timeout: Duration,
}

/// Remote procedure call settings (`rpc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// How long a provider has to acknowledge a request (`ackTimeout`), 1 s by default.
    pub ack_timeout: Duration,
    /// How long a provider has to respond (`responseTimeout`), 10 s by default.
    pub response_timeout: Duration,
    /// Whether providers receive the name of the requesting user (`provideRequestorName`).
    pub provide_requestor_name: bool,
    /// Whether providers receive the auth data of the requesting user
    /// (`provideRequestorData`).
    pub provide_requestor_data: bool,
}

/// Listening settings (`listen`): how the server finds a provider for a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenConfig {
    /// Whether providers are tried in random order rather than in subscription order
    /// (`shuffleProviders`), true by default.
    pub shuffle_providers: bool,
    /// How long a provider has to accept or reject a match (`responseTimeout`), 500 ms by
    /// default.
    pub response_timeout: Duration,
    /// The time between two attempts to find providers for unmatched subscriptions
    /// (`rematchInterval`), 30 s by default.
    pub rematch_interval: Duration,
    /// How long the server waits before retrying a match that failed (`matchCooldown`), 10 s
    /// by default.
    pub match_cooldown: Duration,
}

/// The topics that clients may use (`enabledFeatures`); each is enabled by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnabledFeatures {
    /// Records (`record`).
    pub record: bool,
    /// Events (`event`).
    pub event: bool,
    /// Remote procedure calls (`rpc`).
    pub rpc: bool,
    /// Presence (`presence`).
    pub presence: bool,
}

/// The lowest level of log messages to print, with deepstream's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLevel {
    /// `DEBUG`: everything.
    Debug,
    /// `INFO`: the default.
    Info,
    /// `WARN`: warnings and errors.
    Warn,
    /// `ERROR`: errors only.
    Error,
    /// `OFF`: nothing.
    Off,
}

/// A configuration and what the caller should log about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Messages to log once at start-up, in the order of the file.
    pub notices: Vec<Notice>,
}

/// Something the caller should log once at start-up, such as a key that is accepted but not
/// supported yet, or an environment variable that is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The dotted key path the notice is about (`record`, `connectionEndpoints[1]`), or the
    /// `${VAR}` expression for an environment variable.
    pub key: String,
    /// The effect on the server, as a sentence.
    pub message: String,
}

impl Config {
    /// Returns the embedded defaults: deepstream's defaults, except that the HTTP listener
    /// binds 127.0.0.1 where deepstream binds all interfaces, and that the default storage is
    /// the embedded file `./deepstream-data/records.redb` where deepstream stores nothing.
    pub fn embedded() -> Config {
        Config {
            server_name: document::generate_server_name(),
            log_level: LogLevel::Info,
            http: HttpConfig::default(),
            websocket: Some(WebSocketConfig::default()),
            http_api: Some(HttpApiConfig::default()),
            rpc: RpcConfig::default(),
            listen: ListenConfig::default(),
            record: RecordConfig::default(),
            storage: StorageConfig::default(),
            cache: CacheConfig::default(),
            auth: vec![AuthConfig::Open],
            permission: PermissionConfig::None,
            monitoring: MonitoringConfig::None,
            features: EnabledFeatures::default(),
            source: None,
        }
    }

    /// Loads a `.yml`, `.yaml` or `.json` file and merges it over the embedded defaults.
    ///
    /// `${VAR}` is replaced by the environment variable's value, or by an empty string (with a
    /// notice) when the variable is not set. `fileLoad(path)` is replaced by the named file's
    /// parsed content (its text for files that are not YAML or JSON), and `file(path)` by the
    /// path. Relative paths start from the folder of the config file.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file, the key and what was expected when the file or a
    /// `fileLoad` target is missing, unreadable or malformed, when a key is unknown or has a
    /// value of the wrong type, or when the file configures authentication that this server
    /// cannot provide. The users file named by file authentication's `path` is not read here
    /// but when the server starts.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        document::load(path, &text::process_env)
    }

    /// Finds and loads the config file the way deepstream does when no `-c` option is given.
    ///
    /// The candidates, in order: the file named by `$DEEPSTREAM_CONFIG_DIRECTORY` (or
    /// `config.{yml,yaml,json}` inside it when it names a folder), then
    /// `conf/config.{yml,yaml,json}` under `/etc/deepstream`, `.`, `..`, the executable's
    /// folder and its parent. Returns the embedded defaults when none exists.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `$DEEPSTREAM_CONFIG_DIRECTORY` names a path that does not exist,
    /// or when the chosen file fails to load as described for [`Config::load`].
    pub fn discover() -> Result<Loaded, ConfigError> {
        discover::discover(&text::process_env)
    }

    /// Reads only the `auth` section of the config file at `path`, or of the file that
    /// [`Config::discover`] would load when `path` is `None`, for the `hash` command. The
    /// users themselves, other sections and `fileLoad(...)` targets are not read, so they
    /// need not exist yet. Returns the config file too, `None` for the embedded defaults.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the file cannot be read or its `auth` section is invalid.
    pub fn load_auth(
        path: Option<&Path>,
    ) -> Result<(Vec<AuthConfig>, Option<PathBuf>), ConfigError> {
        let file = match path {
            Some(path) => Some(path.to_path_buf()),
            None => discover::discover_file(&text::process_env)?,
        };
        match &file {
            Some(file) => Ok((
                document::load_auth(file, &text::process_env)?,
                file.clone().into(),
            )),
            None => Ok((vec![AuthConfig::Open], None)),
        }
    }
}

/// Reads a YAML or JSON file that the configuration names, such as the users file of file
/// authentication. Unlike a config file, it gets no `${VAR}` substitution and no
/// `fileLoad(...)` resolution, as in deepstream.
///
/// # Errors
///
/// A [`ConfigError`] naming the file when it is missing, unreadable, too large, or not valid
/// YAML or JSON, which its extension chooses.
pub(crate) fn read_data_file(path: &Path) -> Result<serde_yaml::Value, ConfigError> {
    let format = text::config_format(path)?;
    let raw = text::read_file(path)?;
    text::parse(path, &raw, format)
}

impl LogLevel {
    /// Parses deepstream's name of a level (`DEBUG`, `INFO`, `WARN`, `ERROR`, `OFF`) in any case.
    pub fn from_name(name: &str) -> Option<LogLevel> {
        match name.to_ascii_uppercase().as_str() {
            "DEBUG" => Some(LogLevel::Debug),
            "INFO" => Some(LogLevel::Info),
            "WARN" => Some(LogLevel::Warn),
            "ERROR" => Some(LogLevel::Error),
            "OFF" => Some(LogLevel::Off),
            _ => None,
        }
    }

    /// Returns deepstream's name for the level (`DEBUG`, `INFO`, `WARN`, `ERROR`, `OFF`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Off => "OFF",
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            host: "127.0.0.1".to_owned(),
            port: 6020,
            health_check_path: "/health-check".to_owned(),
            allow_all_origins: true,
            origins: Vec::new(),
            max_message_size: 1_048_576,
        }
    }
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            url_path: "/deepstream".to_owned(),
            heartbeat_interval: Duration::from_millis(30_000),
            outgoing_buffer_timeout: Duration::ZERO,
            max_buffer_byte_size: 100_000,
            unauthenticated_client_timeout: Some(Duration::from_millis(180_000)),
            max_auth_attempts: 3,
            log_invalid_auth_data: false,
            max_message_size: 1_048_576,
            max_outgoing_queue_bytes: 16 * 1024 * 1024,
        }
    }
}

impl Default for HttpApiConfig {
    fn default() -> Self {
        HttpApiConfig {
            allow_auth_data: true,
            enable_auth_endpoint: true,
            auth_path: "/api/auth".to_owned(),
            post_path: "/api".to_owned(),
            get_path: "/api".to_owned(),
            log_invalid_auth_data: false,
            request_timeout: Duration::from_millis(20_000),
            token_timeout: Duration::from_secs(60 * 60),
        }
    }
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            ack_timeout: Duration::from_millis(1_000),
            response_timeout: Duration::from_millis(10_000),
            provide_requestor_name: false,
            provide_requestor_data: false,
        }
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            shuffle_providers: true,
            response_timeout: Duration::from_millis(500),
            rematch_interval: Duration::from_millis(30_000),
            match_cooldown: Duration::from_millis(10_000),
        }
    }
}

impl Default for EnabledFeatures {
    fn default() -> Self {
        EnabledFeatures {
            record: true,
            event: true,
            rpc: true,
            presence: true,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}
