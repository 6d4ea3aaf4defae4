//! Permission checks of a logged-in connection's messages, made before the messages
//! reach the topic handlers.
//!
//! The mapping of protocol actions to rule actions follows deepstream 7.0. Reads,
//! heads and subscriptions of records are `read`, and updates and patches are `write`.
//! `SUBSCRIBECREATEANDREAD` is `read` for a record that exists and `create` then `read`
//! for one that does not, and `CREATEANDUPDATE` / `CREATEANDPATCH` need both `create`
//! and `write`. Rules of these steps see the step's own protocol action as `action`
//! (`CREATE`, `READ`, or `UPDATE` for the write step), as in deepstream.
//! In a bulk message each name is checked on its own: denied names get their error
//! reply, and the message goes on with the allowed names only, or not at all when none
//! is allowed. Unsubscribing, unlistening and responding to listen requests are never
//! checked, as in deepstream.
//!
//! Unlike deepstream 7.0, a record `ERASE` is checked as a `write` (whose rule sees no
//! `data`), because deepstream lets any client erase paths of any record.

use std::sync::Arc;

use deepstream_protocol::json_path::JsonPath;
use deepstream_protocol::{
    EventAction, EventMessage, PresenceAction, PresenceMessage, RecordAction, RecordMessage,
    RpcAction, RpcMessage, Topic, TopicMessage,
};

use crate::access::{Access, Caller, Check, Reply, Verdict};
use crate::peer::Peer;
use crate::permission::{Action, MessageData, Section};

/// The name deepstream 7.0 checks presence rules against for requests about all users.
const ALL_USERS: &str = "undefined";

/// Checks `message` and returns what may go on to its handler, after sending the
/// error replies for what may not.
pub(super) async fn permit(
    access: &Access,
    caller: Caller<'_>,
    peer: &Arc<Peer>,
    message: TopicMessage,
) -> Option<TopicMessage> {
    let gate = Gate {
        access,
        caller,
        peer,
    };
    match message {
        TopicMessage::Event(event) => gate.event(event).await.map(TopicMessage::Event),
        TopicMessage::Rpc(rpc) => gate.rpc(rpc).await.map(TopicMessage::Rpc),
        TopicMessage::Presence(presence) => {
            gate.presence(presence).await.map(TopicMessage::Presence)
        }
        TopicMessage::Record(record) => gate.record(record).await.map(TopicMessage::Record),
        other => Some(other),
    }
}

struct Gate<'a> {
    access: &'a Access,
    caller: Caller<'a>,
    peer: &'a Arc<Peer>,
}

/// The message details that an error reply repeats, besides the name.
#[derive(Clone, Copy)]
struct Origin<'m> {
    topic: Topic,
    action: i32,
    correlation_id: &'m str,
    is_write_ack: bool,
}

impl Gate<'_> {
    async fn event(&self, mut message: EventMessage) -> Option<EventMessage> {
        let action = match message.action() {
            EventAction::Emit => Action::Publish,
            EventAction::Subscribe => Action::Subscribe,
            EventAction::Listen => Action::Listen,
            _ => return Some(message),
        };
        let origin = Origin {
            topic: Topic::Event,
            action: message.action,
            correlation_id: &message.correlation_id,
            is_write_ack: false,
        };
        let data = json_data(&message.data);
        let names = self
            .allowed(
                Section::Event,
                action,
                origin,
                data,
                &message.name,
                &message.names,
            )
            .await?;
        message.names = names;
        Some(message)
    }

    async fn rpc(&self, mut message: RpcMessage) -> Option<RpcMessage> {
        let action = match message.action() {
            RpcAction::Provide => Action::Provide,
            RpcAction::Request => Action::Request,
            _ => return Some(message),
        };
        let origin = Origin {
            topic: Topic::Rpc,
            action: message.action,
            correlation_id: &message.correlation_id,
            is_write_ack: false,
        };
        let data = json_data(&message.data);
        let names = self
            .allowed(
                Section::Rpc,
                action,
                origin,
                data,
                &message.name,
                &message.names,
            )
            .await?;
        message.names = names;
        Some(message)
    }

    async fn presence(&self, mut message: PresenceMessage) -> Option<PresenceMessage> {
        let all_users = match message.action() {
            PresenceAction::Subscribe | PresenceAction::Query => false,
            PresenceAction::SubscribeAll | PresenceAction::QueryAll => true,
            _ => return Some(message),
        };
        let origin = Origin {
            topic: Topic::Presence,
            action: message.action,
            correlation_id: &message.correlation_id,
            is_write_ack: false,
        };
        let name = if all_users { ALL_USERS } else { "" };
        let names = self
            .allowed(
                Section::Presence,
                Action::Allow,
                origin,
                MessageData::Absent,
                name,
                &message.names,
            )
            .await?;
        message.names = names;
        Some(message)
    }

    async fn record(&self, mut message: RecordMessage) -> Option<RecordMessage> {
        let origin = Origin {
            topic: Topic::Record,
            action: message.action,
            correlation_id: &message.correlation_id,
            is_write_ack: message.is_write_ack,
        };
        let simple = match message.action() {
            RecordAction::Subscribe
            | RecordAction::Subscribeandhead
            | RecordAction::Subscribeandread
            | RecordAction::Read
            | RecordAction::Head => Some(Action::Read),
            RecordAction::Listen => Some(Action::Listen),
            RecordAction::Notify => Some(Action::Notify),
            RecordAction::Create => Some(Action::Create),
            RecordAction::Delete => Some(Action::Delete),
            _ => None,
        };
        let names = match (simple, message.action()) {
            (Some(action), _) => {
                let data = MessageData::Absent;
                self.allowed(
                    Section::Record,
                    action,
                    origin,
                    data,
                    &message.name,
                    &message.names,
                )
                .await?
            }
            (None, RecordAction::Subscribecreateandread) => {
                self.read_or_create(origin, &message).await?
            }
            (None, RecordAction::Update | RecordAction::Patch | RecordAction::Erase) => {
                let allowed = self.write(origin, &message, false).await;
                return allowed.then_some(message);
            }
            (None, RecordAction::Createandupdate | RecordAction::Createandpatch) => {
                let allowed = self.write(origin, &message, true).await;
                return allowed.then_some(message);
            }
            _ => return Some(message),
        };
        message.names = names;
        Some(message)
    }

    /// Checks `SUBSCRIBECREATEANDREAD` per name: `read` for a record that exists, `create`
    /// and `read` for one that does not.
    async fn read_or_create(
        &self,
        origin: Origin<'_>,
        message: &RecordMessage,
    ) -> Option<Vec<String>> {
        let single = [message.name.clone()];
        let names: &[String] = if message.names.is_empty() {
            &single
        } else {
            &message.names
        };
        let mut allowed = Vec::with_capacity(names.len());
        for name in names {
            let verdict = self.access.check_read_or_create(self.caller, name).await;
            if self.accept(&verdict, origin, name) {
                allowed.push(name.clone());
            }
        }
        finish_names(message.names.is_empty(), allowed)
    }

    /// Checks a write: `write` with the message's data or patch, and first `create` for
    /// the create-and-write actions. Returns whether the message may go on.
    async fn write(&self, origin: Origin<'_>, message: &RecordMessage, create: bool) -> bool {
        if create {
            // deepstream shows the rules the step's own action: CREATE here, then
            // UPDATE or PATCH for the write.
            let check = Check {
                section: Section::Record,
                action: Action::Create,
                name: &message.name,
                message_action: RecordAction::Create.into(),
                data: MessageData::Absent,
            };
            let verdict = self.access.check(self.caller, check).await;
            if !self.accept(&verdict, origin, &message.name) {
                return false;
            }
        }

        let path = match message.action() {
            RecordAction::Patch | RecordAction::Createandpatch | RecordAction::Erase => {
                match JsonPath::parse(&message.path) {
                    Ok(path) => Some(path),
                    // The record handler rejects the invalid path with its own error.
                    Err(_) => return true,
                }
            }
            _ => None,
        };
        let data = match (&path, message.action()) {
            (_, RecordAction::Erase) | (None, RecordAction::Patch) => MessageData::Absent,
            (Some(path), _) => MessageData::Patch {
                path,
                value: &message.data,
            },
            (None, _) => json_data(&message.data),
        };
        // deepstream 7.0.2 shows UPDATE for the write step of both create-and-write
        // actions, with a path too (seen with the official client 7.0.5).
        let message_action = match message.action() {
            RecordAction::Createandupdate | RecordAction::Createandpatch => {
                RecordAction::Update.into()
            }
            _ => origin.action,
        };
        let check = Check {
            section: Section::Record,
            action: Action::Write,
            name: &message.name,
            message_action,
            data,
        };
        let verdict = self.access.check(self.caller, check).await;
        self.accept(&verdict, origin, &message.name)
    }

    /// Checks `name`, or each of `names` when the message is a bulk message. Returns the
    /// allowed names of a bulk message, an empty list for an allowed single name, and
    /// `None` when nothing is allowed.
    async fn allowed(
        &self,
        section: Section,
        action: Action,
        origin: Origin<'_>,
        data: MessageData<'_>,
        name: &str,
        names: &[String],
    ) -> Option<Vec<String>> {
        if names.is_empty() {
            let check = Check {
                section,
                action,
                name,
                message_action: origin.action,
                data,
            };
            let verdict = self.access.check(self.caller, check).await;
            return self.accept(&verdict, origin, name).then(Vec::new);
        }

        let mut allowed = Vec::with_capacity(names.len());
        for name in names {
            let check = Check {
                section,
                action,
                name,
                message_action: origin.action,
                data,
            };
            let verdict = self.access.check(self.caller, check).await;
            if self.accept(&verdict, origin, name) {
                allowed.push(name.clone());
            }
        }
        finish_names(false, allowed)
    }

    /// Returns whether `verdict` allows; otherwise sends its error reply and logs it.
    fn accept(&self, verdict: &Verdict, origin: Origin<'_>, name: &str) -> bool {
        match verdict {
            Verdict::Allow => return true,
            Verdict::Deny => {
                tracing::debug!(topic = ?origin.topic, action = origin.action, name, "permission denied");
            }
            Verdict::Error(error) => {
                tracing::warn!(topic = ?origin.topic, action = origin.action, name, %error, "permission rule failed");
            }
        }
        let reply = Reply {
            topic: origin.topic,
            original_action: origin.action,
            name,
            correlation_id: origin.correlation_id,
            is_write_ack: origin.is_write_ack,
        };
        if let Some(frame) = verdict.reply(&reply) {
            self.peer.send(frame);
        }
        false
    }
}

/// Returns the names of a message after its checks: `None` when none is left, so the
/// message is dropped. A single-name message (`single`) goes on with no `names`.
fn finish_names(single: bool, allowed: Vec<String>) -> Option<Vec<String>> {
    if allowed.is_empty() {
        return None;
    }
    if single {
        return Some(Vec::new());
    }
    Some(allowed)
}

fn json_data(data: &[u8]) -> MessageData<'_> {
    if data.is_empty() {
        MessageData::Absent
    } else {
        MessageData::Json(data)
    }
}
