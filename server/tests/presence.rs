//! Presence: who is online, queries, and join and leave notifications.

mod common;

use bytes::Bytes;
use common::{QUIET, RawClient, TestServer};
use deepstream_protocol::{PresenceAction, PresenceMessage, TopicMessage};
use serde_json::{Value, json};

fn presence(action: PresenceAction) -> PresenceMessage {
    PresenceMessage {
        action: action.into(),
        ..Default::default()
    }
}

fn named(action: PresenceAction, name: &str) -> PresenceMessage {
    PresenceMessage {
        name: name.into(),
        ..presence(action)
    }
}

fn ack(action: PresenceAction, correlation_id: &str) -> PresenceMessage {
    PresenceMessage {
        correlation_id: correlation_id.into(),
        is_ack: true,
        ..presence(action)
    }
}

async fn subscribe_all(client: &mut RawClient) {
    client
        .send(TopicMessage::Presence(presence(
            PresenceAction::SubscribeAll,
        )))
        .await;
    assert_eq!(
        client.recv_presence().await,
        ack(PresenceAction::SubscribeAll, "")
    );
}

async fn subscribe_users(client: &mut RawClient, users: &[&str], correlation_id: &str) {
    let subscribe = PresenceMessage {
        names: users.iter().map(|user| user.to_string()).collect(),
        correlation_id: correlation_id.into(),
        ..presence(PresenceAction::Subscribe)
    };
    client.send(TopicMessage::Presence(subscribe)).await;
    assert_eq!(
        client.recv_presence().await,
        ack(PresenceAction::Subscribe, correlation_id)
    );
}

/// Sends QUERY_ALL and returns the user names of the response, sorted.
async fn query_all(client: &mut RawClient) -> Vec<String> {
    client
        .send(TopicMessage::Presence(presence(PresenceAction::QueryAll)))
        .await;
    let mut response = client.recv_presence().await;
    response.names.sort();
    let names = response.names.clone();
    response.names.clear();
    assert_eq!(
        response,
        presence(PresenceAction::QueryAllResponse),
        "QUERY_ALL response besides its names"
    );
    names
}

#[tokio::test]
async fn subscribe_all_sees_join_and_leave() {
    let server = TestServer::start(|_| {}).await;
    let mut observer = server.login("observer").await;
    subscribe_all(&mut observer).await;

    let mut bob = server.login("bob").await;
    assert_eq!(
        observer.recv_presence().await,
        named(PresenceAction::PresenceJoinAll, "bob")
    );
    bob.close().await;

    assert_eq!(
        observer.recv_presence().await,
        named(PresenceAction::PresenceLeaveAll, "bob")
    );
    observer.expect_silence(QUIET).await;
}

#[tokio::test]
async fn unsubscribe_all_stops_notifications() {
    let server = TestServer::start(|_| {}).await;
    let mut observer = server.login("observer").await;
    subscribe_all(&mut observer).await;

    observer
        .send(TopicMessage::Presence(presence(
            PresenceAction::UnsubscribeAll,
        )))
        .await;
    assert_eq!(
        observer.recv_presence().await,
        ack(PresenceAction::UnsubscribeAll, "")
    );
    let _bob = server.login("bob").await;

    observer.expect_silence(QUIET).await;
}

#[tokio::test]
async fn named_subscribe_sees_join_and_leave() {
    let server = TestServer::start(|_| {}).await;
    let mut observer = server.login("observer").await;
    subscribe_users(&mut observer, &["bob"], "p1").await;

    let mut carol = server.login("carol").await;
    observer.expect_silence(QUIET).await;
    let mut bob = server.login("bob").await;
    assert_eq!(
        observer.recv_presence().await,
        named(PresenceAction::PresenceJoin, "bob")
    );
    bob.close().await;
    assert_eq!(
        observer.recv_presence().await,
        named(PresenceAction::PresenceLeave, "bob")
    );
    carol.close().await;

    observer.expect_silence(QUIET).await;
}

#[tokio::test]
async fn query_all_excludes_asker() {
    let server = TestServer::start(|_| {}).await;
    let mut alice = server.login("alice").await;
    let _bob = server.login("bob").await;
    let _carol = server.login("carol").await;

    assert_eq!(query_all(&mut alice).await, ["bob", "carol"]);
}

#[tokio::test]
async fn query_all_alone_is_empty() {
    let server = TestServer::start(|_| {}).await;
    let mut alice = server.login("alice").await;

    assert!(query_all(&mut alice).await.is_empty());
}

#[tokio::test]
async fn query_returns_online_map() {
    let server = TestServer::start(|_| {}).await;
    let mut alice = server.login("alice").await;
    let _bob = server.login("bob").await;
    let query = PresenceMessage {
        names: vec!["bob".into(), "dave".into(), "alice".into()],
        correlation_id: "q1".into(),
        ..presence(PresenceAction::Query)
    };

    alice.send(TopicMessage::Presence(query)).await;

    let mut response = alice.recv_presence().await;
    let data: Value = serde_json::from_slice(&response.data).expect("QUERY_RESPONSE data is JSON");
    assert_eq!(data, json!({ "bob": true, "dave": false, "alice": true }));
    response.data = Bytes::new();
    let expected = PresenceMessage {
        correlation_id: "q1".into(),
        ..presence(PresenceAction::QueryResponse)
    };
    assert_eq!(response, expected);
}

#[tokio::test]
async fn two_connections_leave_once() {
    let server = TestServer::start(|_| {}).await;
    let mut observer = server.login("observer").await;
    subscribe_all(&mut observer).await;
    let mut first = server.login("alice").await;
    assert_eq!(
        observer.recv_presence().await,
        named(PresenceAction::PresenceJoinAll, "alice")
    );
    let mut second = server.login("alice").await;
    observer.expect_silence(QUIET).await;

    first.close().await;
    observer.expect_silence(QUIET).await;
    assert_eq!(query_all(&mut observer).await, ["alice"]);
    second.close().await;

    assert_eq!(
        observer.recv_presence().await,
        named(PresenceAction::PresenceLeaveAll, "alice")
    );
    assert!(query_all(&mut observer).await.is_empty());
}
