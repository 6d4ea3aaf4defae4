//! EVENT subscriptions and emits.

mod common;

use common::{QUIET, TestServer, emit_message, event_ack};
use deepstream_protocol::{EventAction, EventMessage, TopicMessage};

fn bulk(action: EventAction, names: &[&str], correlation_id: &str) -> TopicMessage {
    TopicMessage::Event(EventMessage {
        action: action.into(),
        names: names.iter().map(|name| name.to_string()).collect(),
        correlation_id: correlation_id.into(),
        ..Default::default()
    })
}

fn event_error(action: EventAction, original_action: EventAction, name: &str) -> EventMessage {
    EventMessage {
        action: action.into(),
        original_action: original_action.into(),
        name: name.into(),
        is_error: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn bulk_subscribe_acked_once() {
    let server = TestServer::start(|_| {}).await;
    let mut subscriber = server.login("subscriber").await;
    let mut emitter = server.login("emitter").await;

    subscriber
        .send(bulk(EventAction::Subscribe, &["a", "b", "c"], "42"))
        .await;

    assert_eq!(
        subscriber.recv_event().await,
        event_ack(EventAction::Subscribe, "42")
    );
    subscriber.expect_silence(QUIET).await;
    for name in ["a", "b", "c"] {
        emitter.emit(name, b"true").await;
        assert_eq!(
            subscriber.recv_event().await,
            emit_message(name, b"true"),
            "event {name}"
        );
    }
}

#[tokio::test]
async fn emit_reaches_others_unchanged() {
    let server = TestServer::start(|_| {}).await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let mut carol = server.login("carol").await;
    for client in [&mut alice, &mut bob, &mut carol] {
        client.subscribe_events(&["chat/lobby"], "s").await;
    }
    // Unusual spacing, escapes and number forms must arrive byte for byte.
    let data = r#"{ "text":"héllo \u00e9 \"you\"", "n":[1, 2.50e3, -0], "none":null }"#.as_bytes();

    alice.emit("chat/lobby", data).await;

    assert_eq!(bob.recv_event().await, emit_message("chat/lobby", data));
    assert_eq!(carol.recv_event().await, emit_message("chat/lobby", data));
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn emit_without_subscribers_is_silent() {
    let server = TestServer::start(|_| {}).await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    bob.subscribe_events(&["other"], "s").await;

    alice.emit("nobody/listens", b"1").await;

    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn subscribe_twice_is_multiple_subscriptions() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("client").await;
    client.subscribe_events(&["x"], "1").await;

    client.send(bulk(EventAction::Subscribe, &["x"], "2")).await;

    assert_eq!(
        client.recv_event().await,
        event_error(
            EventAction::MultipleSubscriptions,
            EventAction::Subscribe,
            "x"
        )
    );
    assert_eq!(
        client.recv_event().await,
        event_ack(EventAction::Subscribe, "2")
    );
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn unsubscribe_unknown_is_not_subscribed() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("client").await;

    client
        .send(bulk(EventAction::Unsubscribe, &["never"], "7"))
        .await;

    assert_eq!(
        client.recv_event().await,
        event_error(
            EventAction::NotSubscribed,
            EventAction::Unsubscribe,
            "never"
        )
    );
    assert_eq!(
        client.recv_event().await,
        event_ack(EventAction::Unsubscribe, "7")
    );
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let server = TestServer::start(|_| {}).await;
    let mut emitter = server.login("emitter").await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["kept", "dropped"], "1").await;

    subscriber
        .send(bulk(EventAction::Unsubscribe, &["dropped"], "2"))
        .await;
    assert_eq!(
        subscriber.recv_event().await,
        event_ack(EventAction::Unsubscribe, "2")
    );
    emitter.emit("dropped", b"1").await;
    emitter.emit("kept", b"2").await;

    // Emits of one connection are delivered in order, so "kept" coming first
    // shows that "dropped" was not delivered.
    assert_eq!(subscriber.recv_event().await, emit_message("kept", b"2"));
    subscriber.expect_silence(QUIET).await;
    emitter.expect_silence(QUIET).await;
}

#[tokio::test]
async fn closed_subscriber_is_removed() {
    let server = TestServer::start(|_| {}).await;
    let mut emitter = server.login("emitter").await;
    let mut staying = server.login("staying").await;
    let mut leaving = server.login("leaving").await;
    staying.subscribe_events(&["room"], "1").await;
    leaving.subscribe_events(&["room"], "1").await;

    leaving.close().await;
    emitter.emit("room", b"\"after close\"").await;

    assert_eq!(
        staying.recv_event().await,
        emit_message("room", b"\"after close\"")
    );
    emitter.expect_silence(QUIET).await;
    staying.expect_silence(QUIET).await;
}

#[tokio::test]
async fn dropped_subscriber_is_removed() {
    let server = TestServer::start(|_| {}).await;
    let mut emitter = server.login("emitter").await;
    let mut staying = server.login("staying").await;
    let mut dropped = server.login("dropped").await;
    staying.subscribe_events(&["room"], "1").await;
    dropped.subscribe_events(&["room"], "1").await;

    // No close handshake: the TCP connection just ends.
    drop(dropped);
    tokio::time::sleep(QUIET).await;
    emitter.emit("room", b"1").await;

    assert_eq!(staying.recv_event().await, emit_message("room", b"1"));
    emitter.expect_silence(QUIET).await;
}

#[tokio::test]
async fn resubscribe_after_unsubscribe_works() {
    let server = TestServer::start(|_| {}).await;
    let mut emitter = server.login("emitter").await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["x"], "1").await;
    subscriber
        .send(bulk(EventAction::Unsubscribe, &["x"], "2"))
        .await;
    assert_eq!(
        subscriber.recv_event().await,
        event_ack(EventAction::Unsubscribe, "2")
    );

    subscriber.subscribe_events(&["x"], "3").await;
    emitter.emit("x", b"3").await;

    assert_eq!(subscriber.recv_event().await, emit_message("x", b"3"));
}
