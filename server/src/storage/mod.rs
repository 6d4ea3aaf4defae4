//! Where records live: a cache in front of a persistent storage, as in deepstream's storage and
//! cache API version 2.
//!
//! A record is stored as its version and its data, the data as JSON text in [`Bytes`] that a
//! backend passes through unparsed unless it needs a document (PostgreSQL's `jsonb` column).
//! The [`Cache`] is read first and returns the versions for bulk subscriptions
//! ([`Cache::head_bulk`]). The [`Storage`] is the durable copy. Both are trait objects chosen by the `cache` and `storage`
//! sections of the config and built by [`open`]:
//!
//! | section | type | implementation |
//! |---|---|---|
//! | `cache` | `default` | [`MemoryCache`]: sharded maps in this process, no eviction |
//! | `cache` | `redis` | [`RedisCache`]: one Redis hash per record |
//! | `storage` | `default` | [`EmbeddedStorage`]: a redb file, commits grouped across writers |
//! | `storage` | `memory` | [`MemoryStorage`]: not persistent, for tests |
//! | `storage` | `postgres` | [`PostgresStorage`]: one table of `(name, version, data jsonb)` |
//!
//! Backends do not check versions. The record handler serializes the operations on one record
//! and decides which version to write; a backend stores what it is given.

mod embedded;
mod error;
mod memory;
mod postgres;
mod redis;
mod write_batch;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::{CacheConfig, Config, StorageConfig};

pub use self::embedded::EmbeddedStorage;
pub use self::error::{BoxError, Operation, StorageError};
pub use self::memory::{MemoryCache, MemoryStorage};
pub use self::postgres::PostgresStorage;
pub use self::redis::RedisCache;

/// A record as stored: its version and its data as JSON text (never parsed by a backend that
/// does not need to).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// The record's version, which the record handler increases by one per write.
    pub version: i32,
    /// The record's data as JSON text.
    pub data: Bytes,
}

/// The result of [`Cache::head_bulk`]: the versions of the records the cache has, and the
/// names it does not have.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeadBulk {
    /// The version of each record found.
    pub versions: BTreeMap<String, i32>,
    /// The names not found, in the order they were requested.
    pub missing: Vec<String>,
}

/// The durable copy of every record (deepstream's storage connector).
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Reads a record. Returns `None` when the storage does not have it.
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StorageError>;

    /// Writes a record, replacing any earlier value. Resolves once the write is durable
    /// (committed).
    async fn set(&self, name: &str, record: StoredRecord) -> Result<(), StorageError>;

    /// Deletes a record. Deleting a record that does not exist succeeds.
    async fn delete(&self, name: &str) -> Result<(), StorageError>;

    /// Returns a description for logs and error messages, such as
    /// `embedded storage at /srv/deepstream-data/records.redb`. It never contains a password.
    fn description(&self) -> String;

    /// Commits pending writes and releases files and connections. Later calls fail with
    /// [`StorageError::Closed`]. The default does nothing, for backends that have nothing
    /// pending.
    async fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The fast copy of the records in use (deepstream's cache connector).
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// Reads a record. Returns `None` when the cache does not have it.
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StorageError>;

    /// Writes a record, replacing any earlier value.
    async fn set(&self, name: &str, record: StoredRecord) -> Result<(), StorageError>;

    /// Deletes a record. Deleting a record that does not exist succeeds.
    async fn delete(&self, name: &str) -> Result<(), StorageError>;

    /// Deletes every named record that the cache has.
    async fn delete_bulk(&self, names: &[String]) -> Result<(), StorageError>;

    /// Reads the versions of the named records, without their data.
    async fn head_bulk(&self, names: &[String]) -> Result<HeadBulk, StorageError>;

    /// Returns a description for logs and error messages, such as `memory cache`. It never
    /// contains a password.
    fn description(&self) -> String;
}

impl dyn Storage {
    /// Reads a record like [`Storage::get`], or fails with [`StorageError::Timeout`] when the
    /// storage takes longer than `limit` (`record.storageRetrievalTimeout`).
    pub async fn get_within(
        &self,
        name: &str,
        limit: Duration,
    ) -> Result<Option<StoredRecord>, StorageError> {
        within(limit, self.get(name), || StorageError::Timeout {
            backend: self.description(),
            operation: Operation::Get,
            record: Some(name.to_owned()),
            after: limit,
        })
        .await
    }
}

impl dyn Cache {
    /// Reads a record like [`Cache::get`], or fails with [`StorageError::Timeout`] when the
    /// cache takes longer than `limit` (`record.cacheRetrievalTimeout`).
    pub async fn get_within(
        &self,
        name: &str,
        limit: Duration,
    ) -> Result<Option<StoredRecord>, StorageError> {
        within(limit, self.get(name), || StorageError::Timeout {
            backend: self.description(),
            operation: Operation::Get,
            record: Some(name.to_owned()),
            after: limit,
        })
        .await
    }
}

/// Builds the cache and the storage that `config` selects: opens the embedded file, or
/// connects to PostgreSQL and Redis and creates the table when it is missing.
///
/// # Errors
///
/// [`StorageError::Open`] naming the backend and what to fix when a file cannot be opened or
/// a server cannot be reached or used.
pub async fn open(config: &Config) -> Result<(Arc<dyn Cache>, Arc<dyn Storage>), StorageError> {
    let storage = open_storage(&config.storage).await?;
    let cache = match open_cache(&config.cache).await {
        Ok(cache) => cache,
        Err(error) => {
            // Commit and release the storage before reporting, so the file is not left locked.
            if let Err(close_error) = storage.close().await {
                tracing::warn!(error = %close_error, "failed to close the storage after the cache failed to open");
            }
            return Err(error);
        }
    };
    tracing::info!(cache = %cache.description(), storage = %storage.description(), "opened the cache and the storage");
    Ok((cache, storage))
}

async fn open_storage(config: &StorageConfig) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(match config {
        StorageConfig::Embedded { path } => Arc::new(EmbeddedStorage::open(path).await?),
        StorageConfig::Memory => Arc::new(MemoryStorage::new()),
        StorageConfig::Postgres(postgres) => Arc::new(PostgresStorage::connect(postgres).await?),
    })
}

async fn open_cache(config: &CacheConfig) -> Result<Arc<dyn Cache>, StorageError> {
    Ok(match config {
        CacheConfig::Memory => Arc::new(MemoryCache::new()),
        CacheConfig::Redis(redis) => Arc::new(RedisCache::connect(redis).await?),
    })
}

/// Runs `future`, or returns the error from `timed_out` once `limit` has passed.
async fn within<T>(
    limit: Duration,
    future: impl Future<Output = Result<T, StorageError>>,
    timed_out: impl FnOnce() -> StorageError,
) -> Result<T, StorageError> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result,
        Err(_elapsed) => Err(timed_out()),
    }
}
