//! Record and list commands.

use deepstream_client::core::RecordError;
use deepstream_client::tokio::{List, ListSubscription, Record, RecordSubscription};
use serde_json::{Value, json};

use super::command::RecordWrite;
use super::failure::Failure;
use super::{Connection, parse_json, parse_json_lossy, start_all};

/// A name this driver opened, as a record or as a list.
#[derive(Debug)]
pub(super) enum Opened {
    Record(Record),
    List(List),
}

impl Opened {
    fn record(&self) -> &Record {
        match self {
            Opened::Record(record) => record,
            Opened::List(list) => list.record(),
        }
    }
}

impl Connection {
    pub(super) async fn record_get(&mut self, name: &str) -> Result<Value, Failure> {
        let record = self.open_record(name).await?;
        parse_json(&record.get().await?)
    }

    pub(super) async fn record_version(&mut self, name: &str) -> Result<Value, Failure> {
        let record = self.open_record(name).await?;
        Ok(json!(record.version().await?))
    }

    pub(super) async fn record_set(&mut self, write: &RecordWrite) -> Result<Value, Failure> {
        let record = self.open_record(&write.name).await?;
        let data = write.data.as_str();
        match (write.path.as_deref(), write.ack) {
            (Some(path), true) => record.set_path_with_ack(path, data).await,
            (Some(path), false) => record.set_path(path, data).await,
            (None, true) => record.set_with_ack(data).await,
            (None, false) => record.set(data).await,
        }?;
        Ok(Value::Null)
    }

    pub(super) async fn record_erase(&mut self, name: &str, path: &str) -> Result<Value, Failure> {
        let record = self.open_record(name).await?;
        record.erase_with_ack(path).await?;
        Ok(Value::Null)
    }

    pub(super) async fn record_subscribe(
        &mut self,
        name: String,
        path: Option<String>,
    ) -> Result<Value, Failure> {
        let record = self.open_record(&name).await?;
        let subscription = match &path {
            Some(path) => record.subscribe_path(path).await,
            None => record.subscribe().await,
        }?;
        self.watch_record(name, path, subscription);
        Ok(Value::Null)
    }

    /// Opens all `names` at once and follows each whole record. When one
    /// record fails to open, the others opened here are discarded again.
    pub(super) async fn record_subscribe_many(
        &mut self,
        names: &[String],
    ) -> Result<Value, Failure> {
        let missing: Vec<&String> = names
            .iter()
            .filter(|name| !self.opened.contains_key(*name))
            .collect();
        let records = self.client.record();
        let results = start_all(missing.iter().map(|name| records.get(name))).await;
        let opened = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        for (name, record) in missing.into_iter().zip(opened) {
            self.opened.insert(name.clone(), Opened::Record(record));
        }

        let records = names
            .iter()
            .map(|name| self.opened.get(name).map(Opened::record))
            .collect::<Option<Vec<&Record>>>()
            .ok_or_else(|| Failure::failed("a record was closed while it was being opened"))?;
        let results = start_all(records.iter().map(|record| record.subscribe())).await;
        let subscriptions = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        for (name, subscription) in names.iter().zip(subscriptions) {
            self.watch_record(name.clone(), None, subscription);
        }
        Ok(Value::Null)
    }

    pub(super) async fn record_delete(&mut self, name: &str) -> Result<Value, Failure> {
        let opened = match self.opened.remove(name) {
            Some(opened) => opened,
            None => Opened::Record(self.client.record().get(name).await?),
        };
        match opened {
            Opened::Record(record) => record.delete().await,
            Opened::List(list) => list.delete().await,
        }?;
        Ok(Value::Null)
    }

    pub(super) async fn record_has(&self, name: &str) -> Result<Value, Failure> {
        Ok(json!(self.client.record().has(name).await?))
    }

    pub(super) async fn record_snapshot(&self, name: &str) -> Result<Value, Failure> {
        parse_json(&self.client.record().snapshot(name).await?)
    }

    pub(super) async fn record_head(&self, name: &str) -> Result<Value, Failure> {
        let version = self.client.record().head(name).await?;
        // The client returns -1 for a missing record, as the server sends it.
        if version == -1 {
            let error = RecordError::NotFound {
                name: name.to_owned(),
            };
            return Err(error.into());
        }
        Ok(json!(version))
    }

    pub(super) async fn record_set_data(&self, write: &RecordWrite) -> Result<Value, Failure> {
        let records = self.client.record();
        match write.path.as_deref() {
            Some(path) => records.set_data_path(&write.name, path, &write.data).await,
            None => records.set_data(&write.name, &write.data).await,
        }?;
        Ok(Value::Null)
    }

    pub(super) async fn record_notify(&self, names: &[String]) -> Result<Value, Failure> {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.client.record().notify(&names).await?;
        Ok(Value::Null)
    }

    pub(super) async fn list_get(&mut self, name: &str) -> Result<Value, Failure> {
        let list = self.open_list(name).await?;
        Ok(json!(list.entries().await?))
    }

    pub(super) async fn list_set(
        &mut self,
        name: &str,
        entries: &[String],
    ) -> Result<Value, Failure> {
        let entries: Vec<&str> = entries.iter().map(String::as_str).collect();
        let list = self.open_list(name).await?;
        list.set_entries(&entries).await?;
        Ok(Value::Null)
    }

    pub(super) async fn list_add(
        &mut self,
        name: &str,
        entry: &str,
        index: Option<usize>,
    ) -> Result<Value, Failure> {
        let list = self.open_list(name).await?;
        list.add_entry(entry, index).await?;
        Ok(Value::Null)
    }

    pub(super) async fn list_remove(&mut self, name: &str, entry: &str) -> Result<Value, Failure> {
        let list = self.open_list(name).await?;
        list.remove_entry(entry, None).await?;
        Ok(Value::Null)
    }

    pub(super) async fn list_subscribe(&mut self, name: String) -> Result<Value, Failure> {
        let list = self.open_list(&name).await?;
        let subscription = list.subscribe().await?;
        self.watch_list(name, subscription);
        Ok(Value::Null)
    }

    /// Returns the record `name`, opening it on first use. A name opened as
    /// a list gives the list's record.
    async fn open_record(&mut self, name: &str) -> Result<&Record, Failure> {
        if !self.opened.contains_key(name) {
            let record = self.client.record().get(name).await?;
            self.opened.insert(name.to_owned(), Opened::Record(record));
        }
        self.opened
            .get(name)
            .map(Opened::record)
            .ok_or_else(|| Failure::failed("the record was closed right after opening it"))
    }

    /// Returns the list `name`, opening it on first use.
    async fn open_list(&mut self, name: &str) -> Result<&List, Failure> {
        match self.opened.get(name) {
            Some(Opened::List(_)) => {}
            Some(Opened::Record(_)) => {
                return Err(Failure::invalid(format!(
                    "{name:?} is open as a record, so it cannot be used as a list"
                )));
            }
            None => {
                let list = self.client.record().list(name).await?;
                self.opened.insert(name.to_owned(), Opened::List(list));
            }
        }
        match self.opened.get(name) {
            Some(Opened::List(list)) => Ok(list),
            _ => Err(Failure::failed(
                "the list was closed right after opening it",
            )),
        }
    }

    /// Writes `record` observations for each change, and `record-deleted`
    /// when the subscription ends while the client is still open.
    fn watch_record(
        &mut self,
        name: String,
        path: Option<String>,
        mut subscription: RecordSubscription,
    ) {
        let observations = self.observations.clone();
        let state = self.client.state_changes();
        self.tasks.spawn(async move {
            // The client yields the current value first, since every record
            // is ready before it is subscribed to. It is not a change.
            let _current = subscription.next().await;
            while let Some(value) = subscription.next().await {
                let data = value.as_deref().map(parse_json_lossy);
                observations
                    .send(json!({"kind": "record", "name": name, "path": path, "data": data}));
            }
            // The client ends record subscriptions both for a deletion and
            // when it closes, so its state decides which one happened.
            if !state.borrow().is_final() {
                observations.send(json!({"kind": "record-deleted", "name": name}));
            }
        });
    }

    fn watch_list(&mut self, name: String, mut subscription: ListSubscription) {
        let observations = self.observations.clone();
        self.tasks.spawn(async move {
            // As for records, the first entries are the current ones.
            let _current = subscription.next().await;
            while let Some(entries) = subscription.next().await {
                observations.send(json!({"kind": "list", "name": name, "entries": entries}));
            }
        });
    }
}
