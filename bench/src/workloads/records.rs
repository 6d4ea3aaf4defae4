//! Record updates: writers update records that many clients subscribe to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use deepstream_protocol::{RecordAction, RecordMessage, TopicMessage};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::conn::{self, Dialect, FrameHandler, Readers, STEP_TIMEOUT, Ws, now_micros};
use crate::error::BenchError;
use crate::stats::{LatencySummary, rate};

/// The records that the writers update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// Each writer has its own record.
    Distinct,
    /// All writers write one record.
    Shared,
}

/// Parameters of the record update workload.
#[derive(Debug, Clone, Copy)]
pub struct RecordParams {
    /// Writer connections; each writes from its own task.
    pub writers: usize,
    /// Connections subscribed to every written record.
    pub subscribers: usize,
    /// Updates each writer sends.
    pub updates_per_writer: usize,
    /// Updates a writer may have sent that not every subscriber has yet.
    pub window: usize,
    /// Reader tasks that share the subscriber connections.
    pub reader_tasks: usize,
    /// Maximum time for the updates.
    pub deadline: Duration,
}

/// The measurements of the record update workload.
#[derive(Debug, Clone, Serialize)]
pub struct RecordResult {
    /// Distinct or shared records.
    pub sharing: Sharing,
    /// Writer connections.
    pub writers: usize,
    /// Subscriber connections.
    pub subscribers: usize,
    /// Updates sent by all writers.
    pub updates_sent: u64,
    /// Updates that reached every subscriber.
    pub updates_completed: u64,
    /// Seconds from the first update to the last completion.
    pub seconds: f64,
    /// `updates_completed / seconds`.
    pub updates_per_second: f64,
    /// From sending an update until the last subscriber received it.
    pub latency: Option<LatencySummary>,
}

/// The data of each update: who wrote it, its sequence number and when.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Stamp {
    w: usize,
    s: u64,
    t: u64,
}

struct Tracker {
    subscribers: u32,
    /// Receipts so far of each update in flight, by writer and sequence number.
    pending: Mutex<HashMap<(usize, u64), u32>>,
    completed: Vec<AtomicU64>,
    wakes: Vec<Notify>,
    last_completion_us: AtomicU64,
}

impl Tracker {
    /// Counts one receipt and returns the update's latency once every
    /// subscriber has it.
    fn receive(&self, stamp: &Stamp) -> Option<u64> {
        let complete = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let receipts = pending.entry((stamp.w, stamp.s)).or_insert(0);
            *receipts += 1;
            let complete = *receipts >= self.subscribers;
            if complete {
                pending.remove(&(stamp.w, stamp.s));
            }
            complete
        };
        if !complete || stamp.w >= self.completed.len() {
            return None;
        }
        let now = now_micros();
        self.last_completion_us.fetch_max(now, Ordering::Relaxed);
        self.completed[stamp.w].fetch_add(1, Ordering::Release);
        self.wakes[stamp.w].notify_one();
        Some(now.saturating_sub(stamp.t))
    }
}

struct Receiver {
    tracker: Arc<Tracker>,
    latencies: Vec<u64>,
}

impl FrameHandler for Receiver {
    fn on_frame(&mut self, frame: Bytes) {
        let Ok(TopicMessage::Record(record)) = TopicMessage::decode_frame(frame) else {
            return;
        };
        let is_update = record.action == RecordAction::Update as i32
            || record.action == RecordAction::Createandupdate as i32;
        if !is_update {
            return;
        }
        let Ok(stamp) = serde_json::from_slice::<Stamp>(&record.data) else {
            return;
        };
        if let Some(latency) = self.tracker.receive(&stamp) {
            self.latencies.push(latency);
        }
    }
}

fn record_names(sharing: Sharing, writers: usize) -> Vec<String> {
    match sharing {
        Sharing::Distinct => (0..writers).map(|w| format!("bench/record/{w}")).collect(),
        Sharing::Shared => vec!["bench/record/shared".to_owned()],
    }
}

async fn subscribe(mut ws: Ws, names: Vec<String>) -> Result<Ws, BenchError> {
    let count = names.len();
    let request = TopicMessage::Record(RecordMessage {
        action: RecordAction::Subscribecreateandread.into(),
        names,
        correlation_id: "records".to_owned(),
        ..Default::default()
    });
    conn::send(&mut ws, &request).await?;
    let mut acknowledged = false;
    let mut read = 0;
    while !acknowledged || read < count {
        let message =
            conn::next_message(&mut ws, "record subscription replies", STEP_TIMEOUT).await?;
        match message {
            TopicMessage::Record(m) if m.action == RecordAction::Subscribecreateandread as i32 => {
                acknowledged |= m.is_ack;
            }
            TopicMessage::Record(m) if m.action == RecordAction::ReadResponse as i32 => read += 1,
            TopicMessage::Record(m) if m.action >= 100 => {
                return Err(BenchError::Unexpected {
                    expected: "READ_RESPONSE",
                    received: format!("{m:?}"),
                });
            }
            _ => {}
        }
    }
    Ok(ws)
}

fn update(name: &str, stamp: &Stamp) -> TopicMessage {
    // `version = -1` makes both servers to apply the write as the next version,
    // as the official client's `setData` does, so concurrent writers of one
    // record do not conflict.
    TopicMessage::Record(RecordMessage {
        action: RecordAction::Createandupdate.into(),
        name: name.to_owned(),
        version: Some(-1),
        data: Bytes::from(serde_json::to_vec(stamp).unwrap_or_default()),
        ..Default::default()
    })
}

/// Runs the record update workload against a deepstream server at `url`.
pub async fn run(
    url: &str,
    sharing: Sharing,
    params: RecordParams,
) -> Result<RecordResult, BenchError> {
    let names = record_names(sharing, params.writers);
    let subscribers = conn::open_many(url, Dialect::Deepstream, params.subscribers, |ws| {
        subscribe(ws, names.clone())
    })
    .await?;
    let writers = conn::open_many(url, Dialect::Deepstream, params.writers, |ws| async {
        Ok(ws)
    })
    .await?;

    let tracker = Arc::new(Tracker {
        subscribers: u32::try_from(params.subscribers).unwrap_or(u32::MAX),
        pending: Mutex::new(HashMap::new()),
        completed: (0..params.writers).map(|_| AtomicU64::new(0)).collect(),
        wakes: (0..params.writers).map(|_| Notify::new()).collect(),
        last_completion_us: AtomicU64::new(0),
    });
    let (sinks, streams): (Vec<_>, Vec<_>) = subscribers.into_iter().map(|ws| ws.split()).unzip();
    let readers = Readers::spawn(streams, params.reader_tasks, || Receiver {
        tracker: Arc::clone(&tracker),
        latencies: Vec::new(),
    });

    let start_us = now_micros();
    let deadline = tokio::time::Instant::now() + params.deadline;
    let mut tasks = Vec::new();
    for (writer, ws) in writers.into_iter().enumerate() {
        let name = names[writer % names.len()].clone();
        let tracker = Arc::clone(&tracker);
        tasks.push(tokio::spawn(write_updates(
            ws, writer, name, tracker, params, deadline,
        )));
    }
    let mut updates_sent = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(sent)) => updates_sent += sent,
            Ok(Err(error)) => first_error = first_error.or(Some(error)),
            Err(error) => tracing::error!(%error, "a writer task failed"),
        }
    }
    let handlers = readers.finish().await;
    drop(sinks);
    if let Some(error) = first_error {
        return Err(error);
    }

    let updates_completed = tracker
        .completed
        .iter()
        .map(|c| c.load(Ordering::Acquire))
        .sum();
    let end_us = tracker
        .last_completion_us
        .load(Ordering::Relaxed)
        .max(start_us);
    let seconds = (end_us - start_us) as f64 / 1e6;
    let latencies = handlers.into_iter().flat_map(|h| h.latencies).collect();
    Ok(RecordResult {
        sharing,
        writers: params.writers,
        subscribers: params.subscribers,
        updates_sent,
        updates_completed,
        seconds,
        updates_per_second: rate(updates_completed, seconds),
        latency: LatencySummary::from_samples(latencies),
    })
}

/// Sends one writer's updates, keeping at most `window` of them incomplete,
/// then waits for the last ones. Returns how many it sent.
async fn write_updates(
    mut ws: Ws,
    writer: usize,
    name: String,
    tracker: Arc<Tracker>,
    params: RecordParams,
    deadline: tokio::time::Instant,
) -> Result<u64, BenchError> {
    let completed = &tracker.completed[writer];
    let wake = &tracker.wakes[writer];
    let mut sent = 0u64;
    for sequence in 0..params.updates_per_writer as u64 {
        let allowed = sequence.saturating_sub(params.window as u64);
        if !wait_for_completed(completed, wake, deadline, allowed).await {
            break;
        }
        let stamp = Stamp {
            w: writer,
            s: sequence,
            t: now_micros(),
        };
        conn::send(&mut ws, &update(&name, &stamp)).await?;
        sent += 1;
    }
    wait_for_completed(completed, wake, deadline, sent).await;
    Ok(sent)
}

async fn wait_for_completed(
    completed: &AtomicU64,
    wake: &Notify,
    deadline: tokio::time::Instant,
    target: u64,
) -> bool {
    loop {
        if completed.load(Ordering::Acquire) >= target {
            return true;
        }
        if tokio::time::timeout_at(deadline, wake.notified())
            .await
            .is_err()
        {
            return completed.load(Ordering::Acquire) >= target;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(subscribers: u32, writers: usize) -> Tracker {
        Tracker {
            subscribers,
            pending: Mutex::new(HashMap::new()),
            completed: (0..writers).map(|_| AtomicU64::new(0)).collect(),
            wakes: (0..writers).map(|_| Notify::new()).collect(),
            last_completion_us: AtomicU64::new(0),
        }
    }

    #[test]
    fn update_completes_at_the_last_subscriber() {
        let tracker = tracker(3, 1);
        let stamp = Stamp { w: 0, s: 5, t: 0 };
        assert_eq!(tracker.receive(&stamp), None);
        assert_eq!(tracker.receive(&stamp), None);
        assert!(tracker.receive(&stamp).is_some());
        assert_eq!(tracker.completed[0].load(Ordering::Acquire), 1);
        assert!(tracker.pending.lock().unwrap().is_empty());
    }

    #[test]
    fn updates_are_counted_separately() {
        let tracker = tracker(2, 2);
        assert_eq!(tracker.receive(&Stamp { w: 0, s: 0, t: 0 }), None);
        assert_eq!(tracker.receive(&Stamp { w: 1, s: 0, t: 0 }), None);
        assert_eq!(tracker.receive(&Stamp { w: 0, s: 1, t: 0 }), None);
        assert!(tracker.receive(&Stamp { w: 1, s: 0, t: 0 }).is_some());
        assert_eq!(tracker.completed[0].load(Ordering::Acquire), 0);
        assert_eq!(tracker.completed[1].load(Ordering::Acquire), 1);
    }

    #[test]
    fn unknown_writer_is_ignored() {
        let tracker = tracker(1, 1);
        assert_eq!(tracker.receive(&Stamp { w: 9, s: 0, t: 0 }), None);
        assert_eq!(tracker.completed[0].load(Ordering::Acquire), 0);
    }

    #[test]
    fn update_frame_carries_the_stamp() {
        let stamp = Stamp { w: 2, s: 3, t: 4 };
        let Ok(TopicMessage::Record(record)) =
            TopicMessage::decode_frame(update("bench/record/2", &stamp).encode_frame())
        else {
            panic!("update did not decode as a record message");
        };
        assert_eq!(record.version, Some(-1));
        assert_eq!(
            serde_json::from_slice::<Stamp>(&record.data).unwrap(),
            stamp
        );
    }

    #[test]
    fn shared_workload_uses_one_record() {
        assert_eq!(record_names(Sharing::Shared, 4).len(), 1);
        assert_eq!(record_names(Sharing::Distinct, 4).len(), 4);
    }
}
