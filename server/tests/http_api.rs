//! deepstream's HTTP API against a running server: batches of every item type, items
//! that meet WebSocket clients (subscribers, RPC providers, presence), authentication
//! with auth data and tokens, permission rules, CORS, and every kind of bad request.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use deepstream_protocol::{
    EventAction, PresenceAction, RecordAction, RpcAction, RpcMessage, TopicMessage,
};
use deepstream_server::auth::{AuthFuture, AuthOutcome, Authenticator, ConnectionData};
use deepstream_server::config::{PermissionConfig, PermissionRules};
use deepstream_server::permission::{PermissionOptions, Permissions};
use deepstream_server::storage::{MemoryCache, MemoryStorage, Storage, StoredRecord};
use deepstream_server::{Config, Server, ServerError};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one HTTP request of a test may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP response as the tests read it.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    /// Parses the body as JSON; panics with the body when it is not.
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("response is not JSON ({error}): {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Sends `body` to `path` with the given method and headers.
async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> Reply {
    let url = format!("http://{}{path}", server.addr());
    let mut request = reqwest::Client::new()
        .request(method, &url)
        .timeout(HTTP_TIMEOUT)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("request to {url} failed: {error}"));
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("reading the response failed"),
    }
}

/// Posts `body` as JSON text to `path`.
async fn post_text(server: &TestServer, path: &str, body: &str) -> Reply {
    send(
        server,
        reqwest::Method::POST,
        path,
        &[("content-type", "application/json")],
        body.to_owned(),
    )
    .await
}

/// Posts a JSON value to `path`.
async fn post(server: &TestServer, path: &str, body: Value) -> Reply {
    post_text(server, path, &body.to_string()).await
}

/// Posts a batch to `/api` and returns the parsed response, which must have status 200.
async fn batch(server: &TestServer, body: Value) -> Value {
    let reply = post(server, "/api", body).await;
    assert_eq!(reply.status, 200, "batch failed: {}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    reply.json()
}

/// Returns `{"success": true}` with `fields` added.
fn success(fields: &Value) -> Value {
    let mut result = fields.as_object().cloned().unwrap_or_default();
    result.insert("success".into(), json!(true));
    Value::Object(result)
}

/// Accepts `{"username": U, "password": "U-pass"}` as user U, a login without a password
/// as its user name (so WebSocket test clients can log in), the token `webhook-token` as
/// `webhook-user`, and nothing else. Keeps the auth data and headers it was given.
#[derive(Default)]
struct Passwords {
    seen: Mutex<Vec<(Map<String, Value>, ConnectionData)>>,
}

impl Authenticator for Passwords {
    fn authenticate<'a>(
        &'a self,
        connection: &'a ConnectionData,
        auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a> {
        self.seen
            .lock()
            .expect("no test panics while it holds the lock")
            .push((auth_data.clone(), connection.clone()));
        let user = auth_data.get("username").and_then(Value::as_str);
        let password = auth_data.get("password").and_then(Value::as_str);
        let token = auth_data.get("token").and_then(Value::as_str);
        let outcome = match (user, password, token) {
            (Some(user), Some(password), _) if password == format!("{user}-pass") => {
                AuthOutcome::Accepted {
                    user: user.to_owned(),
                    client_data: Some(json!({ "greeting": format!("hello {user}") })),
                    server_data: None,
                }
            }
            (Some(user), None, None) => AuthOutcome::Accepted {
                user: user.to_owned(),
                client_data: None,
                server_data: None,
            },
            (None, None, Some("webhook-token")) => AuthOutcome::Accepted {
                user: "webhook-user".to_owned(),
                client_data: None,
                server_data: None,
            },
            (None, None, None) => AuthOutcome::Accepted {
                user: "open".to_owned(),
                client_data: None,
                server_data: None,
            },
            _ => AuthOutcome::Rejected {
                client_data: Some(json!({ "reason": "wrong password" })),
            },
        };
        Box::pin(std::future::ready(outcome))
    }
}

impl Passwords {
    /// Returns the auth data and connection details of every authentication so far.
    fn seen(&self) -> Vec<(Map<String, Value>, ConnectionData)> {
        self.seen
            .lock()
            .expect("no test panics while it holds the lock")
            .clone()
    }
}

/// Starts a server with the `Passwords` authenticator and returns it too.
async fn start_with_passwords(configure: impl FnOnce(&mut Config)) -> (TestServer, Arc<Passwords>) {
    let passwords = Arc::new(Passwords::default());
    let server = TestServer::start_with_authenticator(configure, passwords.clone()).await;
    (server, passwords)
}

/// Provides the RPC `name` on a logged-in client and checks the ack.
async fn provide(client: &mut RawClient, name: &str) {
    let provide = RpcMessage {
        action: RpcAction::Provide.into(),
        name: name.into(),
        correlation_id: format!("provide {name}"),
        ..Default::default()
    };
    client.send(TopicMessage::Rpc(provide)).await;
    let ack = client.recv_rpc().await;
    assert!(
        ack.is_ack,
        "{}: expected the PROVIDE ack, got {ack:?}",
        client.label()
    );
}

/// Waits for the next REQUEST on a provider and returns it.
async fn next_request(provider: &mut RawClient) -> RpcMessage {
    let request = provider.recv_rpc().await;
    assert_eq!(request.action(), RpcAction::Request, "{request:?}");
    request
}

/// Sends the provider's reply to `request`: ACCEPT, RESPONSE or REQUEST_ERROR.
async fn reply(provider: &mut RawClient, request: &RpcMessage, action: RpcAction, data: &[u8]) {
    let reply = RpcMessage {
        action: action.into(),
        name: request.name.clone(),
        correlation_id: request.correlation_id.clone(),
        data: Bytes::copy_from_slice(data),
        ..Default::default()
    };
    provider.send(TopicMessage::Rpc(reply)).await;
}

#[tokio::test]
async fn batch_with_failures_is_partial_success() {
    let server = TestServer::start(|_| {}).await;

    let response = batch(
        &server,
        json!({"body": [
            {"topic": "event", "action": "emit", "eventName": "news", "data": 1},
            {"topic": "record", "action": "read", "recordName": "missing/1"},
            {"topic": "rpc", "action": "make", "rpcName": "nobody-provides-this"},
            {"topic": "record", "action": "head", "recordName": "missing/1"},
        ]}),
    )
    .await;

    assert_eq!(response["result"], json!("PARTIAL_SUCCESS"), "{response}");
    let body = response["body"].as_array().unwrap();
    assert_eq!(body.len(), 4);
    assert_eq!(body[0], json!({"success": true}));
    assert_eq!(body[1]["success"], json!(false));
    assert_eq!(body[1]["errorTopic"], json!("record"));
    assert_eq!(
        body[1]["errorEvent"],
        json!(i32::from(RecordAction::RecordNotFound))
    );
    assert_eq!(body[1]["error"], json!("record \"missing/1\" not found"));
    assert_eq!(body[2]["errorTopic"], json!("rpc"));
    assert_eq!(
        body[2]["errorEvent"],
        json!(i32::from(RpcAction::NoRpcProvider))
    );
    assert_eq!(body[3], success(&json!({"version": -1})));
    server.stop().await;
}

#[tokio::test]
async fn batch_of_failures_is_failure() {
    let server = TestServer::start(|_| {}).await;

    let response = batch(
        &server,
        json!({"body": [{"topic": "record", "action": "read", "recordName": "missing/2"}]}),
    )
    .await;

    assert_eq!(response["result"], json!("FAILURE"));
    server.stop().await;
}

#[tokio::test]
async fn emit_reaches_websocket_subscriber() {
    let server = TestServer::start(|_| {}).await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["news"], "1").await;

    let response = batch(
        &server,
        json!({"body": [
            {"topic": "event", "action": "emit", "eventName": "news", "data": {"headline": "hi"}},
            {"topic": "event", "action": "emit", "eventName": "news"},
        ]}),
    )
    .await;

    assert_eq!(
        response,
        json!({"result": "SUCCESS", "body": [{"success": true}, {"success": true}]})
    );
    let first = subscriber.recv_event().await;
    assert_eq!(first.action(), EventAction::Emit);
    assert_eq!(first.name, "news");
    assert_eq!(&first.data[..], br#"{"headline":"hi"}"#);
    let second = subscriber.recv_event().await;
    assert!(second.data.is_empty(), "an emit without data: {second:?}");
    subscriber.expect_silence(QUIET).await;
    server.stop().await;
}

#[tokio::test]
async fn rpc_make_answered_by_websocket_provider() {
    let server = TestServer::start(|config| config.rpc.provide_requestor_name = true).await;
    let mut provider = server.login("math").await;
    provide(&mut provider, "add").await;
    provide(&mut provider, "divide").await;

    let request = tokio::spawn({
        let url = format!("http://{}/api", server.addr());
        async move {
            let body = json!({"authData": {"username": "ada"}, "body": [
                {"topic": "rpc", "action": "make", "rpcName": "add", "data": {"a": 2, "b": 3}},
                {"topic": "rpc", "action": "make", "rpcName": "divide", "data": [1, 0]},
            ]});
            let response = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .timeout(HTTP_TIMEOUT)
                .send()
                .await
                .expect("posting the batch failed");
            let text = response.text().await.expect("reading the response failed");
            serde_json::from_str::<Value>(&text).expect("the response is JSON")
        }
    });

    let add = next_request(&mut provider).await;
    assert_eq!(add.name, "add");
    assert_eq!(&add.data[..], br#"{"a":2,"b":3}"#);
    assert_eq!(add.requestor_name, "ada");
    reply(&mut provider, &add, RpcAction::Accept, b"").await;
    reply(&mut provider, &add, RpcAction::Response, b"5").await;
    let divide = next_request(&mut provider).await;
    assert_eq!(divide.name, "divide");
    reply(
        &mut provider,
        &divide,
        RpcAction::RequestError,
        br#""division by zero""#,
    )
    .await;

    let response = request.await.expect("the request task panicked");
    assert_eq!(
        response,
        json!({"result": "PARTIAL_SUCCESS", "body": [
            {"data": 5, "success": true},
            {"errorTopic": "rpc", "error": "division by zero", "success": false},
        ]})
    );
    provider.expect_silence(QUIET).await;
    server.stop().await;
}

#[tokio::test]
async fn record_write_then_read_head_and_patch() {
    let server = TestServer::start(|_| {}).await;
    let mut watcher = server.login("watcher").await;
    watcher.subscribe_record("books/1").await;

    let response = batch(
        &server,
        json!({"body": [
            {"topic": "record", "action": "write", "recordName": "books/1", "data": {"title": "Emma"}},
            {"topic": "record", "action": "read", "recordName": "books/1"},
            {"topic": "record", "action": "head", "recordName": "books/1"},
            {"topic": "record", "action": "write", "recordName": "books/1", "path": "author.name", "data": "Austen", "version": 2},
            {"topic": "record", "action": "read", "recordName": "books/1"},
        ]}),
    )
    .await;

    assert_eq!(
        response,
        json!({"result": "SUCCESS", "body": [
            {"success": true},
            {"version": 1, "data": {"title": "Emma"}, "success": true},
            {"version": 1, "success": true},
            {"success": true},
            {"version": 2, "data": {"title": "Emma", "author": {"name": "Austen"}}, "success": true},
        ]})
    );
    let update = watcher.recv_record().await;
    assert_eq!(
        (update.action(), update.version),
        (RecordAction::Update, Some(1))
    );
    let patch = watcher.recv_record().await;
    assert_eq!(
        (patch.action(), patch.version, patch.path.as_str()),
        (RecordAction::Patch, Some(2), "author.name")
    );
    server.stop().await;
}

#[tokio::test]
async fn record_write_of_existing_version_conflicts() {
    let server = TestServer::start(|_| {}).await;
    batch(
        &server,
        json!({"body": [{"topic": "record", "action": "write", "recordName": "doc", "data": {"v": 1}}]}),
    )
    .await;

    let response = batch(
        &server,
        json!({"body": [
            {"topic": "record", "action": "write", "recordName": "doc", "data": {"v": 2}, "version": 1},
            {"topic": "record", "action": "write", "recordName": "doc", "data": {"v": 9}, "version": 9},
        ]}),
    )
    .await;

    assert_eq!(response["result"], json!("FAILURE"));
    let conflict = &response["body"][0];
    assert_eq!(
        conflict["errorEvent"],
        json!(i32::from(RecordAction::VersionExists))
    );
    assert_eq!(conflict["currentVersion"], json!(1));
    assert_eq!(conflict["currentData"], json!({"v": 1}));
    let skipped = &response["body"][1];
    assert_eq!(
        skipped["errorEvent"],
        json!(i32::from(RecordAction::InvalidVersion))
    );
    assert_eq!(skipped["currentVersion"], json!(1));
    server.stop().await;
}

#[tokio::test]
async fn record_delete_removes_record() {
    let server = TestServer::start(|_| {}).await;
    let mut watcher = server.login("watcher").await;
    watcher.subscribe_record("to-delete").await;

    let response = batch(
        &server,
        json!({"body": [
            {"topic": "record", "action": "write", "recordName": "to-delete", "data": {"x": 1}},
            {"topic": "record", "action": "delete", "recordName": "to-delete"},
            {"topic": "record", "action": "head", "recordName": "to-delete"},
            {"topic": "record", "action": "read", "recordName": "to-delete"},
        ]}),
    )
    .await;

    let body = &response["body"];
    assert_eq!(body[0], json!({"success": true}));
    assert_eq!(body[1], json!({"success": true}));
    assert_eq!(body[2], success(&json!({"version": -1})));
    assert_eq!(
        body[3]["errorEvent"],
        json!(i32::from(RecordAction::RecordNotFound))
    );
    assert_eq!(watcher.recv_record().await.action(), RecordAction::Update);
    assert_eq!(watcher.recv_record().await.action(), RecordAction::Deleted);
    server.stop().await;
}

#[tokio::test]
async fn list_write_and_read() {
    let server = TestServer::start(|_| {}).await;

    let response = batch(
        &server,
        json!({"body": [
            {"topic": "list", "action": "write", "listName": "todo", "data": ["a", "b"]},
            {"topic": "list", "action": "read", "listName": "todo"},
            {"topic": "list", "action": "delete", "listName": "todo"},
        ]}),
    )
    .await;

    assert_eq!(
        response["body"],
        json!([
            {"success": true},
            {"version": 1, "data": ["a", "b"], "success": true},
            {"success": true},
        ])
    );
    server.stop().await;
}

#[tokio::test]
async fn notify_reloads_record_from_storage() {
    let storage = Arc::new(MemoryStorage::new());
    let server =
        TestServer::start_with_stores(|_| {}, Arc::new(MemoryCache::new()), storage.clone()).await;
    let mut watcher = server.login("watcher").await;
    watcher.subscribe_record("external/1").await;
    storage
        .set(
            "external/1",
            StoredRecord {
                version: 4,
                data: Bytes::from_static(br#"{"from":"storage"}"#),
            },
        )
        .await
        .expect("writing the storage failed");

    let response = batch(
        &server,
        json!({"body": [{"topic": "record", "action": "notify", "recordNames": ["external/1", "external/2"]}]}),
    )
    .await;

    assert_eq!(
        response,
        json!({"result": "SUCCESS", "body": [{"success": true}]})
    );
    let update = watcher.recv_record().await;
    assert_eq!(
        (update.action(), update.version, &update.data[..]),
        (RecordAction::Update, Some(4), &br#"{"from":"storage"}"#[..])
    );
    server.stop().await;
}

#[tokio::test]
async fn presence_query_sees_websocket_users() {
    let server = TestServer::start(|_| {}).await;
    let _ada = server.login("ada").await;

    let response = batch(
        &server,
        json!({"body": [
            {"topic": "presence", "action": "query"},
            {"topic": "presence", "action": "query", "names": ["ada", "bob"]},
        ]}),
    )
    .await;

    assert_eq!(
        response["body"],
        json!([
            {"users": ["ada"], "success": true},
            {"users": {"ada": true, "bob": false}, "success": true},
        ])
    );
    server.stop().await;
}

#[tokio::test]
async fn presence_leaves_out_http_users() {
    let server = TestServer::start(|_| {}).await;
    let mut watcher = server.login("watcher").await;
    let subscribe_all = deepstream_protocol::PresenceMessage {
        action: PresenceAction::SubscribeAll.into(),
        ..Default::default()
    };
    watcher.send(TopicMessage::Presence(subscribe_all)).await;
    assert!(watcher.recv_presence().await.is_ack);

    batch(
        &server,
        json!({"authData": {"username": "visitor"}, "body": [{"topic": "event", "action": "emit", "eventName": "x"}]}),
    )
    .await;

    watcher.expect_silence(QUIET).await;
    server.stop().await;
}

#[tokio::test]
async fn auth_data_logs_in_as_user() {
    let (server, passwords) = start_with_passwords(|config| {
        config.rpc.provide_requestor_name = true;
    })
    .await;
    let mut provider = server.login("whoami").await;
    provide(&mut provider, "whoami").await;

    let request = tokio::spawn({
        let url = format!("http://{}/api", server.addr());
        async move {
            let body = json!({"authData": {"username": "ada", "password": "ada-pass"}, "body": [
                {"topic": "rpc", "action": "make", "rpcName": "whoami"},
            ]});
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .header("x-app", "tests")
                .body(body.to_string())
                .timeout(HTTP_TIMEOUT)
                .send()
                .await
                .expect("posting the batch failed")
                .status()
                .as_u16()
        }
    });
    let call = next_request(&mut provider).await;
    reply(&mut provider, &call, RpcAction::Response, b"\"ok\"").await;

    assert_eq!(request.await.unwrap(), 200);
    assert_eq!(call.requestor_name, "ada");
    let seen = passwords.seen();
    let (auth_data, connection) = seen.last().unwrap();
    assert_eq!(
        Value::Object(auth_data.clone()),
        json!({"username": "ada", "password": "ada-pass"})
    );
    assert_eq!(connection.remote_address, "127.0.0.1");
    assert_eq!(
        connection.headers.get("x-app").map(String::as_str),
        Some("tests")
    );
    server.stop().await;
}

#[tokio::test]
async fn token_from_auth_endpoint_logs_in() {
    let (server, passwords) = start_with_passwords(|_| {}).await;

    let issued = post(
        &server,
        "/api/auth",
        json!({"username": "ada", "password": "ada-pass"}),
    )
    .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let issued = issued.json();
    assert_eq!(issued["clientData"], json!({"greeting": "hello ada"}));
    let token = issued["token"].as_str().expect("a token string").to_owned();
    assert!(token.len() >= 32, "{token}");
    let logins_before = passwords.seen().len();

    let response = batch(
        &server,
        json!({"token": token, "body": [
            {"topic": "record", "action": "write", "recordName": "users/ada", "data": {"by": "token"}},
        ]}),
    )
    .await;

    assert_eq!(response["result"], json!("SUCCESS"));
    assert_eq!(
        passwords.seen().len(),
        logins_before,
        "an issued token needs no authentication service"
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_token_goes_to_authenticator() {
    let (server, passwords) = start_with_passwords(|_| {}).await;

    let accepted = post(
        &server,
        "/api",
        json!({"token": "webhook-token", "body": [{"topic": "presence", "action": "query"}]}),
    )
    .await;
    let rejected = post(
        &server,
        "/api",
        json!({"token": "made-up", "body": [{"topic": "presence", "action": "query"}]}),
    )
    .await;

    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(rejected.status, 401, "{}", rejected.text);
    let seen = passwords.seen();
    assert_eq!(
        Value::Object(seen[0].0.clone()),
        json!({"token": "webhook-token"})
    );
    server.stop().await;
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let (server, _) = start_with_passwords(|config| {
        config.http_api.as_mut().unwrap().token_timeout = Duration::from_millis(200);
    })
    .await;
    let issued = post(
        &server,
        "/api/auth",
        json!({"username": "ada", "password": "ada-pass"}),
    )
    .await
    .json();
    let token = issued["token"].as_str().unwrap().to_owned();
    let body = json!({"token": token, "body": [{"topic": "presence", "action": "query"}]});
    assert_eq!(post(&server, "/api", body.clone()).await.status, 200);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let expired = post(&server, "/api", body).await;

    assert_eq!(expired.status, 401);
    assert!(
        expired.text.contains("token has expired"),
        "{}",
        expired.text
    );
    assert!(expired.text.contains("/api/auth"), "{}", expired.text);
    server.stop().await;
}

#[tokio::test]
async fn wrong_credentials_get_401() {
    let (server, _) = start_with_passwords(|_| {}).await;
    let credentials = json!({"username": "ada", "password": "not-the-password"});

    let on_api = post(
        &server,
        "/api",
        json!({"authData": credentials, "body": [{"topic": "presence", "action": "query"}]}),
    )
    .await;
    let on_auth = post(&server, "/api/auth", credentials).await;

    for reply in [&on_api, &on_auth] {
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(reply.text.contains("invalid credentials"), "{}", reply.text);
        assert!(reply.text.contains("wrong password"), "{}", reply.text);
        assert!(!reply.text.contains("not-the-password"), "{}", reply.text);
    }
    server.stop().await;
}

#[tokio::test]
async fn auth_data_can_be_disabled() {
    let (server, _) = start_with_passwords(|config| {
        config.http_api.as_mut().unwrap().allow_auth_data = false;
    })
    .await;

    let reply = post(
        &server,
        "/api",
        json!({"authData": {"username": "ada", "password": "ada-pass"}, "body": [{"topic": "presence", "action": "query"}]}),
    )
    .await;
    let token = post(
        &server,
        "/api/auth",
        json!({"username": "ada", "password": "ada-pass"}),
    )
    .await;

    assert_eq!(reply.status, 400);
    assert!(reply.text.contains("allowAuthData"), "{}", reply.text);
    assert_eq!(
        token.status, 200,
        "the auth endpoint still takes credentials"
    );
    server.stop().await;
}

#[tokio::test]
async fn auth_endpoint_can_be_disabled() {
    let server = TestServer::start(|config| {
        config.http_api.as_mut().unwrap().enable_auth_endpoint = false;
    })
    .await;

    let reply = post(&server, "/api/auth", json!({"username": "ada"})).await;

    assert_eq!(reply.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn logins_are_counted_as_http() {
    let (server, _) = start_with_passwords(|_| {}).await;
    let query = json!([{"topic": "presence", "action": "query"}]);
    post(
        &server,
        "/api",
        json!({"authData": {"username": "ada", "password": "ada-pass"}, "body": query}),
    )
    .await;
    post(
        &server,
        "/api",
        json!({"authData": {"username": "ada", "password": "wrong"}, "body": query}),
    )
    .await;
    post(
        &server,
        "/api/auth",
        json!({"username": "ada", "password": "ada-pass"}),
    )
    .await;

    let metrics = send(&server, reqwest::Method::GET, "/metrics", &[], "").await;

    assert!(
        metrics
            .text
            .contains("deepstream_logins_total{endpoint=\"http\",result=\"allowed\"} 2\n"),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("deepstream_logins_total{endpoint=\"http\",result=\"declined\"} 1\n"),
        "{}",
        metrics.text
    );
    server.stop().await;
}

const RULES: &str = r#"
record:
  "*":
    create: true
    read: true
    write: true
    delete: true
    listen: true
    notify: true
  "secret/*":
    create: false
    read: false
    write: false
    delete: false
    notify: false
  "owned/$owner":
    write: "user.id === $owner"
  "broken/*":
    write: "data.a.b.c === 1"
  "rooms/$room/*":
    write: "_('rooms/' + $room).members.indexOf(user.id) !== -1"
event:
  "*":
    publish: true
    subscribe: true
    listen: true
  "private/*":
    publish: false
  "chat/*":
    publish: "data.text.length < 10"
rpc:
  "*":
    provide: true
    request: true
  "forbidden":
    request: false
presence:
  "*":
    allow: true
  "ghost":
    allow: false
"#;

async fn start_with_rules() -> TestServer {
    let document: serde_yaml::Value = serde_yaml::from_str(RULES).expect("the rules are YAML");
    let options = PermissionOptions::default();
    let permissions = Permissions::from_yaml(&document, Path::new("permissions.yml"), &options)
        .expect("the rules are valid");
    TestServer::start(move |config| {
        config.permission = PermissionConfig::Rules(PermissionRules {
            permissions,
            source: "permissions.yml".into(),
            max_rule_iterations: options.max_rule_iterations,
        });
    })
    .await
}

#[tokio::test]
async fn rules_see_earlier_items_of_batch() {
    let server = start_with_rules().await;
    let response = batch(
        &server,
        json!({"authData": {"username": "ada"}, "body": [
            {"topic": "record", "action": "write", "recordName": "rooms/r5", "data": {"members": ["ada"]}},
            {"topic": "record", "action": "write", "recordName": "rooms/r5/m1", "data": {"text": "hi"}},
            {"topic": "record", "action": "write", "recordName": "profiles/ada", "data": {"age": 1}},
            {"topic": "record", "action": "write", "recordName": "profiles/ada", "path": "age", "data": 2},
            {"topic": "record", "action": "read", "recordName": "profiles/ada"},
        ]}),
    )
    .await;
    assert_eq!(response["result"], json!("SUCCESS"), "{response}");
    assert_eq!(response["body"][4]["data"], json!({"age": 2}), "{response}");
    server.stop().await;
}

#[tokio::test]
async fn permissions_deny_items() {
    let server = start_with_rules().await;
    let mut subscriber = server.login("subscriber").await;
    subscriber
        .subscribe_events(&["private/news", "chat/room"], "1")
        .await;

    let response = batch(
        &server,
        json!({"authData": {"username": "ada"}, "body": [
            {"topic": "record", "action": "read", "recordName": "secret/plans"},
            {"topic": "record", "action": "write", "recordName": "secret/plans", "data": {}},
            {"topic": "record", "action": "write", "recordName": "secret/plans", "path": "a", "data": 1},
            {"topic": "record", "action": "notify", "recordNames": ["open/1", "secret/plans"]},
            {"topic": "event", "action": "emit", "eventName": "private/news", "data": 1},
            {"topic": "event", "action": "emit", "eventName": "chat/room", "data": {"text": "a very long message"}},
            {"topic": "event", "action": "emit", "eventName": "chat/room", "data": {"text": "short"}},
            {"topic": "rpc", "action": "make", "rpcName": "forbidden"},
            {"topic": "presence", "action": "query", "names": ["ada", "ghost"]},
            {"topic": "record", "action": "write", "recordName": "owned/ada", "data": {"mine": true}},
            {"topic": "record", "action": "write", "recordName": "owned/bob", "data": {"mine": true}},
            {"topic": "record", "action": "write", "recordName": "broken/1", "data": {}},
        ]}),
    )
    .await;

    assert_eq!(response["result"], json!("PARTIAL_SUCCESS"), "{response}");
    let body = response["body"].as_array().unwrap();
    let denied = |action: RecordAction, name: &str| {
        json!({
            "errorTopic": "record",
            "errorEvent": i32::from(RecordAction::MessageDenied),
            "success": false,
            "action": i32::from(action),
            "error": format!("{} on record \"{name}\" is not permitted", action.as_str_name().trim_start_matches("RECORD_ACTION_")),
        })
    };
    assert_eq!(body[0], denied(RecordAction::Read, "secret/plans"));
    assert_eq!(
        body[1],
        denied(RecordAction::Createandupdate, "secret/plans")
    );
    assert_eq!(
        body[2],
        denied(RecordAction::Createandpatch, "secret/plans")
    );
    assert_eq!(body[3], denied(RecordAction::Notify, "secret/plans"));
    let event_denied = |name: &str| {
        json!({
            "success": false,
            "error": format!("emitting event \"{name}\" is not permitted"),
            "errorEvent": "MESSAGE_DENIED",
            "errorAction": "emit",
            "errorTopic": "event",
        })
    };
    assert_eq!(body[4], event_denied("private/news"));
    assert_eq!(body[5], event_denied("chat/room"));
    assert_eq!(body[6], json!({"success": true}));
    assert_eq!(body[7]["errorTopic"], json!("rpc"));
    assert_eq!(
        body[7]["errorEvent"],
        json!(i32::from(RpcAction::MessageDenied))
    );
    assert_eq!(body[7]["action"], json!(i32::from(RpcAction::Request)));
    assert_eq!(body[8]["errorTopic"], json!("presence"));
    assert_eq!(
        body[8]["errorEvent"],
        json!(i32::from(PresenceAction::MessageDenied))
    );
    assert_eq!(body[9], json!({"success": true}));
    assert_eq!(body[10], denied(RecordAction::Createandupdate, "owned/bob"));
    assert_eq!(
        body[11]["errorEvent"],
        json!(i32::from(RecordAction::MessagePermissionError))
    );
    assert_eq!(body[11]["errorParams"], json!("broken/1"));

    let delivered = subscriber.recv_event().await;
    assert_eq!(
        (delivered.name.as_str(), &delivered.data[..]),
        ("chat/room", &br#"{"text":"short"}"#[..])
    );
    subscriber.expect_silence(QUIET).await;
    let mut reader = server.login("reader").await;
    let bob = reader.read_record("owned/bob").await;
    assert_eq!(
        bob.action(),
        RecordAction::RecordNotFound,
        "the denied write did not happen"
    );
    server.stop().await;
}

#[tokio::test]
async fn disabled_topic_fails_item() {
    let server = TestServer::start(|config| config.features.event = false).await;

    let response = batch(
        &server,
        json!({"body": [
            {"topic": "event", "action": "emit", "eventName": "news"},
            {"topic": "presence", "action": "query"},
        ]}),
    )
    .await;

    assert_eq!(response["result"], json!("PARTIAL_SUCCESS"));
    assert_eq!(response["body"][0]["errorEvent"], json!("UNKNOWN_TOPIC"));
    assert!(
        response["body"][0]["error"]
            .as_str()
            .unwrap()
            .contains("enabledFeatures.event"),
        "{response}"
    );
    server.stop().await;
}

#[tokio::test]
async fn slow_items_time_out() {
    let server = TestServer::start(|config| {
        config.http_api.as_mut().unwrap().request_timeout = Duration::from_millis(300);
    })
    .await;
    let mut provider = server.login("slow").await;
    provide(&mut provider, "slow").await;

    let started = tokio::time::Instant::now();
    let response = tokio::spawn({
        let url = format!("http://{}/api", server.addr());
        async move {
            let body = json!({"body": [
                {"topic": "rpc", "action": "make", "rpcName": "slow"},
                {"topic": "event", "action": "emit", "eventName": "quick"},
            ]});
            let response = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .timeout(HTTP_TIMEOUT)
                .send()
                .await
                .expect("posting the batch failed");
            serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap()
        }
    });
    let call = next_request(&mut provider).await;
    reply(&mut provider, &call, RpcAction::Accept, b"").await;
    let response = response.await.unwrap();

    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(response["result"], json!("PARTIAL_SUCCESS"));
    assert_eq!(response["body"][0]["success"], json!(false));
    assert_eq!(response["body"][0]["errorTopic"], json!("connection"));
    assert_eq!(
        response["body"][0]["errorEvent"],
        json!("HTTP_REQUEST_TIMEOUT")
    );
    // The request is gone: a late response reaches no one and is no error for the provider.
    reply(&mut provider, &call, RpcAction::Response, b"1").await;
    provider.expect_silence(QUIET).await;
    provider.assert_ping_gets_pong().await;
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_4xx_with_reason() {
    let server = TestServer::start(|_| {}).await;
    let emit = r#"{"topic": "event", "action": "emit", "eventName": "news"}"#;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("malformed JSON", "{\"body\": [".into(), 400, "request body is not valid JSON"),
        ("empty body", String::new(), 400, "request body is not valid JSON"),
        ("not an object", "[1, 2]".into(), 400, "request body must be a JSON object, found a list"),
        ("a string", "\"body\"".into(), 400, "request body must be a JSON object, found a string"),
        ("no body", "{}".into(), 400, "missing field `body`"),
        ("body not a list", r#"{"body": {}}"#.into(), 400, "invalid field `body`: expected a non-empty list of requests, found an object"),
        ("empty list", r#"{"body": []}"#.into(), 400, "found an empty list"),
        ("unknown field", format!(r#"{{"authdata": {{}}, "body": [{emit}]}}"#), 400, "unknown field `authdata` in the request object"),
        ("item not an object", r#"{"body": [7]}"#.into(), 400, "invalid request at body[0]: expected an object"),
        ("unknown topic", format!(r#"{{"body": [{emit}, {{"topic": "mail", "action": "send"}}]}}"#), 400, "invalid request at body[1]: unknown topic `mail`"),
        ("unknown action", r#"{"body": [{"topic": "record", "action": "subscribe", "recordName": "a"}]}"#.into(), 400, "unknown action `subscribe` for topic `record`; expected one of read, head, write, delete, notify"),
        ("missing field", r#"{"body": [{"topic": "rpc", "action": "make"}]}"#.into(), 400, "missing field `rpcName`, which rpc make requires"),
        ("extra field", r#"{"body": [{"topic": "record", "action": "head", "recordName": "a", "version": 1}]}"#.into(), 400, "unknown field `version` for record head"),
        ("invalid version", r#"{"body": [{"topic": "record", "action": "write", "recordName": "a", "data": {}, "version": "2"}]}"#.into(), 400, "invalid `version` for record write"),
        ("invalid path", r#"{"body": [{"topic": "record", "action": "write", "recordName": "a", "data": 1, "path": "a[x]"}]}"#.into(), 400, "invalid `path` for record write"),
        ("authData not an object", format!(r#"{{"authData": "ada", "body": [{emit}]}}"#), 400, "invalid field `authData`: expected an object, found a string"),
        ("empty token", format!(r#"{{"token": "", "body": [{emit}]}}"#), 400, "invalid field `token`: expected a non-empty string"),
    ];
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["news"], "1").await;

    for (case, body, status, message) in cases {
        let reply = post_text(&server, "/api", &body).await;
        assert_eq!(reply.status, status, "{case}: {}", reply.text);
        assert!(reply.text.contains(message), "{case}: {}", reply.text);
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{case}"
        );
    }
    // No item of a rejected request ran, not even the valid emits before a bad item.
    subscriber.expect_silence(QUIET).await;

    let token_body = post_text(&server, "/api/auth", "[]").await;
    assert_eq!(token_body.status, 400, "{}", token_body.text);
    server.stop().await;
}

#[tokio::test]
async fn wrong_content_type_and_method_are_rejected() {
    let server = TestServer::start(|_| {}).await;
    let body = json!({"body": [{"topic": "presence", "action": "query"}]}).to_string();

    let text = send(
        &server,
        reqwest::Method::POST,
        "/api",
        &[("content-type", "text/plain")],
        body.clone(),
    )
    .await;
    let none = send(&server, reqwest::Method::POST, "/api", &[], body.clone()).await;
    let with_charset = send(
        &server,
        reqwest::Method::POST,
        "/api",
        &[("content-type", "Application/JSON; charset=utf-8")],
        body.clone(),
    )
    .await;
    let get = send(&server, reqwest::Method::GET, "/api", &[], "").await;
    let put = send(
        &server,
        reqwest::Method::PUT,
        "/api/auth",
        &[("content-type", "application/json")],
        body,
    )
    .await;

    assert_eq!(text.status, 415, "{}", text.text);
    assert!(text.text.contains("application/json"), "{}", text.text);
    assert_eq!(none.status, 415, "{}", none.text);
    assert_eq!(with_charset.status, 200, "{}", with_charset.text);
    for reply in [&get, &put] {
        assert_eq!(reply.status, 405, "{}", reply.text);
        assert_eq!(reply.header("allow"), Some("POST, OPTIONS"));
        assert!(reply.text.contains("send a POST request"), "{}", reply.text);
    }
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_is_rejected() {
    let server = TestServer::start(|config| config.http.max_message_size = 1024).await;
    let data = "x".repeat(2000);
    let body =
        json!({"body": [{"topic": "event", "action": "emit", "eventName": "big", "data": data}]});

    let declared = post(&server, "/api", body.clone()).await;
    let chunked = post_chunked(&server, &body.to_string()).await;
    let small = post(
        &server,
        "/api",
        json!({"body": [{"topic": "presence", "action": "query"}]}),
    )
    .await;

    assert_eq!(declared.status, 413, "{}", declared.text);
    assert!(
        declared
            .text
            .contains("larger than the maximum of 1024 bytes"),
        "{}",
        declared.text
    );
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert_eq!(small.status, 200, "{}", small.text);
    server.stop().await;
}

/// Posts `body` to `/api` with chunked transfer encoding, which has no Content-Length,
/// over a raw connection, and returns the response's first bytes.
async fn post_chunked(server: &TestServer, body: &str) -> String {
    let mut stream = TcpStream::connect(server.addr())
        .await
        .expect("connecting failed");
    let mut request = format!(
        "POST /api HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        server.addr()
    );
    for chunk in body.as_bytes().chunks(500) {
        request.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            String::from_utf8_lossy(chunk)
        ));
    }
    request.push_str("0\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("writing the request failed");
    read_response_head(&mut stream).await
}

/// Reads from `stream` until the end of the response head, within [`HTTP_TIMEOUT`].
async fn read_response_head(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    let read = async {
        loop {
            let count = stream.read(&mut buffer).await.expect("reading failed");
            response.extend_from_slice(&buffer[..count]);
            if count == 0 || response.windows(4).any(|window| window == b"\r\n\r\n") {
                break;
            }
        }
    };
    tokio::time::timeout(HTTP_TIMEOUT, read)
        .await
        .expect("no response in time");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn body_that_never_arrives_times_out() {
    let server = TestServer::start(|config| {
        config.http_api.as_mut().unwrap().request_timeout = Duration::from_millis(300);
    })
    .await;
    let mut stream = TcpStream::connect(server.addr())
        .await
        .expect("connecting failed");
    let head = format!(
        "POST /api HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"body\":",
        server.addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();

    let response = read_response_head(&mut stream).await;

    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    server.stop().await;
}

#[tokio::test]
async fn cors_allows_every_origin_by_default() {
    let server = TestServer::start(|_| {}).await;

    let reply = send(
        &server,
        reqwest::Method::POST,
        "/api",
        &[
            ("content-type", "application/json"),
            ("origin", "https://anywhere.example"),
        ],
        json!({"body": [{"topic": "presence", "action": "query"}]}).to_string(),
    )
    .await;
    let preflight = send(
        &server,
        reqwest::Method::OPTIONS,
        "/api",
        &[
            ("origin", "https://anywhere.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
        "",
    )
    .await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(preflight.status, 204, "{}", preflight.text);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("POST, OPTIONS")
    );
    assert!(
        preflight
            .header("access-control-allow-headers")
            .is_some_and(|headers| headers.contains("Content-Type")),
        "{:?}",
        preflight.headers
    );
    server.stop().await;
}

#[tokio::test]
async fn cors_limits_origins_when_configured() {
    let server = TestServer::start(|config| {
        config.http.allow_all_origins = false;
        config.http.origins = vec!["https://app.example".to_owned()];
    })
    .await;
    let body = json!({"body": [{"topic": "presence", "action": "query"}]}).to_string();
    let post_from = |origin: Option<&'static str>| {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        let body = body.clone();
        let server = &server;
        async move { send(server, reqwest::Method::POST, "/api", &headers, body).await }
    };

    let allowed = post_from(Some("https://app.example")).await;
    let other = post_from(Some("https://evil.example")).await;
    let missing = post_from(None).await;
    let bad_preflight = send(
        &server,
        reqwest::Method::OPTIONS,
        "/api",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "DELETE"),
        ],
        "",
    )
    .await;

    assert_eq!(allowed.status, 200, "{}", allowed.text);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(other.status, 403);
    assert!(
        other.text.contains("https://evil.example"),
        "{}",
        other.text
    );
    assert_eq!(missing.status, 403);
    assert!(
        missing.text.contains("missing Origin header"),
        "{}",
        missing.text
    );
    assert_eq!(bad_preflight.status, 403, "{}", bad_preflight.text);
    server.stop().await;
}

#[tokio::test]
async fn without_http_endpoint_there_is_no_api() {
    let server = TestServer::start(|config| config.http_api = None).await;

    let reply = post(
        &server,
        "/api",
        json!({"body": [{"topic": "presence", "action": "query"}]}),
    )
    .await;

    assert_eq!(reply.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn custom_paths_are_served() {
    let server = TestServer::start(|config| {
        let api = config.http_api.as_mut().unwrap();
        api.post_path = "/v1/batch".to_owned();
        api.auth_path = "/v1/login".to_owned();
    })
    .await;
    let query = json!({"body": [{"topic": "presence", "action": "query"}]});

    assert_eq!(post(&server, "/v1/batch", query.clone()).await.status, 200);
    assert_eq!(post(&server, "/v1/login", json!({})).await.status, 200);
    assert_eq!(post(&server, "/api", query).await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn api_path_conflict_stops_start() {
    let mut config = Config::embedded();
    config.http.host = "127.0.0.1".to_owned();
    config.http.port = 0;
    config.http_api.as_mut().unwrap().post_path = "/health-check".to_owned();

    let error = match Server::bind(config).await {
        Ok(_) => panic!("a postPath equal to the health check path must not start"),
        Err(error) => error,
    };

    assert!(
        matches!(error, ServerError::PathConflict { ref path, .. } if path == "/health-check"),
        "{error}"
    );
}
