//! Presence: subscriptions and queries.

use crate::common::*;
use crate::targets;

targets!(subscribe_all_sees_join_and_leave, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let watcher = server.login("watcher").await;
    let mut everyone = within(watcher.presence().subscribe_all()).await.unwrap();
    tokio::time::sleep(QUIET).await;

    let ada = server.login("ada").await;
    let change = within(everyone.next()).await.expect("subscription ended");
    assert_eq!((change.user.as_str(), change.online), ("ada", true));
    ada.close().await;
    let change = within(everyone.next()).await.expect("subscription ended");
    assert_eq!((change.user.as_str(), change.online), ("ada", false));
});

targets!(subscribe_to_one_user, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let watcher = server.login("watcher").await;
    let mut bob = within(watcher.presence().subscribe("bob")).await.unwrap();
    tokio::time::sleep(QUIET).await;

    let _ada = server.login("ada").await;
    let bob_client = server.login("bob").await;
    let change = within(bob.next()).await.expect("subscription ended");
    assert_eq!((change.user.as_str(), change.online), ("bob", true));
    bob_client.close().await;
    let change = within(bob.next()).await.expect("subscription ended");
    assert_eq!((change.user.as_str(), change.online), ("bob", false));
    assert!(
        maybe(bob.next()).await.is_none(),
        "a change of another user arrived"
    );
});

targets!(query_all_and_named, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let asker = server.login("asker").await;
    let _ada = server.login("ada").await;
    let _bob = server.login("bob").await;

    let mut online = within(asker.presence().get_all()).await.unwrap();
    online.sort();
    assert_eq!(online, ["ada", "bob"]);

    let named = within(asker.presence().get(&["ada", "carl"]))
        .await
        .unwrap();
    assert_eq!(named.get("ada"), Some(&true));
    assert_eq!(named.get("carl"), Some(&false));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_subscription_is_reported_once() {
    run(Target::Rust, |_| async {
        let server = TestServer::start_rust_with_rules(SUBSCRIBE_RULES).await;
        let (client, mut errors) = login_with_short_ack_timeout(&server, "alice").await;

        let _subscription = within(client.presence().subscribe("vip")).await.unwrap();
        expect_denial(&mut errors, "vip", "SUBSCRIBE").await;
        assert!(
            maybe(errors.recv()).await.is_none(),
            "an acknowledgement timeout followed the denial"
        );
    })
    .await;
}
