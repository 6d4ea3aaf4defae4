//! RPC commands: providing and making calls.

use serde_json::{Value, json};

use super::command::ProviderResponse;
use super::failure::Failure;
use super::{Connection, parse_json, parse_json_lossy};

impl Connection {
    pub(super) async fn provide(
        &mut self,
        name: &str,
        response: ProviderResponse,
    ) -> Result<Value, Failure> {
        let mut provider = self.client.rpc().provide(name).await?;
        let observations = self.observations.clone();
        self.tasks.spawn(async move {
            while let Some(request) = provider.next().await {
                let data = request.data().map(parse_json_lossy);
                observations
                    .send(json!({"kind": "rpc-request", "name": request.name(), "data": data}));
                match &response {
                    ProviderResponse::Reply(data) => {
                        if let Err(error) = request.send(data).await {
                            tracing::warn!(%error, "sending the RPC response failed");
                        }
                    }
                    ProviderResponse::Fail(message) => request.error(message),
                    ProviderResponse::Reject => request.reject(),
                }
            }
        });
        Ok(Value::Null)
    }

    pub(super) async fn make(&self, name: &str, data: Option<&str>) -> Result<Value, Failure> {
        match self.client.rpc().make_data(name, data).await? {
            Some(result) => parse_json(&result),
            None => Ok(Value::Null),
        }
    }
}
