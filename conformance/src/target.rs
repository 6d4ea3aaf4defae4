//! Server targets: our `deepstream` binary, the official Node.js server, or a
//! URL given on the command line.
//!
//! Started servers listen on a free port of 127.0.0.1 and run under
//! `timeout`, so they stop by themselves after [`SERVER_LIFETIME`] even when
//! the runner dies first. Their output goes to `server.log` in a temporary
//! folder that [`RunningServer::stop`] removes.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::error::ConformanceError;
use crate::process::wait_ready;

const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Upper bound on one server's life, well above the few seconds a scenario takes.
const SERVER_LIFETIME: Duration = Duration::from_secs(300);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The server config a scenario needs.
#[derive(Debug, Clone, Copy)]
pub struct ServerSetup<'a> {
    /// Users and passwords for file authentication; open authentication when `None`.
    pub users: Option<&'a BTreeMap<String, String>>,
    /// The permissions file's content; no permission checks when `None`.
    pub permissions: Option<&'a str>,
    /// The port of a PostgreSQL server on 127.0.0.1 to keep records in;
    /// the server's default storage when `None`.
    pub postgres_port: Option<u16>,
    /// The number of nodes to start; 1 for a single server.
    pub nodes: usize,
    /// The port of the Redis server on 127.0.0.1 that the nodes of a
    /// cluster talk through.
    pub redis_port: Option<u16>,
}

/// The server a scenario's clients connect to.
#[derive(Debug, Clone)]
pub enum Target {
    /// Our server binary.
    Ours {
        /// Path of the `deepstream` binary.
        binary: PathBuf,
    },
    /// The official Node.js server, `@deepstream/server`.
    Node {
        /// Path of `dist/bin/deepstream.js`.
        script: PathBuf,
    },
    /// A server the runner does not start.
    Url(String),
}

impl Target {
    /// Returns the name used in the matrix and in expected-failures.yml.
    pub fn label(&self) -> &'static str {
        match self {
            Target::Ours { .. } => "ours",
            Target::Node { .. } => "node",
            Target::Url(_) => "url",
        }
    }

    /// Checks that the program this target starts is installed. A URL
    /// target needs nothing.
    pub fn check_installed(&self) -> Result<(), ConformanceError> {
        match self {
            Target::Ours { binary } => require_file(self, binary).map(drop),
            Target::Node { script } => require_file(self, script).map(drop),
            Target::Url(_) => Ok(()),
        }
    }

    /// Starts the server for one scenario with the config in `setup`: one
    /// process, or one per node for a cluster. For a URL target it starts
    /// nothing and ignores `setup`, so callers skip scenarios that need a
    /// config there.
    pub async fn start(&self, setup: ServerSetup<'_>) -> Result<RunningServer, ConformanceError> {
        let (program, arguments) = match self {
            Target::Url(url) => {
                return Ok(RunningServer {
                    urls: vec![url.clone()],
                    processes: Vec::new(),
                });
            }
            Target::Ours { binary } => (require_file(self, binary)?, Vec::new()),
            Target::Node { script } => {
                let script = require_file(self, script)?;
                (PathBuf::from("node"), vec![script.display().to_string()])
            }
        };

        let mut server = RunningServer {
            urls: Vec::new(),
            processes: Vec::new(),
        };
        for _ in 0..setup.nodes.max(1) {
            match self.start_process(&program, &arguments, setup).await {
                Ok((url, process)) => {
                    server.urls.push(url);
                    server.processes.push(Some(process));
                }
                Err(error) => {
                    server.stop().await;
                    return Err(error);
                }
            }
        }
        tracing::debug!(target = self.label(), urls = ?server.urls, "server ready");
        Ok(server)
    }

    /// Starts one server process on a free port and waits until it accepts
    /// WebSocket connections.
    async fn start_process(
        &self,
        program: &Path,
        arguments: &[String],
        setup: ServerSetup<'_>,
    ) -> Result<(String, ServerProcess), ConformanceError> {
        let port = free_port().map_err(|error| self.error(format!("no free port: {error}")))?;
        let folder = std::env::temp_dir().join(format!(
            "deepstream-conformance-{}-{}-{port}",
            self.label(),
            std::process::id()
        ));
        write_config(&folder, port, setup).map_err(|error| {
            self.error(format!("writing config in {}: {error}", folder.display()))
        })?;

        let log = std::fs::File::create(folder.join("server.log"))
            .map_err(|error| self.error(format!("creating server.log: {error}")))?;
        let log_copy = log
            .try_clone()
            .map_err(|error| self.error(format!("duplicating the log handle: {error}")))?;
        // The server logs at the config's `logLevel`; a RUST_LOG meant for
        // the runner would override it.
        let child = Command::new("timeout")
            .env_remove("RUST_LOG")
            .arg("--kill-after=5")
            .arg(SERVER_LIFETIME.as_secs().to_string())
            .arg(program)
            .args(arguments)
            .args(server_arguments(&folder.join("config.yml"), port))
            .current_dir(&folder)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_copy)
            .spawn()
            .map_err(|error| self.error(format!("starting {}: {error}", program.display())))?;

        let url = format!("ws://{HOST}:{port}/deepstream");
        let mut process = ServerProcess {
            child,
            folder,
            stopped: false,
        };
        if let Err(reason) = process.wait_ready(port, &url).await {
            let log = process.log_tail();
            process.stop(&url).await;
            return Err(self.error(format!("{reason}\nserver log:\n{log}")));
        }
        Ok((url, process))
    }

    fn error(&self, reason: String) -> ConformanceError {
        ConformanceError::Server {
            target: self.label().to_owned(),
            reason,
        }
    }
}

/// A server started for one scenario (one process per node of a cluster),
/// or a URL target.
#[derive(Debug)]
pub struct RunningServer {
    /// The WebSocket URL of each node, which drivers connect to.
    pub urls: Vec<String>,
    /// The process of each node, `None` once stopped; empty for a URL target.
    processes: Vec<Option<ServerProcess>>,
}

#[derive(Debug)]
struct ServerProcess {
    /// The `timeout` process, which forwards SIGTERM to the server.
    child: Child,
    folder: PathBuf,
    /// Set once [`ServerProcess::stop`] finished, so that drop does nothing.
    stopped: bool,
}

impl ServerProcess {
    async fn wait_ready(&mut self, port: u16, url: &str) -> Result<(), String> {
        wait_ready(&mut self.child, "the server", READY_TIMEOUT, || {
            probe(port, url)
        })
        .await
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.folder.join("server.log")).unwrap_or_default();
        let start = log.len().saturating_sub(3000);
        let start = (start..log.len())
            .find(|index| log.is_char_boundary(*index))
            .unwrap_or(log.len());
        log[start..].to_owned()
    }

    /// Stops the server with SIGTERM, then SIGKILL after a grace period, and
    /// removes its folder.
    async fn stop(mut self, url: &str) {
        if let Some(pid) = self.child.id().and_then(|id| Pid::from_raw(id as i32)) {
            // `timeout` passes SIGTERM on to the server it runs.
            if let Err(error) = rustix::process::kill_process(pid, Signal::TERM) {
                tracing::warn!(%error, "sending SIGTERM to the server failed");
            }
        }
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(%url, "server ignored SIGTERM; killing it");
            let _ = self.child.kill().await;
        }
        if let Err(error) = std::fs::remove_dir_all(&self.folder) {
            tracing::warn!(%error, folder = %self.folder.display(), "removing the server folder failed");
        }
        self.stopped = true;
    }
}

impl Drop for ServerProcess {
    /// Stops a server that [`ServerProcess::stop`] did not stop, as when the
    /// runner is interrupted while the server starts or runs: SIGTERM reaches
    /// the server through `timeout`, and the folder is removed without
    /// waiting for the exit.
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        if let Some(pid) = self.child.id().and_then(|id| Pid::from_raw(id as i32)) {
            let _ = rustix::process::kill_process(pid, Signal::TERM);
        }
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

impl RunningServer {
    /// Returns the end of each node's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        for (node, process) in self.processes.iter().enumerate() {
            let Some(process) = process else {
                continue;
            };
            if self.processes.len() > 1 {
                text.push_str(&format!("[node {node}]\n"));
            }
            text.push_str(&process.log_tail());
        }
        text
    }

    /// Stops one node. Returns an error when there is no such node or it is
    /// already stopped.
    pub async fn stop_node(&mut self, node: usize) -> Result<(), String> {
        let process = self
            .processes
            .get_mut(node)
            .and_then(Option::take)
            .ok_or_else(|| format!("node {node} is not running"))?;
        process.stop(&self.urls[node]).await;
        Ok(())
    }

    /// Stops every node that still runs. Does nothing for a URL target.
    pub async fn stop(&mut self) {
        for (node, process) in self.processes.iter_mut().enumerate() {
            if let Some(process) = process.take() {
                process.stop(&self.urls[node]).await;
            }
        }
    }
}

fn require_file(target: &Target, path: &Path) -> Result<PathBuf, ConformanceError> {
    let hint = match target {
        Target::Node { .. } => "run `npm ci` in interop/",
        _ => "build it with `cargo build -p deepstream-server` or pass --server-bin",
    };
    if !path.is_file() {
        return Err(target.error(format!("{} is missing: {hint}", path.display())));
    }
    std::path::absolute(path).map_err(|error| target.error(error.to_string()))
}

fn server_arguments(config: &Path, port: u16) -> Vec<String> {
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

/// Writes a config.yml that both servers read: the binary WebSocket endpoint
/// only (the Node.js defaults would also open other endpoints on 0.0.0.0),
/// open or file authentication, and the permissions and storage of `setup`.
fn write_config(folder: &Path, port: u16, setup: ServerSetup<'_>) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)?;
    let auth = match setup.users {
        None => "auth:\n  - type: none\n".to_owned(),
        Some(users) => {
            let mut file = String::new();
            for (user, password) in users {
                let user = serde_json::Value::String(user.clone());
                let password = serde_json::Value::String(password.clone());
                file.push_str(&format!("{user}:\n  password: {password}\n"));
            }
            std::fs::write(folder.join("users.yml"), file)?;
            "auth:\n  - type: file\n    options:\n      users: fileLoad(users.yml)\n".to_owned()
        }
    };
    let permission = match setup.permissions {
        None => "permission:\n  type: none\n".to_owned(),
        Some(rules) => {
            std::fs::write(folder.join("permissions.yml"), rules)?;
            "permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n"
                .to_owned()
        }
    };
    // Both servers read deepstream's PostgreSQL connector options; ours
    // ignores the connector's table layout settings and keeps one table.
    let storage = match setup.postgres_port {
        None => String::new(),
        Some(postgres_port) => format!(
            "storage:\n  name: postgres\n  options:\n    host: \"{HOST}\"\n    port: {postgres_port}\n    \
             user: {user}\n    database: {database}\n    schema: {schema}\n",
            user = crate::postgres::SUPERUSER,
            database = crate::postgres::DATABASE,
            schema = crate::postgres::SCHEMA,
        ),
    };
    // The nodes of a Node.js cluster talk through Redis
    // (@deepstream/clusternode-redis) and share a Redis cache
    // (@deepstream/cache-redis), because each node's own cache would keep
    // stale copies of records written on other nodes.
    let cluster = match setup.redis_port {
        None => String::new(),
        Some(redis_port) => format!(
            "clusterNode:\n  name: redis\n  options:\n    host: \"{HOST}\"\n    port: {redis_port}\n\
             cache:\n  name: redis\n  options:\n    host: \"{HOST}\"\n    port: {redis_port}\n"
        ),
    };
    let config = format!(
        "serverName: conformance-{port}\n\
         showLogo: false\n\
         logLevel: WARN\n\
         httpServer:\n  type: default\n  options:\n    host: \"{HOST}\"\n    port: {port}\n    healthCheckPath: \"/health-check\"\n\
         connectionEndpoints:\n  - type: ws-binary\n    options:\n      urlPath: \"/deepstream\"\n\
         {auth}{permission}{storage}{cluster}"
    );
    std::fs::write(folder.join("config.yml"), config)
}

/// Finds a free TCP port on 127.0.0.1 by binding port 0 and releasing it.
pub fn free_port() -> std::io::Result<u16> {
    let probe = TcpListener::bind(SocketAddr::from((HOST, 0)))?;
    Ok(probe.local_addr()?.port())
}

/// Checks `GET /health-check` for status 200 and then one WebSocket upgrade,
/// because the Node.js server returns 200 before its WebSocket path is ready.
async fn probe(port: u16, url: &str) -> Result<(), String> {
    let mut stream = tokio::net::TcpStream::connect((HOST, port))
        .await
        .map_err(|error| format!("connecting: {error}"))?;
    let request =
        format!("GET /health-check HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| format!("sending the health check: {error}"))?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .await
        .map_err(|error| format!("reading the health check: {error}"))?;
    if !head.ends_with(b" 200") {
        return Err(format!(
            "health check returned {:?}",
            String::from_utf8_lossy(&head)
        ));
    }
    tokio_tungstenite::connect_async(url)
        .await
        .map(drop)
        .map_err(|error| format!("WebSocket upgrade on {url}: {error}"))
}
