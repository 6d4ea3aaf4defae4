//! A PostgreSQL server for scenarios with `storage: postgres`, and the
//! direct writes of their `storage-set` steps.
//!
//! The server is created with `initdb` in a temporary folder and listens on a
//! free port of 127.0.0.1 with `trust` authentication. It runs under
//! `timeout`, so it stops by itself even when the runner dies first. When the
//! runner runs as root, PostgreSQL runs as the `postgres` user, because it
//! refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::error::ConformanceError;
use crate::process::wait_ready;

/// The database superuser that `initdb` creates; the servers log in as it.
pub const SUPERUSER: &str = "postgres";
/// The database the servers use.
pub const DATABASE: &str = "postgres";
/// The schema both servers keep their tables in by default.
pub const SCHEMA: &str = "ds";
/// The table our server keeps every record in by default.
const OURS_TABLE: &str = "records";
/// The table the Node.js connector uses for names without a `/`.
const NODE_DEFAULT_TABLE: &str = "default";

const HOST: &str = "127.0.0.1";
const LIFETIME: Duration = Duration::from_secs(300);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How a server lays out records in PostgreSQL, which decides how
/// [`Postgres::write_record`] writes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Our server: one table `ds.records (name, version, data jsonb)`.
    Ours,
    /// `@deepstream/storage-postgres` 3.x: one table per name prefix (the
    /// text before the first `/`), `(id, version, val text)`, where `id` is
    /// the rest of the name.
    NodeConnector,
}

/// A running PostgreSQL server.
#[derive(Debug)]
pub struct Postgres {
    child: Child,
    port: u16,
    folder: PathBuf,
    bin: PathBuf,
    run_as: Option<&'static str>,
    stopped: bool,
}

impl Postgres {
    /// Creates a database cluster in a temporary folder and starts a server on it.
    pub async fn start(port: u16) -> Result<Postgres, ConformanceError> {
        let bin = postgres_bin()?;
        let folder = std::env::temp_dir().join(format!(
            "deepstream-conformance-postgres-{}-{port}",
            std::process::id()
        ));
        let data = folder.join("data");
        std::fs::create_dir_all(&folder).map_err(|source| io_error("creating", &folder, source))?;
        // Removes the folder if start-up fails or is cancelled before the
        // `Postgres` value, whose drop removes it from then on, exists.
        let mut cleanup = FolderCleanup(Some(folder.clone()));
        let run_as = running_as_root().then_some(SUPERUSER);
        if let Some(user) = run_as {
            run(Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:{user}"))
                .arg(&folder))
            .await?;
        }

        run(as_user(run_as, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]))
        .await?;

        let log = std::fs::File::create(folder.join("postgres.log"))
            .map_err(|source| io_error("creating", &folder.join("postgres.log"), source))?;
        let log_copy = log
            .try_clone()
            .map_err(|source| io_error("duplicating", &folder.join("postgres.log"), source))?;
        // `timeout` passes SIGINT, PostgreSQL's fast shutdown, on to the server.
        let child = as_user(run_as, Path::new("timeout"))
            .args([
                "--signal=INT",
                "--kill-after=5",
                &LIFETIME.as_secs().to_string(),
            ])
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&folder)
            .args(["-c", &format!("listen_addresses={HOST}"), "-c", "fsync=off"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_copy)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ConformanceError::Io {
                action: "starting postgres".to_owned(),
                source,
            })?;

        cleanup.0 = None;
        let mut postgres = Postgres {
            child,
            port,
            folder,
            bin,
            run_as,
            stopped: false,
        };
        if let Err(reason) = postgres.wait_ready().await {
            let log =
                std::fs::read_to_string(postgres.folder.join("postgres.log")).unwrap_or_default();
            postgres.stop().await;
            return Err(ConformanceError::Server {
                target: "postgres".to_owned(),
                reason: format!("{reason}\npostgres log:\n{log}"),
            });
        }
        Ok(postgres)
    }

    /// Returns the port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let port = self.port;
        wait_ready(&mut self.child, "postgres", READY_TIMEOUT, || async move {
            connect(port).await.map(drop)
        })
        .await
    }

    /// Writes a record straight into the table the server reads, creating
    /// the table when it is missing.
    pub async fn write_record(
        &self,
        layout: Layout,
        name: &str,
        version: i32,
        data: &Value,
    ) -> Result<(), String> {
        let client = connect(self.port).await?;
        let text = data.to_string();
        let failed = |error: tokio_postgres::Error| format!("writing {name} to postgres: {error}");
        match layout {
            Layout::Ours => {
                let table = format!("\"{SCHEMA}\".\"{OURS_TABLE}\"");
                client
                    .batch_execute(&format!(
                        "CREATE SCHEMA IF NOT EXISTS \"{SCHEMA}\";
                         CREATE TABLE IF NOT EXISTS {table} \
                         (name text PRIMARY KEY, version integer NOT NULL, data jsonb NOT NULL)"
                    ))
                    .await
                    .map_err(failed)?;
                client
                    .execute(
                        &format!(
                            "INSERT INTO {table} (name, version, data) VALUES ($1, $2, $3::text::jsonb) \
                             ON CONFLICT (name) DO UPDATE SET version = $2, data = $3::text::jsonb"
                        ),
                        &[&name, &version, &text],
                    )
                    .await
                    .map_err(failed)?;
            }
            Layout::NodeConnector => {
                let (table, id) = name.split_once('/').unwrap_or((NODE_DEFAULT_TABLE, name));
                if table.contains('"') {
                    return Err(format!(
                        "record name {name:?} has a quote in its table part"
                    ));
                }
                let table = format!("\"{SCHEMA}\".\"{table}\"");
                client
                    .batch_execute(&format!(
                        "CREATE SCHEMA IF NOT EXISTS \"{SCHEMA}\";
                         CREATE TABLE IF NOT EXISTS {table} \
                         (id text NOT NULL PRIMARY KEY, version integer DEFAULT 0, val text NOT NULL)"
                    ))
                    .await
                    .map_err(failed)?;
                client
                    .execute(
                        &format!(
                            "INSERT INTO {table} (id, version, val) VALUES ($1, $2, $3) \
                             ON CONFLICT (id) DO UPDATE SET version = $2, val = $3"
                        ),
                        &[&id, &version, &text],
                    )
                    .await
                    .map_err(failed)?;
            }
        }
        Ok(())
    }

    /// Stops the server with `pg_ctl stop` (a fast shutdown), kills it if it
    /// is still running after a timeout, and removes its folder.
    pub async fn stop(&mut self) {
        self.stopped = true;
        let stopped = as_user(self.run_as, &self.bin.join("pg_ctl"))
            .arg("stop")
            .arg("-D")
            .arg(self.folder.join("data"))
            .args([
                "-m",
                "fast",
                "-w",
                "-t",
                &STOP_TIMEOUT.as_secs().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if !stopped.is_ok_and(|status| status.success()) {
            tracing::warn!(port = self.port, "pg_ctl stop failed; killing postgres");
        }
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                port = self.port,
                "postgres still running after pg_ctl stop; killing it"
            );
            let _ = self.child.kill().await;
        }
        if let Err(error) = std::fs::remove_dir_all(&self.folder) {
            tracing::warn!(%error, folder = %self.folder.display(), "removing the postgres folder failed");
        }
    }
}

impl Drop for Postgres {
    /// Stops a server that [`Postgres::stop`] did not stop, as when the
    /// runner is interrupted, with a blocking `pg_ctl stop -m immediate`, and
    /// removes its folder.
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let pg_ctl = self.bin.join("pg_ctl");
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = std::process::Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&pg_ctl);
                command
            }
            None => std::process::Command::new(&pg_ctl),
        };
        let _ = command
            .arg("stop")
            .arg("-D")
            .arg(self.folder.join("data"))
            .args(["-m", "immediate", "-w", "-t", "5"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Opens a connection to the server on `port` as the superuser.
async fn connect(port: u16) -> Result<tokio_postgres::Client, String> {
    let config =
        format!("host={HOST} port={port} user={SUPERUSER} dbname={DATABASE} connect_timeout=5");
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
        .await
        .map_err(|error| format!("connecting to postgres: {error}"))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "postgres connection ended");
        }
    });
    Ok(client)
}

/// Checks that `initdb` and `postgres` are installed.
pub fn check_installed() -> Result<(), ConformanceError> {
    postgres_bin().map(drop)
}

/// Finds the folder with `initdb` and `postgres`: on PATH, or where Debian
/// installs each version (`/usr/lib/postgresql/<version>/bin`), newest first.
fn postgres_bin() -> Result<PathBuf, ConformanceError> {
    let mut folders: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let version = entry.file_name().to_str()?.parse().ok()?;
                    Some((version, entry.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    folders.extend(versions.into_iter().map(|(_, folder)| folder));

    folders
        .into_iter()
        .filter_map(|folder| std::fs::canonicalize(folder.join("initdb")).ok())
        .filter_map(|initdb| initdb.parent().map(Path::to_path_buf))
        .find(|folder| folder.join("postgres").is_file())
        .ok_or_else(|| ConformanceError::Server {
            target: "postgres".to_owned(),
            reason: "initdb and postgres are missing: install the Debian package `postgresql`"
                .to_owned(),
        })
}

fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Returns a command that runs `program` as `user` through `runuser`, or as
/// the current user.
fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// A folder that is removed on drop, unless the field is `None`.
struct FolderCleanup(Option<PathBuf>);

impl Drop for FolderCleanup {
    fn drop(&mut self) {
        if let Some(folder) = &self.0 {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}

/// Runs `command` to completion, killing it if the caller is cancelled.
async fn run(command: &mut Command) -> Result<(), ConformanceError> {
    let description = format!("{:?}", command.as_std());
    let output = command
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ConformanceError::Io {
            action: format!("running {description}"),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(ConformanceError::Server {
        target: "postgres".to_owned(),
        reason: format!(
            "{description} failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

fn io_error(action: &str, path: &Path, source: std::io::Error) -> ConformanceError {
    ConformanceError::Io {
        action: format!("{action} {}", path.display()),
        source,
    }
}
