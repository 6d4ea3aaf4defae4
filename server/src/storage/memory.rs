//! The in-process backends: [`MemoryCache`], the default cache, and [`MemoryStorage`].

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{Cache, HeadBulk, Storage, StorageError, StoredRecord};

/// The number of shards. Tasks working on different records rarely wait for the same lock.
const SHARDS: usize = 64;

/// The default cache: every record in maps in this process, sharded by name, with no eviction
/// (like deepstream's local cache). Its memory grows with the number of records written.
#[derive(Debug, Default)]
pub struct MemoryCache {
    map: ShardedMap,
}

/// A storage that keeps records in this process only (`storage: {type: memory}`), so they are
/// lost when the server stops. Meant for tests and throwaway servers.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    map: ShardedMap,
}

/// Names to records in shards, each behind a mutex that is held only for one map operation.
#[derive(Debug)]
struct ShardedMap {
    shards: Box<[Mutex<HashMap<String, StoredRecord>>]>,
}

impl MemoryCache {
    /// Creates an empty cache.
    pub fn new() -> MemoryCache {
        MemoryCache::default()
    }
}

impl MemoryStorage {
    /// Creates an empty storage.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }
}

impl ShardedMap {
    fn get(&self, name: &str) -> Option<StoredRecord> {
        self.shard(name).get(name).cloned()
    }

    fn set(&self, name: &str, record: StoredRecord) {
        self.shard(name).insert(name.to_owned(), record);
    }

    fn delete(&self, name: &str) {
        self.shard(name).remove(name);
    }

    fn version(&self, name: &str) -> Option<i32> {
        self.shard(name).get(name).map(|record| record.version)
    }

    fn shard(&self, name: &str) -> MutexGuard<'_, HashMap<String, StoredRecord>> {
        let mut hasher = DefaultHasher::new();
        name.hash(&mut hasher);
        // The remainder is below SHARDS, so the cast back cannot truncate.
        let index = (hasher.finish() % SHARDS as u64) as usize;
        // A panic while a lock was held left the map consistent, because every change is a
        // single insert or remove, so a poisoned lock is still safe to use.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ShardedMap {
    fn default() -> Self {
        ShardedMap {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StorageError> {
        Ok(self.map.get(name))
    }

    async fn set(&self, name: &str, record: StoredRecord) -> Result<(), StorageError> {
        self.map.set(name, record);
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.map.delete(name);
        Ok(())
    }

    async fn delete_bulk(&self, names: &[String]) -> Result<(), StorageError> {
        for name in names {
            self.map.delete(name);
        }
        Ok(())
    }

    async fn head_bulk(&self, names: &[String]) -> Result<HeadBulk, StorageError> {
        let mut head = HeadBulk::default();
        for name in names {
            match self.map.version(name) {
                Some(version) => {
                    head.versions.insert(name.clone(), version);
                }
                None => head.missing.push(name.clone()),
            }
        }
        Ok(head)
    }

    fn description(&self) -> String {
        "memory cache".to_owned()
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StorageError> {
        Ok(self.map.get(name))
    }

    async fn set(&self, name: &str, record: StoredRecord) -> Result<(), StorageError> {
        self.map.set(name, record);
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.map.delete(name);
        Ok(())
    }

    fn description(&self) -> String {
        "memory storage (not persistent)".to_owned()
    }
}
