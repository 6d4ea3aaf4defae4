//! Waiting for the processes the runner starts (servers, PostgreSQL, Redis)
//! to accept connections.

use std::future::Future;
use std::time::Duration;

use tokio::process::Child;

/// Time between two readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Runs `probe` until it succeeds, and fails when `child` exits first or
/// `timeout` passes. The error names the process `name` and the last probe's problem.
pub async fn wait_ready<F, Fut>(
    child: &mut Child,
    name: &str,
    timeout: Duration,
    mut probe: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_problem = String::from("no answer yet");
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} exited early ({status})"));
        }
        match probe().await {
            Ok(()) => return Ok(()),
            Err(problem) => last_problem = problem,
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    Err(format!(
        "{name} not ready after {timeout:?}: {last_problem}"
    ))
}
