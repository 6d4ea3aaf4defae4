//! One WebSocket connection: the handshake, login, heartbeats and the
//! dispatch of messages to the topic handlers.
//!
//! Each connection has two tasks. The reader (this module's [`serve`]) decodes
//! every frame and calls the topic handler in place, without spawning. The
//! writer ([`write_frames`]) takes everything queued on the connection's
//! [`Outbox`] and hands it to the socket, one message per frame and one flush
//! per batch.

mod permit;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::auth::ConnectionData;
use crate::monitoring::Monitor;
use crate::peer::{CLOSE_GOING_AWAY, CLOSE_NORMAL, ConnectionId, Outbox, OutboxReceiver, Outgoing};
use crate::services::Services;
use session::{Flow, Session};

/// How many queued items the writer takes per batch.
const WRITE_BATCH: usize = 256;
/// How long a closing connection may take to write what it has queued.
const WRITER_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one upgraded WebSocket connection until it closes. `connection` describes the
/// upgrade request for the authentication service.
pub(crate) async fn serve(
    socket: WebSocket,
    services: Arc<Services>,
    remote: SocketAddr,
    connection: ConnectionData,
) {
    let id = ConnectionId::next();
    let span = tracing::info_span!("connection", %id, user = tracing::field::Empty);
    run(socket, services, remote, connection, id)
        .instrument(span)
        .await;
}

async fn run(
    socket: WebSocket,
    services: Arc<Services>,
    remote: SocketAddr,
    connection: ConnectionData,
    id: ConnectionId,
) {
    tracing::info!(%remote, "client connected");
    services.monitor.connection_opened();
    let websocket = services.websocket.clone();
    let (sink, mut stream) = socket.split();
    let (outbox, receiver) = Outbox::new(websocket.max_outgoing_queue_bytes);
    let mut writer =
        tokio::spawn(write_frames(sink, receiver, services.monitor.clone()).in_current_span());
    let mut writer_done = false;

    let mut session = Session::new(id, services.clone(), outbox.clone(), connection);
    let mut shutdown = services.shutdown.clone();
    let mut heartbeat = tokio::time::interval_at(
        Instant::now() + websocket.heartbeat_interval,
        websocket.heartbeat_interval,
    );
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_received = Instant::now();
    let login_deadline = websocket
        .unauthenticated_client_timeout
        .map(|timeout| Instant::now() + timeout);

    loop {
        tokio::select! {
            incoming = stream.next() => {
                last_received = Instant::now();
                let flow = match incoming {
                    Some(Ok(Message::Binary(frame))) => {
                        // A login waits here for its authentication service (an HTTP
                        // endpoint may take its timeouts and retries), so the login
                        // timeout and shutdown are watched during the wait too.
                        let authenticated = session.is_authenticated();
                        let mut interrupted = None;
                        let flow = tokio::select! {
                            flow = session.on_frame(frame) => flow,
                            _ = sleep_until(login_deadline), if !authenticated => {
                                interrupted = Some(Interruption::LoginTimeout);
                                Flow::Stop
                            }
                            _ = shutdown.changed() => {
                                interrupted = Some(Interruption::Shutdown);
                                Flow::Stop
                            }
                        };
                        match interrupted {
                            Some(Interruption::LoginTimeout) => session.on_login_timeout(),
                            Some(Interruption::Shutdown) => {
                                outbox.close(CLOSE_GOING_AWAY, "server shutting down");
                            }
                            None => {}
                        }
                        // The client's pings wait unread during such a login, so the wait
                        // does not count as silence.
                        last_received = Instant::now();
                        flow
                    }
                    Some(Ok(Message::Text(_))) => session.on_text_frame(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                    Some(Ok(Message::Close(_))) | None => {
                        tracing::debug!("client closed the socket");
                        Flow::Stop
                    }
                    Some(Err(error)) => session.on_read_error(error),
                };
                if flow == Flow::Stop {
                    break;
                }
            }
            _ = heartbeat.tick() => {
                if last_received.elapsed() > websocket.heartbeat_interval * 2 {
                    tracing::info!("no message for two heartbeat intervals, closing connection");
                    outbox.close(CLOSE_NORMAL, "heartbeat missed");
                    break;
                }
            }
            _ = sleep_until(login_deadline), if !session.is_authenticated() => {
                session.on_login_timeout();
                break;
            }
            _ = &mut writer => {
                writer_done = true;
                break;
            }
            _ = outbox.closed() => {
                // Closed by a handler, for example because the client reads too
                // slowly: stop serving it now rather than when the socket drains.
                break;
            }
            _ = shutdown.changed() => {
                outbox.close(CLOSE_GOING_AWAY, "server shutting down");
                break;
            }
        }
    }

    session.close();
    outbox.close(CLOSE_NORMAL, "");
    drop(outbox);
    if !writer_done
        && tokio::time::timeout(WRITER_DRAIN_TIMEOUT, &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    services.monitor.connection_closed();
    tracing::info!("client disconnected");
}

/// The event that ended the handling of a frame before it finished.
enum Interruption {
    LoginTimeout,
    Shutdown,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Writes queued frames to the socket until the queue asks to close or the
/// socket fails.
async fn write_frames(
    mut sink: SplitSink<WebSocket, Message>,
    mut receiver: OutboxReceiver,
    monitor: Monitor,
) {
    // The buffer grows to the largest batch seen, so an idle connection keeps a
    // few slots rather than WRITE_BATCH of them.
    let mut batch = Vec::new();
    loop {
        if receiver.recv_many(&mut batch, WRITE_BATCH).await == 0 {
            let _ = sink.close().await;
            return;
        }
        let mut written = 0;
        for item in batch.drain(..) {
            match item {
                Outgoing::Frame(frame) => {
                    written += frame.len();
                    monitor.frame_sent(&frame);
                    if let Err(error) = sink.feed(Message::Binary(frame)).await {
                        tracing::debug!(%error, "writing to the socket failed");
                        return;
                    }
                }
                Outgoing::Close(code, reason) => {
                    let close = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    let _ = sink.feed(Message::Close(Some(close))).await;
                    let _ = sink.flush().await;
                    return;
                }
            }
        }
        receiver.mark_written(written);
        if let Err(error) = sink.flush().await {
            tracing::debug!(%error, "flushing the socket failed");
            return;
        }
    }
}
