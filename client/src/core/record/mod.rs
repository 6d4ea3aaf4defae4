//! Records: versioned JSON documents that the server stores and sends to
//! every subscriber when they change.
//!
//! This follows the official client 7.x (`src/record/record-core.ts`,
//! `record-handler.ts`): a record is read with `SUBSCRIBECREATEANDREAD` in
//! bulk, each local write makes the version one higher and sends `UPDATE`,
//! `PATCH` or `ERASE` with that version, an incoming write whose version is
//! not the next one is merged, and after a reconnection every open record is
//! subscribed again with `SUBSCRIBEANDHEAD` and read again when its version
//! changed. Writes made before a record is ready are applied once it is.
//!
//! The differences from the official client are listed in the crate's
//! documentation.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use deepstream_protocol::json_path::JsonPath;
use deepstream_protocol::{RecordAction, RecordMessage, Topic, TopicMessage};
use indexmap::IndexMap;
use serde_json::Value;

mod api;

use super::Event;
use super::bulk::BulkQueue;
use super::error::{SessionError, action_name};
use super::ids::{RecordId, RecordSubscriptionId, RequestId};
use super::shared::{AckKey, BulkKind, Shared, Timer};
use super::time::TimerId;

/// The reason a record operation failed or was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record name is empty.
    #[error("record name must not be empty")]
    EmptyName,
    /// The data is not valid JSON text.
    #[error("invalid JSON data: {reason}")]
    InvalidJson {
        /// The JSON parser's message.
        reason: String,
    },
    /// Whole-record data must be a JSON object or array.
    #[error("record data must be a JSON object or array")]
    NotAContainer,
    /// The path is invalid, or cannot be applied to the record's data.
    #[error("invalid path: {reason}")]
    InvalidPath {
        /// The problem found.
        reason: String,
    },
    /// The handle is not, or no longer, open.
    #[error("unknown record or subscription handle")]
    UnknownHandle,
    /// The record is not ready yet.
    #[error("record {name:?} is not ready")]
    NotReady {
        /// The record name.
        name: String,
    },
    /// The client is offline: the request was not sent, or the connection was
    /// lost before the answer came.
    #[error("client offline")]
    ClientOffline,
    /// No answer arrived within `record_request_timeout`.
    #[error("no answer from the server in time")]
    Timeout,
    /// The record does not exist (snapshot of a missing record).
    #[error("record {name:?} not found")]
    NotFound {
        /// The record name.
        name: String,
    },
    /// The write was rejected because the record had changed; the merge
    /// strategy has resolved the conflict.
    #[error(
        "record {name:?} changed on the server (version {remote_version}); the write was merged"
    )]
    VersionExists {
        /// The record name.
        name: String,
        /// The version the server had.
        remote_version: i32,
    },
    /// The record was deleted.
    #[error("record {name:?} was deleted")]
    Deleted {
        /// The record name.
        name: String,
    },
    /// The server replied with an error action, such as `MESSAGE_DENIED`
    /// or `RECORD_UPDATE_ERROR`.
    #[error("the server reported {action}")]
    Server {
        /// The error action.
        action: String,
    },
    /// A list entry index is past the end of the list.
    #[error("list entry index {index} is out of range")]
    InvalidIndex {
        /// The index given.
        index: usize,
    },
}

/// The input of a merge strategy: both sides of a conflict, as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeInput {
    /// The record name.
    pub name: String,
    /// This client's data.
    pub local: String,
    /// This client's version.
    pub local_version: i32,
    /// The server's data, `None` when the record was deleted remotely.
    pub remote: Option<String>,
    /// The server's version.
    pub remote_version: i32,
}

type MergeFn = dyn Fn(&MergeInput) -> Result<String, String> + Send + Sync;

/// The rule that resolves a version conflict.
#[derive(Clone, Default)]
pub enum MergeStrategy {
    /// Take the server's data, as the official client does by default.
    #[default]
    RemoteWins,
    /// Keep this client's data and write it again.
    LocalWins,
    /// Let a function choose: it returns the merged data as JSON text, or an
    /// error message, after which the record keeps its local data until the
    /// next update.
    Custom(Arc<MergeFn>),
}

impl MergeStrategy {
    /// Creates a custom strategy from a function.
    pub fn custom(
        merge: impl Fn(&MergeInput) -> Result<String, String> + Send + Sync + 'static,
    ) -> MergeStrategy {
        MergeStrategy::Custom(Arc::new(merge))
    }
}

impl fmt::Debug for MergeStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeStrategy::RemoteWins => f.write_str("RemoteWins"),
            MergeStrategy::LocalWins => f.write_str("LocalWins"),
            MergeStrategy::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl PartialEq for MergeStrategy {
    fn eq(&self, other: &MergeStrategy) -> bool {
        match (self, other) {
            (MergeStrategy::RemoteWins, MergeStrategy::RemoteWins)
            | (MergeStrategy::LocalWins, MergeStrategy::LocalWins) => true,
            (MergeStrategy::Custom(a), MergeStrategy::Custom(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Waiting for the first `READ_RESPONSE`.
    Subscribing,
    /// Data and version are known.
    Ready,
    /// Subscribed again after a reconnection, waiting for `HEAD_RESPONSE`.
    Resubscribing,
    /// Waiting for a `READ_RESPONSE` to merge with.
    Merging,
}

#[derive(Debug)]
struct PendingWrite {
    path: Option<JsonPath>,
    value: Option<Value>,
    request: Option<RequestId>,
}

#[derive(Debug)]
struct Subscription {
    id: RecordSubscriptionId,
    handle: RecordId,
    path: Option<JsonPath>,
}

#[derive(Debug)]
struct RecordState {
    status: Status,
    version: Option<i32>,
    data: Value,
    /// Local writes made while offline, not yet sent.
    dirty: bool,
    handles: Vec<RecordId>,
    /// The handles whose open has not ended yet: they get
    /// `Event::RecordReady` once the record is ready, or
    /// `Event::RecordReadFailed`. Empty whenever the status is `Ready`.
    opening: Vec<RecordId>,
    subscriptions: Vec<Subscription>,
    pending_writes: Vec<PendingWrite>,
    merge: Option<MergeStrategy>,
    read_timer: Option<TimerId>,
    has_provider: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiting {
    WriteAck { correlation_id: String },
    Snapshot { name: String },
    Head { name: String },
    Delete { name: String },
    Notify { correlation_id: String },
}

#[derive(Debug)]
pub(crate) struct RecordHandler {
    records: IndexMap<String, RecordState>,
    handles: HashMap<RecordId, String>,
    subscriptions: HashMap<RecordSubscriptionId, String>,
    waiting: IndexMap<RequestId, (Waiting, Option<TimerId>)>,
    next_write_ack: u64,
    bulk_read: BulkQueue,
    bulk_head: BulkQueue,
}

impl RecordHandler {
    pub(crate) fn new() -> RecordHandler {
        RecordHandler {
            records: IndexMap::new(),
            handles: HashMap::new(),
            subscriptions: HashMap::new(),
            waiting: IndexMap::new(),
            next_write_ack: 1,
            bulk_read: BulkQueue::new(
                BulkKind::RecordRead,
                Topic::Record,
                RecordAction::Subscribecreateandread.into(),
                RecordAction::Unsubscribe.into(),
            ),
            bulk_head: BulkQueue::new(
                BulkKind::RecordHead,
                Topic::Record,
                RecordAction::Subscribeandhead.into(),
                RecordAction::Unsubscribe.into(),
            ),
        }
    }

    pub(crate) fn flush(&mut self, shared: &mut Shared, kind: BulkKind) {
        match kind {
            BulkKind::RecordHead => self.bulk_head.flush(shared),
            _ => self.bulk_read.flush(shared),
        }
    }

    pub(crate) fn handle(&mut self, shared: &mut Shared, message: &RecordMessage) {
        let action = RecordAction::try_from(message.action);
        if action == Ok(RecordAction::Notify) && message.is_ack
            || action == Ok(RecordAction::RecordNotifyError)
        {
            let result = if message.is_ack {
                Ok(())
            } else {
                Err(server_failure(message))
            };
            let key = Waiting::Notify {
                correlation_id: message.correlation_id.clone(),
            };
            if !self.finish_waiting(shared, &key, |request| Event::RecordNotifyResult {
                request,
                result: result.clone(),
            }) {
                unsolicited(shared, message);
            }
            return;
        }
        if message.is_ack {
            let key = if message.correlation_id.is_empty() {
                message.name.clone()
            } else {
                message.correlation_id.clone()
            };
            shared.clear_ack(&AckKey {
                topic: Topic::Record,
                action: message.action,
                key,
            });
            return;
        }
        match action {
            Ok(RecordAction::ReadResponse) => self.read_response(shared, message),
            Ok(RecordAction::HeadResponse) => {
                let version = message.version.unwrap_or(-1);
                self.head_response(shared, &message.name, version);
            }
            Ok(RecordAction::HeadResponseBulk) => {
                for (name, version) in &message.versions {
                    self.head_response(shared, name, *version);
                }
            }
            Ok(RecordAction::RecordNotFound) => {
                let name = message.name.clone();
                if self
                    .records
                    .get(&name)
                    .is_some_and(|record| record.status == Status::Merging)
                {
                    self.merge(shared, &name, None, -1, None);
                }
                let key = Waiting::Snapshot { name: name.clone() };
                self.finish_all_waiting(shared, &key, |request| Event::RecordSnapshotResult {
                    request,
                    result: Err(RecordError::NotFound { name: name.clone() }),
                });
            }
            Ok(RecordAction::Update | RecordAction::Patch | RecordAction::Erase) => {
                self.apply_remote_write(shared, message);
            }
            Ok(RecordAction::WriteAcknowledgement) => {
                self.write_acknowledged(shared, &message.correlation_id, &Ok(()));
            }
            Ok(RecordAction::VersionExists) => self.version_exists(shared, message),
            Ok(RecordAction::DeleteSuccess) => {
                let key = Waiting::Delete {
                    name: message.name.clone(),
                };
                self.finish_waiting(shared, &key, |request| Event::RecordDeleteResult {
                    request,
                    result: Ok(()),
                });
                self.destroy(shared, &message.name);
            }
            Ok(RecordAction::Deleted) => self.destroy(shared, &message.name),
            Ok(RecordAction::SubscriptionHasProvider | RecordAction::SubscriptionHasNoProvider) => {
                let has_provider = action == Ok(RecordAction::SubscriptionHasProvider);
                if let Some(record) = self.records.get_mut(&message.name) {
                    record.has_provider = has_provider;
                    for handle in &record.handles {
                        shared.emit(Event::RecordProviderChanged {
                            record: *handle,
                            has_provider,
                        });
                    }
                }
            }
            _ => self.error_received(shared, message),
        }
    }

    fn error_received(&mut self, shared: &mut Shared, message: &RecordMessage) {
        let error = server_failure(message);
        if message.is_write_ack && !message.correlation_id.is_empty() {
            self.write_acknowledged(shared, &message.correlation_id, &Err(error));
            return;
        }
        if self.subscription_denied(shared, message, &error) {
            return;
        }
        let original = RecordAction::try_from(message.original_action);
        let key = match original {
            Ok(RecordAction::Delete) => Some(Waiting::Delete {
                name: message.name.clone(),
            }),
            Ok(RecordAction::Read) => Some(Waiting::Snapshot {
                name: message.name.clone(),
            }),
            Ok(RecordAction::Head) => Some(Waiting::Head {
                name: message.name.clone(),
            }),
            _ => None,
        };
        if let Some(key) = key {
            let found = match &key {
                Waiting::Delete { .. } => {
                    self.finish_waiting(shared, &key, |request| Event::RecordDeleteResult {
                        request,
                        result: Err(error.clone()),
                    })
                }
                Waiting::Snapshot { .. } => {
                    self.finish_all_waiting(shared, &key, |request| Event::RecordSnapshotResult {
                        request,
                        result: Err(error.clone()),
                    })
                }
                _ => self.finish_all_waiting(shared, &key, |request| Event::RecordHeadResult {
                    request,
                    result: Err(error.clone()),
                }),
            };
            if found {
                return;
            }
        }
        server_error(shared, message);
    }

    /// Handles the server's permissions denying the subscription of a record
    /// (`MESSAGE_DENIED` or `MESSAGE_PERMISSION_ERROR` for
    /// `SUBSCRIBECREATEANDREAD`, `SUBSCRIBEANDREAD` or `SUBSCRIBEANDHEAD`),
    /// for its first read or for its subscription again after a
    /// reconnection. The record is forgotten, so the next open subscribes
    /// again: handles still waiting for the record fail with `error`, the
    /// other handles get `Event::RecordClosed`, and writes kept until the
    /// record was ready fail. A denied resubscription is also reported once
    /// as `Event::Error`, since no request of the application carries it.
    /// Returns whether the record was waiting for such a subscription.
    ///
    /// A bulk subscription is denied name by name: both our server and the
    /// official server 7.0.2 send one denial per denied name, carrying that
    /// name and the bulk message's correlation id.
    fn subscription_denied(
        &mut self,
        shared: &mut Shared,
        message: &RecordMessage,
        error: &RecordError,
    ) -> bool {
        let action = RecordAction::try_from(message.action);
        if !matches!(
            action,
            Ok(RecordAction::MessageDenied | RecordAction::MessagePermissionError)
        ) {
            return false;
        }
        let original = RecordAction::try_from(message.original_action);
        if !matches!(
            original,
            Ok(RecordAction::Subscribecreateandread
                | RecordAction::Subscribeandread
                | RecordAction::Subscribeandhead)
        ) {
            return false;
        }

        if !message.correlation_id.is_empty() {
            // Our server drops a bulk message whose names are all denied, so
            // no acknowledgement follows and the denial is the only reply.
            // When some names were allowed, the acknowledgement that still
            // comes finds no timer and is ignored.
            shared.clear_ack(&AckKey {
                topic: Topic::Record,
                action: message.original_action,
                key: message.correlation_id.clone(),
            });
        }

        // A record in another status has its subscription already, so the
        // denial is not a reply to one of its requests.
        let resubscribing = match self.records.get(&message.name).map(|record| record.status) {
            Some(Status::Subscribing) => false,
            Some(Status::Resubscribing) => true,
            _ => return false,
        };
        let Some(record) = self.remove_record(shared, &message.name) else {
            return false;
        };
        end_handles(shared, &record, error, |handle| Event::RecordClosed {
            record: handle,
            error: error.clone(),
        });
        fail_pending_writes(shared, record.pending_writes, error);
        if resubscribing {
            server_error(shared, message);
        }
        true
    }

    fn read_response(&mut self, shared: &mut Shared, message: &RecordMessage) {
        let data = match serde_json::from_slice::<Value>(&message.data) {
            Ok(data) => data,
            Err(_) => {
                shared.error(SessionError::InvalidPayload {
                    topic: Topic::Record,
                    action: action_name(Topic::Record, message.action),
                });
                return;
            }
        };
        let version = message.version.unwrap_or(0);
        let text = data.to_string();
        let name = message.name.clone();
        self.finish_all_waiting(
            shared,
            &Waiting::Snapshot { name: name.clone() },
            |request| Event::RecordSnapshotResult {
                request,
                result: Ok(text.clone()),
            },
        );
        let Some(record) = self.records.get_mut(&name) else {
            return;
        };
        match record.status {
            Status::Subscribing => {
                record.version = Some(version);
                record.data = data;
                self.become_ready(shared, &name, true);
            }
            Status::Merging => {
                self.merge(shared, &name, Some(&data), version, None);
            }
            Status::Ready | Status::Resubscribing => {}
        }
    }

    fn head_response(&mut self, shared: &mut Shared, name: &str, remote_version: i32) {
        let key = Waiting::Head {
            name: name.to_owned(),
        };
        self.finish_all_waiting(shared, &key, |request| Event::RecordHeadResult {
            request,
            result: Ok(remote_version),
        });
        let Some(record) = self.records.get_mut(name) else {
            return;
        };
        if record.status != Status::Resubscribing {
            return;
        }
        let local_version = record.version.unwrap_or(0);
        if record.dirty && local_version == remote_version + 1 {
            // Written while offline on top of the server's version: send it.
            record.dirty = false;
            let frame = write_frame(
                RecordAction::Update,
                name,
                local_version,
                None,
                Some(&record.data),
                None,
            );
            shared.send(frame);
            self.become_ready(shared, name, false);
        } else if !record.dirty && local_version == remote_version {
            self.become_ready(shared, name, false);
        } else if remote_version == -1 {
            // The server no longer has the record, for example after a
            // restart without storage: the merge strategy decides.
            self.merge(shared, name, None, -1, None);
        } else {
            record.status = Status::Merging;
            send_read(shared, name);
        }
    }

    /// Marks a record ready and applies the writes made before. `first` is
    /// true for the first read, which every subscriber hears about.
    fn become_ready(&mut self, shared: &mut Shared, name: &str, first: bool) {
        let Some(record) = self.records.get_mut(name) else {
            return;
        };
        record.status = Status::Ready;
        let old = record.data.clone();
        let writes = std::mem::take(&mut record.pending_writes);
        let mut acks = Vec::new();
        for write in writes {
            let mut data = record.data.clone();
            let applied = match (&write.path, write.value) {
                (None, Some(value)) => {
                    data = value;
                    Ok(())
                }
                (Some(path), Some(value)) => path.set(&mut data, value),
                (Some(path), None) => path.erase(&mut data),
                (None, None) => Ok(()),
            };
            match applied {
                Ok(()) => record.data = data,
                Err(error) => {
                    if let Some(request) = write.request {
                        shared.emit(Event::RecordWriteResult {
                            request,
                            result: Err(RecordError::InvalidPath {
                                reason: error.to_string(),
                            }),
                        });
                    }
                    continue;
                }
            }
            if let Some(request) = write.request {
                acks.push(request);
            }
        }
        finish_opening(shared, record);
        let changed = old != record.data;
        if changed || first {
            notify_subscribers(shared, record, &old, first);
        }
        if changed {
            let version = record.version.unwrap_or(0) + 1;
            record.version = Some(version);
            let correlation_id = (!acks.is_empty()).then(|| self.next_write_ack.to_string());
            if let Some(correlation_id) = &correlation_id {
                self.next_write_ack += 1;
                // One acknowledgement answers every pending write.
                for request in &acks {
                    let timer =
                        shared.request_timer(*request, shared.options.record_request_timeout);
                    self.waiting.insert(
                        *request,
                        (
                            Waiting::WriteAck {
                                correlation_id: correlation_id.clone(),
                            },
                            Some(timer),
                        ),
                    );
                }
            }
            let Some(record) = self.records.get(name) else {
                return;
            };
            shared.send(write_frame(
                RecordAction::Update,
                name,
                version,
                None,
                Some(&record.data),
                correlation_id.as_deref(),
            ));
        } else {
            for request in acks {
                shared.emit(Event::RecordWriteResult {
                    request,
                    result: Ok(()),
                });
            }
        }
    }

    fn apply_remote_write(&mut self, shared: &mut Shared, message: &RecordMessage) {
        let Some(record) = self.records.get_mut(&message.name) else {
            return;
        };
        if record.status != Status::Ready {
            // A read or head is on its way and brings the latest data.
            return;
        }
        let action = RecordAction::try_from(message.action);
        // The Node.js server 7.x forwards an erase as a PATCH without data,
        // which the official client applies as an erase.
        let erase = action == Ok(RecordAction::Erase)
            || (action == Ok(RecordAction::Patch) && message.data.is_empty());
        let value = if erase {
            None
        } else {
            match serde_json::from_slice::<Value>(&message.data) {
                Ok(value) => Some(value),
                Err(_) => {
                    shared.error(SessionError::InvalidPayload {
                        topic: Topic::Record,
                        action: action_name(Topic::Record, message.action),
                    });
                    return;
                }
            }
        };
        let Some(version) = message.version else {
            unsolicited(shared, message);
            return;
        };
        let local_version = record.version.unwrap_or(0);
        if version <= local_version {
            // Older than a write of this client still in flight, which the
            // server either accepts after this one or answers with
            // VERSION_EXISTS carrying its current data.
            tracing::trace!(name = %message.name, version, local_version, "ignoring an older write");
            return;
        }
        if version != local_version + 1 {
            if action == Ok(RecordAction::Update) {
                let name = message.name.clone();
                self.merge(shared, &name, value.as_ref(), version, None);
            } else {
                record.status = Status::Merging;
                send_read(shared, &message.name);
            }
            return;
        }
        let old = record.data.clone();
        let mut data = record.data.clone();
        let applied = match action {
            Ok(RecordAction::Update) => {
                data = value.unwrap_or(Value::Null);
                Ok(())
            }
            _ => match JsonPath::parse(&message.path) {
                Ok(path) => match value {
                    Some(value) => path.set(&mut data, value),
                    None => path.erase(&mut data),
                },
                Err(error) => Err(error),
            },
        };
        if let Err(error) = applied {
            tracing::debug!(%error, name = %message.name, "could not apply a remote write");
            record.status = Status::Merging;
            send_read(shared, &message.name);
            return;
        }
        record.version = Some(version);
        record.data = data;
        notify_subscribers(shared, record, &old, false);
    }

    fn version_exists(&mut self, shared: &mut Shared, message: &RecordMessage) {
        let remote_version = message.version.unwrap_or(0);
        if message.is_write_ack && !message.correlation_id.is_empty() {
            self.write_acknowledged(
                shared,
                &message.correlation_id,
                &Err(RecordError::VersionExists {
                    name: message.name.clone(),
                    remote_version,
                }),
            );
        }
        let Ok(remote) = serde_json::from_slice::<Value>(&message.data) else {
            shared.error(SessionError::InvalidPayload {
                topic: Topic::Record,
                action: action_name(Topic::Record, message.action),
            });
            return;
        };
        let Some(record) = self.records.get(&message.name) else {
            return;
        };
        if record.version.unwrap_or(0) > remote_version {
            // A later write of this client is in flight and settles the
            // conflict: it is accepted, or gets its own VERSION_EXISTS.
            return;
        }
        let name = message.name.clone();
        self.merge(shared, &name, Some(&remote), remote_version, None);
    }

    /// Resolves a conflict between the local data and `remote` at `remote_version`.
    fn merge(
        &mut self,
        shared: &mut Shared,
        name: &str,
        remote: Option<&Value>,
        remote_version: i32,
        strategy: Option<MergeStrategy>,
    ) {
        let Some(record) = self.records.get_mut(name) else {
            return;
        };
        let strategy = strategy
            .or_else(|| record.merge.clone())
            .unwrap_or_else(|| shared.options.merge_strategy.clone());
        let local_version = record.version.unwrap_or(0);
        let merged = match &strategy {
            MergeStrategy::RemoteWins => Ok(remote.cloned()),
            MergeStrategy::LocalWins => Ok(Some(record.data.clone())),
            MergeStrategy::Custom(merge) => {
                let input = MergeInput {
                    name: name.to_owned(),
                    local: record.data.to_string(),
                    local_version,
                    remote: remote.map(Value::to_string),
                    remote_version,
                };
                merge(&input).and_then(|text| {
                    serde_json::from_str::<Value>(&text)
                        .map(Some)
                        .map_err(|error| format!("merged data is not JSON: {error}"))
                })
            }
        };
        let merged = match merged {
            Ok(merged) => merged,
            Err(reason) => {
                tracing::debug!(%reason, name, "merge failed; keeping local data");
                record.status = Status::Ready;
                finish_opening(shared, record);
                shared.error(SessionError::Server {
                    topic: Topic::Record,
                    action: "VERSION_EXISTS".to_owned(),
                    name: name.to_owned(),
                    original_action: None,
                });
                return;
            }
        };
        let Some(merged) = merged else {
            // Deleted remotely and the strategy agrees.
            self.destroy(shared, name);
            return;
        };
        let Some(record) = self.records.get_mut(name) else {
            return;
        };
        let old = record.data.clone();
        record.status = Status::Ready;
        record.dirty = false;
        record.version = Some(remote_version.max(0));
        record.data = merged;
        finish_opening(shared, record);
        notify_subscribers(shared, record, &old, false);
        if remote != Some(&record.data) {
            // A record the server lost (version -1) is created again with the merged data.
            let (action, version) = if remote_version >= 0 {
                (RecordAction::Update, remote_version + 1)
            } else {
                (RecordAction::Createandupdate, 1)
            };
            record.version = Some(version);
            shared.send(write_frame(
                action,
                name,
                version,
                None,
                Some(&record.data),
                None,
            ));
        }
        if !record.pending_writes.is_empty() {
            self.become_ready(shared, name, false);
        }
    }

    fn write_acknowledged(
        &mut self,
        shared: &mut Shared,
        correlation_id: &str,
        result: &Result<(), RecordError>,
    ) {
        let key = Waiting::WriteAck {
            correlation_id: correlation_id.to_owned(),
        };
        if !self.finish_all_waiting(shared, &key, |request| Event::RecordWriteResult {
            request,
            result: result.clone(),
        }) {
            tracing::debug!(correlation_id, "write acknowledgement for no pending write");
        }
    }

    /// Ends the first request waiting for `key`. Returns whether there was one.
    fn finish_waiting(
        &mut self,
        shared: &mut Shared,
        key: &Waiting,
        event: impl Fn(RequestId) -> Event,
    ) -> bool {
        let found = self
            .waiting
            .iter()
            .find(|(_, (waiting, _))| waiting == key)
            .map(|(request, _)| *request);
        let Some(request) = found else {
            return false;
        };
        if let Some((_, Some(timer))) = self.waiting.shift_remove(&request) {
            shared.timers.cancel(timer);
        }
        shared.emit(event(request));
        true
    }

    /// Ends every request waiting for `key`. Returns whether there was any.
    fn finish_all_waiting(
        &mut self,
        shared: &mut Shared,
        key: &Waiting,
        event: impl Fn(RequestId) -> Event,
    ) -> bool {
        let mut any = false;
        while self.finish_waiting(shared, key, &event) {
            any = true;
        }
        any
    }

    /// Forgets a record that was deleted: handles still waiting for it fail
    /// with `RecordError::Deleted`, and the others get `RecordDeleted`.
    fn destroy(&mut self, shared: &mut Shared, name: &str) {
        let Some(record) = self.remove_record(shared, name) else {
            return;
        };
        let error = RecordError::Deleted {
            name: name.to_owned(),
        };
        end_handles(shared, &record, &error, |handle| Event::RecordDeleted {
            record: handle,
        });
        fail_pending_writes(shared, record.pending_writes, &error);
    }

    /// Removes a record, its read timer, and the lookup entries of its handles
    /// and subscriptions. Returns the removed state, whose handles and pending
    /// writes the caller still has to tell about.
    fn remove_record(&mut self, shared: &mut Shared, name: &str) -> Option<RecordState> {
        let record = self.records.shift_remove(name)?;
        if let Some(timer) = record.read_timer {
            shared.timers.cancel(timer);
        }
        for handle in &record.handles {
            self.handles.remove(handle);
        }
        for subscription in &record.subscriptions {
            self.subscriptions.remove(&subscription.id);
        }
        Some(record)
    }

    /// Fails a request whose answer did not come in time. Returns whether
    /// `request` was a record request.
    pub(crate) fn request_timed_out(&mut self, shared: &mut Shared, request: RequestId) -> bool {
        let Some((waiting, _)) = self.waiting.shift_remove(&request) else {
            return false;
        };
        shared.emit(failure_event(&waiting, request, RecordError::Timeout));
        true
    }

    /// Fails the opens of a record that did not become ready in time. The
    /// record stays, and so do the handles, which a later open joins.
    pub(crate) fn read_timed_out(&mut self, shared: &mut Shared, name: &str) {
        let Some(record) = self.records.get_mut(name) else {
            return;
        };
        record.read_timer = None;
        for handle in record.opening.drain(..) {
            shared.emit(Event::RecordReadFailed {
                record: handle,
                error: RecordError::Timeout,
            });
        }
    }

    pub(crate) fn on_lost(&mut self, shared: &mut Shared) {
        self.bulk_read.reset(shared);
        self.bulk_head.reset(shared);
        let failed: Vec<(RequestId, (Waiting, Option<TimerId>))> = self.waiting.drain(..).collect();
        for (request, (waiting, timer)) in failed {
            if let Some(timer) = timer {
                shared.timers.cancel(timer);
            }
            shared.emit(failure_event(&waiting, request, RecordError::ClientOffline));
        }
    }

    /// Fails every open still waiting for its record, because the client
    /// closed for good.
    pub(crate) fn on_closed(&mut self, shared: &mut Shared) {
        for record in self.records.values_mut() {
            if let Some(timer) = record.read_timer.take() {
                shared.timers.cancel(timer);
            }
            for write in record.pending_writes.drain(..) {
                if let Some(request) = write.request {
                    shared.emit(Event::RecordWriteResult {
                        request,
                        result: Err(RecordError::ClientOffline),
                    });
                }
            }
            for handle in record.opening.drain(..) {
                shared.emit(Event::RecordReadFailed {
                    record: handle,
                    error: RecordError::ClientOffline,
                });
            }
        }
    }

    pub(crate) fn on_reestablished(&mut self, shared: &mut Shared) {
        let names: Vec<String> = self.records.keys().cloned().collect();
        for name in names {
            let Some(record) = self.records.get_mut(&name) else {
                continue;
            };
            // The read timeout counts from the last reconnection.
            if !record.opening.is_empty() {
                start_read_timer(shared, &name, record);
            }
            if record.version.is_none() {
                self.bulk_read.subscribe(shared, &name);
            } else {
                record.status = Status::Resubscribing;
                self.bulk_head.subscribe(shared, &name);
            }
        }
    }
}

fn start_read_timer(shared: &mut Shared, name: &str, record: &mut RecordState) {
    if let Some(timer) = record.read_timer.take() {
        shared.timers.cancel(timer);
    }
    let deadline = shared.now.after(shared.options.record_read_timeout);
    record.read_timer = Some(
        shared
            .timers
            .add(deadline, Timer::RecordRead(name.to_owned())),
    );
}

fn notify_subscribers(shared: &mut Shared, record: &RecordState, old: &Value, force: bool) {
    for subscription in &record.subscriptions {
        let (before, after) = match &subscription.path {
            Some(path) => (path.get(old), path.get(&record.data)),
            None => (Some(old), Some(&record.data)),
        };
        if before != after || (force && after.is_some()) {
            shared.emit(Event::RecordChanged {
                subscription: subscription.id,
                data: after.map(Value::to_string),
            });
        }
    }
}

/// Ends the opens of a record that became ready, and its read timeout.
fn finish_opening(shared: &mut Shared, record: &mut RecordState) {
    if let Some(timer) = record.read_timer.take() {
        shared.timers.cancel(timer);
    }
    for handle in record.opening.drain(..) {
        shared.emit(Event::RecordReady { record: handle });
    }
}

/// Tells every handle of a removed record that it is closed: a handle still
/// waiting for the record gets `Event::RecordReadFailed` with `error`, and
/// any other handle gets `closed(handle)`.
fn end_handles(
    shared: &mut Shared,
    record: &RecordState,
    error: &RecordError,
    closed: impl Fn(RecordId) -> Event,
) {
    for handle in &record.handles {
        let event = if record.opening.contains(handle) {
            Event::RecordReadFailed {
                record: *handle,
                error: error.clone(),
            }
        } else {
            closed(*handle)
        };
        shared.emit(event);
    }
}

/// Fails the acknowledgement requests among writes that were kept until the
/// record was ready, because it never will be.
fn fail_pending_writes(shared: &mut Shared, writes: Vec<PendingWrite>, error: &RecordError) {
    for write in writes {
        if let Some(request) = write.request {
            shared.emit(Event::RecordWriteResult {
                request,
                result: Err(error.clone()),
            });
        }
    }
}

fn failure_event(waiting: &Waiting, request: RequestId, error: RecordError) -> Event {
    match waiting {
        Waiting::WriteAck { .. } => Event::RecordWriteResult {
            request,
            result: Err(error),
        },
        Waiting::Snapshot { .. } => Event::RecordSnapshotResult {
            request,
            result: Err(error),
        },
        Waiting::Head { .. } => Event::RecordHeadResult {
            request,
            result: Err(error),
        },
        Waiting::Delete { .. } => Event::RecordDeleteResult {
            request,
            result: Err(error),
        },
        Waiting::Notify { .. } => Event::RecordNotifyResult {
            request,
            result: Err(error),
        },
    }
}

/// Reports an error message of the server that no request waits for.
fn server_error(shared: &mut Shared, message: &RecordMessage) {
    let original_action =
        (message.original_action != 0).then(|| action_name(Topic::Record, message.original_action));
    shared.error(SessionError::Server {
        topic: Topic::Record,
        action: action_name(Topic::Record, message.action),
        name: message.name.clone(),
        original_action,
    });
}

fn server_failure(message: &RecordMessage) -> RecordError {
    RecordError::Server {
        action: action_name(Topic::Record, message.action),
    }
}

fn unsolicited(shared: &mut Shared, message: &RecordMessage) {
    shared.error(SessionError::Unsolicited {
        topic: Topic::Record,
        action: action_name(Topic::Record, message.action),
        name: message.name.clone(),
    });
}

fn send_read(shared: &mut Shared, name: &str) {
    shared.send(
        TopicMessage::Record(RecordMessage {
            action: RecordAction::Read.into(),
            name: name.to_owned(),
            ..Default::default()
        })
        .encode_frame(),
    );
}

fn write_frame(
    action: RecordAction,
    name: &str,
    version: i32,
    path: Option<&str>,
    data: Option<&Value>,
    write_ack: Option<&str>,
) -> Bytes {
    TopicMessage::Record(RecordMessage {
        action: action.into(),
        name: name.to_owned(),
        version: Some(version),
        path: path.unwrap_or_default().to_owned(),
        data: data.map_or_else(Bytes::new, |data| Bytes::from(data.to_string())),
        is_write_ack: write_ack.is_some(),
        correlation_id: write_ack.unwrap_or_default().to_owned(),
        ..Default::default()
    })
    .encode_frame()
}

fn parse_json(text: &str) -> Result<Value, RecordError> {
    serde_json::from_str(text).map_err(|error| RecordError::InvalidJson {
        reason: error.to_string(),
    })
}

fn parse_path(path: &str) -> Result<JsonPath, RecordError> {
    JsonPath::parse(path).map_err(|error| RecordError::InvalidPath {
        reason: error.to_string(),
    })
}
