//! The protocol state of one connection: challenge, login, then dispatch.

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, DecodeError, ParserAction,
    ParserMessage, Topic, TopicMessage, encode_frame,
};
use serde_json::{Map, Value};

use super::permit::permit;
use crate::access::Caller;
use crate::auth::{AuthOutcome, ConnectionData};
use crate::monitoring::Endpoint;
use crate::peer::{CLOSE_POLICY, CLOSE_TOO_BIG, ConnectionId, Outbox, Peer};
use crate::services::Services;

/// Warnings about one connection's bad input logged before the rest are
/// counted silently.
const MAX_WARNINGS: u32 = 10;

/// WebSocket close code for a data type the endpoint cannot accept.
const CLOSE_UNSUPPORTED_DATA: u16 = 1003;

static PONG: LazyLock<Bytes> = LazyLock::new(|| connection_frame(ConnectionAction::Pong));
static ACCEPT: LazyLock<Bytes> = LazyLock::new(|| connection_frame(ConnectionAction::Accept));

/// Whether the connection's read loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Stop,
}

enum Phase {
    /// Waiting for the client's CHALLENGE.
    AwaitingChallenge,
    /// Waiting for a valid AUTH REQUEST.
    AwaitingLogin,
    /// Logged in; messages go to the topic handlers.
    Open(LoggedIn),
}

/// The state of a logged-in connection.
struct LoggedIn {
    peer: Arc<Peer>,
    /// The `serverData` the authentication service returned, for permission rules.
    server_data: Option<Arc<Value>>,
}

pub(super) struct Session {
    id: ConnectionId,
    services: Arc<Services>,
    outbox: Outbox,
    /// The upgrade request's details, which HTTP authentication sends to its endpoint.
    connection: ConnectionData,
    phase: Phase,
    failed_logins: u32,
    warnings: u32,
}

impl Session {
    pub(super) fn new(
        id: ConnectionId,
        services: Arc<Services>,
        outbox: Outbox,
        connection: ConnectionData,
    ) -> Session {
        Session {
            id,
            services,
            outbox,
            connection,
            phase: Phase::AwaitingChallenge,
            failed_logins: 0,
            warnings: 0,
        }
    }

    pub(super) fn is_authenticated(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Handles one binary frame.
    pub(super) async fn on_frame(&mut self, frame: Bytes) -> Flow {
        let message = match TopicMessage::decode_frame(frame) {
            Ok(message) => message,
            Err(error) => {
                self.reject_frame(&error);
                return Flow::Continue;
            }
        };
        tracing::trace!(topic = ?message.topic(), action = message.action(), "message received");
        self.services
            .monitor
            .message_received(message.topic() as i32, message.action());

        match &self.phase {
            Phase::AwaitingChallenge => self.on_challenge_phase(message),
            // Boxed, like the permission check below, so that the connection's task
            // does not reserve room for these rare, large futures all its life.
            Phase::AwaitingLogin => Box::pin(self.on_login_phase(message)).await,
            Phase::Open(LoggedIn { peer, server_data }) => {
                let peer = peer.clone();
                let message = if self.services.access.is_open() {
                    message
                } else {
                    let server_data = server_data.clone();
                    let caller = Caller {
                        user: peer.user(),
                        server_data: server_data.as_deref(),
                    };
                    // Boxed: the check's future is about 2 KB, which every connection's
                    // task would otherwise reserve for its whole life. The allocation is
                    // made only when permission rules are configured.
                    let checked = Box::pin(permit(&self.services.access, caller, &peer, message));
                    match checked.await {
                        Some(message) => message,
                        None => return Flow::Continue,
                    }
                };
                self.dispatch(&peer, message);
                Flow::Continue
            }
        }
    }

    /// Text frames belong to deepstream's older text protocol, which this
    /// endpoint does not speak; deepstream closes such connections too.
    pub(super) fn on_text_frame(&mut self) -> Flow {
        self.warn("text frame received on the binary endpoint");
        self.send_parser_error(
            ParserAction::InvalidMessage,
            "text frames are not supported",
            None,
            0,
        );
        self.outbox
            .close(CLOSE_UNSUPPORTED_DATA, "text frames are not supported");
        Flow::Stop
    }

    pub(super) fn on_read_error(&mut self, error: axum::Error) -> Flow {
        let too_big = error
            .into_inner()
            .downcast::<tungstenite::Error>()
            .map(|error| matches!(*error, tungstenite::Error::Capacity(_)))
            .unwrap_or(false);
        if too_big {
            let limit = self.services.websocket.max_message_size;
            self.warn("message over maxMessageSize");
            let description = format!("message larger than the maximum of {limit} bytes");
            self.send_parser_error(
                ParserAction::MaximumMessageSizeExceeded,
                &description,
                None,
                0,
            );
            self.outbox.close(CLOSE_TOO_BIG, "message too big");
        } else {
            tracing::debug!("reading from the socket failed");
        }
        Flow::Stop
    }

    pub(super) fn on_login_timeout(&mut self) {
        tracing::info!(
            "client did not log in within unauthenticatedClientTimeout, closing connection"
        );
        self.outbox
            .send(connection_frame(ConnectionAction::AuthenticationTimeout));
        self.outbox.close(CLOSE_POLICY, "authentication timeout");
    }

    /// Removes the connection from every handler.
    pub(super) fn close(&mut self) {
        if let Phase::Open(LoggedIn { peer, .. }) = &self.phase {
            self.services.events.remove_connection(self.id);
            self.services.rpc.remove_connection(self.id);
            self.services.records.remove_connection(self.id);
            self.services.presence.disconnected(peer);
        }
        self.phase = Phase::AwaitingChallenge;
    }

    fn on_challenge_phase(&mut self, message: TopicMessage) -> Flow {
        let TopicMessage::Connection(connection) = message else {
            self.warn("message before the connection challenge");
            self.outbox
                .send(connection_frame(ConnectionAction::InvalidMessage));
            return Flow::Continue;
        };
        match connection.action() {
            ConnectionAction::Challenge => {
                tracing::debug!(sdk = %connection.sdk_type, version = %connection.sdk_version, "challenge accepted");
                self.outbox.send(ACCEPT.clone());
                self.phase = Phase::AwaitingLogin;
            }
            ConnectionAction::Ping | ConnectionAction::Pong => {}
            other => {
                self.warn("unexpected connection action before the challenge");
                tracing::debug!(action = ?other, "unexpected connection action");
                self.send_parser_error(
                    ParserAction::UnknownAction,
                    "expected a CHALLENGE",
                    Some(Topic::Connection),
                    connection.action,
                );
            }
        }
        Flow::Continue
    }

    async fn on_login_phase(&mut self, message: TopicMessage) -> Flow {
        let auth = match message {
            TopicMessage::Auth(auth) => auth,
            TopicMessage::Connection(connection)
                if matches!(
                    connection.action(),
                    ConnectionAction::Ping | ConnectionAction::Pong
                ) =>
            {
                return Flow::Continue;
            }
            _ => {
                self.warn("message before login");
                self.outbox
                    .send(auth_frame(AuthAction::InvalidMessage, Bytes::new()));
                return Flow::Continue;
            }
        };
        if auth.action() != AuthAction::Request {
            return self.reject_login_message("auth message is not a REQUEST");
        }
        let auth_data = match parse_auth_data(&auth.data) {
            Some(data) => data,
            None => return self.reject_login_message("auth data is not a JSON object"),
        };

        let outcome = self
            .services
            .authenticator
            .authenticate(&self.connection, &auth_data)
            .await;
        match outcome {
            AuthOutcome::Accepted {
                user,
                client_data,
                server_data,
            } => self.on_login(user, client_data, server_data),
            AuthOutcome::Rejected { client_data } => self.on_failed_login(client_data, &auth_data),
            AuthOutcome::Undecided => self.on_failed_login(None, &auth_data),
        }
    }

    fn on_login(
        &mut self,
        user: String,
        client_data: Option<Value>,
        server_data: Option<Value>,
    ) -> Flow {
        // The upgrade request's details serve only the login; an idle connection
        // should not keep its headers.
        self.connection = ConnectionData::default();
        let client_data = client_data.map(|data| Bytes::from(data.to_string()));
        let peer = Arc::new(Peer::new(
            self.id,
            user.into(),
            client_data.clone(),
            self.outbox.clone(),
        ));
        tracing::Span::current().record("user", &**peer.user());
        tracing::info!("client logged in");
        self.services.monitor.login(true, Endpoint::WebSocket);

        self.outbox.send(auth_frame(
            AuthAction::AuthSuccessful,
            client_data.unwrap_or_default(),
        ));
        self.services.presence.connected(&peer);
        self.phase = Phase::Open(LoggedIn {
            peer,
            server_data: server_data.map(Arc::new),
        });
        Flow::Continue
    }

    fn on_failed_login(
        &mut self,
        client_data: Option<Value>,
        auth_data: &Map<String, Value>,
    ) -> Flow {
        self.failed_logins += 1;
        self.services.monitor.login(false, Endpoint::WebSocket);
        if self.services.websocket.log_invalid_auth_data {
            // deepstream logs the whole auth data here; the values of fields other than the
            // user name are left out, because they are credentials.
            tracing::warn!(
                attempt = self.failed_logins,
                auth_data = %describe_auth_data(auth_data),
                "login rejected"
            );
        } else {
            tracing::warn!(attempt = self.failed_logins, "login rejected");
        }
        let data = client_data
            .map(|data| Bytes::from(data.to_string()))
            .unwrap_or_default();
        self.outbox
            .send(auth_frame(AuthAction::AuthUnsuccessful, data));

        if self.failed_logins >= self.services.websocket.max_auth_attempts {
            tracing::warn!("too many failed logins, closing connection");
            self.outbox
                .send(auth_frame(AuthAction::TooManyAuthAttempts, Bytes::new()));
            self.outbox
                .close(CLOSE_POLICY, "too many authentication attempts");
            return Flow::Stop;
        }
        Flow::Continue
    }

    fn reject_login_message(&mut self, reason: &'static str) -> Flow {
        self.warn(reason);
        self.outbox
            .send(auth_frame(AuthAction::InvalidMessageData, Bytes::new()));
        self.outbox
            .close(CLOSE_POLICY, "invalid authentication message");
        Flow::Stop
    }

    fn dispatch(&mut self, peer: &Arc<Peer>, message: TopicMessage) {
        let features = &self.services.features;
        match message {
            TopicMessage::Connection(connection) => self.on_connection_message(&connection),
            TopicMessage::Event(event) if features.event => {
                self.services.events.handle(peer, event)
            }
            TopicMessage::Rpc(rpc) if features.rpc => self.services.rpc.handle(peer, rpc),
            TopicMessage::Record(record) if features.record => {
                self.services.records.handle(peer, record)
            }
            TopicMessage::Presence(presence) if features.presence => {
                self.services.presence.handle(peer, presence)
            }
            other => {
                let topic = other.topic();
                tracing::debug!(?topic, "topic not served");
                let description = "topic not served by this server";
                self.send_parser_error(
                    ParserAction::UnknownTopic,
                    description,
                    Some(topic),
                    other.action(),
                );
            }
        }
    }

    fn on_connection_message(&mut self, message: &ConnectionMessage) {
        match message.action() {
            ConnectionAction::Ping => {
                self.outbox.send(PONG.clone());
            }
            ConnectionAction::Pong | ConnectionAction::Closing | ConnectionAction::Closed => {}
            _ => {
                let description = "unexpected connection action";
                self.send_parser_error(
                    ParserAction::UnknownAction,
                    description,
                    Some(Topic::Connection),
                    message.action,
                );
            }
        }
    }

    fn reject_frame(&mut self, error: &DecodeError) {
        self.warn(&format!("undecodable frame: {error}"));
        let original_action = match error {
            DecodeError::UnknownAction { action, .. } => *action,
            _ => 0,
        };
        self.send_parser_error(
            error.parser_action(),
            &error.to_string(),
            error.topic(),
            original_action,
        );
    }

    fn send_parser_error(
        &self,
        action: ParserAction,
        description: &str,
        topic: Option<Topic>,
        original_action: i32,
    ) {
        let data = serde_json::to_vec(description).expect("a string always serializes");
        let message = ParserMessage {
            action: action.into(),
            data: Bytes::from(data),
            original_topic: topic.map(Into::into).unwrap_or_default(),
            original_action,
        };
        self.outbox.send(encode_frame(Topic::Parser, &message));
    }

    /// Logs a client error at warn level, up to [`MAX_WARNINGS`] per connection.
    fn warn(&mut self, what: &str) {
        self.warnings += 1;
        match self.warnings {
            count if count < MAX_WARNINGS => tracing::warn!("client error: {what}"),
            MAX_WARNINGS => tracing::warn!(
                "client error: {what}; further client errors of this connection are logged at debug level"
            ),
            _ => tracing::debug!("client error: {what}"),
        }
    }
}

/// Describes auth data for the log without credentials: the user name when it is a string,
/// and the names of the other fields.
fn describe_auth_data(auth_data: &Map<String, Value>) -> String {
    let username = match auth_data.get("username") {
        Some(Value::String(name)) => format!("username {name:?}"),
        Some(_) => "username that is not a string".to_owned(),
        None => "no username".to_owned(),
    };
    let others: Vec<&str> = auth_data
        .keys()
        .map(String::as_str)
        .filter(|key| *key != "username")
        .collect();
    if others.is_empty() {
        format!("{username}, no other fields")
    } else {
        format!("{username}, fields {}", others.join(", "))
    }
}

fn parse_auth_data(data: &[u8]) -> Option<Map<String, Value>> {
    if data.is_empty() {
        return Some(Map::new());
    }
    match serde_json::from_slice(data) {
        Ok(Value::Object(map)) => Some(map),
        Ok(Value::Null) => Some(Map::new()),
        _ => None,
    }
}

fn connection_frame(action: ConnectionAction) -> Bytes {
    encode_frame(
        Topic::Connection,
        &ConnectionMessage {
            action: action.into(),
            ..Default::default()
        },
    )
}

fn auth_frame(action: AuthAction, data: Bytes) -> Bytes {
    encode_frame(
        Topic::Auth,
        &AuthMessage {
            action: action.into(),
            data,
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn describe(auth_data: Value) -> String {
        let Value::Object(map) = auth_data else {
            panic!("auth data must be an object")
        };
        describe_auth_data(&map)
    }

    #[test]
    fn auth_data_description_leaves_out_credentials() {
        let text = describe(json!({"username": "ada", "password": "lovelace", "token": "t-1"}));

        assert_eq!(text, "username \"ada\", fields password, token");
        assert!(!text.contains("lovelace"));
    }

    #[test]
    fn auth_data_description_without_username() {
        assert_eq!(describe(json!({})), "no username, no other fields");
        assert_eq!(
            describe(json!({"username": {"first": "ada"}})),
            "username that is not a string, no other fields"
        );
    }
}
