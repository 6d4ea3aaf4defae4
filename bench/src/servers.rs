//! Starting and stopping the servers under test on free loopback ports.
//!
//! Each server runs under `timeout`, so it stops after its lifetime even when
//! the benchmark process dies first. Its output goes to `server.log` in a
//! temporary folder that is removed when the server stops.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::conn::{self, Dialect};
use crate::error::BenchError;

const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeats every ten minutes, so idle benchmark connections are never
/// closed for silence during a run.
const HEARTBEAT_INTERVAL_MS: u64 = 600_000;
/// Large enough for one request that names 100 000 records.
const MAX_MESSAGE_SIZE: u64 = 16 * 1024 * 1024;
const LOG_TAIL_BYTES: usize = 4000;

/// The kind of server to start.
#[derive(Debug, Clone)]
pub enum ServerKind {
    /// Our `deepstream` binary, with records in memory.
    Ours {
        /// Path of the `deepstream` binary.
        binary: PathBuf,
    },
    /// The official Node.js server.
    Node {
        /// Path of `@deepstream/server/dist/bin/deepstream.js`.
        script: PathBuf,
        /// Path of a storage plugin that keeps records in memory.
        storage_plugin: PathBuf,
    },
    /// The broadcast server of this binary's `ceiling-server` subcommand.
    Ceiling {
        /// Path of the `deepstream-bench` binary.
        binary: PathBuf,
    },
}

impl ServerKind {
    /// Returns a short name for logs and file names.
    pub fn label(&self) -> &'static str {
        match self {
            ServerKind::Ours { .. } => "ours",
            ServerKind::Node { .. } => "node",
            ServerKind::Ceiling { .. } => "ceiling",
        }
    }
}

/// A running server.
pub struct ServerProcess {
    kind: ServerKind,
    /// The `timeout` process that runs the server.
    guard: Child,
    /// Process id of the server itself, whose memory the benchmark reads.
    pub pid: u32,
    /// WebSocket URL of the server's endpoint.
    pub url: String,
    folder: PathBuf,
}

impl ServerProcess {
    /// Starts a server on a free port of 127.0.0.1 and waits until it accepts
    /// WebSocket connections. It stops by itself after `lifetime`.
    pub async fn start(kind: ServerKind, lifetime: Duration) -> Result<ServerProcess, BenchError> {
        let port = free_port()?;
        let folder = std::env::temp_dir().join(format!(
            "deepstream-bench-{}-{}-{port}",
            kind.label(),
            std::process::id()
        ));
        std::fs::create_dir_all(&folder)
            .map_err(BenchError::io(format!("creating {}", folder.display())))?;

        let mut command = Command::new("timeout");
        command
            .arg("--kill-after=5")
            .arg(lifetime.as_secs().max(1).to_string());
        let url = match &kind {
            ServerKind::Ours { binary } => {
                let config = write_config(&folder, port, "storage:\n  type: memory\n")?;
                command
                    .arg(absolute(binary)?)
                    .args(server_args(&config, port));
                format!("ws://{HOST}:{port}/deepstream")
            }
            ServerKind::Node {
                script,
                storage_plugin,
            } => {
                let plugin = absolute(storage_plugin)?;
                let storage = format!("storage:\n  path: {}\n", yaml_string(&plugin));
                let config = write_config(&folder, port, &storage)?;
                command
                    .arg("node")
                    .arg(absolute(script)?)
                    .args(server_args(&config, port));
                format!("ws://{HOST}:{port}/deepstream")
            }
            ServerKind::Ceiling { binary } => {
                command
                    .arg(absolute(binary)?)
                    .args(["ceiling-server", "--port", &port.to_string()])
                    .args(["--lifetime-secs", &lifetime.as_secs().to_string()]);
                format!("ws://{HOST}:{port}/")
            }
        };

        let log_path = folder.join("server.log");
        let log = std::fs::File::create(&log_path)
            .map_err(BenchError::io(format!("creating {}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(BenchError::io("duplicating the log file handle"))?;
        command
            .current_dir(&folder)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true);
        let guard = command.spawn().map_err(BenchError::io(format!(
            "starting the {} server",
            kind.label()
        )))?;
        let guard_pid = guard.id().unwrap_or(0);

        let mut server = ServerProcess {
            kind,
            guard,
            pid: guard_pid,
            url,
            folder,
        };
        match server.wait_ready(port).await {
            Ok(pid) => {
                server.pid = pid;
                tracing::info!(server = server.kind.label(), pid, url = %server.url, "server ready");
                Ok(server)
            }
            Err(error) => {
                let tail = server.log_tail();
                server.stop().await;
                Err(BenchError::Server(format!(
                    "the {} server did not start: {}\nits output ends with:\n{tail}",
                    server_label(&server),
                    crate::error::error_chain(&error)
                )))
            }
        }
    }

    async fn wait_ready(&mut self, port: u16) -> Result<u32, BenchError> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut last_problem = String::from("no answer yet");
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.guard.try_wait() {
                return Err(BenchError::Server(format!(
                    "the process exited early ({status})"
                )));
            }
            match self.probe(port).await {
                Ok(()) => {
                    let guard_pid = self.guard.id().unwrap_or(0);
                    return child_pid(guard_pid).ok_or_else(|| {
                        BenchError::Server(format!("no child process of timeout (pid {guard_pid})"))
                    });
                }
                Err(error) => last_problem = crate::error::error_chain(&error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(BenchError::Server(format!(
            "not ready after {READY_TIMEOUT:?}: {last_problem}"
        )))
    }

    async fn probe(&self, port: u16) -> Result<(), BenchError> {
        match self.kind {
            ServerKind::Ceiling { .. } => {
                conn::connect(&self.url, Dialect::Broadcast).await?;
            }
            _ => {
                health_check(port).await?;
                conn::connect_raw(&self.url).await?;
            }
        }
        Ok(())
    }

    /// Returns the last part of the server's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.folder.join("server.log")).unwrap_or_default();
        let start = text.len().saturating_sub(LOG_TAIL_BYTES);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }

    /// Stops the server with SIGTERM (SIGKILL after a grace period) and
    /// removes its folder.
    pub async fn stop(&mut self) {
        signal(self.pid, Signal::TERM);
        if tokio::time::timeout(STOP_TIMEOUT, self.guard.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                server = self.kind.label(),
                pid = self.pid,
                "server ignored SIGTERM, killing it"
            );
            signal(self.pid, Signal::KILL);
            let _ = self.guard.kill().await;
        }
        if let Err(error) = std::fs::remove_dir_all(&self.folder) {
            tracing::debug!(%error, folder = %self.folder.display(), "could not remove the server folder");
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // After `stop` the process is gone and this signal reaches nothing;
        // pids are not reused that quickly.
        if matches!(self.guard.try_wait(), Ok(None)) {
            signal(self.pid, Signal::KILL);
        }
    }
}

fn server_label(server: &ServerProcess) -> &'static str {
    match server.kind {
        ServerKind::Ours { .. } => "deepstream (ours)",
        ServerKind::Node { .. } => "Node.js deepstream",
        ServerKind::Ceiling { .. } => "broadcast ceiling",
    }
}

fn signal(pid: u32, signal: Signal) {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    if let Err(error) = rustix::process::kill_process(pid, signal) {
        tracing::debug!(%error, ?pid, "sending a signal failed");
    }
}

fn server_args(config: &Path, port: u16) -> Vec<String> {
    vec![
        "start".to_owned(),
        "-c".to_owned(),
        config.display().to_string(),
        "--host".to_owned(),
        HOST.to_string(),
        "--port".to_owned(),
        port.to_string(),
    ]
}

/// Writes a config.yml that both servers read: binary WebSocket endpoint only,
/// no authentication, no permissions, and the given `storage` section.
fn write_config(folder: &Path, port: u16, storage: &str) -> Result<PathBuf, BenchError> {
    let config = format!(
        "serverName: bench-{port}\n\
         showLogo: false\n\
         logLevel: WARN\n\
         httpServer:\n  type: default\n  options:\n    host: \"{HOST}\"\n    port: {port}\n    healthCheckPath: \"/health-check\"\n\
         connectionEndpoints:\n  - type: ws-binary\n    options:\n      urlPath: \"/deepstream\"\n      heartbeatInterval: {HEARTBEAT_INTERVAL_MS}\n      maxMessageSize: {MAX_MESSAGE_SIZE}\n\
         auth:\n  - type: none\n\
         permission:\n  type: none\n\
         {storage}"
    );
    let path = folder.join("config.yml");
    std::fs::write(&path, config).map_err(BenchError::io(format!("writing {}", path.display())))?;
    Ok(path)
}

fn absolute(path: &Path) -> Result<PathBuf, BenchError> {
    std::path::absolute(path).map_err(BenchError::io(format!("resolving {}", path.display())))
}

/// Writes a path as a double-quoted YAML scalar.
fn yaml_string(path: &Path) -> String {
    serde_json::Value::String(path.display().to_string()).to_string()
}

/// Finds a free TCP port on 127.0.0.1 by binding port 0 and releasing it.
fn free_port() -> Result<u16, BenchError> {
    let probe = TcpListener::bind(SocketAddr::from((HOST, 0)))
        .map_err(BenchError::io("binding a probe socket on 127.0.0.1"))?;
    let port = probe
        .local_addr()
        .map_err(BenchError::io("reading the probe socket's port"))?
        .port();
    Ok(port)
}

/// Sends `GET /health-check` and expects status 200.
async fn health_check(port: u16) -> Result<(), BenchError> {
    let mut stream = tokio::net::TcpStream::connect((HOST, port))
        .await
        .map_err(BenchError::io(format!("connecting to {HOST}:{port}")))?;
    let request =
        format!("GET /health-check HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(BenchError::io("sending the health check"))?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .await
        .map_err(BenchError::io("reading the health check response"))?;
    if &head[9..12] == b"200" {
        Ok(())
    } else {
        Err(BenchError::Server(format!(
            "the health check responded with {}",
            String::from_utf8_lossy(&head)
        )))
    }
}

/// Returns the pid of a child process of `parent`, from `/proc/<pid>/stat`.
fn child_pid(parent: u32) -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        (parent_of(&stat)? == parent).then_some(pid)
    })
}

/// Reads the parent pid from the text of `/proc/<pid>/stat`. The command name
/// in parentheses may itself contain spaces and parentheses, so the fields
/// are counted from the last `)`.
fn parent_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_pid_is_read_after_the_command_name() {
        assert_eq!(parent_of("42 (deepstream) S 7 42 42 0"), Some(7));
        assert_eq!(parent_of("42 (a) b) (c) R 9 1 1"), Some(9));
    }

    #[test]
    fn malformed_stat_has_no_parent() {
        assert_eq!(parent_of("42 deepstream S 7"), None);
        assert_eq!(parent_of("42 (x) S"), None);
        assert_eq!(parent_of("42 (x) S notanumber"), None);
    }

    #[test]
    fn config_names_the_port_and_storage() {
        let folder = std::env::temp_dir().join(format!("bench-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let path = write_config(&folder, 4321, "storage:\n  type: memory\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&folder).unwrap();
        assert!(text.contains("    port: 4321\n"));
        assert!(text.contains("host: \"127.0.0.1\""));
        assert!(text.ends_with("storage:\n  type: memory\n"));
    }

    #[test]
    fn yaml_string_quotes_paths() {
        assert_eq!(yaml_string(Path::new("/a b/c\"d")), "\"/a b/c\\\"d\"");
    }

    #[tokio::test]
    async fn missing_binary_fails_to_start() {
        let kind = ServerKind::Ours {
            binary: PathBuf::from("/nonexistent/deepstream"),
        };
        let Err(error) = ServerProcess::start(kind, Duration::from_secs(5)).await else {
            panic!("a missing binary started");
        };
        assert!(error.to_string().contains("did not start"), "{error}");
    }
}
