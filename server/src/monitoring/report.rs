//! deepstream's statistics report: the counts since the previous report, in
//! the JSON shape of deepstream 7's `log` and `http` monitoring types.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use super::{MetricsSnapshot, message_names};

/// The state between two reports: the counters at the previous one.
#[derive(Debug)]
pub struct StatsReport {
    previous: Mutex<(MetricsSnapshot, u64)>,
}

impl StatsReport {
    /// Starts counting at `start` (a snapshot) and `now_millis` (Unix time in ms).
    pub fn new(start: MetricsSnapshot, now_millis: u64) -> StatsReport {
        StatsReport {
            previous: Mutex::new((start, now_millis)),
        }
    }

    /// Returns the report for the period since the previous call and starts
    /// a new period. `subscriptions` is the number of subscribed names per
    /// topic, reported as `stateMetrics`.
    pub fn take(
        &self,
        current: &MetricsSnapshot,
        subscriptions: &[(&str, usize)],
        now_millis: u64,
    ) -> Value {
        let (previous, from) = match self.previous.lock() {
            Ok(mut guard) => std::mem::replace(&mut *guard, (current.clone(), now_millis)),
            // A panic while the lock was held left an older snapshot: report from the start.
            Err(_) => (MetricsSnapshot::default(), now_millis),
        };

        let mut logins = Map::new();
        for (endpoint, (allowed, declined)) in &current.logins {
            let (allowed_before, declined_before) =
                previous.logins.get(endpoint).copied().unwrap_or_default();
            let allowed = allowed.saturating_sub(allowed_before);
            let declined = declined.saturating_sub(declined_before);
            if allowed > 0 || declined > 0 {
                logins.insert(
                    endpoint.name().to_owned(),
                    json!({ "allowed": allowed, "declined": declined }),
                );
            }
        }

        let mut errors = Map::new();
        for (event, count) in &current.errors {
            let delta = count.saturating_sub(previous.errors.get(event).copied().unwrap_or(0));
            if delta > 0 {
                errors.insert(event.clone(), json!(delta));
            }
        }

        let state_metrics: Map<String, Value> = subscriptions
            .iter()
            .map(|(topic, count)| ((*topic).to_owned(), json!(count)))
            .collect();

        json!({
            "from": from,
            "to": now_millis,
            "clusterSize": 1,
            "stateMetrics": state_metrics,
            "errors": errors,
            "received": message_deltas(&current.received, &previous.received),
            "send": message_deltas(&current.sent, &previous.sent),
            "logins": logins,
        })
    }
}

/// Groups the growth of each message counter by topic name and action name.
fn message_deltas(
    current: &BTreeMap<(i32, i32), u64>,
    previous: &BTreeMap<(i32, i32), u64>,
) -> Value {
    let mut topics = Map::new();
    for (key, count) in current {
        let delta = count.saturating_sub(previous.get(key).copied().unwrap_or(0));
        if delta == 0 {
            continue;
        }
        let (topic, action) = message_names(key.0, key.1);
        let actions = topics
            .entry(topic)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(actions) = actions {
            actions.insert(action, json!(delta));
        }
    }
    Value::Object(topics)
}

#[cfg(test)]
mod tests {
    use deepstream_protocol::{RecordAction, Topic};

    use super::super::{Endpoint, Metrics, Monitoring};
    use super::*;

    #[test]
    fn report_counts_since_previous() {
        let metrics = Metrics::new();
        let report = StatsReport::new(metrics.snapshot(), 1000);
        let update = (Topic::Record as i32, RecordAction::Update as i32);
        metrics.on_message_received(update.0, update.1);
        metrics.on_message_received(update.0, update.1);
        metrics.on_login(true, Endpoint::WebSocket);

        let first = report.take(&metrics.snapshot(), &[("RECORD", 4)], 2000);
        assert_eq!(first["from"], 1000);
        assert_eq!(first["to"], 2000);
        assert_eq!(first["received"]["RECORD"]["UPDATE"], 2);
        assert_eq!(first["logins"]["websocket"]["allowed"], 1);
        assert_eq!(first["stateMetrics"]["RECORD"], 4);

        metrics.on_message_received(update.0, update.1);
        metrics.on_error_log("RECORD_LOAD_ERROR");
        let second = report.take(&metrics.snapshot(), &[], 3000);
        assert_eq!(second["from"], 2000);
        assert_eq!(second["received"]["RECORD"]["UPDATE"], 1);
        assert_eq!(second["errors"]["RECORD_LOAD_ERROR"], 1);
        assert_eq!(second["logins"], json!({}), "no login in the second period");
        assert_eq!(second["send"], json!({}));
    }
}
