//! Presence: follow all users or named users, and ask who is online.
//!
//! This follows the official client (`src/presence/presence-handler.ts`):
//! named subscriptions go out in bulk, the subscription to all users is one
//! `SUBSCRIBE_ALL`, both are renewed after every reconnection, and queries
//! made while the connection is lost are kept for `offline_buffer_timeout`.
//! Unlike the official client, a query whose answer does not arrive within
//! `subscription_timeout` fails with [`PresenceError::Timeout`] instead of
//! waiting for ever.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use deepstream_protocol::{PresenceAction, PresenceMessage, Topic, TopicMessage};
use indexmap::IndexMap;

use super::bulk::BulkQueue;
use super::error::{SessionError, action_name};
use super::ids::{PresenceSubscriptionId, RequestId};
use super::shared::{AckKey, BulkKind, Shared};
use super::time::TimerId;
use super::{Event, Session, Timestamp, check_name};

/// The reason a presence query failed or a presence command was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// A user name is empty.
    #[error("user name must not be empty")]
    EmptyName,
    /// The handle is not, or no longer, registered.
    #[error("unknown presence subscription")]
    UnknownHandle,
    /// The client is offline: the query was not sent, or the connection was
    /// lost before the answer came.
    #[error("client offline")]
    ClientOffline,
    /// No answer arrived within `subscription_timeout`.
    #[error("no answer to the presence query in time")]
    Timeout,
    /// The server answered with an error, such as `MESSAGE_DENIED`.
    #[error("the server refused the query: {action}")]
    Server {
        /// The error action.
        action: String,
    },
    /// The server's answer could not be read.
    #[error("invalid presence query response: {reason}")]
    InvalidResponse {
        /// The problem found.
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Query {
    All,
    Users { correlation_id: String },
}

#[derive(Debug)]
struct Pending {
    query: Query,
    /// The response timeout once sent; while queued, the offline buffer timeout.
    timer: TimerId,
    /// Whether the query went out, or still waits for a login.
    sent: bool,
    frame: Bytes,
}

#[derive(Debug)]
pub(crate) struct PresenceHandler {
    all: Vec<PresenceSubscriptionId>,
    users: IndexMap<String, Vec<PresenceSubscriptionId>>,
    user_of: HashMap<PresenceSubscriptionId, Option<String>>,
    pending: IndexMap<RequestId, Pending>,
    next_query_id: u64,
    bulk: BulkQueue,
}

impl PresenceHandler {
    pub(crate) fn new() -> PresenceHandler {
        PresenceHandler {
            all: Vec::new(),
            users: IndexMap::new(),
            user_of: HashMap::new(),
            pending: IndexMap::new(),
            next_query_id: 0,
            bulk: BulkQueue::new(
                BulkKind::Presence,
                Topic::Presence,
                PresenceAction::Subscribe.into(),
                PresenceAction::Unsubscribe.into(),
            ),
        }
    }

    pub(crate) fn flush(&mut self, shared: &mut Shared) {
        self.bulk.flush(shared);
    }

    pub(crate) fn handle(&mut self, shared: &mut Shared, message: PresenceMessage) {
        if message.is_ack {
            let key = if message.correlation_id.is_empty() {
                message.name.clone()
            } else {
                message.correlation_id.clone()
            };
            shared.clear_ack(&AckKey {
                topic: Topic::Presence,
                action: message.action,
                key,
            });
            return;
        }
        match PresenceAction::try_from(message.action) {
            Ok(PresenceAction::QueryAllResponse) => {
                self.finish_all(shared, &Ok(message.names));
            }
            Ok(PresenceAction::QueryResponse) => self.query_response(shared, &message),
            Ok(PresenceAction::PresenceJoin) => self.notify_user(shared, &message.name, true),
            Ok(PresenceAction::PresenceLeave) => self.notify_user(shared, &message.name, false),
            Ok(PresenceAction::PresenceJoinAll) => self.notify_all(shared, &message.name, true),
            Ok(PresenceAction::PresenceLeaveAll) => self.notify_all(shared, &message.name, false),
            Ok(PresenceAction::MessageDenied | PresenceAction::MessagePermissionError) => {
                self.error_received(shared, &message);
            }
            _ if message.is_error => self.error_received(shared, &message),
            _ => server_error(shared, &message),
        }
    }

    fn query_response(&mut self, shared: &mut Shared, message: &PresenceMessage) {
        let result =
            serde_json::from_slice::<BTreeMap<String, bool>>(&message.data).map_err(|error| {
                PresenceError::InvalidResponse {
                    reason: error.to_string(),
                }
            });
        if !self.finish_users(shared, &message.correlation_id, result) {
            server_error(shared, message);
        }
    }

    fn error_received(&mut self, shared: &mut Shared, message: &PresenceMessage) {
        let error = PresenceError::Server {
            action: action_name(Topic::Presence, message.action),
        };
        let query: i32 = PresenceAction::Query.into();
        let query_all: i32 = PresenceAction::QueryAll.into();
        if message.original_action == query
            && self.finish_users(shared, &message.correlation_id, Err(error.clone()))
        {
            return;
        }
        if message.original_action == query_all && self.finish_all(shared, &Err(error)) {
            return;
        }
        stop_subscribe_ack(shared, message);
        server_error(shared, message);
    }

    fn notify_user(&mut self, shared: &mut Shared, user: &str, online: bool) {
        for subscription in self.users.get(user).into_iter().flatten() {
            shared.emit(Event::PresenceChanged {
                subscription: *subscription,
                user: user.to_owned(),
                online,
            });
        }
    }

    fn notify_all(&mut self, shared: &mut Shared, user: &str, online: bool) {
        for subscription in &self.all {
            shared.emit(Event::PresenceChanged {
                subscription: *subscription,
                user: user.to_owned(),
                online,
            });
        }
    }

    /// Ends every sent `QUERY_ALL`, since responses carry no correlation id.
    /// Returns whether any was waiting.
    fn finish_all(
        &mut self,
        shared: &mut Shared,
        result: &Result<Vec<String>, PresenceError>,
    ) -> bool {
        let waiting: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, pending)| pending.query == Query::All && pending.sent)
            .map(|(request, _)| *request)
            .collect();
        for request in &waiting {
            self.remove(shared, *request);
            shared.emit(Event::PresenceQueryAllResult {
                request: *request,
                result: result.clone(),
            });
        }
        !waiting.is_empty()
    }

    fn finish_users(
        &mut self,
        shared: &mut Shared,
        correlation_id: &str,
        result: Result<BTreeMap<String, bool>, PresenceError>,
    ) -> bool {
        let found = self
            .pending
            .iter()
            .find_map(|(request, pending)| match &pending.query {
                Query::Users { correlation_id: id } if id == correlation_id => Some(*request),
                _ => None,
            });
        let Some(request) = found else {
            return false;
        };
        self.remove(shared, request);
        shared.emit(Event::PresenceQueryResult { request, result });
        true
    }

    fn remove(&mut self, shared: &mut Shared, request: RequestId) -> Option<Pending> {
        let pending = self.pending.shift_remove(&request)?;
        shared.timers.cancel(pending.timer);
        Some(pending)
    }

    fn fail(shared: &mut Shared, request: RequestId, query: &Query, error: PresenceError) {
        let event = match query {
            Query::All => Event::PresenceQueryAllResult {
                request,
                result: Err(error),
            },
            Query::Users { .. } => Event::PresenceQueryResult {
                request,
                result: Err(error),
            },
        };
        shared.emit(event);
    }

    /// Fails a query whose answer did not come in time.
    pub(crate) fn request_timed_out(&mut self, shared: &mut Shared, request: RequestId) {
        if let Some(pending) = self.pending.shift_remove(&request) {
            let error = if pending.sent {
                PresenceError::Timeout
            } else {
                PresenceError::ClientOffline
            };
            Self::fail(shared, request, &pending.query, error);
        }
    }

    pub(crate) fn on_lost(&mut self, shared: &mut Shared) {
        self.bulk.reset(shared);
        self.fail_where(shared, |pending| pending.sent);
    }

    pub(crate) fn on_reestablished(&mut self, shared: &mut Shared) {
        let users: Vec<String> = self.users.keys().cloned().collect();
        for user in users {
            self.bulk.subscribe(shared, &user);
        }
        if !self.all.is_empty() {
            send_simple(shared, PresenceAction::SubscribeAll);
        }
        let queued: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, pending)| !pending.sent)
            .map(|(request, _)| *request)
            .collect();
        for request in queued {
            self.send_query(shared, request);
        }
    }

    pub(crate) fn on_limbo_expired(&mut self, shared: &mut Shared) {
        self.fail_where(shared, |pending| !pending.sent);
    }

    fn fail_where(&mut self, shared: &mut Shared, matches: impl Fn(&Pending) -> bool) {
        let doomed: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, pending)| matches(pending))
            .map(|(request, _)| *request)
            .collect();
        for request in doomed {
            if let Some(pending) = self.remove(shared, request) {
                Self::fail(
                    shared,
                    request,
                    &pending.query,
                    PresenceError::ClientOffline,
                );
            }
        }
    }

    fn send_query(&mut self, shared: &mut Shared, request: RequestId) {
        let Some(pending) = self.pending.get_mut(&request) else {
            return;
        };
        shared.send(pending.frame.clone());
        shared.timers.cancel(pending.timer);
        pending.timer = shared.request_timer(request, shared.options.subscription_timeout);
        pending.sent = true;
    }

    fn queue_query(
        &mut self,
        shared: &mut Shared,
        query: Query,
        frame: Bytes,
    ) -> Result<RequestId, PresenceError> {
        if !shared.logged_in && !shared.in_limbo {
            return Err(PresenceError::ClientOffline);
        }
        let request = RequestId(shared.next_id());
        let timer = shared.request_timer(request, shared.options.offline_buffer_timeout);
        self.pending.insert(
            request,
            Pending {
                query,
                timer,
                sent: false,
                frame,
            },
        );
        if shared.logged_in {
            self.send_query(shared, request);
        }
        Ok(request)
    }
}

impl Session {
    /// Follows every user: changes arrive as [`Event::PresenceChanged`] with
    /// the returned id.
    pub fn presence_subscribe_all(&mut self, now: Timestamp) -> PresenceSubscriptionId {
        self.shared.now = now;
        let id = PresenceSubscriptionId(self.shared.next_id());
        let first = self.presence.all.is_empty();
        self.presence.all.push(id);
        self.presence.user_of.insert(id, None);
        if first && self.shared.logged_in {
            send_simple(&mut self.shared, PresenceAction::SubscribeAll);
        }
        id
    }

    /// Follows one user: changes arrive as [`Event::PresenceChanged`] with
    /// the returned id.
    pub fn presence_subscribe(
        &mut self,
        user: &str,
        now: Timestamp,
    ) -> Result<PresenceSubscriptionId, PresenceError> {
        self.shared.now = now;
        if !check_name(user) {
            return Err(PresenceError::EmptyName);
        }
        let id = PresenceSubscriptionId(self.shared.next_id());
        let first = !self.presence.users.contains_key(user);
        self.presence
            .users
            .entry(user.to_owned())
            .or_default()
            .push(id);
        self.presence.user_of.insert(id, Some(user.to_owned()));
        if first && self.shared.logged_in {
            self.presence.bulk.subscribe(&mut self.shared, user);
        }
        Ok(id)
    }

    /// Ends a presence subscription made with either subscribe method.
    pub fn presence_unsubscribe(
        &mut self,
        subscription: PresenceSubscriptionId,
        now: Timestamp,
    ) -> Result<(), PresenceError> {
        self.shared.now = now;
        let user = self
            .presence
            .user_of
            .remove(&subscription)
            .ok_or(PresenceError::UnknownHandle)?;
        match user {
            None => {
                self.presence.all.retain(|id| *id != subscription);
                if self.presence.all.is_empty() && self.shared.logged_in {
                    send_simple(&mut self.shared, PresenceAction::UnsubscribeAll);
                }
            }
            Some(user) => {
                let last = match self.presence.users.get_mut(&user) {
                    Some(ids) => {
                        ids.retain(|id| *id != subscription);
                        ids.is_empty()
                    }
                    None => false,
                };
                if last {
                    self.presence.users.shift_remove(&user);
                    if self.shared.logged_in {
                        self.presence.bulk.unsubscribe(&mut self.shared, &user);
                    }
                }
            }
        }
        Ok(())
    }

    /// Asks which users are online. The answer comes as
    /// [`Event::PresenceQueryAllResult`], exactly once.
    pub fn presence_query_all(&mut self, now: Timestamp) -> Result<RequestId, PresenceError> {
        self.shared.now = now;
        let frame = simple_frame(PresenceAction::QueryAll);
        self.presence
            .queue_query(&mut self.shared, Query::All, frame)
    }

    /// Asks whether each of `users` is online. The answer comes as
    /// [`Event::PresenceQueryResult`], exactly once.
    pub fn presence_query(
        &mut self,
        users: &[&str],
        now: Timestamp,
    ) -> Result<RequestId, PresenceError> {
        self.shared.now = now;
        if users.iter().any(|user| !check_name(user)) {
            return Err(PresenceError::EmptyName);
        }
        let correlation_id = self.presence.next_query_id.to_string();
        self.presence.next_query_id += 1;
        let frame = TopicMessage::Presence(PresenceMessage {
            action: PresenceAction::Query.into(),
            correlation_id: correlation_id.clone(),
            names: users.iter().map(|user| (*user).to_owned()).collect(),
            ..Default::default()
        })
        .encode_frame();
        self.presence
            .queue_query(&mut self.shared, Query::Users { correlation_id }, frame)
    }
}

fn simple_frame(action: PresenceAction) -> Bytes {
    TopicMessage::Presence(PresenceMessage {
        action: action.into(),
        ..Default::default()
    })
    .encode_frame()
}

fn send_simple(shared: &mut Shared, action: PresenceAction) {
    shared.send(simple_frame(action));
    shared.expect_ack(AckKey {
        topic: Topic::Presence,
        action: action.into(),
        key: String::new(),
    });
}

/// Stops the acknowledgement timeout of a subscription that the server
/// denied, because our server sends no acknowledgement for a bulk message
/// whose names are all denied, nor for a denied `SUBSCRIBE_ALL`. The
/// subscriptions stay registered, so they are sent again after a
/// reconnection.
fn stop_subscribe_ack(shared: &mut Shared, message: &PresenceMessage) {
    let key = match PresenceAction::try_from(message.original_action) {
        Ok(PresenceAction::Subscribe) => message.correlation_id.clone(),
        // Matches the key of `send_simple`, whatever name the denial carries.
        Ok(PresenceAction::SubscribeAll) => String::new(),
        _ => return,
    };
    shared.clear_ack(&AckKey {
        topic: Topic::Presence,
        action: message.original_action,
        key,
    });
}

fn server_error(shared: &mut Shared, message: &PresenceMessage) {
    let original_action = (message.original_action != 0)
        .then(|| action_name(Topic::Presence, message.original_action));
    shared.error(SessionError::Server {
        topic: Topic::Presence,
        action: action_name(Topic::Presence, message.action),
        name: message.name.clone(),
        original_action,
    });
}
