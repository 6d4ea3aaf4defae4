//! Events: subscribe, emit, unsubscribe and listening.

use deepstream_client::core::EventError;
use deepstream_client::tokio::ListenEvent;

use crate::common::*;
use crate::targets;

targets!(emit_reaches_other_clients_and_self, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let alice = server.login("alice").await;
    let bob = server.login("bob").await;
    let mut alice_chat = within(alice.event().subscribe("chat")).await.unwrap();
    let mut bob_chat = within(bob.event().subscribe("chat")).await.unwrap();
    tokio::time::sleep(QUIET).await;

    within(alice.event().emit("chat", r#"{"text":"hi"}"#))
        .await
        .unwrap();
    let received = within(bob_chat.next())
        .await
        .expect("bob's subscription ended");
    assert_eq!(received.name, "chat");
    assert_eq!(received.data.as_deref(), Some(r#"{"text":"hi"}"#));
    let own = within(alice_chat.next())
        .await
        .expect("alice's subscription ended");
    assert_eq!(own.data.as_deref(), Some(r#"{"text":"hi"}"#));
    assert!(
        maybe(alice_chat.next()).await.is_none(),
        "alice got her event twice"
    );

    within(bob.event().emit_data("chat", None)).await.unwrap();
    let received = within(alice_chat.next()).await.unwrap();
    assert_eq!(received.data, None);
});

targets!(dropped_subscription_stops_events, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let alice = server.login("alice").await;
    let bob = server.login("bob").await;
    let subscription = within(bob.event().subscribe("news")).await.unwrap();
    let mut listener = within(alice.event().listen("^news$")).await.unwrap();

    let Some(ListenEvent::Request(request)) = within(listener.next()).await else {
        panic!("no listen request for the subscription");
    };
    request.accept();
    drop(subscription);
    match within(listener.next()).await {
        Some(ListenEvent::Stopped { name }) => assert_eq!(name, "news"),
        other => panic!("expected a stop notice, got {other:?}"),
    }
});

targets!(emit_bad_input_is_refused, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.login("alice").await;
    assert_eq!(
        within(client.event().emit("", "1")).await,
        Err(EventError::EmptyName)
    );
    assert!(matches!(
        within(client.event().emit("chat", "{not json")).await,
        Err(EventError::InvalidJson { .. })
    ));
    assert!(matches!(
        within(client.event().subscribe("")).await,
        Err(EventError::EmptyName)
    ));
});

targets!(listen_reject_then_accept, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let provider = server.login("provider").await;
    let subscriber = server.login("subscriber").await;
    let mut listener = within(provider.event().listen("^prices/.*")).await.unwrap();
    tokio::time::sleep(QUIET).await;

    let mut prices = within(subscriber.event().subscribe("prices/eur"))
        .await
        .unwrap();
    let Some(ListenEvent::Request(request)) = within(listener.next()).await else {
        panic!("no listen request");
    };
    assert_eq!(request.name(), "prices/eur");
    request.accept();
    within(provider.event().emit("prices/eur", "1.08"))
        .await
        .unwrap();
    let price = within(prices.next()).await.unwrap();
    assert_eq!(price.data.as_deref(), Some("1.08"));

    let _other = within(subscriber.event().subscribe("prices/usd"))
        .await
        .unwrap();
    let Some(ListenEvent::Request(request)) = within(listener.next()).await else {
        panic!("no listen request for the second name");
    };
    assert_eq!(request.name(), "prices/usd");
    request.reject();
    assert!(
        maybe(listener.next()).await.is_none(),
        "a rejected name was offered again at once"
    );
});

targets!(listen_twice_is_refused, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.login("alice").await;
    let _listener = within(client.event().listen("a.*")).await.unwrap();
    assert!(matches!(
        within(client.event().listen("a.*")).await,
        Err(EventError::AlreadyListening { .. })
    ));
});

targets!(invalid_listen_pattern_ends_listener, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.login("alice").await;
    let mut errors = client.errors();
    let mut listener = within(client.event().listen("(")).await.unwrap();
    assert!(
        within(listener.next()).await.is_none(),
        "the listener did not end"
    );
    let error = within(errors.recv()).await.expect("no error reported");
    assert!(
        error.to_string().contains("INVALID_LISTEN_REGEX"),
        "{error}"
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_subscription_and_listen_end_once() {
    run(Target::Rust, |_| async {
        let server = TestServer::start_rust_with_rules(SUBSCRIBE_RULES).await;
        let (client, mut errors) = login_with_short_ack_timeout(&server, "alice").await;
        let events = client.event();

        // Our server sends no acknowledgement for a bulk message whose names
        // are all denied; only the denial comes back.
        let mut denied = within(events.subscribe("secret/a")).await.unwrap();
        assert!(
            within(denied.next()).await.is_none(),
            "the denied subscription did not end"
        );
        expect_denial(&mut errors, "secret/a", "SUBSCRIBE").await;

        // Subscribed together, the two names share one bulk message, which
        // the server acknowledges for the allowed name.
        let (allowed, refused) = within(async {
            tokio::join!(events.subscribe("open/a"), events.subscribe("secret/b"))
        })
        .await;
        let (mut allowed, mut refused) = (allowed.unwrap(), refused.unwrap());
        assert!(within(refused.next()).await.is_none());
        expect_denial(&mut errors, "secret/b", "SUBSCRIBE").await;

        let mut listener = within(events.listen("secret/.*")).await.unwrap();
        assert!(
            within(listener.next()).await.is_none(),
            "the denied listen did not end"
        );
        expect_denial(&mut errors, "secret/.*", "LISTEN").await;

        assert!(
            maybe(errors.recv()).await.is_none(),
            "an acknowledgement timeout followed a denial"
        );
        within(events.emit("open/a", "1")).await.unwrap();
        assert_eq!(
            within(allowed.next()).await.map(|event| event.name),
            Some("open/a".to_owned())
        );
    })
    .await;
}
