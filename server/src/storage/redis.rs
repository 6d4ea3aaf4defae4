//! The Redis cache: one hash per record, with the version and the data in separate fields.

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo,
};

use super::{BoxError, Cache, HeadBulk, Operation, StorageError, StoredRecord};
use crate::config::{RedisConfig, RedisConnection};

/// The hash field that contains the version, as decimal text.
const VERSION_FIELD: &str = "v";
/// The hash field that contains the data, as JSON text.
const DATA_FIELD: &str = "d";

/// The maximum number of keys in one `DEL` command of [`Cache::delete_bulk`].
const DELETE_CHUNK: usize = 1024;

/// A cache in a Redis server (`cache: {type: redis}` or `{name: redis}`).
///
/// Each record is a hash at `keyPrefix` + name with the fields `v` (the version) and `d` (the
/// data), so that [`Cache::head_bulk`] reads only versions: one `HGET` per name, all in one
/// pipeline and one round trip. A write is one `HSET` of both fields, so a reader never sees
/// the version of one write with the data of another. With `ttl` set, the write and its
/// `EXPIRE` run in one `MULTI` transaction.
///
/// The layout differs from deepstream's Redis connector (two string keys per record), so the
/// Node.js server and this one cannot share cached records. The connection reconnects by
/// itself; operations fail while it is down. Connections do not use TLS.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    key_prefix: String,
    ttl_seconds: Option<u64>,
    description: String,
}

impl RedisCache {
    /// Connects to Redis and checks the connection with `PING`.
    ///
    /// # Errors
    ///
    /// [`StorageError::Open`] when the server cannot be reached in time or rejects the
    /// password.
    pub async fn connect(config: &RedisConfig) -> Result<RedisCache, StorageError> {
        let info = connection_info(config)?;
        let description = describe(&info);
        let open_error = |source: BoxError| StorageError::Open {
            backend: description.clone(),
            hint: "Check that Redis is running and reachable at this address, and that \
                   `cache.options` (host, port, password, db or url) are right"
                .to_owned(),
            source,
        };
        let client = Client::open(info).map_err(|error| open_error(Box::new(error)))?;

        // A single attempt, so that a wrong address fails at start-up at once rather than
        // after the connection manager's retries.
        let probe_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout));
        let mut probe = client
            .get_multiplexed_async_connection_with_config(&probe_config)
            .await
            .map_err(|error| open_error(Box::new(error)))?;
        redis::cmd("PING")
            .query_async::<()>(&mut probe)
            .await
            .map_err(|error| open_error(Box::new(error)))?;
        drop(probe);

        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout));
        let connection = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(|error| open_error(Box::new(error)))?;

        tracing::info!(cache = %description, "connected to Redis");
        Ok(RedisCache {
            connection,
            key_prefix: config.key_prefix.clone(),
            ttl_seconds: config.ttl.map(|ttl| ttl.as_secs()),
            description,
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.key_prefix)
    }

    fn error(&self, operation: Operation, name: Option<&str>, source: BoxError) -> StorageError {
        StorageError::Operation {
            backend: self.description.clone(),
            operation,
            record: name.map(str::to_owned),
            source,
        }
    }

    fn invalid_value(&self, name: &str, detail: impl Into<String>) -> StorageError {
        StorageError::InvalidStoredValue {
            backend: self.description.clone(),
            operation: Operation::Get,
            record: name.to_owned(),
            detail: detail.into(),
        }
    }
}

/// Builds the connection settings from the config. The URL was checked when the config was
/// loaded, but a failure here is still reported rather than assumed impossible.
fn connection_info(config: &RedisConfig) -> Result<redis::ConnectionInfo, StorageError> {
    match &config.connection {
        RedisConnection::Url(url) => {
            url.expose()
                .into_connection_info()
                .map_err(|error| StorageError::Open {
                    backend: "Redis cache".to_owned(),
                    hint: "Check `cache.options.url`".to_owned(),
                    source: Box::new(error),
                })
        }
        RedisConnection::Parameters {
            host,
            port,
            username,
            password,
            db,
        } => {
            let mut settings = RedisConnectionInfo::default().set_db(*db);
            if let Some(username) = username {
                settings = settings.set_username(username);
            }
            if let Some(password) = password {
                settings = settings.set_password(password.expose());
            }
            let info = ConnectionAddr::Tcp(host.clone(), *port)
                .into_connection_info()
                .map_err(|error| StorageError::Open {
                    backend: format!("Redis cache at {host}:{port}"),
                    hint: "Check `cache.options.host` and `cache.options.port`".to_owned(),
                    source: Box::new(error),
                })?;
            Ok(info.set_redis_settings(settings))
        }
    }
}

/// Describes the server without the password, such as `Redis cache at 127.0.0.1:6379 (db 0)`.
fn describe(info: &redis::ConnectionInfo) -> String {
    let address = match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
        ConnectionAddr::Unix(path) => path.display().to_string(),
        other => format!("{other}"),
    };
    format!(
        "Redis cache at {address} (db {})",
        info.redis_settings().db()
    )
}

/// Parses the version field, which this cache writes as decimal text.
fn parse_version(bytes: &[u8]) -> Option<i32> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StorageError> {
        let mut connection = self.connection.clone();
        let (version, data): (Option<Bytes>, Option<Bytes>) = redis::cmd("HMGET")
            .arg(self.key(name))
            .arg(VERSION_FIELD)
            .arg(DATA_FIELD)
            .query_async(&mut connection)
            .await
            .map_err(|error| self.error(Operation::Get, Some(name), Box::new(error)))?;

        match (version, data) {
            (None, None) => Ok(None),
            (Some(version), Some(data)) => {
                let version = parse_version(&version).ok_or_else(|| {
                    self.invalid_value(name, "the version field `v` is not a whole number")
                })?;
                Ok(Some(StoredRecord { version, data }))
            }
            (Some(_), None) => Err(self.invalid_value(name, "the hash has no data field `d`")),
            (None, Some(_)) => Err(self.invalid_value(name, "the hash has no version field `v`")),
        }
    }

    async fn set(&self, name: &str, record: StoredRecord) -> Result<(), StorageError> {
        let mut connection = self.connection.clone();
        let key = self.key(name);
        let mut pipeline = redis::pipe();
        if self.ttl_seconds.is_some() {
            pipeline.atomic();
        }
        pipeline
            .cmd("HSET")
            .arg(&key)
            .arg(VERSION_FIELD)
            .arg(record.version)
            .arg(DATA_FIELD)
            .arg(record.data.as_ref())
            .ignore();
        if let Some(ttl) = self.ttl_seconds {
            pipeline.cmd("EXPIRE").arg(&key).arg(ttl).ignore();
        }
        pipeline
            .query_async::<()>(&mut connection)
            .await
            .map_err(|error| self.error(Operation::Set, Some(name), Box::new(error)))
    }

    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        let mut connection = self.connection.clone();
        redis::cmd("DEL")
            .arg(self.key(name))
            .query_async::<()>(&mut connection)
            .await
            .map_err(|error| self.error(Operation::Delete, Some(name), Box::new(error)))
    }

    async fn delete_bulk(&self, names: &[String]) -> Result<(), StorageError> {
        if names.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        let mut pipeline = redis::pipe();
        for chunk in names.chunks(DELETE_CHUNK) {
            let keys: Vec<String> = chunk.iter().map(|name| self.key(name)).collect();
            pipeline.cmd("DEL").arg(keys).ignore();
        }
        pipeline
            .query_async::<()>(&mut connection)
            .await
            .map_err(|error| self.error(Operation::DeleteBulk, None, Box::new(error)))
    }

    async fn head_bulk(&self, names: &[String]) -> Result<HeadBulk, StorageError> {
        if names.is_empty() {
            return Ok(HeadBulk::default());
        }
        let mut connection = self.connection.clone();
        let mut pipeline = redis::pipe();
        for name in names {
            pipeline.cmd("HGET").arg(self.key(name)).arg(VERSION_FIELD);
        }
        let versions: Vec<Option<Bytes>> = pipeline
            .query_async(&mut connection)
            .await
            .map_err(|error| self.error(Operation::HeadBulk, None, Box::new(error)))?;

        let mut head = HeadBulk::default();
        for (name, version) in names.iter().zip(versions) {
            match version {
                Some(bytes) => {
                    let version =
                        parse_version(&bytes).ok_or_else(|| StorageError::InvalidStoredValue {
                            backend: self.description.clone(),
                            operation: Operation::HeadBulk,
                            record: name.clone(),
                            detail: "the version field `v` is not a whole number".to_owned(),
                        })?;
                    head.versions.insert(name.clone(), version);
                }
                None => head.missing.push(name.clone()),
            }
        }
        Ok(head)
    }

    fn description(&self) -> String {
        self.description.clone()
    }
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("description", &self.description)
            .field("key_prefix", &self.key_prefix)
            .field("ttl_seconds", &self.ttl_seconds)
            .finish_non_exhaustive()
    }
}
