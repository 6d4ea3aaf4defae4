//! Harness for the storage backend tests: temporary folders, free loopback ports, and real
//! Redis and PostgreSQL servers started from the programs installed on this machine.
//!
//! A server listens on 127.0.0.1 only, runs in its own temporary folder, and is stopped and
//! its folder removed when its handle is dropped. Each one also runs under `timeout`, so it
//! stops by itself even if the test process is killed before it can clean up.
//!
//! A missing program fails the test with the Debian package that provides it.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

mod postgres_server;
mod redis_server;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use std::{env, fs};

pub use postgres_server::PostgresServer;
pub use redis_server::RedisServer;

/// The only address that test servers listen on and tests connect to.
pub const LOOPBACK: &str = "127.0.0.1";

/// How long a started server lives at most, so that it stops even when the test process dies
/// without dropping its handle.
const SERVER_LIFETIME: Duration = Duration::from_secs(900);

/// How long a server may take to start or stop.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A folder under the system's temporary folder, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates an empty folder whose name starts with `label`.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "deepstream-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = env::temp_dir().join(unique);
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create a temporary folder");
        TempDir(path)
    }

    /// Returns the folder's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Returns a TCP port on 127.0.0.1 that nothing listens on at the time of the call.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind a free port on 127.0.0.1");
    listener
        .local_addr()
        .expect("read the bound address")
        .port()
}

/// Finds `program` on PATH, then in `extra_folders`, and panics with the Debian package to
/// install when it is in neither.
pub fn find_program(program: &str, package: &str, extra_folders: &[PathBuf]) -> PathBuf {
    let path_folders = env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    path_folders
        .iter()
        .chain(extra_folders)
        .map(|folder| folder.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is missing: install the Debian package `{package}` \
                 (apt-get install {package}), or put the folder that contains `{program}` on PATH"
            )
        })
}

/// Returns whether the tests run as root, where PostgreSQL refuses to start.
pub fn running_as_root() -> bool {
    let output = Command::new("id").arg("-u").output().expect("run `id -u`");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// Runs `command` to completion and panics with its output when it fails.
pub fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("failed to run {what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed with {}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Waits until `ready` returns true, checking that `child` is still running, and panics with
/// the server's log when it exits or `SERVER_START_TIMEOUT` passes.
pub fn wait_until_ready(
    child: &mut Child,
    what: &str,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + SERVER_START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("poll the server process") {
            panic!(
                "{what} exited during start-up with {status}; its log:\n{}",
                read_log(log)
            );
        }
        if ready() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{what} did not become ready within {} s; its log:\n{}",
                SERVER_START_TIMEOUT.as_secs(),
                read_log(log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` (such as `TERM`) to `child`, waits for it to exit, and kills it when it
/// takes longer than `SERVER_STOP_TIMEOUT`.
pub fn stop_child(child: &mut Child, signal: &str) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status();
    wait_or_kill(child);
}

/// Waits for `child` to exit for up to `SERVER_STOP_TIMEOUT`, then kills it.
pub fn wait_or_kill(child: &mut Child) {
    let deadline = Instant::now() + SERVER_STOP_TIMEOUT;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Returns the last 4000 bytes of a log file, for failure messages.
pub fn read_log(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|&index| text.is_char_boundary(index))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

/// Returns a `timeout` command that runs a server for at most `SERVER_LIFETIME` and passes
/// on the signals it receives.
pub fn bounded_lifetime(signal: &str) -> Command {
    let timeout = find_program("timeout", "coreutils", &[]);
    let mut command = Command::new(timeout);
    command
        .arg(format!("--signal={signal}"))
        .arg(SERVER_LIFETIME.as_secs().to_string());
    command
}
