//! NOTIFY: records changed in the storage without the server. The tests write
//! to the storage directly (a shared `MemoryStorage`, or SQL on a real
//! PostgreSQL table), then check what the subscribers and the notifier get.

mod common;
#[allow(unused_imports, reason = "this test starts PostgreSQL but not Redis")]
mod storage_support;

use std::sync::Arc;

use bytes::Bytes;
use common::{QUIET, RawClient, TestServer, record_ack, record_bulk, record_data, record_message};
use deepstream_protocol::{RecordAction, RecordMessage};
use deepstream_server::config::StorageConfig;
use deepstream_server::storage::{MemoryCache, MemoryStorage, Storage, StoredRecord};
use storage_support::PostgresServer;

/// Starts a server whose storage the test shares, with a memory cache.
async fn start_sharing_storage() -> (TestServer, Arc<MemoryStorage>) {
    let storage = Arc::new(MemoryStorage::new());
    let server =
        TestServer::start_with_stores(|_| {}, Arc::new(MemoryCache::new()), storage.clone()).await;
    (server, storage)
}

fn stored(version: i32, data: &[u8]) -> StoredRecord {
    StoredRecord {
        version,
        data: Bytes::copy_from_slice(data),
    }
}

/// Sends NOTIFY of `names` and checks that the single ack is all that the
/// notifier gets.
async fn notify(notifier: &mut RawClient, names: &[&str], correlation_id: &str) {
    notifier
        .send_record(record_bulk(RecordAction::Notify, names, correlation_id))
        .await;
    assert_eq!(
        notifier.recv_record().await,
        record_ack(RecordAction::Notify, correlation_id),
        "NOTIFY ack"
    );
    notifier.expect_silence(QUIET).await;
}

#[tokio::test]
async fn notify_sends_stored_version() {
    let (server, storage) = start_sharing_storage().await;
    let mut first = server.login("first").await;
    let mut second = server.login("second").await;
    let mut notifier = server.login("notifier").await;
    for client in [&mut first, &mut second] {
        client.subscribe_record("notified/1").await;
    }
    // A record without subscribers, in the cache at version 1.
    notifier
        .send_record(RecordMessage {
            correlation_id: "setup".into(),
            is_write_ack: true,
            ..record_data(
                RecordAction::Createandupdate,
                "quiet/1",
                -1,
                br#"{"old":1}"#,
            )
        })
        .await;
    assert_eq!(
        notifier.recv_record().await.action(),
        RecordAction::WriteAcknowledgement
    );

    let data = br#"{ "from" : "storage" }"#;
    storage
        .set("notified/1", stored(7, data))
        .await
        .expect("writing the shared storage");
    storage
        .set("quiet/1", stored(5, br#"{"new":5}"#))
        .await
        .expect("writing the shared storage");
    notify(&mut notifier, &["notified/1", "quiet/1"], "n1").await;

    for client in [&mut first, &mut second] {
        assert_eq!(
            client.recv_record().await,
            record_data(RecordAction::Update, "notified/1", 7, data),
            "{}",
            client.label()
        );
        client.expect_silence(QUIET).await;
    }
    // The cache no longer has the old versions.
    assert_eq!(
        notifier.read_record("notified/1").await,
        record_data(RecordAction::ReadResponse, "notified/1", 7, data)
    );
    assert_eq!(
        notifier.read_record("quiet/1").await,
        record_data(RecordAction::ReadResponse, "quiet/1", 5, br#"{"new":5}"#)
    );

    // Writes go on from the stored version.
    first
        .send_record(record_data(
            RecordAction::Update,
            "notified/1",
            8,
            br#"{"after":"notify"}"#,
        ))
        .await;
    assert_eq!(
        second.recv_record().await,
        record_data(
            RecordAction::Update,
            "notified/1",
            8,
            br#"{"after":"notify"}"#
        )
    );
    first.expect_silence(QUIET).await;
}

#[tokio::test]
async fn notify_of_deleted_record_deletes() {
    let (server, storage) = start_sharing_storage().await;
    let mut first = server.login("first").await;
    let mut second = server.login("second").await;
    let mut notifier = server.login("notifier").await;
    for client in [&mut first, &mut second] {
        client.subscribe_record("vanished/1").await;
    }

    storage
        .delete("vanished/1")
        .await
        .expect("deleting from the shared storage");
    notify(&mut notifier, &["vanished/1"], "n1").await;

    for client in [&mut first, &mut second] {
        assert_eq!(
            client.recv_record().await,
            record_message(RecordAction::Deleted, "vanished/1"),
            "{}",
            client.label()
        );
    }
    notifier
        .send_record(record_message(RecordAction::Head, "vanished/1"))
        .await;
    assert_eq!(
        notifier.recv_record().await,
        RecordMessage {
            version: Some(-1),
            ..record_message(RecordAction::HeadResponse, "vanished/1")
        }
    );

    // The subscriptions ended with the record.
    notifier
        .send_record(RecordMessage {
            correlation_id: "again".into(),
            is_write_ack: true,
            ..record_data(RecordAction::Createandupdate, "vanished/1", -1, b"{}")
        })
        .await;
    assert_eq!(
        notifier.recv_record().await.action(),
        RecordAction::WriteAcknowledgement
    );
    first.expect_silence(QUIET).await;
    second.expect_silence(QUIET).await;
}

#[tokio::test]
async fn notify_without_subscribers_only_acks() {
    let (server, storage) = start_sharing_storage().await;
    let mut notifier = server.login("notifier").await;
    let mut bystander = server.login("bystander").await;
    bystander.subscribe_record("other/1").await;
    storage
        .set("unwatched/1", stored(3, b"[3]"))
        .await
        .expect("writing the shared storage");

    notify(&mut notifier, &["unwatched/1", "never/1"], "n1").await;

    bystander.expect_silence(QUIET).await;
    assert_eq!(
        notifier.read_record("unwatched/1").await,
        record_data(RecordAction::ReadResponse, "unwatched/1", 3, b"[3]")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_after_sql_update() {
    let postgres = PostgresServer::start();
    let config = postgres.config();
    let table = format!("{}.{}", config.schema, config.table);
    let server = TestServer::start(|server_config| {
        server_config.storage = StorageConfig::Postgres(config);
    })
    .await;
    let mut subscriber = server.login("subscriber").await;
    let mut notifier = server.login("notifier").await;
    subscriber.subscribe_record("sql/1").await;

    let (admin, connection) =
        tokio_postgres::connect(&postgres.connection_string(), tokio_postgres::NoTls)
            .await
            .expect("connecting to PostgreSQL as the administrator");
    tokio::spawn(connection);
    let changed = admin
        .execute(
            &format!(
                "UPDATE {table} SET version = 4, data = '{{\"via\": \"sql\", \"n\": [1, 2]}}' \
                 WHERE name = 'sql/1'"
            ),
            &[],
        )
        .await
        .expect("updating the record with SQL");
    assert_eq!(changed, 1, "the server did not store sql/1 in {table}");

    notify(&mut notifier, &["sql/1"], "n1").await;

    let mut update = subscriber.recv_record().await;
    // PostgreSQL stores jsonb and returns it as normalized text, so the data is
    // compared as a JSON value.
    let data: serde_json::Value =
        serde_json::from_slice(&update.data).expect("the update data is JSON");
    assert_eq!(data, serde_json::json!({"via": "sql", "n": [1, 2]}));
    update.data = Bytes::new();
    assert_eq!(update, record_data(RecordAction::Update, "sql/1", 4, b""));
    subscriber.expect_silence(QUIET).await;
    server.stop().await;
}
