//! The `record`, `storage` and `cache` sections: where records are kept and how long the
//! record handler waits for them.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde_yaml::Value;

use super::ConfigError;
use super::read::{KeyPath, Reader};

/// Record settings (`record`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    /// Records whose name starts with one of these prefixes are kept in the cache only, never
    /// in the storage (`storageExclusionPrefixes`), empty by default.
    pub storage_exclusion_prefixes: Vec<String>,
    /// A create-and-update of a record whose name starts with one of these prefixes is written
    /// straight to the cache and the storage, skipping the record's write queue, and a patch
    /// of such a record is rejected (`storageHotPathPrefixes`), empty by default.
    pub storage_hot_path_prefixes: Vec<String>,
    /// How long a read from the cache may take before it fails with `CACHE_RETRIEVAL_TIMEOUT`
    /// (`cacheRetrievalTimeout`), 1 s by default.
    pub cache_retrieval_timeout: Duration,
    /// How long a read from the storage may take before it fails with
    /// `STORAGE_RETRIEVAL_TIMEOUT` (`storageRetrievalTimeout`), 2 s by default.
    pub storage_retrieval_timeout: Duration,
}

/// The storage that keeps records across restarts (`storage`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageConfig {
    /// `type: default`: the embedded redb file at `path` (`options.path`),
    /// `./deepstream-data/records.redb` by default. A relative path starts from the server's
    /// current directory when the storage opens.
    Embedded {
        /// The file.
        path: PathBuf,
    },
    /// `type: memory`: records are kept in memory only and lost when the server stops.
    Memory,
    /// `type: postgres` or `name: postgres`: a PostgreSQL table.
    Postgres(PostgresConfig),
}

/// The cache that is read before the storage (`cache`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheConfig {
    /// `type: default` (or `memory`): maps in this process, with no eviction.
    #[default]
    Memory,
    /// `type: redis` or `name: redis`: a Redis server.
    Redis(RedisConfig),
}

/// Settings of the PostgreSQL storage (`storage.options`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// The server's address and the login.
    pub connection: PostgresConnection,
    /// The schema of the table (`schema`), `ds` by default like deepstream's connector. It is
    /// created when missing.
    pub schema: String,
    /// The table (`table`), `records` by default. It is created when missing.
    pub table: String,
    /// The number of connections used for reads (`max`), 4 by default. Writes use one more.
    pub max_connections: usize,
    /// How long connecting may take (`connectionTimeoutMillis`), 10 s by default. A
    /// `connect_timeout` inside `connectionString` takes precedence over the default.
    pub connect_timeout: Duration,
}

/// The PostgreSQL server's address and the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresConnection {
    /// `connectionString`: a `postgresql://` URL or a `key=value` string, as libpq accepts.
    ConnectionString(Secret),
    /// Separate options.
    Parameters {
        /// The server's host name, IP address or Unix socket folder (`host`); required.
        host: String,
        /// The server's port (`port`), 5432 by default.
        port: u16,
        /// The user (`user`), `postgres` by default.
        user: String,
        /// The user's password (`password`), none by default.
        password: Option<Secret>,
        /// The database (`database`), the user's name by default, as in libpq.
        database: String,
    },
}

/// Settings of the Redis cache (`cache.options`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The server's address and the login.
    pub connection: RedisConnection,
    /// Text put before every record name to form its key (`keyPrefix`), none by default.
    pub key_prefix: String,
    /// How long Redis keeps a record after its last write (`ttl`, in seconds), forever by
    /// default.
    pub ttl: Option<Duration>,
    /// How long connecting may take (`connectTimeout`), 10 s by default.
    pub connect_timeout: Duration,
    /// How long one command may take before it fails (`commandTimeout`), 10 s by default.
    pub command_timeout: Duration,
}

/// The Redis server's address and the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisConnection {
    /// `url`: a `redis://` or `unix://` URL.
    Url(Secret),
    /// Separate options.
    Parameters {
        /// The server's host name or IP address (`host`); required.
        host: String,
        /// The server's port (`port`), 6379 by default.
        port: u16,
        /// The ACL user (`username`), none by default.
        username: Option<String>,
        /// The password (`password`), none by default.
        password: Option<Secret>,
        /// The database number (`db`), 0 by default.
        db: i64,
    },
}

/// A password, or a URL that may contain one. Its `Debug` output hides the text, so a
/// configuration can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret text.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// Returns the secret text, for handing it to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            storage_exclusion_prefixes: Vec::new(),
            storage_hot_path_prefixes: Vec::new(),
            cache_retrieval_timeout: Duration::from_millis(1_000),
            storage_retrieval_timeout: Duration::from_millis(2_000),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig::Embedded {
            path: PathBuf::from(DEFAULT_EMBEDDED_PATH),
        }
    }
}

/// The embedded storage's file when `storage.options.path` is not set.
pub(super) const DEFAULT_EMBEDDED_PATH: &str = "./deepstream-data/records.redb";

const STORAGE_TYPES: &str = "one of default, memory, postgres";
const CACHE_TYPES: &str = "one of default, memory, redis";

/// PostgreSQL truncates longer identifiers (NAMEDATALEN is 64 bytes with the terminator).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// The deepstream PostgreSQL connector's options that this storage does not use, with the
/// reason.
const IGNORED_POSTGRES_OPTIONS: &[(&str, &str)] = &[
    (
        "writeInterval",
        "writes are committed in groups as they arrive, not on an interval, so it is ignored",
    ),
    (
        "splitChar",
        "every record is stored in the one table named by `table`, so it is ignored",
    ),
    (
        "defaultTable",
        "every record is stored in the one table named by `table`, so it is ignored",
    ),
    (
        "useJsonb",
        "record data is always stored as jsonb, so it is ignored",
    ),
    (
        "notifications",
        "this storage sends no change notifications, so it is ignored",
    ),
];

/// The plugin-style keys of a `storage` or `cache` section that choose the implementation.
struct Selection<'v> {
    kind: Option<&'v str>,
    name: Option<&'v str>,
    options: Option<&'v Value>,
}

/// Reads `record`.
pub(super) fn record(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<RecordConfig, ConfigError> {
    let mut record = RecordConfig::default();
    for (key, value) in reader.entries(path, value)? {
        let path = path.key(key);
        match key {
            "cacheRetrievalTimeout" => {
                record.cache_retrieval_timeout = reader.millis(&path, value, 1)?;
            }
            "storageRetrievalTimeout" => {
                record.storage_retrieval_timeout = reader.millis(&path, value, 1)?;
            }
            "storageExclusionPrefixes" => {
                record.storage_exclusion_prefixes = texts_or_null(reader, &path, value)?;
            }
            "storageHotPathPrefixes" => {
                record.storage_hot_path_prefixes = texts_or_null(reader, &path, value)?;
            }
            _ => reader.unknown_option(&path),
        }
    }
    Ok(record)
}

/// Reads `storage`: `type` (or deepstream's plugin `name`) and `options`.
pub(super) fn storage(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<StorageConfig, ConfigError> {
    let selection = read_selection(reader, path, value, "storage")?;
    let options_path = path.key("options");

    if let Some(name) = selection.name {
        if name != "postgres" {
            return Err(reader.unsupported(
                &path.key("name"),
                format!(
                    "storage plugin `{name}` is not available in this server, which provides \
                     `type: default` (an embedded file), `type: memory` and `type: postgres` \
                     (also as `name: postgres`)"
                ),
            ));
        }
        return Ok(StorageConfig::Postgres(postgres(
            reader,
            &options_path,
            selection.options,
        )?));
    }

    match selection.kind.unwrap_or("default") {
        "default" => embedded(reader, &options_path, selection.options),
        "memory" => {
            ignore_options(reader, &options_path, selection.options, "memory storage")?;
            reader.notice(
                &path.key("type"),
                "records are kept in memory only, so they are lost when the server stops",
            );
            Ok(StorageConfig::Memory)
        }
        "postgres" => Ok(StorageConfig::Postgres(postgres(
            reader,
            &options_path,
            selection.options,
        )?)),
        _ => Err(reader.invalid(
            &path.key("type"),
            format!("{STORAGE_TYPES} (or `name: postgres`)"),
            value.get("type").unwrap_or(&Value::Null),
        )),
    }
}

/// Reads `cache`: `type` (or deepstream's plugin `name`) and `options`.
pub(super) fn cache(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<CacheConfig, ConfigError> {
    let selection = read_selection(reader, path, value, "cache")?;
    let options_path = path.key("options");

    if let Some(name) = selection.name {
        if name != "redis" {
            return Err(reader.unsupported(
                &path.key("name"),
                format!(
                    "cache plugin `{name}` is not available in this server, which provides \
                     `type: default` (in memory) and `type: redis` (also as `name: redis`)"
                ),
            ));
        }
        return Ok(CacheConfig::Redis(redis(
            reader,
            &options_path,
            selection.options,
        )?));
    }

    match selection.kind.unwrap_or("default") {
        "default" | "memory" => {
            ignore_options(reader, &options_path, selection.options, "memory cache")?;
            Ok(CacheConfig::Memory)
        }
        "redis" => Ok(CacheConfig::Redis(redis(
            reader,
            &options_path,
            selection.options,
        )?)),
        _ => Err(reader.invalid(
            &path.key("type"),
            format!("{CACHE_TYPES} (or `name: redis`)"),
            value.get("type").unwrap_or(&Value::Null),
        )),
    }
}

/// Reads the keys that choose the implementation. A `path` to a JavaScript plugin is an
/// error, because running without the plugin would keep records somewhere the owner did not
/// choose.
fn read_selection<'v>(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    value: &'v Value,
    section: &str,
) -> Result<Selection<'v>, ConfigError> {
    let mut selection = Selection {
        kind: None,
        name: None,
        options: None,
    };
    for (key, value) in reader.entries(path, value)? {
        let key_path = path.key(key);
        match key {
            "type" => selection.kind = Some(reader.text(&key_path, value)?),
            "name" => selection.name = Some(reader.text(&key_path, value)?),
            "path" => {
                reader.text(&key_path, value)?;
                return Err(reader.unsupported(
                    &key_path,
                    format!(
                        "custom {section} plugins are not supported by this server, so it does \
                         not start rather than keep records elsewhere; remove `path` and set `type`"
                    ),
                ));
            }
            "options" => {
                reader.entries(&key_path, value)?;
                selection.options = Some(value);
            }
            // deepstream's schema allows other keys here and ignores them.
            _ => reader.unknown_option(&key_path),
        }
    }
    Ok(selection)
}

fn embedded(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    options: Option<&Value>,
) -> Result<StorageConfig, ConfigError> {
    let mut file = PathBuf::from(DEFAULT_EMBEDDED_PATH);
    for (key, value) in option_entries(reader, path, options)? {
        let key_path = path.key(key);
        match key {
            "path" => file = PathBuf::from(reader.text(&key_path, value)?),
            _ => reader.notice(
                &key_path,
                "not an option of the embedded storage, so it is ignored",
            ),
        }
    }
    Ok(StorageConfig::Embedded { path: file })
}

/// Adds a notice for each option of a backend that takes none.
fn ignore_options(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    options: Option<&Value>,
    backend: &str,
) -> Result<(), ConfigError> {
    for (key, _) in option_entries(reader, path, options)? {
        reader.notice(
            &path.key(key),
            format!("the {backend} has no options, so it is ignored"),
        );
    }
    Ok(())
}

fn postgres(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    options: Option<&Value>,
) -> Result<PostgresConfig, ConfigError> {
    let mut connection_string = None;
    let mut host = None;
    let mut port = 5432;
    let mut user = None;
    let mut password = None;
    let mut database = None;
    let mut config = PostgresConfig {
        // Replaced below: either `connectionString` or `host` is required.
        connection: PostgresConnection::ConnectionString(Secret::new(String::new())),
        schema: "ds".to_owned(),
        table: "records".to_owned(),
        max_connections: 4,
        connect_timeout: Duration::from_millis(10_000),
    };

    let entries = option_entries(reader, path, options)?;
    for &(key, value) in &entries {
        let key_path = path.key(key);
        match key {
            "connectionString" => {
                connection_string = Some(postgres_connection_string(reader, &key_path, value)?);
            }
            "host" => host = Some(reader.text(&key_path, value)?.to_owned()),
            "port" => port = read_port(reader, &key_path, value)?,
            "user" => user = Some(reader.text(&key_path, value)?.to_owned()),
            "password" => password = Some(read_secret(reader, &key_path, value)?),
            "database" => database = Some(reader.text(&key_path, value)?.to_owned()),
            "schema" => config.schema = identifier(reader, &key_path, value)?,
            "table" => config.table = identifier(reader, &key_path, value)?,
            "max" => {
                let max = reader.whole_number(&key_path, value, 1, 1000, "a whole number")?;
                // The range check above keeps `max` within usize.
                config.max_connections = usize::try_from(max).unwrap_or(1000);
            }
            "connectionTimeoutMillis" => {
                config.connect_timeout = reader.millis(&key_path, value, 1)?;
            }
            "ssl" => reject_tls(reader, &key_path, value, "PostgreSQL")?,
            _ => match IGNORED_POSTGRES_OPTIONS
                .iter()
                .find(|(name, _)| *name == key)
            {
                Some((_, reason)) => reader.notice(&key_path, *reason),
                None => reader.notice(
                    &key_path,
                    "not an option of this server's PostgreSQL storage, so it is ignored",
                ),
            },
        }
    }

    config.connection = match (connection_string, host) {
        (Some(_), Some(_)) => {
            return Err(conflict(
                reader,
                &path.key("host"),
                "either `connectionString` or `host` with the other connection options",
                "both `connectionString` and `host`",
            ));
        }
        (Some(connection_string), None) => {
            for key in ["port", "user", "password", "database"] {
                if entries.iter().any(|(name, _)| *name == key) {
                    let found = value_of(&entries, key);
                    return Err(reader.invalid(
                        &path.key(key),
                        "no separate connection options when `connectionString` is set",
                        &hide_secret(key, found),
                    ));
                }
            }
            PostgresConnection::ConnectionString(connection_string)
        }
        (None, Some(host)) => {
            let user = user.unwrap_or_else(|| "postgres".to_owned());
            PostgresConnection::Parameters {
                host,
                port,
                database: database.unwrap_or_else(|| user.clone()),
                user,
                password,
            }
        }
        (None, None) => {
            return Err(reader.invalid(
                &path.key("host"),
                "the PostgreSQL server's host (or a `connectionString`); this server has no \
                 default database host",
                &Value::Null,
            ));
        }
    };
    Ok(config)
}

fn redis(
    reader: &mut Reader<'_>,
    path: &KeyPath,
    options: Option<&Value>,
) -> Result<RedisConfig, ConfigError> {
    let mut url = None;
    let mut host = None;
    let mut port = 6379;
    let mut username = None;
    let mut password = None;
    let mut db = 0;
    let mut config = RedisConfig {
        // Replaced below: either `url` or `host` is required.
        connection: RedisConnection::Url(Secret::new(String::new())),
        key_prefix: String::new(),
        ttl: None,
        connect_timeout: Duration::from_millis(10_000),
        command_timeout: Duration::from_millis(10_000),
    };

    let entries = option_entries(reader, path, options)?;
    for &(key, value) in &entries {
        let key_path = path.key(key);
        match key {
            "url" => url = Some(redis_url(reader, &key_path, value)?),
            "host" => host = Some(reader.text(&key_path, value)?.to_owned()),
            "port" => port = read_port(reader, &key_path, value)?,
            "username" => username = Some(reader.text(&key_path, value)?.to_owned()),
            "password" => password = Some(read_secret(reader, &key_path, value)?),
            "db" => {
                let number = reader.whole_number(
                    &key_path,
                    value,
                    0,
                    i64::MAX.unsigned_abs(),
                    "a database number",
                )?;
                // The range check above keeps `number` within i64.
                db = i64::try_from(number).unwrap_or(i64::MAX);
            }
            "keyPrefix" => config.key_prefix = reader.text(&key_path, value)?.to_owned(),
            "ttl" => {
                let seconds = reader.whole_number(
                    &key_path,
                    value,
                    1,
                    u64::from(u32::MAX),
                    "a whole number of seconds",
                )?;
                config.ttl = Some(Duration::from_secs(seconds));
            }
            "connectTimeout" => config.connect_timeout = reader.millis(&key_path, value, 1)?,
            "commandTimeout" => config.command_timeout = reader.millis(&key_path, value, 1)?,
            "nodes" | "sentinels" => {
                return Err(reader.unsupported(
                    &key_path,
                    "Redis Cluster and Sentinel are not supported yet by this server; set `host` \
                     or `url` of a single Redis server",
                ));
            }
            "tls" => reject_tls(reader, &key_path, value, "Redis")?,
            _ => reader.notice(
                &key_path,
                "not an option of this server's Redis cache, so it is ignored",
            ),
        }
    }

    config.connection = match (url, host) {
        (Some(_), Some(_)) => {
            return Err(conflict(
                reader,
                &path.key("host"),
                "either `url` or `host` with the other connection options",
                "both `url` and `host`",
            ));
        }
        (Some(url), None) => {
            for key in ["port", "username", "password", "db"] {
                if entries.iter().any(|(name, _)| *name == key) {
                    let found = value_of(&entries, key);
                    return Err(reader.invalid(
                        &path.key(key),
                        "no separate connection options when `url` is set",
                        &hide_secret(key, found),
                    ));
                }
            }
            RedisConnection::Url(url)
        }
        (None, Some(host)) => RedisConnection::Parameters {
            host,
            port,
            username,
            password,
            db,
        },
        (None, None) => {
            return Err(reader.invalid(
                &path.key("host"),
                "the Redis server's host (or a `url`); this server has no default cache host",
                &Value::Null,
            ));
        }
    };
    Ok(config)
}

/// Checks a PostgreSQL connection string with the client library's own parser. Error
/// messages never contain the string, which may contain a password.
fn postgres_connection_string(
    reader: &Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<Secret, ConfigError> {
    let text = read_secret(reader, path, value)?;
    let invalid = |problem: String| ConfigError::InvalidValue {
        file: reader.file().to_path_buf(),
        key: path.to_string(),
        expected: "a PostgreSQL connection string such as \
                   `postgresql://user:password@127.0.0.1:5432/database`"
            .to_owned(),
        found: format!("a string that {problem}"),
    };

    let parsed = tokio_postgres::Config::from_str(text.expose())
        .map_err(|error| invalid(format!("does not parse ({error})")))?;
    if parsed.get_hosts().is_empty() && parsed.get_hostaddrs().is_empty() {
        return Err(invalid("names no host".to_owned()));
    }
    if parsed.get_user().is_none() {
        return Err(invalid("names no user".to_owned()));
    }
    if matches!(
        parsed.get_ssl_mode(),
        tokio_postgres::config::SslMode::Require
    ) {
        return Err(reader.unsupported(
            path,
            "the connection string requires TLS (`sslmode=require`), which this server does not \
             support yet, so it does not start rather than connect without TLS",
        ));
    }
    Ok(text)
}

/// Checks a Redis URL with the client library's own parser. Error messages never contain the
/// URL, which may contain a password.
fn redis_url(reader: &Reader<'_>, path: &KeyPath, value: &Value) -> Result<Secret, ConfigError> {
    use redis::IntoConnectionInfo;

    let text = read_secret(reader, path, value)?;
    let scheme = text.expose().split_once("://").map(|(scheme, _)| scheme);
    if scheme.is_some_and(|scheme| {
        scheme.eq_ignore_ascii_case("rediss") || scheme.eq_ignore_ascii_case("valkeys")
    }) {
        return Err(reader.unsupported(
            path,
            "TLS connections to Redis (`rediss://`) are not supported yet by this server, so it \
             does not start rather than connect without TLS",
        ));
    }
    let info = text
        .expose()
        .into_connection_info()
        .map_err(|error| ConfigError::InvalidValue {
            file: reader.file().to_path_buf(),
            key: path.to_string(),
            expected: "a Redis URL such as `redis://127.0.0.1:6379/0` or `unix:///run/redis.sock`"
                .to_owned(),
            found: format!("a string that does not parse ({error})"),
        })?;
    if !info.addr().is_supported() {
        return Err(reader.unsupported(
            path,
            format!(
                "the address {} is not supported by this server's Redis client",
                info.addr()
            ),
        ));
    }
    Ok(text)
}

/// Accepts a TLS option that requests nothing (`false`, null, empty), and rejects any other
/// value, because connecting without the TLS the owner asked for would expose the traffic.
fn reject_tls(
    reader: &Reader<'_>,
    path: &KeyPath,
    value: &Value,
    server: &str,
) -> Result<(), ConfigError> {
    if super::read::is_empty_request(value) {
        return Ok(());
    }
    Err(reader.unsupported(
        path,
        format!(
            "TLS connections to {server} are not supported yet by this server, so it does not \
             start rather than connect without TLS"
        ),
    ))
}

/// Builds the error for two options that exclude each other.
fn conflict(reader: &Reader<'_>, path: &KeyPath, expected: &str, found: &str) -> ConfigError {
    ConfigError::InvalidValue {
        file: reader.file().to_path_buf(),
        key: path.to_string(),
        expected: expected.to_owned(),
        found: found.to_owned(),
    }
}

fn identifier(reader: &Reader<'_>, path: &KeyPath, value: &Value) -> Result<String, ConfigError> {
    match value.as_str() {
        Some(text)
            if !text.is_empty() && text.len() <= MAX_IDENTIFIER_BYTES && !text.contains('\0') =>
        {
            Ok(text.to_owned())
        }
        _ => Err(reader.invalid(
            path,
            format!("a PostgreSQL identifier of 1 to {MAX_IDENTIFIER_BYTES} bytes"),
            value,
        )),
    }
}

fn read_port(reader: &Reader<'_>, path: &KeyPath, value: &Value) -> Result<u16, ConfigError> {
    let port = reader.whole_number(path, value, 1, u64::from(u16::MAX), "a port number")?;
    // The range check above keeps `port` within u16.
    Ok(u16::try_from(port).unwrap_or(u16::MAX))
}

/// Reads a non-empty string that must not appear in error messages.
fn read_secret(reader: &Reader<'_>, path: &KeyPath, value: &Value) -> Result<Secret, ConfigError> {
    match value.as_str() {
        Some(text) if !text.is_empty() => Ok(Secret::new(text)),
        // An empty string or a value of another type reveals no secret, so it is described.
        _ => Err(reader.invalid(path, "a non-empty string", value)),
    }
}

fn texts_or_null(
    reader: &Reader<'_>,
    path: &KeyPath,
    value: &Value,
) -> Result<Vec<String>, ConfigError> {
    if value.is_null() {
        Ok(Vec::new())
    } else {
        reader.texts(path, value)
    }
}

/// Returns the entries of an `options` mapping, or none when it is not set.
fn option_entries<'v>(
    reader: &Reader<'_>,
    path: &KeyPath,
    options: Option<&'v Value>,
) -> Result<Vec<(&'v str, &'v Value)>, ConfigError> {
    match options {
        Some(options) => reader.entries(path, options),
        None => Ok(Vec::new()),
    }
}

fn value_of<'v>(entries: &[(&str, &'v Value)], key: &str) -> &'v Value {
    entries
        .iter()
        .find(|(name, _)| *name == key)
        .map_or(&Value::Null, |(_, value)| *value)
}

/// Returns a value for an error message, with the text of a password replaced.
fn hide_secret(key: &str, value: &Value) -> Value {
    if key == "password" && value.is_string() {
        Value::String("***".to_owned())
    } else {
        value.clone()
    }
}
