//! The EVENT topic: subscriptions, emits and event listening.

use std::sync::Arc;

use bytes::Bytes;
use deepstream_protocol::{EventAction, EventMessage, Topic, encode_frame};

use crate::config::ListenConfig;
use crate::listen::{ListenMessages, ListenerRegistry};
use crate::monitoring::Monitor;
use crate::peer::{ConnectionId, Peer};
use crate::registry::SubscriptionRegistry;

use super::bulk_names;

/// Handles EVENT messages of authenticated connections.
pub struct EventHandler {
    subscriptions: Arc<SubscriptionRegistry>,
    listeners: Arc<ListenerRegistry>,
}

impl EventHandler {
    /// Reports the handler's broadcasts to `monitor`.
    pub(crate) fn set_monitor(&self, monitor: Monitor) {
        self.subscriptions.set_monitor(monitor);
    }

    /// Returns the number of names with at least one subscriber.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.name_count()
    }
    /// Creates the handler with empty registries.
    pub fn new(listen: ListenConfig) -> EventHandler {
        let subscriptions = Arc::new(SubscriptionRegistry::new());
        let listeners =
            ListenerRegistry::new(Box::new(EventListenMessages), subscriptions.clone(), listen);
        EventHandler {
            subscriptions,
            listeners,
        }
    }

    /// Starts the handler's timers. Must be called inside a tokio runtime.
    pub fn start(&self) {
        self.listeners.start_rematch_timer();
    }

    /// Handles one EVENT message from `peer`.
    pub fn handle(&self, peer: &Arc<Peer>, message: EventMessage) {
        match message.action() {
            EventAction::Emit => self.emit(peer, message),
            EventAction::Subscribe => self.subscribe(peer, message),
            EventAction::Unsubscribe => self.unsubscribe(peer, message),
            EventAction::Listen => self.listeners.listen(peer, &message.name),
            EventAction::Unlisten => self.listeners.unlisten(peer, &message.name),
            EventAction::ListenAccept => {
                self.listeners
                    .accept(peer, &message.name, &message.subscription)
            }
            EventAction::ListenReject => {
                self.listeners
                    .reject(peer, &message.name, &message.subscription)
            }
            other => {
                tracing::debug!(action = ?other, "event action not accepted from clients");
                peer.send(error(
                    EventAction::InvalidMessageData,
                    message.action,
                    &message.name,
                ));
            }
        }
    }

    /// Removes the subscriptions and listeners of a closed connection.
    pub fn remove_connection(&self, id: ConnectionId) {
        for name in self.subscriptions.remove_connection(id) {
            self.listeners.on_last_unsubscription(&name);
        }
        self.listeners.remove_connection(id);
    }

    fn emit(&self, peer: &Arc<Peer>, message: EventMessage) {
        if message.name.is_empty() {
            peer.send(error(EventAction::InvalidMessageData, message.action, ""));
            return;
        }
        let emit = EventMessage {
            action: EventAction::Emit.into(),
            name: message.name,
            data: message.data,
            ..Default::default()
        };
        let frame = encode_frame(Topic::Event, &emit);
        let delivered = self.subscriptions.send(&emit.name, &frame, Some(peer.id()));
        tracing::trace!(event = %emit.name, delivered, "event emitted");
    }

    fn subscribe(&self, peer: &Arc<Peer>, message: EventMessage) {
        for name in bulk_names(message.names, message.name) {
            if name.is_empty() {
                peer.send(error(EventAction::InvalidMessageData, message.action, ""));
                continue;
            }
            match self.subscriptions.subscribe(&name, peer) {
                Ok(true) => self.listeners.on_first_subscription(&name),
                Ok(false) => {}
                Err(_) => peer.send(error(
                    EventAction::MultipleSubscriptions,
                    message.action,
                    &name,
                )),
            }
        }
        peer.send(ack(EventAction::Subscribe, message.correlation_id));
    }

    fn unsubscribe(&self, peer: &Arc<Peer>, message: EventMessage) {
        for name in bulk_names(message.names, message.name) {
            match self.subscriptions.unsubscribe(&name, peer) {
                Ok(true) => self.listeners.on_last_unsubscription(&name),
                Ok(false) => {}
                Err(_) => peer.send(error(EventAction::NotSubscribed, message.action, &name)),
            }
        }
        peer.send(ack(EventAction::Unsubscribe, message.correlation_id));
    }
}

fn ack(action: EventAction, correlation_id: String) -> Bytes {
    let message = EventMessage {
        action: action.into(),
        correlation_id,
        is_ack: true,
        ..Default::default()
    };
    encode_frame(Topic::Event, &message)
}

fn error(action: EventAction, original_action: i32, name: &str) -> Bytes {
    let message = EventMessage {
        action: action.into(),
        original_action,
        name: name.to_owned(),
        is_error: true,
        ..Default::default()
    };
    encode_frame(Topic::Event, &message)
}

/// The listen messages of the EVENT topic.
struct EventListenMessages;

impl EventListenMessages {
    fn frame(action: EventAction, name: &str, subscription: &str) -> Bytes {
        let message = EventMessage {
            action: action.into(),
            name: name.to_owned(),
            subscription: subscription.to_owned(),
            ..Default::default()
        };
        encode_frame(Topic::Event, &message)
    }
}

impl ListenMessages for EventListenMessages {
    fn ack(&self, listen: bool, pattern: &str) -> Bytes {
        let action = if listen {
            EventAction::Listen
        } else {
            EventAction::Unlisten
        };
        let message = EventMessage {
            action: action.into(),
            name: pattern.to_owned(),
            is_ack: true,
            ..Default::default()
        };
        encode_frame(Topic::Event, &message)
    }

    fn pattern_found(&self, pattern: &str, subscription: &str) -> Bytes {
        Self::frame(
            EventAction::SubscriptionForPatternFound,
            pattern,
            subscription,
        )
    }

    fn pattern_removed(&self, pattern: &str, subscription: &str) -> Bytes {
        Self::frame(
            EventAction::SubscriptionForPatternRemoved,
            pattern,
            subscription,
        )
    }

    fn invalid_regex(&self, pattern: &str) -> Bytes {
        error(
            EventAction::InvalidListenRegex,
            EventAction::Listen.into(),
            pattern,
        )
    }

    fn response_timeout(&self, subscription: &str) -> Bytes {
        Self::frame(EventAction::ListenResponseTimeout, "", subscription)
    }

    fn already_listening(&self, pattern: &str) -> Bytes {
        error(
            EventAction::MultipleSubscriptions,
            EventAction::Listen.into(),
            pattern,
        )
    }

    fn not_listening(&self, pattern: &str) -> Bytes {
        error(
            EventAction::NotSubscribed,
            EventAction::Unlisten.into(),
            pattern,
        )
    }

    fn has_provider(&self, _subscription: &str, _has_provider: bool) -> Option<Bytes> {
        None
    }
}
