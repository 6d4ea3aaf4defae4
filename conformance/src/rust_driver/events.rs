//! Event commands: subscriptions, emits and listening.

use std::sync::{Arc, MutexGuard, PoisonError};

use deepstream_client::tokio::{EventSubscription, ListenEvent, ListenRequest};
use serde_json::{Value, json};

use super::failure::Failure;
use super::{Connection, PendingListens, parse_json_lossy, start_all};

impl Connection {
    pub(super) async fn subscribe(&mut self, name: &str) -> Result<Value, Failure> {
        let subscription = self.client.event().subscribe(name).await?;
        self.watch_event(subscription);
        Ok(Value::Null)
    }

    /// Subscribes to all `names` at once. When one subscription fails, the
    /// others end too, so that the command has no partial effect.
    pub(super) async fn subscribe_many(&mut self, names: &[String]) -> Result<Value, Failure> {
        let events = self.client.event();
        let results = start_all(names.iter().map(|name| events.subscribe(name))).await;
        let subscriptions = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        for subscription in subscriptions {
            self.watch_event(subscription);
        }
        Ok(Value::Null)
    }

    /// Ends every subscription to `name`, and returns once no observation
    /// for it can follow.
    pub(super) async fn unsubscribe(&mut self, name: &str) -> Result<Value, Failure> {
        let tasks = self
            .event_tasks
            .remove(name)
            .ok_or_else(|| Failure::invalid(format!("no subscription to the event {name:?}")))?;
        for task in tasks {
            // Ending the task drops its subscription handle, which unsubscribes.
            task.abort();
            let _ = task.await;
        }
        Ok(Value::Null)
    }

    pub(super) async fn emit(&self, name: &str, data: Option<&str>) -> Result<Value, Failure> {
        self.client.event().emit_data(name, data).await?;
        Ok(Value::Null)
    }

    pub(super) async fn listen(&mut self, pattern: String) -> Result<Value, Failure> {
        let mut listener = self.client.event().listen(&pattern).await?;
        let observations = self.observations.clone();
        let listens = Arc::clone(&self.listens);
        self.tasks.spawn(async move {
            while let Some(event) = listener.next().await {
                let (name, state) = match event {
                    ListenEvent::Request(request) => {
                        let name = request.name().to_owned();
                        lock(&listens).insert(name.clone(), request);
                        (name, "start")
                    }
                    ListenEvent::Stopped { name } => (name, "stop"),
                    _ => continue,
                };
                observations.send(
                    json!({"kind": "listen", "pattern": pattern, "name": name, "state": state}),
                );
            }
        });
        Ok(Value::Null)
    }

    pub(super) fn answer_listen(&self, name: &str, accept: bool) -> Result<Value, Failure> {
        let request = lock(&self.listens)
            .remove(name)
            .ok_or_else(|| Failure::invalid(format!("no listen request for {name:?}")))?;
        if accept {
            request.accept();
        } else {
            request.reject();
        }
        Ok(Value::Null)
    }

    fn watch_event(&mut self, mut subscription: EventSubscription) {
        let name = subscription.name().to_owned();
        let observations = self.observations.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = subscription.next().await {
                let data = event.data.as_deref().map(parse_json_lossy);
                observations.send(json!({"kind": "event", "name": event.name, "data": data}));
            }
        });
        self.event_tasks.entry(name).or_default().push(task);
    }
}

fn lock(
    listens: &PendingListens,
) -> MutexGuard<'_, std::collections::HashMap<String, ListenRequest>> {
    // A panic while holding the lock leaves only a map of pending requests,
    // which stays usable.
    listens.lock().unwrap_or_else(PoisonError::into_inner)
}
