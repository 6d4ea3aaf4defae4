//! The default storage: a [redb](https://docs.rs/redb) file in this process, so that a fresh
//! server keeps its records across restarts with nothing else installed.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::{self, JoinHandle};

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, TableDefinition};
use tokio::sync::mpsc;

use super::write_batch::{Batch, QueuedWrite, Write, WriteQueue};
use super::{BoxError, Operation, Storage, StorageError, StoredRecord};

/// The one table: record name to (version, data as JSON text).
/// The most memory redb's page cache may use. redb's own default is 1 GiB; the memory
/// cache in front of the storage already keeps the records in use, so reads that reach
/// the storage are mostly first reads after a start or a NOTIFY.
const PAGE_CACHE_BYTES: usize = 64 * 1024 * 1024;

const RECORDS: TableDefinition<&str, (i32, &[u8])> = TableDefinition::new("records");

/// A storage in a redb file (`storage: {type: default}`).
///
/// Reads run on tokio's blocking threads in their own read transactions, which redb's MVCC
/// lets run while a write transaction commits, so reads do not wait for the writer.
///
/// Writes go through group commit: a writer thread takes every `set` and `delete` queued
/// while the previous transaction committed, writes them in one transaction and syncs the
/// file once (redb's immediate durability). Only then does each caller get its result. When
/// several writes to one record share a transaction, the last one queued is stored.
///
/// [`EmbeddedStorage::close`] commits what is queued, stops the writer and releases the file.
/// Dropping the storage without closing it does the same, and blocks the dropping thread until
/// the writer has committed what was queued.
///
/// redb keeps recently used pages in memory, up to its default cache size of 1 GiB (redb
/// 2.6), so the process grows with the data read until it reaches that size.
#[derive(Debug)]
pub struct EmbeddedStorage {
    /// The absolute path of the file.
    path: PathBuf,
    /// `None` once closed, which releases the file when no read holds it any more.
    database: RwLock<Option<Arc<Database>>>,
    queue: WriteQueue,
    writer: Mutex<Option<JoinHandle<()>>>,
    commits: Arc<AtomicU64>,
}

impl EmbeddedStorage {
    /// Opens the redb file at `path`, creating it and its folders when missing. A relative
    /// path starts from the current directory.
    ///
    /// # Errors
    ///
    /// [`StorageError::Open`] when a folder cannot be created, when the file is not a redb
    /// database or cannot be read and written, or when another process (or another storage
    /// in this process) has it open.
    pub async fn open(path: impl AsRef<Path>) -> Result<EmbeddedStorage, StorageError> {
        let path = absolute_path(path.as_ref())?;
        let opening = path.clone();
        let database = tokio::task::spawn_blocking(move || open_database(&opening))
            .await
            .map_err(|join_error| open_error(&path, Box::new(join_error), GENERIC_HINT))??;
        let database = Arc::new(database);

        let (queue, receiver) = WriteQueue::new();
        let commits = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            database: database.clone(),
            commits: commits.clone(),
            backend: description(&path),
        };
        let handle = thread::Builder::new()
            .name("redb-writer".to_owned())
            .spawn(move || writer.run(receiver))
            .map_err(|error| open_error(&path, Box::new(error), GENERIC_HINT))?;

        tracing::info!(path = %path.display(), "opened the embedded storage");
        Ok(EmbeddedStorage {
            path,
            database: RwLock::new(Some(database)),
            queue,
            writer: Mutex::new(Some(handle)),
            commits,
        })
    }

    /// Returns the absolute path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the number of transactions committed since the file was opened. Under
    /// concurrent writes it is lower than the number of writes, because of group commit.
    pub fn commit_count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Commits the writes queued so far, stops the writer and releases the file once no read
    /// holds it. Later operations fail with [`StorageError::Closed`]. Closing twice succeeds.
    ///
    /// # Errors
    ///
    /// [`StorageError::Operation`] when the writer thread panicked.
    pub async fn close(&self) -> Result<(), StorageError> {
        self.queue.close();
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let joined = match handle {
            Some(handle) => tokio::task::spawn_blocking(move || handle.join().is_ok())
                .await
                .unwrap_or(false),
            None => true,
        };
        self.database
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();

        if !joined {
            return Err(StorageError::Operation {
                backend: self.description(),
                operation: Operation::Close,
                record: None,
                source: "the writer thread panicked, so queued writes may be lost".into(),
            });
        }
        tracing::info!(path = %self.path.display(), commits = self.commit_count(), "closed the embedded storage");
        Ok(())
    }

    fn database(&self, operation: Operation, name: &str) -> Result<Arc<Database>, StorageError> {
        let database = self
            .database
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        database.ok_or_else(|| StorageError::Closed {
            backend: self.description(),
            operation,
            record: Some(name.to_owned()),
        })
    }

    fn operation_error(&self, operation: Operation, name: &str, source: BoxError) -> StorageError {
        StorageError::Operation {
            backend: self.description(),
            operation,
            record: Some(name.to_owned()),
            source,
        }
    }
}

/// The hint for open failures that have no more specific one.
const GENERIC_HINT: &str = "Check that the folder can be created and written by this user, or \
                            set `storage.options.path` to another file";

/// The writer thread's state: it owns the receiving end of the write queue.
struct Writer {
    database: Arc<Database>,
    commits: Arc<AtomicU64>,
    backend: String,
}

impl Writer {
    /// Commits batches until the queue is closed and empty.
    fn run(self, mut receiver: mpsc::Receiver<QueuedWrite>) {
        while let Some(first) = receiver.blocking_recv() {
            let batch = Batch::fill(first, &mut receiver);
            match commit(&self.database, &batch) {
                Ok(()) => {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                    tracing::trace!(
                        writes = batch.len(),
                        "committed a batch to the embedded storage"
                    );
                    batch.send_results(|_, _| Ok(()));
                }
                Err(error) => {
                    tracing::warn!(%error, writes = batch.len(), backend = %self.backend, "failed to commit a batch of writes");
                    let shared: Arc<dyn std::error::Error + Send + Sync> = Arc::from(error);
                    batch.send_results(|name, write| {
                        Err(StorageError::Operation {
                            backend: self.backend.clone(),
                            operation: write.operation(),
                            record: Some(name.to_owned()),
                            source: Box::new(shared.clone()),
                        })
                    });
                }
            }
        }
    }
}

fn commit(database: &Database, batch: &Batch) -> Result<(), BoxError> {
    let transaction = database.begin_write()?;
    {
        let mut table = transaction.open_table(RECORDS)?;
        for (name, write) in batch.latest() {
            match write {
                Write::Set(record) => {
                    table.insert(name, (record.version, record.data.as_ref()))?;
                }
                Write::Delete => {
                    table.remove(name)?;
                }
            }
        }
    }
    transaction.commit()?;
    Ok(())
}

fn read(database: &Database, name: &str) -> Result<Option<StoredRecord>, BoxError> {
    let transaction = database.begin_read()?;
    let table = transaction.open_table(RECORDS)?;
    let record = table.get(name)?.map(|guard| {
        let (version, data) = guard.value();
        StoredRecord {
            version,
            data: Bytes::copy_from_slice(data),
        }
    });
    Ok(record)
}

/// Creates the folders, opens or creates the file and creates the table, so that reads find
/// it from the start.
fn open_database(path: &Path) -> Result<Database, StorageError> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .map_err(|error| open_error(path, Box::new(error), GENERIC_HINT))?;
    }

    // The v3 file format is the one redb 3 reads, so a later upgrade of the crate keeps the
    // file readable without a migration.
    let database = Database::builder()
        .create_with_file_format_v3(true)
        .set_cache_size(PAGE_CACHE_BYTES)
        .create(path)
        .map_err(|error| {
            let hint = match &error {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    "Another process, or another storage in this process, has the file open. Stop \
                     it, or set `storage.options.path` to another file"
                }
                redb::DatabaseError::Storage(redb::StorageError::Io(io_error))
                    if io_error.kind() != io::ErrorKind::InvalidData =>
                {
                    GENERIC_HINT
                }
                _ => {
                    "Check that the file is a database written by this server, or set \
                     `storage.options.path` to another file"
                }
            };
            open_error(path, Box::new(error), hint)
        })?;

    let transaction = database
        .begin_write()
        .map_err(|error| open_error(path, Box::new(error), GENERIC_HINT))?;
    transaction
        .open_table(RECORDS)
        .map_err(|error| open_error(path, Box::new(error), GENERIC_HINT))?;
    transaction
        .commit()
        .map_err(|error| open_error(path, Box::new(error), GENERIC_HINT))?;
    Ok(database)
}

fn absolute_path(path: &Path) -> Result<PathBuf, StorageError> {
    if path.as_os_str().is_empty() {
        let error = io::Error::new(io::ErrorKind::InvalidInput, "the path is empty");
        return Err(open_error(path, Box::new(error), GENERIC_HINT));
    }
    std::path::absolute(path).map_err(|error| open_error(path, Box::new(error), GENERIC_HINT))
}

fn open_error(path: &Path, source: BoxError, hint: &str) -> StorageError {
    StorageError::Open {
        backend: description(path),
        hint: hint.to_owned(),
        source,
    }
}

fn description(path: &Path) -> String {
    format!("embedded storage at {}", path.display())
}

#[async_trait]
impl Storage for EmbeddedStorage {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StorageError> {
        let database = self.database(Operation::Get, name)?;
        let key = name.to_owned();
        let result = tokio::task::spawn_blocking(move || read(&database, &key))
            .await
            .map_err(|join_error| {
                self.operation_error(Operation::Get, name, Box::new(join_error))
            })?;
        result.map_err(|error| self.operation_error(Operation::Get, name, error))
    }

    async fn set(&self, name: &str, record: StoredRecord) -> Result<(), StorageError> {
        self.queue
            .submit(name, Write::Set(record), || self.description())
            .await
    }

    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.queue
            .submit(name, Write::Delete, || self.description())
            .await
    }

    fn description(&self) -> String {
        description(&self.path)
    }

    async fn close(&self) -> Result<(), StorageError> {
        EmbeddedStorage::close(self).await
    }
}

impl Drop for EmbeddedStorage {
    fn drop(&mut self) {
        if !self.queue.close() {
            return;
        }
        let handle = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "the embedded storage's writer thread panicked, so queued writes may be lost");
        }
    }
}
