//! The Prometheus text exposition format (version 0.0.4) of the counters.

use std::fmt::Write;

use super::{MetricsSnapshot, message_names};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders `snapshot` and the number of subscribed names per topic
/// (`subscriptions`, such as `("EVENT", 12)`) as Prometheus text.
pub fn render(snapshot: &MetricsSnapshot, subscriptions: &[(&str, usize)]) -> String {
    let mut out = String::with_capacity(4096);

    family(
        &mut out,
        "deepstream_connections_open",
        "gauge",
        "Client connections open now.",
    );
    sample(
        &mut out,
        "deepstream_connections_open",
        &[],
        snapshot.connections_open,
    );

    family(
        &mut out,
        "deepstream_connections_total",
        "counter",
        "Client connections accepted since the server started.",
    );
    sample(
        &mut out,
        "deepstream_connections_total",
        &[],
        snapshot.connections_total,
    );

    family(
        &mut out,
        "deepstream_logins_total",
        "counter",
        "Login attempts by endpoint and result.",
    );
    for (endpoint, (allowed, declined)) in &snapshot.logins {
        for (result, count) in [("allowed", *allowed), ("declined", *declined)] {
            sample(
                &mut out,
                "deepstream_logins_total",
                &[("endpoint", endpoint.name()), ("result", result)],
                count,
            );
        }
    }

    for (name, help, counts) in [
        (
            "deepstream_messages_received_total",
            "Messages received from clients by topic and action.",
            &snapshot.received,
        ),
        (
            "deepstream_messages_sent_total",
            "Messages written to clients by topic and action.",
            &snapshot.sent,
        ),
    ] {
        family(&mut out, name, "counter", help);
        for ((topic, action), count) in counts {
            let (topic, action) = message_names(*topic, *action);
            sample(
                &mut out,
                name,
                &[("topic", &topic), ("action", &action)],
                *count,
            );
        }
    }

    family(
        &mut out,
        "deepstream_errors_total",
        "counter",
        "Error messages sent to clients, and refused HTTP API items, by deepstream event name.",
    );
    for (event, count) in &snapshot.errors {
        sample(
            &mut out,
            "deepstream_errors_total",
            &[("event", event)],
            *count,
        );
    }

    family(
        &mut out,
        "deepstream_subscriptions",
        "gauge",
        "Names with at least one subscriber, by topic.",
    );
    for (topic, count) in subscriptions {
        sample(
            &mut out,
            "deepstream_subscriptions",
            &[("topic", topic)],
            *count as u64,
        );
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (index, (label, value)) in labels.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label(out, value);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Escapes a label value as the exposition format requires: backslash,
/// double quote and line feed.
fn escape_label(out: &mut String, value: &str) {
    for character in value.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use deepstream_protocol::{EventAction, Topic};

    use super::super::{Endpoint, Metrics, Monitoring};
    use super::*;

    #[test]
    fn render_lists_every_family() {
        let metrics = Metrics::new();
        metrics.on_connection_opened();
        metrics.on_login(true, Endpoint::WebSocket);
        metrics.on_message_received(Topic::Event as i32, EventAction::Emit as i32);
        metrics.on_message_sent(Topic::Event as i32, EventAction::Emit as i32);
        metrics.on_error_log("MESSAGE_DENIED");
        let text = render(&metrics.snapshot(), &[("EVENT", 3)]);

        assert!(text.contains("# TYPE deepstream_connections_open gauge\n"));
        assert!(text.contains("deepstream_connections_open 1\n"));
        assert!(text.contains("deepstream_connections_total 1\n"));
        assert!(
            text.contains("deepstream_logins_total{endpoint=\"websocket\",result=\"allowed\"} 1\n")
        );
        assert!(
            text.contains(
                "deepstream_messages_received_total{topic=\"EVENT\",action=\"EMIT\"} 1\n"
            )
        );
        assert!(
            text.contains("deepstream_messages_sent_total{topic=\"EVENT\",action=\"EMIT\"} 1\n")
        );
        assert!(text.contains("deepstream_errors_total{event=\"MESSAGE_DENIED\"} 1\n"));
        assert!(text.contains("deepstream_subscriptions{topic=\"EVENT\"} 3\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::new();
        metrics.on_error_log("a\"b\\c\nd");
        let text = render(&metrics.snapshot(), &[]);
        assert!(
            text.contains("deepstream_errors_total{event=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{text}"
        );
    }
}
