//! The handle through which handlers reach a connected client.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};

/// A server-wide unique number for one WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

impl ConnectionId {
    /// Returns a new id, never handed out before by this process.
    pub fn next() -> ConnectionId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnectionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An item of a connection's outgoing queue.
#[derive(Debug)]
pub enum Outgoing {
    /// The bytes of one binary frame.
    Frame(Bytes),
    /// Close the socket with this WebSocket close code and reason after
    /// writing everything queued before it.
    Close(u16, &'static str),
}

/// The sending side of a connection's outgoing queue.
///
/// Queued frames are counted in bytes. When a client reads too slowly and the
/// count passes the limit, the queue stops taking frames and asks the writer to
/// close the connection, so one slow client cannot grow the server's memory.
#[derive(Debug, Clone)]
pub struct Outbox {
    sender: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<OutboxState>,
}

#[derive(Debug)]
struct OutboxState {
    queued_bytes: AtomicUsize,
    limit: usize,
    closed: AtomicBool,
    /// Wakes the connection's reader when the queue closes, for example
    /// because the client reads too slowly.
    closing: Notify,
}

/// The receiving side of an [`Outbox`], owned by the connection's writer task.
#[derive(Debug)]
pub struct OutboxReceiver {
    receiver: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<OutboxState>,
}

/// WebSocket close code for a policy violation (RFC 6455, section 7.4.1).
pub const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code for a message too big to process.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// WebSocket close code for a normal closure.
pub const CLOSE_NORMAL: u16 = 1000;
/// WebSocket close code for a server going down.
pub const CLOSE_GOING_AWAY: u16 = 1001;

impl Outbox {
    /// Creates a queue that closes its connection once more than `limit` bytes wait.
    pub fn new(limit: usize) -> (Outbox, OutboxReceiver) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(OutboxState {
            queued_bytes: AtomicUsize::new(0),
            limit,
            closed: AtomicBool::new(false),
            closing: Notify::new(),
        });
        (
            Outbox {
                sender,
                shared: shared.clone(),
            },
            OutboxReceiver { receiver, shared },
        )
    }

    /// Queues one frame. Returns false when the connection is closed or closing.
    pub fn send(&self, frame: Bytes) -> bool {
        if self.shared.closed.load(Ordering::Relaxed) {
            return false;
        }
        let len = frame.len();
        let queued = self.shared.queued_bytes.fetch_add(len, Ordering::Relaxed) + len;
        if queued > self.shared.limit {
            tracing::warn!(
                queued,
                limit = self.shared.limit,
                "outgoing queue over its limit, closing slow connection"
            );
            self.close(CLOSE_POLICY, "outgoing queue limit exceeded");
            return false;
        }
        self.sender.send(Outgoing::Frame(frame)).is_ok()
    }

    /// Asks the writer to close the connection after the frames queued so far.
    /// Later frames are dropped. Only the first call has an effect.
    pub fn close(&self, code: u16, reason: &'static str) {
        if !self.shared.closed.swap(true, Ordering::Relaxed) {
            let _ = self.sender.send(Outgoing::Close(code, reason));
            self.shared.closing.notify_one();
        }
    }

    /// Waits until [`Outbox::close`] is called. Meant for one waiter, the
    /// connection's reader.
    pub async fn closed(&self) {
        if !self.shared.closed.load(Ordering::Relaxed) {
            self.shared.closing.notified().await;
        }
    }

    /// Returns true once [`Outbox::close`] was called or the queue overflowed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed) || self.sender.is_closed()
    }
}

impl OutboxReceiver {
    /// Moves up to `limit` waiting items into `buffer`; waits when none wait.
    /// Returns 0 once every [`Outbox`] is dropped and the queue is empty.
    pub async fn recv_many(&mut self, buffer: &mut Vec<Outgoing>, limit: usize) -> usize {
        self.receiver.recv_many(buffer, limit).await
    }

    /// Records that `bytes` of queued frames were handed to the socket.
    pub fn mark_written(&self, bytes: usize) {
        self.shared.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// An authenticated client as the handlers see it.
#[derive(Debug)]
pub struct Peer {
    id: ConnectionId,
    user: Arc<str>,
    client_data: Option<Bytes>,
    outbox: Outbox,
}

impl Peer {
    /// Creates the handle of an authenticated connection.
    ///
    /// `client_data` is the JSON text the authentication service returned for
    /// the client, if any.
    pub fn new(
        id: ConnectionId,
        user: Arc<str>,
        client_data: Option<Bytes>,
        outbox: Outbox,
    ) -> Peer {
        Peer {
            id,
            user,
            client_data,
            outbox,
        }
    }

    /// Returns the connection's id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// Returns the user name the connection logged in with.
    pub fn user(&self) -> &Arc<str> {
        &self.user
    }

    /// Returns the client data of the login, as JSON text.
    pub fn client_data(&self) -> Option<&Bytes> {
        self.client_data.as_ref()
    }

    /// Queues one frame for this client. A full or closed queue drops it.
    pub fn send(&self, frame: Bytes) {
        self.outbox.send(frame);
    }

    /// Returns true once the connection is closed or closing.
    pub fn is_closed(&self) -> bool {
        self.outbox.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outbox_over_limit_closes() {
        let (outbox, mut receiver) = Outbox::new(10);
        assert!(outbox.send(Bytes::from_static(b"123456")));
        assert!(!outbox.send(Bytes::from_static(b"123456")));
        assert!(outbox.is_closed());
        assert!(!outbox.send(Bytes::from_static(b"1")));

        let mut items = Vec::new();
        receiver.recv_many(&mut items, 10).await;
        assert_eq!(items.len(), 2);
        assert!(matches!(items[0], Outgoing::Frame(_)));
        assert!(matches!(items[1], Outgoing::Close(CLOSE_POLICY, _)));
    }

    #[tokio::test]
    async fn outbox_written_bytes_free_room() {
        let (outbox, mut receiver) = Outbox::new(10);
        assert!(outbox.send(Bytes::from_static(b"123456")));
        let mut items = Vec::new();
        receiver.recv_many(&mut items, 10).await;
        receiver.mark_written(6);
        assert!(outbox.send(Bytes::from_static(b"123456")));
        assert!(!outbox.is_closed());
    }
}
