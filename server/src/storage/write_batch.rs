//! Group commit, shared by the backends whose commits are expensive. Callers queue their
//! writes, and one committer takes everything queued, commits it in one transaction and then
//! sends each caller its result.
//!
//! Under load the queue fills while the previous transaction commits, so the cost of a commit
//! (an fsync, a round trip) is paid once per batch rather than once per write.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use super::{Operation, StorageError, StoredRecord};

/// The maximum number of writes in one transaction. It bounds the time a caller waits for the
/// writes queued before its own.
const MAX_BATCH_WRITES: usize = 1024;

/// The maximum data bytes in one transaction, so that large records do not build a
/// transaction of unbounded size. A single larger record still forms a batch of its own.
const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// The number of writes that may wait in the queue before callers wait to enqueue.
const QUEUE_CAPACITY: usize = 8192;

/// A change to one record.
#[derive(Debug)]
pub(super) enum Write {
    /// Store this version and data.
    Set(StoredRecord),
    /// Remove the record.
    Delete,
}

/// A write waiting for its transaction, with the channel that returns the result to its caller.
#[derive(Debug)]
pub(super) struct QueuedWrite {
    name: String,
    write: Write,
    reply: oneshot::Sender<Result<(), StorageError>>,
}

/// The sending side of a write queue, held by the storage that callers use.
#[derive(Debug)]
pub(super) struct WriteQueue {
    /// `None` once the queue is closed.
    sender: Mutex<Option<mpsc::Sender<QueuedWrite>>>,
}

/// The writes taken from the queue for one transaction, in queue order.
#[derive(Debug)]
pub(super) struct Batch {
    writes: Vec<QueuedWrite>,
    bytes: usize,
}

impl Write {
    /// Returns the operation that queued this write.
    pub(super) fn operation(&self) -> Operation {
        match self {
            Write::Set(_) => Operation::Set,
            Write::Delete => Operation::Delete,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            Write::Set(record) => record.data.len(),
            Write::Delete => 0,
        }
    }
}

impl WriteQueue {
    /// Creates a queue and returns the receiving side for the committer.
    pub(super) fn new() -> (WriteQueue, mpsc::Receiver<QueuedWrite>) {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let queue = WriteQueue {
            sender: Mutex::new(Some(sender)),
        };
        (queue, receiver)
    }

    /// Queues a write and waits for the committer's result, which is `Ok` once the write's
    /// transaction is committed.
    ///
    /// # Errors
    ///
    /// The committer's error for the transaction, or [`StorageError::Closed`] when the queue
    /// was closed or the committer stopped before sending a result.
    pub(super) async fn submit(
        &self,
        name: &str,
        write: Write,
        backend: impl Fn() -> String,
    ) -> Result<(), StorageError> {
        let operation = write.operation();
        let closed = || StorageError::Closed {
            backend: backend(),
            operation,
            record: Some(name.to_owned()),
        };
        let Some(sender) = self.sender() else {
            return Err(closed());
        };

        let (reply, result) = oneshot::channel();
        let queued = QueuedWrite {
            name: name.to_owned(),
            write,
            reply,
        };
        let sent = sender.send(queued).await;
        // The committer stops once every sender is gone, so the clone must not live on while
        // this caller waits for its result.
        drop(sender);
        if sent.is_err() {
            return Err(closed());
        }
        result.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Closes the queue. Writes already queued are still committed, and later ones fail with
    /// [`StorageError::Closed`]. Returns false when it was closed already.
    pub(super) fn close(&self) -> bool {
        self.lock().take().is_some()
    }

    fn sender(&self) -> Option<mpsc::Sender<QueuedWrite>> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<mpsc::Sender<QueuedWrite>>> {
        // The guarded value is an Option that is only replaced whole, so a poisoned lock
        // still contains a valid value.
        self.sender.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Batch {
    /// Starts a batch with `first` and adds every write already queued, up to the batch
    /// limits, without waiting for more.
    pub(super) fn fill(first: QueuedWrite, receiver: &mut mpsc::Receiver<QueuedWrite>) -> Batch {
        let mut batch = Batch {
            bytes: first.write.data_len(),
            writes: vec![first],
        };
        while batch.writes.len() < MAX_BATCH_WRITES && batch.bytes < MAX_BATCH_BYTES {
            match receiver.try_recv() {
                Ok(queued) => {
                    batch.bytes += queued.write.data_len();
                    batch.writes.push(queued);
                }
                Err(_empty_or_closed) => break,
            }
        }
        batch
    }

    /// Returns the number of writes in the batch, counting each queued write.
    pub(super) fn len(&self) -> usize {
        self.writes.len()
    }

    /// Returns the last write queued for each record, in the order of those last writes.
    /// Earlier writes to the same record are replaced by it, as if they had committed first.
    pub(super) fn latest(&self) -> Vec<(&str, &Write)> {
        let mut last_index: HashMap<&str, usize> = HashMap::with_capacity(self.writes.len());
        for (index, queued) in self.writes.iter().enumerate() {
            last_index.insert(&queued.name, index);
        }
        self.writes
            .iter()
            .enumerate()
            .filter(|(index, queued)| last_index.get(queued.name.as_str()) == Some(index))
            .map(|(_, queued)| (queued.name.as_str(), &queued.write))
            .collect()
    }

    /// Sends every caller the result for its record and write. A caller whose future was
    /// dropped is skipped.
    pub(super) fn send_results(
        self,
        mut outcome: impl FnMut(&str, &Write) -> Result<(), StorageError>,
    ) {
        for queued in self.writes {
            let result = outcome(&queued.name, &queued.write);
            let _caller_gone = queued.reply.send(result);
        }
    }
}
