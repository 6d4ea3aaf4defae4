//! Bad RECORD input and failing storage: each case gets the protocol's error,
//! leaves the stored record unchanged, and the server keeps serving the
//! other clients. Also the storage exclusion and hot path prefixes.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use common::{
    Bystanders, QUIET, RawClient, TestServer, record_ack, record_bulk, record_data, record_message,
};
use deepstream_protocol::{RecordAction, RecordMessage};
use deepstream_server::storage::{
    MemoryCache, MemoryStorage, Operation, Storage, StorageError, StoredRecord,
};

/// The record that bad input must leave alone.
const TARGET: &str = "target/1";
/// The data of [`TARGET`] at version 1.
const TARGET_DATA: &[u8] = br#"{"v":1,"list":[1,2]}"#;

/// A server with [`TARGET`] at version 1, its subscribed owner, a client that
/// sends bad input, and two bystanders.
struct Fixture {
    /// Keeps the server running for as long as the fixture lives.
    _server: TestServer,
    owner: RawClient,
    mallory: RawClient,
    bystanders: Bystanders,
}

impl Fixture {
    async fn start() -> Fixture {
        Fixture::on(TestServer::start(|_| {}).await).await
    }

    async fn on(server: TestServer) -> Fixture {
        let bystanders = Bystanders::join(&server).await;
        let mut owner = server.login("owner").await;
        owner.subscribe_record(TARGET).await;
        owner
            .send_record(RecordMessage {
                correlation_id: "setup".into(),
                is_write_ack: true,
                ..record_data(RecordAction::Update, TARGET, 1, TARGET_DATA)
            })
            .await;
        assert_eq!(
            owner.recv_record().await,
            write_acknowledgement(TARGET, "setup")
        );
        let mallory = server.login("mallory").await;
        Fixture {
            _server: server,
            owner,
            mallory,
            bystanders,
        }
    }

    /// Checks that [`TARGET`] is still at version 1 for its owner and for
    /// mallory, and that events still reach the bystanders.
    async fn assert_unchanged(&mut self, case: &str) {
        for client in [&mut self.owner, &mut self.mallory] {
            assert_eq!(
                client.read_record(TARGET).await,
                record_data(RecordAction::ReadResponse, TARGET, 1, TARGET_DATA),
                "{case}: {} reads the target",
                client.label()
            );
        }
        self.bystanders.assert_served().await;
    }

    async fn assert_nothing_else(&mut self) {
        self.owner.expect_silence(QUIET).await;
        self.mallory.expect_silence(QUIET).await;
        self.bystanders.assert_nothing_else().await;
    }
}

/// One message the server must send in reply to bad input.
enum Reply {
    /// An error about `name`, with a description or without. `write_ack` is
    /// the correlation id of a write that asked for an acknowledgement.
    Error {
        action: RecordAction,
        original_action: RecordAction,
        name: &'static str,
        write_ack: Option<&'static str>,
    },
    /// Exactly this message, such as the ack of a bulk request.
    Exact(RecordMessage),
}

/// Returns the INVALID_MESSAGE_DATA error for a message of `original_action`.
fn invalid_data(
    original_action: RecordAction,
    name: &'static str,
    write_ack: Option<&'static str>,
) -> Reply {
    Reply::Error {
        action: RecordAction::InvalidMessageData,
        original_action,
        name,
        write_ack,
    }
}

/// Checks the next messages of `client` against `replies`. Later checks catch
/// any extra message: a READ by the same client, or a final wait for silence.
async fn expect_replies(client: &mut RawClient, case: &str, replies: &[Reply]) {
    for reply in replies {
        match reply {
            Reply::Error {
                action,
                original_action,
                name,
                write_ack,
            } => {
                client
                    .expect_record_error(*action, *original_action, name, *write_ack)
                    .await;
            }
            Reply::Exact(expected) => {
                assert_eq!(&client.recv_record().await, expected, "{case}");
            }
        }
    }
}

/// Sends `bad` from mallory on a fresh server and checks the replies and
/// that nothing else changed.
async fn check_rejected(case: &str, bad: RecordMessage, replies: &[Reply]) {
    let mut fixture = Fixture::start().await;

    fixture.mallory.send_record(bad).await;

    expect_replies(&mut fixture.mallory, case, replies).await;
    fixture.assert_unchanged(case).await;
    fixture.assert_nothing_else().await;
}

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
        path: path.into(),
        version: Some(version),
        ..record_message(RecordAction::Erase, name)
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

// Empty record names, one test per action.

#[tokio::test]
async fn empty_name_subscribe() {
    check_rejected(
        "SUBSCRIBE",
        record_bulk(RecordAction::Subscribe, &[""], "e"),
        &[
            invalid_data(RecordAction::Subscribe, "", None),
            Reply::Exact(record_ack(RecordAction::Subscribe, "e")),
        ],
    )
    .await;
}

#[tokio::test]
async fn empty_name_subscribe_create_and_read() {
    let action = RecordAction::Subscribecreateandread;
    check_rejected(
        "SUBSCRIBECREATEANDREAD",
        record_bulk(action, &[""], "e"),
        &[
            invalid_data(action, "", None),
            Reply::Exact(record_ack(action, "e")),
        ],
    )
    .await;
}

#[tokio::test]
async fn empty_name_subscribe_and_read() {
    let action = RecordAction::Subscribeandread;
    check_rejected(
        "SUBSCRIBEANDREAD",
        record_bulk(action, &[""], "e"),
        &[
            invalid_data(action, "", None),
            Reply::Exact(record_ack(action, "e")),
        ],
    )
    .await;
}

#[tokio::test]
async fn empty_name_subscribe_and_head() {
    let action = RecordAction::Subscribeandhead;
    check_rejected(
        "SUBSCRIBEANDHEAD",
        record_bulk(action, &[""], "e"),
        &[
            invalid_data(action, "", None),
            Reply::Exact(record_ack(action, "e")),
        ],
    )
    .await;
}

#[tokio::test]
async fn empty_name_unsubscribe() {
    // An empty name can never be subscribed, so it is not subscribed.
    let action = RecordAction::Unsubscribe;
    check_rejected(
        "UNSUBSCRIBE",
        record_bulk(action, &[""], "e"),
        &[
            Reply::Error {
                action: RecordAction::NotSubscribed,
                original_action: action,
                name: "",
                write_ack: None,
            },
            Reply::Exact(record_ack(action, "e")),
        ],
    )
    .await;
}

#[tokio::test]
async fn empty_name_read() {
    check_rejected(
        "READ",
        record_message(RecordAction::Read, ""),
        &[invalid_data(RecordAction::Read, "", None)],
    )
    .await;
}

#[tokio::test]
async fn empty_name_head() {
    check_rejected(
        "HEAD",
        record_message(RecordAction::Head, ""),
        &[invalid_data(RecordAction::Head, "", None)],
    )
    .await;
}

#[tokio::test]
async fn empty_name_head_bulk() {
    check_rejected(
        "HEAD_BULK",
        record_bulk(RecordAction::HeadBulk, &[""], "e"),
        &[
            invalid_data(RecordAction::HeadBulk, "", None),
            Reply::Exact(RecordMessage {
                action: RecordAction::HeadResponseBulk.into(),
                correlation_id: "e".into(),
                ..Default::default()
            }),
        ],
    )
    .await;
}

#[tokio::test]
async fn empty_name_writes() {
    let mut fixture = Fixture::start().await;
    let writes = [
        (
            RecordAction::Update,
            record_data(RecordAction::Update, "", 1, br#"{"x":1}"#),
        ),
        (RecordAction::Patch, patch("", 1, "x", b"1")),
        (RecordAction::Erase, erase("", 1, "x")),
        (
            RecordAction::Createandupdate,
            record_data(RecordAction::Createandupdate, "", -1, br#"{"x":1}"#),
        ),
        (
            RecordAction::Createandpatch,
            RecordMessage {
                action: RecordAction::Createandpatch.into(),
                ..patch("", -1, "x", b"1")
            },
        ),
    ];

    for (action, write) in writes {
        let case = format!("{action:?} with an empty name");
        fixture.mallory.send_record(write.clone()).await;
        expect_replies(
            &mut fixture.mallory,
            &case,
            &[invalid_data(action, "", None)],
        )
        .await;
        fixture.mallory.send_record(acked(write, "ack")).await;
        expect_replies(
            &mut fixture.mallory,
            &case,
            &[invalid_data(action, "", Some("ack"))],
        )
        .await;
        fixture.assert_unchanged(&case).await;
    }
    fixture.assert_nothing_else().await;
}

#[tokio::test]
async fn empty_name_delete() {
    check_rejected(
        "DELETE",
        record_message(RecordAction::Delete, ""),
        &[invalid_data(RecordAction::Delete, "", None)],
    )
    .await;
}

#[tokio::test]
async fn empty_name_delete_bulk() {
    check_rejected(
        "DELETE_BULK",
        record_bulk(RecordAction::DeleteBulk, &[""], "e"),
        &[
            invalid_data(RecordAction::DeleteBulk, "", None),
            Reply::Exact(record_ack(RecordAction::DeleteBulkSuccess, "e")),
        ],
    )
    .await;
}

#[tokio::test]
async fn empty_name_notify() {
    check_rejected(
        "NOTIFY",
        record_bulk(RecordAction::Notify, &[""], "e"),
        &[
            invalid_data(RecordAction::Notify, "", None),
            Reply::Exact(record_ack(RecordAction::Notify, "e")),
        ],
    )
    .await;
}

// Bad data, paths and versions on an existing record.

#[tokio::test]
async fn update_data_not_object_or_array() {
    let mut fixture = Fixture::start().await;
    let deep = format!("{}1{}", r#"{"a":["#.repeat(65), "]}".repeat(65));
    let cases: [(&str, &[u8]); 11] = [
        ("nested deeper than 128 levels", deep.as_bytes()),
        ("a lone UTF-16 surrogate", br#"{"s":"Party \ud83c"}"#),
        ("a number out of range", br#"{"n":1e400}"#),
        ("invalid JSON", br#"{"v":"#),
        ("trailing garbage", br#"{"v":2} x"#),
        ("a JSON string", br#""text""#),
        ("a JSON number", b"42"),
        ("JSON true", b"true"),
        ("JSON null", b"null"),
        ("no data", b""),
        ("only whitespace", b"  "),
    ];

    for (case, data) in cases {
        for action in [RecordAction::Update, RecordAction::Createandupdate] {
            fixture
                .mallory
                .send_record(record_data(action, TARGET, 2, data))
                .await;
            expect_replies(
                &mut fixture.mallory,
                case,
                &[invalid_data(action, TARGET, None)],
            )
            .await;
        }
        fixture
            .mallory
            .send_record(acked(
                record_data(RecordAction::Update, TARGET, 2, data),
                "bad",
            ))
            .await;
        expect_replies(
            &mut fixture.mallory,
            case,
            &[invalid_data(RecordAction::Update, TARGET, Some("bad"))],
        )
        .await;
        fixture.assert_unchanged(case).await;
    }
    fixture.assert_nothing_else().await;
}

#[tokio::test]
async fn patch_value_not_json() {
    let mut fixture = Fixture::start().await;
    let cases: [(&str, &[u8]); 3] = [
        ("invalid JSON", b"{oops"),
        ("a bare word", b"text"),
        ("no value", b""),
    ];

    for (case, value) in cases {
        fixture
            .mallory
            .send_record(patch(TARGET, 2, "v", value))
            .await;
        expect_replies(
            &mut fixture.mallory,
            case,
            &[invalid_data(RecordAction::Patch, TARGET, None)],
        )
        .await;
        fixture.assert_unchanged(case).await;
    }
    fixture.assert_nothing_else().await;
}

#[tokio::test]
async fn invalid_paths_are_invalid_data() {
    let mut fixture = Fixture::start().await;
    let cases = [
        (
            "PATCH a[x]",
            patch(TARGET, 2, "a[x]", b"1"),
            RecordAction::Patch,
        ),
        (
            "PATCH a[-1]",
            patch(TARGET, 2, "a[-1]", b"1"),
            RecordAction::Patch,
        ),
        (
            "PATCH empty path",
            patch(TARGET, 2, "", b"1"),
            RecordAction::Patch,
        ),
        (
            "ERASE a[x]",
            erase(TARGET, 2, "list[x]"),
            RecordAction::Erase,
        ),
        (
            "ERASE without a path",
            erase(TARGET, 2, ""),
            RecordAction::Erase,
        ),
        (
            "ERASE blank path",
            erase(TARGET, 2, "   "),
            RecordAction::Erase,
        ),
    ];

    for (case, write, action) in cases {
        fixture.mallory.send_record(write).await;
        expect_replies(
            &mut fixture.mallory,
            case,
            &[invalid_data(action, TARGET, None)],
        )
        .await;
        fixture.assert_unchanged(case).await;
    }
    fixture.assert_nothing_else().await;
}

#[tokio::test]
async fn unappliable_patch_is_update_error() {
    // These paths parse but cannot be applied to the target's data, so the
    // error comes from the record's queue.
    let mut fixture = Fixture::start().await;
    let cases = [
        (
            "key on an array",
            patch(TARGET, 2, "list.foo", b"1"),
            RecordAction::Patch,
        ),
        (
            "__proto__ key",
            patch(TARGET, 2, "__proto__", b"{}"),
            RecordAction::Patch,
        ),
        (
            "erase key on an array",
            erase(TARGET, 2, "list.foo"),
            RecordAction::Erase,
        ),
    ];

    for (case, write, action) in cases {
        fixture.mallory.send_record(acked(write, "p")).await;
        expect_replies(
            &mut fixture.mallory,
            case,
            &[Reply::Error {
                action: RecordAction::RecordUpdateError,
                original_action: action,
                name: TARGET,
                write_ack: Some("p"),
            }],
        )
        .await;
        fixture.assert_unchanged(case).await;
    }
    fixture.assert_nothing_else().await;
}

// Failing and counting storage.

/// A storage that keeps records in a [`MemoryStorage`], logs every call by
/// operation and record name, and fails `get` or `set` while the test's flag is set.
#[derive(Debug, Default)]
struct ProbeStorage {
    records: MemoryStorage,
    fail_get: AtomicBool,
    fail_set: AtomicBool,
    calls: Mutex<Vec<(Operation, String)>>,
}

impl ProbeStorage {
    fn check(
        &self,
        operation: Operation,
        name: &str,
        fail: &AtomicBool,
    ) -> Result<(), StorageError> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((operation, name.to_owned()));
        if !fail.load(Ordering::SeqCst) {
            return Ok(());
        }
        Err(StorageError::Operation {
            backend: self.description(),
            operation,
            record: Some(name.to_owned()),
            source: "injected failure".into(),
        })
    }

    /// Returns the names of the records that any call was about.
    fn names(&self) -> Vec<String> {
        let calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls.iter().map(|(_, name)| name.clone()).collect()
    }
}

#[async_trait]
impl Storage for ProbeStorage {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StorageError> {
        self.check(Operation::Get, name, &self.fail_get)?;
        self.records.get(name).await
    }

    async fn set(&self, name: &str, record: StoredRecord) -> Result<(), StorageError> {
        self.check(Operation::Set, name, &self.fail_set)?;
        self.records.set(name, record).await
    }

    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.check(Operation::Delete, name, &AtomicBool::new(false))?;
        self.records.delete(name).await
    }

    fn description(&self) -> String {
        "probe storage".to_owned()
    }
}

async fn start_with_probe(
    configure: impl FnOnce(&mut deepstream_server::Config),
) -> (Fixture, Arc<ProbeStorage>) {
    let storage = Arc::new(ProbeStorage::default());
    let server =
        TestServer::start_with_stores(configure, Arc::new(MemoryCache::new()), storage.clone())
            .await;
    (Fixture::on(server).await, storage)
}

#[tokio::test]
async fn failing_storage_set_is_update_error() {
    let (mut fixture, storage) = start_with_probe(|_| {}).await;
    storage.fail_set.store(true, Ordering::SeqCst);

    fixture
        .mallory
        .send_record(acked(
            record_data(
                RecordAction::Createandupdate,
                "unsaved/1",
                -1,
                br#"{"x":1}"#,
            ),
            "c",
        ))
        .await;
    expect_replies(
        &mut fixture.mallory,
        "CREATEANDUPDATE",
        &[Reply::Error {
            action: RecordAction::RecordUpdateError,
            original_action: RecordAction::Createandupdate,
            name: "unsaved/1",
            write_ack: Some("c"),
        }],
    )
    .await;
    fixture
        .mallory
        .send_record(acked(patch("unsaved/1", -1, "y", b"2"), "p"))
        .await;
    expect_replies(
        &mut fixture.mallory,
        "PATCH",
        &[Reply::Error {
            action: RecordAction::RecordUpdateError,
            original_action: RecordAction::Patch,
            name: "unsaved/1",
            write_ack: Some("p"),
        }],
    )
    .await;
    fixture.assert_unchanged("failing set").await;

    storage.fail_set.store(false, Ordering::SeqCst);
    fixture
        .mallory
        .send_record(acked(
            record_data(RecordAction::Createandupdate, "saved/1", -1, br#"{"x":1}"#),
            "ok",
        ))
        .await;
    assert_eq!(
        fixture.mallory.recv_record().await,
        write_acknowledgement("saved/1", "ok")
    );
    fixture.assert_nothing_else().await;
}

#[tokio::test]
async fn failed_storage_write_is_retried() {
    let (mut fixture, storage) = start_with_probe(|_| {}).await;
    storage.fail_set.store(true, Ordering::SeqCst);
    let write = record_data(RecordAction::Createandupdate, "later/1", -1, br#"{"x":1}"#);
    fixture.mallory.send_record(acked(write, "c")).await;
    expect_replies(
        &mut fixture.mallory,
        "CREATEANDUPDATE",
        &[Reply::Error {
            action: RecordAction::RecordUpdateError,
            original_action: RecordAction::Createandupdate,
            name: "later/1",
            write_ack: Some("c"),
        }],
    )
    .await;
    assert_eq!(storage.records.get("later/1").await.unwrap(), None);

    storage.fail_set.store(false, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let stored = loop {
        if let Some(stored) = storage.records.get("later/1").await.unwrap() {
            break stored;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failed write never reached the storage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stored.version, 1);
    assert_eq!(&stored.data[..], br#"{"x":1}"#);
}

#[tokio::test]
async fn write_without_version_is_invalid() {
    let mut fixture = Fixture::start().await;
    let mut update = record_data(RecordAction::Update, TARGET, 2, br#"{"v":9}"#);
    update.version = None;
    fixture.mallory.send_record(update).await;
    let reply = fixture.mallory.recv_record().await;
    assert_eq!(reply.action(), RecordAction::InvalidVersion);
    assert_eq!(reply.original_action(), RecordAction::Update);
    assert_eq!(reply.name, TARGET);
    assert!(reply.is_error);
    fixture.assert_unchanged("write without a version").await;
    fixture.assert_nothing_else().await;
}

#[tokio::test]
async fn failing_storage_get_is_load_error() {
    let (mut fixture, storage) = start_with_probe(|_| {}).await;
    storage.fail_get.store(true, Ordering::SeqCst);
    let mallory = &mut fixture.mallory;

    mallory
        .send_record(record_message(RecordAction::Read, "absent/1"))
        .await;
    expect_replies(
        mallory,
        "READ",
        &[Reply::Error {
            action: RecordAction::RecordLoadError,
            original_action: RecordAction::Read,
            name: "absent/1",
            write_ack: None,
        }],
    )
    .await;
    mallory
        .send_record(record_bulk(
            RecordAction::Subscribecreateandread,
            &["absent/2"],
            "s",
        ))
        .await;
    expect_replies(
        mallory,
        "SUBSCRIBECREATEANDREAD",
        &[
            Reply::Exact(record_ack(RecordAction::Subscribecreateandread, "s")),
            Reply::Error {
                action: RecordAction::RecordLoadError,
                original_action: RecordAction::Subscribecreateandread,
                name: "absent/2",
                write_ack: None,
            },
        ],
    )
    .await;
    mallory
        .send_record(acked(
            record_data(RecordAction::Createandupdate, "absent/3", -1, b"{}"),
            "w",
        ))
        .await;
    expect_replies(
        mallory,
        "CREATEANDUPDATE",
        &[Reply::Error {
            action: RecordAction::RecordLoadError,
            original_action: RecordAction::Createandupdate,
            name: "absent/3",
            write_ack: Some("w"),
        }],
    )
    .await;
    // The target is in the cache, so reading it does not reach the storage.
    fixture.assert_unchanged("failing get").await;

    storage.fail_get.store(false, Ordering::SeqCst);
    assert_eq!(
        fixture.mallory.read_record("absent/1").await,
        RecordMessage {
            original_action: RecordAction::Read.into(),
            is_error: true,
            ..record_message(RecordAction::RecordNotFound, "absent/1")
        }
    );
    fixture.assert_nothing_else().await;
}

#[tokio::test]
async fn excluded_prefix_never_reaches_storage() {
    let (mut fixture, storage) = start_with_probe(|config| {
        config.record.storage_exclusion_prefixes = vec!["temp/".to_owned()];
    })
    .await;

    for name in ["temp/1", "stored/1"] {
        let client = &mut fixture.mallory;
        assert_eq!(
            client.subscribe_record(name).await,
            record_data(RecordAction::ReadResponse, name, 0, b"{}")
        );
        client
            .send_record(acked(patch(name, 1, "a", b"1"), name))
            .await;
        assert_eq!(
            client.recv_record().await,
            write_acknowledgement(name, name)
        );
        assert_eq!(
            client.read_record(name).await,
            record_data(RecordAction::ReadResponse, name, 1, br#"{"a":1}"#)
        );
        client
            .send_record(record_message(RecordAction::Delete, name))
            .await;
        assert_eq!(
            client.recv_record().await,
            record_message(RecordAction::DeleteSuccess, name)
        );
    }

    let names = storage.names();
    assert!(
        names.iter().all(|name| !name.starts_with("temp/")),
        "an excluded record reached the storage: {names:?}"
    );
    assert!(
        names.iter().any(|name| name == "stored/1"),
        "the record that is not excluded never reached the storage: {names:?}"
    );
    fixture.assert_unchanged("exclusion prefix").await;
    fixture.assert_nothing_else().await;
}

#[tokio::test]
async fn hot_path_rejects_patch() {
    let server = TestServer::start(|config| {
        config.record.storage_hot_path_prefixes = vec!["hot/".to_owned()];
    })
    .await;
    let mut fixture = Fixture::on(server).await;

    let create_and_patch = RecordMessage {
        action: RecordAction::Createandpatch.into(),
        ..patch("hot/1", -1, "a", b"1")
    };
    fixture.mallory.send_record(create_and_patch.clone()).await;
    expect_replies(
        &mut fixture.mallory,
        "CREATEANDPATCH",
        &[Reply::Error {
            action: RecordAction::InvalidPatchOnHotpath,
            original_action: RecordAction::Createandpatch,
            name: "hot/1",
            write_ack: None,
        }],
    )
    .await;
    fixture
        .mallory
        .send_record(acked(create_and_patch, "p"))
        .await;
    expect_replies(
        &mut fixture.mallory,
        "CREATEANDPATCH with ack",
        &[Reply::Error {
            action: RecordAction::InvalidPatchOnHotpath,
            original_action: RecordAction::Createandpatch,
            name: "hot/1",
            write_ack: Some("p"),
        }],
    )
    .await;

    fixture
        .mallory
        .send_record(record_message(RecordAction::Head, "hot/1"))
        .await;
    assert_eq!(
        fixture.mallory.recv_record().await,
        RecordMessage {
            version: Some(-1),
            ..record_message(RecordAction::HeadResponse, "hot/1")
        }
    );
    fixture.assert_unchanged("hot path patch").await;
    fixture.assert_nothing_else().await;
}

#[tokio::test]
async fn hot_path_update_skips_version_check() {
    let server = TestServer::start(|config| {
        config.record.storage_hot_path_prefixes = vec!["hot/".to_owned()];
    })
    .await;
    let mut writer = server.login("writer").await;
    let mut subscriber = server.login("subscriber").await;
    subscriber
        .send_record(record_bulk(RecordAction::Subscribe, &["hot/1"], "s"))
        .await;
    assert_eq!(
        subscriber.recv_record().await,
        record_ack(RecordAction::Subscribe, "s")
    );

    // A version far ahead, then a stale one: both are written as the next version.
    for (version, sent) in [(1, 7), (2, 1)] {
        let data = format!("{{\"n\":{version}}}");
        let correlation_id = format!("hot {version}");
        writer
            .send_record(acked(
                record_data(
                    RecordAction::Createandupdate,
                    "hot/1",
                    sent,
                    data.as_bytes(),
                ),
                &correlation_id,
            ))
            .await;
        assert_eq!(
            writer.recv_record().await,
            write_acknowledgement("hot/1", &correlation_id)
        );
        assert_eq!(
            subscriber.recv_record().await,
            record_data(RecordAction::Update, "hot/1", version, data.as_bytes())
        );
    }

    assert_eq!(
        writer.read_record("hot/1").await,
        record_data(RecordAction::ReadResponse, "hot/1", 2, br#"{"n":2}"#)
    );
    writer.expect_silence(QUIET).await;
    subscriber.expect_silence(QUIET).await;
}
