//! The runner's side of the driver protocol: one child process per client,
//! commands written to its stdin and observations read from its stdout, one
//! JSON object per line.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::error::ConformanceError;
use crate::scenario::contains;

/// Time a driver gets to exit after its stdin closes.
const EXIT_TIMEOUT: Duration = Duration::from_secs(3);

/// A column of client implementations: one implementation, or several that
/// the scenario's clients take in turn (`rust+js` drives the first client
/// with Rust, the second with JavaScript, the third with Rust again).
#[derive(Debug, Clone)]
pub struct DriverKind {
    /// The name used in the matrix and in expected-failures.yml.
    pub label: String,
    /// Program and arguments that start each implementation's driver.
    pub commands: Vec<Vec<String>>,
}

impl DriverKind {
    /// Returns the program and arguments for the scenario client at `index`.
    pub fn command_for(&self, index: usize) -> &[String] {
        match self.commands.len() {
            0 => &[],
            count => &self.commands[index % count],
        }
    }
}

/// A running driver process.
#[derive(Debug)]
pub struct Driver {
    client: String,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Result<Value, String>>,
    /// Observations read but not yet matched by a step, oldest first.
    pending: VecDeque<Value>,
    next_id: u64,
}

impl Driver {
    /// Starts a driver with `command` for the scenario client `client` and
    /// connects it to `url`.
    pub async fn start(
        command: &[String],
        client: &str,
        url: &str,
    ) -> Result<Driver, ConformanceError> {
        let driver_error = |reason: String| ConformanceError::Driver {
            client: client.to_owned(),
            reason,
        };
        let (program, arguments) = command
            .split_first()
            .ok_or_else(|| driver_error("empty driver command".to_owned()))?;
        // Without RUST_LOG the Rust driver logs only warnings; a runner
        // started with RUST_LOG=debug would otherwise flood its stderr.
        let mut child = Command::new(program)
            .args(arguments)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| driver_error(format!("starting {program}: {error}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(driver_error("no stdin or stdout pipe".to_owned()));
        };

        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let parsed = serde_json::from_str::<Value>(&line)
                    .map_err(|error| format!("invalid JSON line {line:?}: {error}"));
                if sender.send(parsed).is_err() {
                    break;
                }
            }
        });

        let mut driver = Driver {
            client: client.to_owned(),
            child,
            stdin,
            lines,
            pending: VecDeque::new(),
            next_id: 1,
        };
        let mut connect = serde_json::Map::new();
        connect.insert("op".to_owned(), json!("connect"));
        connect.insert("url".to_owned(), json!(url));
        let reply = driver
            .command(connect, Duration::from_secs(10))
            .await
            .map_err(driver_error)?;
        if let Some(error) = reply.get("error").filter(|error| !error.is_null()) {
            let message = reply
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(driver_error(format!(
                "connect to {url} failed: {error}: {message}"
            )));
        }
        Ok(driver)
    }

    /// Sends a command and returns its reply line. Observations that arrive
    /// first are kept for [`Driver::observe`].
    pub async fn command(
        &mut self,
        command: serde_json::Map<String, Value>,
        within: Duration,
    ) -> Result<Value, String> {
        let id = self.send(command).await?;
        self.reply(id, within).await
    }

    /// Sends a command without waiting for its reply, and returns its id for
    /// [`Driver::reply`].
    pub async fn send(
        &mut self,
        mut command: serde_json::Map<String, Value>,
    ) -> Result<u64, String> {
        let id = self.next_id;
        self.next_id += 1;
        command.insert("id".to_owned(), json!(id));
        let mut line = Value::Object(command).to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|error| format!("writing to the driver failed: {error}"))?;
        Ok(id)
    }

    /// Waits for the reply to the command `id`. Observations that arrive
    /// first are kept for [`Driver::observe`].
    pub async fn reply(&mut self, id: u64, within: Duration) -> Result<Value, String> {
        let reply = json!({"kind": "reply", "id": id});
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let observation = self.read_line(deadline).await?.ok_or_else(|| {
                format!("no reply to command {id} within {} ms", within.as_millis())
            })?;
            if contains(&observation, &reply) {
                return Ok(observation);
            }
            self.pending.push_back(observation);
        }
    }

    /// Waits for an observation that contains `pattern` and removes it.
    /// Returns `None` when none arrives within `within`.
    pub async fn observe(
        &mut self,
        pattern: &Value,
        within: Duration,
    ) -> Result<Option<Value>, String> {
        if let Some(index) = self.pending.iter().position(|seen| contains(seen, pattern)) {
            return Ok(self.pending.remove(index));
        }
        let deadline = tokio::time::Instant::now() + within;
        while let Some(observation) = self.read_line(deadline).await? {
            if contains(&observation, pattern) {
                return Ok(Some(observation));
            }
            self.pending.push_back(observation);
        }
        Ok(None)
    }

    /// Returns the observations not matched yet, for failure messages.
    pub fn unmatched(&self) -> Vec<Value> {
        self.pending.iter().cloned().collect()
    }

    /// Reads one line, or returns `None` at the deadline.
    async fn read_line(&mut self, deadline: tokio::time::Instant) -> Result<Option<Value>, String> {
        match tokio::time::timeout_at(deadline, self.lines.recv()).await {
            Err(_) => Ok(None),
            Ok(None) => Err(format!("driver of {} exited", self.client)),
            Ok(Some(line)) => line.map(Some),
        }
    }

    /// Closes the driver's stdin, the protocol's signal to close the client
    /// and exit, and kills the driver if it is still running after a timeout.
    pub async fn stop(mut self) {
        drop(self.stdin);
        if tokio::time::timeout(EXIT_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(client = %self.client, "driver did not exit after stdin closed; killing it");
            let _ = self.child.kill().await;
        }
    }
}

/// Returns the command that starts the JavaScript driver, checking that the
/// script and the official client are installed.
pub fn js_driver(workspace: &std::path::Path) -> Result<Vec<String>, ConformanceError> {
    let script: PathBuf = workspace.join("conformance/drivers/js/driver.mjs");
    let client = workspace.join("interop/node_modules/@deepstream/client/package.json");
    if !client.is_file() {
        return Err(ConformanceError::Driver {
            client: "js".to_owned(),
            reason: format!("{} is missing: run `npm ci` in interop/", client.display()),
        });
    }
    Ok(vec!["node".to_owned(), script.display().to_string()])
}
