//! Builders for the RECORD messages the server sends.

use bytes::Bytes;
use deepstream_protocol::{RecordAction, RecordMessage, Topic, encode_frame};

use crate::listen::ListenMessages;

/// The JSON text of an empty record.
pub(super) const EMPTY_OBJECT: &[u8] = b"{}";

/// Where a write came from, for replies that must reach the writer's
/// acknowledgement callback.
#[derive(Debug, Clone, Default)]
pub(super) struct WriteAck {
    /// The request's correlation id, when the writer asked for an acknowledgement.
    pub(super) correlation_id: Option<String>,
}

impl WriteAck {
    fn apply(&self, message: &mut RecordMessage) {
        if let Some(correlation_id) = &self.correlation_id {
            message.correlation_id = correlation_id.clone();
            message.is_write_ack = true;
        }
    }
}

pub(super) fn encode(message: &RecordMessage) -> Bytes {
    encode_frame(Topic::Record, message)
}

/// `READ_RESPONSE` with the record's version and data.
pub(super) fn read_response(name: &str, version: i32, data: Bytes) -> Bytes {
    encode(&RecordMessage {
        action: RecordAction::ReadResponse.into(),
        name: name.to_owned(),
        version: Some(version),
        data,
        ..Default::default()
    })
}

/// `HEAD_RESPONSE` with the record's version, -1 for a missing record.
pub(super) fn head_response(name: &str, version: i32) -> Bytes {
    encode(&RecordMessage {
        action: RecordAction::HeadResponse.into(),
        name: name.to_owned(),
        version: Some(version),
        ..Default::default()
    })
}

/// An error about one record, answering a request with `original_action`.
pub(super) fn error(
    action: RecordAction,
    original_action: RecordAction,
    name: &str,
    ack: &WriteAck,
) -> Bytes {
    let mut message = RecordMessage {
        action: action.into(),
        original_action: original_action.into(),
        name: name.to_owned(),
        is_error: true,
        ..Default::default()
    };
    ack.apply(&mut message);
    encode(&message)
}

/// Builds the same error with a description in `data`.
pub(super) fn error_with_reason(
    action: RecordAction,
    original_action: RecordAction,
    name: &str,
    ack: &WriteAck,
    reason: &str,
) -> Bytes {
    let mut message = RecordMessage {
        action: action.into(),
        original_action: original_action.into(),
        name: name.to_owned(),
        is_error: true,
        data: json_string(reason),
        ..Default::default()
    };
    ack.apply(&mut message);
    encode(&message)
}

/// `VERSION_EXISTS`: the write's version was not the next one; carries the
/// current version and data so the client can merge.
pub(super) fn version_exists(
    original_action: RecordAction,
    name: &str,
    version: i32,
    data: Bytes,
    ack: &WriteAck,
) -> Bytes {
    let mut message = RecordMessage {
        action: RecordAction::VersionExists.into(),
        original_action: original_action.into(),
        name: name.to_owned(),
        version: Some(version),
        data,
        ..Default::default()
    };
    ack.apply(&mut message);
    encode(&message)
}

/// `INVALID_VERSION`, carrying the current version.
pub(super) fn invalid_version(
    original_action: RecordAction,
    name: &str,
    version: i32,
    ack: &WriteAck,
) -> Bytes {
    let mut message = RecordMessage {
        action: RecordAction::InvalidVersion.into(),
        original_action: original_action.into(),
        name: name.to_owned(),
        version: Some(version),
        is_error: true,
        ..Default::default()
    };
    ack.apply(&mut message);
    encode(&message)
}

/// `WRITE_ACKNOWLEDGEMENT` for a write that reached the cache and storage.
pub(super) fn write_acknowledgement(name: &str, correlation_id: &str) -> Bytes {
    encode(&RecordMessage {
        action: RecordAction::WriteAcknowledgement.into(),
        name: name.to_owned(),
        correlation_id: correlation_id.to_owned(),
        is_write_ack: true,
        ..Default::default()
    })
}

/// Builds a message with only an action and a record name, such as `DELETED`.
pub(super) fn named(action: RecordAction, name: &str) -> Bytes {
    encode(&RecordMessage {
        action: action.into(),
        name: name.to_owned(),
        ..Default::default()
    })
}

/// Builds the acknowledgement of a bulk request.
pub(super) fn ack(action: RecordAction, correlation_id: String) -> Bytes {
    encode(&RecordMessage {
        action: action.into(),
        correlation_id,
        is_ack: true,
        ..Default::default()
    })
}

/// Encodes `text` as a JSON string.
pub(super) fn json_string(text: &str) -> Bytes {
    Bytes::from(serde_json::to_vec(text).expect("a string always serializes"))
}

/// The listen messages of the RECORD topic.
pub(super) struct RecordListenMessages;

impl RecordListenMessages {
    fn frame(action: RecordAction, name: &str, subscription: &str) -> Bytes {
        encode(&RecordMessage {
            action: action.into(),
            name: name.to_owned(),
            subscription: subscription.to_owned(),
            ..Default::default()
        })
    }

    fn error(action: RecordAction, original_action: RecordAction, pattern: &str) -> Bytes {
        error(action, original_action, pattern, &WriteAck::default())
    }
}

impl ListenMessages for RecordListenMessages {
    fn ack(&self, listen: bool, pattern: &str) -> Bytes {
        let action = if listen {
            RecordAction::Listen
        } else {
            RecordAction::Unlisten
        };
        encode(&RecordMessage {
            action: action.into(),
            name: pattern.to_owned(),
            is_ack: true,
            ..Default::default()
        })
    }

    fn pattern_found(&self, pattern: &str, subscription: &str) -> Bytes {
        Self::frame(
            RecordAction::SubscriptionForPatternFound,
            pattern,
            subscription,
        )
    }

    fn pattern_removed(&self, pattern: &str, subscription: &str) -> Bytes {
        Self::frame(
            RecordAction::SubscriptionForPatternRemoved,
            pattern,
            subscription,
        )
    }

    fn invalid_regex(&self, pattern: &str) -> Bytes {
        Self::error(
            RecordAction::InvalidListenRegex,
            RecordAction::Listen,
            pattern,
        )
    }

    fn response_timeout(&self, subscription: &str) -> Bytes {
        Self::frame(RecordAction::ListenResponseTimeout, "", subscription)
    }

    fn already_listening(&self, pattern: &str) -> Bytes {
        Self::error(
            RecordAction::MultipleSubscriptions,
            RecordAction::Listen,
            pattern,
        )
    }

    fn not_listening(&self, pattern: &str) -> Bytes {
        Self::error(RecordAction::NotSubscribed, RecordAction::Unlisten, pattern)
    }

    fn has_provider(&self, subscription: &str, has_provider: bool) -> Option<Bytes> {
        let action = if has_provider {
            RecordAction::SubscriptionHasProvider
        } else {
            RecordAction::SubscriptionHasNoProvider
        };
        Some(named(action, subscription))
    }
}
