//! Errors of the connection area, and the naming of wire actions in messages.

use deepstream_protocol::{DecodeError, Topic};

/// A problem that the session reports through
/// [`Event::Error`](super::Event::Error) because no single request owns it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A frame from the server could not be decoded. The frame is dropped and
    /// the connection stays open.
    #[error("undecodable frame from the server")]
    InvalidFrame(#[source] DecodeError),
    /// A message's `data` is not UTF-8 text. The message is dropped.
    #[error("{topic:?} {action} message from the server has data that is not UTF-8")]
    InvalidPayload {
        /// The topic of the message.
        topic: Topic,
        /// The action of the message.
        action: String,
    },
    /// The server reported, with a `PARSER` message, that it could not use a
    /// frame of this client.
    #[error("the server could not use a message of this client: {action} {description:?}")]
    Parser {
        /// The `PARSER` action, such as `MESSAGE_PARSE_ERROR`.
        action: String,
        /// The description the server sent, if any.
        description: Option<String>,
    },
    /// Nothing arrived from the server for two heartbeat intervals, so the
    /// client closed the socket and reconnects.
    #[error("no message from the server for two heartbeat intervals")]
    HeartbeatTimeout,
    /// Every reconnection attempt failed and the client is now closed.
    #[error("gave up after {attempts} reconnection attempts")]
    MaxReconnectAttemptsReached {
        /// The number of attempts made.
        attempts: u32,
    },
    /// The login that the client repeats after a reconnection was rejected.
    #[error("login after reconnecting was rejected")]
    ReauthenticationFailed {
        /// Client data the server sent with the rejection, as JSON text.
        client_data: Option<String>,
    },
    /// A subscribe, unsubscribe, listen or provide request was not
    /// acknowledged within `subscription_timeout`.
    #[error("no acknowledgement of {topic:?} {action} {key:?} in time")]
    AckTimeout {
        /// The topic of the request.
        topic: Topic,
        /// The action of the request, such as `SUBSCRIBE`.
        action: String,
        /// The correlation id of the request, or its name.
        key: String,
    },
    /// The server answered with an error that no pending request of this
    /// client owns, such as `MESSAGE_DENIED` for a subscription or
    /// `MULTIPLE_SUBSCRIPTIONS`.
    #[error("server error {topic:?} {action} for {name:?}")]
    Server {
        /// The topic of the error message.
        topic: Topic,
        /// The error action, such as `MESSAGE_DENIED`.
        action: String,
        /// The name, pattern or correlation id the error is about, if any.
        name: String,
        /// The action of the request that failed, if the server named it.
        original_action: Option<String>,
    },
    /// The server sent a message this client did not expect in its state,
    /// such as an answer to a request it no longer waits for.
    #[error("unexpected {topic:?} {action} message for {name:?}")]
    Unsolicited {
        /// The topic of the message.
        topic: Topic,
        /// The action of the message.
        action: String,
        /// The name or correlation id in the message.
        name: String,
    },
}

/// The reason a login did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The authentication data is not a JSON object.
    #[error("invalid authentication data: {reason}")]
    InvalidAuthData {
        /// The problem found.
        reason: String,
    },
    /// The server rejected the credentials. Another login may follow.
    #[error("login rejected")]
    Rejected {
        /// Client data the server sent with the rejection, as JSON text.
        client_data: Option<String>,
    },
    /// The server rejected too many logins and closed the connection.
    #[error("too many failed login attempts; the server closed the connection")]
    TooManyAttempts,
    /// The server refused the connection in the handshake (`REJECT`).
    #[error("the server rejected the connection")]
    ConnectionRejected,
    /// The server's login timeout ran out before a login.
    #[error("the server's login timeout ran out")]
    AuthenticationTimeout,
    /// No answer to the login arrived within `Options::login_timeout`, for
    /// example because the peer is not a deepstream server.
    #[error("no answer to the login within the login timeout")]
    TimedOut,
    /// The client is already logged in on this connection.
    #[error("already logged in")]
    AlreadyLoggedIn,
    /// Another login is still waiting for its answer.
    #[error("another login is in progress")]
    InProgress,
    /// The client was closed, or gave up reconnecting, before the login ended.
    #[error("the client is closed")]
    Closed,
}

/// Returns the protobuf name of `action` in `topic` without its enum prefix,
/// such as `MESSAGE_DENIED`, or the number when the topic does not define it.
pub(crate) fn action_name(topic: Topic, action: i32) -> String {
    deepstream_protocol::action_name(topic, action)
        .map_or_else(|| action.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use deepstream_protocol::{EventAction, RpcAction};

    use super::*;

    #[test]
    fn action_name_strips_enum_prefix() {
        assert_eq!(
            action_name(Topic::Event, EventAction::MessageDenied as i32),
            "MESSAGE_DENIED"
        );
        assert_eq!(
            action_name(Topic::Rpc, RpcAction::NoRpcProvider as i32),
            "NO_RPC_PROVIDER"
        );
        assert_eq!(action_name(Topic::Rpc, 3), "3");
    }
}
