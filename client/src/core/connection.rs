//! The connection: handshake, login, heartbeats and reconnection.
//!
//! The states and transitions follow the official client 7.x
//! (`src/connection/connection.ts`): the client challenges the server as soon
//! as the socket opens, logs in once the challenge is accepted, sends `PING`
//! every heartbeat interval and closes the socket when the server has been
//! silent for two intervals. A lost connection is retried at once, then after
//! one, two, three ... `reconnect_interval_increment`s (at most
//! `max_reconnect_interval`), up to `max_reconnect_attempts` attempts; after a
//! new socket opens, the client logs in again with the same data.
//!
//! The official client counts attempts from zero again as soon as a socket
//! opens, so a peer that accepts sockets and closes them at once is retried
//! without delay, forever. This client starts counting again only once a
//! connection has proven itself: the login succeeded, or the server was heard
//! from and the socket stayed open for a heartbeat interval.

use std::collections::VecDeque;

use bytes::Bytes;
use deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, Topic, TopicMessage,
};

use super::error::{LoginError, SessionError, action_name};

/// The shortest heartbeat interval used, whatever `Options::heartbeat_interval` says.
pub(crate) const MIN_HEARTBEAT_INTERVAL: std::time::Duration =
    std::time::Duration::from_millis(100);
use super::shared::{Shared, Timer};
use super::time::{TimerId, Timestamp};
use super::{ConnectionState, Event, InvalidUrl, SocketCommand};

/// The protocol version the official client 7.x announces in its challenge.
const PROTOCOL_VERSION: &str = "0.1a";
/// The `sdkType` this client announces in its challenge.
const SDK_TYPE: &str = "rust";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Socket {
    Idle,
    Opening,
    Open,
}

/// What changed during one call, for the session to pass on to the topic handlers.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Changes {
    /// A socket was lost or closed.
    pub(crate) lost: bool,
    /// The client logged in.
    pub(crate) opened: bool,
    /// The client reached a final state and will not connect again.
    pub(crate) gave_up: bool,
}

#[derive(Debug)]
pub(crate) struct Connection {
    original_url: String,
    url: String,
    state: ConnectionState,
    socket: Socket,
    commands: VecDeque<SocketCommand>,
    auth_data: Option<Bytes>,
    login_pending: bool,
    reconnect_attempt: u32,
    reconnect_timer: Option<TimerId>,
    heartbeat_timer: Option<TimerId>,
    login_timer: Option<TimerId>,
    limbo_timer: Option<TimerId>,
    last_received: Timestamp,
    /// Whether the server sent anything since the current socket opened.
    heard_since_open: bool,
    changes: Changes,
}

impl Connection {
    pub(crate) fn new(url: String, shared: &mut Shared) -> Connection {
        let mut connection = Connection {
            original_url: url.clone(),
            url,
            state: ConnectionState::Initialising,
            socket: Socket::Idle,
            commands: VecDeque::new(),
            auth_data: None,
            login_pending: false,
            reconnect_attempt: 0,
            reconnect_timer: None,
            heartbeat_timer: None,
            login_timer: None,
            limbo_timer: None,
            last_received: shared.now,
            heard_since_open: false,
            changes: Changes::default(),
        };
        connection.open_socket();
        connection
    }

    pub(crate) fn state(&self) -> ConnectionState {
        self.state
    }

    pub(crate) fn poll_socket(&mut self) -> Option<SocketCommand> {
        self.commands.pop_front()
    }

    pub(crate) fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    pub(crate) fn message_received(&mut self, now: Timestamp) {
        self.last_received = now;
        self.heard_since_open = true;
    }

    pub(crate) fn connected(&mut self, shared: &mut Shared) {
        if self.socket != Socket::Opening {
            tracing::debug!("connected() without a socket being opened; ignored");
            return;
        }
        self.socket = Socket::Open;
        shared.socket_open = true;
        if let Some(timer) = self.reconnect_timer.take() {
            shared.timers.cancel(timer);
        }
        self.heard_since_open = false;
        self.last_received = shared.now;
        self.schedule_heartbeat(shared);
        self.set_state(shared, ConnectionState::Challenging);
        shared.send(
            TopicMessage::Connection(ConnectionMessage {
                action: ConnectionAction::Challenge.into(),
                url: self.original_url.clone(),
                protocol_version: PROTOCOL_VERSION.to_owned(),
                sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
                sdk_type: SDK_TYPE.to_owned(),
                ..Default::default()
            })
            .encode_frame(),
        );
    }

    /// Handles a socket that closed, failed or could not be opened.
    pub(crate) fn socket_lost(&mut self, shared: &mut Shared) {
        if self.socket == Socket::Idle {
            return;
        }
        self.drop_socket(shared);
        match self.state {
            ConnectionState::Redirecting => self.open_socket(),
            state if state.is_final() => {}
            _ => {
                self.set_state(shared, ConnectionState::Reconnecting);
                self.try_reconnect(shared);
            }
        }
    }

    /// Closes for good, at the application's request.
    pub(crate) fn close(&mut self, shared: &mut Shared) {
        if self.socket != Socket::Idle {
            self.commands.push_back(SocketCommand::Close);
            self.drop_socket(shared);
        }
        if !self.state.is_final() {
            self.enter_final(shared, ConnectionState::Closed);
        }
    }

    pub(crate) fn login(&mut self, shared: &mut Shared, auth_data: &str) -> Result<(), LoginError> {
        match serde_json::from_str::<serde_json::Value>(auth_data) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => {
                return Err(LoginError::InvalidAuthData {
                    reason: "expected a JSON object".to_owned(),
                });
            }
            Err(error) => {
                return Err(LoginError::InvalidAuthData {
                    reason: error.to_string(),
                });
            }
        }
        match self.state {
            ConnectionState::Open => return Err(LoginError::AlreadyLoggedIn),
            ConnectionState::ChallengeDenied => return Err(LoginError::ConnectionRejected),
            ConnectionState::TooManyAuthAttempts => return Err(LoginError::TooManyAttempts),
            ConnectionState::AuthenticationTimeout => {
                return Err(LoginError::AuthenticationTimeout);
            }
            ConnectionState::Closed => return Err(LoginError::Closed),
            _ => {}
        }
        if self.login_pending {
            return Err(LoginError::InProgress);
        }
        self.auth_data = Some(Bytes::copy_from_slice(auth_data.as_bytes()));
        self.login_pending = true;
        let deadline = shared.now.after(shared.options.login_timeout);
        self.login_timer = Some(shared.timers.add(deadline, Timer::Login));
        if self.state == ConnectionState::AwaitingAuthentication {
            self.send_auth(shared);
        }
        Ok(())
    }

    pub(crate) fn handle_connection(&mut self, shared: &mut Shared, message: ConnectionMessage) {
        match ConnectionAction::try_from(message.action) {
            Ok(ConnectionAction::Accept) => {
                if self.state != ConnectionState::Challenging {
                    self.unsolicited(shared, Topic::Connection, message.action);
                    return;
                }
                self.set_state(shared, ConnectionState::AwaitingAuthentication);
                if self.auth_data.is_some() {
                    self.send_auth(shared);
                }
            }
            Ok(ConnectionAction::Reject) => {
                self.close_socket(shared);
                self.enter_final(shared, ConnectionState::ChallengeDenied);
            }
            Ok(ConnectionAction::Redirect) => {
                if message.url.is_empty() {
                    self.unsolicited(shared, Topic::Connection, message.action);
                    return;
                }
                self.url = message.url;
                self.set_state(shared, ConnectionState::Redirecting);
                self.close_socket(shared);
                self.open_socket();
            }
            Ok(ConnectionAction::AuthenticationTimeout) => {
                self.close_socket(shared);
                self.enter_final(shared, ConnectionState::AuthenticationTimeout);
            }
            Ok(ConnectionAction::Pong | ConnectionAction::Ping) => {}
            _ => {
                shared.error(SessionError::Server {
                    topic: Topic::Connection,
                    action: action_name(Topic::Connection, message.action),
                    name: String::new(),
                    original_action: None,
                });
            }
        }
    }

    pub(crate) fn handle_auth(&mut self, shared: &mut Shared, message: &AuthMessage) {
        let client_data = String::from_utf8(message.data.to_vec())
            .ok()
            .filter(|text| !text.is_empty());
        match AuthAction::try_from(message.action) {
            Ok(AuthAction::AuthSuccessful) if self.state == ConnectionState::Authenticating => {
                self.set_state(shared, ConnectionState::Open);
                self.reconnect_attempt = 0;
                shared.logged_in = true;
                shared.in_limbo = false;
                if let Some(timer) = self.limbo_timer.take() {
                    shared.timers.cancel(timer);
                }
                self.changes.opened = true;
                if self.end_login(shared) {
                    shared.emit(Event::LoggedIn { client_data });
                }
            }
            Ok(AuthAction::AuthUnsuccessful) if self.state == ConnectionState::Authenticating => {
                self.set_state(shared, ConnectionState::AwaitingAuthentication);
                if self.end_login(shared) {
                    shared.emit(Event::LoginFailed(LoginError::Rejected { client_data }));
                } else {
                    shared.error(SessionError::ReauthenticationFailed { client_data });
                }
            }
            Ok(AuthAction::TooManyAuthAttempts) => {
                self.close_socket(shared);
                self.enter_final(shared, ConnectionState::TooManyAuthAttempts);
            }
            Ok(AuthAction::InvalidMessageData) if self.login_pending => {
                self.end_login(shared);
                shared.emit(Event::LoginFailed(LoginError::InvalidAuthData {
                    reason: "the server could not read the authentication data".to_owned(),
                }));
            }
            _ => self.unsolicited(shared, Topic::Auth, message.action),
        }
    }

    /// Sends a `PING`, or closes the socket when the server has been silent
    /// for two heartbeat intervals.
    pub(crate) fn heartbeat(&mut self, shared: &mut Shared) {
        self.heartbeat_timer = None;
        if self.socket != Socket::Open {
            return;
        }
        let tolerance = shared
            .options
            .heartbeat_interval
            .max(MIN_HEARTBEAT_INTERVAL)
            * 2;
        // Servers send nothing to a client that has not logged in (the Node.js
        // server ignores its pings), so silence then is no sign of a lost
        // server. The server's own login timeout ends such a connection.
        let silent = shared.now.since(self.last_received) > tolerance;
        if silent && self.state != ConnectionState::AwaitingAuthentication {
            shared.error(SessionError::HeartbeatTimeout);
            self.commands.push_back(SocketCommand::Close);
            self.socket_lost(shared);
            return;
        }
        if self.heard_since_open {
            // The socket has been open, with traffic from the server, for a heartbeat interval.
            self.reconnect_attempt = 0;
        }
        shared.send(
            TopicMessage::Connection(ConnectionMessage {
                action: ConnectionAction::Ping.into(),
                ..Default::default()
            })
            .encode_frame(),
        );
        self.schedule_heartbeat(shared);
    }

    pub(crate) fn reconnect_due(&mut self) {
        self.reconnect_timer = None;
        if self.state != ConnectionState::Reconnecting || self.socket != Socket::Idle {
            return;
        }
        self.url = self.original_url.clone();
        self.open_socket();
    }

    pub(crate) fn limbo_expired(&mut self) {
        self.limbo_timer = None;
    }

    fn open_socket(&mut self) {
        self.socket = Socket::Opening;
        self.commands.push_back(SocketCommand::Open {
            url: self.url.clone(),
        });
    }

    /// Asks the driver to close the socket and forgets it.
    fn close_socket(&mut self, shared: &mut Shared) {
        if self.socket != Socket::Idle {
            self.commands.push_back(SocketCommand::Close);
            self.drop_socket(shared);
        }
    }

    fn drop_socket(&mut self, shared: &mut Shared) {
        self.socket = Socket::Idle;
        shared.socket_open = false;
        shared.logged_in = false;
        if let Some(timer) = self.heartbeat_timer.take() {
            shared.timers.cancel(timer);
        }
        self.changes.lost = true;
    }

    fn try_reconnect(&mut self, shared: &mut Shared) {
        if self.reconnect_timer.is_some() {
            return;
        }
        if self.reconnect_attempt >= shared.options.max_reconnect_attempts {
            shared.error(SessionError::MaxReconnectAttemptsReached {
                attempts: self.reconnect_attempt,
            });
            self.enter_final(shared, ConnectionState::Closed);
            return;
        }
        let delay = shared
            .options
            .reconnect_interval_increment
            .saturating_mul(self.reconnect_attempt)
            .min(shared.options.max_reconnect_interval);
        let deadline = shared.now.after(delay);
        self.reconnect_timer = Some(shared.timers.add(deadline, Timer::Reconnect));
        self.reconnect_attempt += 1;
        tracing::debug!(attempt = self.reconnect_attempt, ?delay, "reconnecting");
    }

    /// Ends a pending login: cancels its timer and returns whether one was pending.
    fn end_login(&mut self, shared: &mut Shared) -> bool {
        if let Some(timer) = self.login_timer.take() {
            shared.timers.cancel(timer);
        }
        std::mem::take(&mut self.login_pending)
    }

    /// Fails the pending login when its time is up.
    pub(crate) fn login_timed_out(&mut self, shared: &mut Shared) {
        self.login_timer = None;
        if std::mem::take(&mut self.login_pending) {
            shared.emit(Event::LoginFailed(LoginError::TimedOut));
        }
    }

    fn schedule_heartbeat(&mut self, shared: &mut Shared) {
        // A zero interval would fire at once, forever, and spin the driver.
        let interval = shared
            .options
            .heartbeat_interval
            .max(MIN_HEARTBEAT_INTERVAL);
        let deadline = shared.now.after(interval);
        self.heartbeat_timer = Some(shared.timers.add(deadline, Timer::Heartbeat));
    }

    fn send_auth(&mut self, shared: &mut Shared) {
        let Some(data) = self.auth_data.clone() else {
            return;
        };
        self.set_state(shared, ConnectionState::Authenticating);
        shared.send(
            TopicMessage::Auth(AuthMessage {
                action: AuthAction::Request.into(),
                data,
                ..Default::default()
            })
            .encode_frame(),
        );
    }

    fn set_state(&mut self, shared: &mut Shared, state: ConnectionState) {
        if self.state == state {
            return;
        }
        let previous = self.state;
        self.state = state;
        tracing::debug!(?previous, ?state, "connection state changed");
        shared.emit(Event::ConnectionStateChanged(state));
        if state == ConnectionState::Reconnecting && previous != ConnectionState::Closed {
            // Requests made from now on are kept for a while, as the official client does.
            shared.in_limbo = true;
            if let Some(timer) = self.limbo_timer.take() {
                shared.timers.cancel(timer);
            }
            let deadline = shared.now.after(shared.options.offline_buffer_timeout);
            self.limbo_timer = Some(shared.timers.add(deadline, Timer::LimboExpired));
        }
    }

    fn enter_final(&mut self, shared: &mut Shared, state: ConnectionState) {
        self.set_state(shared, state);
        self.changes.gave_up = true;
        if let Some(timer) = self.reconnect_timer.take() {
            shared.timers.cancel(timer);
        }
        if let Some(timer) = self.limbo_timer.take() {
            shared.timers.cancel(timer);
        }
        if let Some(timer) = self.heartbeat_timer.take() {
            shared.timers.cancel(timer);
        }
        if self.end_login(shared) {
            let error = match state {
                ConnectionState::ChallengeDenied => LoginError::ConnectionRejected,
                ConnectionState::TooManyAuthAttempts => LoginError::TooManyAttempts,
                ConnectionState::AuthenticationTimeout => LoginError::AuthenticationTimeout,
                _ => LoginError::Closed,
            };
            shared.emit(Event::LoginFailed(error));
        }
    }

    fn unsolicited(&self, shared: &mut Shared, topic: Topic, action: i32) {
        shared.error(SessionError::Unsolicited {
            topic,
            action: action_name(topic, action),
            name: String::new(),
        });
    }
}

/// Completes a URL the way the official client does: `ws://` when no scheme
/// is given, and `default_path` when no path is given.
pub(crate) fn normalize_url(url: &str, default_path: &str) -> Result<String, InvalidUrl> {
    let invalid = |reason| InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => match url.strip_prefix("//") {
            Some(rest) => ("ws".to_owned(), rest),
            None => ("ws".to_owned(), url),
        },
    };
    if scheme != "ws" && scheme != "wss" {
        return Err(invalid("only ws and wss URLs are supported"));
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    check_authority(authority).map_err(invalid)?;
    if tail.contains(char::is_whitespace) {
        return Err(invalid("the path contains whitespace"));
    }
    let host = authority;
    // `Options::path` may be given without its leading slash.
    let default_path = match default_path.strip_prefix('/') {
        Some(_) => default_path.to_owned(),
        None => format!("/{default_path}"),
    };
    let path = if tail.is_empty() || tail == "/" {
        default_path
    } else if tail.starts_with('?') {
        format!("{default_path}{tail}")
    } else {
        tail.to_owned()
    };
    Ok(format!("{scheme}://{host}{path}"))
}

/// Checks the `host[:port]` part of a URL: a host without whitespace, and a
/// port from 1 to 65535 when one is given. IPv6 hosts are written in brackets.
fn check_authority(authority: &str) -> Result<(), &'static str> {
    if authority.contains(char::is_whitespace) {
        return Err("the host contains whitespace");
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or("an IPv6 host misses its closing bracket")?;
            let port = match after {
                "" => None,
                after => Some(
                    after
                        .strip_prefix(':')
                        .ok_or("invalid text after the IPv6 host")?,
                ),
            };
            (host, port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err("missing host");
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(port) if port > 0 => {}
            _ => return Err("the port must be a number from 1 to 65535"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_gets_scheme_and_default_path() {
        let cases = [
            ("127.0.0.1:6020", "ws://127.0.0.1:6020/deepstream"),
            ("ws://127.0.0.1:6020", "ws://127.0.0.1:6020/deepstream"),
            ("ws://127.0.0.1:6020/", "ws://127.0.0.1:6020/deepstream"),
            ("//127.0.0.1:6020", "ws://127.0.0.1:6020/deepstream"),
            ("wss://127.0.0.1/other/path", "wss://127.0.0.1/other/path"),
            (
                "ws://127.0.0.1:6020?a=b",
                "ws://127.0.0.1:6020/deepstream?a=b",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize_url(input, "/deepstream").unwrap(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn default_path_gets_leading_slash() {
        assert_eq!(
            normalize_url("127.0.0.1:6020", "ds").unwrap(),
            "ws://127.0.0.1:6020/ds"
        );
        assert_eq!(
            normalize_url("127.0.0.1:6020?a=b", "").unwrap(),
            "ws://127.0.0.1:6020/?a=b"
        );
    }

    #[test]
    fn url_with_other_scheme_is_rejected() {
        assert!(normalize_url("http://127.0.0.1:6020", "/deepstream").is_err());
        assert!(normalize_url("ws://", "/deepstream").is_err());
        assert!(normalize_url("ws:///deepstream", "/deepstream").is_err());
    }

    #[test]
    fn url_with_bad_host_or_port_is_rejected() {
        for url in [
            "ws://127.0.0.1:99999/deepstream",
            "ws://127.0.0.1:0",
            "ws://127.0.0.1:abc",
            "ws://:6020/deepstream",
            "not a url",
            "ws://127.0.0.1:6020/deepstream ",
            "ws://[::1/deepstream",
        ] {
            assert!(normalize_url(url, "/deepstream").is_err(), "{url}");
        }
        assert_eq!(
            normalize_url("ws://[::1]:6020", "/deepstream").unwrap(),
            "ws://[::1]:6020/deepstream"
        );
    }
}
