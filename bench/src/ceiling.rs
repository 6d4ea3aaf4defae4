//! A bare broadcast server over tokio-tungstenite, the ceiling for fan-out.
//!
//! Every binary frame a client sends goes to every other client unchanged.
//! It has no topics, no subscriptions and no login, so its throughput is the
//! most that this WebSocket stack can deliver on the machine.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use deepstream_protocol::{ConnectionAction, ConnectionMessage, TopicMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

use crate::error::BenchError;

/// Frames a slow client may fall behind before it loses some. The benchmark
/// keeps far fewer in flight.
const CHANNEL_CAPACITY: usize = 4096;

/// Serves on `addr` until `lifetime` passes or the process gets SIGTERM or SIGINT.
pub async fn serve(addr: SocketAddr, lifetime: Duration) -> Result<(), BenchError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(BenchError::io(format!(
            "binding the broadcast server to {addr}"
        )))?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(BenchError::io("installing the SIGTERM handler"))?;
    let (frames, _) = broadcast::channel::<(u64, Bytes)>(CHANNEL_CAPACITY);
    let ids = AtomicU64::new(0);
    tracing::info!(%addr, ?lifetime, "broadcast server listening");

    let stop = tokio::time::sleep(lifetime);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(relay(stream, id, frames.clone()));
                }
                Err(error) => tracing::warn!(%error, "accepting a connection failed"),
            },
        }
    }
    tracing::info!("broadcast server stopped");
    Ok(())
}

/// Relays one client's frames to the channel and the channel's frames from
/// other clients to this one, one flush per batch.
async fn relay(stream: TcpStream, id: u64, frames: broadcast::Sender<(u64, Bytes)>) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not disable Nagle's algorithm");
    }
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut incoming) = ws.split();
    let mut outgoing = frames.subscribe();
    let ready = TopicMessage::Connection(ConnectionMessage {
        action: ConnectionAction::Accept.into(),
        ..Default::default()
    });
    if sink
        .send(Message::Binary(ready.encode_frame()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            message = incoming.next() => match message {
                Some(Ok(Message::Binary(frame))) => {
                    // No receivers is not an error for a broadcast.
                    let _ = frames.send((id, frame));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            received = outgoing.recv() => {
                if forward(&mut sink, &mut outgoing, id, received).await.is_err() {
                    break;
                }
            }
        }
    }
}

async fn forward<S>(
    sink: &mut S,
    outgoing: &mut broadcast::Receiver<(u64, Bytes)>,
    id: u64,
    first: Result<(u64, Bytes), broadcast::error::RecvError>,
) -> Result<(), ()>
where
    S: SinkExt<Message> + Unpin,
{
    let mut next = first;
    loop {
        match next {
            Ok((sender, frame)) if sender != id => {
                sink.feed(Message::Binary(frame)).await.map_err(|_| ())?;
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(lost)) => {
                tracing::warn!(client = id, lost, "a client fell behind and lost frames");
            }
            Err(broadcast::error::RecvError::Closed) => return Err(()),
        }
        next = match outgoing.try_recv() {
            Ok(item) => Ok(item),
            Err(broadcast::error::TryRecvError::Lagged(lost)) => {
                Err(broadcast::error::RecvError::Lagged(lost))
            }
            Err(_) => break,
        };
    }
    sink.flush().await.map_err(|_| ())
}
