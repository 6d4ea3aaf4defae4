//! The results of one request's items, and the replies still awaited for them.
//!
//! Every item of a request uses the same virtual connection, so each reply is matched to
//! its item. Replies to RPCs, record writes, notify and presence queries of named users
//! carry the item's correlation id. Replies to record reads, heads and deletes are
//! matched by record name and request action, and replies to presence queries of
//! everyone by action alone. Items that wait for the same kind of reply get them in the
//! order they were handed to the handler, which is the order the handler replies in.

use bytes::Bytes;
use deepstream_protocol::{PresenceAction, RecordAction, Topic, TopicMessage};
use serde_json::{Map, Value};

use super::results::{self, ItemResult};

/// The reply that finishes an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Awaited {
    /// A reply of `topic` that carries this correlation id.
    Correlated { topic: Topic, id: String },
    /// A record reply about `name` to the request `action`: READ, HEAD or DELETE.
    Record { action: RecordAction, name: String },
    /// A `QUERY_ALL_RESPONSE`.
    QueryAll,
}

/// The result of each item of a request, filled in as replies arrive.
#[derive(Debug)]
pub(super) struct Results {
    results: Vec<Option<ItemResult>>,
    /// The items without a result yet, in the order they were handed to the handlers.
    awaited: Vec<(usize, Awaited)>,
}

impl Results {
    /// Creates the results of `count` items, none known yet.
    pub(super) fn new(count: usize) -> Results {
        Results {
            results: vec![None; count],
            awaited: Vec::new(),
        }
    }

    /// Sets the result of item `index`.
    pub(super) fn set(&mut self, index: usize, result: ItemResult) {
        if let Some(slot) = self.results.get_mut(index) {
            *slot = Some(result);
        }
    }

    /// Notes that item `index` waits for the reply `awaited`.
    pub(super) fn await_reply(&mut self, index: usize, awaited: Awaited) {
        self.awaited.push((index, awaited));
    }

    /// Returns true when no item waits for a reply.
    pub(super) fn is_complete(&self) -> bool {
        self.awaited.is_empty()
    }

    /// Reads one frame that a handler sent to the virtual connection and sets the result
    /// of the item it replies to. A frame that finishes no waiting item is logged and
    /// dropped.
    pub(super) fn on_frame(&mut self, frame: Bytes) {
        let message = match TopicMessage::decode_frame(frame) {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(%error, "a handler sent an undecodable frame to an HTTP API request");
                return;
            }
        };
        let answered = match &message {
            TopicMessage::Rpc(reply) => results::rpc(reply).map(|result| {
                let awaited = Awaited::Correlated {
                    topic: Topic::Rpc,
                    id: reply.correlation_id.clone(),
                };
                (awaited, result)
            }),
            TopicMessage::Record(reply) => {
                let awaited = if reply.correlation_id.is_empty() {
                    record_request(reply.action(), reply.original_action).map(|action| {
                        Awaited::Record {
                            action,
                            name: reply.name.clone(),
                        }
                    })
                } else {
                    Some(Awaited::Correlated {
                        topic: Topic::Record,
                        id: reply.correlation_id.clone(),
                    })
                };
                awaited.map(|awaited| (awaited, results::record(reply)))
            }
            TopicMessage::Presence(reply) => {
                let awaited = if reply.action() == PresenceAction::QueryAllResponse {
                    Awaited::QueryAll
                } else {
                    Awaited::Correlated {
                        topic: Topic::Presence,
                        id: reply.correlation_id.clone(),
                    }
                };
                Some((awaited, results::presence(reply)))
            }
            _ => None,
        };

        let Some((awaited, result)) = answered else {
            tracing::debug!(
                topic = ?message.topic(),
                action = message.action(),
                "reply to an HTTP API request that finishes no item"
            );
            return;
        };
        match self
            .awaited
            .iter()
            .position(|(_, waiting)| *waiting == awaited)
        {
            Some(position) => {
                let (index, _) = self.awaited.remove(position);
                self.set(index, result);
            }
            None => {
                tracing::debug!(
                    ?awaited,
                    "reply to an HTTP API request that no item waits for"
                );
            }
        }
    }

    /// Sets `result` for every item still waiting for a reply.
    pub(super) fn fail_waiting(&mut self, result: &ItemResult) {
        for (index, _) in std::mem::take(&mut self.awaited) {
            self.set(index, result.clone());
        }
    }

    /// Returns the response body: deepstream's `result` summary and the `body` list of
    /// item results.
    pub(super) fn into_response(self) -> Value {
        let body: Vec<ItemResult> = self
            .results
            .into_iter()
            .map(|result| {
                // Every item gets a result when it is refused, when its reply arrives,
                // or from `fail_waiting`; the fallback only guards against a bug.
                result.unwrap_or_else(|| {
                    results::aborted("the server produced no result for this request")
                })
            })
            .collect();
        let mut response = Map::new();
        response.insert("result".to_owned(), Value::from(results::summary(&body)));
        response.insert(
            "body".to_owned(),
            Value::Array(body.into_iter().map(Value::Object).collect()),
        );
        Value::Object(response)
    }
}

/// Returns the request action of a record reply without a correlation id:
/// READ for `READ_RESPONSE`, HEAD for `HEAD_RESPONSE`, DELETE for `DELETE_SUCCESS`, and
/// the original action of an error.
fn record_request(action: RecordAction, original_action: i32) -> Option<RecordAction> {
    match action {
        RecordAction::ReadResponse => Some(RecordAction::Read),
        RecordAction::HeadResponse => Some(RecordAction::Head),
        RecordAction::DeleteSuccess => Some(RecordAction::Delete),
        _ => RecordAction::try_from(original_action).ok(),
    }
}

#[cfg(test)]
mod tests {
    use deepstream_protocol::{PresenceMessage, RecordMessage, RpcAction, RpcMessage};
    use serde_json::json;

    use super::*;

    fn record_frame(message: RecordMessage) -> Bytes {
        TopicMessage::Record(message).encode_frame()
    }

    fn read_response(name: &str, version: i32) -> Bytes {
        record_frame(RecordMessage {
            action: RecordAction::ReadResponse.into(),
            name: name.into(),
            version: Some(version),
            data: Bytes::from_static(b"{}"),
            ..Default::default()
        })
    }

    fn read(name: &str) -> Awaited {
        Awaited::Record {
            action: RecordAction::Read,
            name: name.into(),
        }
    }

    #[test]
    fn replies_of_one_kind_finish_items_in_order() {
        let mut results = Results::new(3);
        results.await_reply(0, read("a"));
        results.await_reply(1, read("b"));
        results.await_reply(2, read("a"));

        results.on_frame(read_response("a", 1));
        results.on_frame(read_response("a", 2));
        assert!(!results.is_complete());
        results.on_frame(read_response("b", 7));
        assert!(results.is_complete());

        let response = results.into_response();
        assert_eq!(response["result"], json!("SUCCESS"));
        assert_eq!(response["body"][0]["version"], json!(1));
        assert_eq!(response["body"][1]["version"], json!(7));
        assert_eq!(response["body"][2]["version"], json!(2));
    }

    #[test]
    fn correlated_replies_find_their_item() {
        let mut results = Results::new(2);
        results.await_reply(
            0,
            Awaited::Correlated {
                topic: Topic::Rpc,
                id: "call-1".into(),
            },
        );
        results.await_reply(
            1,
            Awaited::Correlated {
                topic: Topic::Presence,
                id: "query-1".into(),
            },
        );

        results.on_frame(
            TopicMessage::Presence(PresenceMessage {
                action: PresenceAction::QueryResponse.into(),
                correlation_id: "query-1".into(),
                data: Bytes::from_static(br#"{"ada":true}"#),
                ..Default::default()
            })
            .encode_frame(),
        );
        let accept = RpcMessage {
            action: RpcAction::Accept.into(),
            correlation_id: "call-1".into(),
            ..Default::default()
        };
        results.on_frame(TopicMessage::Rpc(accept).encode_frame());
        assert!(!results.is_complete(), "an ACCEPT does not finish an RPC");
        let response = RpcMessage {
            action: RpcAction::Response.into(),
            correlation_id: "call-1".into(),
            data: Bytes::from_static(b"3"),
            ..Default::default()
        };
        results.on_frame(TopicMessage::Rpc(response).encode_frame());

        assert!(results.is_complete());
        let response = results.into_response();
        assert_eq!(response["body"][0], json!({"data": 3, "success": true}));
        assert_eq!(
            response["body"][1],
            json!({"users": {"ada": true}, "success": true})
        );
    }

    #[test]
    fn record_error_matches_by_original_action() {
        let mut results = Results::new(2);
        results.await_reply(0, read("a"));
        results.await_reply(
            1,
            Awaited::Record {
                action: RecordAction::Head,
                name: "a".into(),
            },
        );

        results.on_frame(record_frame(RecordMessage {
            action: RecordAction::RecordNotFound.into(),
            original_action: RecordAction::Read.into(),
            name: "a".into(),
            is_error: true,
            ..Default::default()
        }));

        assert_eq!(results.awaited.len(), 1);
        assert_eq!(results.awaited[0].0, 1);
    }

    #[test]
    fn unmatched_reply_changes_nothing() {
        let mut results = Results::new(1);
        results.await_reply(0, read("a"));

        results.on_frame(read_response("other", 1));
        results.on_frame(Bytes::from_static(b"not a frame"));

        assert!(!results.is_complete());
    }

    #[test]
    fn waiting_items_fail_together() {
        let mut results = Results::new(2);
        results.set(0, results::success());
        results.await_reply(1, read("a"));

        results.fail_waiting(&results::timed_out(20));

        let response = results.into_response();
        assert_eq!(response["result"], json!("PARTIAL_SUCCESS"));
        assert_eq!(
            response["body"][1]["errorEvent"],
            json!("HTTP_REQUEST_TIMEOUT")
        );
    }
}
