//! Bad input from one client: each case gets the protocol's error, and the
//! server keeps serving two other logged-in clients.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    Bystanders, QUIET, RECV_TIMEOUT, RawClient, Received, TestServer, emit_message, websocket,
};
use deepstream_protocol::{
    EventMessage, ParserAction, PresenceAction, PresenceMessage, RecordAction, RecordMessage,
    Topic, TopicMessage,
};
use serde_json::Value;

/// WebSocket close code for a data type the endpoint cannot accept.
const CLOSE_UNSUPPORTED_DATA: u16 = 1003;
/// WebSocket close code for a policy violation.
const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code for a message too big to process.
const CLOSE_TOO_BIG: u16 = 1009;

/// Checks that the next message is a PARSER error with `action` about a
/// message of `original_topic` and `original_action`, with a description as data.
async fn expect_parser_error(
    client: &mut RawClient,
    action: ParserAction,
    original_topic: Topic,
    original_action: i32,
) {
    let error = client.recv_parser().await;
    assert_eq!(error.action(), action, "{error:?}");
    assert_eq!(error.original_topic(), original_topic, "{error:?}");
    assert_eq!(error.original_action, original_action, "{error:?}");
    let description: Value =
        serde_json::from_slice(&error.data).expect("PARSER error data is JSON");
    let description = description
        .as_str()
        .expect("PARSER error data is a JSON string");
    assert!(
        !description.is_empty(),
        "PARSER error data is an empty string"
    );
}

/// Sends `frame` from a logged-in client and checks for MESSAGE_PARSE_ERROR,
/// then that the client and two bystanders are still served.
async fn check_undecodable(frame: Vec<u8>) {
    assert_eq!(
        TopicMessage::decode_frame(Bytes::from(frame.clone()))
            .map_err(|error| error.parser_action()),
        Err(ParserAction::MessageParseError),
        "the test frame {frame:02x?} must be undecodable"
    );
    let server = TestServer::start(|_| {}).await;
    let mut bystanders = Bystanders::join(&server).await;
    let mut client = server.login("mallory").await;

    client.send_bytes(frame).await;

    expect_parser_error(
        &mut client,
        ParserAction::MessageParseError,
        Topic::Unknown,
        0,
    )
    .await;
    client.expect_silence(QUIET).await;
    client.assert_ping_gets_pong().await;
    bystanders.assert_served().await;
    bystanders.assert_nothing_else().await;
}

/// Returns the bytes of a frame for a valid EVENT EMIT.
fn emit_frame(name: &str, data: &[u8]) -> Vec<u8> {
    TopicMessage::Event(emit_message(name, data))
        .encode_frame()
        .to_vec()
}

/// A deterministic pseudo-random byte source (a 64-bit linear congruential
/// generator), so that a failing case can be replayed.
struct ByteSource(u64);

impl ByteSource {
    fn next_byte(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 56) as u8
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_byte()).collect()
    }
}

#[tokio::test]
async fn random_bytes_get_parse_error() {
    let server = TestServer::start(|_| {}).await;
    let mut bystanders = Bystanders::join(&server).await;
    let mut client = server.login("mallory").await;
    let mut source = ByteSource(0x5eed);
    let mut sent = 0;

    for _ in 0..1000 {
        let len = 1 + usize::from(source.next_byte()) % 64;
        let frame = source.bytes(len);
        let decoded = TopicMessage::decode_frame(Bytes::from(frame.clone()));
        // Keep only frames that the codec rejects as unparseable. By chance, a
        // few random frames decode or name an unknown topic or action instead.
        if decoded.map_err(|error| error.parser_action()) != Err(ParserAction::MessageParseError) {
            continue;
        }
        client.send_bytes(frame.clone()).await;
        let error = client.recv_parser().await;
        assert_eq!(
            error.action(),
            ParserAction::MessageParseError,
            "frame {frame:02x?}: {error:?}"
        );
        sent += 1;
        if sent == 50 {
            break;
        }
    }

    assert_eq!(
        sent, 50,
        "the byte source produced too few undecodable frames"
    );
    client.assert_ping_gets_pong().await;
    bystanders.assert_served().await;
    bystanders.assert_nothing_else().await;
}

#[tokio::test]
async fn garbage_envelope_gets_parse_error() {
    // A correct length prefix followed by bytes that are no valid protobuf field.
    check_undecodable(vec![6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).await;
}

#[tokio::test]
async fn truncated_varint_gets_parse_error() {
    check_undecodable(vec![0x80, 0x80]).await;
}

#[tokio::test]
async fn empty_frame_gets_parse_error() {
    check_undecodable(Vec::new()).await;
}

#[tokio::test]
async fn envelope_longer_than_frame_gets_parse_error() {
    let mut frame = emit_frame(Bystanders::EVENT, b"\"cut short\"");
    frame.truncate(frame.len() - 3);

    check_undecodable(frame).await;
}

#[tokio::test]
async fn two_envelopes_get_parse_error() {
    // Both envelopes emit to the bystanders' event. Neither may be delivered,
    // which `check_undecodable` checks with `assert_nothing_else`.
    let mut frame = emit_frame(Bystanders::EVENT, b"\"first\"");
    frame.extend(emit_frame(Bystanders::EVENT, b"\"second\""));

    check_undecodable(frame).await;
}

#[tokio::test]
async fn invalid_body_names_its_topic() {
    let server = TestServer::start(|_| {}).await;
    let mut bystanders = Bystanders::join(&server).await;
    let mut client = server.login("mallory").await;
    // Envelope { topic: EVENT, message: [0x0a, 0x09, 0x01] }: a valid envelope
    // whose EVENT body announces a 9-byte field and ends after one byte.
    let frame = vec![7, 0x10, 4, 0x1a, 3, 0x0a, 0x09, 0x01];

    client.send_bytes(frame).await;

    expect_parser_error(
        &mut client,
        ParserAction::MessageParseError,
        Topic::Event,
        0,
    )
    .await;
    client.assert_ping_gets_pong().await;
    bystanders.assert_served().await;
}

#[tokio::test]
async fn garbage_before_challenge_gets_parse_error() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect("early").await;

    client.send_bytes(vec![0x80]).await;

    expect_parser_error(
        &mut client,
        ParserAction::MessageParseError,
        Topic::Unknown,
        0,
    )
    .await;
    client.login("early").await;
}

#[tokio::test]
async fn unknown_topic_is_reported() {
    let server = TestServer::start(|_| {}).await;
    let mut bystanders = Bystanders::join(&server).await;
    let mut client = server.login("mallory").await;
    // Envelope { topic: 42, message: empty }, prefixed with its length of 4 bytes.
    let frame = vec![4, 0x10, 42, 0x1a, 0x00];

    client.send_bytes(frame).await;

    expect_parser_error(&mut client, ParserAction::UnknownTopic, Topic::Unknown, 0).await;
    client.assert_ping_gets_pong().await;
    bystanders.assert_served().await;
}

#[tokio::test]
async fn unknown_action_is_reported() {
    let server = TestServer::start(|_| {}).await;
    let mut bystanders = Bystanders::join(&server).await;
    let mut client = server.login("mallory").await;
    let unknown = EventMessage {
        action: 99,
        name: Bystanders::EVENT.into(),
        ..Default::default()
    };

    client.send(TopicMessage::Event(unknown)).await;

    expect_parser_error(&mut client, ParserAction::UnknownAction, Topic::Event, 99).await;
    client.assert_ping_gets_pong().await;
    bystanders.assert_served().await;
    bystanders.assert_nothing_else().await;
}

#[tokio::test]
async fn disabled_record_topic_is_unknown() {
    let server = TestServer::start(|config| config.features.record = false).await;
    let mut bystanders = Bystanders::join(&server).await;
    let mut client = server.login("mallory").await;
    let subscribe = RecordMessage {
        action: RecordAction::Subscribe.into(),
        names: vec!["users/ada".into()],
        correlation_id: "r1".into(),
        ..Default::default()
    };

    client.send(TopicMessage::Record(subscribe)).await;

    let subscribe_action = i32::from(RecordAction::Subscribe);
    expect_parser_error(
        &mut client,
        ParserAction::UnknownTopic,
        Topic::Record,
        subscribe_action,
    )
    .await;
    client.assert_ping_gets_pong().await;
    bystanders.assert_served().await;
}

#[tokio::test]
async fn text_frame_closes_connection() {
    let server = TestServer::start(|_| {}).await;
    let mut bystanders = Bystanders::join(&server).await;
    let mut client = server.login("mallory").await;

    client
        .send_text(r#"{"topic":"E","action":"EVT","name":"x"}"#)
        .await;

    expect_parser_error(&mut client, ParserAction::InvalidMessage, Topic::Unknown, 0).await;
    assert_eq!(
        client.expect_closed(RECV_TIMEOUT).await,
        Some(CLOSE_UNSUPPORTED_DATA)
    );
    bystanders.assert_served().await;
}

#[tokio::test]
async fn oversized_frame_closes_connection() {
    let server = TestServer::start(|config| websocket(config).max_message_size = 1024).await;
    let mut bystanders = Bystanders::join(&server).await;
    let mut client = server.login("mallory").await;
    let data = format!("\"{}\"", "x".repeat(2000));

    client
        .send_bytes(emit_frame(Bystanders::EVENT, data.as_bytes()))
        .await;

    expect_parser_error(
        &mut client,
        ParserAction::MaximumMessageSizeExceeded,
        Topic::Unknown,
        0,
    )
    .await;
    assert_eq!(
        client.expect_closed(RECV_TIMEOUT).await,
        Some(CLOSE_TOO_BIG)
    );
    bystanders.assert_served().await;
    bystanders.assert_nothing_else().await;
}

#[tokio::test]
async fn frame_within_limit_is_delivered() {
    let server = TestServer::start(|config| websocket(config).max_message_size = 1024).await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["big"], "1").await;
    let mut client = server.login("ada").await;
    let data = format!("\"{}\"", "x".repeat(900));
    let frame = emit_frame("big", data.as_bytes());
    assert!(
        frame.len() <= 1024,
        "the frame must fit the limit, it has {} bytes",
        frame.len()
    );

    client.send_bytes(frame).await;

    assert_eq!(
        subscriber.recv_event().await,
        emit_message("big", data.as_bytes())
    );
    client.assert_ping_gets_pong().await;
}

/// The byte limit of each connection's outgoing queue in the slow-client tests.
const QUEUE_LIMIT: usize = 256 * 1024;
/// The socket receive buffer of the slow client.
const SLOW_RECEIVE_BUFFER: u32 = 16 * 1024;
/// The payload size of each flood event.
const FLOOD_PAYLOAD: usize = 4 * 1024;
/// Events per batch: 128 KiB, half the queue limit, so that a batch alone does
/// not overflow the queue of a client that reads.
const FLOOD_BATCH: usize = 32;
/// Bytes a flood sends beyond the largest socket send buffer, to cover the
/// queue limit, the slow client's receive buffer and the WebSocket buffers.
const FLOOD_MARGIN: usize = 4 * 1024 * 1024;
/// The pause after each batch, which lets the server's writer drain the queue
/// into the socket. So the queue overflows only once the socket is full, as for
/// a client that stopped reading, and not because of a burst.
const FLOOD_PAUSE: Duration = Duration::from_millis(5);

/// A slow client subscribed to `flood`, an emitter that has flooded it, a
/// watcher subscribed to the slow client's presence, and a probe subscriber.
struct Flood {
    slow: RawClient,
    watcher: RawClient,
    emitter: RawClient,
    probe: RawClient,
    emitted: usize,
    probes: usize,
}

impl Flood {
    async fn start(server: &TestServer) -> Flood {
        let mut watcher = server.login("watcher").await;
        let subscribe = PresenceMessage {
            action: PresenceAction::Subscribe.into(),
            names: vec!["slowpoke".into()],
            correlation_id: "w".into(),
            ..Default::default()
        };
        watcher.send(TopicMessage::Presence(subscribe)).await;
        assert_eq!(
            watcher.recv_presence().await.action(),
            PresenceAction::Subscribe
        );

        let mut slow = server
            .connect_with_receive_buffer("slowpoke", SLOW_RECEIVE_BUFFER)
            .await;
        slow.login("slowpoke").await;
        slow.subscribe_events(&["flood"], "f").await;
        assert_eq!(
            watcher.recv_presence().await.action(),
            PresenceAction::PresenceJoin
        );

        let mut probe = server.login("probe").await;
        probe.subscribe_events(&["probe"], "p").await;
        let emitter = server.login("emitter").await;
        let mut flood = Flood {
            slow,
            watcher,
            emitter,
            probe,
            emitted: 0,
            probes: 0,
        };

        // The slow client reads nothing from here on.
        let payload = format!("\"{}\"", "z".repeat(FLOOD_PAYLOAD - 2));
        for _ in 0..flood_batches() {
            for _ in 0..FLOOD_BATCH {
                flood.emitter.emit("flood", payload.as_bytes()).await;
                flood.emitted += 1;
            }
            flood.assert_emitter_served().await;
            tokio::time::sleep(FLOOD_PAUSE).await;
        }
        flood
    }

    /// Checks that an emit of the emitter still reaches the probe subscriber.
    /// The server handles one connection's messages in order, so every flood
    /// event before it has been queued for the slow client by then.
    async fn assert_emitter_served(&mut self) {
        self.probes += 1;
        let data = format!("{{\"probe\":{}}}", self.probes);
        self.emitter.emit("probe", data.as_bytes()).await;
        let received = self.probe.recv_event().await;
        assert_eq!(
            received,
            emit_message("probe", data.as_bytes()),
            "probe {}",
            self.probes
        );
    }
}

/// Returns how many batches a flood sends: enough to fill the largest send
/// buffer Linux gives a socket (the maximum of `net.ipv4.tcp_wmem`, 4 MiB by
/// default) plus [`FLOOD_MARGIN`].
fn flood_batches() -> usize {
    let max_send_buffer = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|text| text.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(4 * 1024 * 1024);
    (max_send_buffer + FLOOD_MARGIN).div_ceil(FLOOD_BATCH * FLOOD_PAYLOAD)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_is_disconnected() {
    let server =
        TestServer::start(|config| websocket(config).max_outgoing_queue_bytes = QUEUE_LIMIT).await;
    let mut flood = Flood::start(&server).await;

    // The slow client still reads nothing: the server must drop it on its own.
    let leave = flood.watcher.next(Duration::from_secs(3)).await;

    let Received::Message(TopicMessage::Presence(leave)) = leave else {
        panic!("expected PRESENCE_LEAVE of the slow client within 3 s, got {leave:?}");
    };
    assert_eq!(leave.action(), PresenceAction::PresenceLeave, "{leave:?}");
    assert_eq!(leave.name, "slowpoke");
    flood.assert_emitter_served().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_gets_policy_close() {
    let server =
        TestServer::start(|config| websocket(config).max_outgoing_queue_bytes = QUEUE_LIMIT).await;
    let mut flood = Flood::start(&server).await;
    let mut received = 0;

    // Now the slow client reads what reached it, which must end with a close.
    let close_code = loop {
        match flood.slow.next(RECV_TIMEOUT).await {
            Received::Message(TopicMessage::Event(event)) => {
                assert_eq!(event.name, "flood", "{event:?}");
                received += 1;
                assert!(
                    received <= flood.emitted,
                    "received more events than were emitted"
                );
            }
            Received::Message(other) => {
                panic!("slow client: expected flood events, received {other:?}")
            }
            Received::Closed(code) => break code,
            Received::Timeout => panic!(
                "slow client: connection still open after {received} of {} events",
                flood.emitted
            ),
        }
    };

    assert_eq!(
        close_code,
        Some(CLOSE_POLICY),
        "after {received} of {} events",
        flood.emitted
    );
    assert!(
        received < flood.emitted,
        "the slow client received every event; the queue limit never applied"
    );
    flood.assert_emitter_served().await;
}
