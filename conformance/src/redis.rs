//! A Redis server that the nodes of a cluster target talk through.
//!
//! It listens on a free port of 127.0.0.1, keeps nothing on disk, and runs
//! under `timeout`, so it stops by itself even when the runner dies first.

use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::error::ConformanceError;
use crate::process::wait_ready;

const HOST: &str = "127.0.0.1";
const LIFETIME: Duration = Duration::from_secs(300);
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running Redis server.
#[derive(Debug)]
pub struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    /// Starts `redis-server` on `port` without persistence.
    pub async fn start(port: u16) -> Result<Redis, ConformanceError> {
        let child = Command::new("timeout")
            .args(["--kill-after=5", &LIFETIME.as_secs().to_string()])
            .arg("redis-server")
            .args(["--bind", HOST, "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| ConformanceError::Io {
                action: "starting redis-server".to_owned(),
                source,
            })?;
        let mut redis = Redis {
            child: Some(child),
            port,
        };
        if let Err(reason) = redis.wait_ready().await {
            redis.stop().await;
            return Err(ConformanceError::Server {
                target: "redis".to_owned(),
                reason,
            });
        }
        Ok(redis)
    }

    /// Returns the port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let port = self.port;
        let child = self.child.as_mut().ok_or("redis-server is stopped")?;
        wait_ready(child, "redis-server", READY_TIMEOUT, || ping(port)).await
    }

    /// Stops the server with SIGTERM, which `timeout` passes on, and kills it
    /// after a grace period.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        terminate(&child);
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            tracing::warn!(port = self.port, "redis-server ignored SIGTERM; killing it");
            let _ = child.kill().await;
        }
    }
}

impl Drop for Redis {
    /// Stops a server that [`Redis::stop`] did not stop, as when the runner
    /// is interrupted, without waiting for it to exit.
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            terminate(child);
        }
    }
}

/// Checks that `redis-server` is installed.
pub fn check_installed() -> Result<(), ConformanceError> {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|folder| folder.join("redis-server").is_file())
    });
    if found {
        return Ok(());
    }
    Err(ConformanceError::Server {
        target: "redis".to_owned(),
        reason: "redis-server is missing: install the Debian package `redis-server`".to_owned(),
    })
}

fn terminate(child: &Child) {
    if let Some(pid) = child.id().and_then(|id| Pid::from_raw(id as i32))
        && let Err(error) = rustix::process::kill_process(pid, Signal::TERM)
    {
        tracing::warn!(%error, "sending SIGTERM to redis-server failed");
    }
}

/// Sends `PING` and expects `+PONG`.
async fn ping(port: u16) -> Result<(), String> {
    let mut stream = tokio::net::TcpStream::connect((HOST, port))
        .await
        .map_err(|error| format!("connecting: {error}"))?;
    stream
        .write_all(b"PING\r\n")
        .await
        .map_err(|error| format!("sending PING: {error}"))?;
    let mut answer = [0u8; 7];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|error| format!("reading the PING answer: {error}"))?;
    if &answer != b"+PONG\r\n" {
        return Err(format!(
            "PING returned {:?}",
            String::from_utf8_lossy(&answer)
        ));
    }
    Ok(())
}
