//! The Prometheus endpoint and deepstream's `http` monitoring report, read
//! over real HTTP from a running server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use deepstream_protocol::{AuthAction, EventAction, TopicMessage};
use deepstream_server::auth::{AuthFuture, AuthOutcome, Authenticator, ConnectionData};
use deepstream_server::config::{HttpMonitoringConfig, MonitoringConfig};
use serde_json::{Map, Value};

/// Accepts every user but `mallory`.
struct AllButMallory;

impl Authenticator for AllButMallory {
    fn authenticate<'a>(
        &'a self,
        _connection: &'a ConnectionData,
        auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a> {
        let user = auth_data
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or("open")
            .to_owned();
        let outcome = if user == "mallory" {
            AuthOutcome::Rejected { client_data: None }
        } else {
            AuthOutcome::Accepted {
                user,
                client_data: None,
                server_data: None,
            }
        };
        Box::pin(std::future::ready(outcome))
    }
}

/// Sends a GET request with optional headers and returns the status and body.
async fn get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let url = format!("http://{}{path}", server.addr());
    let client = reqwest::Client::new();
    let mut request = client.get(url).timeout(Duration::from_secs(5));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("GET failed");
    let status = response.status().as_u16();
    (
        status,
        response.text().await.expect("reading the body failed"),
    )
}

/// Returns the value of the sample `line_start` (name and labels) in Prometheus text.
fn sample(text: &str, line_start: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(line_start)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_count_traffic() {
    let server = TestServer::start_with_authenticator(|_| {}, Arc::new(AllButMallory)).await;
    let mut subscriber = server.login("alice").await;
    let mut publisher = server.login("bob").await;
    subscriber.subscribe_events(&["news"], "1").await;
    publisher.emit("news", b"\"hello\"").await;
    let delivered = subscriber.recv_event().await;
    assert_eq!(delivered.action(), EventAction::Emit);

    let mut rejected = server.connect("mallory").await;
    rejected.challenge().await;
    rejected
        .send(auth_request(r#"{"username":"mallory"}"#))
        .await;
    assert_eq!(
        rejected.recv_auth().await.action(),
        AuthAction::AuthUnsuccessful
    );
    // A client action the server rejects with an error message counts as an error.
    publisher
        .send(TopicMessage::Event(deepstream_protocol::EventMessage {
            action: EventAction::SubscriptionForPatternFound.into(),
            name: "news".into(),
            ..Default::default()
        }))
        .await;
    assert_eq!(
        publisher.recv_event().await.action(),
        EventAction::InvalidMessageData
    );

    let (status, text) = get(&server, "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(sample(&text, "deepstream_connections_open"), Some(3));
    assert_eq!(sample(&text, "deepstream_connections_total"), Some(3));
    assert_eq!(
        sample(
            &text,
            r#"deepstream_logins_total{endpoint="websocket",result="allowed"}"#
        ),
        Some(2)
    );
    assert_eq!(
        sample(
            &text,
            r#"deepstream_logins_total{endpoint="websocket",result="declined"}"#
        ),
        Some(1)
    );
    assert_eq!(
        sample(
            &text,
            r#"deepstream_messages_received_total{topic="EVENT",action="EMIT"}"#
        ),
        Some(1)
    );
    assert_eq!(
        sample(
            &text,
            r#"deepstream_messages_sent_total{topic="EVENT",action="EMIT"}"#
        ),
        Some(1)
    );
    assert_eq!(
        sample(
            &text,
            r#"deepstream_errors_total{event="INVALID_MESSAGE_DATA"}"#
        ),
        Some(1)
    );
    assert_eq!(
        sample(&text, r#"deepstream_subscriptions{topic="EVENT"}"#),
        Some(1)
    );

    subscriber.close().await;
    tokio::time::sleep(QUIET).await;
    let (_, text) = get(&server, "/metrics", &[]).await;
    assert_eq!(sample(&text, "deepstream_connections_open"), Some(2));
    assert_eq!(
        sample(&text, r#"deepstream_subscriptions{topic="EVENT"}"#),
        Some(0)
    );
    server.stop().await;
}

fn http_monitoring(required_header: Option<(&str, &str)>) -> MonitoringConfig {
    MonitoringConfig::Http(HttpMonitoringConfig {
        path: "/monitoring".to_owned(),
        required_header: required_header.map(|(name, value)| (name.to_owned(), value.to_owned())),
    })
}

#[tokio::test]
async fn http_report_needs_header() {
    let server = TestServer::start(|config| {
        config.monitoring = http_monitoring(Some(("x-monitoring", "s3cret")));
    })
    .await;
    let mut client = server.login("alice").await;
    client.emit("news", b"1").await;
    client.assert_ping_gets_pong().await;

    let (status, body) = get(&server, "/monitoring", &[]).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = get(&server, "/monitoring", &[("x-monitoring", "wrong")]).await;
    assert_eq!(status, 404);

    let (status, body) = get(&server, "/monitoring", &[("x-monitoring", "s3cret")]).await;
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&body).expect("the report is JSON");
    assert_eq!(stats["received"]["EVENT"]["EMIT"], 1);
    assert_eq!(stats["logins"]["websocket"]["allowed"], 1);
    assert_eq!(stats["clusterSize"], 1);
    assert!(stats["from"].as_u64() <= stats["to"].as_u64());

    // The next report counts only what happened since this one.
    let (_, body) = get(&server, "/monitoring", &[("x-monitoring", "s3cret")]).await;
    let stats: Value = serde_json::from_str(&body).expect("the report is JSON");
    assert_eq!(stats["received"], serde_json::json!({}));
    assert_eq!(stats["logins"], serde_json::json!({}));
    server.stop().await;
}

#[tokio::test]
async fn open_http_report_serves_everyone() {
    let server = TestServer::start(|config| config.monitoring = http_monitoring(None)).await;
    let (status, body) = get(&server, "/monitoring", &[]).await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn conflicting_paths_stop_start() {
    let mut config = deepstream_server::Config::embedded();
    config.http.host = "127.0.0.1".to_owned();
    config.http.port = 0;
    config.monitoring = MonitoringConfig::Http(HttpMonitoringConfig {
        path: "/metrics".to_owned(),
        required_header: None,
    });
    let error = deepstream_server::Server::bind(config)
        .await
        .err()
        .expect("a path used twice must stop the server");
    assert!(error.to_string().contains("/metrics"), "{error}");
}
