//! The worker that applies the queued operations of one record in order.
//!
//! A worker lives while its record has queued operations. It keeps the
//! record's current state between operations, so a burst of writes reads the
//! cache once. Consecutive writes are applied together: each is checked and
//! applied in memory, then the cache gets the final state once, every applied
//! update is sent to the subscribers in order, the storage gets the final
//! state once, and only then are the write acknowledgements sent.

use std::sync::Arc;

use bytes::Bytes;
use deepstream_protocol::json_path::JsonPath;
use deepstream_protocol::{RecordAction, RecordMessage};
use serde_json::Value;
use tokio::sync::oneshot;

use super::RecordHandler;
use super::messages::{self, EMPTY_OBJECT, WriteAck};
use crate::peer::Peer;
use crate::registry::lock;
use crate::storage::StoredRecord;

/// The delay before the first retry of a failed storage write; it doubles with
/// each further attempt, up to [`PERSIST_RETRY_MAX`].
const PERSIST_RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
const PERSIST_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// One queued operation on a record.
pub(super) enum Op {
    /// SUBSCRIBECREATEANDREAD or SUBSCRIBEANDREAD of one name.
    SubscribeRead {
        peer: Arc<Peer>,
        create: bool,
        action: RecordAction,
    },
    /// READ: a snapshot.
    Read { peer: Arc<Peer> },
    /// HEAD: the version only.
    Head { peer: Arc<Peer> },
    /// A validated write.
    Write(Write),
    /// DELETE from `peer`, or one name of a DELETE_BULK reporting to `done`.
    Delete {
        peer: Option<Arc<Peer>>,
        done: Option<oneshot::Sender<bool>>,
    },
    /// NOTIFY: re-read from storage and send the result to every subscriber.
    Reload { done: oneshot::Sender<bool> },
    /// Writes the current state to the storage again after a failed write.
    /// `attempt` counts the retries, for the back-off.
    Persist { attempt: u32 },
}

/// A write that passed validation.
pub(super) struct Write {
    pub(super) peer: Arc<Peer>,
    pub(super) action: RecordAction,
    pub(super) kind: WriteKind,
    /// The version the writer expects to create; -1 takes the next one.
    pub(super) version: i32,
    /// Creates the record when it does not exist (CREATEANDUPDATE, CREATEANDPATCH).
    pub(super) upsert: bool,
    /// Skips the version check (`record.storageHotPathPrefixes`).
    pub(super) hot_path: bool,
    pub(super) ack: WriteAck,
}

pub(super) enum WriteKind {
    Update {
        data: Bytes,
    },
    Patch {
        path: JsonPath,
        text: String,
        value: Value,
        raw: Bytes,
    },
    Erase {
        path: JsonPath,
        text: String,
    },
}

/// The operations a worker takes from the queue at once.
pub(super) enum Batch {
    One(Op),
    Writes(Vec<Write>),
}

/// The worker's knowledge of the record.
enum Current {
    /// Not read yet, or dropped by NOTIFY.
    Unknown,
    Missing,
    Present(StoredRecord),
}

/// A write applied in memory, waiting to be persisted and announced.
struct Applied {
    write: Write,
    version: i32,
}

impl RecordHandler {
    pub(super) async fn run_worker(self: Arc<Self>, name: Arc<str>) {
        let mut current = Current::Unknown;
        while let Some(batch) = self.next_batch(&name) {
            match batch {
                Batch::One(op) => self.run_op(&name, op, &mut current).await,
                Batch::Writes(writes) => self.run_writes(&name, writes, &mut current).await,
            }
        }
    }

    /// Loads the record unless the worker already has its state.
    async fn ensure_loaded(
        &self,
        name: &str,
        current: &mut Current,
    ) -> Result<(), super::store::LoadError> {
        if matches!(current, Current::Unknown) {
            *current = match self.store.load(name).await? {
                Some(record) => Current::Present(record),
                None => Current::Missing,
            };
        }
        Ok(())
    }

    async fn run_op(&self, name: &str, op: Op, current: &mut Current) {
        if let Op::Reload { .. } = op {
            *current = Current::Unknown;
        }
        let loaded = match op {
            Op::Delete { .. } => Ok(()),
            _ => self.ensure_loaded(name, current).await,
        };

        match op {
            Op::SubscribeRead {
                peer,
                create,
                action,
            } => {
                if let Err(error) = loaded {
                    tracing::error!(record = name, %error, "loading a record failed");
                    return peer.send(messages::error(
                        error.action(),
                        action,
                        name,
                        &WriteAck::default(),
                    ));
                }
                let (version, data) = match &*current {
                    Current::Present(record) => (record.version, record.data.clone()),
                    Current::Missing if create => match self.create(name).await {
                        Ok(record) => {
                            let reply = (record.version, record.data.clone());
                            *current = Current::Present(record);
                            reply
                        }
                        Err(()) => {
                            let reply = RecordAction::RecordCreateError;
                            return peer.send(messages::error(
                                reply,
                                action,
                                name,
                                &WriteAck::default(),
                            ));
                        }
                    },
                    _ => (-1, Bytes::from_static(EMPTY_OBJECT)),
                };
                self.add_subscriber(&peer, name, action);
                peer.send(messages::read_response(name, version, data));
            }
            Op::Read { peer } => {
                let reply = match (loaded, &*current) {
                    (Err(error), _) => messages::error(
                        error.action(),
                        RecordAction::Read,
                        name,
                        &WriteAck::default(),
                    ),
                    (Ok(()), Current::Present(record)) => {
                        messages::read_response(name, record.version, record.data.clone())
                    }
                    (Ok(()), _) => messages::error(
                        RecordAction::RecordNotFound,
                        RecordAction::Read,
                        name,
                        &WriteAck::default(),
                    ),
                };
                peer.send(reply);
            }
            Op::Head { peer } => {
                let reply = match (loaded, &*current) {
                    (Err(error), _) => messages::error(
                        error.action(),
                        RecordAction::Head,
                        name,
                        &WriteAck::default(),
                    ),
                    (Ok(()), Current::Present(record)) => {
                        messages::head_response(name, record.version)
                    }
                    (Ok(()), _) => messages::head_response(name, -1),
                };
                peer.send(reply);
            }
            Op::Delete { peer, done } => {
                let deleted = self.delete(name, peer.as_ref()).await;
                if deleted {
                    *current = Current::Missing;
                } else {
                    *current = Current::Unknown;
                }
                if let Some(done) = done {
                    let _ = done.send(deleted);
                }
            }
            Op::Persist { attempt } => self.persist(name, attempt, loaded, current).await,
            Op::Reload { done } => {
                let reloaded = match (loaded, &*current) {
                    (Err(error), _) => {
                        tracing::error!(record = name, %error, "re-reading a notified record failed");
                        *current = Current::Unknown;
                        false
                    }
                    (Ok(()), Current::Present(record)) => {
                        let update = RecordMessage {
                            action: RecordAction::Update.into(),
                            name: name.to_owned(),
                            version: Some(record.version),
                            data: record.data.clone(),
                            ..Default::default()
                        };
                        self.subscriptions
                            .send(name, &messages::encode(&update), None);
                        true
                    }
                    (Ok(()), _) => {
                        self.subscriptions.send(
                            name,
                            &messages::named(RecordAction::Deleted, name),
                            None,
                        );
                        self.remove_all_subscribers(name);
                        true
                    }
                };
                let _ = done.send(reloaded);
            }
            Op::Write(write) => self.run_writes(name, vec![write], current).await,
        }
    }

    /// Writes the record's current state to the storage again, after a write
    /// to the storage failed while the cache and the subscribers already had
    /// the new version. Retries with a growing delay until it succeeds, so the
    /// storage catches up once it is back.
    async fn persist(
        &self,
        name: &str,
        attempt: u32,
        loaded: Result<(), super::store::LoadError>,
        current: &Current,
    ) {
        let result = match (loaded, current) {
            (Ok(()), Current::Present(record)) => {
                self.store.storage_set(name, record.clone()).await
            }
            // Deleted since the failed write: nothing is left to write.
            (Ok(()), _) => Ok(()),
            (Err(error), _) => {
                tracing::warn!(record = name, attempt, %error, "reading a record to retry its storage write failed");
                self.schedule_persist(name, attempt + 1);
                return;
            }
        };
        match result {
            Ok(()) => {
                lock(&self.retrying).remove(name);
                tracing::info!(
                    record = name,
                    attempt,
                    "record written to the storage after an earlier failure"
                );
            }
            Err(error) => {
                tracing::warn!(record = name, attempt, %error, "retrying a storage write failed");
                self.schedule_persist(name, attempt + 1);
            }
        }
    }

    /// Queues a [`Op::Persist`] for the record after a back-off delay, unless
    /// one is already waiting.
    pub(super) fn schedule_persist(&self, name: &str, attempt: u32) {
        if attempt == 1 && !lock(&self.retrying).insert(Arc::from(name)) {
            return;
        }
        let Some(this) = self.this.upgrade() else {
            return;
        };
        let name = name.to_owned();
        let delay = PERSIST_RETRY_FIRST * 2u32.saturating_pow(attempt.saturating_sub(1).min(5));
        let delay = delay.min(PERSIST_RETRY_MAX);
        self.workers.spawn(async move {
            tokio::time::sleep(delay).await;
            this.enqueue(&name, Op::Persist { attempt });
        });
    }

    /// Creates an empty record at version 0, as SUBSCRIBECREATEANDREAD does.
    async fn create(&self, name: &str) -> Result<StoredRecord, ()> {
        let record = StoredRecord {
            version: 0,
            data: Bytes::from_static(EMPTY_OBJECT),
        };
        if let Err(error) = self.store.cache_set(name, record.clone()).await {
            tracing::error!(record = name, %error, "creating a record in the cache failed");
            return Err(());
        }
        if let Err(error) = self.store.storage_set(name, record.clone()).await {
            tracing::error!(record = name, %error, "creating a record in the storage failed");
        }
        Ok(record)
    }

    /// Deletes the record, tells the deleting client and the other subscribers,
    /// and unsubscribes everyone. Returns false when the delete failed.
    async fn delete(&self, name: &str, peer: Option<&Arc<Peer>>) -> bool {
        if let Err(error) = self.store.delete(name).await {
            tracing::error!(record = name, %error, "deleting a record failed");
            if let Some(peer) = peer {
                let reply = messages::error(
                    RecordAction::RecordDeleteError,
                    RecordAction::Delete,
                    name,
                    &WriteAck::default(),
                );
                peer.send(reply);
            }
            return false;
        }
        tracing::debug!(record = name, "record deleted");
        if let Some(peer) = peer {
            peer.send(messages::named(RecordAction::DeleteSuccess, name));
        }
        let except = peer.map(|peer| peer.id());
        self.subscriptions
            .send(name, &messages::named(RecordAction::Deleted, name), except);
        self.remove_all_subscribers(name);
        true
    }

    async fn run_writes(&self, name: &str, writes: Vec<Write>, current: &mut Current) {
        if let Err(error) = self.ensure_loaded(name, current).await {
            tracing::error!(record = name, %error, "loading a record for a write failed");
            for write in writes {
                write.peer.send(messages::error(
                    error.action(),
                    write.action,
                    name,
                    &write.ack,
                ));
            }
            return;
        }

        let mut state = match &*current {
            Current::Present(record) => Some(record.clone()),
            _ => None,
        };
        let mut applied = Vec::with_capacity(writes.len());
        for write in writes {
            if let Some(version) = apply(name, &write, &mut state) {
                applied.push(Applied { write, version });
            }
        }
        let Some(record) = state.filter(|_| !applied.is_empty()) else {
            return;
        };

        if let Err(error) = self.store.cache_set(name, record.clone()).await {
            tracing::error!(record = name, %error, "writing a record to the cache failed");
            *current = Current::Unknown;
            for Applied { write, .. } in &applied {
                let reason = "writing the record to the cache failed";
                write.peer.send(messages::error_with_reason(
                    RecordAction::RecordUpdateError,
                    write.action,
                    name,
                    &write.ack,
                    reason,
                ));
            }
            return;
        }
        *current = Current::Present(record.clone());
        for Applied { write, version } in &applied {
            self.subscriptions.send(
                name,
                &update_frame(name, write, *version),
                Some(write.peer.id()),
            );
        }

        let stored = self.store.storage_set(name, record).await;
        if let Err(error) = &stored {
            tracing::error!(record = name, %error, "writing a record to the storage failed; retrying in the background");
            self.schedule_persist(name, 1);
        }
        for Applied { write, .. } in &applied {
            let Some(correlation_id) = &write.ack.correlation_id else {
                continue;
            };
            let reply = match &stored {
                Ok(()) => messages::write_acknowledgement(name, correlation_id),
                Err(_) => messages::error_with_reason(
                    RecordAction::RecordUpdateError,
                    write.action,
                    name,
                    &write.ack,
                    "writing the record to the storage failed",
                ),
            };
            write.peer.send(reply);
        }
    }
}

/// Checks one write against the record's state and applies it in memory.
/// Returns the new version, or None after telling the writer why not.
fn apply(name: &str, write: &Write, state: &mut Option<StoredRecord>) -> Option<i32> {
    let reject = |frame: Bytes| {
        write.peer.send(frame);
        None
    };
    let base = match state {
        Some(record) => record.clone(),
        None if write.upsert || write.hot_path => StoredRecord {
            version: 0,
            data: Bytes::from_static(EMPTY_OBJECT),
        },
        None => {
            let reason = "the record does not exist";
            return reject(messages::error_with_reason(
                RecordAction::RecordUpdateError,
                write.action,
                name,
                &write.ack,
                reason,
            ));
        }
    };

    let version = if write.hot_path || write.version == -1 {
        base.version + 1
    } else {
        write.version
    };
    if version > base.version + 1 {
        tracing::debug!(
            record = name,
            version,
            current = base.version,
            "write skips versions"
        );
        return reject(messages::invalid_version(
            write.action,
            name,
            base.version,
            &write.ack,
        ));
    }
    if version <= base.version {
        tracing::debug!(
            record = name,
            version,
            current = base.version,
            "write of an existing version"
        );
        return reject(messages::version_exists(
            write.action,
            name,
            base.version,
            base.data,
            &write.ack,
        ));
    }

    let data = match &write.kind {
        WriteKind::Update { data } => data.clone(),
        WriteKind::Patch { path, value, .. } => {
            match edit(&base.data, |root| path.set(root, value.clone())) {
                Ok(data) => data,
                Err(reason) => {
                    return reject(messages::error_with_reason(
                        RecordAction::RecordUpdateError,
                        write.action,
                        name,
                        &write.ack,
                        &reason,
                    ));
                }
            }
        }
        WriteKind::Erase { path, .. } => match edit(&base.data, |root| path.erase(root)) {
            Ok(data) => data,
            Err(reason) => {
                return reject(messages::error_with_reason(
                    RecordAction::RecordUpdateError,
                    write.action,
                    name,
                    &write.ack,
                    &reason,
                ));
            }
        },
    };
    *state = Some(StoredRecord { version, data });
    Some(version)
}

/// Parses the record's data, changes it and serializes it again.
fn edit<E: std::fmt::Display>(
    data: &[u8],
    change: impl FnOnce(&mut Value) -> Result<(), E>,
) -> Result<Bytes, String> {
    let mut root: Value = serde_json::from_slice(data)
        .map_err(|error| format!("the stored record is not valid JSON: {error}"))?;
    change(&mut root).map_err(|error| error.to_string())?;
    Ok(Bytes::from(
        serde_json::to_vec(&root).expect("a JSON value always serializes"),
    ))
}

/// Builds the message that announces an applied write to the other subscribers.
fn update_frame(name: &str, write: &Write, version: i32) -> Bytes {
    let mut message = RecordMessage {
        name: name.to_owned(),
        version: Some(version),
        ..Default::default()
    };
    match &write.kind {
        WriteKind::Update { data } => {
            message.action = RecordAction::Update.into();
            message.data = data.clone();
        }
        WriteKind::Patch { text, raw, .. } => {
            message.action = RecordAction::Patch.into();
            message.path = text.clone();
            message.data = raw.clone();
        }
        WriteKind::Erase { text, .. } => {
            message.action = RecordAction::Erase.into();
            message.path = text.clone();
        }
    }
    messages::encode(&message)
}
