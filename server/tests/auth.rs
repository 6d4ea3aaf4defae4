//! Authentication types `file` and `http`, a list of both, and the `deepstream hash` command,
//! against the real server on a loopback port.
//!
//! HTTP authentication talks to a webhook that each test starts on 127.0.0.1 with a port
//! chosen by the operating system.

mod common;
#[allow(
    unused_imports,
    reason = "this test uses only the temporary folders and free ports"
)]
mod storage_support;

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use common::{QUIET, RECV_TIMEOUT, RawClient, TestServer, auth_request, websocket};
use deepstream_protocol::{AuthAction, AuthMessage, PresenceAction, PresenceMessage, TopicMessage};
use deepstream_server::auth::{encoded_key_length, verify_password};
use deepstream_server::config::{
    AuthConfig, Config, FileAuthConfig, HashAlgorithm, HashSettings, HttpAuthConfig, UsersSource,
    WebhookUrl,
};
use deepstream_server::peer::CLOSE_POLICY;
use deepstream_server::{Server, ServerError};
use serde_json::{Value, json};
use storage_support::{TempDir, free_port};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Returns the users file made by the Node.js deepstream server: ada/lovelace with data, and
/// bob/builder.
fn node_users_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/auth/users-node.yml")
}

/// File authentication over the Node.js users file, with deepstream's default hash settings.
fn node_file_auth() -> AuthConfig {
    AuthConfig::File(FileAuthConfig {
        users: UsersSource::File(node_users_file()),
        hash: Some(HashSettings::DEEPSTREAM_DEFAULT),
        report_invalid_parameters: true,
    })
}

/// Runs the handshake and sends `auth_data` as the login; returns the server's AUTH reply.
async fn try_login(client: &mut RawClient, auth_data: &Value) -> AuthMessage {
    client.challenge().await;
    client.send(auth_request(&auth_data.to_string())).await;
    client.recv_auth().await
}

/// Returns the reply's data parsed as JSON, or `None` when it has none.
fn data_of(reply: &AuthMessage) -> Option<Value> {
    if reply.data.is_empty() {
        return None;
    }
    Some(serde_json::from_slice(&reply.data).expect("AUTH data is JSON"))
}

fn assert_accepted(reply: &AuthMessage, client_data: Option<&Value>) {
    assert_eq!(reply.action(), AuthAction::AuthSuccessful, "{reply:?}");
    assert_eq!(
        data_of(reply).as_ref(),
        client_data,
        "client data of {reply:?}"
    );
}

fn assert_rejected(reply: &AuthMessage, client_data: Option<&Value>) {
    assert_eq!(reply.action(), AuthAction::AuthUnsuccessful, "{reply:?}");
    assert_eq!(
        data_of(reply).as_ref(),
        client_data,
        "client data of {reply:?}"
    );
}

/// Returns the names of the other users online, as a QUERY_ALL of the logged-in `observer`
/// returns them, sorted.
async fn online_users(observer: &mut RawClient) -> Vec<String> {
    let query = PresenceMessage {
        action: PresenceAction::QueryAll.into(),
        ..Default::default()
    };
    observer.send(TopicMessage::Presence(query)).await;
    let mut names = observer.recv_presence().await.names;
    names.sort();
    names
}

// --- file authentication ---

#[tokio::test]
async fn file_right_password_logs_in() {
    let server = TestServer::start(|config| config.auth = vec![node_file_auth()]).await;
    let mut ada = server.connect("ada").await;

    let reply = try_login(
        &mut ada,
        &json!({"username": "ada", "password": "lovelace"}),
    )
    .await;

    assert_accepted(&reply, Some(&json!({"favouriteColor": "red"})));
    let mut bob = server.connect("bob").await;
    try_login(&mut bob, &json!({"username": "bob", "password": "builder"})).await;
    assert_eq!(online_users(&mut bob).await, ["ada"]);
}

#[tokio::test]
async fn file_user_without_client_data_gets_null() {
    let server = TestServer::start(|config| config.auth = vec![node_file_auth()]).await;
    let mut bob = server.connect("bob").await;

    let reply = try_login(&mut bob, &json!({"username": "bob", "password": "builder"})).await;

    // deepstream sends the JSON text `null` when the users file has no clientData.
    assert_eq!(reply.action(), AuthAction::AuthSuccessful);
    assert_eq!(&reply.data[..], b"null");
}

#[tokio::test]
async fn file_wrong_password_and_unknown_user_look_alike() {
    let server = TestServer::start(|config| config.auth = vec![node_file_auth()]).await;
    let mut wrong = server.connect("wrong password").await;
    let mut unknown = server.connect("unknown user").await;

    let wrong_reply = try_login(
        &mut wrong,
        &json!({"username": "ada", "password": "builder"}),
    )
    .await;
    let unknown_reply = try_login(
        &mut unknown,
        &json!({"username": "eve", "password": "lovelace"}),
    )
    .await;

    assert_rejected(&wrong_reply, None);
    assert_eq!(wrong_reply, unknown_reply);
    // A rejected login may try again on the same connection.
    wrong
        .send(auth_request(
            &json!({"username": "ada", "password": "lovelace"}).to_string(),
        ))
        .await;
    assert_accepted(
        &wrong.recv_auth().await,
        Some(&json!({"favouriteColor": "red"})),
    );
}

#[tokio::test]
async fn file_missing_fields_get_reason() {
    let server = TestServer::start(|config| config.auth = vec![node_file_auth()]).await;
    let missing = json!({"error": "missing authentication parameter: username or/and password"});
    for auth_data in [
        json!({}),
        json!({"username": "ada"}),
        json!({"password": "lovelace"}),
        json!({"username": "ada", "password": 1234}),
        json!({"username": null, "password": "lovelace"}),
    ] {
        let mut client = server.connect("client").await;

        let reply = try_login(&mut client, &auth_data).await;

        assert_eq!(
            (reply.action(), data_of(&reply)),
            (AuthAction::AuthUnsuccessful, Some(missing.clone())),
            "{auth_data}"
        );
    }
}

#[tokio::test]
async fn file_malformed_auth_data_closes() {
    let server = TestServer::start(|config| config.auth = vec![node_file_auth()]).await;
    for data in [
        "[\"ada\", \"lovelace\"]",
        "\"ada\"",
        "{\"username\": \"ada\"",
    ] {
        let mut client = server.connect("client").await;
        client.challenge().await;

        client.send(auth_request(data)).await;

        let reply = client.recv_auth().await;
        assert_eq!(reply.action(), AuthAction::InvalidMessageData, "{data}");
        assert_eq!(
            client.expect_closed(RECV_TIMEOUT).await,
            Some(CLOSE_POLICY),
            "{data}"
        );
    }
}

#[tokio::test]
async fn file_failed_logins_hit_attempt_limit() {
    let server = TestServer::start(|config| {
        config.auth = vec![node_file_auth()];
        websocket(config).max_auth_attempts = 2;
    })
    .await;
    let mut client = server.connect("guesser").await;
    let guess = json!({"username": "ada", "password": "guess"});

    assert_rejected(&try_login(&mut client, &guess).await, None);
    client.send(auth_request(&guess.to_string())).await;
    assert_rejected(&client.recv_auth().await, None);

    assert_eq!(
        client.recv_auth().await.action(),
        AuthAction::TooManyAuthAttempts
    );
    assert_eq!(client.expect_closed(RECV_TIMEOUT).await, Some(CLOSE_POLICY));
}

#[tokio::test]
async fn file_plain_text_users_from_json() {
    let dir = TempDir::new("auth-plain");
    let users = dir.path().join("users.json");
    fs::write(
        &users,
        r#"{"carol": {"password": "pa55", "clientData": [1, 2], "serverData": {"admin": true}}}"#,
    )
    .expect("write the users file");
    let server = TestServer::start(|config| {
        config.auth = vec![AuthConfig::File(FileAuthConfig {
            users: UsersSource::File(users),
            hash: None,
            report_invalid_parameters: true,
        })];
    })
    .await;
    let mut right = server.connect("right").await;
    let mut wrong = server.connect("wrong").await;

    let right_reply = try_login(
        &mut right,
        &json!({"username": "carol", "password": "pa55"}),
    )
    .await;
    let wrong_reply = try_login(
        &mut wrong,
        &json!({"username": "carol", "password": "PA55"}),
    )
    .await;

    assert_accepted(&right_reply, Some(&json!([1, 2])));
    assert_rejected(&wrong_reply, None);
}

#[tokio::test]
async fn file_users_from_config_file() {
    let dir = TempDir::new("auth-config");
    fs::copy(node_users_file(), dir.path().join("users.yml")).expect("copy the users file");
    let config_file = dir.path().join("config.yml");
    fs::write(
        &config_file,
        "auth:\n  - type: file\n    options:\n      path: users.yml\n      hash: md5\n\
         \x20     iterations: 100\n      keyLength: 32\n",
    )
    .expect("write the config file");
    let loaded = Config::load(&config_file).expect("the config loads");
    let server = TestServer::start(|config| config.auth = loaded.config.auth).await;
    let mut ada = server.connect("ada").await;

    let reply = try_login(
        &mut ada,
        &json!({"username": "ada", "password": "lovelace"}),
    )
    .await;

    assert_accepted(&reply, Some(&json!({"favouriteColor": "red"})));
}

#[tokio::test]
async fn file_bad_users_file_stops_start() {
    let dir = TempDir::new("auth-bad-users");
    let missing = dir.path().join("missing.yml");
    let empty = dir.path().join("empty.json");
    fs::write(&empty, "{}").expect("write the users file");
    let unparsable = dir.path().join("broken.yml");
    fs::write(&unparsable, "ada: [unclosed").expect("write the users file");
    let javascript = dir.path().join("users.js");
    fs::write(&javascript, "module.exports = {}").expect("write the users file");

    for (file, expected) in [
        (&missing, "file not found"),
        (&empty, "there are no users"),
        (&unparsable, "invalid YAML"),
        (
            &javascript,
            "expected a name ending in .yml, .yaml or .json",
        ),
    ] {
        let mut config = Config::embedded();
        config.http.host = "127.0.0.1".to_owned();
        config.http.port = 0;
        config.auth = vec![AuthConfig::File(FileAuthConfig {
            users: UsersSource::File(file.clone()),
            hash: None,
            report_invalid_parameters: true,
        })];

        let Err(error) = Server::bind(config).await else {
            panic!("the server started with the users file {}", file.display());
        };

        assert!(matches!(error, ServerError::Auth(_)), "{error:?}");
        let chain = error_chain(&error);
        assert!(chain.contains(&file.display().to_string()), "{chain}");
        assert!(chain.contains(expected), "{chain}");
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// --- HTTP authentication ---

/// What the webhook does with one request.
#[derive(Clone)]
enum Reply {
    /// Respond with a status and a JSON body.
    Json(u16, Value),
    /// Respond with a status and a `text/plain` body.
    Text(u16, &'static str),
    /// Wait, then respond with 200 and no body.
    Hang(Duration),
}

/// A request the webhook received.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Value,
}

#[derive(Clone, Default)]
struct WebhookState {
    /// Replies for the next requests, in order; the last one repeats.
    replies: Arc<Mutex<VecDeque<Reply>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

/// An HTTP endpoint for HTTP authentication on 127.0.0.1, stopped on drop.
struct Webhook {
    url: String,
    state: WebhookState,
    task: JoinHandle<()>,
}

impl Webhook {
    /// Starts a webhook that responds to POST /login with `replies` in order, repeating the
    /// last one.
    async fn start(replies: Vec<Reply>) -> Webhook {
        assert!(!replies.is_empty(), "a webhook needs at least one reply");
        let state = WebhookState {
            replies: Arc::new(Mutex::new(replies.into())),
            received: Arc::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook to 127.0.0.1 port 0");
        let addr = listener.local_addr().expect("read the webhook's address");
        let router = Router::new()
            .route("/login", post(answer))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Webhook {
            url: format!("http://{addr}/login"),
            state,
            task,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.state
            .received
            .lock()
            .expect("no webhook thread panicked while holding the lock")
            .clone()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(state): State<WebhookState>, headers: HeaderMap, body: Bytes) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state
        .received
        .lock()
        .expect("no webhook thread panicked while holding the lock")
        .push(Received { headers, body });
    let reply = {
        let mut replies = state
            .replies
            .lock()
            .expect("no webhook thread panicked while holding the lock");
        if replies.len() > 1 {
            replies.pop_front()
        } else {
            replies.front().cloned()
        }
    };
    let status = |code| StatusCode::from_u16(code).expect("the test uses valid statuses");
    match reply.expect("the webhook has a reply") {
        Reply::Json(code, body) => (
            status(code),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response(),
        Reply::Text(code, body) => (
            status(code),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response(),
        Reply::Hang(duration) => {
            tokio::time::sleep(duration).await;
            StatusCode::OK.into_response()
        }
    }
}

/// HTTP authentication at `url` that permits 200, retries 503 `retry_attempts` times after
/// 50 ms, and times out after 500 ms.
fn http_auth(url: &str, retry_attempts: u32) -> HttpAuthConfig {
    HttpAuthConfig {
        endpoint_url: WebhookUrl::parse(url).expect("the test URL is valid"),
        permitted_status_codes: vec![200],
        request_timeout: Duration::from_millis(500),
        retry_status_codes: vec![503],
        retry_attempts,
        retry_interval: Duration::from_millis(50),
        promote_to_header: vec!["token".to_owned()],
        report_invalid_parameters: true,
    }
}

#[tokio::test]
async fn http_accepts_with_data() {
    let webhook = Webhook::start(vec![
        Reply::Json(
            200,
            json!({"id": "dave", "clientData": {"plan": "pro"}, "serverData": {"admin": true}}),
        ),
        Reply::Text(200, "observer"),
    ])
    .await;
    let server = TestServer::start(|config| {
        config.auth = vec![AuthConfig::Http(http_auth(&webhook.url, 0))]
    })
    .await;
    let mut client = server.connect("dave").await;
    let auth_data = json!({"token": "t-123", "device": {"kind": "phone"}});

    let reply = try_login(&mut client, &auth_data).await;

    assert_accepted(&reply, Some(&json!({"plan": "pro"})));
    let mut observer = server.connect("observer").await;
    try_login(&mut observer, &json!({"token": "o"})).await;
    assert_eq!(online_users(&mut observer).await, ["dave"]);
    let received = webhook.received();
    assert_eq!(received.len(), 2);
    let request = &received[0];
    assert_eq!(request.body["authData"], auth_data);
    let connection = &request.body["connectionData"];
    assert_eq!(connection["remoteAddress"], "127.0.0.1");
    assert_eq!(
        connection["headers"]["host"],
        server.addr().to_string(),
        "{connection}"
    );
    assert_eq!(
        connection["headers"]["upgrade"], "websocket",
        "{connection}"
    );
    assert_eq!(
        request.headers.get("token").map(|value| value.as_bytes()),
        Some(&b"t-123"[..])
    );
    assert_eq!(
        request
            .headers
            .get(header::CONTENT_TYPE)
            .map(|value| value.as_bytes()),
        Some(&b"application/json; charset=utf-8"[..])
    );
}

#[tokio::test]
async fn http_text_body_names_user() {
    let webhook =
        Webhook::start(vec![Reply::Text(200, "erin"), Reply::Text(200, "observer")]).await;
    let server = TestServer::start(|config| {
        config.auth = vec![AuthConfig::Http(http_auth(&webhook.url, 0))]
    })
    .await;
    let mut client = server.connect("erin").await;

    let reply = try_login(&mut client, &json!({"token": "t"})).await;

    assert_accepted(&reply, None);
    let mut observer = server.connect("observer").await;
    try_login(&mut observer, &json!({"token": "o"})).await;
    assert_eq!(online_users(&mut observer).await, ["erin"]);
}

#[tokio::test]
async fn http_rejects_other_statuses() {
    let webhook = Webhook::start(vec![
        Reply::Json(401, json!({"clientData": {"reason": "expired"}})),
        Reply::Text(403, "locked"),
        Reply::Json(
            200,
            json!({"isValid": false, "clientData": {"reason": "banned"}}),
        ),
        Reply::Json(404, json!({"isValid": true, "id": "mallory"})),
    ])
    .await;
    let server = TestServer::start(|config| {
        config.auth = vec![AuthConfig::Http(http_auth(&webhook.url, 0))]
    })
    .await;

    for expected in [
        Some(json!({"reason": "expired"})),
        Some(json!({"error": "locked"})),
        Some(json!({"reason": "banned"})),
        None,
    ] {
        let mut client = server.connect("client").await;
        let reply = try_login(&mut client, &json!({"token": "t"})).await;
        assert_rejected(&reply, expected.as_ref());
    }
    assert_eq!(webhook.received().len(), 4);
}

#[tokio::test]
async fn http_timeout_rejects() {
    let webhook = Webhook::start(vec![Reply::Hang(Duration::from_secs(5))]).await;
    let server = TestServer::start(|config| {
        config.auth = vec![AuthConfig::Http(http_auth(&webhook.url, 0))]
    })
    .await;
    let mut client = server.connect("client").await;
    client.challenge().await;
    let started = Instant::now();

    client.send(auth_request(r#"{"token":"t"}"#)).await;

    let reply = client.recv_auth().await;
    assert_rejected(
        &reply,
        Some(&json!({"error": "AUTH_RETRY_ATTEMPTS_EXCEEDED"})),
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(2),
        "the login took {waited:?} with a 500 ms request timeout"
    );
}

#[tokio::test]
async fn login_timeout_ends_slow_webhook_login() {
    let webhook = Webhook::start(vec![Reply::Hang(Duration::from_secs(5))]).await;
    let server = TestServer::start(|config| {
        let mut auth = http_auth(&webhook.url, 0);
        auth.request_timeout = Duration::from_secs(4);
        config.auth = vec![AuthConfig::Http(auth)];
        websocket(config).unauthenticated_client_timeout = Some(Duration::from_millis(300));
    })
    .await;
    let mut client = server.connect("client").await;
    client.challenge().await;
    let started = Instant::now();

    client.send(auth_request(r#"{"token":"t"}"#)).await;

    let timeout = client.recv_connection().await;
    assert_eq!(
        timeout.action(),
        deepstream_protocol::ConnectionAction::AuthenticationTimeout
    );
    assert!(
        client.expect_closed(Duration::from_secs(2)).await.is_some(),
        "the connection stayed open"
    );
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "the login waited {waited:?} for the webhook, past the 300 ms login timeout"
    );
}

#[tokio::test]
async fn http_retry_then_success() {
    let webhook = Webhook::start(vec![
        Reply::Text(503, "busy"),
        Reply::Text(503, "busy"),
        Reply::Text(200, "frank"),
    ])
    .await;
    let server = TestServer::start(|config| {
        config.auth = vec![AuthConfig::Http(http_auth(&webhook.url, 2))]
    })
    .await;
    let mut client = server.connect("frank").await;

    let reply = try_login(&mut client, &json!({"token": "t"})).await;

    assert_accepted(&reply, None);
    let received = webhook.received();
    assert_eq!(received.len(), 3);
    assert!(
        received.windows(2).all(|pair| pair[0].body == pair[1].body),
        "retries send the same request"
    );
}

#[tokio::test]
async fn http_retries_run_out() {
    let webhook = Webhook::start(vec![Reply::Text(503, "busy")]).await;
    let server = TestServer::start(|config| {
        config.auth = vec![AuthConfig::Http(http_auth(&webhook.url, 2))]
    })
    .await;
    let mut client = server.connect("client").await;

    let reply = try_login(&mut client, &json!({"token": "t"})).await;

    assert_rejected(
        &reply,
        Some(&json!({"error": "AUTH_RETRY_ATTEMPTS_EXCEEDED"})),
    );
    assert_eq!(webhook.received().len(), 3, "one request and two retries");
}

#[tokio::test]
async fn http_unreachable_endpoint_rejects() {
    // Nothing listens on a port that was free a moment ago, so connecting is refused.
    let url = format!("http://127.0.0.1:{}/login", free_port());
    let server =
        TestServer::start(|config| config.auth = vec![AuthConfig::Http(http_auth(&url, 1))]).await;
    let mut client = server.connect("client").await;

    let reply = try_login(&mut client, &json!({"token": "t"})).await;

    assert_rejected(
        &reply,
        Some(&json!({"error": "AUTH_RETRY_ATTEMPTS_EXCEEDED"})),
    );
    // The server keeps serving: the same client may try again.
    client.send(auth_request(r#"{"token":"t"}"#)).await;
    assert_eq!(
        client.recv_auth().await.action(),
        AuthAction::AuthUnsuccessful
    );
}

// --- a list of services ---

/// Loads `auth` from a config file with a file entry over the Node.js users and an http
/// entry at `webhook_url`, so the list gets deepstream's defaults for several entries.
fn chained_auth(dir: &TempDir, webhook_url: &str) -> Vec<AuthConfig> {
    fs::copy(node_users_file(), dir.path().join("users.yml")).expect("copy the users file");
    let config_file = dir.path().join("config.yml");
    let text = format!(
        "auth:\n\
         \x20 - type: file\n    options:\n      path: users.yml\n      hash: md5\n      iterations: 100\n      keyLength: 32\n\
         \x20 - type: http\n    options:\n      endpointUrl: {webhook_url}\n      permittedStatusCodes: [200]\n\
         \x20     requestTimeout: 1000\n      retryStatusCodes: []\n      retryAttempts: 0\n      retryInterval: 0\n"
    );
    fs::write(&config_file, text).expect("write the config file");
    Config::load(&config_file)
        .expect("the config loads")
        .config
        .auth
}

#[tokio::test]
async fn chain_tries_file_then_http() {
    let dir = TempDir::new("auth-chain");
    let webhook = Webhook::start(vec![
        Reply::Text(200, "grace"),
        Reply::Json(401, json!({"clientData": {"reason": "unknown token"}})),
    ])
    .await;
    let auth = chained_auth(&dir, &webhook.url);
    let server = TestServer::start(|config| config.auth = auth).await;

    // The users file contains ada, so the webhook gets no request.
    let mut ada = server.connect("ada").await;
    let reply = try_login(
        &mut ada,
        &json!({"username": "ada", "password": "lovelace"}),
    )
    .await;
    assert_accepted(&reply, Some(&json!({"favouriteColor": "red"})));
    assert_eq!(webhook.received().len(), 0);

    // A wrong password in a list is left to the webhook, which accepts.
    let mut grace = server.connect("grace").await;
    let reply = try_login(&mut grace, &json!({"username": "ada", "password": "x"})).await;
    assert_accepted(&reply, None);
    assert_eq!(webhook.received().len(), 1);

    // In a list the webhook's rejection is not reported, so no entry decides and the login
    // is rejected without data.
    let mut eve = server.connect("eve").await;
    let reply = try_login(&mut eve, &json!({"username": "eve", "password": "x"})).await;
    assert_rejected(&reply, None);
    assert_eq!(webhook.received().len(), 2);

    let mut bob = server.connect("bob").await;
    try_login(&mut bob, &json!({"username": "bob", "password": "builder"})).await;
    assert_eq!(online_users(&mut bob).await, ["ada", "grace"]);
}

// --- the `deepstream hash` command ---

fn deepstream(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deepstream"))
        .args(args)
        .current_dir(dir)
        .env_remove("DEEPSTREAM_CONFIG_DIRECTORY")
        .output()
        .expect("run the deepstream binary")
}

/// Returns the hash from `deepstream hash` output, which prints `Password hash: <hash>`
/// like the Node.js server's command.
fn printed_hash(output: &Output) -> String {
    let stdout = String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8");
    assert!(
        output.status.success(),
        "deepstream hash failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.strip_suffix('\n').expect("one line on stdout");
    line.strip_prefix("Password hash: ")
        .unwrap_or_else(|| panic!("unexpected output {stdout:?}"))
        .to_owned()
}

#[test]
fn hash_command_uses_file_auth_settings() {
    let dir = TempDir::new("hash-command");
    fs::write(
        dir.path().join("config.yml"),
        "auth:\n  - type: none\n  - type: file\n    options:\n      path: users.yml\n\
         \x20     hash: sha512\n      iterations: 2000\n      keyLength: 48\n",
    )
    .expect("write the config file");

    let output = deepstream(&["hash", "s3cret", "-c", "config.yml"], dir.path());

    let hash = printed_hash(&output);
    let settings = HashSettings {
        algorithm: HashAlgorithm::Sha512,
        iterations: 2000,
        key_length: 48,
    };
    assert_eq!(hash.len(), encoded_key_length(48) + 24, "{hash}");
    assert!(verify_password("s3cret", &hash, &settings));
    assert!(!verify_password(
        "s3cret",
        &hash,
        &HashSettings::DEEPSTREAM_DEFAULT
    ));
}

#[test]
fn hash_command_needs_no_users_file() {
    // deepstream's shipped layout: the users and the rules come from files that a new
    // installation may not have written yet.
    let dir = TempDir::new("hash-command");
    fs::write(
        dir.path().join("config.yml"),
        "auth:\n  - type: file\n    options:\n      users: fileLoad(users.yml)\n\
         \x20     hash: sha256\n      iterations: 100\n      keyLength: 32\n\
         permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n",
    )
    .expect("write the config file");

    let output = deepstream(&["hash", "s3cret", "-c", "config.yml"], dir.path());

    let hash = printed_hash(&output);
    let settings = HashSettings {
        algorithm: HashAlgorithm::Sha256,
        iterations: 100,
        key_length: 32,
    };
    assert!(verify_password("s3cret", &hash, &settings));
}

#[test]
fn hash_command_without_file_auth_uses_defaults() {
    let dir = TempDir::new("hash-command");
    fs::write(dir.path().join("config.yml"), "auth:\n  - type: none\n").expect("write the config");

    let output = deepstream(&["hash", "pässwörd", "--config", "config.yml"], dir.path());

    let hash = printed_hash(&output);
    assert!(verify_password(
        "pässwörd",
        &hash,
        &HashSettings::DEEPSTREAM_DEFAULT
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("default settings"), "{stderr}");
}

#[test]
fn hash_command_errors() {
    let dir = TempDir::new("hash-command");
    fs::write(
        dir.path().join("plain.yml"),
        "auth:\n  type: file\n  options:\n    path: users.yml\n",
    )
    .expect("write the config file");

    let plain = deepstream(&["hash", "s3cret", "-c", "plain.yml"], dir.path());
    let missing_config = deepstream(&["hash", "s3cret", "-c", "absent.yml"], dir.path());
    let missing_password = deepstream(&["hash"], dir.path());

    assert_eq!(plain.status.code(), Some(1));
    assert!(plain.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("plain-text passwords"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert_eq!(missing_config.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing_config.stderr).contains("absent.yml"),
        "{}",
        String::from_utf8_lossy(&missing_config.stderr)
    );
    assert_eq!(missing_password.status.code(), Some(2));
    assert!(missing_password.stdout.is_empty());
}

#[tokio::test]
async fn hashed_password_logs_in() {
    let dir = TempDir::new("hash-login");
    fs::write(dir.path().join("config.yml"), "auth:\n  - type: none\n").expect("write the config");
    let hash = printed_hash(&deepstream(
        &["hash", "hopper", "-c", "config.yml"],
        dir.path(),
    ));
    let users = dir.path().join("users.yml");
    fs::write(&users, format!("grace:\n  password: \"{hash}\"\n")).expect("write the users file");
    let server = TestServer::start(|config| {
        config.auth = vec![AuthConfig::File(FileAuthConfig {
            users: UsersSource::File(users),
            hash: Some(HashSettings::DEEPSTREAM_DEFAULT),
            report_invalid_parameters: true,
        })];
    })
    .await;
    let mut grace = server.connect("grace").await;
    let mut guesser = server.connect("guesser").await;

    let right = try_login(
        &mut grace,
        &json!({"username": "grace", "password": "hopper"}),
    )
    .await;
    let wrong = try_login(
        &mut guesser,
        &json!({"username": "grace", "password": "Hopper"}),
    )
    .await;

    assert_eq!(right.action(), AuthAction::AuthSuccessful);
    assert_rejected(&wrong, None);
    grace.expect_silence(QUIET).await;
}
