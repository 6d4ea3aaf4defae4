//! The result of each item, in deepstream 7.0's JSON shape, built from the replies the
//! topic handlers send to the request's virtual connection.
//!
//! A successful item is `{"success": true}` with the fields of its action: `data` for an
//! RPC result, `version` and `data` for a record read, `version` for a record head,
//! `users` for a presence query. A failed item is `{"success": false}` with `error` (a
//! description), `errorTopic` (the topic in lowercase) and `errorEvent` (the number of the
//! error action, as deepstream 7 sends it). Some errors add fields, as in deepstream:
//! `action` (the denied action's number), `currentVersion` and `currentData` (after a
//! version conflict) and `errorParams` (the name the error is about). The `error` texts are
//! this server's own.

use deepstream_protocol::{
    EventAction, PresenceAction, PresenceMessage, RecordAction, RecordMessage, RpcAction,
    RpcMessage, Topic, action_name, topic_name,
};
use serde_json::{Map, Value};

/// One item's result, a JSON object.
pub(super) type ItemResult = Map<String, Value>;

/// Returns `{"success": true}`.
pub(super) fn success() -> ItemResult {
    let mut result = Map::new();
    result.insert("success".to_owned(), Value::Bool(true));
    result
}

/// Returns the result of an RPC reply, or `None` for an ACCEPT, after which the result
/// is still to come.
pub(super) fn rpc(message: &RpcMessage) -> Option<ItemResult> {
    match message.action() {
        RpcAction::Accept => None,
        RpcAction::Response => {
            let mut result = Map::new();
            if let Some(data) = parse_data(&message.data) {
                result.insert("data".to_owned(), data);
            }
            result.insert("success".to_owned(), Value::Bool(true));
            Some(result)
        }
        RpcAction::RequestError => {
            let mut result = Map::new();
            result.insert("errorTopic".to_owned(), Value::from("rpc"));
            result.insert(
                "error".to_owned(),
                parse_data(&message.data).unwrap_or(Value::Null),
            );
            result.insert("success".to_owned(), Value::Bool(false));
            Some(result)
        }
        _ => Some(error(&Reply {
            topic: Topic::Rpc,
            action: message.action,
            original_action: message.original_action,
            name: &message.name,
            data: &message.data,
            version: None,
        })),
    }
}

/// Returns the result of a record reply.
pub(super) fn record(message: &RecordMessage) -> ItemResult {
    let version = || Value::from(message.version.unwrap_or(-1));
    match message.action() {
        RecordAction::ReadResponse => {
            let mut result = Map::new();
            result.insert("version".to_owned(), version());
            result.insert(
                "data".to_owned(),
                parse_data(&message.data).unwrap_or(Value::Null),
            );
            result.insert("success".to_owned(), Value::Bool(true));
            result
        }
        RecordAction::HeadResponse => {
            let mut result = Map::new();
            result.insert("version".to_owned(), version());
            result.insert("success".to_owned(), Value::Bool(true));
            result
        }
        RecordAction::WriteAcknowledgement | RecordAction::DeleteSuccess => success(),
        RecordAction::Notify if message.is_ack => success(),
        _ => error(&Reply {
            topic: Topic::Record,
            action: message.action,
            original_action: message.original_action,
            name: &message.name,
            data: &message.data,
            version: message.version,
        }),
    }
}

/// Returns the result of a presence reply.
pub(super) fn presence(message: &PresenceMessage) -> ItemResult {
    let users = match message.action() {
        PresenceAction::QueryAllResponse => Value::from(message.names.clone()),
        PresenceAction::QueryResponse => parse_data(&message.data).unwrap_or(Value::Null),
        _ => {
            return error(&Reply {
                topic: Topic::Presence,
                action: message.action,
                original_action: message.original_action,
                name: &message.name,
                data: &message.data,
                version: None,
            });
        }
    };
    let mut result = Map::new();
    result.insert("users".to_owned(), users);
    result.insert("success".to_owned(), Value::Bool(true));
    result
}

/// Returns the result of an action the permission rules denied, as a `MESSAGE_DENIED`
/// reply would give it. `action` is the denied protocol action.
pub(super) fn denied(topic: Topic, action: i32, name: &str) -> ItemResult {
    let denied_action = match topic {
        Topic::Record => i32::from(RecordAction::MessageDenied),
        Topic::Rpc => i32::from(RpcAction::MessageDenied),
        Topic::Event => i32::from(EventAction::MessageDenied),
        _ => i32::from(PresenceAction::MessageDenied),
    };
    let mut result = failure(topic, Value::from(denied_action));
    result.insert("action".to_owned(), Value::from(action));
    result.insert(
        "error".to_owned(),
        Value::from(denied_text(topic, action, name)),
    );
    result
}

/// Returns the result of an event emit that the permission rules did not allow. deepstream
/// gives it a shape of its own, with names instead of numbers.
pub(super) fn event_denied(name: &str) -> ItemResult {
    let mut result = Map::new();
    result.insert("success".to_owned(), Value::Bool(false));
    result.insert(
        "error".to_owned(),
        Value::from(format!("emitting event \"{name}\" is not permitted")),
    );
    result.insert("errorEvent".to_owned(), Value::from("MESSAGE_DENIED"));
    result.insert("errorAction".to_owned(), Value::from("emit"));
    result.insert("errorTopic".to_owned(), Value::from("event"));
    result
}

/// Returns the result of an item whose permission rule failed, as a
/// `MESSAGE_PERMISSION_ERROR` reply would give it. The rule's error is logged, not sent.
pub(super) fn permission_error(topic: Topic, action: i32, name: &str) -> ItemResult {
    let error_action = match topic {
        Topic::Record => i32::from(RecordAction::MessagePermissionError),
        Topic::Rpc => i32::from(RpcAction::MessagePermissionError),
        Topic::Event => i32::from(EventAction::MessagePermissionError),
        _ => i32::from(PresenceAction::MessagePermissionError),
    };
    let action_text = action_name(topic, action).unwrap_or("the action");
    let mut result = failure(topic, Value::from(error_action));
    result.insert(
        "error".to_owned(),
        Value::from(format!(
            "checking the permission rule of {action_text} failed, so it is not permitted; the server log has the rule's error"
        )),
    );
    result.insert("errorParams".to_owned(), Value::from(name));
    result
}

/// Returns the result of an item of a topic that `enabledFeatures` turns off.
pub(super) fn topic_disabled(topic: Topic) -> ItemResult {
    let key = topic_key(topic);
    let mut result = failure(topic, Value::from("UNKNOWN_TOPIC"));
    result.insert(
        "error".to_owned(),
        Value::from(format!(
            "the {key} topic is disabled on this server (enabledFeatures.{key})"
        )),
    );
    result
}

/// Returns the result of an item that had no reply within the request timeout.
pub(super) fn timed_out(millis: u128) -> ItemResult {
    let mut result = Map::new();
    result.insert("success".to_owned(), Value::Bool(false));
    result.insert(
        "error".to_owned(),
        Value::from(format!(
            "no result within the request timeout of {millis} ms (requestTimeout)"
        )),
    );
    result.insert("errorTopic".to_owned(), Value::from("connection"));
    result.insert("errorEvent".to_owned(), Value::from("HTTP_REQUEST_TIMEOUT"));
    result
}

/// Returns the result of an item that had no reply because the request ended early, for
/// the reason `reason`.
pub(super) fn aborted(reason: &str) -> ItemResult {
    let mut result = Map::new();
    result.insert("success".to_owned(), Value::Bool(false));
    result.insert("error".to_owned(), Value::from(reason));
    result.insert("errorTopic".to_owned(), Value::from("connection"));
    result.insert("errorEvent".to_owned(), Value::from("CONNECTION_ERROR"));
    result
}

/// Returns deepstream's summary of a request: `SUCCESS` when every item succeeded,
/// `FAILURE` when none did, else `PARTIAL_SUCCESS`.
pub(super) fn summary(results: &[ItemResult]) -> &'static str {
    let succeeded = results.iter().filter(|result| is_success(result)).count();
    if succeeded == results.len() {
        "SUCCESS"
    } else if succeeded == 0 {
        "FAILURE"
    } else {
        "PARTIAL_SUCCESS"
    }
}

/// Returns true for a result with `"success": true`.
pub(super) fn is_success(result: &ItemResult) -> bool {
    result.get("success") == Some(&Value::Bool(true))
}

/// The parts of an error reply that its result reads.
struct Reply<'a> {
    topic: Topic,
    action: i32,
    original_action: i32,
    name: &'a str,
    data: &'a [u8],
    version: Option<i32>,
}

fn error(reply: &Reply<'_>) -> ItemResult {
    let Reply {
        topic,
        action,
        original_action,
        name,
        data,
        version,
    } = *reply;
    let action_text = action_name(topic, action).unwrap_or("UNKNOWN");
    if action_text == "MESSAGE_DENIED" {
        return denied(topic, original_action, name);
    }

    let mut result = failure(topic, Value::from(action));
    let current_version = Value::from(version.unwrap_or(-1));
    let text = match (topic, action_text) {
        (Topic::Record, "VERSION_EXISTS") => {
            result.insert("currentVersion".to_owned(), current_version);
            if let Some(current) = parse_data(data) {
                result.insert("currentData".to_owned(), current);
            }
            format!(
                "version conflict: record \"{name}\" is already at version {}; read it and write the next version",
                version.unwrap_or(-1)
            )
        }
        (Topic::Record, "INVALID_VERSION") => {
            result.insert("currentVersion".to_owned(), current_version);
            format!(
                "invalid version for record \"{name}\", which is at version {}; write the next version, or -1",
                version.unwrap_or(-1)
            )
        }
        (Topic::Record, "RECORD_NOT_FOUND") => format!("record \"{name}\" not found"),
        (Topic::Rpc, "NO_RPC_PROVIDER") => format!("no provider for the RPC \"{name}\""),
        (Topic::Rpc, "ACCEPT_TIMEOUT") => {
            format!("the provider of the RPC \"{name}\" did not accept it within rpc.ackTimeout")
        }
        (Topic::Rpc, "RESPONSE_TIMEOUT") => {
            format!("the provider of the RPC \"{name}\" did not respond within rpc.responseTimeout")
        }
        _ => {
            result.insert("errorParams".to_owned(), Value::from(name));
            match parse_data(data) {
                Some(Value::String(reason)) => format!("{action_text}: {reason}"),
                _ => format!("{action_text} for \"{name}\""),
            }
        }
    };
    result.insert("error".to_owned(), Value::from(text));
    result
}

/// Starts a failure result with deepstream's fields.
fn failure(topic: Topic, error_event: Value) -> ItemResult {
    let mut result = Map::new();
    result.insert("errorTopic".to_owned(), Value::from(topic_key(topic)));
    result.insert("errorEvent".to_owned(), error_event);
    result.insert("success".to_owned(), Value::Bool(false));
    result
}

fn denied_text(topic: Topic, action: i32, name: &str) -> String {
    let action_text = action_name(topic, action).unwrap_or("the action");
    format!(
        "{action_text} on {} \"{name}\" is not permitted",
        topic_key(topic)
    )
}

/// Returns deepstream's lowercase name of a topic, such as `record`.
fn topic_key(topic: Topic) -> String {
    topic_name(topic).to_ascii_lowercase()
}

/// Parses the JSON text of a message's data; `None` when there is none. Text that is not
/// JSON, which only a misbehaving client can send, is returned as a string.
fn parse_data(data: &[u8]) -> Option<Value> {
    if data.is_empty() {
        return None;
    }
    Some(
        serde_json::from_slice(data)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned())),
    )
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> ItemResult {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn record_replies_give_deepstream_fields() {
        let read = RecordMessage {
            action: RecordAction::ReadResponse.into(),
            name: "a".into(),
            version: Some(3),
            data: Bytes::from_static(br#"{"x":1}"#),
            ..Default::default()
        };
        assert_eq!(
            record(&read),
            object(json!({"version": 3, "data": {"x": 1}, "success": true}))
        );

        let head = RecordMessage {
            action: RecordAction::HeadResponse.into(),
            name: "a".into(),
            version: Some(-1),
            ..Default::default()
        };
        assert_eq!(
            record(&head),
            object(json!({"version": -1, "success": true}))
        );
    }

    #[test]
    fn version_conflict_carries_current_state() {
        let conflict = RecordMessage {
            action: RecordAction::VersionExists.into(),
            original_action: RecordAction::Createandupdate.into(),
            name: "a".into(),
            version: Some(4),
            data: Bytes::from_static(br#"{"y":2}"#),
            ..Default::default()
        };

        let result = record(&conflict);

        assert_eq!(result["success"], json!(false));
        assert_eq!(result["errorTopic"], json!("record"));
        assert_eq!(
            result["errorEvent"],
            json!(i32::from(RecordAction::VersionExists))
        );
        assert_eq!(result["currentVersion"], json!(4));
        assert_eq!(result["currentData"], json!({"y": 2}));
        assert!(
            result["error"].as_str().unwrap().contains("version 4"),
            "{result:?}"
        );
    }

    #[test]
    fn other_errors_name_action_and_reason() {
        let failed = RecordMessage {
            action: RecordAction::RecordUpdateError.into(),
            original_action: RecordAction::Createandupdate.into(),
            name: "a".into(),
            data: Bytes::from_static(br#""writing the record to the storage failed""#),
            ..Default::default()
        };

        let result = record(&failed);

        assert_eq!(
            result["error"],
            json!("RECORD_UPDATE_ERROR: writing the record to the storage failed")
        );
        assert_eq!(result["errorParams"], json!("a"));
    }

    #[test]
    fn rpc_accept_is_not_a_result() {
        let accept = RpcMessage {
            action: RpcAction::Accept.into(),
            ..Default::default()
        };
        assert_eq!(rpc(&accept), None);

        let response = RpcMessage {
            action: RpcAction::Response.into(),
            data: Bytes::from_static(b"5"),
            ..Default::default()
        };
        assert_eq!(
            rpc(&response),
            Some(object(json!({"data": 5, "success": true})))
        );

        let failed = RpcMessage {
            action: RpcAction::RequestError.into(),
            data: Bytes::from_static(br#""division by zero""#),
            ..Default::default()
        };
        assert_eq!(
            rpc(&failed),
            Some(object(
                json!({"errorTopic": "rpc", "error": "division by zero", "success": false})
            ))
        );
    }

    #[test]
    fn denial_names_action() {
        let result = denied(Topic::Record, RecordAction::Read.into(), "secret");

        assert_eq!(
            result["errorEvent"],
            json!(i32::from(RecordAction::MessageDenied))
        );
        assert_eq!(result["action"], json!(i32::from(RecordAction::Read)));
        assert_eq!(
            result["error"],
            json!("READ on record \"secret\" is not permitted")
        );
    }

    #[test]
    fn summary_counts_successes() {
        let failed = aborted("stopped");
        assert_eq!(summary(&[success(), success()]), "SUCCESS");
        assert_eq!(summary(&[success(), failed.clone()]), "PARTIAL_SUCCESS");
        assert_eq!(summary(&[failed]), "FAILURE");
    }
}
