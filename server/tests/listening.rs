//! Event listening: providers that register a pattern and are asked, one at a
//! time, to provide each matching subscription.

mod common;

use std::time::Duration;

use common::{QUIET, RawClient, TestServer, event_ack};
use deepstream_protocol::{EventAction, EventMessage, TopicMessage};
use deepstream_server::Config;
use tokio::time::Instant;

const PATTERN: &str = "news/.*";

/// Providers are asked in the order they started listening.
fn in_order(config: &mut Config) {
    config.listen.shuffle_providers = false;
}

fn listen_message(action: EventAction, pattern: &str, subscription: &str) -> EventMessage {
    EventMessage {
        action: action.into(),
        name: pattern.into(),
        subscription: subscription.into(),
        ..Default::default()
    }
}

fn found(pattern: &str, subscription: &str) -> EventMessage {
    listen_message(
        EventAction::SubscriptionForPatternFound,
        pattern,
        subscription,
    )
}

fn removed(pattern: &str, subscription: &str) -> EventMessage {
    listen_message(
        EventAction::SubscriptionForPatternRemoved,
        pattern,
        subscription,
    )
}

fn listen_error(action: EventAction, original_action: EventAction, pattern: &str) -> EventMessage {
    EventMessage {
        action: action.into(),
        original_action: original_action.into(),
        name: pattern.into(),
        is_error: true,
        ..Default::default()
    }
}

fn listen_ack(action: EventAction, pattern: &str) -> EventMessage {
    EventMessage {
        action: action.into(),
        name: pattern.into(),
        is_ack: true,
        ..Default::default()
    }
}

/// Sends LISTEN of `pattern` and checks the ack.
async fn listen(provider: &mut RawClient, pattern: &str) {
    let listen = EventMessage {
        action: EventAction::Listen.into(),
        name: pattern.into(),
        ..Default::default()
    };
    provider.send(TopicMessage::Event(listen)).await;
    assert_eq!(
        provider.recv_event().await,
        listen_ack(EventAction::Listen, pattern),
        "{}",
        provider.label()
    );
}

async fn respond(provider: &mut RawClient, action: EventAction, subscription: &str) {
    provider
        .send(TopicMessage::Event(listen_message(
            action,
            PATTERN,
            subscription,
        )))
        .await;
}

async fn unsubscribe(subscriber: &mut RawClient, name: &str, correlation_id: &str) {
    let message = EventMessage {
        action: EventAction::Unsubscribe.into(),
        names: vec![name.into()],
        correlation_id: correlation_id.into(),
        ..Default::default()
    };
    subscriber.send(TopicMessage::Event(message)).await;
    assert_eq!(
        subscriber.recv_event().await,
        event_ack(EventAction::Unsubscribe, correlation_id)
    );
}

#[tokio::test]
async fn existing_subscription_is_found() {
    let server = TestServer::start(in_order).await;
    let mut subscriber = server.login("subscriber").await;
    subscriber
        .subscribe_events(&["news/sports", "weather/today"], "1")
        .await;
    let mut provider = server.login("provider").await;

    listen(&mut provider, PATTERN).await;

    assert_eq!(provider.recv_event().await, found(PATTERN, "news/sports"));
    provider.expect_silence(QUIET).await;
    subscriber.expect_silence(QUIET).await;
}

#[tokio::test]
async fn new_subscription_is_found() {
    let server = TestServer::start(in_order).await;
    let mut provider = server.login("provider").await;
    listen(&mut provider, PATTERN).await;
    provider.expect_silence(QUIET).await;
    let mut subscriber = server.login("subscriber").await;

    subscriber.subscribe_events(&["weather/today"], "1").await;
    provider.expect_silence(QUIET).await;
    subscriber.subscribe_events(&["news/tech"], "2").await;

    assert_eq!(provider.recv_event().await, found(PATTERN, "news/tech"));
    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn second_subscriber_is_not_offered() {
    let server = TestServer::start(in_order).await;
    let mut provider = server.login("provider").await;
    listen(&mut provider, PATTERN).await;
    let mut first = server.login("first").await;
    first.subscribe_events(&["news/tech"], "1").await;
    assert_eq!(provider.recv_event().await, found(PATTERN, "news/tech"));
    respond(&mut provider, EventAction::ListenAccept, "news/tech").await;

    let mut second = server.login("second").await;
    second.subscribe_events(&["news/tech"], "1").await;

    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn listen_twice_is_multiple_subscriptions() {
    let server = TestServer::start(in_order).await;
    let mut provider = server.login("provider").await;
    listen(&mut provider, PATTERN).await;

    let again = EventMessage {
        action: EventAction::Listen.into(),
        name: PATTERN.into(),
        ..Default::default()
    };
    provider.send(TopicMessage::Event(again)).await;

    assert_eq!(
        provider.recv_event().await,
        listen_error(
            EventAction::MultipleSubscriptions,
            EventAction::Listen,
            PATTERN
        )
    );
    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn last_unsubscribe_removes_subscription() {
    let server = TestServer::start(in_order).await;
    let mut provider = server.login("provider").await;
    listen(&mut provider, PATTERN).await;
    let mut first = server.login("first").await;
    let mut second = server.login("second").await;
    first.subscribe_events(&["news/tech"], "1").await;
    second.subscribe_events(&["news/tech"], "1").await;
    assert_eq!(provider.recv_event().await, found(PATTERN, "news/tech"));
    respond(&mut provider, EventAction::ListenAccept, "news/tech").await;

    unsubscribe(&mut first, "news/tech", "2").await;
    provider.expect_silence(QUIET).await;
    unsubscribe(&mut second, "news/tech", "2").await;

    assert_eq!(provider.recv_event().await, removed(PATTERN, "news/tech"));
    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn closed_subscriber_removes_subscription() {
    let server = TestServer::start(in_order).await;
    let mut provider = server.login("provider").await;
    listen(&mut provider, PATTERN).await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["news/tech"], "1").await;
    assert_eq!(provider.recv_event().await, found(PATTERN, "news/tech"));
    respond(&mut provider, EventAction::ListenAccept, "news/tech").await;

    subscriber.close().await;

    assert_eq!(provider.recv_event().await, removed(PATTERN, "news/tech"));
}

#[tokio::test]
async fn reject_asks_next_provider() {
    let server = TestServer::start(in_order).await;
    let mut first = server.login("first-provider").await;
    let mut second = server.login("second-provider").await;
    listen(&mut first, PATTERN).await;
    listen(&mut second, PATTERN).await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["news/tech"], "1").await;
    assert_eq!(first.recv_event().await, found(PATTERN, "news/tech"));
    second.expect_silence(QUIET).await;

    respond(&mut first, EventAction::ListenReject, "news/tech").await;

    assert_eq!(second.recv_event().await, found(PATTERN, "news/tech"));
    respond(&mut second, EventAction::ListenAccept, "news/tech").await;
    first.expect_silence(QUIET).await;
    second.expect_silence(QUIET).await;
}

#[tokio::test]
async fn reject_by_all_asks_nobody_else() {
    let server = TestServer::start(in_order).await;
    let mut provider = server.login("provider").await;
    listen(&mut provider, PATTERN).await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["news/tech"], "1").await;
    assert_eq!(provider.recv_event().await, found(PATTERN, "news/tech"));

    respond(&mut provider, EventAction::ListenReject, "news/tech").await;

    provider.expect_silence(QUIET).await;
    subscriber.expect_silence(QUIET).await;
}

#[tokio::test]
async fn silent_provider_times_out() {
    let timeout = Duration::from_millis(100);
    let server = TestServer::start(|config| {
        in_order(config);
        config.listen.response_timeout = timeout;
    })
    .await;
    let mut first = server.login("first-provider").await;
    let mut second = server.login("second-provider").await;
    listen(&mut first, PATTERN).await;
    listen(&mut second, PATTERN).await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["news/tech"], "1").await;
    let asked = Instant::now();
    assert_eq!(first.recv_event().await, found(PATTERN, "news/tech"));

    let timed_out = first.recv_event().await;

    let elapsed = asked.elapsed();
    let expected = EventMessage {
        action: EventAction::ListenResponseTimeout.into(),
        subscription: "news/tech".into(),
        ..Default::default()
    };
    assert_eq!(timed_out, expected);
    assert!(
        elapsed >= timeout - Duration::from_millis(20),
        "timed out after only {elapsed:?}"
    );
    assert_eq!(second.recv_event().await, found(PATTERN, "news/tech"));
}

#[tokio::test]
async fn late_accept_is_removed() {
    let server = TestServer::start(|config| {
        in_order(config);
        config.listen.response_timeout = Duration::from_millis(100);
    })
    .await;
    let mut provider = server.login("provider").await;
    listen(&mut provider, PATTERN).await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["news/tech"], "1").await;
    assert_eq!(provider.recv_event().await, found(PATTERN, "news/tech"));
    assert_eq!(
        provider.recv_event().await.action(),
        EventAction::ListenResponseTimeout
    );

    respond(&mut provider, EventAction::ListenAccept, "news/tech").await;

    assert_eq!(provider.recv_event().await, removed(PATTERN, "news/tech"));
}

#[tokio::test]
async fn closed_provider_hands_over() {
    let server = TestServer::start(in_order).await;
    let mut first = server.login("first-provider").await;
    let mut second = server.login("second-provider").await;
    listen(&mut first, PATTERN).await;
    listen(&mut second, PATTERN).await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["news/tech"], "1").await;
    assert_eq!(first.recv_event().await, found(PATTERN, "news/tech"));
    respond(&mut first, EventAction::ListenAccept, "news/tech").await;
    second.expect_silence(QUIET).await;

    first.close().await;

    assert_eq!(second.recv_event().await, found(PATTERN, "news/tech"));
    subscriber.expect_silence(QUIET).await;
}

#[tokio::test]
async fn unlisten_hands_over() {
    let server = TestServer::start(in_order).await;
    let mut first = server.login("first-provider").await;
    let mut second = server.login("second-provider").await;
    listen(&mut first, PATTERN).await;
    listen(&mut second, PATTERN).await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["news/tech"], "1").await;
    assert_eq!(first.recv_event().await, found(PATTERN, "news/tech"));
    respond(&mut first, EventAction::ListenAccept, "news/tech").await;

    let unlisten = EventMessage {
        action: EventAction::Unlisten.into(),
        name: PATTERN.into(),
        ..Default::default()
    };
    first.send(TopicMessage::Event(unlisten)).await;

    assert_eq!(
        first.recv_event().await,
        listen_ack(EventAction::Unlisten, PATTERN)
    );
    assert_eq!(second.recv_event().await, found(PATTERN, "news/tech"));
    first.expect_silence(QUIET).await;
}

#[tokio::test]
async fn invalid_regex_is_rejected() {
    let server = TestServer::start(in_order).await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_events(&["news/(tech"], "1").await;
    let mut provider = server.login("provider").await;

    let listen = EventMessage {
        action: EventAction::Listen.into(),
        name: "news/(".into(),
        ..Default::default()
    };
    provider.send(TopicMessage::Event(listen)).await;

    assert_eq!(
        provider.recv_event().await,
        listen_error(
            EventAction::InvalidListenRegex,
            EventAction::Listen,
            "news/("
        )
    );
    provider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn unlisten_unknown_is_not_subscribed() {
    let server = TestServer::start(in_order).await;
    let mut provider = server.login("provider").await;

    let unlisten = EventMessage {
        action: EventAction::Unlisten.into(),
        name: "nothing/.*".into(),
        ..Default::default()
    };
    provider.send(TopicMessage::Event(unlisten)).await;

    assert_eq!(
        provider.recv_event().await,
        listen_error(
            EventAction::NotSubscribed,
            EventAction::Unlisten,
            "nothing/.*"
        )
    );
    provider.expect_silence(QUIET).await;
}
