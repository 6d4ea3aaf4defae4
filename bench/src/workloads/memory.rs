//! Memory per idle authenticated connection, read from the server's VmRSS.

use std::time::Duration;

use serde::Serialize;

use crate::conn::{self, Dialect, Ws};
use crate::error::BenchError;

/// Time the server gets after the last login before its RSS is read, so
/// buffers of the handshake can be released.
const SETTLE: Duration = Duration::from_secs(2);

/// The server's resident set at one number of idle connections.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryPoint {
    /// Open, logged-in connections.
    pub connections: usize,
    /// VmRSS in KiB with that many connections.
    pub rss_kib: u64,
    /// `(rss_kib - baseline) / connections`, in KiB.
    pub kib_per_connection: f64,
}

/// The measurements of the memory workload.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryResult {
    /// VmRSS in KiB before the workload opened any connection.
    pub baseline_kib: u64,
    /// One point per connection count, in increasing order.
    pub points: Vec<MemoryPoint>,
}

/// Reads VmRSS of process `pid` in KiB from `/proc/<pid>/status`.
pub fn read_rss_kib(pid: u32) -> Result<u64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).map_err(BenchError::io(format!("reading {path}")))?;
    parse_vm_rss(&status)
        .ok_or_else(|| BenchError::Server(format!("{path} has no readable VmRSS line")))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let value = fields.next()?.parse().ok()?;
    (fields.next()? == "kB").then_some(value)
}

/// Opens idle logged-in connections up to each count in `steps` (increasing),
/// reading the server's RSS at each, then closes them all.
pub async fn run(url: &str, pid: u32, steps: &[usize]) -> Result<MemoryResult, BenchError> {
    let baseline_kib = read_rss_kib(pid)?;
    let mut open: Vec<Ws> = Vec::new();
    let mut points = Vec::new();
    for &connections in steps {
        let missing = connections.saturating_sub(open.len());
        let more =
            conn::open_many(url, Dialect::Deepstream, missing, |ws| async { Ok(ws) }).await?;
        open.extend(more);
        tokio::time::sleep(SETTLE).await;
        let rss_kib = read_rss_kib(pid)?;
        points.push(MemoryPoint {
            connections,
            rss_kib,
            kib_per_connection: rss_kib.saturating_sub(baseline_kib) as f64
                / connections.max(1) as f64,
        });
    }
    drop(open);
    Ok(MemoryResult {
        baseline_kib,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_parsed() {
        let status = "Name:\tdeepstream\nVmPeak:\t  99 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
    }

    #[test]
    fn vm_rss_missing_or_malformed() {
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tmany kB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\n"), None);
    }

    #[test]
    fn rss_of_this_process_is_positive() {
        assert!(read_rss_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn rss_of_a_missing_process_fails() {
        // Linux pids stay below 2^22, so this one cannot exist.
        assert!(read_rss_kib(u32::MAX).is_err());
    }
}
