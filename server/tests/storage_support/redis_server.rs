//! A `redis-server` process for one test.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::{LOOPBACK, TempDir, bounded_lifetime, find_program, free_port, stop_child};

/// A Redis server on a free port of 127.0.0.1, without persistence, stopped on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    // Dropped after the process stops, which the field order guarantees.
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server that needs no password.
    pub fn start() -> RedisServer {
        RedisServer::launch(None)
    }

    /// Starts a server that requires `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> RedisServer {
        RedisServer::launch(Some(password))
    }

    fn launch(password: Option<&str>) -> RedisServer {
        let program = find_program("redis-server", "redis-server", &[]);
        let dir = TempDir::new("redis");
        let port = free_port();
        let log_path = dir.path().join("redis.log");
        let log = File::create(&log_path).expect("create the Redis log file");

        let mut command = bounded_lifetime("TERM");
        command
            .arg(&program)
            .args(["--port", &port.to_string()])
            .args(["--bind", LOOPBACK])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path());
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        let mut child = command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("failed to start {}: {error}", program.display()));

        super::wait_until_ready(&mut child, "redis-server", &log_path, || answers_ping(port));
        RedisServer { child, port, dir }
    }

    /// Returns the port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the server's folder, which contains its log.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // `timeout` passes TERM on to redis-server, which then exits.
        stop_child(&mut self.child, "TERM");
    }
}

/// Returns whether a Redis server on `port` replies to `PING`. A `-NOAUTH` error counts too,
/// because it shows that the server is up and requires a password.
fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((LOOPBACK, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0_u8; 1];
    matches!(stream.read(&mut reply), Ok(1) if reply[0] == b'+' || reply[0] == b'-')
}
