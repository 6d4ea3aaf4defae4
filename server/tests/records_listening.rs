//! Record listening: a provider that listens to a pattern is asked to provide
//! matching records, and their subscribers learn whether a provider exists.

mod common;

use common::{QUIET, RawClient, TestServer, record_ack, record_bulk, record_data, record_message};
use deepstream_protocol::{RecordAction, RecordMessage};

const PATTERN: &str = "^listened/.*$";

fn listen_message(action: RecordAction, subscription: &str) -> RecordMessage {
    RecordMessage {
        action: action.into(),
        name: PATTERN.into(),
        subscription: subscription.into(),
        ..Default::default()
    }
}

/// Logs in a provider that listens to [`PATTERN`].
async fn provider(server: &TestServer) -> RawClient {
    let mut provider = server.login("provider").await;
    provider
        .send_record(record_message(RecordAction::Listen, PATTERN))
        .await;
    assert_eq!(
        provider.recv_record().await,
        RecordMessage {
            is_ack: true,
            ..record_message(RecordAction::Listen, PATTERN)
        },
        "LISTEN ack"
    );
    provider
}

/// Subscribes `client` to the new record `name` and checks its READ_RESPONSE.
async fn subscribe(client: &mut RawClient, name: &str) {
    assert_eq!(
        client.subscribe_record(name).await,
        record_data(RecordAction::ReadResponse, name, 0, b"{}"),
        "{}",
        client.label()
    );
}

/// Checks that `provider` is asked for `name`, and accepts it.
async fn accept(provider: &mut RawClient, name: &str) {
    assert_eq!(
        provider.recv_record().await,
        listen_message(RecordAction::SubscriptionForPatternFound, name)
    );
    provider
        .send_record(listen_message(RecordAction::ListenAccept, name))
        .await;
}

async fn unsubscribe(client: &mut RawClient, name: &str) {
    client
        .send_record(record_bulk(RecordAction::Unsubscribe, &[name], "u"))
        .await;
    assert_eq!(
        client.recv_record().await,
        record_ack(RecordAction::Unsubscribe, "u"),
        "{}",
        client.label()
    );
}

#[tokio::test]
async fn accepted_provider_is_announced() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = provider(&server).await;
    let mut first = server.login("first").await;

    subscribe(&mut first, "listened/1").await;
    first.expect_silence(QUIET).await;
    accept(&mut provider, "listened/1").await;

    assert_eq!(
        first.recv_record().await,
        record_message(RecordAction::SubscriptionHasProvider, "listened/1")
    );
    first.expect_silence(QUIET).await;
    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn later_subscriber_learns_of_provider() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = provider(&server).await;
    let mut first = server.login("first").await;
    subscribe(&mut first, "listened/1").await;
    accept(&mut provider, "listened/1").await;
    assert_eq!(
        first.recv_record().await,
        record_message(RecordAction::SubscriptionHasProvider, "listened/1")
    );
    let mut second = server.login("second").await;

    second
        .send_record(record_bulk(
            RecordAction::Subscribecreateandread,
            &["listened/1"],
            "s",
        ))
        .await;

    assert_eq!(
        second.recv_record().await,
        record_ack(RecordAction::Subscribecreateandread, "s")
    );
    // The order of these two is not part of the protocol: the official client
    // takes SUBSCRIPTION_HAS_PROVIDER in any state. @deepstream/server 7.0.2
    // subscribes before it reads the record, so it sends that message first.
    let mut replies = vec![second.recv_record().await, second.recv_record().await];
    replies.sort_by_key(|reply| reply.action);
    assert_eq!(
        replies,
        [
            record_data(RecordAction::ReadResponse, "listened/1", 0, b"{}"),
            record_message(RecordAction::SubscriptionHasProvider, "listened/1"),
        ]
    );
    second.expect_silence(QUIET).await;
    first.expect_silence(QUIET).await;
    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn non_matching_record_not_offered() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = provider(&server).await;
    let mut subscriber = server.login("subscriber").await;

    subscribe(&mut subscriber, "other/1").await;
    subscribe(&mut subscriber, "prefix/listened/1").await;

    provider.expect_silence(QUIET).await;
    subscriber.expect_silence(QUIET).await;
}

#[tokio::test]
async fn rejected_subscription_has_no_provider() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = provider(&server).await;
    let mut subscriber = server.login("subscriber").await;
    subscribe(&mut subscriber, "listened/1").await;
    assert_eq!(
        provider.recv_record().await,
        listen_message(RecordAction::SubscriptionForPatternFound, "listened/1")
    );

    provider
        .send_record(listen_message(RecordAction::ListenReject, "listened/1"))
        .await;

    subscriber.expect_silence(QUIET).await;
    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn last_unsubscribe_removes_subscription() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = provider(&server).await;
    let mut first = server.login("first").await;
    let mut second = server.login("second").await;
    subscribe(&mut first, "listened/1").await;
    subscribe(&mut second, "listened/1").await;
    accept(&mut provider, "listened/1").await;
    for client in [&mut first, &mut second] {
        assert_eq!(
            client.recv_record().await,
            record_message(RecordAction::SubscriptionHasProvider, "listened/1"),
            "{}",
            client.label()
        );
    }

    unsubscribe(&mut first, "listened/1").await;
    provider.expect_silence(QUIET).await;
    unsubscribe(&mut second, "listened/1").await;

    assert_eq!(
        provider.recv_record().await,
        listen_message(RecordAction::SubscriptionForPatternRemoved, "listened/1")
    );
    provider.expect_silence(QUIET).await;
    first.expect_silence(QUIET).await;
    second.expect_silence(QUIET).await;
}

#[tokio::test]
async fn provider_disconnect_leaves_no_provider() {
    let server = TestServer::start(|_| {}).await;
    let mut provider = provider(&server).await;
    let mut first = server.login("first").await;
    let mut second = server.login("second").await;
    subscribe(&mut first, "listened/1").await;
    subscribe(&mut second, "listened/1").await;
    accept(&mut provider, "listened/1").await;
    for client in [&mut first, &mut second] {
        assert_eq!(
            client.recv_record().await,
            record_message(RecordAction::SubscriptionHasProvider, "listened/1"),
            "{}",
            client.label()
        );
    }

    provider.close().await;

    for client in [&mut first, &mut second] {
        assert_eq!(
            client.recv_record().await,
            record_message(RecordAction::SubscriptionHasNoProvider, "listened/1"),
            "{}",
            client.label()
        );
        client.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn new_provider_finds_existing_subscription() {
    let server = TestServer::start(|_| {}).await;
    let mut subscriber = server.login("subscriber").await;
    subscribe(&mut subscriber, "listened/1").await;
    subscribe(&mut subscriber, "other/1").await;

    let mut provider = provider(&server).await;
    accept(&mut provider, "listened/1").await;

    assert_eq!(
        subscriber.recv_record().await,
        record_message(RecordAction::SubscriptionHasProvider, "listened/1")
    );
    provider.expect_silence(QUIET).await;
    subscriber.expect_silence(QUIET).await;
}
