//! Typed payloads with serde (feature `serde`): the same calls as the text
//! API, converting with `serde_json` on the way in and out.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Events, ReceivedEvent, Record, RpcRequest, Rpcs};
use crate::core::{EventError, RecordError, RpcError};

/// The reason a typed call failed: the conversion, or the call itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The value could not be written as JSON.
    #[error("could not serialize the value")]
    Serialize(#[source] serde_json::Error),
    /// The JSON text could not be read as the requested type.
    #[error("could not deserialize the JSON data")]
    Deserialize(#[source] serde_json::Error),
    /// There was no data to deserialize.
    #[error("no data")]
    Missing,
    /// The event call failed.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The RPC failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The record call failed.
    #[error(transparent)]
    Record(#[from] RecordError),
}

fn to_text(value: &impl Serialize) -> Result<String, JsonError> {
    serde_json::to_string(value).map_err(JsonError::Serialize)
}

fn from_text<T: DeserializeOwned>(text: Option<&str>) -> Result<T, JsonError> {
    let text = text.ok_or(JsonError::Missing)?;
    serde_json::from_str(text).map_err(JsonError::Deserialize)
}

impl Events<'_> {
    /// Emits `value` as JSON.
    pub async fn emit_json(&self, name: &str, value: &impl Serialize) -> Result<(), JsonError> {
        Ok(self.emit(name, &to_text(value)?).await?)
    }
}

impl ReceivedEvent {
    /// Reads the payload as `T`.
    pub fn data_json<T: DeserializeOwned>(&self) -> Result<T, JsonError> {
        from_text(self.data.as_deref())
    }
}

impl Rpcs<'_> {
    /// Calls the RPC `name` with `argument` as JSON and reads the result as `R`.
    pub async fn make_json<R: DeserializeOwned>(
        &self,
        name: &str,
        argument: &impl Serialize,
    ) -> Result<R, JsonError> {
        let result = self.make(name, &to_text(argument)?).await?;
        from_text(Some(&result))
    }
}

impl RpcRequest {
    /// Reads the argument as `T`.
    pub fn data_json<T: DeserializeOwned>(&self) -> Result<T, JsonError> {
        from_text(self.data())
    }

    /// Responds with `value` as JSON.
    pub async fn send_json(self, value: &impl Serialize) -> Result<(), JsonError> {
        let text = to_text(value)?;
        Ok(self.send(&text).await?)
    }
}

impl Record {
    /// Reads the whole data as `T`.
    pub async fn get_json<T: DeserializeOwned>(&self) -> Result<T, JsonError> {
        from_text(Some(&self.get().await?))
    }

    /// Reads the value at `path` as `T`.
    pub async fn get_path_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, JsonError> {
        from_text(self.get_path(path).await?.as_deref())
    }

    /// Replaces the data with `value`, which must serialize to an object or array.
    pub async fn set_json(&self, value: &impl Serialize) -> Result<(), JsonError> {
        Ok(self.set(&to_text(value)?).await?)
    }

    /// Sets the value at `path` to `value`.
    pub async fn set_path_json(&self, path: &str, value: &impl Serialize) -> Result<(), JsonError> {
        Ok(self.set_path(path, &to_text(value)?).await?)
    }

    /// Replaces the data with `value` and waits for the server's acknowledgement.
    pub async fn set_json_with_ack(&self, value: &impl Serialize) -> Result<(), JsonError> {
        Ok(self.set_with_ack(&to_text(value)?).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
    struct Message {
        text: String,
    }

    #[test]
    fn received_event_reads_typed_data() {
        let event = ReceivedEvent {
            name: "chat".to_owned(),
            data: Some(r#"{"text":"hi"}"#.to_owned()),
        };
        let message: Message = event.data_json().unwrap();
        assert_eq!(message.text, "hi");
        assert!(matches!(
            event.data_json::<Vec<u8>>(),
            Err(JsonError::Deserialize(_))
        ));
        let empty = ReceivedEvent {
            name: "chat".to_owned(),
            data: None,
        };
        assert!(matches!(
            empty.data_json::<Message>(),
            Err(JsonError::Missing)
        ));
    }
}
