//! The sans-IO session: the whole client protocol without sockets, clocks or a runtime.
//!
//! [`Session`] takes received frames and the current time and hands back frames
//! to send, socket commands, events for the application and the next timer
//! deadline. A driver owns the socket and the clock and moves bytes between
//! them. The tokio driver in [`crate::tokio`] is one, and a browser driver over
//! the WebSocket API can be another.

mod bulk;
mod connection;
mod error;
mod event;
mod ids;
mod options;
mod presence;
mod record;
mod rpc;
mod shared;
mod time;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use bytes::Bytes;
use deepstream_protocol::{Topic, TopicMessage};

pub use error::{LoginError, SessionError};
pub use event::EventError;
pub use ids::{
    IncomingRpcId, ListenId, PresenceSubscriptionId, ProviderId, RecordId, RecordSubscriptionId,
    RequestId, SubscriptionId,
};
pub use options::Options;
pub use presence::PresenceError;
pub use record::{MergeInput, MergeStrategy, RecordError};
pub use rpc::{IncomingRpc, RpcError};
pub use time::Timestamp;

use connection::Connection;
use event::EventHandler;
use presence::PresenceHandler;
use record::RecordHandler;
use rpc::RpcHandler;
use shared::{Shared, Timer};

/// The state of the connection, as the official client names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    /// The first socket is being opened.
    Initialising,
    /// The socket is open and the client sent its `CHALLENGE`.
    Challenging,
    /// The server accepted the challenge and waits for a login.
    AwaitingAuthentication,
    /// A login was sent and waits for its answer.
    Authenticating,
    /// Logged in: every feature works.
    Open,
    /// The connection was lost; the client waits for its next attempt or is
    /// opening a new socket.
    Reconnecting,
    /// The server sent `REDIRECT`; the client connects to the URL it named.
    Redirecting,
    /// Closed by the application or after the last reconnection attempt.
    Closed,
    /// The server refused the challenge. The client does not reconnect.
    ChallengeDenied,
    /// The server refused too many logins and closed. The client does not reconnect.
    TooManyAuthAttempts,
    /// The server's login timeout ran out. The client does not reconnect.
    AuthenticationTimeout,
}

impl ConnectionState {
    /// Returns whether the client stays in this state for good.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ConnectionState::Closed
                | ConnectionState::ChallengeDenied
                | ConnectionState::TooManyAuthAttempts
                | ConnectionState::AuthenticationTimeout
        )
    }
}

/// An instruction for the driver's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketCommand {
    /// Open a WebSocket to `url`, then call [`Session::connected`], or
    /// [`Session::connection_lost`] if it fails.
    Open {
        /// The `ws://` or `wss://` URL, with its path.
        url: String,
    },
    /// Close the current WebSocket. The session already counts it as gone, so
    /// the driver does not call [`Session::connection_lost`] for it.
    Close,
}

/// Something that happened, for the application.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The connection changed state.
    ConnectionStateChanged(ConnectionState),
    /// The login requested with [`Session::login`] succeeded.
    LoggedIn {
        /// The client data the server returned, as JSON text.
        client_data: Option<String>,
    },
    /// The login requested with [`Session::login`] failed.
    LoginFailed(LoginError),
    /// A problem that no single request owns.
    Error(SessionError),
    /// An event arrived for a local subscription.
    EventReceived {
        /// The local subscription it is for.
        subscription: SubscriptionId,
        /// The event name.
        name: String,
        /// The payload as JSON text, if the emitter sent one.
        data: Option<String>,
    },
    /// The server refused an event subscription, which has ended.
    EventSubscriptionEnded {
        /// The local subscription that ended.
        subscription: SubscriptionId,
        /// The event name.
        name: String,
    },
    /// A client subscribed to `name`, which matches a pattern this client
    /// listens to. Answer with [`Session::event_listen_respond`].
    ListenRequest {
        /// The listen registration the pattern belongs to.
        listen: ListenId,
        /// The pattern.
        pattern: String,
        /// The subscribed name.
        name: String,
    },
    /// A name this client accepted to provide has no subscribers any more, or
    /// the connection was lost.
    ListenStopped {
        /// The listen registration the pattern belongs to.
        listen: ListenId,
        /// The pattern.
        pattern: String,
        /// The name no longer provided.
        name: String,
    },
    /// The server rejected a listen pattern: as an invalid regular
    /// expression, or because its permissions deny listening to it. The
    /// listen registration has ended; an [`Event::Error`] with the server's
    /// `INVALID_LISTEN_REGEX`, `MESSAGE_DENIED` or `MESSAGE_PERMISSION_ERROR`
    /// comes with it.
    ListenRejected {
        /// The listen registration that ended.
        listen: ListenId,
        /// The pattern.
        pattern: String,
    },
    /// An RPC request for a name this client provides. Answer it with
    /// [`Session::rpc_respond`], [`Session::rpc_error`] or [`Session::rpc_reject`].
    RpcRequest(IncomingRpc),
    /// The server refused to register an RPC provider, which has ended.
    RpcProviderEnded {
        /// The provider that ended.
        provider: ProviderId,
        /// The RPC name.
        name: String,
    },
    /// The result of [`Session::rpc_make`].
    RpcResult {
        /// The request.
        request: RequestId,
        /// The response data as JSON text (`None` if the provider sent
        /// none), or why the call failed.
        result: Result<Option<String>, RpcError>,
    },
    /// A user came online or went offline.
    PresenceChanged {
        /// The local presence subscription it is for.
        subscription: PresenceSubscriptionId,
        /// The user name.
        user: String,
        /// Whether the user is online now.
        online: bool,
    },
    /// The result of [`Session::presence_query_all`]: the users online,
    /// without this client's own user.
    PresenceQueryAllResult {
        /// The request.
        request: RequestId,
        /// The user names, or why the query failed.
        result: Result<Vec<String>, PresenceError>,
    },
    /// The result of [`Session::presence_query`]: whether each asked user is online.
    PresenceQueryResult {
        /// The request.
        request: RequestId,
        /// Each asked user and whether it is online, or why the query failed.
        result: Result<BTreeMap<String, bool>, PresenceError>,
    },
    /// A record handle from [`Session::record_get`] is ready: its data and
    /// version are known.
    RecordReady {
        /// The handle.
        record: RecordId,
    },
    /// The open of a record handle from [`Session::record_get`] failed, for
    /// one of the reasons listed there.
    RecordReadFailed {
        /// The handle.
        record: RecordId,
        /// Why.
        error: RecordError,
    },
    /// The value a record subscription follows changed.
    RecordChanged {
        /// The subscription.
        subscription: RecordSubscriptionId,
        /// The new value as JSON text, `None` when the path names nothing now.
        data: Option<String>,
    },
    /// A record was deleted, by this client or another one; the handle is closed.
    RecordDeleted {
        /// The handle.
        record: RecordId,
    },
    /// The client closed a ready record handle because the record can no
    /// longer be kept up to date: the server's permissions denied subscribing
    /// to it again after a reconnection. The handle and its subscriptions
    /// are unknown from now on. Opening the record again sends a new
    /// subscription request.
    RecordClosed {
        /// The handle.
        record: RecordId,
        /// Why, such as [`RecordError::Server`] with `MESSAGE_DENIED`.
        error: RecordError,
    },
    /// Whether a client provides the record through listening changed.
    RecordProviderChanged {
        /// The handle.
        record: RecordId,
        /// Whether a provider exists now.
        has_provider: bool,
    },
    /// The result of a record write that asked for an acknowledgement.
    RecordWriteResult {
        /// The request.
        request: RequestId,
        /// Success, or why the write failed.
        result: Result<(), RecordError>,
    },
    /// The result of [`Session::record_delete`].
    RecordDeleteResult {
        /// The request.
        request: RequestId,
        /// Success, or why the delete failed.
        result: Result<(), RecordError>,
    },
    /// The result of [`Session::record_snapshot`].
    RecordSnapshotResult {
        /// The request.
        request: RequestId,
        /// The data as JSON text, or why the read failed.
        result: Result<String, RecordError>,
    },
    /// The result of [`Session::record_head`].
    RecordHeadResult {
        /// The request.
        request: RequestId,
        /// The version (-1 for a missing record), or why the request failed.
        result: Result<i32, RecordError>,
    },
    /// The result of [`Session::record_notify`].
    RecordNotifyResult {
        /// The request.
        request: RequestId,
        /// Success, or why the notify failed.
        result: Result<(), RecordError>,
    },
}

/// A deepstream client session without I/O.
///
/// # Calling contract
///
/// Every method that takes a [`Timestamp`] needs the current reading of one
/// monotonic clock; readings never go backwards. After any call, the driver
/// drains the outputs:
///
/// 1. [`poll_socket`](Session::poll_socket) until `None`, carrying out each
///    [`SocketCommand`]: open a WebSocket (then call
///    [`connected`](Session::connected), or
///    [`connection_lost`](Session::connection_lost) when opening fails) or close
///    the current one;
/// 2. [`poll_transmit`](Session::poll_transmit) until `None`, sending each
///    frame as one binary WebSocket message, in order;
/// 3. [`poll_event`](Session::poll_event) until `None`, handing each event to
///    the application;
/// 4. [`poll_timeout`](Session::poll_timeout), and call
///    [`handle_timeout`](Session::handle_timeout) once that time is reached.
///
/// Inputs: each binary message from the socket goes to
/// [`handle_frame`](Session::handle_frame); a socket that closes or fails goes
/// to [`connection_lost`](Session::connection_lost). Commands such as
/// [`login`](Session::login) or [`event_subscribe`](Session::event_subscribe)
/// may be called in any state: what needs a logged-in connection is kept and
/// sent after the login, as described on each method.
///
/// A new session requests a socket to its URL at once.
///
/// ```
/// use deepstream_client::core::{Options, Session, SocketCommand, Timestamp};
///
/// let mut session = Session::new("ws://127.0.0.1:6020/deepstream", Options::default(), 7)
///     .unwrap();
/// let now = Timestamp::from_millis(0);
/// assert!(matches!(session.poll_socket(), Some(SocketCommand::Open { .. })));
/// session.connected(now);
/// let challenge = session.poll_transmit().expect("a CHALLENGE frame");
/// assert!(!challenge.is_empty());
/// ```
#[derive(Debug)]
pub struct Session {
    shared: Shared,
    connection: Connection,
    event: EventHandler,
    rpc: RpcHandler,
    presence: PresenceHandler,
    record: RecordHandler,
}

/// The URL given to [`Session::new`] is not a usable WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL {url:?}: {reason}")]
pub struct InvalidUrl {
    /// The URL as given.
    pub url: String,
    /// The problem found.
    pub reason: &'static str,
}

impl Session {
    /// Creates a session that connects to `url`.
    ///
    /// A URL without a scheme gets `ws://`, and one without a path gets
    /// `options.path`, as in the official client. `id_seed` makes this session's
    /// RPC correlation ids unique on the server, which keys requests in flight
    /// by correlation id alone: pass a random number.
    pub fn new(url: &str, options: Options, id_seed: u64) -> Result<Session, InvalidUrl> {
        let url = connection::normalize_url(url, &options.path)?;
        let mut shared = Shared::new(options, id_seed);
        let connection = Connection::new(url, &mut shared);
        Ok(Session {
            event: EventHandler::new(),
            rpc: RpcHandler::new(),
            presence: PresenceHandler::new(),
            record: RecordHandler::new(),
            connection,
            shared,
        })
    }

    /// Returns the current connection state.
    pub fn state(&self) -> ConnectionState {
        self.connection.state()
    }

    /// Returns the next socket command.
    pub fn poll_socket(&mut self) -> Option<SocketCommand> {
        self.connection.poll_socket()
    }

    /// Returns the next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.shared.transmit.pop_front()
    }

    /// Returns the next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.shared.events.pop_front()
    }

    /// Returns when [`handle_timeout`](Session::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.shared.timers.next_deadline()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.shared.now = now;
        while let Some(timer) = self.shared.timers.pop_expired(now) {
            self.fire(timer);
            self.after_connection_change();
        }
    }

    /// Handles one binary message received from the socket.
    ///
    /// An undecodable frame becomes an [`Event::Error`] with
    /// [`SessionError::InvalidFrame`]; the session carries on.
    pub fn handle_frame(&mut self, frame: Bytes, now: Timestamp) {
        self.shared.now = now;
        self.connection.message_received(now);
        let message = match TopicMessage::decode_frame(frame) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, "undecodable frame from the server");
                self.shared.error(SessionError::InvalidFrame(error));
                return;
            }
        };
        tracing::trace!(?message, "received");
        self.dispatch(message);
        self.after_connection_change();
    }

    /// Reports that the socket asked for with [`SocketCommand::Open`] is open.
    pub fn connected(&mut self, now: Timestamp) {
        self.shared.now = now;
        self.connection.connected(&mut self.shared);
        self.after_connection_change();
    }

    /// Reports that the socket closed or failed, or could not be opened.
    /// Calls without a socket being open or opened are ignored.
    pub fn connection_lost(&mut self, now: Timestamp) {
        self.shared.now = now;
        self.connection.socket_lost(&mut self.shared);
        self.after_connection_change();
    }

    /// Closes the connection for good: no reconnection follows, and every
    /// request still waiting fails.
    pub fn close(&mut self, now: Timestamp) {
        self.shared.now = now;
        self.connection.close(&mut self.shared);
        self.after_connection_change();
    }

    /// Logs in with `auth_data`, a JSON object such as
    /// `{"username":"ada","password":"s3cret"}`.
    ///
    /// The result comes as [`Event::LoggedIn`] or [`Event::LoginFailed`]. When
    /// the server has not accepted the challenge yet, the login is sent once
    /// it has. The session keeps the data and logs in with it again after
    /// every reconnection.
    pub fn login(&mut self, auth_data: &str, now: Timestamp) -> Result<(), LoginError> {
        self.shared.now = now;
        let result = self.connection.login(&mut self.shared, auth_data);
        self.after_connection_change();
        result
    }

    fn dispatch(&mut self, message: TopicMessage) {
        match message {
            TopicMessage::Connection(message) => {
                self.connection.handle_connection(&mut self.shared, message);
            }
            TopicMessage::Auth(message) => self.connection.handle_auth(&mut self.shared, &message),
            TopicMessage::Parser(message) => {
                let description = String::from_utf8(message.data.to_vec())
                    .ok()
                    .filter(|text| !text.is_empty());
                self.shared.error(SessionError::Parser {
                    action: error::action_name(Topic::Parser, message.action),
                    description,
                });
            }
            TopicMessage::Event(message) => self.event.handle(&mut self.shared, message),
            TopicMessage::Rpc(message) => self.rpc.handle(&mut self.shared, message),
            TopicMessage::Presence(message) => self.presence.handle(&mut self.shared, message),
            TopicMessage::Record(message) => self.record.handle(&mut self.shared, &message),
            other => {
                let topic = other.topic();
                self.shared.error(SessionError::Unsolicited {
                    topic,
                    action: error::action_name(topic, other.action()),
                    name: String::new(),
                });
            }
        }
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::Heartbeat => self.connection.heartbeat(&mut self.shared),
            Timer::Reconnect => self.connection.reconnect_due(),
            Timer::Login => self.connection.login_timed_out(&mut self.shared),
            Timer::LimboExpired => {
                self.connection.limbo_expired();
                self.shared.in_limbo = false;
                self.on_limbo_expired();
            }
            Timer::BulkFlush(kind) => match kind {
                shared::BulkKind::Event => self.event.flush(&mut self.shared),
                shared::BulkKind::Rpc => self.rpc.flush(&mut self.shared),
                shared::BulkKind::Presence => self.presence.flush(&mut self.shared),
                shared::BulkKind::RecordRead | shared::BulkKind::RecordHead => {
                    self.record.flush(&mut self.shared, kind);
                }
            },
            Timer::Ack(key) => {
                self.shared.ack_fired(&key);
                self.shared.error(SessionError::AckTimeout {
                    topic: key.topic,
                    action: error::action_name(key.topic, key.action),
                    key: key.key,
                });
            }
            Timer::Request(request) => {
                if !self.rpc.request_timed_out(&mut self.shared, request)
                    && !self.record.request_timed_out(&mut self.shared, request)
                {
                    self.presence.request_timed_out(&mut self.shared, request);
                }
            }
            Timer::RecordRead(name) => self.record.read_timed_out(&mut self.shared, &name),
        }
    }

    /// Tells the topic handlers what the last call changed in the connection.
    fn after_connection_change(&mut self) {
        let changes = self.connection.take_changes();
        if changes.lost {
            self.on_lost();
        }
        if changes.opened {
            self.on_reestablished();
        }
        if changes.gave_up {
            self.shared.in_limbo = false;
            self.on_limbo_expired();
            self.record.on_closed(&mut self.shared);
        }
    }

    fn on_lost(&mut self) {
        self.shared.clear_all_acks();
        self.event.on_lost(&mut self.shared);
        self.rpc.on_lost(&mut self.shared);
        self.presence.on_lost(&mut self.shared);
        self.record.on_lost(&mut self.shared);
    }

    fn on_reestablished(&mut self) {
        self.event.on_reestablished(&mut self.shared);
        self.rpc.on_reestablished(&mut self.shared);
        self.presence.on_reestablished(&mut self.shared);
        self.record.on_reestablished(&mut self.shared);
    }

    fn on_limbo_expired(&mut self) {
        self.event.on_limbo_expired(&mut self.shared);
        self.rpc.on_limbo_expired(&mut self.shared);
        self.presence.on_limbo_expired(&mut self.shared);
    }
}

/// Decodes a payload into text: `None` when absent, an error event when it
/// is not UTF-8.
pub(crate) fn payload_text(
    shared: &mut Shared,
    topic: Topic,
    action: i32,
    data: &Bytes,
) -> Result<Option<String>, ()> {
    if data.is_empty() {
        return Ok(None);
    }
    match String::from_utf8(data.to_vec()) {
        Ok(text) => Ok(Some(text)),
        Err(_) => {
            shared.error(SessionError::InvalidPayload {
                topic,
                action: error::action_name(topic, action),
            });
            Err(())
        }
    }
}

/// Checks that `text` is one JSON value.
pub(crate) fn check_json(text: &str) -> Result<(), String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// Checks that a name is not empty, as the official client requires.
pub(crate) fn check_name(name: &str) -> bool {
    !name.is_empty()
}
