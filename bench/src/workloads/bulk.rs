//! Bulk requests: one subscription to many records, then one notify of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deepstream_protocol::{RecordAction, RecordMessage, TopicMessage};
use futures_util::StreamExt;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{self, Ws};
use crate::error::BenchError;

/// The measurements of the bulk workload.
#[derive(Debug, Clone, Serialize)]
pub struct BulkResult {
    /// Records named in each request.
    pub records: usize,
    /// Seconds from sending `SUBSCRIBECREATEANDREAD` to its acknowledgement.
    pub subscribe_ack_seconds: f64,
    /// Seconds from sending it until every record's `READ_RESPONSE` arrived.
    pub subscribe_all_read_seconds: f64,
    /// Seconds from sending `NOTIFY` for the same records, from a second
    /// connection, to its acknowledgement.
    pub notify_ack_seconds: Option<f64>,
    /// `UPDATE` messages the subscriber had received when the notify was acknowledged.
    pub notify_updates_seen: u64,
    /// The error of the notify, when it failed.
    pub notify_error: Option<String>,
}

fn bulk_names(records: usize) -> Vec<String> {
    (0..records).map(|i| format!("bench/bulk/{i}")).collect()
}

/// Subscribes one client to `records` new records in one request, then
/// notifies the server of all of them from a second client.
pub async fn run(url: &str, records: usize, timeout: Duration) -> Result<BulkResult, BenchError> {
    let names = bulk_names(records);
    let mut subscriber = conn::connect_session(url).await?;
    let mut notifier = conn::connect_session(url).await?;

    let (ack, all_read) = subscribe(&mut subscriber, names.clone(), timeout).await?;

    // The subscriber receives one UPDATE per record while the notify runs,
    // so a task reads them to keep the server's queue for it short.
    let (_sink, mut stream) = subscriber.split();
    let updates = Arc::new(AtomicU64::new(0));
    let counter = tokio::spawn({
        let updates = Arc::clone(&updates);
        async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Binary(frame) = message else {
                    continue;
                };
                if matches!(TopicMessage::decode_frame(frame),
                    Ok(TopicMessage::Record(m)) if m.action == RecordAction::Update as i32)
                {
                    updates.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    let notified = notify(&mut notifier, names, timeout).await;
    let updates_seen = updates.load(Ordering::Relaxed);
    counter.abort();

    let (notify_ack_seconds, notify_error) = match notified {
        Ok(seconds) => (Some(seconds), None),
        Err(error) => (None, Some(crate::error::error_chain(&error))),
    };
    Ok(BulkResult {
        records,
        subscribe_ack_seconds: ack,
        subscribe_all_read_seconds: all_read,
        notify_ack_seconds,
        notify_updates_seen: updates_seen,
        notify_error,
    })
}

/// Returns the seconds until the acknowledgement and until the last read response.
async fn subscribe(
    ws: &mut Ws,
    names: Vec<String>,
    timeout: Duration,
) -> Result<(f64, f64), BenchError> {
    let count = names.len();
    let request = TopicMessage::Record(RecordMessage {
        action: RecordAction::Subscribecreateandread.into(),
        names,
        correlation_id: "bulk".to_owned(),
        ..Default::default()
    });
    let start = Instant::now();
    conn::send(ws, &request).await?;
    let deadline = start + timeout;
    let mut ack = None;
    let mut read = 0;
    while ack.is_none() || read < count {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let message = conn::next_message(ws, "bulk subscription replies", remaining).await?;
        match message {
            TopicMessage::Record(m)
                if m.is_ack && m.action == RecordAction::Subscribecreateandread as i32 =>
            {
                ack = Some(start.elapsed().as_secs_f64());
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
    let all_read = start.elapsed().as_secs_f64();
    Ok((ack.unwrap_or(all_read), all_read))
}

async fn notify(ws: &mut Ws, names: Vec<String>, timeout: Duration) -> Result<f64, BenchError> {
    let request = TopicMessage::Record(RecordMessage {
        action: RecordAction::Notify.into(),
        names,
        correlation_id: "notify".to_owned(),
        ..Default::default()
    });
    let start = Instant::now();
    conn::send(ws, &request).await?;
    let reply = conn::wait_for(ws, "NOTIFY acknowledgement", timeout, |m| {
        matches!(m, TopicMessage::Record(r) if r.action == RecordAction::Notify as i32
            || r.action == RecordAction::RecordNotifyError as i32)
    })
    .await?;
    match reply {
        TopicMessage::Record(r) if r.is_ack => Ok(start.elapsed().as_secs_f64()),
        other => Err(BenchError::Unexpected {
            expected: "NOTIFY acknowledgement",
            received: format!("{other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_names_are_distinct() {
        let names = bulk_names(3);
        assert_eq!(names, ["bench/bulk/0", "bench/bulk/1", "bench/bulk/2"]);
    }
}
