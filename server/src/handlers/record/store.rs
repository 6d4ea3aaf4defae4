//! Reads and writes of records through the cache and the storage, with the
//! retrieval timeouts and storage exclusion prefixes of the configuration.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deepstream_protocol::RecordAction;

use crate::config::RecordConfig;
use crate::storage::{Cache, Operation, Storage, StorageError, StoredRecord};

/// How long a write or delete in the cache or the storage may take before it
/// counts as failed. deepstream has no such limit; without one, a hung
/// database would hold a record's queue, and shutdown, indefinitely.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a record could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// The cache did not answer within `record.cacheRetrievalTimeout`.
    #[error("cache read timed out after {0:?}")]
    CacheTimeout(Duration),
    /// The storage did not answer within `record.storageRetrievalTimeout`.
    #[error("storage read timed out after {0:?}")]
    StorageTimeout(Duration),
    /// The cache or the storage reported an error.
    #[error(transparent)]
    Failed(#[from] StorageError),
}

impl LoadError {
    /// Returns the RECORD error action that reports this to a client.
    pub(crate) fn action(&self) -> RecordAction {
        match self {
            LoadError::CacheTimeout(_) => RecordAction::CacheRetrievalTimeout,
            LoadError::StorageTimeout(_) => RecordAction::StorageRetrievalTimeout,
            LoadError::Failed(_) => RecordAction::RecordLoadError,
        }
    }
}

/// The cache and storage of records, as the record handler uses them.
pub(crate) struct Store {
    cache: Arc<dyn Cache>,
    storage: Arc<dyn Storage>,
    config: RecordConfig,
}

impl Store {
    pub(crate) fn new(
        cache: Arc<dyn Cache>,
        storage: Arc<dyn Storage>,
        config: RecordConfig,
    ) -> Store {
        Store {
            cache,
            storage,
            config,
        }
    }

    pub(crate) fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// Returns false for records whose names start with one of
    /// `record.storageExclusionPrefixes`: they live in the cache only.
    pub(crate) fn uses_storage(&self, name: &str) -> bool {
        !self
            .config
            .storage_exclusion_prefixes
            .iter()
            .any(|prefix| name.starts_with(prefix.as_str()))
    }

    /// Returns true for records whose names start with one of
    /// `record.storageHotPathPrefixes`.
    pub(crate) fn is_hot_path(&self, name: &str) -> bool {
        self.config
            .storage_hot_path_prefixes
            .iter()
            .any(|prefix| name.starts_with(prefix.as_str()))
    }

    /// Reads a record from the cache, else from the storage, and copies a
    /// record found in the storage into the cache.
    pub(crate) async fn load(&self, name: &str) -> Result<Option<StoredRecord>, LoadError> {
        let cache_timeout = self.config.cache_retrieval_timeout;
        let cached = tokio::time::timeout(cache_timeout, self.cache.get(name))
            .await
            .map_err(|_| LoadError::CacheTimeout(cache_timeout))??;
        if cached.is_some() || !self.uses_storage(name) {
            return Ok(cached);
        }

        let storage_timeout = self.config.storage_retrieval_timeout;
        let stored = tokio::time::timeout(storage_timeout, self.storage.get(name))
            .await
            .map_err(|_| LoadError::StorageTimeout(storage_timeout))??;
        if let Some(record) = &stored {
            if let Err(error) = self.cache.set(name, record.clone()).await {
                tracing::warn!(record = name, %error, "copying a record from storage into the cache failed");
            }
        }
        Ok(stored)
    }

    /// Writes a record to the cache.
    pub(crate) async fn cache_set(
        &self,
        name: &str,
        record: StoredRecord,
    ) -> Result<(), StorageError> {
        self.cache.set(name, record).await
    }

    /// Writes a record to the storage unless its name is excluded from storage.
    pub(crate) async fn storage_set(
        &self,
        name: &str,
        record: StoredRecord,
    ) -> Result<(), StorageError> {
        if !self.uses_storage(name) {
            return Ok(());
        }
        let description = || self.storage.description();
        bounded(
            self.storage.set(name, record),
            description,
            Operation::Set,
            name,
        )
        .await
    }

    /// Commits what the storage still has queued, waiting at most `limit`.
    pub(crate) async fn close(&self, limit: Duration) -> Result<(), StorageError> {
        match tokio::time::timeout(limit, self.storage.close()).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::Timeout {
                backend: self.storage.description(),
                operation: Operation::Close,
                record: None,
                after: limit,
            }),
        }
    }

    /// Deletes a record from the cache and the storage.
    pub(crate) async fn delete(&self, name: &str) -> Result<(), StorageError> {
        let cache = || self.cache.description();
        bounded(self.cache.delete(name), cache, Operation::Delete, name).await?;
        if self.uses_storage(name) {
            let storage = || self.storage.description();
            bounded(self.storage.delete(name), storage, Operation::Delete, name).await?;
        }
        Ok(())
    }
}

/// Runs a write with [`WRITE_TIMEOUT`].
async fn bounded(
    write: impl Future<Output = Result<(), StorageError>>,
    backend: impl FnOnce() -> String,
    operation: Operation,
    name: &str,
) -> Result<(), StorageError> {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(result) => result,
        Err(_) => Err(StorageError::Timeout {
            backend: backend(),
            operation,
            record: Some(name.to_owned()),
            after: WRITE_TIMEOUT,
        }),
    }
}
