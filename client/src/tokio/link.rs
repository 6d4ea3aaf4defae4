//! An open WebSocket split in two: the driver reads, a writer task writes.
//!
//! Writes never block the driver, so timers and commands keep running while a
//! server reads slowly or not at all. Frames wait in an unbounded channel whose
//! size is counted in bytes; once more than [`MAX_QUEUED_BYTES`] wait, the
//! driver gives the socket up as lost instead of growing its memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{self, Message};

use super::driver::{SOCKET_TIMEOUT, Socket};

/// The maximum number of bytes of frames that may wait for the socket.
pub(crate) const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

/// How many queued frames the writer hands to the socket before one flush.
const WRITE_BATCH: usize = 64;

/// The driver's side of an open socket.
pub(crate) struct Link {
    stream: SplitStream<Socket>,
    frames: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
    failed: oneshot::Receiver<()>,
    writer: tokio::task::AbortHandle,
}

/// The reason a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueError {
    /// More than [`MAX_QUEUED_BYTES`] wait: the server does not read.
    Full,
    /// The writer stopped because writing failed.
    Closed,
}

impl Link {
    /// Splits `socket` and starts its writer task.
    pub(crate) fn new(socket: Socket) -> Link {
        let (sink, stream) = socket.split();
        let (frames, receiver) = mpsc::unbounded_channel();
        let (failed_sender, failed) = oneshot::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = tokio::spawn(write_frames(sink, receiver, queued.clone(), failed_sender));
        Link {
            stream,
            frames,
            queued,
            failed,
            writer: writer.abort_handle(),
        }
    }

    /// Queues a frame for the writer.
    pub(crate) fn queue(&self, frame: Bytes) -> Result<(), QueueError> {
        let size = frame.len();
        if self.queued.load(Ordering::Relaxed) + size > MAX_QUEUED_BYTES {
            return Err(QueueError::Full);
        }
        self.queued.fetch_add(size, Ordering::Relaxed);
        self.frames.send(frame).map_err(|_| QueueError::Closed)
    }

    /// Waits for the next message from the server, or for the writer to fail,
    /// which reads as the end of the stream. The link must not be used after
    /// it returned `None`.
    pub(crate) async fn next(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        tokio::select! {
            message = self.stream.next() => message,
            // The writer ends, and drops the sender, only after a failed write
            // while the link exists.
            _ = &mut self.failed => None,
        }
    }
}

impl Drop for Link {
    /// Lets the writer send what is queued and close the socket, but stops it
    /// after [`SOCKET_TIMEOUT`], so a server that stopped reading cannot keep
    /// it, and the socket, forever.
    fn drop(&mut self) {
        let writer = self.writer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SOCKET_TIMEOUT).await;
            writer.abort();
        });
    }
}

/// Writes queued frames until the driver drops its side, then closes the
/// socket, within [`SOCKET_TIMEOUT`]. Reports a failed write on `failed`.
async fn write_frames(
    mut sink: SplitSink<Socket, Message>,
    mut frames: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
    failed: oneshot::Sender<()>,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    loop {
        if frames.recv_many(&mut batch, WRITE_BATCH).await == 0 {
            let _ = tokio::time::timeout(SOCKET_TIMEOUT, sink.close()).await;
            return;
        }
        let mut written = 0;
        let mut result = Ok(());
        for frame in batch.drain(..) {
            written += frame.len();
            if result.is_ok() {
                result = sink.feed(Message::Binary(frame)).await;
            }
        }
        if result.is_ok() {
            result = sink.flush().await;
        }
        queued.fetch_sub(written, Ordering::Relaxed);
        if let Err(error) = result {
            tracing::debug!(%error, "writing to the WebSocket failed");
            let _ = failed.send(());
            return;
        }
    }
}
