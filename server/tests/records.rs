//! RECORD subscriptions, reads, heads and deletes, and records kept across a
//! restart in the embedded storage.
//!
//! Writes are in `records_writes.rs`, bad input and storage failures in
//! `records_bad_input.rs`, listening in `records_listening.rs` and NOTIFY in
//! `records_notify.rs`.

mod common;
#[allow(unused_imports, reason = "this test uses only its temporary folders")]
mod storage_support;

use std::collections::BTreeMap;

use common::{QUIET, RawClient, TestServer, record_ack, record_bulk, record_data, record_message};
use deepstream_protocol::{RecordAction, RecordMessage};
use deepstream_server::config::StorageConfig;
use storage_support::TempDir;

/// Creates the record `name` (or writes over it) with CREATEANDUPDATE and
/// waits for the write acknowledgement.
async fn write_acked(client: &mut RawClient, name: &str, data: &[u8]) {
    let correlation_id = format!("write {name}");
    client
        .send_record(RecordMessage {
            correlation_id: correlation_id.clone(),
            is_write_ack: true,
            ..record_data(RecordAction::Createandupdate, name, -1, data)
        })
        .await;
    assert_eq!(
        client.recv_record().await,
        write_acknowledgement(name, &correlation_id),
        "{}: ack of the write to {name}",
        client.label()
    );
}

fn write_acknowledgement(name: &str, correlation_id: &str) -> RecordMessage {
    RecordMessage {
        action: RecordAction::WriteAcknowledgement.into(),
        name: name.into(),
        correlation_id: correlation_id.into(),
        is_write_ack: true,
        ..Default::default()
    }
}

fn head_response(name: &str, version: i32) -> RecordMessage {
    RecordMessage {
        action: RecordAction::HeadResponse.into(),
        name: name.into(),
        version: Some(version),
        ..Default::default()
    }
}

fn record_error(action: RecordAction, original_action: RecordAction, name: &str) -> RecordMessage {
    RecordMessage {
        action: action.into(),
        original_action: original_action.into(),
        name: name.into(),
        is_error: true,
        ..Default::default()
    }
}

/// Sends HEAD for `name` and returns the version in the HEAD_RESPONSE.
async fn head_version(client: &mut RawClient, name: &str) -> i32 {
    client
        .send_record(record_message(RecordAction::Head, name))
        .await;
    let response = client.recv_record().await;
    assert_eq!(
        response.action(),
        RecordAction::HeadResponse,
        "{}: reply to HEAD {name}: {response:?}",
        client.label()
    );
    response
        .version
        .unwrap_or_else(|| panic!("HEAD_RESPONSE without a version: {response:?}"))
}

/// Receives `count` RECORD messages and returns them by record name, for
/// replies that different records send in any order.
async fn recv_by_name(client: &mut RawClient, count: usize) -> BTreeMap<String, RecordMessage> {
    let mut received = BTreeMap::new();
    for _ in 0..count {
        let message = client.recv_record().await;
        let name = message.name.clone();
        if let Some(earlier) = received.insert(name.clone(), message) {
            panic!(
                "{}: two replies for {name}, the first {earlier:?}",
                client.label()
            );
        }
    }
    received
}

#[tokio::test]
async fn bulk_subscribe_creates_each_record() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("client").await;
    let names = ["todo/1", "todo/2", "todo/3"];

    client
        .send_record(record_bulk(
            RecordAction::Subscribecreateandread,
            &names,
            "c1",
        ))
        .await;

    assert_eq!(
        client.recv_record().await,
        record_ack(RecordAction::Subscribecreateandread, "c1")
    );
    let responses = recv_by_name(&mut client, names.len()).await;
    for name in names {
        assert_eq!(
            responses.get(name),
            Some(&record_data(RecordAction::ReadResponse, name, 0, b"{}")),
            "READ_RESPONSE of {name}"
        );
    }
    client.expect_silence(QUIET).await;
    for name in names {
        assert_eq!(head_version(&mut client, name).await, 0, "HEAD of {name}");
    }
}

#[tokio::test]
async fn subscribe_and_read_missing_creates_nothing() {
    let server = TestServer::start(|_| {}).await;
    let mut reader = server.login("reader").await;
    let mut writer = server.login("writer").await;

    reader
        .send_record(record_bulk(
            RecordAction::Subscribeandread,
            &["missing/1"],
            "r1",
        ))
        .await;

    assert_eq!(
        reader.recv_record().await,
        record_ack(RecordAction::Subscribeandread, "r1")
    );
    assert_eq!(
        reader.recv_record().await,
        record_data(RecordAction::ReadResponse, "missing/1", -1, b"{}")
    );
    reader.expect_silence(QUIET).await;
    assert_eq!(head_version(&mut writer, "missing/1").await, -1);
    assert_eq!(
        writer.read_record("missing/1").await,
        record_error(
            RecordAction::RecordNotFound,
            RecordAction::Read,
            "missing/1"
        )
    );

    // The reader is subscribed although nothing was created.
    write_acked(&mut writer, "missing/1", br#"{"now":"here"}"#).await;
    assert_eq!(
        reader.recv_record().await,
        record_data(RecordAction::Update, "missing/1", 1, br#"{"now":"here"}"#)
    );
}

#[tokio::test]
async fn subscribe_and_head_answers_versions() {
    let server = TestServer::start(|_| {}).await;
    let mut writer = server.login("writer").await;
    write_acked(&mut writer, "known/1", br#"{"a":1}"#).await;
    write_acked(&mut writer, "known/2", br#"{"b":2}"#).await;
    let mut client = server.login("client").await;

    client
        .send_record(record_bulk(
            RecordAction::Subscribeandhead,
            &["known/1", "unknown/1", "known/2"],
            "h1",
        ))
        .await;

    assert_eq!(
        client.recv_record().await,
        record_ack(RecordAction::Subscribeandhead, "h1")
    );
    assert_eq!(
        client.recv_record().await,
        RecordMessage {
            action: RecordAction::HeadResponseBulk.into(),
            versions: [("known/1".to_owned(), 1), ("known/2".to_owned(), 1)].into(),
            ..Default::default()
        }
    );
    assert_eq!(client.recv_record().await, head_response("unknown/1", -1));
    client.expect_silence(QUIET).await;

    // Every name is subscribed, known or not.
    writer
        .send_record(record_data(
            RecordAction::Update,
            "known/2",
            2,
            br#"{"b":3}"#,
        ))
        .await;
    assert_eq!(
        client.recv_record().await,
        record_data(RecordAction::Update, "known/2", 2, br#"{"b":3}"#)
    );
    write_acked(&mut writer, "unknown/1", b"[]").await;
    assert_eq!(
        client.recv_record().await,
        record_data(RecordAction::Update, "unknown/1", 1, b"[]")
    );
}

#[tokio::test]
async fn head_bulk_answers_versions() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("client").await;
    write_acked(&mut client, "known/1", br#"{"a":1}"#).await;

    client
        .send_record(record_bulk(
            RecordAction::HeadBulk,
            &["known/1", "unknown/1"],
            "hb",
        ))
        .await;

    assert_eq!(
        client.recv_record().await,
        RecordMessage {
            action: RecordAction::HeadResponseBulk.into(),
            versions: [("known/1".to_owned(), 1)].into(),
            correlation_id: "hb".into(),
            ..Default::default()
        }
    );
    assert_eq!(client.recv_record().await, head_response("unknown/1", -1));
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn read_missing_is_not_found() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("client").await;

    assert_eq!(
        client.read_record("nobody/wrote").await,
        record_error(
            RecordAction::RecordNotFound,
            RecordAction::Read,
            "nobody/wrote"
        )
    );
    client.expect_silence(QUIET).await;
    assert_eq!(head_version(&mut client, "nobody/wrote").await, -1);
}

#[tokio::test]
async fn read_and_head_existing_record() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("client").await;
    let data = br#"{ "name" : "Ada", "tags":["x", 1.50] }"#;
    write_acked(&mut client, "users/ada", data).await;

    assert_eq!(
        client.read_record("users/ada").await,
        record_data(RecordAction::ReadResponse, "users/ada", 1, data)
    );
    client
        .send_record(record_message(RecordAction::Head, "users/ada"))
        .await;
    assert_eq!(client.recv_record().await, head_response("users/ada", 1));
    client
        .send_record(record_message(RecordAction::Head, "users/bob"))
        .await;
    assert_eq!(client.recv_record().await, head_response("users/bob", -1));
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn plain_subscribe_gets_updates_only() {
    let server = TestServer::start(|_| {}).await;
    let mut writer = server.login("writer").await;
    writer.subscribe_record("plain/1").await;
    let mut subscriber = server.login("subscriber").await;

    subscriber
        .send_record(record_bulk(RecordAction::Subscribe, &["plain/1"], "s1"))
        .await;

    assert_eq!(
        subscriber.recv_record().await,
        record_ack(RecordAction::Subscribe, "s1")
    );
    subscriber.expect_silence(QUIET).await;
    writer
        .send_record(record_data(
            RecordAction::Update,
            "plain/1",
            1,
            br#"{"x":1}"#,
        ))
        .await;
    assert_eq!(
        subscriber.recv_record().await,
        record_data(RecordAction::Update, "plain/1", 1, br#"{"x":1}"#)
    );
    writer.expect_silence(QUIET).await;
}

#[tokio::test]
async fn unsubscribe_stops_updates() {
    let server = TestServer::start(|_| {}).await;
    let mut writer = server.login("writer").await;
    let mut subscriber = server.login("subscriber").await;
    subscriber.subscribe_record("dropped/1").await;
    subscriber.subscribe_record("kept/1").await;

    subscriber
        .send_record(record_bulk(RecordAction::Unsubscribe, &["dropped/1"], "u1"))
        .await;
    assert_eq!(
        subscriber.recv_record().await,
        record_ack(RecordAction::Unsubscribe, "u1")
    );
    writer
        .send_record(record_data(
            RecordAction::Update,
            "dropped/1",
            1,
            br#"{"gone":true}"#,
        ))
        .await;
    // Different records are written in parallel, so the test waits for a READ
    // queued behind the first update before it sends the second.
    assert_eq!(
        writer.read_record("dropped/1").await,
        record_data(
            RecordAction::ReadResponse,
            "dropped/1",
            1,
            br#"{"gone":true}"#
        )
    );
    writer
        .send_record(record_data(
            RecordAction::Update,
            "kept/1",
            1,
            br#"{"here":true}"#,
        ))
        .await;

    assert_eq!(
        subscriber.recv_record().await,
        record_data(RecordAction::Update, "kept/1", 1, br#"{"here":true}"#)
    );
    subscriber.expect_silence(QUIET).await;
}

#[tokio::test]
async fn unsubscribe_unknown_is_not_subscribed() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("client").await;

    client
        .send_record(record_bulk(RecordAction::Unsubscribe, &["never/1"], "u1"))
        .await;

    assert_eq!(
        client.recv_record().await,
        record_error(
            RecordAction::NotSubscribed,
            RecordAction::Unsubscribe,
            "never/1"
        )
    );
    assert_eq!(
        client.recv_record().await,
        record_ack(RecordAction::Unsubscribe, "u1")
    );
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn subscribe_twice_is_multiple_subscriptions() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("client").await;
    client.subscribe_record("twice/1").await;

    client
        .send_record(record_bulk(RecordAction::Subscribe, &["twice/1"], "s2"))
        .await;
    assert_eq!(
        client.recv_record().await,
        record_error(
            RecordAction::MultipleSubscriptions,
            RecordAction::Subscribe,
            "twice/1"
        )
    );
    assert_eq!(
        client.recv_record().await,
        record_ack(RecordAction::Subscribe, "s2")
    );

    client
        .send_record(record_bulk(
            RecordAction::Subscribecreateandread,
            &["twice/1"],
            "s3",
        ))
        .await;
    assert_eq!(
        client.recv_record().await,
        record_ack(RecordAction::Subscribecreateandread, "s3")
    );
    assert_eq!(
        client.recv_record().await,
        record_error(
            RecordAction::MultipleSubscriptions,
            RecordAction::Subscribecreateandread,
            "twice/1"
        )
    );
    assert_eq!(
        client.recv_record().await,
        record_data(RecordAction::ReadResponse, "twice/1", 0, b"{}")
    );
    client.expect_silence(QUIET).await;

    // One subscription remains, so an update arrives once.
    let mut writer = server.login("writer").await;
    writer
        .send_record(record_data(RecordAction::Update, "twice/1", 1, b"[1]"))
        .await;
    assert_eq!(
        client.recv_record().await,
        record_data(RecordAction::Update, "twice/1", 1, b"[1]")
    );
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn delete_tells_and_unsubscribes_everyone() {
    let server = TestServer::start(|_| {}).await;
    let mut deleter = server.login("deleter").await;
    let mut first = server.login("first").await;
    let mut second = server.login("second").await;
    let mut writer = server.login("writer").await;
    for client in [&mut deleter, &mut first, &mut second] {
        client.subscribe_record("doomed/1").await;
    }

    deleter
        .send_record(record_message(RecordAction::Delete, "doomed/1"))
        .await;

    assert_eq!(
        deleter.recv_record().await,
        record_message(RecordAction::DeleteSuccess, "doomed/1")
    );
    for client in [&mut first, &mut second] {
        assert_eq!(
            client.recv_record().await,
            record_message(RecordAction::Deleted, "doomed/1"),
            "{}",
            client.label()
        );
    }
    assert_eq!(head_version(&mut writer, "doomed/1").await, -1);

    // The delete ended every subscription.
    write_acked(&mut writer, "doomed/1", br#"{"after":"delete"}"#).await;
    for client in [&mut deleter, &mut first, &mut second] {
        client.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn recreate_after_delete_starts_over() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("client").await;
    let mut watcher = server.login("watcher").await;
    write_acked(&mut client, "phoenix/1", br#"{"life":1}"#).await;
    client
        .send_record(record_message(RecordAction::Delete, "phoenix/1"))
        .await;
    assert_eq!(
        client.recv_record().await,
        record_message(RecordAction::DeleteSuccess, "phoenix/1")
    );

    assert_eq!(
        watcher.subscribe_record("phoenix/1").await,
        record_data(RecordAction::ReadResponse, "phoenix/1", 0, b"{}")
    );
    client
        .send_record(record_data(
            RecordAction::Update,
            "phoenix/1",
            1,
            br#"{"life":2}"#,
        ))
        .await;
    assert_eq!(
        watcher.recv_record().await,
        record_data(RecordAction::Update, "phoenix/1", 1, br#"{"life":2}"#)
    );
}

#[tokio::test]
async fn delete_bulk_acked_once() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.login("client").await;
    let mut subscriber = server.login("subscriber").await;
    write_acked(&mut client, "bulk/1", br#"{"n":1}"#).await;
    write_acked(&mut client, "bulk/2", br#"{"n":2}"#).await;
    subscriber.subscribe_record("bulk/1").await;

    client
        .send_record(record_bulk(
            RecordAction::DeleteBulk,
            &["bulk/1", "bulk/2"],
            "d1",
        ))
        .await;

    assert_eq!(
        client.recv_record().await,
        record_ack(RecordAction::DeleteBulkSuccess, "d1")
    );
    assert_eq!(
        subscriber.recv_record().await,
        record_message(RecordAction::Deleted, "bulk/1")
    );
    client.expect_silence(QUIET).await;
    subscriber.expect_silence(QUIET).await;
    assert_eq!(head_version(&mut client, "bulk/1").await, -1);
    assert_eq!(head_version(&mut client, "bulk/2").await, -1);
}

#[tokio::test]
async fn embedded_storage_keeps_records_across_restart() {
    let folder = TempDir::new("records-restart");
    let path = folder.path().join("records.redb");
    let embedded = |config: &mut deepstream_server::Config| {
        config.storage = StorageConfig::Embedded { path: path.clone() };
    };
    let data = br#"{"kept":["across","restart"]}"#;

    let server = TestServer::start(embedded).await;
    let mut client = server.login("client").await;
    write_acked(&mut client, "durable/1", data).await;
    client
        .send_record(RecordMessage {
            correlation_id: "second".into(),
            is_write_ack: true,
            ..record_data(RecordAction::Update, "durable/1", 2, br#"{"v":2}"#)
        })
        .await;
    assert_eq!(
        client.recv_record().await,
        write_acknowledgement("durable/1", "second")
    );
    write_acked(&mut client, "durable/2", data).await;
    server.stop().await;

    let server = TestServer::start(embedded).await;
    let mut client = server.login("client").await;
    assert_eq!(
        client.read_record("durable/1").await,
        record_data(RecordAction::ReadResponse, "durable/1", 2, br#"{"v":2}"#)
    );
    assert_eq!(
        client.read_record("durable/2").await,
        record_data(RecordAction::ReadResponse, "durable/2", 1, data)
    );
    server.stop().await;
}
