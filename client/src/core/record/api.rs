//! The record commands of [`Session`]: open, read, write, subscribe,
//! delete, snapshot, head, notify, and lists.

use deepstream_protocol::json_path::JsonPath;
use deepstream_protocol::{RecordAction, RecordMessage, Topic, TopicMessage};
use serde_json::Value;

use super::{
    MergeStrategy, PendingWrite, RecordError, RecordHandler, RecordState, Status, Subscription,
    Waiting, notify_subscribers, parse_json, parse_path, send_read, start_read_timer, write_frame,
};
use crate::core::ids::{RecordId, RecordSubscriptionId, RequestId};
use crate::core::shared::{AckKey, Shared};
use crate::core::{Event, Session, Timestamp, check_name};

impl RecordHandler {
    fn state(&self, record: RecordId) -> Result<(&String, &RecordState), RecordError> {
        let name = self
            .handles
            .get(&record)
            .ok_or(RecordError::UnknownHandle)?;
        let state = self.records.get(name).ok_or(RecordError::UnknownHandle)?;
        Ok((name, state))
    }

    /// Applies a local write and sends it, or keeps it until the record is ready.
    fn write(
        &mut self,
        shared: &mut Shared,
        name: &str,
        path: Option<JsonPath>,
        value: Option<Value>,
        ack: bool,
    ) -> Result<Option<RequestId>, RecordError> {
        let request = ack.then(|| RequestId(shared.next_id()));
        let record = self
            .records
            .get_mut(name)
            .ok_or(RecordError::UnknownHandle)?;
        if record.status != Status::Ready {
            record.pending_writes.push(PendingWrite {
                path,
                value,
                request,
            });
            return Ok(request);
        }

        let mut data = record.data.clone();
        let applied = match (&path, &value) {
            (None, Some(value)) => {
                data = value.clone();
                Ok(())
            }
            (Some(path), Some(value)) => path.set(&mut data, value.clone()),
            (Some(path), None) => path.erase(&mut data),
            (None, None) => Ok(()),
        };
        applied.map_err(|error| RecordError::InvalidPath {
            reason: error.to_string(),
        })?;
        if data == record.data {
            if let Some(request) = request {
                shared.emit(Event::RecordWriteResult {
                    request,
                    result: Ok(()),
                });
            }
            return Ok(request);
        }

        let old = std::mem::replace(&mut record.data, data);
        notify_subscribers(shared, record, &old, false);
        if !shared.logged_in {
            if !record.dirty {
                record.version = Some(record.version.unwrap_or(0) + 1);
                record.dirty = true;
            }
            if let Some(request) = request {
                shared.emit(Event::RecordWriteResult {
                    request,
                    result: Err(RecordError::ClientOffline),
                });
            }
            return Ok(request);
        }

        let version = record.version.unwrap_or(0) + 1;
        record.version = Some(version);
        let action = match (&path, &value) {
            (None, _) => RecordAction::Update,
            (Some(_), Some(_)) => RecordAction::Patch,
            (Some(_), None) => RecordAction::Erase,
        };
        let data = match (&path, value) {
            (None, _) => Some(record.data.clone()),
            (Some(_), value) => value,
        };
        let correlation_id = request.map(|request| self.expect_write_ack(shared, request));
        shared.send(write_frame(
            action,
            name,
            version,
            path.as_ref().map(JsonPath::as_str),
            data.as_ref(),
            correlation_id.as_deref(),
        ));
        Ok(request)
    }

    fn expect_write_ack(&mut self, shared: &mut Shared, request: RequestId) -> String {
        let correlation_id = self.next_write_ack.to_string();
        self.next_write_ack += 1;
        let timer = shared.request_timer(request, shared.options.record_request_timeout);
        self.waiting.insert(
            request,
            (
                Waiting::WriteAck {
                    correlation_id: correlation_id.clone(),
                },
                Some(timer),
            ),
        );
        correlation_id
    }

    fn wait(&mut self, shared: &mut Shared, waiting: Waiting) -> RequestId {
        let request = RequestId(shared.next_id());
        let timer = shared.request_timer(request, shared.options.record_request_timeout);
        self.waiting.insert(request, (waiting, Some(timer)));
        request
    }

    fn is_waiting(&self, key: &Waiting) -> bool {
        self.waiting.values().any(|(waiting, _)| waiting == key)
    }
}

/// Parses the data and path of a write.
fn parse_write(
    path: Option<&str>,
    data: Option<&str>,
) -> Result<(Option<JsonPath>, Option<Value>), RecordError> {
    let path = path.map(parse_path).transpose()?;
    let value = data.map(parse_json).transpose()?;
    if path.is_none() && !matches!(value, Some(Value::Object(_) | Value::Array(_))) {
        return Err(RecordError::NotAContainer);
    }
    Ok((path, value))
}

impl Session {
    /// Opens the record `name` and returns a handle to it.
    ///
    /// The first handle of a name reads and subscribes to the record (in the
    /// next bulk `SUBSCRIBECREATEANDREAD`, once logged in), creating it when
    /// it does not exist. [`Event::RecordReady`] follows for the handle once
    /// the record is ready: at once if it is, otherwise after its first
    /// read, or after a reconnection once it is subscribed again and its
    /// version checked or merged. Otherwise the open ends with
    /// [`Event::RecordReadFailed`]: after `record_read_timeout` (counted from
    /// the earliest open of `name` still waiting, or from the last
    /// reconnection), when the client closes, or with
    /// [`RecordError::Deleted`] when the record is deleted meanwhile. Each
    /// open ends once. Fails with [`RecordError::ClientOffline`] once the
    /// client is closed.
    ///
    /// When the server's permissions deny reading or creating the record,
    /// every handle still waiting gets [`Event::RecordReadFailed`] at once,
    /// with [`RecordError::Server`] (`MESSAGE_DENIED` or
    /// `MESSAGE_PERMISSION_ERROR`) and no [`Event::Error`]. The record is
    /// forgotten, so the next call for `name` subscribes again, and writes
    /// made on those handles fail with the same error. The official client
    /// 7.0.5 only emits a record error, and its open never resolves.
    ///
    /// When the permissions deny subscribing to the record again after a
    /// reconnection (`SUBSCRIBEANDHEAD`), the server no longer sends its
    /// changes, so the client closes the record. Handles still waiting get
    /// [`Event::RecordReadFailed`], and every other handle gets
    /// [`Event::RecordClosed`], both with the denial as
    /// [`RecordError::Server`]. Writes kept until the record was ready fail
    /// with the same error, and changes made while offline and not yet sent
    /// are lost. The denial is reported once as [`Event::Error`], and the
    /// next call for `name` subscribes again. The official client 7.0.5
    /// emits a record error and leaves the record resubscribing for good.
    pub fn record_get(&mut self, name: &str, now: Timestamp) -> Result<RecordId, RecordError> {
        self.shared.now = now;
        if !check_name(name) {
            return Err(RecordError::EmptyName);
        }
        if self.connection.state().is_final() {
            return Err(RecordError::ClientOffline);
        }
        let handle = RecordId(self.shared.next_id());
        let handler = &mut self.record;
        if !handler.records.contains_key(name) {
            let state = RecordState {
                status: Status::Subscribing,
                version: None,
                data: Value::Object(serde_json::Map::new()),
                dirty: false,
                handles: Vec::new(),
                opening: Vec::new(),
                subscriptions: Vec::new(),
                pending_writes: Vec::new(),
                merge: None,
                read_timer: None,
                has_provider: false,
            };
            if self.shared.logged_in {
                handler.bulk_read.subscribe(&mut self.shared, name);
            }
            handler.records.insert(name.to_owned(), state);
        }
        let Some(state) = handler.records.get_mut(name) else {
            return Err(RecordError::UnknownHandle);
        };
        state.handles.push(handle);
        handler.handles.insert(handle, name.to_owned());
        if state.status == Status::Ready {
            self.shared.emit(Event::RecordReady { record: handle });
            return Ok(handle);
        }

        state.opening.push(handle);
        // A running timer belongs to an earlier open still waiting, and ends
        // this open too. The timer runs before the login as well, so that a
        // client that never logs in still ends the wait.
        if state.read_timer.is_none() {
            start_read_timer(&mut self.shared, name, state);
        }
        Ok(handle)
    }

    /// Closes a handle. When no handle of the record is left, the client
    /// unsubscribes from it. Writes still waiting for the record to be ready
    /// are dropped.
    pub fn record_discard(&mut self, record: RecordId, now: Timestamp) -> Result<(), RecordError> {
        self.shared.now = now;
        let handler = &mut self.record;
        let name = handler
            .handles
            .remove(&record)
            .ok_or(RecordError::UnknownHandle)?;
        let Some(state) = handler.records.get_mut(&name) else {
            return Ok(());
        };
        state.handles.retain(|handle| *handle != record);
        state.opening.retain(|handle| *handle != record);
        if state.opening.is_empty() {
            if let Some(timer) = state.read_timer.take() {
                self.shared.timers.cancel(timer);
            }
        }
        let removed: Vec<RecordSubscriptionId> = state
            .subscriptions
            .iter()
            .filter(|subscription| subscription.handle == record)
            .map(|subscription| subscription.id)
            .collect();
        state
            .subscriptions
            .retain(|subscription| subscription.handle != record);
        for id in removed {
            handler.subscriptions.remove(&id);
        }
        if !state.handles.is_empty() {
            return Ok(());
        }
        let Some(state) = handler.records.shift_remove(&name) else {
            return Ok(());
        };
        for write in state.pending_writes {
            if let Some(request) = write.request {
                self.shared.emit(Event::RecordWriteResult {
                    request,
                    result: Err(RecordError::NotReady { name: name.clone() }),
                });
            }
        }
        if self.shared.logged_in {
            self.shared.send(
                TopicMessage::Record(RecordMessage {
                    action: RecordAction::Unsubscribe.into(),
                    names: vec![name.clone()],
                    correlation_id: name.clone(),
                    ..Default::default()
                })
                .encode_frame(),
            );
            self.shared.expect_ack(AckKey {
                topic: Topic::Record,
                action: RecordAction::Unsubscribe.into(),
                key: name,
            });
        }
        Ok(())
    }

    /// Returns the record's data, or the value at `path`, as JSON text;
    /// `None` when the path names nothing.
    pub fn record_data(
        &self,
        record: RecordId,
        path: Option<&str>,
    ) -> Result<Option<String>, RecordError> {
        let (name, state) = self.record.state(record)?;
        if state.status == Status::Subscribing {
            return Err(RecordError::NotReady { name: name.clone() });
        }
        match path {
            None => Ok(Some(state.data.to_string())),
            Some(path) => Ok(parse_path(path)?.get(&state.data).map(Value::to_string)),
        }
    }

    /// Returns the record's version, `None` before the first read.
    pub fn record_version(&self, record: RecordId) -> Result<Option<i32>, RecordError> {
        Ok(self.record.state(record)?.1.version)
    }

    /// Returns the record's name.
    pub fn record_name(&self, record: RecordId) -> Result<&str, RecordError> {
        Ok(self.record.state(record)?.0)
    }

    /// Returns whether a client provides the record through listening.
    pub fn record_has_provider(&self, record: RecordId) -> Result<bool, RecordError> {
        Ok(self.record.state(record)?.1.has_provider)
    }

    /// Sets the whole record (`path` `None`, data a JSON object or array) or
    /// the value at `path`.
    ///
    /// With `ack`, the returned request ends with [`Event::RecordWriteResult`]
    /// once the server has stored the write. A write before the record is
    /// ready is applied when it is. A write while offline changes the local
    /// data and is sent after the next login; its acknowledgement fails at
    /// once with [`RecordError::ClientOffline`], which then means "not
    /// stored yet", not "lost".
    pub fn record_set(
        &mut self,
        record: RecordId,
        path: Option<&str>,
        data: &str,
        ack: bool,
        now: Timestamp,
    ) -> Result<Option<RequestId>, RecordError> {
        self.shared.now = now;
        let name = self.record.state(record)?.0.clone();
        let (path, value) = parse_write(path, Some(data))?;
        self.record.write(&mut self.shared, &name, path, value, ack)
    }

    /// Removes the value at `path`, as [`Session::record_set`] sets one.
    pub fn record_erase(
        &mut self,
        record: RecordId,
        path: &str,
        ack: bool,
        now: Timestamp,
    ) -> Result<Option<RequestId>, RecordError> {
        self.shared.now = now;
        let name = self.record.state(record)?.0.clone();
        let path = parse_path(path)?;
        self.record
            .write(&mut self.shared, &name, Some(path), None, ack)
    }

    /// Follows changes of the whole record or of the value at `path`:
    /// [`Event::RecordChanged`] carries the new value. With `trigger_now`, the
    /// current value follows at once if the record is ready.
    pub fn record_subscribe(
        &mut self,
        record: RecordId,
        path: Option<&str>,
        trigger_now: bool,
    ) -> Result<RecordSubscriptionId, RecordError> {
        let name = self.record.state(record)?.0.clone();
        let path = path.map(parse_path).transpose()?;
        let id = RecordSubscriptionId(self.shared.next_id());
        let Some(state) = self.record.records.get_mut(&name) else {
            return Err(RecordError::UnknownHandle);
        };
        if trigger_now && state.status != Status::Subscribing {
            let current = match &path {
                Some(path) => path.get(&state.data),
                None => Some(&state.data),
            };
            self.shared.emit(Event::RecordChanged {
                subscription: id,
                data: current.map(Value::to_string),
            });
        }
        state.subscriptions.push(Subscription {
            id,
            handle: record,
            path,
        });
        self.record.subscriptions.insert(id, name);
        Ok(id)
    }

    /// Ends a subscription made with [`Session::record_subscribe`].
    pub fn record_unsubscribe(
        &mut self,
        subscription: RecordSubscriptionId,
    ) -> Result<(), RecordError> {
        let name = self
            .record
            .subscriptions
            .remove(&subscription)
            .ok_or(RecordError::UnknownHandle)?;
        if let Some(state) = self.record.records.get_mut(&name) {
            state.subscriptions.retain(|s| s.id != subscription);
        }
        Ok(())
    }

    /// Sets the merge strategy of one record, in place of `Options::merge_strategy`.
    pub fn record_set_merge_strategy(
        &mut self,
        record: RecordId,
        strategy: MergeStrategy,
    ) -> Result<(), RecordError> {
        let name = self.record.state(record)?.0.clone();
        if let Some(state) = self.record.records.get_mut(&name) {
            state.merge = Some(strategy);
        }
        Ok(())
    }

    /// Deletes the record on the server. The result comes as
    /// [`Event::RecordDeleteResult`], then [`Event::RecordDeleted`] for every handle.
    pub fn record_delete(
        &mut self,
        record: RecordId,
        now: Timestamp,
    ) -> Result<RequestId, RecordError> {
        self.shared.now = now;
        let (name, state) = self.record.state(record)?;
        let name = name.clone();
        if state.status != Status::Ready {
            return Err(RecordError::NotReady { name });
        }
        if !self.shared.logged_in {
            return Err(RecordError::ClientOffline);
        }
        self.shared.send(
            TopicMessage::Record(RecordMessage {
                action: RecordAction::Delete.into(),
                name: name.clone(),
                ..Default::default()
            })
            .encode_frame(),
        );
        Ok(self.record.wait(&mut self.shared, Waiting::Delete { name }))
    }

    /// Reads the record `name` without subscribing. The result comes as
    /// [`Event::RecordSnapshotResult`]: the data as JSON text, or
    /// [`RecordError::NotFound`]. For an open, ready record the result comes at once.
    pub fn record_snapshot(
        &mut self,
        name: &str,
        now: Timestamp,
    ) -> Result<RequestId, RecordError> {
        self.shared.now = now;
        if !check_name(name) {
            return Err(RecordError::EmptyName);
        }
        if let Some(state) = self.record.records.get(name) {
            if state.status == Status::Ready {
                let request = RequestId(self.shared.next_id());
                self.shared.emit(Event::RecordSnapshotResult {
                    request,
                    result: Ok(state.data.to_string()),
                });
                return Ok(request);
            }
        }
        if !self.shared.logged_in {
            return Err(RecordError::ClientOffline);
        }
        let key = Waiting::Snapshot {
            name: name.to_owned(),
        };
        if !self.record.is_waiting(&key) {
            send_read(&mut self.shared, name);
        }
        Ok(self.record.wait(&mut self.shared, key))
    }

    /// Asks for the record's version without reading it. The result comes as
    /// [`Event::RecordHeadResult`]; -1 means the record does not exist.
    pub fn record_head(&mut self, name: &str, now: Timestamp) -> Result<RequestId, RecordError> {
        self.shared.now = now;
        if !check_name(name) {
            return Err(RecordError::EmptyName);
        }
        if let Some(state) = self.record.records.get(name) {
            if let (Status::Ready, Some(version)) = (state.status, state.version) {
                let request = RequestId(self.shared.next_id());
                self.shared.emit(Event::RecordHeadResult {
                    request,
                    result: Ok(version),
                });
                return Ok(request);
            }
        }
        if !self.shared.logged_in {
            return Err(RecordError::ClientOffline);
        }
        let key = Waiting::Head {
            name: name.to_owned(),
        };
        if !self.record.is_waiting(&key) {
            self.shared.send(
                TopicMessage::Record(RecordMessage {
                    action: RecordAction::Head.into(),
                    name: name.to_owned(),
                    ..Default::default()
                })
                .encode_frame(),
            );
        }
        Ok(self.record.wait(&mut self.shared, key))
    }

    /// Writes to the record `name` without subscribing to it: the whole data
    /// (`path` `None`), the value at `path`, or (`data` `None`) an erase at
    /// `path`. The server creates the record when it is missing and gives the
    /// write the next version. When this client has the record open, the
    /// write goes through it as [`Session::record_set`] does.
    pub fn record_set_data(
        &mut self,
        name: &str,
        path: Option<&str>,
        data: Option<&str>,
        ack: bool,
        now: Timestamp,
    ) -> Result<Option<RequestId>, RecordError> {
        self.shared.now = now;
        if !check_name(name) {
            return Err(RecordError::EmptyName);
        }
        if path.is_none() && data.is_none() {
            return Err(RecordError::NotAContainer);
        }
        let (parsed_path, value) = parse_write(path, data)?;
        if self.record.records.contains_key(name) {
            return self
                .record
                .write(&mut self.shared, name, parsed_path, value, ack);
        }
        if !self.shared.logged_in {
            return Err(RecordError::ClientOffline);
        }
        let action = match (path, &value) {
            (None, _) => RecordAction::Createandupdate,
            (Some(_), Some(_)) => RecordAction::Createandpatch,
            (Some(_), None) => RecordAction::Erase,
        };
        let request = ack.then(|| RequestId(self.shared.next_id()));
        let correlation_id =
            request.map(|request| self.record.expect_write_ack(&mut self.shared, request));
        self.shared.send(write_frame(
            action,
            name,
            -1,
            path,
            value.as_ref(),
            correlation_id.as_deref(),
        ));
        Ok(request)
    }

    /// Tells the server that the records `names` changed in its storage, so
    /// that it reads them again and updates every subscriber. The result
    /// comes as [`Event::RecordNotifyResult`].
    pub fn record_notify(
        &mut self,
        names: &[&str],
        now: Timestamp,
    ) -> Result<RequestId, RecordError> {
        self.shared.now = now;
        if names.iter().any(|name| !check_name(name)) {
            return Err(RecordError::EmptyName);
        }
        if !self.shared.logged_in {
            return Err(RecordError::ClientOffline);
        }
        let id = self.shared.next_id();
        let correlation_id = format!("{}-n{id}", self.shared.id_prefix);
        self.shared.send(
            TopicMessage::Record(RecordMessage {
                action: RecordAction::Notify.into(),
                names: names.iter().map(|name| (*name).to_owned()).collect(),
                correlation_id: correlation_id.clone(),
                ..Default::default()
            })
            .encode_frame(),
        );
        Ok(self
            .record
            .wait(&mut self.shared, Waiting::Notify { correlation_id }))
    }

    /// Returns the entries of a list: the strings of the record's array, or
    /// none when the data is not an array.
    pub fn list_entries(&self, list: RecordId) -> Result<Vec<String>, RecordError> {
        let (name, state) = self.record.state(list)?;
        if state.status == Status::Subscribing {
            return Err(RecordError::NotReady { name: name.clone() });
        }
        Ok(entries_of(&state.data))
    }

    /// Replaces the entries of a list.
    pub fn list_set_entries(
        &mut self,
        list: RecordId,
        entries: &[String],
        ack: bool,
        now: Timestamp,
    ) -> Result<Option<RequestId>, RecordError> {
        self.shared.now = now;
        let name = self.record.state(list)?.0.clone();
        let value = Value::Array(entries.iter().cloned().map(Value::String).collect());
        self.record
            .write(&mut self.shared, &name, None, Some(value), ack)
    }

    /// Adds an entry at `index`, or at the end. An index past the end fails
    /// with [`RecordError::InvalidIndex`].
    pub fn list_add_entry(
        &mut self,
        list: RecordId,
        entry: &str,
        index: Option<usize>,
        ack: bool,
        now: Timestamp,
    ) -> Result<Option<RequestId>, RecordError> {
        let mut entries = self.list_entries(list)?;
        match index {
            Some(index) if index > entries.len() => {
                return Err(RecordError::InvalidIndex { index });
            }
            Some(index) => entries.insert(index, entry.to_owned()),
            None => entries.push(entry.to_owned()),
        }
        self.list_set_entries(list, &entries, ack, now)
    }

    /// Removes every occurrence of `entry`, or with `index` only the entry at
    /// that index, if it is `entry` (as the official client does). An index
    /// past the end fails with [`RecordError::InvalidIndex`].
    pub fn list_remove_entry(
        &mut self,
        list: RecordId,
        entry: &str,
        index: Option<usize>,
        ack: bool,
        now: Timestamp,
    ) -> Result<Option<RequestId>, RecordError> {
        let entries = self.list_entries(list)?;
        if let Some(index) = index {
            if index >= entries.len() {
                return Err(RecordError::InvalidIndex { index });
            }
        }
        let kept: Vec<String> = entries
            .into_iter()
            .enumerate()
            .filter(|(i, existing)| existing != entry || index.is_some_and(|index| index != *i))
            .map(|(_, existing)| existing)
            .collect();
        self.list_set_entries(list, &kept, ack, now)
    }
}

fn entries_of(data: &Value) -> Vec<String> {
    match data {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}
