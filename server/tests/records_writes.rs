//! RECORD writes: updates, patches and erases with versions, write
//! acknowledgements, creating writes, and concurrent writers.

mod common;

use std::collections::HashSet;

use common::{QUIET, RawClient, TestServer, record_data, record_message};
use deepstream_protocol::{RecordAction, RecordMessage};

/// Returns `message` with a request for a write acknowledgement.
fn acked(message: RecordMessage, correlation_id: &str) -> RecordMessage {
    RecordMessage {
        correlation_id: correlation_id.into(),
        is_write_ack: true,
        ..message
    }
}

fn patch(name: &str, version: i32, path: &str, value: &[u8]) -> RecordMessage {
    RecordMessage {
        path: path.into(),
        ..record_data(RecordAction::Patch, name, version, value)
    }
}

fn erase(name: &str, version: i32, path: &str) -> RecordMessage {
    RecordMessage {
        action: RecordAction::Erase.into(),
        name: name.into(),
        version: Some(version),
        path: path.into(),
        ..Default::default()
    }
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

/// Sends `write` with a write acknowledgement and waits for it.
async fn write_acked(client: &mut RawClient, write: RecordMessage) {
    let name = write.name.clone();
    let correlation_id = format!("ack {name} {:?}", write.version);
    client.send_record(acked(write, &correlation_id)).await;
    assert_eq!(
        client.recv_record().await,
        write_acknowledgement(&name, &correlation_id),
        "{}: ack of a write to {name}",
        client.label()
    );
}

/// Logs in a writer and a subscriber, both subscribed to `name`. The writer
/// sets `name` to `data` at version 1.
async fn writer_and_subscriber(
    server: &TestServer,
    name: &str,
    data: &[u8],
) -> (RawClient, RawClient) {
    let mut writer = server.login("writer").await;
    let mut subscriber = server.login("subscriber").await;
    writer.subscribe_record(name).await;
    subscriber.subscribe_record(name).await;
    writer
        .send_record(record_data(RecordAction::Update, name, 1, data))
        .await;
    assert_eq!(
        subscriber.recv_record().await,
        record_data(RecordAction::Update, name, 1, data),
        "setting up {name}"
    );
    (writer, subscriber)
}

#[tokio::test]
async fn update_reaches_other_subscribers() {
    let server = TestServer::start(|_| {}).await;
    let mut writer = server.login("writer").await;
    let mut first = server.login("first").await;
    let mut second = server.login("second").await;
    for client in [&mut writer, &mut first, &mut second] {
        client.subscribe_record("doc/1").await;
    }
    // Unusual spacing, escapes and number forms must arrive byte for byte.
    let data = r#"{ "text":"héllo \u00e9 \"you\"", "n":[1, 2.50e3, -0], "none":null }"#.as_bytes();

    writer
        .send_record(record_data(RecordAction::Update, "doc/1", 1, data))
        .await;

    for client in [&mut first, &mut second] {
        assert_eq!(
            client.recv_record().await,
            record_data(RecordAction::Update, "doc/1", 1, data),
            "{}",
            client.label()
        );
    }
    writer.expect_silence(QUIET).await;
    assert_eq!(
        writer.read_record("doc/1").await,
        record_data(RecordAction::ReadResponse, "doc/1", 1, data)
    );
}

#[tokio::test]
async fn patch_sets_value_at_path() {
    let server = TestServer::start(|_| {}).await;
    let (mut writer, mut subscriber) =
        writer_and_subscriber(&server, "doc/1", br#"{"a":{"x":0}}"#).await;

    writer
        .send_record(patch("doc/1", 2, "a.b", br#"{"c":true}"#))
        .await;

    assert_eq!(
        subscriber.recv_record().await,
        patch("doc/1", 2, "a.b", br#"{"c":true}"#)
    );
    writer.expect_silence(QUIET).await;
    assert_eq!(
        writer.read_record("doc/1").await,
        record_data(
            RecordAction::ReadResponse,
            "doc/1",
            2,
            // Keys keep their order, as the official client's JSON objects do.
            br#"{"a":{"x":0,"b":{"c":true}}}"#
        )
    );
}

#[tokio::test]
async fn patch_index_on_missing_key_makes_array() {
    let server = TestServer::start(|_| {}).await;
    let mut writer = server.login("writer").await;
    let mut subscriber = server.login("subscriber").await;
    writer.subscribe_record("list/1").await;
    subscriber.subscribe_record("list/1").await;

    writer
        .send_record(patch("list/1", 1, "items[0]", b"51"))
        .await;

    assert_eq!(
        subscriber.recv_record().await,
        patch("list/1", 1, "items[0]", b"51")
    );
    assert_eq!(
        writer.read_record("list/1").await,
        record_data(
            RecordAction::ReadResponse,
            "list/1",
            1,
            br#"{"items":[51]}"#
        )
    );
}

#[tokio::test]
async fn patch_through_string_replaces_it() {
    // @deepstream/client 7.x and @deepstream/server 7.0.2 both replace a scalar
    // on the path with a new object, so the server must compute the same document.
    let server = TestServer::start(|_| {}).await;
    let (mut writer, mut subscriber) =
        writer_and_subscriber(&server, "doc/1", br#"{"a":"x"}"#).await;

    writer.send_record(patch("doc/1", 2, "a.b", b"1")).await;

    assert_eq!(
        subscriber.recv_record().await,
        patch("doc/1", 2, "a.b", b"1")
    );
    assert_eq!(
        writer.read_record("doc/1").await,
        record_data(RecordAction::ReadResponse, "doc/1", 2, br#"{"a":{"b":1}}"#)
    );
}

#[tokio::test]
async fn erase_removes_value_at_path() {
    let server = TestServer::start(|_| {}).await;
    let (mut writer, mut subscriber) =
        writer_and_subscriber(&server, "doc/1", br#"{"a":{"b":1,"c":2}}"#).await;

    writer.send_record(erase("doc/1", 2, "a.b")).await;

    assert_eq!(subscriber.recv_record().await, erase("doc/1", 2, "a.b"));
    writer.expect_silence(QUIET).await;
    assert_eq!(
        writer.read_record("doc/1").await,
        record_data(RecordAction::ReadResponse, "doc/1", 2, br#"{"a":{"c":2}}"#)
    );
}

#[tokio::test]
async fn version_minus_one_takes_next() {
    let server = TestServer::start(|_| {}).await;
    let (mut writer, mut subscriber) = writer_and_subscriber(&server, "doc/1", br#"{"v":1}"#).await;

    writer
        .send_record(record_data(
            RecordAction::Update,
            "doc/1",
            -1,
            br#"{"v":2}"#,
        ))
        .await;
    writer.send_record(patch("doc/1", -1, "v", b"3")).await;
    writer.send_record(erase("doc/1", -1, "v")).await;

    assert_eq!(
        subscriber.recv_record().await,
        record_data(RecordAction::Update, "doc/1", 2, br#"{"v":2}"#)
    );
    assert_eq!(subscriber.recv_record().await, patch("doc/1", 3, "v", b"3"));
    assert_eq!(subscriber.recv_record().await, erase("doc/1", 4, "v"));
    writer.expect_silence(QUIET).await;
    assert_eq!(
        writer.read_record("doc/1").await,
        record_data(RecordAction::ReadResponse, "doc/1", 4, b"{}")
    );
}

#[tokio::test]
async fn version_ahead_is_invalid_version() {
    let server = TestServer::start(|_| {}).await;
    let (mut writer, mut subscriber) = writer_and_subscriber(&server, "doc/1", br#"{"v":1}"#).await;

    writer
        .send_record(record_data(RecordAction::Update, "doc/1", 5, br#"{"v":5}"#))
        .await;
    assert_eq!(
        writer.recv_record().await,
        RecordMessage {
            action: RecordAction::InvalidVersion.into(),
            original_action: RecordAction::Update.into(),
            name: "doc/1".into(),
            version: Some(1),
            is_error: true,
            ..Default::default()
        }
    );

    writer
        .send_record(acked(patch("doc/1", 3, "v", b"3"), "w3"))
        .await;
    assert_eq!(
        writer.recv_record().await,
        RecordMessage {
            action: RecordAction::InvalidVersion.into(),
            original_action: RecordAction::Patch.into(),
            name: "doc/1".into(),
            version: Some(1),
            is_error: true,
            correlation_id: "w3".into(),
            is_write_ack: true,
            ..Default::default()
        }
    );

    subscriber.expect_silence(QUIET).await;
    writer.expect_silence(QUIET).await;
    assert_eq!(
        writer.read_record("doc/1").await,
        record_data(RecordAction::ReadResponse, "doc/1", 1, br#"{"v":1}"#)
    );
}

#[tokio::test]
async fn stale_version_gets_current_data() {
    let server = TestServer::start(|_| {}).await;
    let (mut writer, mut subscriber) = writer_and_subscriber(&server, "doc/1", br#"{"v":1}"#).await;
    writer
        .send_record(record_data(RecordAction::Update, "doc/1", 2, br#"{"v":2}"#))
        .await;
    assert_eq!(
        subscriber.recv_record().await,
        record_data(RecordAction::Update, "doc/1", 2, br#"{"v":2}"#)
    );

    // The subscriber writes on top of version 1, which is no longer current.
    subscriber
        .send_record(record_data(
            RecordAction::Update,
            "doc/1",
            2,
            br#"{"v":"mine"}"#,
        ))
        .await;
    assert_eq!(
        subscriber.recv_record().await,
        RecordMessage {
            original_action: RecordAction::Update.into(),
            ..record_data(RecordAction::VersionExists, "doc/1", 2, br#"{"v":2}"#)
        }
    );

    subscriber
        .send_record(acked(patch("doc/1", 1, "v", b"0"), "old"))
        .await;
    assert_eq!(
        subscriber.recv_record().await,
        RecordMessage {
            original_action: RecordAction::Patch.into(),
            correlation_id: "old".into(),
            is_write_ack: true,
            ..record_data(RecordAction::VersionExists, "doc/1", 2, br#"{"v":2}"#)
        }
    );

    writer.expect_silence(QUIET).await;
    subscriber.expect_silence(QUIET).await;
    assert_eq!(
        writer.read_record("doc/1").await,
        record_data(RecordAction::ReadResponse, "doc/1", 2, br#"{"v":2}"#)
    );
}

#[tokio::test]
async fn version_below_minus_one_is_invalid() {
    let server = TestServer::start(|_| {}).await;
    let (mut writer, mut subscriber) = writer_and_subscriber(&server, "doc/1", br#"{"v":1}"#).await;

    for version in [-2, i32::MIN] {
        writer
            .send_record(record_data(
                RecordAction::Update,
                "doc/1",
                version,
                br#"{"v":"bad"}"#,
            ))
            .await;
        let error = writer
            .expect_record_error(
                RecordAction::InvalidVersion,
                RecordAction::Update,
                "doc/1",
                None,
            )
            .await;
        assert_eq!(error.version, None, "version {version}: {error:?}");
    }

    subscriber.expect_silence(QUIET).await;
    assert_eq!(
        writer.read_record("doc/1").await,
        record_data(RecordAction::ReadResponse, "doc/1", 1, br#"{"v":1}"#)
    );
}

#[tokio::test]
async fn write_ack_answers_each_write() {
    let server = TestServer::start(|_| {}).await;
    let (mut writer, mut subscriber) = writer_and_subscriber(&server, "doc/1", br#"{"v":1}"#).await;

    writer
        .send_record(acked(
            record_data(RecordAction::Update, "doc/1", 2, br#"{"v":2}"#),
            "u",
        ))
        .await;
    assert_eq!(
        writer.recv_record().await,
        write_acknowledgement("doc/1", "u")
    );
    writer
        .send_record(acked(patch("doc/1", 3, "w", b"true"), "p"))
        .await;
    assert_eq!(
        writer.recv_record().await,
        write_acknowledgement("doc/1", "p")
    );
    writer.send_record(acked(erase("doc/1", 4, "v"), "e")).await;
    assert_eq!(
        writer.recv_record().await,
        write_acknowledgement("doc/1", "e")
    );
    writer.expect_silence(QUIET).await;

    assert_eq!(
        subscriber.recv_record().await,
        record_data(RecordAction::Update, "doc/1", 2, br#"{"v":2}"#)
    );
    assert_eq!(
        subscriber.recv_record().await,
        patch("doc/1", 3, "w", b"true")
    );
    assert_eq!(subscriber.recv_record().await, erase("doc/1", 4, "v"));
    assert_eq!(
        writer.read_record("doc/1").await,
        record_data(RecordAction::ReadResponse, "doc/1", 4, br#"{"w":true}"#)
    );
}

#[tokio::test]
async fn acks_for_writes_in_flight() {
    const WRITES: i32 = 20;
    let server = TestServer::start(|_| {}).await;
    let mut writer = server.login("writer").await;
    let mut subscriber = server.login("subscriber").await;
    writer.subscribe_record("burst/1").await;
    subscriber.subscribe_record("burst/1").await;

    for version in 1..=WRITES {
        let data = format!("{{\"n\":{version}}}");
        writer
            .send_record(acked(
                record_data(RecordAction::Update, "burst/1", version, data.as_bytes()),
                &format!("w{version}"),
            ))
            .await;
    }

    let mut acknowledged = HashSet::new();
    for _ in 1..=WRITES {
        let ack = writer.recv_record().await;
        assert_eq!(
            ack,
            write_acknowledgement("burst/1", &ack.correlation_id),
            "not a write acknowledgement"
        );
        assert!(
            acknowledged.insert(ack.correlation_id.clone()),
            "{} acknowledged twice",
            ack.correlation_id
        );
    }
    let expected: HashSet<String> = (1..=WRITES).map(|version| format!("w{version}")).collect();
    assert_eq!(acknowledged, expected);
    writer.expect_silence(QUIET).await;

    for version in 1..=WRITES {
        let data = format!("{{\"n\":{version}}}");
        assert_eq!(
            subscriber.recv_record().await,
            record_data(RecordAction::Update, "burst/1", version, data.as_bytes())
        );
    }
    subscriber.expect_silence(QUIET).await;
}

#[tokio::test]
async fn create_and_update_creates_missing() {
    let server = TestServer::start(|_| {}).await;
    let mut writer = server.login("writer").await;
    let mut subscriber = server.login("subscriber").await;
    subscriber
        .send_record(common::record_bulk(
            RecordAction::Subscribe,
            &["new/1"],
            "s",
        ))
        .await;
    assert_eq!(
        subscriber.recv_record().await,
        common::record_ack(RecordAction::Subscribe, "s")
    );

    writer
        .send_record(acked(
            record_data(
                RecordAction::Createandupdate,
                "new/1",
                -1,
                br#"{"set":"data"}"#,
            ),
            "c",
        ))
        .await;

    assert_eq!(
        writer.recv_record().await,
        write_acknowledgement("new/1", "c")
    );
    assert_eq!(
        subscriber.recv_record().await,
        record_data(RecordAction::Update, "new/1", 1, br#"{"set":"data"}"#)
    );
    assert_eq!(
        writer.read_record("new/1").await,
        record_data(RecordAction::ReadResponse, "new/1", 1, br#"{"set":"data"}"#)
    );

    // On an existing record it is an ordinary write.
    writer
        .send_record(acked(
            record_data(RecordAction::Createandupdate, "new/1", -1, b"[2]"),
            "again",
        ))
        .await;
    assert_eq!(
        writer.recv_record().await,
        write_acknowledgement("new/1", "again")
    );
    assert_eq!(
        subscriber.recv_record().await,
        record_data(RecordAction::Update, "new/1", 2, b"[2]")
    );
}

#[tokio::test]
async fn create_and_patch_creates_missing() {
    let server = TestServer::start(|_| {}).await;
    let mut writer = server.login("writer").await;

    write_acked(
        &mut writer,
        RecordMessage {
            action: RecordAction::Createandpatch.into(),
            ..patch("new/1", -1, "a.b", b"1")
        },
    )
    .await;

    assert_eq!(
        writer.read_record("new/1").await,
        record_data(RecordAction::ReadResponse, "new/1", 1, br#"{"a":{"b":1}}"#)
    );
}

#[tokio::test]
async fn update_missing_is_update_error() {
    let server = TestServer::start(|_| {}).await;
    let mut writer = server.login("writer").await;

    writer
        .send_record(record_data(
            RecordAction::Update,
            "ghost/1",
            1,
            br#"{"x":1}"#,
        ))
        .await;
    writer
        .expect_record_error(
            RecordAction::RecordUpdateError,
            RecordAction::Update,
            "ghost/1",
            None,
        )
        .await;
    writer
        .send_record(acked(patch("ghost/1", -1, "x", b"1"), "p"))
        .await;
    writer
        .expect_record_error(
            RecordAction::RecordUpdateError,
            RecordAction::Patch,
            "ghost/1",
            Some("p"),
        )
        .await;

    writer.expect_silence(QUIET).await;
    assert_eq!(
        writer.read_record("ghost/1").await,
        RecordMessage {
            original_action: RecordAction::Read.into(),
            is_error: true,
            ..record_message(RecordAction::RecordNotFound, "ghost/1")
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_get_consecutive_versions() {
    const WRITERS: usize = 3;
    const WRITES_EACH: usize = 30;
    const TOTAL: i32 = (WRITERS * WRITES_EACH) as i32;
    let server = TestServer::start(|_| {}).await;
    let mut subscribers = Vec::new();
    for index in 0..2 {
        let mut subscriber = server.login(&format!("subscriber {index}")).await;
        subscriber.subscribe_record("contended/1").await;
        subscribers.push(subscriber);
    }
    let mut writers = Vec::new();
    for index in 0..WRITERS {
        writers.push(server.login(&format!("writer {index}")).await);
    }

    let sends = writers
        .iter_mut()
        .enumerate()
        .map(|(writer_index, writer)| async move {
            for write in 0..WRITES_EACH {
                let data = format!("{{\"writer\":{writer_index},\"write\":{write}}}");
                writer
                    .send_record(record_data(
                        RecordAction::Update,
                        "contended/1",
                        -1,
                        data.as_bytes(),
                    ))
                    .await;
            }
        });
    futures_util::future::join_all(sends).await;

    let mut last_data = Vec::new();
    for subscriber in &mut subscribers {
        // The next write expected from each writer: each writer's writes must
        // arrive in the order it sent them.
        let mut next_write = [0_u64; WRITERS];
        for version in 1..=TOTAL {
            let update = subscriber.recv_record().await;
            assert_eq!(
                (update.action(), update.name.as_str(), update.version),
                (RecordAction::Update, "contended/1", Some(version)),
                "{}: {update:?}",
                subscriber.label()
            );
            let data: serde_json::Value =
                serde_json::from_slice(&update.data).expect("update data is JSON");
            let writer = data["writer"].as_u64().expect("writer index") as usize;
            assert_eq!(
                data["write"].as_u64(),
                Some(next_write[writer]),
                "{}: writer {writer} out of order at version {version}",
                subscriber.label()
            );
            next_write[writer] += 1;
            last_data = update.data.to_vec();
        }
        subscriber.expect_silence(QUIET).await;
    }
    // The writers are not subscribed and requested no acknowledgements.
    for writer in &mut writers {
        writer.expect_silence(QUIET).await;
    }

    assert_eq!(
        writers[0].read_record("contended/1").await,
        record_data(RecordAction::ReadResponse, "contended/1", TOTAL, &last_data)
    );
}
