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

const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Upper bound on one server's life, well above the few seconds a scenario takes.
const SERVER_LIFETIME: Duration = Duration::from_secs(300);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The server config a scenario needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerSetup<'a> {
    /// Users and passwords for file authentication; open authentication when `None`.
    pub users: Option<&'a BTreeMap<String, String>>,
    /// The permissions file's content; no permission checks when `None`.
    pub permissions: Option<&'a str>,
    /// The port of a PostgreSQL server on 127.0.0.1 to keep records in;
    /// the server's default storage when `None`.
    pub postgres_port: Option<u16>,
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

    /// Starts the server for one scenario with the config in `setup`.
    /// For a URL target it starts nothing and ignores `setup`, so callers
    /// skip scenarios that need a config there.
    pub async fn start(&self, setup: ServerSetup<'_>) -> Result<RunningServer, ConformanceError> {
        let (program, mut arguments) = match self {
            Target::Url(url) => {
                return Ok(RunningServer {
                    url: url.clone(),
                    process: None,
                });
            }
            Target::Ours { binary } => (require_file(self, binary)?, Vec::new()),
            Target::Node { script } => {
                let script = require_file(self, script)?;
                (PathBuf::from("node"), vec![script.display().to_string()])
            }
        };

        let port = free_port().map_err(|error| self.error(format!("no free port: {error}")))?;
        let folder = std::env::temp_dir().join(format!(
            "deepstream-conformance-{}-{}-{port}",
            self.label(),
            std::process::id()
        ));
        write_config(&folder, port, setup).map_err(|error| {
            self.error(format!("writing config in {}: {error}", folder.display()))
        })?;
        arguments.extend(server_arguments(&folder.join("config.yml"), port));

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
            .arg(&program)
            .args(&arguments)
            .current_dir(&folder)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_copy)
            .spawn()
            .map_err(|error| self.error(format!("starting {}: {error}", program.display())))?;

        let mut server = RunningServer {
            url: format!("ws://{HOST}:{port}/deepstream"),
            process: Some(ServerProcess { child, folder }),
        };
        if let Err(reason) = server.wait_ready(port).await {
            let log = server.log_tail();
            server.stop().await;
            return Err(self.error(format!("{reason}\nserver log:\n{log}")));
        }
        tracing::debug!(target = self.label(), url = %server.url, "server ready");
        Ok(server)
    }

    fn error(&self, reason: String) -> ConformanceError {
        ConformanceError::Server {
            target: self.label().to_owned(),
            reason,
        }
    }
}

/// A server started for one scenario, or a URL target.
#[derive(Debug)]
pub struct RunningServer {
    /// WebSocket URL that drivers connect to.
    pub url: String,
    process: Option<ServerProcess>,
}

#[derive(Debug)]
struct ServerProcess {
    /// The `timeout` process, which forwards SIGTERM to the server.
    child: Child,
    folder: PathBuf,
}

impl RunningServer {
    async fn wait_ready(&mut self, port: u16) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut last_problem = String::from("no answer yet");
        while tokio::time::Instant::now() < deadline {
            if let Some(process) = &mut self.process
                && let Ok(Some(status)) = process.child.try_wait()
            {
                return Err(format!("the server exited early ({status})"));
            }
            match probe(port, &self.url).await {
                Ok(()) => return Ok(()),
                Err(problem) => last_problem = problem,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("not ready after {READY_TIMEOUT:?}: {last_problem}"))
    }

    /// Returns the end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let Some(process) = &self.process else {
            return String::new();
        };
        let log = std::fs::read_to_string(process.folder.join("server.log")).unwrap_or_default();
        let start = log.len().saturating_sub(3000);
        let start = (start..log.len())
            .find(|index| log.is_char_boundary(*index))
            .unwrap_or(log.len());
        log[start..].to_owned()
    }

    /// Stops the server with SIGTERM, then SIGKILL after a grace period, and
    /// removes its folder. Does nothing for a URL target.
    pub async fn stop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        if let Some(pid) = process.child.id().and_then(|id| Pid::from_raw(id as i32)) {
            // `timeout` passes SIGTERM on to the server it runs.
            if let Err(error) = rustix::process::kill_process(pid, Signal::TERM) {
                tracing::warn!(%error, "sending SIGTERM to the server failed");
            }
        }
        if tokio::time::timeout(STOP_TIMEOUT, process.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(url = %self.url, "server ignored SIGTERM; killing it");
            let _ = process.child.kill().await;
        }
        if let Err(error) = std::fs::remove_dir_all(&process.folder) {
            tracing::warn!(%error, folder = %process.folder.display(), "removing the server folder failed");
        }
    }
}

impl Drop for RunningServer {
    /// Stops a server that [`RunningServer::stop`] did not stop, as when the
    /// runner is interrupted: SIGTERM reaches the server through `timeout`,
    /// and the folder is removed without waiting for the exit.
    fn drop(&mut self) {
        let Some(process) = self.process.take() else {
            return;
        };
        if let Some(pid) = process.child.id().and_then(|id| Pid::from_raw(id as i32)) {
            let _ = rustix::process::kill_process(pid, Signal::TERM);
        }
        let _ = std::fs::remove_dir_all(&process.folder);
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
    let config = format!(
        "serverName: conformance-{port}\n\
         showLogo: false\n\
         logLevel: WARN\n\
         httpServer:\n  type: default\n  options:\n    host: \"{HOST}\"\n    port: {port}\n    healthCheckPath: \"/health-check\"\n\
         connectionEndpoints:\n  - type: ws-binary\n    options:\n      urlPath: \"/deepstream\"\n\
         {auth}{permission}{storage}"
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
