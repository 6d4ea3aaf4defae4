//! State that every topic handler of the session uses: the outgoing frames,
//! the events for the application, the timers and the acknowledgement timeouts.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use deepstream_protocol::Topic;

use super::error::SessionError;
use super::ids::RequestId;
use super::time::{TimerId, Timers, Timestamp};
use super::{Event, Options};

/// The action of a timer when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Send a `PING` and check that the server was heard from recently.
    Heartbeat,
    /// Open a new socket after a lost connection.
    Reconnect,
    /// The offline buffer time is over: fail what was kept for sending.
    LimboExpired,
    /// Send the collected subscriptions of one bulk queue.
    BulkFlush(BulkKind),
    /// An acknowledgement did not arrive in time.
    Ack(AckKey),
    /// A request did not get its answer in time.
    Request(RequestId),
    /// The first read of a record did not get its answer in time.
    RecordRead(String),
    /// A login did not get its answer in time.
    Login,
}

/// The bulk queues of the session, one per topic and subscribe action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BulkKind {
    Event,
    Rpc,
    Presence,
    RecordRead,
    RecordHead,
}

/// The key that matches an acknowledgement: topic, the action it acknowledges,
/// and the correlation id, or the name when the request had no correlation id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AckKey {
    pub(crate) topic: Topic,
    pub(crate) action: i32,
    pub(crate) key: String,
}

/// The parts of the session that the topic handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: Options,
    pub(crate) now: Timestamp,
    pub(crate) transmit: VecDeque<Bytes>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) timers: Timers<Timer>,
    acks: HashMap<AckKey, TimerId>,
    next_id: u64,
    /// Whether a WebSocket is open, so frames can be sent.
    pub(crate) socket_open: bool,
    /// Whether the client is logged in, so topic messages can be sent.
    pub(crate) logged_in: bool,
    /// Whether requests made now are kept for later instead of failing: true
    /// before the first login and for `offline_buffer_timeout` after a loss.
    pub(crate) in_limbo: bool,
    /// A prefix that makes this session's RPC correlation ids unique on the server.
    pub(crate) id_prefix: String,
}

impl Shared {
    pub(crate) fn new(options: Options, id_seed: u64) -> Shared {
        Shared {
            options,
            now: Timestamp::default(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            timers: Timers::new(),
            acks: HashMap::new(),
            next_id: 1,
            socket_open: false,
            logged_in: false,
            in_limbo: true,
            id_prefix: format!("{id_seed:016x}"),
        }
    }

    /// Returns a number not handed out before by this session.
    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Queues a frame for the socket. Frames are dropped while no socket is
    /// open, as the official client does. Callers that must not lose a
    /// message check [`Shared::logged_in`] first and keep it themselves.
    pub(crate) fn send(&mut self, frame: Bytes) {
        if self.socket_open {
            self.transmit.push_back(frame);
        } else {
            tracing::debug!("no open socket; dropping an outgoing message");
        }
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    pub(crate) fn error(&mut self, error: SessionError) {
        tracing::debug!(%error, "session error");
        self.events.push_back(Event::Error(error));
    }

    /// Starts the acknowledgement timeout of a request just sent.
    pub(crate) fn expect_ack(&mut self, key: AckKey) {
        self.clear_ack(&key);
        let deadline = self.now.after(self.options.subscription_timeout);
        let timer = self.timers.add(deadline, Timer::Ack(key.clone()));
        self.acks.insert(key, timer);
    }

    /// Stops the acknowledgement timeout for `key`. Returns whether one was running.
    pub(crate) fn clear_ack(&mut self, key: &AckKey) -> bool {
        match self.acks.remove(key) {
            Some(timer) => self.timers.cancel(timer).is_some(),
            None => false,
        }
    }

    /// Forgets an acknowledgement timeout that has fired.
    pub(crate) fn ack_fired(&mut self, key: &AckKey) {
        self.acks.remove(key);
    }

    /// Stops every acknowledgement timeout, because the connection was lost.
    pub(crate) fn clear_all_acks(&mut self) {
        for (_, timer) in self.acks.drain() {
            self.timers.cancel(timer);
        }
    }

    /// Starts the answer timeout of a request.
    pub(crate) fn request_timer(
        &mut self,
        request: RequestId,
        after: std::time::Duration,
    ) -> TimerId {
        let deadline = self.now.after(after);
        self.timers.add(deadline, Timer::Request(request))
    }
}
