//! Running the items of one request on a short-lived virtual connection.
//!
//! The virtual connection is a [`Peer`] of the authenticated user with its own outbox.
//! The topic handlers treat it like a WebSocket client, and their replies arrive on the
//! outbox's receiver, where [`Results`] matches them to items. Items are checked against
//! the permission rules and handed to their handler one after the other, in the order of
//! the request, and the response waits for every result. Handlers queue the operations on
//! one record in arrival order, so a read after a write of the same record in one request
//! returns the write.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use deepstream_protocol::{
    EventAction, EventMessage, PresenceAction, PresenceMessage, RecordAction, RecordMessage,
    RpcAction, RpcMessage, Topic,
};
use serde_json::Value;
use tokio::time::Instant;

use super::items::Item;
use super::pending::{Awaited, Results};
use super::results::{self, ItemResult};
use super::tokens::Identity;
use crate::access::{Caller, Check, Verdict};
use crate::peer::{ConnectionId, Outbox, OutboxReceiver, Outgoing, Peer};
use crate::permission::{Action, MessageData, Section};
use crate::services::Services;

/// Frames taken from the outbox at once.
const FRAMES_PER_READ: usize = 64;

/// Runs `items` for `identity` and returns the response body. Items still waiting for a
/// reply after `timeout` fail with a timeout result.
pub(super) async fn run(
    services: &Arc<Services>,
    identity: &Identity,
    items: Vec<Item>,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    let mut connection = VirtualConnection::open(services.clone(), identity);
    let mut results = Results::new(items.len());
    let peer = connection.peer.clone();
    let batch = Batch {
        services,
        identity,
        peer: &peer,
        correlation_prefix: format!("http-api/{:016x}", rand::random::<u64>()),
    };

    for (index, item) in items.iter().enumerate() {
        if !services.access.is_open() && !results.is_complete() {
            // A rule may read what an earlier item writes, so with permission rules
            // each item is checked only after the items before it have finished.
            connection
                .collect(&mut results, deadline, timeout.as_millis())
                .await;
        }
        if Instant::now() >= deadline {
            results.set(index, results::timed_out(timeout.as_millis()));
            continue;
        }
        batch.submit(index, item, &mut results).await;
    }
    connection
        .collect(&mut results, deadline, timeout.as_millis())
        .await;
    results.into_response()
}

/// The peer of one request, removed from every handler when dropped. That also happens
/// when the client disconnects before its response is ready, which drops the request's
/// future.
struct VirtualConnection {
    services: Arc<Services>,
    peer: Arc<Peer>,
    receiver: OutboxReceiver,
}

impl VirtualConnection {
    fn open(services: Arc<Services>, identity: &Identity) -> VirtualConnection {
        let (outbox, receiver) = Outbox::new(services.websocket.max_outgoing_queue_bytes);
        let client_data = identity
            .client_data
            .as_ref()
            .map(|data| Bytes::from(data.to_string()));
        let peer = Arc::new(Peer::new(
            ConnectionId::next(),
            identity.user.clone(),
            client_data,
            outbox,
        ));
        VirtualConnection {
            services,
            peer,
            receiver,
        }
    }

    /// Reads the handlers' replies until every item has a result, the deadline passes,
    /// the server shuts down, or the replies overflow the outbox.
    async fn collect(&mut self, results: &mut Results, deadline: Instant, timeout_millis: u128) {
        let mut shutdown = self.services.shutdown.clone();
        let mut received = Vec::new();
        while !results.is_complete() {
            let count = tokio::select! {
                count = self.receiver.recv_many(&mut received, FRAMES_PER_READ) => count,
                () = tokio::time::sleep_until(deadline) => {
                    results.fail_waiting(&results::timed_out(timeout_millis));
                    return;
                }
                _ = shutdown.wait_for(|stopping| *stopping) => {
                    results.fail_waiting(&results::aborted("the server is shutting down"));
                    return;
                }
            };
            if count == 0 {
                // Unreachable while `self.peer` keeps an outbox sender alive. The check
                // stays so that a change there cannot turn this loop into a busy wait.
                results.fail_waiting(&results::aborted("the request's connection closed"));
                return;
            }
            for outgoing in received.drain(..) {
                match outgoing {
                    Outgoing::Frame(frame) => {
                        self.receiver.mark_written(frame.len());
                        results.on_frame(frame);
                    }
                    Outgoing::Close(..) => {
                        let limit = self.services.websocket.max_outgoing_queue_bytes;
                        tracing::warn!(
                            limit,
                            "HTTP API results over maxOutgoingQueueBytes; the remaining items fail"
                        );
                        results.fail_waiting(&results::aborted(&format!(
                            "the results of this request exceeded {limit} bytes \
                             (maxOutgoingQueueBytes); send fewer items per request"
                        )));
                        return;
                    }
                }
            }
        }
    }
}

impl Drop for VirtualConnection {
    fn drop(&mut self) {
        let id = self.peer.id();
        self.services.events.remove_connection(id);
        self.services.rpc.remove_connection(id);
        self.services.records.remove_connection(id);
    }
}

/// The state that the items of one request share.
struct Batch<'a> {
    services: &'a Arc<Services>,
    identity: &'a Identity,
    peer: &'a Arc<Peer>,
    /// Makes this request's correlation ids unique among every connection's requests.
    correlation_prefix: String,
}

/// The protocol message of one item, and the reply that finishes it.
struct Prepared {
    message: Message,
    awaited: Option<Awaited>,
}

/// A message for one of the topic handlers.
enum Message {
    Event(EventMessage),
    Rpc(RpcMessage),
    Record(RecordMessage),
    Presence(PresenceMessage),
}

/// One permission check of an item, and how to report a refusal.
struct Rule<'a> {
    check: Check<'a>,
    topic: Topic,
    /// The protocol action the refusal names: the action of the message, such as
    /// CREATEANDUPDATE for both checks of a record write.
    refused_action: i32,
}

impl Batch<'_> {
    /// Checks one item and hands it to its handler, or sets its result when it is refused.
    async fn submit(&self, index: usize, item: &Item, results: &mut Results) {
        let prepared = self.prepare(index, item);
        let (topic, action) = prepared.message.topic_action();
        if !self.is_enabled(topic) {
            results.set(index, results::topic_disabled(topic));
            return;
        }
        self.services
            .monitor
            .message_received(i32::from(topic), action);

        if let Err(refusal) = self.permit(item, &prepared.message).await {
            results.set(index, refusal);
            return;
        }
        match prepared.awaited {
            Some(awaited) => results.await_reply(index, awaited),
            // An emit has no reply: the handler sends it to the subscribers at once.
            None => results.set(index, results::success()),
        }
        self.dispatch(prepared.message);
    }

    fn prepare(&self, index: usize, item: &Item) -> Prepared {
        let correlation_id = format!("{}/{index}", self.correlation_prefix);
        match item {
            Item::EventEmit { name, data } => Prepared {
                message: Message::Event(EventMessage {
                    action: EventAction::Emit.into(),
                    name: name.clone(),
                    data: data.as_ref().map(json_bytes).unwrap_or_default(),
                    ..Default::default()
                }),
                awaited: None,
            },
            Item::RpcMake { name, data } => Prepared {
                message: Message::Rpc(RpcMessage {
                    action: RpcAction::Request.into(),
                    name: name.clone(),
                    correlation_id: correlation_id.clone(),
                    data: data.as_ref().map(json_bytes).unwrap_or_default(),
                    ..Default::default()
                }),
                awaited: Some(Awaited::Correlated {
                    topic: Topic::Rpc,
                    id: correlation_id,
                }),
            },
            Item::RecordRead { name } => record_request(RecordAction::Read, name),
            Item::RecordHead { name } => record_request(RecordAction::Head, name),
            Item::RecordDelete { name } => record_request(RecordAction::Delete, name),
            Item::RecordWrite {
                name,
                data,
                path,
                version,
            } => {
                let action = if path.is_some() {
                    RecordAction::Createandpatch
                } else {
                    RecordAction::Createandupdate
                };
                Prepared {
                    message: Message::Record(RecordMessage {
                        action: action.into(),
                        name: name.clone(),
                        version: Some(*version),
                        path: path
                            .as_ref()
                            .map(|path| path.as_str().to_owned())
                            .unwrap_or_default(),
                        data: json_bytes(data),
                        is_write_ack: true,
                        correlation_id: correlation_id.clone(),
                        ..Default::default()
                    }),
                    awaited: Some(Awaited::Correlated {
                        topic: Topic::Record,
                        id: correlation_id,
                    }),
                }
            }
            Item::RecordNotify { names } => Prepared {
                message: Message::Record(RecordMessage {
                    action: RecordAction::Notify.into(),
                    names: names.clone(),
                    correlation_id: correlation_id.clone(),
                    ..Default::default()
                }),
                awaited: Some(Awaited::Correlated {
                    topic: Topic::Record,
                    id: correlation_id,
                }),
            },
            Item::PresenceQuery { names: None } => Prepared {
                message: Message::Presence(PresenceMessage {
                    action: PresenceAction::QueryAll.into(),
                    ..Default::default()
                }),
                awaited: Some(Awaited::QueryAll),
            },
            Item::PresenceQuery { names: Some(names) } => Prepared {
                message: Message::Presence(PresenceMessage {
                    action: PresenceAction::Query.into(),
                    names: names.clone(),
                    correlation_id: correlation_id.clone(),
                    ..Default::default()
                }),
                awaited: Some(Awaited::Correlated {
                    topic: Topic::Presence,
                    id: correlation_id,
                }),
            },
        }
    }

    fn is_enabled(&self, topic: Topic) -> bool {
        let features = &self.services.features;
        match topic {
            Topic::Event => features.event,
            Topic::Rpc => features.rpc,
            Topic::Record => features.record,
            Topic::Presence => features.presence,
            _ => false,
        }
    }

    /// Checks the item against the permission rules as its WebSocket message would be
    /// checked. Returns the item's result when a rule denies it or fails.
    async fn permit(&self, item: &Item, message: &Message) -> Result<(), ItemResult> {
        if self.services.access.is_open() {
            return Ok(());
        }
        let caller = Caller {
            user: &self.identity.user,
            server_data: self.identity.server_data.as_ref(),
        };
        for rule in rules(item, message.data()) {
            let verdict = self.services.access.check(caller, rule.check).await;
            let is_error = match verdict {
                Verdict::Allow => continue,
                Verdict::Deny => false,
                Verdict::Error(error) => {
                    tracing::warn!(
                        %error,
                        user = %self.identity.user,
                        name = rule.check.name,
                        "permission rule failed for an HTTP API request; the request is denied"
                    );
                    true
                }
            };
            tracing::debug!(
                user = %self.identity.user,
                name = rule.check.name,
                "HTTP API request not permitted"
            );
            // Counted like the error message a WebSocket client would get.
            let event = if is_error {
                "MESSAGE_PERMISSION_ERROR"
            } else {
                "MESSAGE_DENIED"
            };
            self.services.monitor.error_logged(event);
            return Err(match (rule.topic, is_error) {
                // deepstream 7.0 reports both cases of an emit as a denial.
                (Topic::Event, _) => results::event_denied(rule.check.name),
                (topic, false) => results::denied(topic, rule.refused_action, rule.check.name),
                (topic, true) => {
                    results::permission_error(topic, rule.refused_action, rule.check.name)
                }
            });
        }
        Ok(())
    }

    fn dispatch(&self, message: Message) {
        let peer = self.peer;
        match message {
            Message::Event(message) => self.services.events.handle(peer, message),
            Message::Rpc(message) => self.services.rpc.handle(peer, message),
            Message::Record(message) => self.services.records.handle(peer, message),
            Message::Presence(message) => self.services.presence.handle(peer, message),
        }
    }
}

impl Message {
    fn topic_action(&self) -> (Topic, i32) {
        match self {
            Message::Event(message) => (Topic::Event, message.action),
            Message::Rpc(message) => (Topic::Rpc, message.action),
            Message::Record(message) => (Topic::Record, message.action),
            Message::Presence(message) => (Topic::Presence, message.action),
        }
    }

    fn data(&self) -> &[u8] {
        match self {
            Message::Event(message) => &message.data,
            Message::Rpc(message) => &message.data,
            Message::Record(message) => &message.data,
            Message::Presence(message) => &message.data,
        }
    }
}

/// Returns the permission checks of an item, in deepstream 7.0's order. A record write
/// needs `create` and then `write`. A notify or a presence query of named users needs
/// each name allowed. A presence query of everyone is matched against the name
/// `undefined`, as deepstream matches it.
fn rules<'a>(item: &'a Item, data: &'a [u8]) -> Vec<Rule<'a>> {
    let message_data = if data.is_empty() {
        MessageData::Absent
    } else {
        MessageData::Json(data)
    };
    match item {
        Item::EventEmit { name, .. } => vec![Rule::new(
            Topic::Event,
            Action::Publish,
            name,
            EventAction::Emit.into(),
            message_data,
        )],
        Item::RpcMake { name, .. } => vec![Rule::new(
            Topic::Rpc,
            Action::Request,
            name,
            RpcAction::Request.into(),
            message_data,
        )],
        Item::RecordRead { name } => vec![Rule::record(Action::Read, name, RecordAction::Read)],
        Item::RecordHead { name } => vec![Rule::record(Action::Read, name, RecordAction::Head)],
        Item::RecordDelete { name } => {
            vec![Rule::record(Action::Delete, name, RecordAction::Delete)]
        }
        Item::RecordNotify { names } => names
            .iter()
            .map(|name| Rule::record(Action::Notify, name, RecordAction::Notify))
            .collect(),
        Item::RecordWrite { name, path, .. } => {
            let (refused, written, write_data) = match path {
                Some(path) => (
                    RecordAction::Createandpatch,
                    RecordAction::Patch,
                    MessageData::Patch { path, value: data },
                ),
                None => (
                    RecordAction::Createandupdate,
                    RecordAction::Update,
                    message_data,
                ),
            };
            let create = Rule::record(Action::Create, name, RecordAction::Create);
            let write = Rule::new(
                Topic::Record,
                Action::Write,
                name,
                written.into(),
                write_data,
            );
            [create, write]
                .into_iter()
                .map(|rule| Rule {
                    refused_action: refused.into(),
                    ..rule
                })
                .collect()
        }
        Item::PresenceQuery { names: None } => {
            vec![Rule::presence("undefined", PresenceAction::QueryAll)]
        }
        Item::PresenceQuery { names: Some(names) } => names
            .iter()
            .map(|name| Rule::presence(name, PresenceAction::Query))
            .collect(),
    }
}

impl<'a> Rule<'a> {
    fn new(
        topic: Topic,
        action: Action,
        name: &'a str,
        message_action: i32,
        data: MessageData<'a>,
    ) -> Rule<'a> {
        let section = match topic {
            Topic::Event => Section::Event,
            Topic::Rpc => Section::Rpc,
            Topic::Presence => Section::Presence,
            _ => Section::Record,
        };
        Rule {
            check: Check {
                section,
                action,
                name,
                message_action,
                data,
            },
            topic,
            refused_action: message_action,
        }
    }

    fn record(action: Action, name: &'a str, message_action: RecordAction) -> Rule<'a> {
        Rule::new(
            Topic::Record,
            action,
            name,
            message_action.into(),
            MessageData::Absent,
        )
    }

    fn presence(name: &'a str, message_action: PresenceAction) -> Rule<'a> {
        Rule::new(
            Topic::Presence,
            Action::Allow,
            name,
            message_action.into(),
            MessageData::Absent,
        )
    }
}

/// Builds a READ, HEAD or DELETE of one record, which a reply naming the record finishes.
fn record_request(action: RecordAction, name: &str) -> Prepared {
    Prepared {
        message: Message::Record(RecordMessage {
            action: action.into(),
            name: name.to_owned(),
            ..Default::default()
        }),
        awaited: Some(Awaited::Record {
            action,
            name: name.to_owned(),
        }),
    }
}

fn json_bytes(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}
