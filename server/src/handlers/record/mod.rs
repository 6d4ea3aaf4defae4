//! The RECORD topic: subscriptions, reads, versioned writes, deletes,
//! notify and record listening.
//!
//! Work on one record runs in arrival order on a queue that exists only while
//! work is pending: the first operation for an idle record starts a worker
//! task, which takes operations until the queue is empty and then ends (see
//! [`worker`]). Different records proceed in parallel. Reads go through the
//! same queue as writes, so a client that subscribes sees every version after
//! the one it read.
//!
//! Messages are validated here, before they are queued: names, versions, JSON
//! data and paths. The queue sees only well-formed operations.

mod messages;
mod store;
mod worker;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use deepstream_protocol::json_path::JsonPath;
use deepstream_protocol::{RecordAction, RecordMessage};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use crate::config::{ListenConfig, RecordConfig};
use crate::listen::ListenerRegistry;
use crate::monitoring::Monitor;
use crate::peer::{ConnectionId, Peer};
use crate::registry::{SubscriptionRegistry, lock};
use crate::storage::{Cache, Storage};

use super::bulk_names;
use messages::{RecordListenMessages, WriteAck};
use store::Store;
use worker::{Op, Write, WriteKind};

/// Handles RECORD messages of authenticated connections.
pub struct RecordHandler {
    subscriptions: Arc<SubscriptionRegistry>,
    listeners: Arc<ListenerRegistry>,
    store: Store,
    queues: Mutex<HashMap<Arc<str>, VecDeque<Op>>>,
    /// Records whose latest state still has to reach the storage.
    retrying: Mutex<HashSet<Arc<str>>>,
    workers: TaskTracker,
    this: Weak<RecordHandler>,
}

impl RecordHandler {
    /// Reports the handler's broadcasts to `monitor`.
    pub(crate) fn set_monitor(&self, monitor: Monitor) {
        self.subscriptions.set_monitor(monitor);
    }

    /// Returns the number of names with at least one subscriber.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.name_count()
    }
    /// Creates the handler over the given cache and storage.
    pub fn new(
        cache: Arc<dyn Cache>,
        storage: Arc<dyn Storage>,
        record: RecordConfig,
        listen: ListenConfig,
    ) -> Arc<RecordHandler> {
        let subscriptions = Arc::new(SubscriptionRegistry::new());
        let listeners = ListenerRegistry::new(
            Box::new(RecordListenMessages),
            subscriptions.clone(),
            listen,
        );
        Arc::new_cyclic(|this| RecordHandler {
            subscriptions,
            listeners,
            store: Store::new(cache, storage, record),
            queues: Mutex::new(HashMap::new()),
            retrying: Mutex::new(HashSet::new()),
            workers: TaskTracker::new(),
            this: this.clone(),
        })
    }

    /// Reads a record's current data from the cache, else the storage, for a
    /// permission rule. `None` when the record does not exist.
    pub(crate) async fn current_data(
        &self,
        name: &str,
    ) -> Result<Option<serde_json::Value>, String> {
        let Some(record) = self
            .store
            .load(name)
            .await
            .map_err(|error| error.to_string())?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&record.data)
            .map(Some)
            .map_err(|error| format!("the stored data is not valid JSON: {error}"))
    }

    /// Starts the handler's timers. Must be called inside a tokio runtime.
    pub fn start(&self) {
        self.listeners.start_rematch_timer();
    }

    /// Waits until every queued record operation has finished, then closes the
    /// storage, so that queued writes reach it before shutdown. Returns false
    /// when `timeout` passed first.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.workers.close();
        let drained = tokio::time::timeout(timeout, self.workers.wait())
            .await
            .is_ok();
        self.workers.reopen();
        if let Err(error) = self.store.close(timeout).await {
            tracing::error!(%error, "closing the record storage failed");
        }
        drained
    }

    /// Handles one RECORD message from `peer`.
    pub fn handle(&self, peer: &Arc<Peer>, message: RecordMessage) {
        let action = message.action();
        match action {
            RecordAction::Subscribe => self.subscribe(peer, message),
            RecordAction::Subscribecreateandread | RecordAction::Subscribeandread => {
                let create = action == RecordAction::Subscribecreateandread;
                self.subscribe_and_read(peer, message, create)
            }
            RecordAction::Subscribeandhead => self.subscribe_and_head(peer, message),
            RecordAction::Unsubscribe => self.unsubscribe(peer, message),
            RecordAction::Read => self.single(peer, &message, |peer| Op::Read { peer }),
            RecordAction::Head => self.single(peer, &message, |peer| Op::Head { peer }),
            RecordAction::HeadBulk => self.head_bulk(peer, message),
            RecordAction::Update
            | RecordAction::Patch
            | RecordAction::Erase
            | RecordAction::Createandupdate
            | RecordAction::Createandpatch => self.write(peer, &message),
            RecordAction::Delete => self.single(peer, &message, |peer| Op::Delete {
                peer: Some(peer),
                done: None,
            }),
            RecordAction::DeleteBulk => self.delete_bulk(peer, message),
            RecordAction::Notify => self.notify(peer, message),
            RecordAction::Listen => self.listeners.listen(peer, &message.name),
            RecordAction::Unlisten => self.listeners.unlisten(peer, &message.name),
            RecordAction::ListenAccept => {
                self.listeners
                    .accept(peer, &message.name, &message.subscription)
            }
            RecordAction::ListenReject => {
                self.listeners
                    .reject(peer, &message.name, &message.subscription)
            }
            other => {
                tracing::debug!(action = ?other, "record action not accepted from clients");
                peer.send(messages::error(
                    RecordAction::InvalidMessageData,
                    other,
                    &message.name,
                    &WriteAck::default(),
                ));
            }
        }
    }

    /// Removes the subscriptions and listeners of a closed connection.
    pub fn remove_connection(&self, id: ConnectionId) {
        for name in self.subscriptions.remove_connection(id) {
            self.listeners.on_last_unsubscription(&name);
        }
        self.listeners.remove_connection(id);
    }

    fn subscribe(&self, peer: &Arc<Peer>, message: RecordMessage) {
        for name in bulk_names(message.names, message.name) {
            if self.reject_empty_name(peer, &name, RecordAction::Subscribe) {
                continue;
            }
            self.add_subscriber(peer, &name, RecordAction::Subscribe);
        }
        peer.send(messages::ack(
            RecordAction::Subscribe,
            message.correlation_id,
        ));
    }

    fn subscribe_and_read(&self, peer: &Arc<Peer>, message: RecordMessage, create: bool) {
        let action = message.action();
        for name in bulk_names(message.names, message.name) {
            if self.reject_empty_name(peer, &name, action) {
                continue;
            }
            self.enqueue(
                &name,
                Op::SubscribeRead {
                    peer: peer.clone(),
                    create,
                    action,
                },
            );
        }
        peer.send(messages::ack(action, message.correlation_id));
    }

    /// Subscribes to every name, answers the versions the cache knows in one
    /// `HEAD_RESPONSE_BULK`, and looks up the others one by one.
    fn subscribe_and_head(&self, peer: &Arc<Peer>, message: RecordMessage) {
        let names = self.valid_names(
            peer,
            message.names,
            message.name,
            RecordAction::Subscribeandhead,
        );
        for name in &names {
            self.add_subscriber(peer, name, RecordAction::Subscribeandhead);
        }
        peer.send(messages::ack(
            RecordAction::Subscribeandhead,
            message.correlation_id,
        ));
        self.spawn_head_bulk(peer.clone(), names, None);
    }

    fn head_bulk(&self, peer: &Arc<Peer>, message: RecordMessage) {
        let names = self.valid_names(peer, message.names, message.name, RecordAction::HeadBulk);
        self.spawn_head_bulk(peer.clone(), names, Some(message.correlation_id));
    }

    /// Answers the versions the cache knows in one `HEAD_RESPONSE_BULK` and
    /// queues a HEAD for every other name, which falls back to the storage.
    fn spawn_head_bulk(&self, peer: Arc<Peer>, names: Vec<String>, correlation_id: Option<String>) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        self.workers.spawn(async move {
            let known = match this.store.cache().head_bulk(&names).await {
                Ok(head) => head,
                Err(error) => {
                    tracing::warn!(%error, "cache head_bulk failed, reading each record instead");
                    Default::default()
                }
            };
            if !known.versions.is_empty() || correlation_id.is_some() {
                let response = RecordMessage {
                    action: RecordAction::HeadResponseBulk.into(),
                    versions: known.versions.clone(),
                    correlation_id: correlation_id.unwrap_or_default(),
                    ..Default::default()
                };
                peer.send(messages::encode(&response));
            }
            for name in names
                .iter()
                .filter(|name| !known.versions.contains_key(*name))
            {
                this.enqueue(name, Op::Head { peer: peer.clone() });
            }
        });
    }

    fn unsubscribe(&self, peer: &Arc<Peer>, message: RecordMessage) {
        for name in bulk_names(message.names, message.name) {
            match self.subscriptions.unsubscribe(&name, peer) {
                Ok(true) => self.listeners.on_last_unsubscription(&name),
                Ok(false) => {}
                Err(_) => peer.send(messages::error(
                    RecordAction::NotSubscribed,
                    RecordAction::Unsubscribe,
                    &name,
                    &WriteAck::default(),
                )),
            }
        }
        peer.send(messages::ack(
            RecordAction::Unsubscribe,
            message.correlation_id,
        ));
    }

    /// Queues one operation on the record named in the message.
    fn single(&self, peer: &Arc<Peer>, message: &RecordMessage, op: impl FnOnce(Arc<Peer>) -> Op) {
        if self.reject_empty_name(peer, &message.name, message.action()) {
            return;
        }
        self.enqueue(&message.name, op(peer.clone()));
    }

    fn delete_bulk(&self, peer: &Arc<Peer>, message: RecordMessage) {
        let names = bulk_names(message.names, message.name);
        let mut waits = Vec::with_capacity(names.len());
        for name in &names {
            if self.reject_empty_name(peer, name, RecordAction::DeleteBulk) {
                continue;
            }
            let (done, wait) = oneshot::channel();
            self.enqueue(
                name,
                Op::Delete {
                    peer: None,
                    done: Some(done),
                },
            );
            waits.push(wait);
        }
        let peer = peer.clone();
        let correlation_id = message.correlation_id;
        self.workers.spawn(async move {
            let mut all_deleted = true;
            for wait in waits {
                all_deleted &= wait.await.unwrap_or(false);
            }
            let reply = if all_deleted {
                messages::ack(RecordAction::DeleteBulkSuccess, correlation_id)
            } else {
                let mut message = RecordMessage {
                    action: RecordAction::RecordDeleteError.into(),
                    original_action: RecordAction::DeleteBulk.into(),
                    correlation_id,
                    is_error: true,
                    ..Default::default()
                };
                message.data = messages::json_string("deleting one or more records failed");
                messages::encode(&message)
            };
            peer.send(reply);
        });
    }

    /// Handles NOTIFY: records changed in the storage without this server.
    /// Drops the names from the cache, re-reads those with subscribers and
    /// sends their new state, then acknowledges once.
    fn notify(&self, peer: &Arc<Peer>, message: RecordMessage) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        let names = self.valid_names(peer, message.names, message.name, RecordAction::Notify);
        let peer = peer.clone();
        let correlation_id = message.correlation_id;
        self.workers.spawn(async move {
            if let Err(error) = this.store.cache().delete_bulk(&names).await {
                tracing::error!(%error, count = names.len(), "dropping notified records from the cache failed");
                peer.send(notify_error(correlation_id, "dropping the records from the cache failed"));
                return;
            }

            let mut waits = Vec::new();
            for name in names.iter().filter(|name| this.subscriptions.has_subscribers(name)) {
                let (done, wait) = oneshot::channel();
                this.enqueue(name, Op::Reload { done });
                waits.push(wait);
            }
            let mut all_reloaded = true;
            for wait in waits {
                all_reloaded &= wait.await.unwrap_or(false);
            }

            if all_reloaded {
                peer.send(messages::ack(RecordAction::Notify, correlation_id));
            } else {
                peer.send(notify_error(correlation_id, "reading one or more records from the storage failed"));
            }
        });
    }

    /// Validates a write and queues it.
    fn write(&self, peer: &Arc<Peer>, message: &RecordMessage) {
        let action = message.action();
        let ack = WriteAck {
            correlation_id: message.is_write_ack.then(|| message.correlation_id.clone()),
        };
        let reject = |error: RecordAction, reason: &str| {
            tracing::debug!(record = %message.name, reason, "invalid record write");
            peer.send(messages::error_with_reason(
                error,
                action,
                &message.name,
                &ack,
                reason,
            ));
        };

        if message.name.is_empty() {
            return reject(RecordAction::InvalidMessageData, "the record name is empty");
        }
        let version = match message.version {
            None => {
                return reject(
                    RecordAction::InvalidVersion,
                    "the write has no version; send the next version, or -1 for whatever the next version is",
                );
            }
            Some(version) if version >= -1 => version,
            Some(_) => {
                return reject(
                    RecordAction::InvalidVersion,
                    "versions are -1 (next) or positive",
                );
            }
        };
        let hot_path = self.store.is_hot_path(&message.name);
        let upsert = matches!(
            action,
            RecordAction::Createandupdate | RecordAction::Createandpatch
        );
        let is_patch = action == RecordAction::Patch
            || action == RecordAction::Createandpatch
            || (action != RecordAction::Erase && !message.path.is_empty());

        let kind = if action == RecordAction::Erase {
            match parse_path(&message.path) {
                Ok(path) => WriteKind::Erase {
                    path,
                    text: message.path.clone(),
                },
                Err(reason) => return reject(RecordAction::InvalidMessageData, &reason),
            }
        } else if is_patch {
            if hot_path && upsert {
                return reject(
                    RecordAction::InvalidPatchOnHotpath,
                    "records on a hot path prefix take whole updates only",
                );
            }
            let path = match parse_path(&message.path) {
                Ok(path) => path,
                Err(reason) => return reject(RecordAction::InvalidMessageData, &reason),
            };
            let value = match serde_json::from_slice::<Value>(&message.data) {
                Ok(value) => value,
                Err(error) => {
                    let reason = format!("the patch value is not valid JSON: {error}");
                    return reject(RecordAction::InvalidMessageData, &reason);
                }
            };
            WriteKind::Patch {
                path,
                text: message.path.clone(),
                value,
                raw: message.data.clone(),
            }
        } else {
            if let Err(reason) = check_record_data(&message.data) {
                return reject(RecordAction::InvalidMessageData, &reason);
            }
            WriteKind::Update {
                data: message.data.clone(),
            }
        };

        let write = Write {
            peer: peer.clone(),
            action,
            kind,
            version,
            upsert,
            hot_path,
            ack,
        };
        self.enqueue(&message.name, Op::Write(write));
    }

    /// Adds `op` to the record's queue, starting a worker when the record was idle.
    fn enqueue(&self, name: &str, op: Op) {
        let mut queues = lock(&self.queues);
        if let Some(queue) = queues.get_mut(name) {
            queue.push_back(op);
            return;
        }
        let name: Arc<str> = Arc::from(name);
        queues.insert(name.clone(), VecDeque::from([op]));
        drop(queues);

        let Some(this) = self.this.upgrade() else {
            return;
        };
        self.workers
            .spawn(async move { this.run_worker(name).await });
    }

    /// Takes the next operation of a record's queue, or removes the queue
    /// when it is empty. Consecutive writes are taken together.
    fn next_batch(&self, name: &str) -> Option<worker::Batch> {
        let mut queues = lock(&self.queues);
        let queue = queues.get_mut(name)?;
        let batch = match queue.pop_front() {
            None => {
                queues.remove(name);
                return None;
            }
            Some(Op::Write(first)) => {
                let mut writes = vec![first];
                while matches!(queue.front(), Some(Op::Write(_))) {
                    if let Some(Op::Write(write)) = queue.pop_front() {
                        writes.push(write);
                    }
                }
                worker::Batch::Writes(writes)
            }
            Some(op) => worker::Batch::One(op),
        };
        Some(batch)
    }

    /// Subscribes `peer` to `name` and tells the listener registry.
    fn add_subscriber(&self, peer: &Arc<Peer>, name: &str, original_action: RecordAction) {
        match self.subscriptions.subscribe(name, peer) {
            Ok(first) => {
                if first {
                    self.listeners.on_first_subscription(name);
                }
                self.listeners.on_subscription(peer, name);
            }
            Err(_) => peer.send(messages::error(
                RecordAction::MultipleSubscriptions,
                original_action,
                name,
                &WriteAck::default(),
            )),
        }
    }

    /// Unsubscribes everyone from a deleted record.
    fn remove_all_subscribers(&self, name: &str) {
        if !self.subscriptions.remove_all(name).is_empty() {
            self.listeners.on_last_unsubscription(name);
        }
    }

    /// Returns the names of a bulk message, answering each empty one with
    /// INVALID_MESSAGE_DATA.
    fn valid_names(
        &self,
        peer: &Peer,
        names: Vec<String>,
        name: String,
        action: RecordAction,
    ) -> Vec<String> {
        bulk_names(names, name)
            .into_iter()
            .filter(|name| !self.reject_empty_name(peer, name, action))
            .collect()
    }

    fn reject_empty_name(&self, peer: &Peer, name: &str, action: RecordAction) -> bool {
        if !name.is_empty() {
            return false;
        }
        tracing::debug!(?action, "record message without a name");
        peer.send(messages::error_with_reason(
            RecordAction::InvalidMessageData,
            action,
            "",
            &WriteAck::default(),
            "the record name is empty",
        ));
        true
    }
}

fn notify_error(correlation_id: String, reason: &str) -> Bytes {
    messages::encode(&RecordMessage {
        action: RecordAction::RecordNotifyError.into(),
        correlation_id,
        is_error: true,
        data: messages::json_string(reason),
        ..Default::default()
    })
}

fn parse_path(path: &str) -> Result<JsonPath, String> {
    if path.trim().is_empty() {
        return Err("the path is empty".to_owned());
    }
    JsonPath::parse(path).map_err(|error| format!("invalid path `{path}`: {error}"))
}

/// Checks that `data` is a JSON object or array that later path writes can
/// parse: no deeper than serde_json's 128 levels, no lone UTF-16 surrogate
/// escapes and no number out of the f64 range. Parsing it completely is the
/// only check that covers all three.
fn check_record_data(data: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(_) | Value::Array(_)) => Ok(()),
        Ok(_) => Err("record data must be a JSON object or array".to_owned()),
        Err(error) => Err(format!("record data is not valid JSON: {error}")),
    }
}
