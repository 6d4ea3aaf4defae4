//! Events: subscribe, unsubscribe, emit, and listening with accept and reject.
//!
//! As in the official client (`src/event/event-handler.ts`), several local
//! subscriptions to one name share one server subscription, an emitted event
//! also reaches this client's own subscribers (the server does not echo it),
//! and emits made while the connection is lost are kept for
//! `offline_buffer_timeout` and sent after the next login.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use deepstream_protocol::{EventAction, EventMessage, Topic, TopicMessage};
use indexmap::IndexMap;

use super::bulk::BulkQueue;
use super::error::{SessionError, action_name};
use super::ids::{ListenId, SubscriptionId};
use super::shared::{AckKey, BulkKind, Shared};
use super::{Event, Session, Timestamp, check_json, check_name, payload_text};

/// The reason an event command was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The event name or pattern is empty.
    #[error("event name or pattern must not be empty")]
    EmptyName,
    /// The payload is not valid JSON text.
    #[error("invalid JSON data: {reason}")]
    InvalidJson {
        /// The JSON parser's message.
        reason: String,
    },
    /// The client is offline and past its offline buffer time, so the emit was not sent.
    #[error("client offline")]
    ClientOffline,
    /// This client already listens to the pattern.
    #[error("already listening to pattern {pattern:?}")]
    AlreadyListening {
        /// The pattern.
        pattern: String,
    },
    /// The handle is not, or no longer, registered.
    #[error("unknown subscription or listen handle")]
    UnknownHandle,
}

#[derive(Debug)]
struct Listen {
    id: ListenId,
    /// Names this client accepted to provide.
    accepted: HashSet<String>,
}

#[derive(Debug)]
pub(crate) struct EventHandler {
    subscriptions: IndexMap<String, Vec<SubscriptionId>>,
    names: HashMap<SubscriptionId, String>,
    listens: IndexMap<String, Listen>,
    patterns: HashMap<ListenId, String>,
    limbo_queue: Vec<Bytes>,
    bulk: BulkQueue,
}

impl EventHandler {
    pub(crate) fn new() -> EventHandler {
        EventHandler {
            subscriptions: IndexMap::new(),
            names: HashMap::new(),
            listens: IndexMap::new(),
            patterns: HashMap::new(),
            limbo_queue: Vec::new(),
            bulk: BulkQueue::new(
                BulkKind::Event,
                Topic::Event,
                EventAction::Subscribe.into(),
                EventAction::Unsubscribe.into(),
            ),
        }
    }

    pub(crate) fn flush(&mut self, shared: &mut Shared) {
        self.bulk.flush(shared);
    }

    pub(crate) fn handle(&mut self, shared: &mut Shared, message: EventMessage) {
        if message.is_ack {
            let key = message_ack_key(&message);
            shared.clear_ack(&key);
            return;
        }
        match EventAction::try_from(message.action) {
            Ok(EventAction::Emit) => self.deliver(shared, &message),
            Ok(EventAction::SubscriptionForPatternFound) => self.pattern_found(shared, message),
            Ok(EventAction::SubscriptionForPatternRemoved) => {
                self.pattern_removed(shared, message);
            }
            Ok(EventAction::MessageDenied | EventAction::MessagePermissionError) => {
                self.denied(shared, &message);
            }
            Ok(EventAction::InvalidListenRegex) => {
                // The server sends no acknowledgement after this error.
                shared.clear_ack(&AckKey {
                    topic: Topic::Event,
                    action: EventAction::Listen.into(),
                    key: message.name.clone(),
                });
                server_error(shared, &message);
                self.end_listen(shared, &message.name);
            }
            _ => server_error(shared, &message),
        }
    }

    pub(crate) fn on_lost(&mut self, shared: &mut Shared) {
        self.bulk.reset(shared);
        for (pattern, listen) in &mut self.listens {
            for name in listen.accepted.drain() {
                shared.emit(Event::ListenStopped {
                    listen: listen.id,
                    pattern: pattern.clone(),
                    name,
                });
            }
        }
    }

    pub(crate) fn on_reestablished(&mut self, shared: &mut Shared) {
        let names: Vec<String> = self.subscriptions.keys().cloned().collect();
        for name in names {
            self.bulk.subscribe(shared, &name);
        }
        let patterns: Vec<String> = self.listens.keys().cloned().collect();
        for pattern in patterns {
            send_listen(shared, EventAction::Listen, &pattern);
        }
        for frame in self.limbo_queue.drain(..) {
            shared.send(frame);
        }
    }

    pub(crate) fn on_limbo_expired(&mut self, _shared: &mut Shared) {
        if !self.limbo_queue.is_empty() {
            tracing::debug!(
                count = self.limbo_queue.len(),
                "dropping emits kept while offline"
            );
            self.limbo_queue.clear();
        }
    }

    fn deliver(&mut self, shared: &mut Shared, message: &EventMessage) {
        let Ok(data) = payload_text(shared, Topic::Event, message.action, &message.data) else {
            return;
        };
        self.deliver_local(shared, &message.name, data.as_deref());
    }

    fn deliver_local(&self, shared: &mut Shared, name: &str, data: Option<&str>) {
        let Some(subscriptions) = self.subscriptions.get(name) else {
            return;
        };
        for subscription in subscriptions {
            shared.emit(Event::EventReceived {
                subscription: *subscription,
                name: name.to_owned(),
                data: data.map(str::to_owned),
            });
        }
    }

    fn pattern_found(&mut self, shared: &mut Shared, message: EventMessage) {
        match self.listens.get(&message.name) {
            Some(listen) => shared.emit(Event::ListenRequest {
                listen: listen.id,
                pattern: message.name,
                name: message.subscription,
            }),
            None => shared.error(SessionError::Unsolicited {
                topic: Topic::Event,
                action: action_name(Topic::Event, message.action),
                name: message.name,
            }),
        }
    }

    fn pattern_removed(&mut self, shared: &mut Shared, message: EventMessage) {
        let Some(listen) = self.listens.get_mut(&message.name) else {
            return;
        };
        if listen.accepted.remove(&message.subscription) {
            shared.emit(Event::ListenStopped {
                listen: listen.id,
                pattern: message.name,
                name: message.subscription,
            });
        }
    }

    /// Handles the server's permissions denying a subscription or a listen:
    /// the local subscriptions of the name, or the listen of the pattern, end.
    ///
    /// The acknowledgement timeout of the denied request stops. Our server
    /// sends no acknowledgement for a bulk message whose names are all
    /// denied, nor for a denied listen. When some names of a bulk message
    /// were allowed, the acknowledgement that still comes finds no timeout
    /// and is ignored.
    fn denied(&mut self, shared: &mut Shared, message: &EventMessage) {
        match EventAction::try_from(message.original_action) {
            Ok(EventAction::Subscribe) => {
                shared.clear_ack(&original_ack_key(message));
                if let Some(ids) = self.subscriptions.shift_remove(&message.name) {
                    for id in ids {
                        self.names.remove(&id);
                        shared.emit(Event::EventSubscriptionEnded {
                            subscription: id,
                            name: message.name.clone(),
                        });
                    }
                }
                server_error(shared, message);
            }
            Ok(EventAction::Listen) => {
                shared.clear_ack(&original_ack_key(message));
                server_error(shared, message);
                self.end_listen(shared, &message.name);
            }
            _ => server_error(shared, message),
        }
    }

    /// Ends the listen of `pattern`, which the server did not register.
    fn end_listen(&mut self, shared: &mut Shared, pattern: &str) {
        if let Some(listen) = self.listens.shift_remove(pattern) {
            self.patterns.remove(&listen.id);
            shared.emit(Event::ListenRejected {
                listen: listen.id,
                pattern: pattern.to_owned(),
            });
        }
    }
}

impl Session {
    /// Subscribes to the event `name`.
    ///
    /// Events arrive as [`Event::EventReceived`] with the returned id. The
    /// first local subscription to a name subscribes on the server (in the
    /// next bulk message); while the client is not logged in, that waits for
    /// the login.
    pub fn event_subscribe(
        &mut self,
        name: &str,
        now: Timestamp,
    ) -> Result<SubscriptionId, EventError> {
        self.shared.now = now;
        if !check_name(name) {
            return Err(EventError::EmptyName);
        }
        if self.connection.state().is_final() {
            return Err(EventError::ClientOffline);
        }
        let id = SubscriptionId(self.shared.next_id());
        let handler = &mut self.event;
        let first = !handler.subscriptions.contains_key(name);
        handler
            .subscriptions
            .entry(name.to_owned())
            .or_default()
            .push(id);
        handler.names.insert(id, name.to_owned());
        if first && self.shared.logged_in {
            handler.bulk.subscribe(&mut self.shared, name);
        }
        Ok(id)
    }

    /// Ends a local subscription. The last one of a name unsubscribes on the server.
    pub fn event_unsubscribe(
        &mut self,
        subscription: SubscriptionId,
        now: Timestamp,
    ) -> Result<(), EventError> {
        self.shared.now = now;
        let handler = &mut self.event;
        let name = handler
            .names
            .remove(&subscription)
            .ok_or(EventError::UnknownHandle)?;
        let last = match handler.subscriptions.get_mut(&name) {
            Some(ids) => {
                ids.retain(|id| *id != subscription);
                ids.is_empty()
            }
            None => false,
        };
        if last {
            handler.subscriptions.shift_remove(&name);
            if self.shared.logged_in {
                handler.bulk.unsubscribe(&mut self.shared, &name);
            }
        }
        Ok(())
    }

    /// Emits the event `name` with an optional JSON payload.
    ///
    /// The server sends it to every other subscriber; this client's own
    /// subscribers get it at once. While the connection is lost, the emit is
    /// kept for `offline_buffer_timeout` and sent after the next login;
    /// after that time it fails with [`EventError::ClientOffline`]. An emit is
    /// not acknowledged: one larger than the server's maximum message size
    /// (`maxMessageSize`, 1 MiB by default in deepstream 7) returns `Ok`, and
    /// the server then closes the connection.
    pub fn event_emit(
        &mut self,
        name: &str,
        data: Option<&str>,
        now: Timestamp,
    ) -> Result<(), EventError> {
        self.shared.now = now;
        if !check_name(name) {
            return Err(EventError::EmptyName);
        }
        if let Some(data) = data {
            check_json(data).map_err(|reason| EventError::InvalidJson { reason })?;
        }
        let frame = TopicMessage::Event(EventMessage {
            action: EventAction::Emit.into(),
            name: name.to_owned(),
            data: data.map_or_else(Bytes::new, |data| Bytes::copy_from_slice(data.as_bytes())),
            ..Default::default()
        })
        .encode_frame();
        if self.shared.logged_in {
            self.shared.send(frame);
        } else if self.shared.in_limbo {
            self.event.limbo_queue.push(frame);
        } else {
            return Err(EventError::ClientOffline);
        }
        self.event.deliver_local(&mut self.shared, name, data);
        Ok(())
    }

    /// Listens to subscriptions of event names that match `pattern`, a
    /// regular expression that the server evaluates.
    ///
    /// Each matching subscription arrives as [`Event::ListenRequest`], to be
    /// answered with [`Session::event_listen_respond`]. The registration is
    /// renewed after every reconnection.
    pub fn event_listen(&mut self, pattern: &str, now: Timestamp) -> Result<ListenId, EventError> {
        self.shared.now = now;
        if self.connection.state().is_final() {
            return Err(EventError::ClientOffline);
        }
        if !check_name(pattern) {
            return Err(EventError::EmptyName);
        }
        if self.event.listens.contains_key(pattern) {
            return Err(EventError::AlreadyListening {
                pattern: pattern.to_owned(),
            });
        }
        let id = ListenId(self.shared.next_id());
        self.event.listens.insert(
            pattern.to_owned(),
            Listen {
                id,
                accepted: HashSet::new(),
            },
        );
        self.event.patterns.insert(id, pattern.to_owned());
        if self.shared.logged_in {
            send_listen(&mut self.shared, EventAction::Listen, pattern);
        }
        Ok(id)
    }

    /// Stops listening. Names accepted under the pattern end without an
    /// [`Event::ListenStopped`].
    pub fn event_unlisten(&mut self, listen: ListenId, now: Timestamp) -> Result<(), EventError> {
        self.shared.now = now;
        let pattern = self
            .event
            .patterns
            .remove(&listen)
            .ok_or(EventError::UnknownHandle)?;
        self.event.listens.shift_remove(&pattern);
        if self.shared.logged_in {
            send_listen(&mut self.shared, EventAction::Unlisten, &pattern);
        }
        Ok(())
    }

    /// Answers an [`Event::ListenRequest`]: `accept` makes this client the
    /// provider of `name`, otherwise the server asks the next listener.
    pub fn event_listen_respond(
        &mut self,
        listen: ListenId,
        name: &str,
        accept: bool,
        now: Timestamp,
    ) -> Result<(), EventError> {
        self.shared.now = now;
        let pattern = self
            .event
            .patterns
            .get(&listen)
            .ok_or(EventError::UnknownHandle)?
            .clone();
        let action = if accept {
            if let Some(state) = self.event.listens.get_mut(&pattern) {
                state.accepted.insert(name.to_owned());
            }
            EventAction::ListenAccept
        } else {
            EventAction::ListenReject
        };
        self.shared.send(
            TopicMessage::Event(EventMessage {
                action: action.into(),
                name: pattern,
                subscription: name.to_owned(),
                ..Default::default()
            })
            .encode_frame(),
        );
        Ok(())
    }
}

fn send_listen(shared: &mut Shared, action: EventAction, pattern: &str) {
    shared.send(
        TopicMessage::Event(EventMessage {
            action: action.into(),
            name: pattern.to_owned(),
            ..Default::default()
        })
        .encode_frame(),
    );
    shared.expect_ack(AckKey {
        topic: Topic::Event,
        action: action.into(),
        key: pattern.to_owned(),
    });
}

fn message_ack_key(message: &EventMessage) -> AckKey {
    let key = if message.correlation_id.is_empty() {
        message.name.clone()
    } else {
        message.correlation_id.clone()
    };
    AckKey {
        topic: Topic::Event,
        action: message.action,
        key,
    }
}

/// Returns the acknowledgement key of the request that an error message
/// refers to: its original action, with its correlation id or name.
fn original_ack_key(message: &EventMessage) -> AckKey {
    AckKey {
        action: message.original_action,
        ..message_ack_key(message)
    }
}

fn server_error(shared: &mut Shared, message: &EventMessage) {
    let original_action =
        (message.original_action != 0).then(|| action_name(Topic::Event, message.original_action));
    shared.error(SessionError::Server {
        topic: Topic::Event,
        action: action_name(Topic::Event, message.action),
        name: message.name.clone(),
        original_action,
    });
}
