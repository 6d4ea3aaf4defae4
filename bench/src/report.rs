//! The results table (Markdown), the chart (SVG) and the machine description.

use std::fmt::Write as _;

use serde::Serialize;

use crate::suite::{SuiteParams, SuiteResult};
use crate::workloads::fanout::FanoutResult;

/// The machine a run was made on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Processors available to the benchmark.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// `MemTotal` from /proc/meminfo, in MiB.
    pub memory_mib: u64,
    /// The soft open-files limit of the benchmark process after raising it.
    pub open_files_limit: u64,
}

impl Machine {
    /// Reads the machine's description from /proc.
    pub fn read(open_files_limit: u64) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: proc_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".to_owned()),
            memory_mib: proc_field(&meminfo, "MemTotal")
                .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib / 1024),
            open_files_limit,
        }
    }
}

fn proc_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == key).then(|| value.trim().to_owned())
    })
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The machine.
    pub machine: Machine,
    /// The workload parameters, the same for every target.
    pub params: SuiteParams,
    /// Our server.
    pub ours: SuiteResult,
    /// The Node.js server, unless it was skipped.
    pub node: Option<SuiteResult>,
    /// Fan-out through the bare broadcast server.
    pub ceiling: Option<FanoutResult>,
    /// The error of the ceiling run, when it failed.
    pub ceiling_error: Option<String>,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The workload.
    pub workload: String,
    /// The measured quantity, with its unit.
    pub metric: &'static str,
    /// Whether a larger value is better.
    pub higher_is_better: bool,
    /// Our server's value.
    pub ours: Option<f64>,
    /// The Node.js server's value.
    pub node: Option<f64>,
    /// The broadcast server's value, for fan-out rows.
    pub ceiling: Option<f64>,
}

impl Row {
    /// Returns how many times better ours is than Node.js (above 1 means ours is better).
    pub fn ratio(&self) -> Option<f64> {
        let (ours, node) = (self.ours?, self.node?);
        let ratio = if self.higher_is_better {
            ours / node
        } else {
            node / ours
        };
        ratio.is_finite().then_some(ratio)
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Builds the rows of the table from the results.
pub fn rows(comparison: &Comparison) -> Vec<Row> {
    let ours = &comparison.ours;
    let node = comparison.node.as_ref();
    let params = &comparison.params;
    let mut rows = Vec::new();
    let mut push = |workload: String,
                    metric: &'static str,
                    higher_is_better: bool,
                    pick: &dyn Fn(&SuiteResult) -> Option<f64>,
                    ceiling: Option<f64>| {
        rows.push(Row {
            workload,
            metric,
            higher_is_better,
            ours: pick(ours),
            node: node.and_then(pick),
            ceiling,
        });
    };

    let fanout = format!(
        "event fan-out, 1 → {} subscribers",
        params.fanout_subscribers
    );
    let ceiling = comparison.ceiling.as_ref();
    push(
        fanout.clone(),
        "deliveries/s",
        true,
        &|s| s.fanout.as_ref().map(|f| f.deliveries_per_second),
        ceiling.map(|c| c.deliveries_per_second),
    );
    push(
        fanout.clone(),
        "latency p50, ms",
        false,
        &|s| s.fanout.as_ref()?.latency.map(|l| ms(l.p50_us)),
        ceiling.and_then(|c| c.latency).map(|l| ms(l.p50_us)),
    );
    push(
        fanout,
        "latency p99, ms",
        false,
        &|s| s.fanout.as_ref()?.latency.map(|l| ms(l.p99_us)),
        ceiling.and_then(|c| c.latency).map(|l| ms(l.p99_us)),
    );

    let distinct = format!(
        "record updates, {} writers on distinct records, {} subscribers",
        params.record_writers, params.record_subscribers
    );
    push(
        distinct.clone(),
        "updates/s",
        true,
        &|s| s.records_distinct.as_ref().map(|r| r.updates_per_second),
        None,
    );
    push(
        distinct.clone(),
        "latency p50, ms",
        false,
        &|s| s.records_distinct.as_ref()?.latency.map(|l| ms(l.p50_us)),
        None,
    );
    push(
        distinct,
        "latency p99, ms",
        false,
        &|s| s.records_distinct.as_ref()?.latency.map(|l| ms(l.p99_us)),
        None,
    );

    let shared = format!(
        "record updates, {} writers on one record, {} subscribers",
        params.record_writers, params.record_subscribers
    );
    push(
        shared.clone(),
        "updates/s",
        true,
        &|s| s.records_shared.as_ref().map(|r| r.updates_per_second),
        None,
    );
    push(
        shared.clone(),
        "latency p50, ms",
        false,
        &|s| s.records_shared.as_ref()?.latency.map(|l| ms(l.p50_us)),
        None,
    );
    push(
        shared,
        "latency p99, ms",
        false,
        &|s| s.records_shared.as_ref()?.latency.map(|l| ms(l.p99_us)),
        None,
    );

    let bulk = format!("bulk subscription of {} records", params.bulk_records);
    push(
        bulk.clone(),
        "until acknowledged, s",
        false,
        &|s| s.bulk.as_ref().map(|b| b.subscribe_ack_seconds),
        None,
    );
    push(
        bulk,
        "until every record read, s",
        false,
        &|s| s.bulk.as_ref().map(|b| b.subscribe_all_read_seconds),
        None,
    );
    push(
        format!("notify of {} records", params.bulk_records),
        "until acknowledged, s",
        false,
        &|s| s.bulk.as_ref()?.notify_ack_seconds,
        None,
    );

    let rpc = format!(
        "RPC, {} callers, {} providers",
        params.rpc_callers, params.rpc_providers
    );
    push(
        rpc.clone(),
        "round trips/s",
        true,
        &|s| s.rpc.as_ref().map(|r| r.round_trips_per_second),
        None,
    );
    push(
        rpc.clone(),
        "latency p50, ms",
        false,
        &|s| s.rpc.as_ref()?.latency.map(|l| ms(l.p50_us)),
        None,
    );
    push(
        rpc,
        "latency p99, ms",
        false,
        &|s| s.rpc.as_ref()?.latency.map(|l| ms(l.p99_us)),
        None,
    );

    for (index, &connections) in params.memory_steps.iter().enumerate() {
        push(
            format!("memory, {connections} idle connections"),
            "KiB per connection",
            false,
            &|s| {
                s.memory
                    .as_ref()?
                    .points
                    .get(index)
                    .map(|p| p.kib_per_connection)
            },
            None,
        );
    }
    rows
}

/// Formats a value with a precision that suits its size.
fn number(value: Option<f64>) -> String {
    match value {
        None => "–".to_owned(),
        Some(v) if v.abs() >= 1000.0 => group_thousands(v.round() as i64),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn group_thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(digit);
    }
    if value < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"))
}

/// Renders the results as Markdown: the machine, the table and any failures.
pub fn markdown(comparison: &Comparison) -> String {
    let machine = &comparison.machine;
    let mut text = String::new();
    let _ = writeln!(text, "# deepstream-bench results\n");
    let _ = writeln!(
        text,
        "Machine: {} CPUs ({}), {} MiB memory; open-files limit of the benchmark: {}.\n",
        machine.cpus, machine.cpu_model, machine.memory_mib, machine.open_files_limit
    );
    let _ = writeln!(
        text,
        "\"ours vs Node.js\" is how many times better our server did: Node.js ÷ ours for \
         times, latencies and memory, ours ÷ Node.js for rates. Above 1× our server is better. \
         The ceiling is a bare tokio-tungstenite broadcast server running the same fan-out.\n"
    );
    let _ = writeln!(
        text,
        "| workload | metric | ours | Node.js | ours vs Node.js | ceiling |"
    );
    let _ = writeln!(text, "|---|---|---:|---:|---:|---:|");
    for row in rows(comparison) {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} |",
            row.workload,
            row.metric,
            number(row.ours),
            number(row.node),
            ratio_text(row.ratio()),
            number(row.ceiling)
        );
    }
    let failures: Vec<String> = comparison
        .ours
        .errors
        .iter()
        .map(|e| format!("ours: {e}"))
        .chain(
            comparison
                .node
                .iter()
                .flat_map(|n| n.errors.iter().map(|e| format!("Node.js: {e}"))),
        )
        .chain(
            comparison
                .ceiling_error
                .iter()
                .map(|e| format!("ceiling: {e}")),
        )
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(text, "\nFailed workloads:\n");
        for failure in failures {
            let _ = writeln!(text, "- {failure}");
        }
    }
    text
}

const SVG_WIDTH: f64 = 960.0;
const LABEL_WIDTH: f64 = 520.0;
const ROW_HEIGHT: f64 = 22.0;
const TOP: f64 = 50.0;
/// The chart's axis spans 1/100× to 100× on a log scale.
const DECADES: f64 = 2.0;

/// Renders one horizontal bar per row: the ratio ours vs Node.js on a log
/// scale centred on 1×, green where ours is better and red where it is worse.
pub fn svg(comparison: &Comparison) -> String {
    let rows: Vec<Row> = rows(comparison);
    let height = TOP + ROW_HEIGHT * rows.len() as f64 + 30.0;
    let plot_width = SVG_WIDTH - LABEL_WIDTH - 80.0;
    let centre = LABEL_WIDTH + plot_width / 2.0;
    let scale = plot_width / 2.0 / DECADES;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="10" y="20" font-size="15" font-weight="bold">deepstream: ours vs Node.js (× better, log scale)</text>"#
    );
    for (label, value) in [
        ("0.01×", -2.0),
        ("0.1×", -1.0),
        ("1×", 0.0),
        ("10×", 1.0),
        ("100×", 2.0),
    ] {
        let x = centre + value * scale;
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#ccc"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#666">{label}</text>"##,
            TOP - 14.0,
            height - 24.0,
            TOP - 18.0
        );
    }
    for (index, row) in rows.iter().enumerate() {
        let y = TOP + ROW_HEIGHT * index as f64;
        let label = escape(&format!("{}: {}", row.workload, row.metric));
        let _ = writeln!(out, r#"<text x="10" y="{:.1}">{label}</text>"#, y + 14.0);
        let Some(ratio) = row.ratio() else {
            let _ = writeln!(
                out,
                r##"<text x="{centre:.1}" y="{:.1}" fill="#999">no ratio</text>"##,
                y + 14.0
            );
            continue;
        };
        let position = ratio.log10().clamp(-DECADES, DECADES) * scale;
        let (x, width) = if position >= 0.0 {
            (centre, position)
        } else {
            (centre + position, -position)
        };
        let colour = if ratio >= 1.0 { "#2e8b57" } else { "#c0392b" };
        let _ = writeln!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            y + 3.0,
            width.max(1.0),
            ROW_HEIGHT - 6.0,
            centre + DECADES * scale + 6.0,
            y + 14.0,
            ratio_text(Some(ratio))
        );
    }
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(higher_is_better: bool, ours: Option<f64>, node: Option<f64>) -> Row {
        Row {
            workload: "w".to_owned(),
            metric: "m",
            higher_is_better,
            ours,
            node,
            ceiling: None,
        }
    }

    #[test]
    fn ratio_favours_ours_above_one() {
        assert_eq!(row(true, Some(30.0), Some(10.0)).ratio(), Some(3.0));
        assert_eq!(row(false, Some(10.0), Some(30.0)).ratio(), Some(3.0));
        assert_eq!(
            row(false, Some(30.0), Some(10.0))
                .ratio()
                .map(|r| (r * 3.0).round()),
            Some(1.0)
        );
    }

    #[test]
    fn ratio_needs_both_values() {
        assert_eq!(row(true, Some(1.0), None).ratio(), None);
        assert_eq!(row(true, None, Some(1.0)).ratio(), None);
        assert_eq!(row(false, Some(0.0), Some(1.0)).ratio(), None);
    }

    #[test]
    fn numbers_are_grouped_and_rounded() {
        assert_eq!(number(Some(1_234_567.4)), "1 234 567");
        assert_eq!(number(Some(123.4)), "123");
        assert_eq!(number(Some(12.34)), "12.3");
        assert_eq!(number(Some(0.1234)), "0.12");
        assert_eq!(number(None), "–");
        assert_eq!(group_thousands(-1000), "-1 000");
    }

    #[test]
    fn proc_fields_are_found() {
        let text = "processor\t: 0\nmodel name\t: Some CPU\nMemTotal:  2048 kB\n";
        assert_eq!(proc_field(text, "model name").as_deref(), Some("Some CPU"));
        assert_eq!(proc_field(text, "MemTotal").as_deref(), Some("2048 kB"));
        assert_eq!(proc_field(text, "missing"), None);
    }

    #[test]
    fn svg_escapes_labels() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }

    #[test]
    fn empty_results_render() {
        let comparison = Comparison {
            machine: Machine {
                cpus: 2,
                cpu_model: "x".to_owned(),
                memory_mib: 1,
                open_files_limit: 1,
            },
            params: SuiteParams::smoke(),
            ours: SuiteResult::default(),
            node: None,
            ceiling: None,
            ceiling_error: None,
        };
        let table = markdown(&comparison);
        assert!(
            table.contains("| event fan-out, 1 → 20 subscribers | deliveries/s | – | – | – | – |")
        );
        let chart = svg(&comparison);
        assert!(chart.starts_with("<svg"), "{chart}");
        assert!(chart.ends_with("</svg>\n"), "{chart}");
        assert!(chart.contains("no ratio"));
    }
}
