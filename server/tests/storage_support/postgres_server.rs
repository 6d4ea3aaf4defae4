//! A PostgreSQL server for one test: `initdb` into a temporary folder, then `postgres` on a
//! free port of 127.0.0.1.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use deepstream_server::config::{PostgresConfig, PostgresConnection};

use super::{
    LOOPBACK, TempDir, find_program, free_port, run, running_as_root, wait_or_kill,
    wait_until_ready,
};

/// The operating system user that runs PostgreSQL when the tests run as root, because
/// PostgreSQL refuses to run as root.
const SERVER_USER: &str = "postgres";

/// The database superuser that `initdb` creates and the tests log in as.
pub const SUPERUSER: &str = "postgres";

/// A PostgreSQL server with `trust` authentication on 127.0.0.1 only, stopped on drop.
#[derive(Debug)]
pub struct PostgresServer {
    child: Child,
    port: u16,
    bin: PathBuf,
    data: PathBuf,
    run_as: Option<&'static str>,
    // Dropped after the process stops, which the field order guarantees.
    dir: TempDir,
}

impl PostgresServer {
    /// Creates a database cluster and starts a server on it.
    pub fn start() -> PostgresServer {
        let initdb = find_program("initdb", "postgresql", &installed_bin_folders());
        // Debian links some programs into /usr/bin or /usr/local/bin. The real folder contains
        // `postgres` and `pg_ctl` of the same version.
        let bin = fs::canonicalize(&initdb)
            .ok()
            .and_then(|path| path.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| panic!("cannot resolve the folder of {}", initdb.display()));
        for program in ["postgres", "pg_ctl", "pg_isready"] {
            assert!(
                bin.join(program).is_file(),
                "`{program}` is missing next to {}: install the Debian package `postgresql`",
                initdb.display()
            );
        }

        let run_as = running_as_root().then_some(SERVER_USER);
        let dir = TempDir::new("postgres");
        let data = dir.path().join("data");
        let sockets = dir.path().join("sockets");
        fs::create_dir_all(&sockets).expect("create the socket folder");
        if let Some(user) = run_as {
            give_to_user(dir.path(), user);
        }

        run(
            command_as(run_as, &bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C"])
                .arg("--no-sync")
                .current_dir(dir.path()),
            "initdb",
        );

        let port = free_port();
        let log_path = dir.path().join("postgres.log");
        let log = File::create(&log_path).expect("create the PostgreSQL log file");
        // `timeout` bounds the server's lifetime and passes INT (fast shutdown) on to it.
        let mut command = command_as(run_as, &find_program("timeout", "coreutils", &[]));
        command
            .args([
                "--signal=INT",
                &super::SERVER_LIFETIME.as_secs().to_string(),
            ])
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .arg("-k")
            .arg(&sockets)
            .args(["-c", &format!("listen_addresses={LOOPBACK}")])
            // The tests check commits, not the disk, so skipping fsync only saves time.
            .args(["-c", "fsync=off"]);
        let mut child = command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("failed to start postgres: {error}"));

        let pg_isready = bin.join("pg_isready");
        wait_until_ready(&mut child, "postgres", &log_path, || {
            Command::new(&pg_isready)
                .args([
                    "-h",
                    LOOPBACK,
                    "-p",
                    &port.to_string(),
                    "-U",
                    SUPERUSER,
                    "-t",
                    "1",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        });
        PostgresServer {
            child,
            port,
            bin,
            data,
            run_as,
            dir,
        }
    }

    /// Returns the port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns storage settings for this server: the `postgres` database, table `ds.records`.
    pub fn config(&self) -> PostgresConfig {
        PostgresServer::config_for_port(self.port)
    }

    /// Returns the settings that [`PostgresServer::config`] would return for a server on
    /// `port`, whether or not one runs there.
    pub fn config_for_port(port: u16) -> PostgresConfig {
        PostgresConfig {
            connection: PostgresConnection::Parameters {
                host: LOOPBACK.to_owned(),
                port,
                user: SUPERUSER.to_owned(),
                password: None,
                database: "postgres".to_owned(),
            },
            schema: "ds".to_owned(),
            table: "records".to_owned(),
            max_connections: 4,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Returns a connection string for this server, for an administrator's client.
    pub fn connection_string(&self) -> String {
        format!(
            "host={LOOPBACK} port={} user={SUPERUSER} dbname=postgres",
            self.port
        )
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = command_as(self.run_as, &self.bin.join("pg_ctl"))
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", "20"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        wait_or_kill(&mut self.child);
    }
}

/// Returns the folders where Debian installs each PostgreSQL version's programs, newest
/// first.
fn installed_bin_folders() -> Vec<PathBuf> {
    let mut folders: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
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
    folders.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    folders.into_iter().map(|(_, folder)| folder).collect()
}

/// Returns a command that runs `program` as `user` (through `runuser`), or as the current user.
fn command_as(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let runuser = find_program("runuser", "util-linux", &[PathBuf::from("/usr/sbin")]);
            let mut command = Command::new(runuser);
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Makes `user` the owner of `folder` and everything in it.
fn give_to_user(folder: &Path, user: &str) {
    let known = Command::new("id")
        .args(["-u", user])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        known,
        "the `{user}` user is missing, and PostgreSQL cannot run as root: install the Debian \
         package `postgresql`, which creates it"
    );
    run(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{user}:{user}"))
            .arg(folder),
        "chown",
    );
}
