//! Presence commands: queries and subscriptions.

use serde_json::{Value, json};

use super::Connection;
use super::failure::Failure;

impl Connection {
    pub(super) async fn presence_get_all(&self) -> Result<Value, Failure> {
        let mut users = self.client.presence().get_all().await?;
        users.sort();
        Ok(json!(users))
    }

    pub(super) async fn presence_get(&self, users: &[String]) -> Result<Value, Failure> {
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        let online = self.client.presence().get(&users).await?;
        Ok(json!(online))
    }

    /// Follows `user`, or every user when it is `None`.
    pub(super) async fn presence_subscribe(
        &mut self,
        user: Option<&str>,
    ) -> Result<Value, Failure> {
        let presence = self.client.presence();
        let mut subscription = match user {
            Some(user) => presence.subscribe(user).await,
            None => presence.subscribe_all().await,
        }?;
        let observations = self.observations.clone();
        self.tasks.spawn(async move {
            while let Some(change) = subscription.next().await {
                observations.send(
                    json!({"kind": "presence", "user": change.user, "online": change.online}),
                );
            }
        });
        Ok(Value::Null)
    }
}
