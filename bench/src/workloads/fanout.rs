//! Event fan-out: one publisher, many subscribers of one event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use deepstream_protocol::{EventAction, EventMessage, TopicMessage};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::Notify;

use crate::conn::{self, Dialect, FrameHandler, Readers, STEP_TIMEOUT, Ws, now_micros};
use crate::error::BenchError;
use crate::stats::{LatencySummary, rate};

const EVENT_NAME: &str = "bench/fanout";

/// Parameters of the fan-out workload.
#[derive(Debug, Clone, Copy)]
pub struct FanoutParams {
    /// Subscriber connections.
    pub subscribers: usize,
    /// Events the publisher emits.
    pub messages: usize,
    /// Events the publisher may have ahead of the slowest delivery, so a slow
    /// server builds a bounded backlog instead of an unbounded one.
    pub window: usize,
    /// Reader tasks that share the subscriber connections.
    pub reader_tasks: usize,
    /// Maximum time for publishing and delivery.
    pub deadline: Duration,
}

/// The measurements of the fan-out workload.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutResult {
    /// Subscriber connections.
    pub subscribers: usize,
    /// Events emitted.
    pub messages_sent: u64,
    /// Events received by all subscribers together.
    pub delivered: u64,
    /// `messages_sent * subscribers`.
    pub expected: u64,
    /// Seconds from the first emit to the last delivery.
    pub seconds: f64,
    /// `delivered / seconds`.
    pub deliveries_per_second: f64,
    /// From the emit to the receipt by one subscriber.
    pub latency: Option<LatencySummary>,
}

struct Progress {
    delivered: AtomicU64,
    last_delivery_us: AtomicU64,
    wake: Notify,
}

struct Receiver {
    progress: Arc<Progress>,
    latencies: Vec<u64>,
}

impl FrameHandler for Receiver {
    fn on_frame(&mut self, frame: Bytes) {
        let Ok(TopicMessage::Event(event)) = TopicMessage::decode_frame(frame) else {
            return;
        };
        if event.action != EventAction::Emit as i32 {
            return;
        }
        let Some(sent_us) = parse_micros(&event.data) else {
            return;
        };
        let now = now_micros();
        self.latencies.push(now.saturating_sub(sent_us));
        self.progress
            .last_delivery_us
            .fetch_max(now, Ordering::Relaxed);
        self.progress.delivered.fetch_add(1, Ordering::Release);
        self.progress.wake.notify_one();
    }
}

/// Parses the JSON number that a sender put into a message's data.
fn parse_micros(data: &[u8]) -> Option<u64> {
    std::str::from_utf8(data).ok()?.trim().parse().ok()
}

fn emit(sent_us: u64) -> TopicMessage {
    TopicMessage::Event(EventMessage {
        action: EventAction::Emit.into(),
        name: EVENT_NAME.to_owned(),
        data: Bytes::from(sent_us.to_string()),
        ..Default::default()
    })
}

async fn subscribe(mut ws: Ws) -> Result<Ws, BenchError> {
    let request = TopicMessage::Event(EventMessage {
        action: EventAction::Subscribe.into(),
        names: vec![EVENT_NAME.to_owned()],
        correlation_id: "fanout".to_owned(),
        ..Default::default()
    });
    conn::send(&mut ws, &request).await?;
    conn::wait_for(&mut ws, "EVENT SUBSCRIBE acknowledgement", STEP_TIMEOUT, |m| {
        matches!(m, TopicMessage::Event(e) if e.is_ack && e.action == EventAction::Subscribe as i32)
    })
    .await?;
    Ok(ws)
}

/// Runs the fan-out workload against `url`.
pub async fn run(
    url: &str,
    dialect: Dialect,
    params: FanoutParams,
) -> Result<FanoutResult, BenchError> {
    let subscribers = conn::open_many(url, dialect, params.subscribers, |ws| async move {
        match dialect {
            Dialect::Deepstream => subscribe(ws).await,
            Dialect::Broadcast => Ok(ws),
        }
    })
    .await?;
    let mut publisher = conn::connect(url, dialect).await?;

    let progress = Arc::new(Progress {
        delivered: AtomicU64::new(0),
        last_delivery_us: AtomicU64::new(0),
        wake: Notify::new(),
    });
    let (sinks, streams): (Vec<_>, Vec<_>) = subscribers.into_iter().map(|ws| ws.split()).unzip();
    let readers = Readers::spawn(streams, params.reader_tasks, || Receiver {
        progress: Arc::clone(&progress),
        latencies: Vec::new(),
    });

    let fan = params.subscribers as u64;
    let expected = params.messages as u64 * fan;
    let start_us = now_micros();
    let deadline = tokio::time::Instant::now() + params.deadline;
    let mut sent = 0u64;
    for index in 0..params.messages as u64 {
        let allowed_backlog = index.saturating_sub(params.window as u64) * fan;
        if !wait_until(&progress, deadline, |d| d >= allowed_backlog).await {
            break;
        }
        conn::send(&mut publisher, &emit(now_micros())).await?;
        sent += 1;
    }
    let target = sent * fan;
    wait_until(&progress, deadline, |d| d >= target).await;

    let handlers = readers.finish().await;
    drop(sinks);
    let delivered = progress.delivered.load(Ordering::Acquire);
    let end_us = progress
        .last_delivery_us
        .load(Ordering::Relaxed)
        .max(start_us);
    let seconds = (end_us - start_us) as f64 / 1e6;
    let latencies = handlers.into_iter().flat_map(|h| h.latencies).collect();
    Ok(FanoutResult {
        subscribers: params.subscribers,
        messages_sent: sent,
        delivered,
        expected,
        seconds,
        deliveries_per_second: rate(delivered, seconds),
        latency: LatencySummary::from_samples(latencies),
    })
}

/// Waits until the delivered count satisfies `done` or the deadline passes.
/// Returns whether `done` held.
async fn wait_until(
    progress: &Progress,
    deadline: tokio::time::Instant,
    done: impl Fn(u64) -> bool,
) -> bool {
    loop {
        if done(progress.delivered.load(Ordering::Acquire)) {
            return true;
        }
        if tokio::time::timeout_at(deadline, progress.wake.notified())
            .await
            .is_err()
        {
            return done(progress.delivered.load(Ordering::Acquire));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_micros_reads_a_json_number() {
        assert_eq!(parse_micros(b"12345"), Some(12345));
        assert_eq!(parse_micros(b" 7 "), Some(7));
    }

    #[test]
    fn parse_micros_rejects_other_data() {
        assert_eq!(parse_micros(b"\"12\""), None);
        assert_eq!(parse_micros(b"-1"), None);
        assert_eq!(parse_micros(&[0xff, 0x31]), None);
        assert_eq!(parse_micros(b""), None);
    }

    #[test]
    fn emit_carries_the_timestamp() {
        let frame = emit(42).encode_frame();
        let Ok(TopicMessage::Event(event)) = TopicMessage::decode_frame(frame) else {
            panic!("emit did not decode as an event");
        };
        assert_eq!(event.name, EVENT_NAME);
        assert_eq!(parse_micros(&event.data), Some(42));
    }
}
