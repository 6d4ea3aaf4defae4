//! Client connections to the target: the WebSocket, the deepstream handshake
//! and login, and readers that serve thousands of connections from a few tasks.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, TopicMessage,
};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::BenchError;

/// A client WebSocket to the target.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// The sending half of a [`Ws`].
pub type WsSink = SplitSink<Ws, Message>;
/// The receiving half of a [`Ws`].
pub type WsStream = SplitStream<Ws>;

/// Maximum wait for one step of a handshake or a subscription acknowledgement.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections opened at the same time while a workload sets up.
const CONNECT_CONCURRENCY: usize = 64;

/// The SDK version reported in the challenge, so server logs show the benchmark.
const SDK_TYPE: &str = "deepstream-bench";
const PROTOCOL_VERSION: &str = "0.1a";

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Returns microseconds since the first call in this process.
///
/// Senders put this value into the data of a message and receivers in the
/// same process subtract it from their own reading, which gives the delivery
/// latency without comparing clocks of different processes.
pub fn now_micros() -> u64 {
    u64::try_from(EPOCH.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The protocol that a workload's clients speak to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// A deepstream server: challenge, login, then topic messages.
    Deepstream,
    /// The bare broadcast server of `ceiling-server`: no handshake; the server
    /// sends one `CONNECTION ACCEPT` frame once it has registered the client.
    Broadcast,
}

/// Opens a WebSocket to `url` without any deepstream handshake.
pub async fn connect_raw(url: &str) -> Result<Ws, BenchError> {
    // Nagle's algorithm would hold small frames back for up to one delayed
    // ACK (about 40 ms on Linux) and hide the server's own latency.
    let (ws, _response) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|source| BenchError::Connect {
            url: url.to_owned(),
            source,
        })?;
    Ok(ws)
}

/// Opens a WebSocket to `url`, sends the challenge and logs in with `{}`.
pub async fn connect_session(url: &str) -> Result<Ws, BenchError> {
    let mut ws = connect_raw(url).await?;
    let challenge = TopicMessage::Connection(ConnectionMessage {
        action: ConnectionAction::Challenge.into(),
        url: url.to_owned(),
        protocol_version: PROTOCOL_VERSION.to_owned(),
        sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
        sdk_type: SDK_TYPE.to_owned(),
        ..Default::default()
    });
    send(&mut ws, &challenge).await?;
    wait_for(&mut ws, "CONNECTION ACCEPT", STEP_TIMEOUT, |message| {
        matches!(message, TopicMessage::Connection(m) if m.action == ConnectionAction::Accept as i32)
    })
    .await?;

    let login = TopicMessage::Auth(AuthMessage {
        action: AuthAction::Request.into(),
        data: Bytes::from_static(b"{}"),
        ..Default::default()
    });
    send(&mut ws, &login).await?;
    let reply = next_message(&mut ws, "AUTH AUTH_SUCCESSFUL", STEP_TIMEOUT).await?;
    match reply {
        TopicMessage::Auth(m) if m.action == AuthAction::AuthSuccessful as i32 => Ok(ws),
        other => Err(BenchError::Unexpected {
            expected: "AUTH AUTH_SUCCESSFUL",
            received: format!("{other:?}"),
        }),
    }
}

/// Opens a connection in the given dialect and waits until the target has
/// registered it.
pub async fn connect(url: &str, dialect: Dialect) -> Result<Ws, BenchError> {
    match dialect {
        Dialect::Deepstream => connect_session(url).await,
        Dialect::Broadcast => {
            let mut ws = connect_raw(url).await?;
            wait_for(&mut ws, "the broadcast server's ready frame", STEP_TIMEOUT, |m| {
                matches!(m, TopicMessage::Connection(c) if c.action == ConnectionAction::Accept as i32)
            })
            .await?;
            Ok(ws)
        }
    }
}

/// Opens `count` connections, at most [`CONNECT_CONCURRENCY`] at a time, and
/// runs `prepare` on each (a subscription, for example) before it counts as
/// open. Fails on the first connection that fails.
pub async fn open_many<F, Fut>(
    url: &str,
    dialect: Dialect,
    count: usize,
    prepare: F,
) -> Result<Vec<Ws>, BenchError>
where
    F: Fn(Ws) -> Fut,
    Fut: Future<Output = Result<Ws, BenchError>>,
{
    futures_util::stream::iter(0..count)
        .map(|_| async {
            let ws = connect(url, dialect).await?;
            prepare(ws).await
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await
}

/// Sends one message as one binary frame.
pub async fn send(ws: &mut Ws, message: &TopicMessage) -> Result<(), BenchError> {
    ws.send(Message::Binary(message.encode_frame())).await?;
    Ok(())
}

/// Sends one message as one binary frame on a sending half.
pub async fn send_on(sink: &mut WsSink, message: &TopicMessage) -> Result<(), BenchError> {
    sink.send(Message::Binary(message.encode_frame())).await?;
    Ok(())
}

/// Receives the next deepstream message, skipping WebSocket control frames.
pub async fn next_message(
    ws: &mut Ws,
    expected: &'static str,
    timeout: Duration,
) -> Result<TopicMessage, BenchError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| BenchError::Timeout { expected, timeout })?;
        match frame {
            Some(Ok(Message::Binary(bytes))) => return Ok(TopicMessage::decode_frame(bytes)?),
            Some(Ok(Message::Close(_))) | None => return Err(BenchError::Closed { expected }),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
        }
    }
}

/// Receives messages until one matches `accept`, and returns it. Messages
/// that do not match, such as heartbeats, are skipped.
pub async fn wait_for(
    ws: &mut Ws,
    expected: &'static str,
    timeout: Duration,
    mut accept: impl FnMut(&TopicMessage) -> bool,
) -> Result<TopicMessage, BenchError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = next_message(ws, expected, remaining).await?;
        if accept(&message) {
            return Ok(message);
        }
        tracing::trace!(?message, expected, "skipped a message");
    }
}

/// Handles the frames that a reader task receives, keeping its own state.
pub trait FrameHandler: Send + 'static {
    /// Handles one binary frame from any of the task's connections.
    fn on_frame(&mut self, frame: Bytes);
}

/// Reader tasks that share the receiving halves of many connections.
pub struct Readers<H> {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<H>>,
}

impl<H: FrameHandler> Readers<H> {
    /// Spreads `streams` over `task_count` tasks. Each task polls its
    /// connections together and passes every binary frame to its handler,
    /// which `make_handler` builds.
    pub fn spawn(
        streams: Vec<WsStream>,
        task_count: usize,
        mut make_handler: impl FnMut() -> H,
    ) -> Readers<H> {
        let (stop, stopped) = watch::channel(false);
        let task_count = task_count.clamp(1, streams.len().max(1));
        let mut groups: Vec<Vec<WsStream>> = (0..task_count).map(|_| Vec::new()).collect();
        for (index, stream) in streams.into_iter().enumerate() {
            groups[index % task_count].push(stream);
        }
        let tasks = groups
            .into_iter()
            .map(|group| tokio::spawn(read_group(group, make_handler(), stopped.clone())))
            .collect();
        Readers { stop, tasks }
    }

    /// Stops the tasks and returns their handlers.
    pub async fn finish(self) -> Vec<H> {
        // A send error means every task has ended already, which is fine.
        let _ = self.stop.send(true);
        let mut handlers = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            match task.await {
                Ok(handler) => handlers.push(handler),
                Err(error) => tracing::error!(%error, "a reader task failed"),
            }
        }
        handlers
    }
}

async fn read_group<H: FrameHandler>(
    group: Vec<WsStream>,
    mut handler: H,
    mut stop: watch::Receiver<bool>,
) -> H {
    let mut frames = futures_util::stream::select_all(group);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            item = frames.next() => match item {
                Some(Ok(Message::Binary(frame))) => handler.on_frame(frame),
                Some(Ok(_)) => {}
                Some(Err(error)) => tracing::debug!(%error, "a benchmark connection failed"),
                None => break,
            },
        }
    }
    handler
}
