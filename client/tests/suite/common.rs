//! Servers for the integration tests: our server in-process, or the official
//! Node.js server 7.x from `interop/node_modules` as a child process.
//!
//! Every test is written once and runs against both through [`targets!`].
//! Servers listen on 127.0.0.1 on free ports and stop when dropped. Every
//! wait is bounded.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use deepstream_client::core::{Options, SessionError};
use deepstream_client::tokio::Client;
use deepstream_server::auth::{AuthFuture, AuthOutcome, Authenticator, ConnectionData};
use deepstream_server::config::{PermissionConfig, StorageConfig};
use deepstream_server::{Config, Server};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The only host servers listen on and clients connect to.
pub const LOOPBACK: &str = "127.0.0.1";
/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to check that nothing more happens.
pub const QUIET: Duration = Duration::from_millis(300);
/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a Node.js server may live, even if the test process dies.
const NODE_MAX_LIFETIME_SECS: u32 = 300;

/// The user that the servers started with [`Auth::Users`] know.
pub const USER: &str = "ada";
/// That user's password.
pub const PASSWORD: &str = "s3cret";
/// That user's client data.
pub const CLIENT_DATA: &str = r#"{"role":"admin"}"#;

/// Which server a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `deepstream-server` from this workspace, in-process.
    Rust,
    /// The official `@deepstream/server` 7.x, as a Node.js process.
    Node,
}

/// How a server authenticates logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Everyone gets in under the `username` they send.
    Open,
    /// Only [`USER`] with [`PASSWORD`] gets in, with [`CLIENT_DATA`].
    Users,
}

/// Declares one `#[tokio::test]` per target that runs `$body(target)`.
#[macro_export]
macro_rules! targets {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rust() {
                $crate::common::run($crate::common::Target::Rust, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn node() {
                $crate::common::run($crate::common::Target::Node, $body).await;
            }
        }
    };
}

/// Runs a test body for `target`. Fails when the Node.js server is not installed.
pub async fn run<F, Fut>(target: Target, body: F)
where
    F: FnOnce(Target) -> Fut,
    Fut: Future<Output = ()>,
{
    init_tracing();
    assert!(
        target != Target::Node || node_server_script().exists(),
        "the Node.js deepstream server is not installed at {}: run `npm ci` in interop/ \
         (./scripts/test does)",
        node_server_script().display()
    );
    tokio::time::timeout(Duration::from_secs(60), body(target))
        .await
        .expect("test did not finish within 60 s");
}

fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
    });
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the client crate sits in the workspace")
        .to_path_buf()
}

fn node_server_script() -> PathBuf {
    workspace_root().join("interop/node_modules/@deepstream/server/dist/bin/deepstream.js")
}

/// A running server of either target.
pub struct TestServer {
    target: Target,
    auth: Auth,
    port: u16,
    running: Option<Running>,
}

enum Running {
    Rust {
        shutdown: oneshot::Sender<()>,
        task: JoinHandle<()>,
    },
    Node(NodeProcess),
}

impl TestServer {
    /// Starts a server of `target` on a free port.
    pub async fn start(target: Target, auth: Auth) -> TestServer {
        TestServer::start_on(target, auth, 0).await
    }

    /// Starts our server on a free port with open logins, after `configure`
    /// has changed its config. A [`TestServer::restart`] drops the change.
    pub async fn start_rust_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let (port, running) = start_rust(Auth::Open, 0, configure).await;
        TestServer {
            target: Target::Rust,
            auth: Auth::Open,
            port,
            running: Some(running),
        }
    }

    /// Starts our server on a free port with open logins and the permission
    /// `rules`, the text of a `permissions.yml`.
    pub async fn start_rust_with_rules(rules: &str) -> TestServer {
        let permission = load_permissions(rules);
        TestServer::start_rust_with(move |config| config.permission = permission).await
    }

    async fn start_on(target: Target, auth: Auth, port: u16) -> TestServer {
        let (port, running) = match target {
            Target::Rust => start_rust(auth, port, |_| {}).await,
            Target::Node => {
                let port = if port == 0 { free_port() } else { port };
                (port, Running::Node(NodeProcess::start(auth, port).await))
            }
        };
        TestServer {
            target,
            auth,
            port,
            running: Some(running),
        }
    }

    /// Returns the WebSocket URL of the server.
    pub fn url(&self) -> String {
        format!("ws://{LOOPBACK}:{}/deepstream", self.port)
    }

    /// Stops the server and waits until it has stopped.
    pub async fn stop(&mut self) {
        match self.running.take() {
            Some(Running::Rust { shutdown, task }) => {
                let _ = shutdown.send(());
                tokio::time::timeout(STOP_TIMEOUT, task)
                    .await
                    .expect("our server did not stop in time")
                    .expect("our server's task panicked");
            }
            Some(Running::Node(mut process)) => process.stop().await,
            None => {}
        }
    }

    /// Starts the server again on the same port after [`TestServer::stop`].
    pub async fn restart(&mut self) {
        assert!(self.running.is_none(), "restart() needs a stopped server");
        let started = TestServer::start_on(self.target, self.auth, self.port).await;
        let mut started = started;
        self.running = started.running.take();
    }

    /// Connects a client with options suited to tests.
    pub async fn client(&self) -> Client {
        self.client_with(test_options()).await
    }

    /// Connects a client with `options`.
    pub async fn client_with(&self, options: Options) -> Client {
        Client::connect(&self.url(), options)
            .await
            .expect("connecting to the test server failed")
    }

    /// Connects a client and logs it in as `user`.
    pub async fn login(&self, user: &str) -> Client {
        let client = self.client().await;
        let auth = json!({ "username": user }).to_string();
        within(client.login(&auth))
            .await
            .unwrap_or_else(|error| panic!("login as {user} failed: {error}"));
        client
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        match self.running.take() {
            Some(Running::Rust { shutdown, task }) => {
                let _ = shutdown.send(());
                task.abort();
            }
            Some(Running::Node(process)) => drop(process),
            None => {}
        }
    }
}

/// Options with short timers, so that tests of reconnection finish quickly.
pub fn test_options() -> Options {
    let mut options = Options::default();
    options.reconnect_interval_increment = Duration::from_millis(200);
    options.max_reconnect_interval = Duration::from_millis(500);
    options.max_reconnect_attempts = 40;
    options.offline_buffer_timeout = Duration::from_secs(5);
    options
}

/// Awaits `future` for at most [`WAIT`].
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("nothing happened within the test's wait time")
}

/// Permission rules that allow everything except subscribing to events and
/// listening to event names under `secret/`, providing RPCs under `secret/`,
/// and following the user `vip`.
pub const SUBSCRIBE_RULES: &str = r#"
record:
  "*":
    create: true
    write: true
    read: true
    delete: true
    listen: true
    notify: true
event:
  "*":
    publish: true
    subscribe: true
    listen: true
  "secret/*":
    subscribe: false
    listen: false
rpc:
  "*":
    provide: true
    request: true
  "secret/*":
    provide: false
presence:
  "*":
    allow: true
  "vip":
    allow: false
"#;

/// Loads the permission `rules` the way the server binary does: from a
/// `permissions.yml` named by a `config.yml`, both in a fresh folder.
pub fn load_permissions(rules: &str) -> PermissionConfig {
    // Tests run in parallel in one process, so each call gets its own folder.
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let folder = std::env::temp_dir().join(format!(
        "deepstream-client-permissions-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&folder).expect("creating the config folder failed");
    std::fs::write(folder.join("permissions.yml"), rules).expect("writing permissions.yml failed");
    std::fs::write(
        folder.join("config.yml"),
        "permission:\n  type: config\n  options:\n    path: ./permissions.yml\n",
    )
    .expect("writing config.yml failed");
    let loaded = Config::load(&folder.join("config.yml"));
    let _ = std::fs::remove_dir_all(&folder);
    let permission = loaded.expect("the test config is valid").config.permission;
    assert!(
        matches!(permission, PermissionConfig::Rules(_)),
        "the config loaded no rules: {permission:?}"
    );
    permission
}

/// Connects a client whose acknowledgement timeout is far shorter than
/// [`QUIET`], logs it in as `user`, and returns it with its error stream.
pub async fn login_with_short_ack_timeout(
    server: &TestServer,
    user: &str,
) -> (Client, broadcast::Receiver<SessionError>) {
    let mut options = test_options();
    options.subscription_timeout = Duration::from_millis(100);
    let client = server.client_with(options).await;
    let auth = json!({ "username": user }).to_string();
    within(client.login(&auth))
        .await
        .unwrap_or_else(|error| panic!("login as {user} failed: {error}"));
    let errors = client.errors();
    (client, errors)
}

/// Waits for the next error on `errors` and checks that it is the server
/// denying `original_action` for `name`.
pub async fn expect_denial(
    errors: &mut broadcast::Receiver<SessionError>,
    name: &str,
    original_action: &str,
) {
    let error = within(errors.recv()).await.expect("the error stream ended");
    match &error {
        SessionError::Server {
            action,
            name: denied,
            original_action: denied_action,
            ..
        } => {
            assert_eq!(action, "MESSAGE_DENIED", "{error:?}");
            assert_eq!(denied, name, "{error:?}");
            assert_eq!(denied_action.as_deref(), Some(original_action), "{error:?}");
        }
        other => panic!("expected a denial of {original_action} {name:?}, got {other:?}"),
    }
}

/// Returns `Some` when `future` completes within [`QUIET`], `None` otherwise.
pub async fn maybe<T>(future: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(QUIET, future).await.ok()
}

async fn start_rust(auth: Auth, port: u16, configure: impl FnOnce(&mut Config)) -> (u16, Running) {
    let mut config = Config::embedded();
    config.http.host = LOOPBACK.to_owned();
    config.http.port = port;
    config.storage = StorageConfig::Memory;
    configure(&mut config);
    let mut server = bind_with_retry(config).await;
    if auth == Auth::Users {
        server = server.with_authenticator(Arc::new(UserTable));
    }
    let addr: SocketAddr = server.local_addr();
    assert!(addr.ip().is_loopback(), "server bound {addr}");
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let result = server
            .run(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = result {
            panic!("our server failed: {error}");
        }
    });
    (addr.port(), Running::Rust { shutdown, task })
}

/// Binds, retrying for a while when a restart finds the port still taken.
async fn bind_with_retry(config: Config) -> Server {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match Server::bind(config.clone()).await {
            Ok(server) => return server,
            Err(error) if Instant::now() < deadline => {
                tracing::debug!(%error, "bind failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("binding our server failed: {error}"),
        }
    }
}

/// Our server's stand-in for deepstream's `file` authentication.
struct UserTable;

impl Authenticator for UserTable {
    fn authenticate<'a>(
        &'a self,
        _connection: &'a ConnectionData,
        auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a> {
        let valid = auth_data.get("username") == Some(&json!(USER))
            && auth_data.get("password") == Some(&json!(PASSWORD));
        let outcome = if valid {
            AuthOutcome::Accepted {
                user: USER.to_owned(),
                client_data: Some(serde_json::from_str(CLIENT_DATA).expect("valid JSON")),
                server_data: None,
            }
        } else {
            AuthOutcome::Rejected { client_data: None }
        };
        Box::pin(std::future::ready(outcome))
    }
}

/// Returns a port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind((LOOPBACK, 0)).expect("binding port 0 failed");
    listener.local_addr().expect("bound address").port()
}

/// The official server as a child process in its own process group, so that
/// dropping it kills `timeout` and `node` together.
struct NodeProcess {
    child: Option<tokio::process::Child>,
    folder: PathBuf,
}

impl NodeProcess {
    async fn start(auth: Auth, port: u16) -> NodeProcess {
        let folder = std::env::temp_dir().join(format!(
            "deepstream-client-test-{}-{port}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&folder).expect("creating the server folder failed");
        let config_path = folder.join("config.json");
        std::fs::write(&config_path, node_config(auth, port).to_string())
            .expect("writing the server config failed");

        let child = tokio::process::Command::new("timeout")
            .arg("--kill-after=5")
            .arg(NODE_MAX_LIFETIME_SECS.to_string())
            .arg("node")
            .arg(node_server_script())
            .args(["start", "-c"])
            .arg(&config_path)
            .args(["--host", LOOPBACK, "--port", &port.to_string()])
            .current_dir(&folder)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("starting node failed; is Node.js installed?");
        let mut process = NodeProcess {
            child: Some(child),
            folder,
        };
        process.wait_until_ready(port).await;
        process
    }

    async fn wait_until_ready(&mut self, port: u16) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last_problem = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("the Node.js server exited early: {status}");
                }
            }
            match health_check(port).await {
                Ok(()) => {
                    let url = format!("ws://{LOOPBACK}:{port}/deepstream");
                    match tokio::time::timeout(
                        Duration::from_secs(1),
                        tokio_tungstenite_probe(&url),
                    )
                    .await
                    {
                        Ok(Ok(())) => return,
                        Ok(Err(error)) => last_problem = error,
                        Err(_) => last_problem = "WebSocket upgrade timed out".to_owned(),
                    }
                }
                Err(error) => last_problem = error,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the Node.js server was not ready within {START_TIMEOUT:?}: {last_problem}");
    }

    async fn stop(&mut self) {
        self.signal("-TERM");
        if let Some(mut child) = self.child.take() {
            if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_err()
            {
                self.kill_group(&child);
                let _ = child.wait().await;
            }
        }
    }

    fn signal(&self, signal: &str) {
        if let Some(pid) = self.child.as_ref().and_then(tokio::process::Child::id) {
            let _ = std::process::Command::new("kill")
                .args([signal, "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }

    fn kill_group(&self, child: &tokio::process::Child) {
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.signal("-KILL");
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// The Node.js server's config: only deepstream's own keys, the binary
/// WebSocket endpoint alone, and 127.0.0.1.
fn node_config(auth: Auth, port: u16) -> Value {
    let auth = match auth {
        Auth::Open => json!([{ "type": "none" }]),
        Auth::Users => json!([{
            "type": "file",
            "options": {
                "users": {
                    USER: {
                        "password": PASSWORD,
                        "clientData": serde_json::from_str::<Value>(CLIENT_DATA).expect("valid JSON"),
                    }
                }
            }
        }]),
    };
    json!({
        "serverName": format!("client-test-{port}"),
        "showLogo": false,
        "logLevel": "WARN",
        "httpServer": {
            "type": "default",
            "options": { "host": LOOPBACK, "port": port, "healthCheckPath": "/health-check" }
        },
        "connectionEndpoints": [
            { "type": "ws-binary", "options": { "urlPath": "/deepstream" } }
        ],
        "auth": auth,
        "permission": { "type": "none" }
    })
}

async fn health_check(port: u16) -> Result<(), String> {
    let mut stream = TcpStream::connect((LOOPBACK, port))
        .await
        .map_err(|error| error.to_string())?;
    let request = format!(
        "GET /health-check HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| error.to_string())?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut response))
        .await
        .map_err(|_| "health check timed out".to_owned())?
        .map_err(|error| error.to_string())?;
    let head = String::from_utf8_lossy(&response);
    if head.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!(
            "health check answered {:?}",
            head.lines().next().unwrap_or("")
        ))
    }
}

async fn tokio_tungstenite_probe(url: &str) -> Result<(), String> {
    let client = Client::connect(url, Options::default())
        .await
        .map_err(|error| error.to_string())?;
    client.close().await;
    Ok(())
}
