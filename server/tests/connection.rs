//! The connection handshake, login, heartbeats and the login limits.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{RECV_TIMEOUT, TestServer, auth_request, connection_message, emit_message, websocket};
use deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, EventAction, EventMessage, TopicMessage,
};
use deepstream_server::auth::{AuthFuture, AuthOutcome, Authenticator, ConnectionData};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

/// WebSocket close code for a policy violation.
const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code for a normal closure.
const CLOSE_NORMAL: u16 = 1000;

/// Rejects every login and keeps the auth data it was given.
#[derive(Default)]
struct RejectEveryone {
    received: Mutex<Vec<Map<String, Value>>>,
}

impl RejectEveryone {
    fn client_data() -> Value {
        json!({ "reason": "the test rejects every login" })
    }
}

impl Authenticator for RejectEveryone {
    fn authenticate<'a>(
        &'a self,
        _connection: &'a ConnectionData,
        auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a> {
        self.received
            .lock()
            .expect("no test thread panicked while holding the lock")
            .push(auth_data.clone());
        let outcome = AuthOutcome::Rejected {
            client_data: Some(RejectEveryone::client_data()),
        };
        Box::pin(std::future::ready(outcome))
    }
}

/// Accepts every login as the user `carol` and returns client data.
struct AcceptWithClientData;

impl Authenticator for AcceptWithClientData {
    fn authenticate<'a>(
        &'a self,
        _connection: &'a ConnectionData,
        _auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a> {
        let outcome = AuthOutcome::Accepted {
            user: "carol".into(),
            client_data: Some(json!({ "role": "admin", "theme": "dark" })),
            server_data: None,
        };
        Box::pin(std::future::ready(outcome))
    }
}

fn auth_message(action: AuthAction, data: &[u8]) -> AuthMessage {
    AuthMessage {
        action: action.into(),
        data: Bytes::copy_from_slice(data),
        ..Default::default()
    }
}

fn ping() -> TopicMessage {
    TopicMessage::Connection(connection_message(ConnectionAction::Ping))
}

#[tokio::test]
async fn challenge_gets_accept() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect("client").await;

    // `challenge` asserts that the reply is exactly CONNECTION ACCEPT.
    client.challenge().await;
    client.expect_silence(common::QUIET).await;
}

#[tokio::test]
async fn login_with_username_succeeds() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect("ada").await;
    client.challenge().await;

    client.send(auth_request(r#"{"username":"ada"}"#)).await;

    assert_eq!(
        client.recv_auth().await,
        auth_message(AuthAction::AuthSuccessful, b"")
    );
    client.expect_silence(common::QUIET).await;
}

#[tokio::test]
async fn login_returns_client_data() {
    let server = TestServer::start_with_authenticator(|_| {}, Arc::new(AcceptWithClientData)).await;
    let mut client = server.connect("carol").await;
    client.challenge().await;

    client.send(auth_request(r#"{"token":"abc"}"#)).await;

    let reply = client.recv_auth().await;
    assert_eq!(reply.action(), AuthAction::AuthSuccessful);
    let data: Value = serde_json::from_slice(&reply.data).expect("AUTH_SUCCESSFUL data is JSON");
    assert_eq!(data, json!({ "role": "admin", "theme": "dark" }));
}

#[tokio::test]
async fn ping_after_login_gets_pong() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("ada").await;

    client.assert_ping_gets_pong().await;
    client.assert_ping_gets_pong().await;
    client.expect_silence(common::QUIET).await;
}

#[tokio::test]
async fn ping_before_challenge_ignored() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect("client").await;

    client.send(ping()).await;

    client.expect_silence(common::QUIET).await;
    client.login("ada").await;
}

#[tokio::test]
async fn ping_before_login_ignored() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect("client").await;
    client.challenge().await;

    client.send(ping()).await;

    client.expect_silence(common::QUIET).await;
    client.send(auth_request(r#"{"username":"ada"}"#)).await;
    assert_eq!(
        client.recv_auth().await.action(),
        AuthAction::AuthSuccessful
    );
}

#[tokio::test]
async fn login_timeout_closes_connection() {
    let timeout = Duration::from_millis(200);
    let server = TestServer::start(|config| {
        websocket(config).unauthenticated_client_timeout = Some(timeout);
    })
    .await;
    let started = Instant::now();
    let mut client = server.connect("slow-login").await;
    client.challenge().await;

    let message = client.recv_connection().await;

    assert_eq!(
        message,
        connection_message(ConnectionAction::AuthenticationTimeout)
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= timeout - Duration::from_millis(20),
        "timed out after only {elapsed:?}"
    );
    assert_eq!(client.expect_closed(RECV_TIMEOUT).await, Some(CLOSE_POLICY));
}

#[tokio::test]
async fn login_timeout_spares_logged_in() {
    let timeout = Duration::from_millis(200);
    let server = TestServer::start(|config| {
        websocket(config).unauthenticated_client_timeout = Some(timeout);
    })
    .await;
    let mut client = server.login("ada").await;

    client.expect_silence(timeout * 2).await;
    client.assert_ping_gets_pong().await;
}

#[tokio::test]
async fn heartbeat_closes_silent_client() {
    let interval = Duration::from_millis(100);
    let server = TestServer::start(|config| websocket(config).heartbeat_interval = interval).await;
    let mut client = server.login("quiet").await;
    let logged_in = Instant::now();

    let code = client.expect_closed(Duration::from_secs(2)).await;

    let elapsed = logged_in.elapsed();
    assert_eq!(code, Some(CLOSE_NORMAL));
    // The server closes once more than two intervals passed without a message,
    // checked once per interval.
    assert!(elapsed >= interval * 3 / 2, "closed after only {elapsed:?}");
    assert!(elapsed <= interval * 10, "closed only after {elapsed:?}");
}

#[tokio::test]
async fn heartbeat_spares_pinging_client() {
    let interval = Duration::from_millis(100);
    let server = TestServer::start(|config| websocket(config).heartbeat_interval = interval).await;
    let mut client = server.login("chatty").await;

    // Six intervals, three times as long as the server waits for a silent client.
    for _ in 0..12 {
        client.assert_ping_gets_pong().await;
        tokio::time::sleep(interval / 2).await;
    }

    client.assert_ping_gets_pong().await;
}

#[tokio::test]
async fn rejected_logins_hit_attempt_limit() {
    let authenticator = Arc::new(RejectEveryone::default());
    let server = TestServer::start_with_authenticator(
        |config| websocket(config).max_auth_attempts = 3,
        authenticator.clone(),
    )
    .await;
    let mut client = server.connect("mallory").await;
    client.challenge().await;
    let expected_data = RejectEveryone::client_data().to_string();
    let auth_data = r#"{"username":"mallory","password":"wrong"}"#;

    for attempt in 1..=3 {
        client.send(auth_request(auth_data)).await;
        let reply = client.recv_auth().await;
        assert_eq!(
            reply.action(),
            AuthAction::AuthUnsuccessful,
            "attempt {attempt}: {reply:?}"
        );
        let data: Value =
            serde_json::from_slice(&reply.data).expect("AUTH_UNSUCCESSFUL data is JSON");
        assert_eq!(data.to_string(), expected_data, "attempt {attempt}");
        if attempt < 3 {
            client.expect_silence(common::QUIET).await;
        }
    }

    assert_eq!(
        client.recv_auth().await,
        auth_message(AuthAction::TooManyAuthAttempts, b"")
    );
    assert_eq!(client.expect_closed(RECV_TIMEOUT).await, Some(CLOSE_POLICY));
    let received = authenticator
        .received
        .lock()
        .expect("no test thread panicked while holding the lock");
    assert_eq!(received.len(), 3);
    assert_eq!(
        Value::Object(received[0].clone()),
        json!({ "username": "mallory", "password": "wrong" })
    );
}

#[tokio::test]
async fn auth_data_not_object_closes() {
    let server = TestServer::start(|_| {}).await;
    let cases = [r#""ada""#, "[1,2]", "42", "true", r#"{"username":"#];

    for data in cases {
        let mut client = server.connect(&format!("auth data {data}")).await;
        client.challenge().await;

        client.send(auth_request(data)).await;

        assert_eq!(
            client.recv_auth().await,
            auth_message(AuthAction::InvalidMessageData, b""),
            "auth data {data}"
        );
        assert_eq!(
            client.expect_closed(RECV_TIMEOUT).await,
            Some(CLOSE_POLICY),
            "auth data {data}"
        );
    }
}

#[tokio::test]
async fn auth_action_not_request_closes() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect("client").await;
    client.challenge().await;

    let wrong = auth_message(AuthAction::AuthSuccessful, br#"{"username":"ada"}"#);
    client.send(TopicMessage::Auth(wrong)).await;

    assert_eq!(
        client.recv_auth().await,
        auth_message(AuthAction::InvalidMessageData, b"")
    );
    assert_eq!(client.expect_closed(RECV_TIMEOUT).await, Some(CLOSE_POLICY));
}

#[tokio::test]
async fn event_before_challenge_is_invalid() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect("eager").await;

    client
        .send(TopicMessage::Event(emit_message("news", b"1")))
        .await;

    assert_eq!(
        client.recv_connection().await,
        connection_message(ConnectionAction::InvalidMessage)
    );
    client.expect_silence(common::QUIET).await;
    client.login("eager").await;
}

#[tokio::test]
async fn event_before_login_is_invalid() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect("eager").await;
    client.challenge().await;

    let subscribe = EventMessage {
        action: EventAction::Subscribe.into(),
        names: vec!["news".into()],
        correlation_id: "1".into(),
        ..Default::default()
    };
    client.send(TopicMessage::Event(subscribe)).await;

    assert_eq!(
        client.recv_auth().await,
        auth_message(AuthAction::InvalidMessage, b"")
    );
    client.expect_silence(common::QUIET).await;
    client.send(auth_request(r#"{"username":"eager"}"#)).await;
    assert_eq!(
        client.recv_auth().await.action(),
        AuthAction::AuthSuccessful
    );
}

#[tokio::test]
async fn stop_closes_connections() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("ada").await;

    server.stop().await;

    // 1001: the server is going away.
    assert_eq!(client.expect_closed(RECV_TIMEOUT).await, Some(1001));
}
