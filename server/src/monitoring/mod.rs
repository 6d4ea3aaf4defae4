//! Monitoring: counters of connections, logins, messages and errors, the
//! hooks that feed them, and the reports built from them.
//!
//! [`Metrics`] is always on: the server counts into it from every connection,
//! and the Prometheus text endpoint ([`prometheus::render`]) reads it. The
//! `monitoring` section of the config chooses an extra report in deepstream's
//! format ([`report::StatsReport`]): none, a log line every `logInterval`, or
//! an HTTP endpoint that returns the counts since its previous call.
//!
//! Counting costs one uncontended atomic add per message. Message counters
//! live in one array per thread ([`thread_local::ThreadLocal`]), so threads
//! that deliver a fan-out never write to the same cache line, and a scrape
//! sums the arrays.

pub mod prometheus;
pub mod report;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use deepstream_protocol::{Topic, action_name, topic_name};
use thread_local::ThreadLocal;

/// The number of topic numbers counted separately (0 to 11, as defined in
/// `proto/envelope.proto`); messages of other topics count under topic 0.
const TOPIC_SLOTS: usize = 12;
/// The number of action numbers counted separately per topic (the highest
/// action defined is 118); larger actions count under action 0.
const ACTION_SLOTS: usize = 128;

/// The endpoint a login came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Endpoint {
    /// The binary WebSocket endpoint.
    WebSocket,
    /// The HTTP API.
    Http,
}

impl Endpoint {
    /// Returns the name deepstream uses in its statistics.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::WebSocket => "websocket",
            Endpoint::Http => "http",
        }
    }
}

/// Hooks called as the server works. Every method has an empty default, so
/// an implementation overrides only what it needs. Implementations must be
/// cheap: the message hooks run on the connection tasks for every message.
pub trait Monitoring: Send + Sync + 'static {
    /// Counts a client that connected.
    fn on_connection_opened(&self) {}
    /// Counts a client that disconnected.
    fn on_connection_closed(&self) {}
    /// Counts a login that was allowed or declined.
    fn on_login(&self, _allowed: bool, _endpoint: Endpoint) {}
    /// Counts a message received from a client.
    fn on_message_received(&self, _topic: i32, _action: i32) {}
    /// Counts a message written to a client.
    fn on_message_sent(&self, _topic: i32, _action: i32) {}
    /// Counts a message queued for `count` subscribers at once. [`Metrics`]
    /// ignores it, because each connection's writer counts what it sends.
    fn on_broadcast(&self, _topic: i32, _action: i32, _count: usize) {}
    /// Counts a logged error by its deepstream event name, such as
    /// `MESSAGE_DENIED`.
    fn on_error_log(&self, _event: &str) {}
}

/// Message counts of one thread, indexed by topic and action.
struct MessageCounts(Box<[AtomicU64]>);

impl MessageCounts {
    fn new() -> MessageCounts {
        MessageCounts(
            (0..TOPIC_SLOTS * ACTION_SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        )
    }

    fn add(&self, topic: i32, action: i32, count: u64) {
        self.0[slot(topic, action)].fetch_add(count, Ordering::Relaxed);
    }
}

fn slot(topic: i32, action: i32) -> usize {
    let topic = usize::try_from(topic)
        .ok()
        .filter(|topic| *topic < TOPIC_SLOTS);
    let action = usize::try_from(action)
        .ok()
        .filter(|action| *action < ACTION_SLOTS);
    match (topic, action) {
        (Some(topic), Some(action)) => topic * ACTION_SLOTS + action,
        (Some(topic), None) => topic * ACTION_SLOTS,
        (None, _) => 0,
    }
}

/// Login counts of one endpoint.
#[derive(Debug, Default)]
struct LoginCounts {
    allowed: AtomicU64,
    declined: AtomicU64,
}

/// The server's counters. Counters only grow, except the number of open
/// connections, so reports that want counts per period subtract snapshots.
pub struct Metrics {
    connections_open: AtomicU64,
    connections_total: AtomicU64,
    websocket_logins: LoginCounts,
    http_logins: LoginCounts,
    received: ThreadLocal<MessageCounts>,
    sent: ThreadLocal<MessageCounts>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("connections_open", &self.connections_open)
            .field("connections_total", &self.connections_total)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// The counters at one moment, with message counts summed over threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted since the start.
    pub connections_total: u64,
    /// Allowed and declined logins per endpoint.
    pub logins: BTreeMap<Endpoint, (u64, u64)>,
    /// Messages received per topic and action number; only non-zero counts.
    pub received: BTreeMap<(i32, i32), u64>,
    /// Messages sent per topic and action number; only non-zero counts.
    pub sent: BTreeMap<(i32, i32), u64>,
    /// Logged errors per deepstream event name.
    pub errors: BTreeMap<String, u64>,
}

impl Metrics {
    /// Creates counters at zero.
    pub fn new() -> Metrics {
        Metrics {
            connections_open: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            websocket_logins: LoginCounts::default(),
            http_logins: LoginCounts::default(),
            received: ThreadLocal::new(),
            sent: ThreadLocal::new(),
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut logins = BTreeMap::new();
        for (endpoint, counts) in [
            (Endpoint::WebSocket, &self.websocket_logins),
            (Endpoint::Http, &self.http_logins),
        ] {
            logins.insert(
                endpoint,
                (
                    counts.allowed.load(Ordering::Relaxed),
                    counts.declined.load(Ordering::Relaxed),
                ),
            );
        }
        MetricsSnapshot {
            connections_open: self.connections_open.load(Ordering::Relaxed),
            connections_total: self.connections_total.load(Ordering::Relaxed),
            logins,
            received: sum_counts(&self.received),
            sent: sum_counts(&self.sent),
            errors: self
                .errors
                .lock()
                .map(|errors| errors.clone())
                .unwrap_or_default(),
        }
    }

    fn logins(&self, endpoint: Endpoint) -> &LoginCounts {
        match endpoint {
            Endpoint::WebSocket => &self.websocket_logins,
            Endpoint::Http => &self.http_logins,
        }
    }
}

fn sum_counts(counts: &ThreadLocal<MessageCounts>) -> BTreeMap<(i32, i32), u64> {
    let mut sums = vec![0u64; TOPIC_SLOTS * ACTION_SLOTS];
    for thread in counts {
        for (sum, count) in sums.iter_mut().zip(thread.0.iter()) {
            *sum += count.load(Ordering::Relaxed);
        }
    }
    let mut result = BTreeMap::new();
    for (index, sum) in sums.into_iter().enumerate() {
        if sum > 0 {
            // Both quotients are below TOPIC_SLOTS and ACTION_SLOTS, which fit in i32.
            let topic = i32::try_from(index / ACTION_SLOTS).unwrap_or(0);
            let action = i32::try_from(index % ACTION_SLOTS).unwrap_or(0);
            result.insert((topic, action), sum);
        }
    }
    result
}

impl Monitoring for Metrics {
    fn on_connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    fn on_connection_closed(&self) {
        // Never below zero, even if a close were reported twice.
        let _ = self
            .connections_open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                open.checked_sub(1)
            });
    }

    fn on_login(&self, allowed: bool, endpoint: Endpoint) {
        let counts = self.logins(endpoint);
        let counter = if allowed {
            &counts.allowed
        } else {
            &counts.declined
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn on_message_received(&self, topic: i32, action: i32) {
        self.received
            .get_or(MessageCounts::new)
            .add(topic, action, 1);
    }

    fn on_message_sent(&self, topic: i32, action: i32) {
        self.sent.get_or(MessageCounts::new).add(topic, action, 1);
    }

    fn on_error_log(&self, event: &str) {
        if let Ok(mut errors) = self.errors.lock() {
            match errors.get_mut(event) {
                Some(count) => *count += 1,
                None => {
                    errors.insert(event.to_owned(), 1);
                }
            }
        }
    }
}

/// The server's counters plus the hooks an embedding application added with
/// `Server::with_monitoring`. The server reports through this type only.
#[derive(Clone, Default)]
pub(crate) struct Monitor {
    pub(crate) metrics: Arc<Metrics>,
    extra: Option<Arc<dyn Monitoring>>,
}

impl Monitor {
    pub(crate) fn new(extra: Option<Arc<dyn Monitoring>>) -> Monitor {
        Monitor {
            metrics: Arc::new(Metrics::new()),
            extra,
        }
    }

    pub(crate) fn connection_opened(&self) {
        self.metrics.on_connection_opened();
        if let Some(extra) = &self.extra {
            extra.on_connection_opened();
        }
    }

    pub(crate) fn connection_closed(&self) {
        self.metrics.on_connection_closed();
        if let Some(extra) = &self.extra {
            extra.on_connection_closed();
        }
    }

    pub(crate) fn login(&self, allowed: bool, endpoint: Endpoint) {
        self.metrics.on_login(allowed, endpoint);
        if let Some(extra) = &self.extra {
            extra.on_login(allowed, endpoint);
        }
    }

    pub(crate) fn message_received(&self, topic: i32, action: i32) {
        self.metrics.on_message_received(topic, action);
        if let Some(extra) = &self.extra {
            extra.on_message_received(topic, action);
        }
    }

    /// Counts an encoded frame written to a client. deepstream numbers every
    /// error action from 100 up, so those are counted as errors too.
    pub(crate) fn frame_sent(&self, frame: &[u8]) {
        let Some((topic, action)) = deepstream_protocol::peek_topic_action(frame) else {
            return;
        };
        self.metrics.on_message_sent(topic, action);
        if let Some(extra) = &self.extra {
            extra.on_message_sent(topic, action);
        }
        if action >= FIRST_ERROR_ACTION {
            let (_, name) = message_names(topic, action);
            self.error_logged(&name);
        }
    }

    /// Passes a broadcast of an encoded frame to `count` subscribers on to the
    /// extra hooks. The counters ignore it, because each writer counts its frames.
    pub(crate) fn broadcast(&self, frame: &[u8], count: usize) {
        let Some(extra) = &self.extra else {
            return;
        };
        if count == 0 {
            return;
        }
        if let Some((topic, action)) = deepstream_protocol::peek_topic_action(frame) {
            extra.on_broadcast(topic, action, count);
        }
    }

    pub(crate) fn error_logged(&self, event: &str) {
        self.metrics.on_error_log(event);
        if let Some(extra) = &self.extra {
            extra.on_error_log(event);
        }
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("metrics", &self.metrics)
            .field("extra", &self.extra.is_some())
            .finish()
    }
}

/// The lowest action number deepstream gives an error message.
const FIRST_ERROR_ACTION: i32 = 100;

/// Returns deepstream's names for a topic and action number, or the numbers
/// as text when the protocol defines no such topic or action.
pub fn message_names(topic: i32, action: i32) -> (String, String) {
    match Topic::try_from(topic) {
        Ok(known) => (
            topic_name(known).to_owned(),
            action_name(known, action).map_or_else(|| action.to_string(), str::to_owned),
        ),
        Err(_) => (topic.to_string(), action.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use deepstream_protocol::{EventAction, RecordAction};

    use super::*;

    #[test]
    fn counts_sum_over_threads() {
        let metrics = std::sync::Arc::new(Metrics::new());
        let event = (Topic::Event as i32, EventAction::Emit as i32);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let metrics = &metrics;
                scope.spawn(move || {
                    for _ in 0..1000 {
                        metrics.on_message_received(event.0, event.1);
                    }
                });
            }
        });
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.received.get(&event), Some(&4000));
        assert_eq!(snapshot.received.len(), 1);
    }

    #[test]
    fn out_of_range_numbers_share_a_slot() {
        let metrics = Metrics::new();
        metrics.on_message_sent(Topic::Record as i32, 5000);
        metrics.on_message_sent(Topic::Record as i32, -1);
        metrics.on_message_sent(200, RecordAction::Update as i32);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.sent.get(&(Topic::Record as i32, 0)), Some(&2));
        assert_eq!(snapshot.sent.get(&(0, 0)), Some(&1));
    }

    #[test]
    fn connections_and_logins_are_counted() {
        let metrics = Metrics::new();
        metrics.on_connection_opened();
        metrics.on_connection_opened();
        metrics.on_connection_closed();
        metrics.on_connection_closed();
        metrics.on_connection_closed();
        metrics.on_login(true, Endpoint::WebSocket);
        metrics.on_login(false, Endpoint::WebSocket);
        metrics.on_login(false, Endpoint::Http);
        metrics.on_error_log("MESSAGE_DENIED");
        metrics.on_error_log("MESSAGE_DENIED");
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.connections_open, 0);
        assert_eq!(snapshot.connections_total, 2);
        assert_eq!(snapshot.logins[&Endpoint::WebSocket], (1, 1));
        assert_eq!(snapshot.logins[&Endpoint::Http], (0, 1));
        assert_eq!(snapshot.errors["MESSAGE_DENIED"], 2);
    }

    #[test]
    fn names_come_from_the_protocol() {
        assert_eq!(
            message_names(Topic::Event as i32, EventAction::Emit as i32),
            ("EVENT".to_owned(), "EMIT".to_owned())
        );
        assert_eq!(message_names(99, 3), ("99".to_owned(), "3".to_owned()));
    }
}
