//! The deepstream wire protocol, version 4 and later.
//!
//! This crate holds the protobuf message types generated from `proto/`, the
//! framing that puts one message into one WebSocket binary frame, and typed
//! errors for frames that cannot be decoded. It does no I/O: callers hand it
//! the bytes of a received frame and get a [`TopicMessage`] back, or hand it a
//! message and get the bytes of a frame to send.
//!
//! Payloads (`data` fields) are JSON text kept as [`bytes::Bytes`]. Decoding a
//! frame never parses them and never copies them: they are slices of the
//! received frame. Whoever needs the JSON value parses it.
//!
//! [`json_path`] parses the paths of record `PATCH` and `ERASE` messages and
//! applies them to a parsed document with the official client's rules.
//!
//! ```
//! use deepstream_protocol::{EventAction, EventMessage, TopicMessage};
//!
//! let emit = TopicMessage::Event(EventMessage {
//!     action: EventAction::Emit.into(),
//!     name: "chat/lobby".into(),
//!     data: bytes::Bytes::from_static(br#""hello""#),
//!     ..Default::default()
//! });
//! let frame = emit.encode_frame();
//! assert_eq!(TopicMessage::decode_frame(frame).unwrap(), emit);
//! ```

mod error;
mod frame;
pub mod json_path;
mod names;

/// Message types generated from the `.proto` files in `proto/`.
#[allow(missing_docs, clippy::all)]
pub mod messages {
    include!(concat!(env!("OUT_DIR"), "/deepstream.rs"));
}

pub use error::DecodeError;
pub use frame::{TopicMessage, encode_frame, peek_topic_action};
pub use messages::*;
pub use names::{action_name, topic_name};
