use crate::messages::{ParserAction, Topic};

/// Why a received frame could not be turned into a [`crate::TopicMessage`].
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame contains no bytes.
    #[error("empty frame")]
    Empty,
    /// The varint length prefix of the envelope is malformed.
    #[error("invalid envelope length prefix")]
    LengthPrefix(#[source] prost::DecodeError),
    /// The length prefix announces more bytes than the frame contains.
    #[error("envelope length {declared} exceeds the {available} bytes left in the frame")]
    LengthExceedsFrame {
        /// The length written in the prefix.
        declared: usize,
        /// The bytes that follow the prefix.
        available: usize,
    },
    /// Bytes follow the envelope; a frame must carry exactly one message.
    #[error("{count} bytes after the envelope; a frame carries exactly one message")]
    TrailingBytes {
        /// How many bytes follow the envelope.
        count: usize,
    },
    /// The envelope itself is not valid protobuf.
    #[error("invalid envelope")]
    Envelope(#[source] prost::DecodeError),
    /// The envelope names a topic that has no message type.
    #[error("unknown topic {0}")]
    UnknownTopic(i32),
    /// The topic message inside the envelope is not valid protobuf.
    #[error("invalid {topic:?} message")]
    Body {
        /// The topic named by the envelope.
        topic: Topic,
        /// What protobuf decoding reported.
        #[source]
        source: prost::DecodeError,
    },
    /// The topic message carries an action number that its topic does not define.
    #[error("unknown action {action} for topic {topic:?}")]
    UnknownAction {
        /// The topic named by the envelope.
        topic: Topic,
        /// The action number found.
        action: i32,
    },
}

impl DecodeError {
    /// Returns the `PARSER` action that reports this error to the peer.
    pub fn parser_action(&self) -> ParserAction {
        match self {
            DecodeError::UnknownTopic(_) => ParserAction::UnknownTopic,
            DecodeError::UnknownAction { .. } => ParserAction::UnknownAction,
            _ => ParserAction::MessageParseError,
        }
    }

    /// Returns the topic the frame claimed, when decoding got that far.
    pub fn topic(&self) -> Option<Topic> {
        match self {
            DecodeError::Body { topic, .. } | DecodeError::UnknownAction { topic, .. } => {
                Some(*topic)
            }
            _ => None,
        }
    }
}
