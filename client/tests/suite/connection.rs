//! Connecting, logging in, connection states and reconnection.

use std::time::Duration;

use deepstream_client::core::{ConnectionState, LoginError, PresenceError, RecordError, RpcError};
use deepstream_client::tokio::Client;

use crate::common::*;
use crate::targets;

targets!(login_returns_client_data, |target| async move {
    let server = TestServer::start(target, Auth::Users).await;
    let client = server.client().await;
    let auth = serde_json::json!({ "username": USER, "password": PASSWORD }).to_string();
    let client_data = within(client.login(&auth)).await.expect("login failed");
    let client_data: serde_json::Value =
        serde_json::from_str(&client_data.expect("no client data")).unwrap();
    assert_eq!(client_data, serde_json::json!({"role": "admin"}));
    assert_eq!(client.state(), ConnectionState::Open);
});

targets!(login_with_wrong_password_fails, |target| async move {
    let server = TestServer::start(target, Auth::Users).await;
    let client = server.client().await;
    let auth = serde_json::json!({ "username": USER, "password": "wrong" }).to_string();
    let result = within(client.login(&auth)).await;
    assert!(
        matches!(result, Err(LoginError::Rejected { .. })),
        "{result:?}"
    );
    assert_eq!(client.state(), ConnectionState::AwaitingAuthentication);

    let auth = serde_json::json!({ "username": USER, "password": PASSWORD }).to_string();
    within(client.login(&auth))
        .await
        .expect("second login on the same connection failed");
});

targets!(too_many_failed_logins_close, |target| async move {
    let server = TestServer::start(target, Auth::Users).await;
    let client = server.client().await;
    let auth = serde_json::json!({ "username": USER, "password": "wrong" }).to_string();
    // The server rejects each of the three allowed attempts and then
    // closes the connection.
    for _ in 0..3 {
        let result = within(client.login(&auth)).await;
        assert!(
            matches!(result, Err(LoginError::Rejected { .. })),
            "{result:?}"
        );
    }
    let mut states = client.state_changes();
    within(states.wait_for(|state| *state == ConnectionState::TooManyAuthAttempts))
        .await
        .expect("state channel closed");
    assert_eq!(
        within(client.login(&auth)).await,
        Err(LoginError::TooManyAttempts)
    );
});

targets!(invalid_auth_data_is_refused, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.client().await;
    for data in ["not json", "[1]", "\"ada\""] {
        let result = within(client.login(data)).await;
        assert!(
            matches!(result, Err(LoginError::InvalidAuthData { .. })),
            "{data}: {result:?}"
        );
    }
    within(client.login("{}"))
        .await
        .expect("valid login failed");
});

targets!(unreachable_server_is_connect_error, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let url = server.url();
    drop(server);
    // Give the port a moment to close for good.
    tokio::time::sleep(QUIET).await;
    let result = Client::connect(&url, test_options()).await;
    assert!(result.is_err(), "connected to a stopped server");
});

targets!(close_ends_everything, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.login("ada").await;
    let mut subscription = within(client.event().subscribe("topic")).await.unwrap();
    client.close().await;
    assert_eq!(client.state(), ConnectionState::Closed);
    assert_eq!(within(subscription.next()).await, None);
    assert_eq!(
        within(client.rpc().make("anything", "1")).await,
        Err(deepstream_client::core::RpcError::ClientOffline)
    );
    assert!(matches!(
        within(client.record().get("after/close")).await,
        Err(RecordError::ClientOffline)
    ));
    assert!(matches!(
        within(client.event().subscribe("after/close")).await,
        Err(deepstream_client::core::EventError::ClientOffline)
    ));
    assert!(matches!(
        within(client.rpc().provide("after/close")).await,
        Err(RpcError::ClientOffline)
    ));
    assert!(matches!(
        within(client.presence().subscribe_all()).await,
        Err(PresenceError::ClientOffline)
    ));
    assert!(matches!(
        within(client.event().listen("after/.*")).await,
        Err(deepstream_client::core::EventError::ClientOffline)
    ));
});

targets!(close_fails_record_waiting_for_login, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.client().await;
    let opening = {
        let client = client.clone();
        tokio::spawn(async move { client.record().get("before/login").await })
    };
    tokio::time::sleep(QUIET).await;
    assert!(!opening.is_finished(), "the record opened without a login");
    client.close().await;
    let result = within(opening).await.expect("the task panicked");
    assert!(
        matches!(result, Err(RecordError::ClientOffline)),
        "{result:?}"
    );
});

targets!(requests_before_login_end, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let mut options = test_options();
    options.offline_buffer_timeout = Duration::from_millis(200);
    options.record_read_timeout = Duration::from_millis(400);
    let client = server.client_with(options).await;
    assert_eq!(
        within(client.rpc().make("anything", "1")).await,
        Err(RpcError::ClientOffline)
    );
    assert!(matches!(
        within(client.presence().get_all()).await,
        Err(PresenceError::ClientOffline)
    ));
    assert!(matches!(
        within(client.record().get("never/read")).await,
        Err(RecordError::Timeout)
    ));
});

targets!(state_changes_wait_for_next_change, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.login("ada").await;
    let mut states = client.state_changes();
    assert!(
        maybe(states.changed()).await.is_none(),
        "changed() returned without a change"
    );
    client.close().await;
    within(states.changed())
        .await
        .expect("state channel closed");
    assert_eq!(*states.borrow(), ConnectionState::Closed);
});

targets!(reconnect_after_server_restart, |target| async move {
    let mut server = TestServer::start(target, Auth::Open).await;
    let client = server.login("ada").await;
    let mut events = within(client.event().subscribe("news")).await.unwrap();
    let mut provider = within(client.rpc().provide("double")).await.unwrap();
    let mut presence = within(client.presence().subscribe_all()).await.unwrap();
    let record = within(client.record().get("lost/on/restart"))
        .await
        .unwrap();
    record.set(r#"{"kept":false}"#).await.unwrap();
    let mut record_changes = record.subscribe().await.unwrap();
    // Let the bulk subscriptions reach the server.
    tokio::time::sleep(QUIET).await;

    let mut states = client.state_changes();
    server.stop().await;
    within(states.wait_for(|state| *state == ConnectionState::Reconnecting))
        .await
        .expect("state channel closed");
    server.restart().await;
    within(states.wait_for(|state| *state == ConnectionState::Open))
        .await
        .expect("state channel closed");
    tokio::time::sleep(QUIET).await;

    let other = server.login("bob").await;
    // The event subscription was renewed.
    within(other.event().emit("news", r#""after restart""#))
        .await
        .unwrap();
    let event = within(events.next()).await.expect("subscription ended");
    assert_eq!(event.data.as_deref(), Some(r#""after restart""#));

    // The presence subscription was renewed: bob's login was announced.
    let change = within(presence.next()).await.expect("subscription ended");
    assert_eq!(change.user, "bob");
    assert!(change.online);

    // The RPC provider was registered again.
    let answer = tokio::spawn(async move {
        let request = within(provider.next()).await.expect("provider ended");
        let value: i64 = request.data().unwrap().parse().unwrap();
        request.send(&(value * 2).to_string()).await.unwrap();
        provider
    });
    assert_eq!(
        within(other.rpc().make("double", "21")).await.unwrap(),
        "42"
    );
    answer.await.unwrap();

    // Neither test server keeps records across a restart. The record is
    // subscribed again, found missing, and ends (remote wins), while new
    // records work.
    within(async { while record_changes.next().await.is_some() {} }).await;
    let fresh = within(client.record().get("new/after/restart"))
        .await
        .unwrap();
    within(fresh.set_with_ack(r#"{"ok":true}"#)).await.unwrap();
    assert_eq!(
        within(other.record().snapshot("new/after/restart"))
            .await
            .unwrap(),
        r#"{"ok":true}"#
    );
});
