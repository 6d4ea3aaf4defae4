//! The PRESENCE topic: who is online, queries and join/leave notifications.
//!
//! A user is online from the login of its first connection until the close
//! of its last one. Anonymous clients log in as the user `open`; like the
//! Node.js deepstream server 7, this server counts them as a user too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use deepstream_protocol::{PresenceAction, PresenceMessage, Topic, encode_frame};
use indexmap::IndexMap;

use crate::monitoring::Monitor;
use crate::peer::{ConnectionId, Peer};
use crate::registry::{SubscriptionRegistry, lock};

use super::bulk_names;

/// Handles PRESENCE messages and tracks logins.
#[derive(Default)]
pub struct PresenceHandler {
    /// Online users and how many connections each has open.
    online: Mutex<HashMap<Arc<str>, usize>>,
    /// Subscriptions to named users.
    users: SubscriptionRegistry,
    /// Subscriptions to every user.
    everyone: Mutex<IndexMap<ConnectionId, Arc<Peer>>>,
}

impl PresenceHandler {
    /// Reports the handler's broadcasts to `monitor`.
    pub(crate) fn set_monitor(&self, monitor: Monitor) {
        self.users.set_monitor(monitor);
    }

    /// Returns the number of users that someone follows by name.
    pub fn subscription_count(&self) -> usize {
        self.users.name_count()
    }
    /// Creates the handler with nobody online.
    pub fn new() -> PresenceHandler {
        PresenceHandler::default()
    }

    /// Records a login; announces the user when this is its first connection.
    pub fn connected(&self, peer: &Peer) {
        let mut online = lock(&self.online);
        let count = online.entry(peer.user().clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.announce(
                peer.user(),
                PresenceAction::PresenceJoinAll,
                PresenceAction::PresenceJoin,
            );
        }
    }

    /// Records a closed connection; announces the user's leave when it was
    /// its last one. Also drops the connection's presence subscriptions.
    pub fn disconnected(&self, peer: &Peer) {
        self.users.remove_connection(peer.id());
        lock(&self.everyone).swap_remove(&peer.id());

        let mut online = lock(&self.online);
        let Some(count) = online.get_mut(peer.user()) else {
            tracing::error!(user = %peer.user(), "presence count missing for a disconnecting user");
            return;
        };
        *count -= 1;
        if *count == 0 {
            online.remove(peer.user());
            self.announce(
                peer.user(),
                PresenceAction::PresenceLeaveAll,
                PresenceAction::PresenceLeave,
            );
        }
    }

    /// Handles one PRESENCE message from `peer`.
    pub fn handle(&self, peer: &Arc<Peer>, message: PresenceMessage) {
        match message.action() {
            PresenceAction::SubscribeAll => {
                lock(&self.everyone).insert(peer.id(), peer.clone());
                peer.send(ack(PresenceAction::SubscribeAll, String::new()));
            }
            PresenceAction::UnsubscribeAll => {
                lock(&self.everyone).swap_remove(&peer.id());
                peer.send(ack(PresenceAction::UnsubscribeAll, String::new()));
            }
            PresenceAction::Subscribe => self.subscribe(peer, message),
            PresenceAction::Unsubscribe => self.unsubscribe(peer, message),
            PresenceAction::QueryAll => self.query_all(peer),
            PresenceAction::Query => self.query(peer, message),
            other => {
                tracing::debug!(action = ?other, "presence action not accepted from clients");
                peer.send(error(
                    PresenceAction::InvalidPresenceUsers,
                    message.action,
                    "",
                    message.correlation_id,
                ));
            }
        }
    }

    fn subscribe(&self, peer: &Arc<Peer>, message: PresenceMessage) {
        for name in bulk_names(message.names, message.name) {
            if name.is_empty() {
                peer.send(error(
                    PresenceAction::InvalidPresenceUsers,
                    message.action,
                    "",
                    String::new(),
                ));
                continue;
            }
            if self.users.subscribe(&name, peer).is_err() {
                peer.send(error(
                    PresenceAction::MultipleSubscriptions,
                    message.action,
                    &name,
                    String::new(),
                ));
            }
        }
        peer.send(ack(PresenceAction::Subscribe, message.correlation_id));
    }

    fn unsubscribe(&self, peer: &Arc<Peer>, message: PresenceMessage) {
        for name in bulk_names(message.names, message.name) {
            if self.users.unsubscribe(&name, peer).is_err() {
                peer.send(error(
                    PresenceAction::NotSubscribed,
                    message.action,
                    &name,
                    String::new(),
                ));
            }
        }
        peer.send(ack(PresenceAction::Unsubscribe, message.correlation_id));
    }

    fn query_all(&self, peer: &Peer) {
        let names: Vec<String> = lock(&self.online)
            .keys()
            .filter(|user| *user != peer.user())
            .map(|user| user.to_string())
            .collect();
        let message = PresenceMessage {
            action: PresenceAction::QueryAllResponse.into(),
            names,
            ..Default::default()
        };
        peer.send(encode_frame(Topic::Presence, &message));
    }

    fn query(&self, peer: &Peer, message: PresenceMessage) {
        let online = lock(&self.online);
        let mut result = serde_json::Map::new();
        for name in bulk_names(message.names, message.name) {
            let is_online = online.contains_key(name.as_str());
            result.insert(name, serde_json::Value::Bool(is_online));
        }
        drop(online);
        let data = serde_json::to_vec(&result).expect("a map of booleans always serializes");
        let response = PresenceMessage {
            action: PresenceAction::QueryResponse.into(),
            correlation_id: message.correlation_id,
            data: Bytes::from(data),
            ..Default::default()
        };
        peer.send(encode_frame(Topic::Presence, &response));
    }

    fn announce(&self, user: &str, to_everyone: PresenceAction, to_subscribers: PresenceAction) {
        let everyone_frame = name_frame(to_everyone, user);
        for peer in lock(&self.everyone).values() {
            peer.send(everyone_frame.clone());
        }
        self.users
            .send(user, &name_frame(to_subscribers, user), None);
    }
}

fn name_frame(action: PresenceAction, name: &str) -> Bytes {
    let message = PresenceMessage {
        action: action.into(),
        name: name.to_owned(),
        ..Default::default()
    };
    encode_frame(Topic::Presence, &message)
}

fn ack(action: PresenceAction, correlation_id: String) -> Bytes {
    let message = PresenceMessage {
        action: action.into(),
        correlation_id,
        is_ack: true,
        ..Default::default()
    };
    encode_frame(Topic::Presence, &message)
}

fn error(
    action: PresenceAction,
    original_action: i32,
    name: &str,
    correlation_id: String,
) -> Bytes {
    let message = PresenceMessage {
        action: action.into(),
        original_action,
        name: name.to_owned(),
        correlation_id,
        is_error: true,
        ..Default::default()
    };
    encode_frame(Topic::Presence, &message)
}
