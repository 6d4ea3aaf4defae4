//! Records, lists and anonymous records.

use std::time::Duration;

use deepstream_client::core::{MergeStrategy, RecordError};
use serde_json::{Value, json};

use crate::common::*;
use crate::targets;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("record data is JSON")
}

/// Waits until `subscription` yields `expected`.
async fn expect_value(
    subscription: &mut deepstream_client::tokio::RecordSubscription,
    expected: &Value,
) {
    within(async {
        loop {
            let value = subscription.next().await.expect("subscription ended");
            if value.as_deref().map(parse).as_ref() == Some(expected) {
                return;
            }
        }
    })
    .await;
}

targets!(get_creates_and_set_reaches_others, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let alice = server.login("alice").await;
    let bob = server.login("bob").await;
    let record = within(alice.record().get("todo/1")).await.unwrap();
    assert_eq!(parse(&record.get().await.unwrap()), json!({}));
    assert_eq!(record.version().await.unwrap(), 0);

    let bobs = within(bob.record().get("todo/1")).await.unwrap();
    let mut changes = bobs.subscribe().await.unwrap();
    expect_value(&mut changes, &json!({})).await;

    record
        .set(r#"{"title":"milk","done":false}"#)
        .await
        .unwrap();
    expect_value(&mut changes, &json!({"title":"milk","done":false})).await;
    record.set_path("done", "true").await.unwrap();
    expect_value(&mut changes, &json!({"title":"milk","done":true})).await;
    record.erase("title").await.unwrap();
    expect_value(&mut changes, &json!({"done":true})).await;
    assert_eq!(bobs.version().await.unwrap(), 3);
    assert_eq!(record.version().await.unwrap(), 3);
});

targets!(subscribe_path_sees_only_its_path, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let alice = server.login("alice").await;
    let bob = server.login("bob").await;
    let record = within(alice.record().get("user/ada")).await.unwrap();
    let watcher = within(bob.record().get("user/ada")).await.unwrap();
    let mut age = watcher.subscribe_path("age").await.unwrap();
    assert_eq!(within(age.next()).await, Some(None), "current value first");

    record.set_path("name", r#""Ada""#).await.unwrap();
    record.set_path("age", "36").await.unwrap();
    assert_eq!(within(age.next()).await, Some(Some("36".to_owned())));
    assert_eq!(
        watcher.get_path("name").await.unwrap(),
        Some(r#""Ada""#.to_owned())
    );
});

targets!(set_with_ack_is_acknowledged, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.login("alice").await;
    let record = within(client.record().get("acked")).await.unwrap();
    within(record.set_with_ack(r#"{"a":1}"#)).await.unwrap();
    within(record.set_path_with_ack("b", "[1,2]"))
        .await
        .unwrap();
    within(record.erase_with_ack("a")).await.unwrap();
    let reader = server.login("reader").await;
    assert_eq!(
        parse(&within(reader.record().snapshot("acked")).await.unwrap()),
        json!({"b":[1,2]})
    );
});

targets!(snapshot_head_and_has, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.login("alice").await;
    assert_eq!(within(client.record().has("missing")).await, Ok(false));
    assert_eq!(within(client.record().head("missing")).await, Ok(-1));
    assert!(matches!(
        within(client.record().snapshot("missing")).await,
        Err(RecordError::NotFound { .. } | RecordError::Server { .. })
    ));

    within(client.record().set_data("present", r#"{"x":1}"#))
        .await
        .unwrap();
    let other = server.login("bob").await;
    assert_eq!(within(other.record().has("present")).await, Ok(true));
    assert_eq!(within(other.record().head("present")).await, Ok(1));
    assert_eq!(
        parse(&within(other.record().snapshot("present")).await.unwrap()),
        json!({"x":1})
    );
});

targets!(set_data_without_subscribing, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let writer = server.login("writer").await;
    let watcher = server.login("watcher").await;
    let record = within(watcher.record().get("settings")).await.unwrap();
    let mut changes = record.subscribe().await.unwrap();
    expect_value(&mut changes, &json!({})).await;

    within(writer.record().set_data("settings", r#"{"theme":"dark"}"#))
        .await
        .unwrap();
    expect_value(&mut changes, &json!({"theme":"dark"})).await;
    within(writer.record().set_data_path("settings", "size", "12"))
        .await
        .unwrap();
    expect_value(&mut changes, &json!({"theme":"dark","size":12})).await;
    within(writer.record().erase_data("settings", "theme"))
        .await
        .unwrap();
    expect_value(&mut changes, &json!({"size":12})).await;
});

targets!(delete_tells_other_clients, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let alice = server.login("alice").await;
    let bob = server.login("bob").await;
    let record = within(alice.record().get("doomed")).await.unwrap();
    record.set(r#"{"a":1}"#).await.unwrap();
    let bobs = within(bob.record().get("doomed")).await.unwrap();
    let mut changes = bobs.subscribe().await.unwrap();
    expect_value(&mut changes, &json!({"a":1})).await;

    within(record.delete()).await.unwrap();
    within(async { while changes.next().await.is_some() {} }).await;
    assert_eq!(within(alice.record().has("doomed")).await, Ok(false));
});

/// Waits until both records hold the same data and version, and returns them.
async fn agreement(
    first: &deepstream_client::tokio::Record,
    second: &deepstream_client::tokio::Record,
) -> (Value, i32) {
    within(async {
        loop {
            let (x, y) = (first.get().await.unwrap(), second.get().await.unwrap());
            let (v, w) = (
                first.version().await.unwrap(),
                second.version().await.unwrap(),
            );
            if parse(&x) == parse(&y) && v == w {
                return (parse(&x), v);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
}

targets!(concurrent_writers_agree, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let alice = server.login("alice").await;
    let bob = server.login("bob").await;
    let first = within(alice.record().get("conflict")).await.unwrap();
    let second = within(bob.record().get("conflict")).await.unwrap();
    // Writes in the same moment often carry the same version, so the server
    // rejects one of them with VERSION_EXISTS and the default strategy
    // (remote wins) brings the loser to the winner's data.
    for round in 0..10 {
        let alice_data = json!({"from": "alice", "round": round}).to_string();
        let bob_data = json!({"from": "bob", "round": round}).to_string();
        let (a, b) = tokio::join!(first.set(&alice_data), second.set(&bob_data));
        a.unwrap();
        b.unwrap();
    }
    // Remote wins, so a rejected write is dropped: the agreed data is one of
    // the writes, not necessarily one of the last round.
    let (data, version) = agreement(&first, &second).await;
    assert!(data["round"].is_u64(), "{data}");
    let reader = server.login("reader").await;
    let stored = within(reader.record().get("conflict")).await.unwrap();
    assert_eq!(parse(&stored.get().await.unwrap()), data);
    assert_eq!(stored.version().await.unwrap(), version);
});

targets!(custom_merge_strategy_combines, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let alice = server.login("alice").await;
    let bob = server.login("bob").await;
    let first = within(alice.record().get("merge")).await.unwrap();
    let second = within(bob.record().get("merge")).await.unwrap();
    let merges = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = merges.clone();
    let combine = MergeStrategy::custom(move |input| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut merged: serde_json::Map<String, Value> =
            serde_json::from_str(input.remote.as_deref().unwrap_or("{}"))
                .map_err(|e| e.to_string())?;
        let local: serde_json::Map<String, Value> =
            serde_json::from_str(&input.local).map_err(|e| e.to_string())?;
        merged.extend(local);
        Ok(Value::Object(merged).to_string())
    });
    first.set_merge_strategy(combine.clone()).await.unwrap();
    second.set_merge_strategy(combine).await.unwrap();
    // Repeat until the writes collide at least once.
    for round in 0..20 {
        let alice_data = json!({"a": round}).to_string();
        let bob_data = json!({"b": round}).to_string();
        let (a, b) = tokio::join!(first.set(&alice_data), second.set(&bob_data));
        a.unwrap();
        b.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if merges.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
    }
    assert!(
        merges.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "no write conflicted in 20 rounds"
    );
    let (data, _) = agreement(&first, &second).await;
    let object = data.as_object().expect("an object");
    assert!(
        object.contains_key("a") && object.contains_key("b"),
        "the merge kept one side only: {data}"
    );
});

targets!(lists_add_and_remove, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let alice = server.login("alice").await;
    let bob = server.login("bob").await;
    let list = within(alice.record().list("todos")).await.unwrap();
    assert_eq!(list.entries().await.unwrap(), Vec::<String>::new());
    let watched = within(bob.record().list("todos")).await.unwrap();
    let mut entries = watched.subscribe().await.unwrap();
    assert_eq!(within(entries.next()).await, Some(vec![]));

    within(list.add_entry("todo/1", None)).await.unwrap();
    within(list.add_entry("todo/2", None)).await.unwrap();
    within(list.add_entry("todo/0", Some(0))).await.unwrap();
    assert_eq!(
        list.entries().await.unwrap(),
        ["todo/0", "todo/1", "todo/2"]
    );
    within(list.remove_entry("todo/1", None)).await.unwrap();
    within(async {
        loop {
            if entries.next().await.expect("ended") == ["todo/0", "todo/2"] {
                return;
            }
        }
    })
    .await;
    assert!(matches!(
        list.add_entry("x", Some(9)).await,
        Err(RecordError::InvalidIndex { index: 9 })
    ));
});

targets!(anonymous_record_switches, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let writer = server.login("writer").await;
    within(writer.record().set_data("car/1", r#"{"color":"red"}"#))
        .await
        .unwrap();
    within(writer.record().set_data("car/2", r#"{"color":"blue"}"#))
        .await
        .unwrap();

    let reader = server.login("reader").await;
    let mut anonymous = reader.record().anonymous();
    let mut color = anonymous.subscribe_path("color").await.unwrap();
    anonymous.set_name("car/1").await.unwrap();
    assert_eq!(
        within(color.next()).await,
        Some(Some(r#""red""#.to_owned()))
    );
    anonymous.set_name("car/2").await.unwrap();
    assert_eq!(
        within(color.next()).await,
        Some(Some(r#""blue""#.to_owned()))
    );
    assert_eq!(anonymous.name(), Some("car/2"));

    assert!(matches!(
        anonymous.set_name("").await,
        Err(RecordError::EmptyName)
    ));
    assert_eq!(
        anonymous.name(),
        Some("car/2"),
        "a failed switch keeps the current record"
    );
    within(writer.record().set_data("car/2", r#"{"color":"green"}"#))
        .await
        .unwrap();
    assert_eq!(
        within(color.next()).await,
        Some(Some(r#""green""#.to_owned()))
    );
});

targets!(record_bad_input_is_refused, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.login("alice").await;
    assert!(matches!(
        within(client.record().get("")).await,
        Err(RecordError::EmptyName)
    ));
    let record = within(client.record().get("r")).await.unwrap();
    assert_eq!(record.set("42").await, Err(RecordError::NotAContainer));
    assert!(matches!(
        record.set("{oops").await,
        Err(RecordError::InvalidJson { .. })
    ));
    assert!(matches!(
        record.set_path("a[x]", "1").await,
        Err(RecordError::InvalidPath { .. })
    ));
});

targets!(notify_is_acknowledged, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.login("alice").await;
    within(
        client
            .record()
            .notify(&["not/subscribed/a", "not/subscribed/b"]),
    )
    .await
    .unwrap();
    assert_eq!(
        within(client.record().notify(&[""])).await,
        Err(RecordError::EmptyName)
    );
});

/// Rules that let everyone do everything, except read records under `vault/`.
const VAULT_RULES: &str = r#"
record:
  "*":
    create: true
    write: true
    read: true
    delete: true
    listen: true
    notify: true
  "vault/*":
    read: false
event:
  "*":
    publish: true
    subscribe: true
    listen: true
rpc:
  "*":
    provide: true
    request: true
presence:
  "*":
    allow: true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_read_fails_open_at_once() {
    run(Target::Rust, |_| async {
        let server = TestServer::start_rust_with_rules(VAULT_RULES).await;
        // A short acknowledgement timeout, so that the quiet check below
        // would see an acknowledgement timeout too.
        let mut options = test_options();
        options.subscription_timeout = Duration::from_millis(100);
        let client = server.client_with(options).await;
        within(client.login(r#"{"username":"alice"}"#))
            .await
            .unwrap();
        let mut errors = client.errors();
        let denied = RecordError::Server {
            action: "MESSAGE_DENIED".to_owned(),
        };

        // `within` fails the test long before the 15 s read timeout.
        assert_eq!(
            within(client.record().get("vault/key")).await.err(),
            Some(denied.clone())
        );
        assert_eq!(
            within(client.record().get("vault/key")).await.err(),
            Some(denied.clone()),
            "a second open asks the server again"
        );
        assert_eq!(
            within(client.record().list("vault/list")).await.err(),
            Some(denied.clone())
        );

        // Opened together, the two names share one bulk message.
        let records = client.record();
        let (allowed, refused) =
            within(async { tokio::join!(records.get("open/a"), records.get("vault/b")) }).await;
        assert!(allowed.is_ok(), "{allowed:?}");
        assert_eq!(refused.err(), Some(denied.clone()));

        let mut anonymous = client.record().anonymous();
        within(anonymous.set_name("open/a")).await.unwrap();
        assert_eq!(within(anonymous.set_name("vault/c")).await, Err(denied));
        assert_eq!(
            anonymous.name(),
            Some("open/a"),
            "a denied switch keeps the current record"
        );

        assert!(
            maybe(errors.recv()).await.is_none(),
            "a denial that a request received is not on the error stream"
        );
    })
    .await;
}
