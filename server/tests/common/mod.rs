//! Harness for black-box tests of the server over real WebSockets.
//!
//! [`TestServer`] runs the server on a loopback port chosen by the operating
//! system. [`RawClient`] sends and receives single protocol messages, so tests
//! can assert every message the server sends.
//!
//! Every wait is bounded. A wait that runs out panics with a message that names
//! the client and what it was waiting for.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::Bytes;
use deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, EventAction, EventMessage,
    ParserMessage, PresenceMessage, RecordAction, RecordMessage, RpcMessage, TopicMessage,
};
use deepstream_server::auth::Authenticator;
use deepstream_server::config::{StorageConfig, WebSocketConfig};
use deepstream_server::storage::{Cache, Storage};
use deepstream_server::{Config, Server, ServerError};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// How long [`RawClient::recv`] waits for a message before it panics.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting, sending and closing may take.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long [`TestServer::stop`] waits for the server to drain.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// The only host tests listen on and connect to.
const LOOPBACK: &str = "127.0.0.1";
/// A short wait used to check that nothing more arrives.
pub const QUIET: Duration = Duration::from_millis(150);

/// A server running on its own task until [`TestServer::stop`] or drop.
pub struct TestServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    /// Starts a server with the embedded defaults changed by `configure` and a
    /// free port on 127.0.0.1. Its authentication is `config.auth`, which is
    /// `none` unless `configure` sets it.
    pub async fn start(configure: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::launch(configure, None, None).await
    }

    /// Starts a server like [`TestServer::start`] that keeps records in
    /// `cache` and `storage` instead of the ones the configuration selects.
    pub async fn start_with_stores(
        configure: impl FnOnce(&mut Config),
        cache: Arc<dyn Cache>,
        storage: Arc<dyn Storage>,
    ) -> TestServer {
        TestServer::launch(configure, None, Some((cache, storage))).await
    }

    /// Starts a server like [`TestServer::start`] that logs clients in with
    /// `authenticator`.
    pub async fn start_with_authenticator(
        configure: impl FnOnce(&mut Config),
        authenticator: Arc<dyn Authenticator>,
    ) -> TestServer {
        TestServer::launch(configure, Some(authenticator), None).await
    }

    async fn launch(
        configure: impl FnOnce(&mut Config),
        authenticator: Option<Arc<dyn Authenticator>>,
        stores: Option<(Arc<dyn Cache>, Arc<dyn Storage>)>,
    ) -> TestServer {
        init_tracing();
        let mut config = Config::embedded();
        config.http.host = LOOPBACK.to_owned();
        config.http.port = 0;
        // Records live in memory so that test servers share no files.
        config.storage = StorageConfig::Memory;
        configure(&mut config);
        assert_eq!(
            config.http.host, LOOPBACK,
            "test servers listen on 127.0.0.1 only"
        );

        let mut server = Server::bind(config)
            .await
            .expect("binding 127.0.0.1 port 0 failed");
        if let Some(authenticator) = authenticator {
            server = server.with_authenticator(authenticator);
        }
        if let Some((cache, storage)) = stores {
            server = server.with_stores(cache, storage);
        }
        let addr = server.local_addr();
        assert!(
            addr.ip().is_loopback(),
            "server bound {addr}, not a loopback address"
        );

        let (shutdown, stopped) = oneshot::channel::<()>();
        // A dropped sender also stops the server, so a panicking test cleans up too.
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Returns the address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens a WebSocket connection that has not sent anything yet.
    pub async fn connect(&self, label: &str) -> RawClient {
        RawClient::connect(self.addr, label, None).await
    }

    /// Opens a connection whose socket receive buffer is `bytes` large, so
    /// that a client which stops reading makes the server's writes back up soon.
    pub async fn connect_with_receive_buffer(&self, label: &str, bytes: u32) -> RawClient {
        RawClient::connect(self.addr, label, Some(bytes)).await
    }

    /// Opens a connection and logs in as `user`.
    pub async fn login(&self, user: &str) -> RawClient {
        let mut client = self.connect(user).await;
        client.login(user).await;
        client
    }

    /// Stops the server and waits until it has closed every connection.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let task = self
            .task
            .take()
            .expect("the server task is taken only here");
        let result = tokio::time::timeout(STOP_TIMEOUT, task)
            .await
            .unwrap_or_else(|_| panic!("server did not stop within {STOP_TIMEOUT:?}"))
            .expect("server task panicked");
        result.expect("server returned an error");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Returns the endpoint settings of `config`, which the embedded defaults always have.
pub fn websocket(config: &mut Config) -> &mut WebSocketConfig {
    config
        .websocket
        .as_mut()
        .expect("the embedded defaults configure a ws-binary endpoint")
}

/// What [`RawClient::next`] saw first.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a short-lived return value that tests match on"
)]
pub enum Received {
    /// A decoded binary frame.
    Message(TopicMessage),
    /// The connection closed, with the WebSocket close code if the server sent one.
    Closed(Option<u16>),
    /// Nothing arrived in time.
    Timeout,
}

/// A WebSocket client that speaks single protocol messages and does nothing
/// on its own: no handshake, no heartbeats, no replies.
pub struct RawClient {
    socket: WebSocketStream<TcpStream>,
    label: String,
    url: String,
}

impl RawClient {
    async fn connect(addr: SocketAddr, label: &str, receive_buffer: Option<u32>) -> RawClient {
        assert!(
            addr.ip().is_loopback(),
            "tests connect to 127.0.0.1 only, not {addr}"
        );
        let socket = TcpSocket::new_v4().expect("creating a TCP socket failed");
        if let Some(bytes) = receive_buffer {
            socket
                .set_recv_buffer_size(bytes)
                .expect("setting the receive buffer size failed");
        }
        let url = format!("ws://{addr}/deepstream");
        let connect = async {
            let stream = socket.connect(addr).await?;
            tokio_tungstenite::client_async(url.as_str(), stream)
                .await
                .map_err(std::io::Error::other)
        };
        let (socket, _response) = tokio::time::timeout(IO_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| panic!("{label}: connecting to {url} timed out"))
            .unwrap_or_else(|error| panic!("{label}: connecting to {url} failed: {error}"));
        RawClient {
            socket,
            label: label.to_owned(),
            url,
        }
    }

    /// Returns the name this client has in panic messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Sends one message in one binary frame.
    pub async fn send(&mut self, message: TopicMessage) {
        self.send_frame(Message::Binary(message.encode_frame()))
            .await;
    }

    /// Sends `bytes` as one binary frame, whatever they contain.
    pub async fn send_bytes(&mut self, bytes: Vec<u8>) {
        self.send_frame(Message::Binary(Bytes::from(bytes))).await;
    }

    /// Sends `text` as one text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(Message::Text(text.into())).await;
    }

    async fn send_frame(&mut self, frame: Message) {
        let label = &self.label;
        tokio::time::timeout(IO_TIMEOUT, self.socket.send(frame))
            .await
            .unwrap_or_else(|_| panic!("{label}: sending a frame timed out"))
            .unwrap_or_else(|error| panic!("{label}: sending a frame failed: {error}"));
    }

    /// Waits up to `timeout` for the next protocol message or the end of the
    /// connection. WebSocket pings and pongs are skipped.
    pub async fn next(&mut self, timeout: Duration) -> Received {
        let deadline = Instant::now() + timeout;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Received::Timeout,
                Ok(None) | Ok(Some(Err(_))) => return Received::Closed(None),
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                Message::Binary(bytes) => {
                    let message = TopicMessage::decode_frame(bytes).unwrap_or_else(|error| {
                        panic!(
                            "{}: the server sent an undecodable frame: {error}",
                            self.label
                        )
                    });
                    return Received::Message(message);
                }
                Message::Close(frame) => {
                    return Received::Closed(frame.map(|frame| u16::from(frame.code)));
                }
                Message::Text(text) => {
                    panic!("{}: the server sent a text frame: {text}", self.label)
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// Returns the next message; panics when none arrives within
    /// [`RECV_TIMEOUT`] or the connection closes.
    pub async fn recv(&mut self) -> TopicMessage {
        match self.next(RECV_TIMEOUT).await {
            Received::Message(message) => message,
            Received::Closed(code) => panic!(
                "{}: connection closed (close code {code:?}) while waiting for a message",
                self.label
            ),
            Received::Timeout => {
                panic!("{}: no message within {RECV_TIMEOUT:?}", self.label)
            }
        }
    }

    /// Panics if a message arrives or the connection closes within `duration`.
    pub async fn expect_silence(&mut self, duration: Duration) {
        match self.next(duration).await {
            Received::Timeout => {}
            Received::Message(message) => panic!(
                "{}: expected no message for {duration:?}, received {message:?}",
                self.label
            ),
            Received::Closed(code) => panic!(
                "{}: expected no message for {duration:?}, but the connection closed (close code {code:?})",
                self.label
            ),
        }
    }

    /// Waits up to `timeout` for the connection to close and returns the close
    /// code, if the server sent a close frame. Panics on any message.
    pub async fn expect_closed(&mut self, timeout: Duration) -> Option<u16> {
        match self.next(timeout).await {
            Received::Closed(code) => code,
            Received::Message(message) => panic!(
                "{}: expected the connection to close, received {message:?}",
                self.label
            ),
            Received::Timeout => {
                panic!("{}: connection still open after {timeout:?}", self.label)
            }
        }
    }

    /// Sends CHALLENGE and checks that the server replies with exactly ACCEPT.
    pub async fn challenge(&mut self) {
        let challenge = ConnectionMessage {
            action: ConnectionAction::Challenge.into(),
            url: self.url.clone(),
            protocol_version: "0.1a".into(),
            sdk_version: "0.0.0-test".into(),
            sdk_type: "raw-test-client".into(),
            ..Default::default()
        };
        self.send(TopicMessage::Connection(challenge)).await;
        let accept = self.recv_connection().await;
        assert_eq!(
            accept,
            connection_message(ConnectionAction::Accept),
            "{}: challenge",
            self.label
        );
    }

    /// Runs the handshake and logs in as `user`: CHALLENGE, ACCEPT, AUTH
    /// REQUEST with `{"username": user}`, AUTH_SUCCESSFUL.
    pub async fn login(&mut self, user: &str) {
        self.challenge().await;
        let data = serde_json::json!({ "username": user }).to_string();
        self.send(auth_request(&data)).await;
        let reply = self.recv_auth().await;
        assert_eq!(
            reply.action(),
            AuthAction::AuthSuccessful,
            "{}: login reply {reply:?}",
            self.label
        );
    }

    /// Sends PING and checks that the next message is PONG.
    pub async fn assert_ping_gets_pong(&mut self) {
        self.send(TopicMessage::Connection(connection_message(
            ConnectionAction::Ping,
        )))
        .await;
        let pong = self.recv_connection().await;
        assert_eq!(
            pong,
            connection_message(ConnectionAction::Pong),
            "{}: reply to PING",
            self.label
        );
    }

    /// Closes the connection from the client side and waits for the server to
    /// finish it. The client must not be used afterwards.
    pub async fn close(&mut self) {
        let label = self.label.clone();
        let _ = tokio::time::timeout(IO_TIMEOUT, self.socket.close(None)).await;
        let drained = tokio::time::timeout(IO_TIMEOUT, async {
            while let Some(Ok(_)) = self.socket.next().await {}
        });
        drained
            .await
            .unwrap_or_else(|_| panic!("{label}: the server did not finish the close"));
    }

    /// Returns the next message, which must be a CONNECTION message.
    pub async fn recv_connection(&mut self) -> ConnectionMessage {
        match self.recv().await {
            TopicMessage::Connection(message) => message,
            other => panic!(
                "{}: expected a CONNECTION message, received {other:?}",
                self.label
            ),
        }
    }

    /// Returns the next message, which must be an AUTH message.
    pub async fn recv_auth(&mut self) -> AuthMessage {
        match self.recv().await {
            TopicMessage::Auth(message) => message,
            other => panic!(
                "{}: expected an AUTH message, received {other:?}",
                self.label
            ),
        }
    }

    /// Returns the next message, which must be a PARSER message.
    pub async fn recv_parser(&mut self) -> ParserMessage {
        match self.recv().await {
            TopicMessage::Parser(message) => message,
            other => panic!(
                "{}: expected a PARSER message, received {other:?}",
                self.label
            ),
        }
    }

    /// Returns the next message, which must be an EVENT message.
    pub async fn recv_event(&mut self) -> EventMessage {
        match self.recv().await {
            TopicMessage::Event(message) => message,
            other => panic!(
                "{}: expected an EVENT message, received {other:?}",
                self.label
            ),
        }
    }

    /// Returns the next message, which must be an RPC message.
    pub async fn recv_rpc(&mut self) -> RpcMessage {
        match self.recv().await {
            TopicMessage::Rpc(message) => message,
            other => panic!(
                "{}: expected an RPC message, received {other:?}",
                self.label
            ),
        }
    }

    /// Returns the next message, which must be a PRESENCE message.
    pub async fn recv_presence(&mut self) -> PresenceMessage {
        match self.recv().await {
            TopicMessage::Presence(message) => message,
            other => panic!(
                "{}: expected a PRESENCE message, received {other:?}",
                self.label
            ),
        }
    }

    /// Returns the next message, which must be a RECORD message.
    pub async fn recv_record(&mut self) -> RecordMessage {
        match self.recv().await {
            TopicMessage::Record(message) => message,
            other => panic!(
                "{}: expected a RECORD message, received {other:?}",
                self.label
            ),
        }
    }

    /// Sends one RECORD message.
    pub async fn send_record(&mut self, message: RecordMessage) {
        self.send(TopicMessage::Record(message)).await;
    }

    /// Subscribes to the record `name` with SUBSCRIBECREATEANDREAD, checks
    /// the ack, and returns the READ_RESPONSE.
    pub async fn subscribe_record(&mut self, name: &str) -> RecordMessage {
        let correlation_id = format!("subscribe {name}");
        self.send_record(record_bulk(
            RecordAction::Subscribecreateandread,
            &[name],
            &correlation_id,
        ))
        .await;
        assert_eq!(
            self.recv_record().await,
            record_ack(RecordAction::Subscribecreateandread, &correlation_id),
            "{}: subscribe ack for {name}",
            self.label
        );
        let response = self.recv_record().await;
        assert_eq!(
            (response.action(), response.name.as_str()),
            (RecordAction::ReadResponse, name),
            "{}: reply to SUBSCRIBECREATEANDREAD: {response:?}",
            self.label
        );
        response
    }

    /// Sends READ for the record `name` and returns the reply.
    pub async fn read_record(&mut self, name: &str) -> RecordMessage {
        self.send_record(record_message(RecordAction::Read, name))
            .await;
        self.recv_record().await
    }

    /// Checks that the next message is an error about the record `name` with
    /// the description (if any) as a JSON string in `data`, and returns it.
    /// `write_ack` is the correlation id of a write that asked for an ack.
    pub async fn expect_record_error(
        &mut self,
        action: RecordAction,
        original_action: RecordAction,
        name: &str,
        write_ack: Option<&str>,
    ) -> RecordMessage {
        let mut error = self.recv_record().await;
        let received = error.clone();
        if !error.data.is_empty() {
            let description: serde_json::Value = serde_json::from_slice(&error.data)
                .unwrap_or_else(|_| panic!("{}: error data is not JSON: {received:?}", self.label));
            assert!(
                description.as_str().is_some_and(|text| !text.is_empty()),
                "{}: error data is not a non-empty JSON string: {received:?}",
                self.label
            );
            error.data = Bytes::new();
        }
        let mut expected = RecordMessage {
            action: action.into(),
            original_action: original_action.into(),
            name: name.into(),
            is_error: true,
            ..Default::default()
        };
        if let Some(correlation_id) = write_ack {
            expected.correlation_id = correlation_id.into();
            expected.is_write_ack = true;
        }
        assert_eq!(error, expected, "{}: error message", self.label);
        received
    }

    /// Subscribes to the events `names` in one bulk message and checks the single ack.
    pub async fn subscribe_events(&mut self, names: &[&str], correlation_id: &str) {
        let subscribe = EventMessage {
            action: EventAction::Subscribe.into(),
            names: names.iter().map(|name| name.to_string()).collect(),
            correlation_id: correlation_id.into(),
            ..Default::default()
        };
        self.send(TopicMessage::Event(subscribe)).await;
        let ack = self.recv_event().await;
        assert_eq!(
            ack,
            event_ack(EventAction::Subscribe, correlation_id),
            "{}: subscribe ack",
            self.label
        );
    }

    /// Emits the event `name` with the JSON text `data`.
    pub async fn emit(&mut self, name: &str, data: &[u8]) {
        self.send(TopicMessage::Event(emit_message(name, data)))
            .await;
    }
}

/// Two logged-in clients, used to check that the server still serves others
/// after one client misbehaved.
pub struct Bystanders {
    subscriber: RawClient,
    emitter: RawClient,
    round: u32,
}

impl Bystanders {
    /// The event name the bystanders use.
    pub const EVENT: &'static str = "bystanders/check";

    /// Logs in two clients; one subscribes to [`Bystanders::EVENT`].
    pub async fn join(server: &TestServer) -> Bystanders {
        let mut subscriber = server.login("bystander-subscriber").await;
        subscriber
            .subscribe_events(&[Bystanders::EVENT], "bystanders")
            .await;
        let emitter = server.login("bystander-emitter").await;
        Bystanders {
            subscriber,
            emitter,
            round: 0,
        }
    }

    /// Checks that an emit still reaches the subscriber unchanged.
    pub async fn assert_served(&mut self) {
        self.round += 1;
        let data = format!("{{\"round\":{}}}", self.round);
        self.emitter.emit(Bystanders::EVENT, data.as_bytes()).await;
        let received = self.subscriber.recv_event().await;
        assert_eq!(
            received,
            emit_message(Bystanders::EVENT, data.as_bytes()),
            "bystander emit round trip"
        );
    }

    /// Checks that the subscriber received nothing besides the round trips.
    pub async fn assert_nothing_else(&mut self) {
        self.subscriber.expect_silence(QUIET).await;
    }
}

/// Returns a CONNECTION message with only `action` set.
pub fn connection_message(action: ConnectionAction) -> ConnectionMessage {
    ConnectionMessage {
        action: action.into(),
        ..Default::default()
    }
}

/// Returns an AUTH REQUEST carrying `data` as its JSON text.
pub fn auth_request(data: &str) -> TopicMessage {
    TopicMessage::Auth(AuthMessage {
        action: AuthAction::Request.into(),
        data: Bytes::copy_from_slice(data.as_bytes()),
        ..Default::default()
    })
}

/// Returns an EVENT EMIT of `name` with the JSON text `data`.
pub fn emit_message(name: &str, data: &[u8]) -> EventMessage {
    EventMessage {
        action: EventAction::Emit.into(),
        name: name.into(),
        data: Bytes::copy_from_slice(data),
        ..Default::default()
    }
}

/// Returns the ack the server sends for a (bulk) EVENT `action`.
pub fn event_ack(action: EventAction, correlation_id: &str) -> EventMessage {
    EventMessage {
        action: action.into(),
        correlation_id: correlation_id.into(),
        is_ack: true,
        ..Default::default()
    }
}

/// Returns a RECORD message with only `action` and `name` set.
pub fn record_message(action: RecordAction, name: &str) -> RecordMessage {
    RecordMessage {
        action: action.into(),
        name: name.into(),
        ..Default::default()
    }
}

/// Returns a bulk RECORD message for `names`.
pub fn record_bulk(action: RecordAction, names: &[&str], correlation_id: &str) -> RecordMessage {
    RecordMessage {
        action: action.into(),
        names: names.iter().map(|name| name.to_string()).collect(),
        correlation_id: correlation_id.into(),
        ..Default::default()
    }
}

/// Returns the single ack the server sends for a bulk RECORD `action`.
pub fn record_ack(action: RecordAction, correlation_id: &str) -> RecordMessage {
    RecordMessage {
        action: action.into(),
        correlation_id: correlation_id.into(),
        is_ack: true,
        ..Default::default()
    }
}

/// Returns a RECORD message of `action` with the record's `version` and `data`,
/// such as READ_RESPONSE, UPDATE or VERSION_EXISTS.
pub fn record_data(action: RecordAction, name: &str, version: i32, data: &[u8]) -> RecordMessage {
    RecordMessage {
        action: action.into(),
        name: name.into(),
        version: Some(version),
        data: Bytes::copy_from_slice(data),
        ..Default::default()
    }
}

/// Sends tracing output of the server to the test output when `RUST_LOG` is set.
fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    });
}
