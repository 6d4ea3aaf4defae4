//! Records, lists and anonymous records over the driver task.

use tokio::sync::{mpsc, oneshot};

use super::Client;
use super::driver::{Command, Reply, Routes};
use crate::core::{MergeStrategy, RecordError, RecordId, RecordSubscriptionId, Session, Timestamp};

type Changes = mpsc::UnboundedSender<Option<String>>;

impl Client {
    /// Returns the record API.
    pub fn record(&self) -> Records<'_> {
        Records { client: self }
    }

    /// Runs `call` on the session inside the driver task and waits for the
    /// value it sends back.
    async fn call<T: Send + 'static>(
        &self,
        call: impl FnOnce(&mut Session, Timestamp, &mut Routes, Reply<Result<T, RecordError>>)
        + Send
        + 'static,
    ) -> Result<T, RecordError> {
        let (reply, result) = oneshot::channel();
        let _ = self
            .commands
            .send(Command::Call(Box::new(move |session, now, routes| {
                call(session, now, routes, reply);
            })));
        result.await.unwrap_or(Err(RecordError::ClientOffline))
    }
}

/// Records. See [`Client::record`].
#[derive(Debug, Clone, Copy)]
pub struct Records<'a> {
    client: &'a Client,
}

impl Records<'_> {
    /// Opens the record `name` and waits until its data is known. The record
    /// is created on the server when it does not exist. Dropping the handle
    /// discards it: the last handle of a name unsubscribes. While the record
    /// is subscribed again after a reconnection, the open waits until that
    /// is done.
    ///
    /// Fails at once with [`RecordError::Server`] when the server's
    /// permissions deny reading or creating the record (see
    /// [`Session::record_get`]). The official client 7.0.5 leaves such an
    /// open waiting forever.
    ///
    /// When the permissions deny subscribing to the record again after a
    /// reconnection, every [`Record`] of it is closed: its subscriptions end,
    /// its calls fail with [`RecordError::UnknownHandle`], and
    /// [`Client::errors`] reports the denial once.
    pub async fn get(&self, name: &str) -> Result<Record, RecordError> {
        let name = name.to_owned();
        let (ready, is_ready) = oneshot::channel();
        let id = self
            .client
            .call(move |session, now, routes, reply| {
                let result = session.record_get(&name, now);
                if let Ok(id) = result {
                    routes.record_ready.insert(id, ready);
                }
                let _ = reply.send(result);
            })
            .await?;
        let record = Record {
            id,
            client: self.client.clone(),
        };
        is_ready.await.unwrap_or(Err(RecordError::ClientOffline))?;
        Ok(record)
    }

    /// Opens the list `name`: a record whose data is an array of strings.
    pub async fn list(&self, name: &str) -> Result<List, RecordError> {
        Ok(List {
            record: self.get(name).await?,
        })
    }

    /// Returns an anonymous record: a record handle whose name can change.
    pub fn anonymous(&self) -> AnonymousRecord {
        AnonymousRecord {
            client: self.client.clone(),
            record: None,
            subscriptions: Vec::new(),
        }
    }

    /// Reads the record `name` without subscribing to it.
    pub async fn snapshot(&self, name: &str) -> Result<String, RecordError> {
        let name = name.to_owned();
        self.client
            .call(
                move |session, now, routes, reply| match session.record_snapshot(&name, now) {
                    Ok(request) => {
                        routes.record_snapshots.insert(request, reply);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                },
            )
            .await
    }

    /// Returns the version of the record `name`, -1 when it does not exist.
    pub async fn head(&self, name: &str) -> Result<i32, RecordError> {
        let name = name.to_owned();
        self.client
            .call(
                move |session, now, routes, reply| match session.record_head(&name, now) {
                    Ok(request) => {
                        routes.record_heads.insert(request, reply);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                },
            )
            .await
    }

    /// Returns whether the record `name` exists.
    pub async fn has(&self, name: &str) -> Result<bool, RecordError> {
        Ok(self.head(name).await? != -1)
    }

    /// Sets the whole record `name` (a JSON object or array) without
    /// subscribing to it, and waits for the server's acknowledgement.
    pub async fn set_data(&self, name: &str, data: &str) -> Result<(), RecordError> {
        self.write_data(name, None, Some(data)).await
    }

    /// Sets the value at `path` of the record `name` without subscribing to
    /// it, and waits for the server's acknowledgement.
    pub async fn set_data_path(
        &self,
        name: &str,
        path: &str,
        data: &str,
    ) -> Result<(), RecordError> {
        self.write_data(name, Some(path), Some(data)).await
    }

    /// Erases the value at `path` of the record `name` without subscribing
    /// to it, and waits for the server's acknowledgement.
    pub async fn erase_data(&self, name: &str, path: &str) -> Result<(), RecordError> {
        self.write_data(name, Some(path), None).await
    }

    async fn write_data(
        &self,
        name: &str,
        path: Option<&str>,
        data: Option<&str>,
    ) -> Result<(), RecordError> {
        let (name, path, data) = (
            name.to_owned(),
            path.map(str::to_owned),
            data.map(str::to_owned),
        );
        self.client
            .call(move |session, now, routes, reply| {
                let result =
                    session.record_set_data(&name, path.as_deref(), data.as_deref(), true, now);
                route_write(routes, reply, result);
            })
            .await
    }

    /// Tells the server that the records `names` changed in its storage.
    pub async fn notify(&self, names: &[&str]) -> Result<(), RecordError> {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        self.client
            .call(move |session, now, routes, reply| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                match session.record_notify(&names, now) {
                    Ok(request) => {
                        routes.record_done.insert(request, reply);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            })
            .await
    }
}

fn route_write(
    routes: &mut Routes,
    reply: Reply<Result<(), RecordError>>,
    result: Result<Option<crate::core::RequestId>, RecordError>,
) {
    match result {
        Ok(Some(request)) => {
            routes.record_done.insert(request, reply);
        }
        Ok(None) => {
            let _ = reply.send(Ok(()));
        }
        Err(error) => {
            let _ = reply.send(Err(error));
        }
    }
}

/// An open record, from [`Records::get`]. Dropping it discards it.
#[derive(Debug)]
pub struct Record {
    id: RecordId,
    client: Client,
}

impl Record {
    /// Returns the whole data as JSON text.
    pub async fn get(&self) -> Result<String, RecordError> {
        Ok(self.get_path_inner(None).await?.unwrap_or_default())
    }

    /// Returns the value at `path` as JSON text, `None` when the path names nothing.
    pub async fn get_path(&self, path: &str) -> Result<Option<String>, RecordError> {
        self.get_path_inner(Some(path.to_owned())).await
    }

    async fn get_path_inner(&self, path: Option<String>) -> Result<Option<String>, RecordError> {
        let id = self.id;
        self.client
            .call(move |session, _, _, reply| {
                let _ = reply.send(session.record_data(id, path.as_deref()));
            })
            .await
    }

    /// Returns the record's name.
    pub async fn name(&self) -> Result<String, RecordError> {
        let id = self.id;
        self.client
            .call(move |session, _, _, reply| {
                let _ = reply.send(session.record_name(id).map(str::to_owned));
            })
            .await
    }

    /// Returns the record's version.
    pub async fn version(&self) -> Result<i32, RecordError> {
        let id = self.id;
        self.client
            .call(move |session, _, _, reply| {
                let _ = reply.send(session.record_version(id).map(|v| v.unwrap_or(0)));
            })
            .await
    }

    /// Replaces the data (a JSON object or array). Returns once the write is
    /// sent; see [`Record::set_with_ack`] to wait until the server stored it.
    pub async fn set(&self, data: &str) -> Result<(), RecordError> {
        self.write(None, Some(data), false).await
    }

    /// Sets the value at `path`.
    pub async fn set_path(&self, path: &str, data: &str) -> Result<(), RecordError> {
        self.write(Some(path), Some(data), false).await
    }

    /// Replaces the data and waits for the server's acknowledgement.
    pub async fn set_with_ack(&self, data: &str) -> Result<(), RecordError> {
        self.write(None, Some(data), true).await
    }

    /// Sets the value at `path` and waits for the server's acknowledgement.
    pub async fn set_path_with_ack(&self, path: &str, data: &str) -> Result<(), RecordError> {
        self.write(Some(path), Some(data), true).await
    }

    /// Removes the value at `path`.
    pub async fn erase(&self, path: &str) -> Result<(), RecordError> {
        self.write(Some(path), None, false).await
    }

    /// Removes the value at `path` and waits for the server's acknowledgement.
    pub async fn erase_with_ack(&self, path: &str) -> Result<(), RecordError> {
        self.write(Some(path), None, true).await
    }

    async fn write(
        &self,
        path: Option<&str>,
        data: Option<&str>,
        ack: bool,
    ) -> Result<(), RecordError> {
        let id = self.id;
        let (path, data) = (path.map(str::to_owned), data.map(str::to_owned));
        self.client
            .call(move |session, now, routes, reply| {
                let result = match (&path, &data) {
                    (Some(path), None) => session.record_erase(id, path, ack, now),
                    (path, Some(data)) => session.record_set(id, path.as_deref(), data, ack, now),
                    (None, None) => Err(RecordError::NotAContainer),
                };
                route_write(routes, reply, result);
            })
            .await
    }

    /// Follows the whole record: the stream yields the current data first,
    /// then every change. Dropping it unsubscribes.
    pub async fn subscribe(&self) -> Result<RecordSubscription, RecordError> {
        self.subscribe_inner(None).await
    }

    /// Follows the value at `path`, as [`Record::subscribe`] follows the record.
    pub async fn subscribe_path(&self, path: &str) -> Result<RecordSubscription, RecordError> {
        self.subscribe_inner(Some(path.to_owned())).await
    }

    async fn subscribe_inner(
        &self,
        path: Option<String>,
    ) -> Result<RecordSubscription, RecordError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let id = subscribe_into(&self.client, self.id, path, sender).await?;
        Ok(RecordSubscription {
            id,
            receiver,
            client: self.client.clone(),
        })
    }

    /// Sets how version conflicts of this record are resolved.
    pub async fn set_merge_strategy(&self, strategy: MergeStrategy) -> Result<(), RecordError> {
        let id = self.id;
        self.client
            .call(move |session, _, _, reply| {
                let _ = reply.send(session.record_set_merge_strategy(id, strategy));
            })
            .await
    }

    /// Deletes the record on the server and closes the handle.
    pub async fn delete(self) -> Result<(), RecordError> {
        let id = self.id;
        self.client
            .call(
                move |session, now, routes, reply| match session.record_delete(id, now) {
                    Ok(request) => {
                        routes.record_done.insert(request, reply);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                },
            )
            .await
    }

    /// Closes the handle, as dropping it does.
    pub fn discard(self) {}
}

impl Drop for Record {
    fn drop(&mut self) {
        let id = self.id;
        let _ = self
            .client
            .commands
            .send(Command::Call(Box::new(move |session, now, routes| {
                routes.record_changes.retain(|_, (owner, _)| *owner != id);
                let _ = session.record_discard(id, now);
            })));
    }
}

async fn subscribe_into(
    client: &Client,
    record: RecordId,
    path: Option<String>,
    sender: Changes,
) -> Result<RecordSubscriptionId, RecordError> {
    client
        .call(move |session, _, routes, reply| {
            let result = session.record_subscribe(record, path.as_deref(), true);
            if let Ok(subscription) = result {
                routes.record_changes.insert(subscription, (record, sender));
            }
            let _ = reply.send(result);
        })
        .await
}

/// Changes of a record or of a path in it. Dropping it unsubscribes.
#[derive(Debug)]
pub struct RecordSubscription {
    id: RecordSubscriptionId,
    receiver: mpsc::UnboundedReceiver<Option<String>>,
    client: Client,
}

impl RecordSubscription {
    /// Waits for the next value: JSON text, or `None` inside when the path
    /// names nothing now. Returns `None` once the record was deleted or
    /// closed (see [`Records::get`]), or the client closed.
    pub async fn next(&mut self) -> Option<Option<String>> {
        self.receiver.recv().await
    }
}

impl Drop for RecordSubscription {
    fn drop(&mut self) {
        let id = self.id;
        let _ = self
            .client
            .commands
            .send(Command::Call(Box::new(move |session, _, routes| {
                routes.record_changes.remove(&id);
                let _ = session.record_unsubscribe(id);
            })));
    }
}

/// A list: a record whose data is an array of record names. From [`Records::list`].
#[derive(Debug)]
pub struct List {
    record: Record,
}

impl List {
    /// Returns the entries.
    pub async fn entries(&self) -> Result<Vec<String>, RecordError> {
        let id = self.record.id;
        self.record
            .client
            .call(move |session, _, _, reply| {
                let _ = reply.send(session.list_entries(id));
            })
            .await
    }

    /// Replaces the entries.
    pub async fn set_entries(&self, entries: &[&str]) -> Result<(), RecordError> {
        let entries: Vec<String> = entries.iter().map(|entry| (*entry).to_owned()).collect();
        let id = self.record.id;
        self.record
            .client
            .call(move |session, now, routes, reply| {
                let result = session.list_set_entries(id, &entries, true, now);
                route_write(routes, reply, result);
            })
            .await
    }

    /// Adds `entry` at `index`, or at the end. An index past the end fails
    /// with [`RecordError::InvalidIndex`].
    pub async fn add_entry(&self, entry: &str, index: Option<usize>) -> Result<(), RecordError> {
        let (entry, id) = (entry.to_owned(), self.record.id);
        self.record
            .client
            .call(move |session, now, routes, reply| {
                let result = session.list_add_entry(id, &entry, index, true, now);
                route_write(routes, reply, result);
            })
            .await
    }

    /// Removes every occurrence of `entry`, or with `index` only the entry at
    /// that index, if it is `entry`. An index past the end fails with
    /// [`RecordError::InvalidIndex`].
    pub async fn remove_entry(&self, entry: &str, index: Option<usize>) -> Result<(), RecordError> {
        let (entry, id) = (entry.to_owned(), self.record.id);
        self.record
            .client
            .call(move |session, now, routes, reply| {
                let result = session.list_remove_entry(id, &entry, index, true, now);
                route_write(routes, reply, result);
            })
            .await
    }

    /// Follows the entries: the stream yields the current entries first,
    /// then every change.
    pub async fn subscribe(&self) -> Result<ListSubscription, RecordError> {
        Ok(ListSubscription {
            inner: self.record.subscribe().await?,
        })
    }

    /// Returns the underlying record.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Deletes the list on the server.
    pub async fn delete(self) -> Result<(), RecordError> {
        self.record.delete().await
    }
}

/// Changes of a list's entries. Dropping it unsubscribes.
#[derive(Debug)]
pub struct ListSubscription {
    inner: RecordSubscription,
}

impl ListSubscription {
    /// Waits for the next entries. Data that is not an array of strings
    /// yields no entries. Returns `None` once the list was deleted or the client closed.
    pub async fn next(&mut self) -> Option<Vec<String>> {
        let data = self.inner.next().await?;
        let entries = data
            .and_then(|text| serde_json::from_str::<Vec<serde_json::Value>>(&text).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect();
        Some(entries)
    }
}

/// A record handle whose record can be swapped with [`AnonymousRecord::set_name`];
/// its subscriptions follow to the new record. From [`Records::anonymous`].
#[derive(Debug)]
pub struct AnonymousRecord {
    client: Client,
    record: Option<(String, Record)>,
    subscriptions: Vec<(Option<String>, Changes)>,
}

impl AnonymousRecord {
    /// Opens the record `name` in place of the current one and waits until it is ready.
    ///
    /// The current record stays in place when opening the new one fails.
    pub async fn set_name(&mut self, name: &str) -> Result<(), RecordError> {
        if name.is_empty() {
            return Err(RecordError::EmptyName);
        }
        if self
            .record
            .as_ref()
            .is_some_and(|(current, _)| current == name)
        {
            return Ok(());
        }
        self.subscriptions.retain(|(_, sender)| !sender.is_closed());

        let record = self.client.record().get(name).await?;
        for (path, sender) in &self.subscriptions {
            subscribe_into(&self.client, record.id, path.clone(), sender.clone()).await?;
        }
        // Dropping the previous record discards it and ends its subscriptions.
        self.record = Some((name.to_owned(), record));
        Ok(())
    }

    /// Returns the name of the current record, if any.
    pub fn name(&self) -> Option<&str> {
        self.record.as_ref().map(|(name, _)| name.as_str())
    }

    /// Returns the current record, if a name was set.
    pub fn record(&self) -> Option<&Record> {
        self.record.as_ref().map(|(_, record)| record)
    }

    /// Follows the whole current record, and every record it switches to.
    pub async fn subscribe(&mut self) -> Result<AnonymousRecordSubscription, RecordError> {
        self.subscribe_path_inner(None).await
    }

    /// Follows the value at `path` of the current record and of every record it switches to.
    pub async fn subscribe_path(
        &mut self,
        path: &str,
    ) -> Result<AnonymousRecordSubscription, RecordError> {
        self.subscribe_path_inner(Some(path.to_owned())).await
    }

    async fn subscribe_path_inner(
        &mut self,
        path: Option<String>,
    ) -> Result<AnonymousRecordSubscription, RecordError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        if let Some((_, record)) = &self.record {
            subscribe_into(&self.client, record.id, path.clone(), sender.clone()).await?;
        }
        self.subscriptions.push((path, sender.clone()));
        Ok(AnonymousRecordSubscription {
            receiver,
            sender,
            client: self.client.clone(),
        })
    }
}

/// Changes of an anonymous record, or of a path in it, across the records it
/// switches to. Dropping it unsubscribes.
#[derive(Debug)]
pub struct AnonymousRecordSubscription {
    receiver: mpsc::UnboundedReceiver<Option<String>>,
    /// A clone of the sender the routes hold, to find them on drop.
    sender: Changes,
    client: Client,
}

impl AnonymousRecordSubscription {
    /// Waits for the next value: JSON text, or `None` inside when the path
    /// names nothing now. Returns `None` once the client closed.
    pub async fn next(&mut self) -> Option<Option<String>> {
        self.receiver.recv().await
    }
}

impl Drop for AnonymousRecordSubscription {
    fn drop(&mut self) {
        let sender = self.sender.clone();
        let _ = self
            .client
            .commands
            .send(Command::Call(Box::new(move |session, _, routes| {
                let ids: Vec<RecordSubscriptionId> = routes
                    .record_changes
                    .iter()
                    .filter(|(_, (_, route))| route.same_channel(&sender))
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    routes.record_changes.remove(&id);
                    let _ = session.record_unsubscribe(id);
                }
            })));
    }
}
