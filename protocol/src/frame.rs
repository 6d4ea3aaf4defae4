//! One message per WebSocket binary frame.
//!
//! A frame is a varint length prefix followed by an [`Envelope`] of exactly that
//! length. The envelope names the topic and carries the encoded topic message.
//! The official deepstream client and server read only the first envelope of a
//! frame, so this module never writes two, and it rejects a frame that has bytes
//! after its envelope instead of dropping them silently.

use bytes::{Buf, Bytes, BytesMut};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::error::DecodeError;
use crate::messages::*;

const ENVELOPE_TOPIC_TAG: u32 = 2;
const ENVELOPE_MESSAGE_TAG: u32 = 3;

/// A decoded deepstream message of any topic.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TopicMessage {
    /// An error about a frame the sender could not use.
    Parser(ParserMessage),
    /// Handshake and heartbeats.
    Connection(ConnectionMessage),
    /// Login.
    Auth(AuthMessage),
    /// Events and event listening.
    Event(EventMessage),
    /// Records and record listening.
    Record(RecordMessage),
    /// Remote procedure calls.
    Rpc(RpcMessage),
    /// Online users.
    Presence(PresenceMessage),
    /// Monitoring.
    Monitoring(MonitoringMessage),
    /// Cluster membership.
    Cluster(ClusterMessage),
    /// Cluster-wide locks.
    Lock(LockMessage),
    /// Distributed state registries.
    StateRegistry(StateMessage),
}

impl TopicMessage {
    /// Returns the topic this message travels under.
    pub fn topic(&self) -> Topic {
        match self {
            TopicMessage::Parser(_) => Topic::Parser,
            TopicMessage::Connection(_) => Topic::Connection,
            TopicMessage::Auth(_) => Topic::Auth,
            TopicMessage::Event(_) => Topic::Event,
            TopicMessage::Record(_) => Topic::Record,
            TopicMessage::Rpc(_) => Topic::Rpc,
            TopicMessage::Presence(_) => Topic::Presence,
            TopicMessage::Monitoring(_) => Topic::Monitoring,
            TopicMessage::Cluster(_) => Topic::Cluster,
            TopicMessage::Lock(_) => Topic::Lock,
            TopicMessage::StateRegistry(_) => Topic::StateRegistry,
        }
    }

    /// Returns the raw action number of the topic message.
    pub fn action(&self) -> i32 {
        match self {
            TopicMessage::Parser(m) => m.action,
            TopicMessage::Connection(m) => m.action,
            TopicMessage::Auth(m) => m.action,
            TopicMessage::Event(m) => m.action,
            TopicMessage::Record(m) => m.action,
            TopicMessage::Rpc(m) => m.action,
            TopicMessage::Presence(m) => m.action,
            TopicMessage::Monitoring(m) => m.action,
            TopicMessage::Cluster(m) => m.action,
            TopicMessage::Lock(m) => m.action,
            TopicMessage::StateRegistry(m) => m.action,
        }
    }

    /// Encodes the message as the bytes of one WebSocket binary frame.
    pub fn encode_frame(&self) -> Bytes {
        match self {
            TopicMessage::Parser(m) => encode_frame(Topic::Parser, m),
            TopicMessage::Connection(m) => encode_frame(Topic::Connection, m),
            TopicMessage::Auth(m) => encode_frame(Topic::Auth, m),
            TopicMessage::Event(m) => encode_frame(Topic::Event, m),
            TopicMessage::Record(m) => encode_frame(Topic::Record, m),
            TopicMessage::Rpc(m) => encode_frame(Topic::Rpc, m),
            TopicMessage::Presence(m) => encode_frame(Topic::Presence, m),
            TopicMessage::Monitoring(m) => encode_frame(Topic::Monitoring, m),
            TopicMessage::Cluster(m) => encode_frame(Topic::Cluster, m),
            TopicMessage::Lock(m) => encode_frame(Topic::Lock, m),
            TopicMessage::StateRegistry(m) => encode_frame(Topic::StateRegistry, m),
        }
    }

    /// Decodes the bytes of one WebSocket binary frame.
    ///
    /// `data` fields of the result share `frame`'s memory. The action number is
    /// checked against the topic's action enum.
    pub fn decode_frame(mut frame: Bytes) -> Result<TopicMessage, DecodeError> {
        if frame.is_empty() {
            return Err(DecodeError::Empty);
        }
        let declared =
            prost::decode_length_delimiter(&mut frame).map_err(DecodeError::LengthPrefix)?;
        let available = frame.remaining();
        if declared > available {
            return Err(DecodeError::LengthExceedsFrame {
                declared,
                available,
            });
        }
        if declared < available {
            return Err(DecodeError::TrailingBytes {
                count: available - declared,
            });
        }

        let envelope = Envelope::decode(frame).map_err(DecodeError::Envelope)?;
        let topic = Topic::try_from(envelope.topic)
            .map_err(|_| DecodeError::UnknownTopic(envelope.topic))?;
        let body = envelope.message;
        let message = match topic {
            Topic::Parser => TopicMessage::Parser(decode_body(topic, body)?),
            Topic::Connection => TopicMessage::Connection(decode_body(topic, body)?),
            Topic::Auth => TopicMessage::Auth(decode_body(topic, body)?),
            Topic::Event => TopicMessage::Event(decode_body(topic, body)?),
            Topic::Record => TopicMessage::Record(decode_body(topic, body)?),
            Topic::Rpc => TopicMessage::Rpc(decode_body(topic, body)?),
            Topic::Presence => TopicMessage::Presence(decode_body(topic, body)?),
            Topic::Monitoring => TopicMessage::Monitoring(decode_body(topic, body)?),
            Topic::Cluster => TopicMessage::Cluster(decode_body(topic, body)?),
            Topic::Lock => TopicMessage::Lock(decode_body(topic, body)?),
            Topic::StateRegistry => TopicMessage::StateRegistry(decode_body(topic, body)?),
            Topic::Unknown | Topic::Error => return Err(DecodeError::UnknownTopic(envelope.topic)),
        };

        if !message.has_known_action() {
            return Err(DecodeError::UnknownAction {
                topic,
                action: message.action(),
            });
        }
        Ok(message)
    }

    fn has_known_action(&self) -> bool {
        let action = self.action();
        match self {
            TopicMessage::Parser(_) => ParserAction::try_from(action).is_ok(),
            TopicMessage::Connection(_) => ConnectionAction::try_from(action).is_ok(),
            TopicMessage::Auth(_) => AuthAction::try_from(action).is_ok(),
            TopicMessage::Event(_) => EventAction::try_from(action).is_ok(),
            TopicMessage::Record(_) => RecordAction::try_from(action).is_ok(),
            TopicMessage::Rpc(_) => RpcAction::try_from(action).is_ok(),
            TopicMessage::Presence(_) => PresenceAction::try_from(action).is_ok(),
            TopicMessage::Monitoring(_) => MonitoringAction::try_from(action).is_ok(),
            TopicMessage::Cluster(_) => ClusterAction::try_from(action).is_ok(),
            TopicMessage::Lock(_) => LockAction::try_from(action).is_ok(),
            TopicMessage::StateRegistry(_) => StateAction::try_from(action).is_ok(),
        }
    }
}

/// Reads the topic and action numbers of an encoded frame without decoding
/// the rest, for statistics on frames that are already encoded. Returns
/// `None` for bytes that are not a frame as [`encode_frame`] writes it.
pub fn peek_topic_action(frame: &[u8]) -> Option<(i32, i32)> {
    let mut buf = frame;
    prost::encoding::decode_varint(&mut buf).ok()?;

    let mut topic = 0;
    let mut key = prost::encoding::decode_varint(&mut buf).ok()?;
    if key == u64::from(ENVELOPE_TOPIC_TAG << 3) {
        topic = i32::try_from(prost::encoding::decode_varint(&mut buf).ok()?).ok()?;
        key = prost::encoding::decode_varint(&mut buf).ok()?;
    }
    if key != u64::from(ENVELOPE_MESSAGE_TAG << 3 | 2) {
        return None;
    }
    let body_len = usize::try_from(prost::encoding::decode_varint(&mut buf).ok()?).ok()?;
    let mut body = buf.get(..body_len)?;

    // Every topic message has its action as field 1, which an encoder omits
    // when it is 0.
    let action = match prost::encoding::decode_varint(&mut body) {
        Ok(0x08) => i32::try_from(prost::encoding::decode_varint(&mut body).ok()?).ok()?,
        _ => 0,
    };
    Some((topic, action))
}

fn decode_body<M: Message + Default>(topic: Topic, body: Bytes) -> Result<M, DecodeError> {
    M::decode(body).map_err(|source| DecodeError::Body { topic, source })
}

/// Encodes `body` under `topic` as the bytes of one WebSocket binary frame.
///
/// The frame is written into a single buffer of exactly the right size, so a
/// message sent to many peers is encoded once and shared as [`Bytes`].
pub fn encode_frame<M: Message>(topic: Topic, body: &M) -> Bytes {
    let topic = topic as i32;
    let body_len = body.encoded_len();

    let mut envelope_len =
        key_len(ENVELOPE_MESSAGE_TAG) + encoded_len_varint(body_len as u64) + body_len;
    if topic != 0 {
        envelope_len += key_len(ENVELOPE_TOPIC_TAG) + encoded_len_varint(topic as u64);
    }

    let mut buf = BytesMut::with_capacity(encoded_len_varint(envelope_len as u64) + envelope_len);
    encode_varint(envelope_len as u64, &mut buf);
    if topic != 0 {
        encode_key(ENVELOPE_TOPIC_TAG, WireType::Varint, &mut buf);
        // Topics are small positive numbers, written as int32 varints like protobufjs does.
        encode_varint(topic as u64, &mut buf);
    }
    encode_key(ENVELOPE_MESSAGE_TAG, WireType::LengthDelimited, &mut buf);
    encode_varint(body_len as u64, &mut buf);
    body.encode_raw(&mut buf);
    debug_assert_eq!(buf.len(), buf.capacity());
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn event(action: EventAction, name: &str) -> TopicMessage {
        TopicMessage::Event(EventMessage {
            action: action.into(),
            name: name.into(),
            ..Default::default()
        })
    }

    #[test]
    fn peek_reads_topic_and_action() {
        let emit = event(EventAction::Emit, "chat").encode_frame();
        assert_eq!(
            peek_topic_action(&emit),
            Some((Topic::Event as i32, EventAction::Emit as i32))
        );
        let record = TopicMessage::Record(RecordMessage {
            action: RecordAction::Update.into(),
            name: "a".into(),
            data: Bytes::from(vec![b'x'; 300]),
            ..Default::default()
        })
        .encode_frame();
        assert_eq!(
            peek_topic_action(&record),
            Some((Topic::Record as i32, RecordAction::Update as i32))
        );
        let no_action = encode_frame(Topic::Rpc, &RpcMessage::default());
        assert_eq!(peek_topic_action(&no_action), Some((Topic::Rpc as i32, 0)));
    }

    #[test]
    fn peek_rejects_non_frames() {
        assert_eq!(peek_topic_action(&[]), None);
        assert_eq!(peek_topic_action(&[5, 0x10, 4]), None);
        // A message length past the end of the frame.
        assert_eq!(peek_topic_action(&[4, 0x10, 4, 0x1a, 9]), None);
    }

    #[test]
    fn round_trip_every_topic() {
        let messages = vec![
            TopicMessage::Parser(ParserMessage {
                action: ParserAction::UnknownAction.into(),
                data: Bytes::from_static(b"\"x\""),
                original_topic: Topic::Event.into(),
                original_action: 77,
            }),
            TopicMessage::Connection(ConnectionMessage {
                action: ConnectionAction::Challenge.into(),
                url: "ws://127.0.0.1:6020/deepstream".into(),
                protocol_version: "0.1a".into(),
                sdk_version: "7.0.5".into(),
                sdk_type: "javascript".into(),
                ..Default::default()
            }),
            TopicMessage::Auth(AuthMessage {
                action: AuthAction::Request.into(),
                data: Bytes::from_static(br#"{"username":"ada"}"#),
                ..Default::default()
            }),
            TopicMessage::Event(EventMessage {
                action: EventAction::Subscribe.into(),
                names: vec!["a".into(), "b".into()],
                correlation_id: "7".into(),
                ..Default::default()
            }),
            TopicMessage::Record(RecordMessage {
                action: RecordAction::HeadResponseBulk.into(),
                versions: [("a".to_string(), 3), ("b".to_string(), 0)]
                    .into_iter()
                    .collect(),
                version: Some(0),
                ..Default::default()
            }),
            TopicMessage::Rpc(RpcMessage {
                action: RpcAction::Request.into(),
                name: "add".into(),
                correlation_id: "c1".into(),
                data: Bytes::from_static(b"[1,2]"),
                requestor_data: Bytes::from_static(b"{}"),
                requestor_name: "ada".into(),
                ..Default::default()
            }),
            TopicMessage::Presence(PresenceMessage {
                action: PresenceAction::Query.into(),
                names: vec!["ada".into()],
                correlation_id: "1".into(),
                ..Default::default()
            }),
            TopicMessage::Monitoring(MonitoringMessage::default()),
            TopicMessage::Cluster(ClusterMessage {
                action: ClusterAction::Status.into(),
                leader_score: 12,
                role: "leader".into(),
                ..Default::default()
            }),
            TopicMessage::Lock(LockMessage {
                action: LockAction::Response.into(),
                locked: true,
            }),
            TopicMessage::StateRegistry(StateMessage {
                action: StateAction::FullState.into(),
                full_state: vec!["x".into()],
                server_name: "node-1".into(),
                registry_topic: StateRegistryTopic::OnlineUsers.into(),
                checksum: -5,
                ..Default::default()
            }),
        ];
        for message in messages {
            let frame = message.encode_frame();
            assert_eq!(TopicMessage::decode_frame(frame).as_ref(), Ok(&message));
        }
    }

    #[test]
    fn encode_frame_has_exact_length_prefix() {
        let frame = event(EventAction::Emit, "n").encode_frame();
        let mut rest = frame.clone();
        let declared = prost::decode_length_delimiter(&mut rest).unwrap();
        assert_eq!(declared, rest.len());
    }

    #[test]
    fn decode_keeps_payload_in_frame_memory() {
        let frame = TopicMessage::Event(EventMessage {
            action: EventAction::Emit.into(),
            name: "n".into(),
            data: Bytes::from(vec![b'1'; 64]),
            ..Default::default()
        })
        .encode_frame();
        let start = frame.as_ptr() as usize;
        let end = start + frame.len();
        let TopicMessage::Event(decoded) = TopicMessage::decode_frame(frame).unwrap() else {
            panic!("expected an event message");
        };
        let payload = decoded.data.as_ptr() as usize;
        assert!(
            payload >= start && payload < end,
            "payload was copied out of the frame"
        );
    }

    #[test]
    fn empty_frame_is_rejected() {
        assert_eq!(
            TopicMessage::decode_frame(Bytes::new()),
            Err(DecodeError::Empty)
        );
    }

    #[test]
    fn truncated_length_prefix_is_rejected() {
        let result = TopicMessage::decode_frame(Bytes::from_static(&[0x80, 0x80]));
        assert!(
            matches!(result, Err(DecodeError::LengthPrefix(_))),
            "{result:?}"
        );
    }

    #[test]
    fn envelope_longer_than_frame_is_rejected() {
        let frame = event(EventAction::Emit, "name").encode_frame();
        let truncated = frame.slice(..frame.len() - 2);
        let result = TopicMessage::decode_frame(truncated);
        assert!(
            matches!(result, Err(DecodeError::LengthExceedsFrame { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn two_envelopes_in_one_frame_are_rejected() {
        let one = event(EventAction::Emit, "a").encode_frame();
        let mut two = BytesMut::from(&one[..]);
        two.extend_from_slice(&one);
        let result = TopicMessage::decode_frame(two.freeze());
        assert_eq!(result, Err(DecodeError::TrailingBytes { count: one.len() }));
    }

    #[test]
    fn wrong_wire_type_in_envelope_is_rejected() {
        // Field 2 (topic) written as length-delimited instead of varint, with a
        // length that runs past the envelope.
        let result = TopicMessage::decode_frame(Bytes::from_static(&[2, 0x12, 0x05]));
        assert!(
            matches!(result, Err(DecodeError::Envelope(_))),
            "{result:?}"
        );
    }

    #[test]
    fn wrong_wire_type_in_body_is_rejected() {
        // An event body whose field 1 (action) is a truncated length-delimited field.
        let body = [0x0a, 0x09, 0x01];
        let frame = encode_frame(Topic::Event, &RawBody(body.to_vec()));
        let result = TopicMessage::decode_frame(frame);
        assert!(
            matches!(
                result,
                Err(DecodeError::Body {
                    topic: Topic::Event,
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn unknown_topic_is_rejected() {
        let frame = Envelope {
            topic: 42,
            message: Bytes::new(),
        }
        .encode_length_delimited_to_vec();
        let result = TopicMessage::decode_frame(Bytes::from(frame));
        assert_eq!(result, Err(DecodeError::UnknownTopic(42)));
        assert_eq!(
            result.unwrap_err().parser_action(),
            ParserAction::UnknownTopic
        );
    }

    #[test]
    fn error_topic_has_no_message_type() {
        let frame = Envelope {
            topic: Topic::Error.into(),
            message: Bytes::new(),
        }
        .encode_length_delimited_to_vec();
        let result = TopicMessage::decode_frame(Bytes::from(frame));
        assert_eq!(result, Err(DecodeError::UnknownTopic(100)));
    }

    #[test]
    fn unknown_action_is_rejected() {
        let frame = encode_frame(
            Topic::Rpc,
            &RpcMessage {
                action: 3,
                ..Default::default()
            },
        );
        let result = TopicMessage::decode_frame(frame);
        assert_eq!(
            result,
            Err(DecodeError::UnknownAction {
                topic: Topic::Rpc,
                action: 3
            })
        );
        assert_eq!(
            result.unwrap_err().parser_action(),
            ParserAction::UnknownAction
        );
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut body = EventMessage {
            action: EventAction::Emit.into(),
            name: "n".into(),
            ..Default::default()
        }
        .encode_to_vec();
        // Field 30, varint 1: a field this schema does not know.
        body.extend_from_slice(&[0xf0, 0x01, 0x01]);
        let frame = encode_frame(Topic::Event, &RawBody(body));
        assert_eq!(
            TopicMessage::decode_frame(frame),
            Ok(event(EventAction::Emit, "n"))
        );
    }

    /// A body given as already-encoded bytes, to build malformed frames.
    #[derive(Debug)]
    struct RawBody(Vec<u8>);

    impl Message for RawBody {
        fn encode_raw(&self, buf: &mut impl BufMut) {
            buf.put_slice(&self.0);
        }
        fn merge_field(
            &mut self,
            _tag: u32,
            _wire_type: WireType,
            _buf: &mut impl Buf,
            _ctx: prost::encoding::DecodeContext,
        ) -> Result<(), prost::DecodeError> {
            unreachable!("only used for encoding")
        }
        fn encoded_len(&self) -> usize {
            self.0.len()
        }
        fn clear(&mut self) {
            self.0.clear();
        }
    }
}
