//! Valve permission rules applied to real connections: each kind of action allowed
//! and denied, bulk messages with some names denied, rules that read data, old data,
//! server data and other records, and failing rules.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use deepstream_protocol::{
    EventAction, EventMessage, PresenceAction, PresenceMessage, RecordAction, RecordMessage,
    RpcAction, RpcMessage, TopicMessage,
};
use deepstream_server::auth::{AuthFuture, AuthOutcome, Authenticator, ConnectionData};
use deepstream_server::config::{PermissionConfig, PermissionRules};
use deepstream_server::permission::{PermissionOptions, Permissions};
use serde_json::{Map, Value, json};

const RULES: &str = r#"
record:
  "*":
    create: true
    read: true
    write: true
    delete: "user.data.role === 'admin'"
    listen: true
    notify: false
  "users/$id":
    write: "user.id === $id"
  "posts/$id":
    create: "user.id !== 'guest'"
    write: "_('owners/' + $id).owner === user.id && data.title.length <= 20"
  "locked/*":
    write: "oldData.locked !== true"
  "secret/*":
    read: false
  "broken/*":
    write: "data.a.b.c === 1"
event:
  "*":
    publish: true
    subscribe: true
    listen: true
  "admin/*":
    publish: "user.id === 'admin'"
    subscribe: "user.id === 'admin'"
  "chat/*":
    publish: "data.text.length < 10"
rpc:
  "*":
    provide: true
    request: true
  "payroll":
    provide: "user.id === 'admin'"
    request: "data.amount < 100"
presence:
  "*":
    allow: true
  "ghost":
    allow: false
"#;

/// Logs users in under their name; `admin` gets `{"role": "admin"}` as server data.
struct Roles;

impl Authenticator for Roles {
    fn authenticate<'a>(
        &'a self,
        _connection: &'a ConnectionData,
        auth_data: &'a Map<String, Value>,
    ) -> AuthFuture<'a> {
        let user = auth_data
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or("guest")
            .to_owned();
        let server_data = (user == "admin").then(|| json!({ "role": "admin" }));
        Box::pin(std::future::ready(AuthOutcome::Accepted {
            user,
            client_data: None,
            server_data,
        }))
    }
}

async fn start() -> TestServer {
    let document: serde_yaml::Value = serde_yaml::from_str(RULES).expect("the rules are YAML");
    let options = PermissionOptions::default();
    let permissions = Permissions::from_yaml(&document, Path::new("permissions.yml"), &options)
        .expect("the rules are valid");
    TestServer::start_with_authenticator(
        move |config| {
            config.permission = PermissionConfig::Rules(PermissionRules {
                permissions,
                source: "permissions.yml".into(),
                max_rule_iterations: options.max_rule_iterations,
            });
        },
        Arc::new(Roles),
    )
    .await
}

fn event_error(action: EventAction, original: EventAction, name: &str) -> EventMessage {
    EventMessage {
        action: action.into(),
        original_action: original.into(),
        name: name.into(),
        is_error: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn event_publish_denied_and_allowed() {
    let server = start().await;
    let mut admin = server.login("admin").await;
    let mut alice = server.login("alice").await;
    admin.subscribe_events(&["admin/news"], "1").await;

    alice.emit("admin/news", b"\"hi\"").await;
    assert_eq!(
        alice.recv_event().await,
        event_error(EventAction::MessageDenied, EventAction::Emit, "admin/news")
    );
    admin.expect_silence(QUIET).await;

    let mut other = server.login("admin").await;
    other.emit("admin/news", b"\"from admin\"").await;
    let delivered = admin.recv_event().await;
    assert_eq!(delivered.action(), EventAction::Emit);
    assert_eq!(&delivered.data[..], b"\"from admin\"");
    server.stop().await;
}

#[tokio::test]
async fn bulk_subscribe_filters_denied_names() {
    let server = start().await;
    let mut alice = server.login("alice").await;
    alice
        .send(TopicMessage::Event(EventMessage {
            action: EventAction::Subscribe.into(),
            names: vec!["news".into(), "admin/x".into(), "sport".into()],
            correlation_id: "7".into(),
            ..Default::default()
        }))
        .await;
    let denied = alice.recv_event().await;
    assert_eq!(denied.action(), EventAction::MessageDenied);
    assert_eq!(denied.name, "admin/x");
    assert_eq!(denied.correlation_id, "7");
    assert_eq!(
        alice.recv_event().await,
        event_ack(EventAction::Subscribe, "7")
    );

    let mut bob = server.login("bob").await;
    bob.emit("sport", b"1").await;
    assert_eq!(alice.recv_event().await.name, "sport");
    let mut admin = server.login("admin").await;
    admin.emit("admin/x", b"1").await;
    alice.expect_silence(QUIET).await;
    server.stop().await;
}

#[tokio::test]
async fn event_rule_reads_data() {
    let server = start().await;
    let mut alice = server.login("alice").await;
    alice.emit("chat/room", br#"{"text":"short"}"#).await;
    alice
        .emit("chat/room", br#"{"text":"far too long a message"}"#)
        .await;
    assert_eq!(
        alice.recv_event().await,
        event_error(EventAction::MessageDenied, EventAction::Emit, "chat/room")
    );
    // `data.text` of a payload without `text` reads undefined, so `.length` fails.
    alice.emit("chat/room", br#"{"other":1}"#).await;
    assert_eq!(
        alice.recv_event().await,
        event_error(
            EventAction::MessagePermissionError,
            EventAction::Emit,
            "chat/room"
        )
    );
    alice.expect_silence(QUIET).await;
    server.stop().await;
}

#[tokio::test]
async fn record_write_rule_uses_capture() {
    let server = start().await;
    let mut alice = server.login("alice").await;
    alice.subscribe_record("users/alice").await;
    alice.subscribe_record("users/bob").await;

    alice
        .send_record(RecordMessage {
            correlation_id: "w1".into(),
            is_write_ack: true,
            ..record_data(RecordAction::Update, "users/alice", 1, br#"{"a":1}"#)
        })
        .await;
    let ack = alice.recv_record().await;
    assert_eq!(ack.action(), RecordAction::WriteAcknowledgement, "{ack:?}");

    alice
        .send_record(RecordMessage {
            correlation_id: "w2".into(),
            is_write_ack: true,
            ..record_data(RecordAction::Update, "users/bob", 1, br#"{"a":1}"#)
        })
        .await;
    let denied = alice.recv_record().await;
    assert_eq!(denied.action(), RecordAction::MessageDenied);
    assert_eq!(denied.name, "users/bob");
    assert_eq!(denied.original_action(), RecordAction::Update);
    assert_eq!(denied.correlation_id, "w2");
    assert!(denied.is_write_ack);

    let read = alice.read_record("users/bob").await;
    assert_eq!(
        read.version,
        Some(0),
        "the denied write changed nothing: {read:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn record_rule_reads_other_record() {
    let server = start().await;
    let mut admin = server.login("admin").await;
    admin
        .send_record(record_data(
            RecordAction::Createandupdate,
            "owners/1",
            -1,
            br#"{"owner":"alice"}"#,
        ))
        .await;
    admin.assert_ping_gets_pong().await;

    let mut alice = server.login("alice").await;
    alice.subscribe_record("posts/1").await;
    alice
        .send_record(record_data(
            RecordAction::Update,
            "posts/1",
            1,
            br#"{"title":"mine"}"#,
        ))
        .await;
    alice.assert_ping_gets_pong().await;
    assert_eq!(alice.read_record("posts/1").await.version, Some(1));

    let mut bob = server.login("bob").await;
    bob.subscribe_record("posts/1").await;
    // bob's denied write does not reach alice's subscription.
    bob.send_record(record_data(
        RecordAction::Update,
        "posts/1",
        2,
        br#"{"title":"not bob's"}"#,
    ))
    .await;
    assert_eq!(
        bob.recv_record().await.action(),
        RecordAction::MessageDenied
    );
    alice.expect_silence(QUIET).await;
    server.stop().await;
}

#[tokio::test]
async fn record_rule_reads_old_data() {
    let server = start().await;
    let mut alice = server.login("alice").await;
    alice.subscribe_record("locked/1").await;
    alice
        .send_record(record_data(
            RecordAction::Update,
            "locked/1",
            1,
            br#"{"locked":true}"#,
        ))
        .await;
    alice.assert_ping_gets_pong().await;
    alice
        .send_record(record_data(
            RecordAction::Update,
            "locked/1",
            2,
            br#"{"locked":false}"#,
        ))
        .await;
    assert_eq!(
        alice.recv_record().await.action(),
        RecordAction::MessageDenied
    );
    assert_eq!(alice.read_record("locked/1").await.version, Some(1));
    server.stop().await;
}

#[tokio::test]
async fn record_create_and_read_rules() {
    let server = start().await;
    let mut guest = server.login("guest").await;
    // A guest may not create posts, so subscribing to a new one is denied...
    guest
        .send_record(record_bulk(
            RecordAction::Subscribecreateandread,
            &["posts/9"],
            "s1",
        ))
        .await;
    let denied = guest.recv_record().await;
    assert_eq!(denied.action(), RecordAction::MessageDenied);
    assert_eq!(denied.name, "posts/9");

    // ...but reading one that exists is allowed.
    let mut alice = server.login("alice").await;
    alice.subscribe_record("posts/9").await;
    let response = guest.subscribe_record("posts/9").await;
    assert_eq!(response.version, Some(0));

    // Reading is denied for new and existing secrets alike.
    guest
        .send_record(record_bulk(
            RecordAction::Subscribecreateandread,
            &["secret/0"],
            "s0",
        ))
        .await;
    let denied = guest.recv_record().await;
    assert_eq!(denied.action(), RecordAction::MessageDenied);
    assert_eq!(denied.name, "secret/0");
    let mut admin = server.login("admin").await;
    admin
        .send_record(record_data(
            RecordAction::Createandupdate,
            "secret/1",
            -1,
            b"{}",
        ))
        .await;
    admin.assert_ping_gets_pong().await;
    guest
        .send_record(record_bulk(
            RecordAction::Subscribecreateandread,
            &["secret/1"],
            "s2",
        ))
        .await;
    let denied = guest.recv_record().await;
    assert_eq!(denied.action(), RecordAction::MessageDenied);
    assert_eq!(denied.name, "secret/1");
    guest.expect_silence(QUIET).await;
    server.stop().await;
}

#[tokio::test]
async fn record_delete_needs_server_data() {
    let server = start().await;
    let mut alice = server.login("alice").await;
    alice.subscribe_record("doc/1").await;
    alice
        .send_record(record_message(RecordAction::Delete, "doc/1"))
        .await;
    // alice has no server data, so `user.data.role` fails, as in deepstream.
    assert_eq!(
        alice.recv_record().await.action(),
        RecordAction::MessagePermissionError
    );

    let mut admin = server.login("admin").await;
    admin
        .send_record(record_message(RecordAction::Delete, "doc/1"))
        .await;
    let reply = admin.recv_record().await;
    assert_eq!(reply.action(), RecordAction::DeleteSuccess, "{reply:?}");
    server.stop().await;
}

#[tokio::test]
async fn failing_write_rule_is_permission_error() {
    let server = start().await;
    let mut alice = server.login("alice").await;
    alice.subscribe_record("broken/1").await;
    alice
        .send_record(record_data(
            RecordAction::Update,
            "broken/1",
            1,
            br#"{"a":1}"#,
        ))
        .await;
    let reply = alice.recv_record().await;
    assert_eq!(reply.action(), RecordAction::MessagePermissionError);
    assert_eq!(reply.name, "broken/1");
    server.stop().await;
}

#[tokio::test]
async fn notify_denied_by_default_rule() {
    let server = start().await;
    let mut alice = server.login("alice").await;
    alice
        .send_record(record_bulk(RecordAction::Notify, &["a", "b"], "n1"))
        .await;
    for name in ["a", "b"] {
        let denied = alice.recv_record().await;
        assert_eq!(denied.action(), RecordAction::MessageDenied);
        assert_eq!(denied.name, name);
        assert_eq!(denied.correlation_id, "n1");
    }
    alice.expect_silence(QUIET).await;
    server.stop().await;
}

#[tokio::test]
async fn rpc_rules_apply() {
    let server = start().await;
    let mut alice = server.login("alice").await;
    alice
        .send(TopicMessage::Rpc(RpcMessage {
            action: RpcAction::Provide.into(),
            names: vec!["payroll".into()],
            correlation_id: "p1".into(),
            ..Default::default()
        }))
        .await;
    let denied = alice.recv_rpc().await;
    assert_eq!(denied.action(), RpcAction::MessageDenied);
    assert_eq!(denied.name, "payroll");

    let mut admin = server.login("admin").await;
    admin
        .send(TopicMessage::Rpc(RpcMessage {
            action: RpcAction::Provide.into(),
            names: vec!["payroll".into()],
            correlation_id: "p2".into(),
            ..Default::default()
        }))
        .await;
    assert!(admin.recv_rpc().await.is_ack);

    alice
        .send(TopicMessage::Rpc(RpcMessage {
            action: RpcAction::Request.into(),
            name: "payroll".into(),
            correlation_id: "r1".into(),
            data: br#"{"amount":500}"#.to_vec().into(),
            ..Default::default()
        }))
        .await;
    let denied = alice.recv_rpc().await;
    assert_eq!(denied.action(), RpcAction::MessageDenied);
    assert_eq!(denied.correlation_id, "r1");
    admin.expect_silence(QUIET).await;

    alice
        .send(TopicMessage::Rpc(RpcMessage {
            action: RpcAction::Request.into(),
            name: "payroll".into(),
            correlation_id: "r2".into(),
            data: br#"{"amount":5}"#.to_vec().into(),
            ..Default::default()
        }))
        .await;
    let request = admin.recv_rpc().await;
    assert_eq!(request.action(), RpcAction::Request);
    assert_eq!(request.correlation_id, "r2");
    server.stop().await;
}

#[tokio::test]
async fn presence_rule_applies_per_user() {
    let server = start().await;
    let mut alice = server.login("alice").await;
    alice
        .send(TopicMessage::Presence(PresenceMessage {
            action: PresenceAction::Query.into(),
            names: vec!["bob".into(), "ghost".into()],
            correlation_id: "q1".into(),
            ..Default::default()
        }))
        .await;
    let denied = alice.recv_presence().await;
    assert_eq!(denied.action(), PresenceAction::MessageDenied);
    assert_eq!(denied.name, "ghost");
    let response = alice.recv_presence().await;
    assert_eq!(response.action(), PresenceAction::QueryResponse);
    let online: Value = serde_json::from_slice(&response.data).unwrap();
    assert_eq!(online, json!({ "bob": false }));
    server.stop().await;
}
