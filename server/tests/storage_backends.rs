//! One behaviour suite for every cache and storage backend, written once and run against
//! MemoryCache and RedisCache (as caches) and MemoryStorage, EmbeddedStorage and
//! PostgresStorage (as storages), followed by the tests that only one backend needs.
//!
//! Redis and PostgreSQL run as real processes on free ports of 127.0.0.1, started by
//! `storage_support`. A missing program fails the test with the Debian package to install.

// The suite's cases are helper functions, which clippy does not count as test code.
#![allow(clippy::unwrap_used)]

mod storage_support;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deepstream_server::config::{
    CacheConfig, Config, PostgresConnection, RedisConfig, RedisConnection, Secret, StorageConfig,
};
use deepstream_server::storage::{
    self, Cache, EmbeddedStorage, HeadBulk, MemoryCache, MemoryStorage, Operation, PostgresStorage,
    RedisCache, Storage, StorageError, StoredRecord,
};
use storage_support::{LOOPBACK, PostgresServer, RedisServer, TempDir, free_port};

/// The environment variable that turns `embedded_crash_writer_process` into the writer that
/// `embedded_keeps_acknowledged_writes_after_kill` kills. Its value is the database path.
const CRASH_CHILD_ENV: &str = "DEEPSTREAM_TEST_CRASH_WRITER_DB";

/// How a backend returns the data it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fidelity {
    /// The same bytes.
    ExactBytes,
    /// The same JSON value, as text that may differ (PostgreSQL's jsonb).
    JsonValue,
}

/// A cache or a storage, so that the cases they share are written once.
#[derive(Clone)]
enum Backend {
    Cache(Arc<dyn Cache>),
    Storage(Arc<dyn Storage>),
}

impl Backend {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StorageError> {
        match self {
            Backend::Cache(cache) => cache.get(name).await,
            Backend::Storage(storage) => storage.get(name).await,
        }
    }

    async fn set(&self, name: &str, record: StoredRecord) -> Result<(), StorageError> {
        match self {
            Backend::Cache(cache) => cache.set(name, record).await,
            Backend::Storage(storage) => storage.set(name, record).await,
        }
    }

    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        match self {
            Backend::Cache(cache) => cache.delete(name).await,
            Backend::Storage(storage) => storage.delete(name).await,
        }
    }

    fn description(&self) -> String {
        match self {
            Backend::Cache(cache) => cache.description(),
            Backend::Storage(storage) => storage.description(),
        }
    }
}

fn record(version: i32, data: &str) -> StoredRecord {
    StoredRecord {
        version,
        data: Bytes::copy_from_slice(data.as_bytes()),
    }
}

/// JSON with multi-byte characters, escapes and nesting.
const UNICODE_JSON: &str = r#"{"greeting":"Grüße, 世界 🌍","escaped":"\u00e9\n\t\"quoted\"","nested":{"list":[1,2.5,-3,true,null],"empty":{}},"emoji":"🎉"}"#;

/// JSON text of just over 1 MiB.
fn one_mebibyte_json() -> String {
    let alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_ ";
    let mut blob = String::with_capacity(1024 * 1024 + 64);
    while blob.len() < 1024 * 1024 {
        blob.push_str(alphabet);
    }
    format!(r#"{{"blob":"{blob}","size":"1 MiB"}}"#)
}

/// Record names with characters that need care in keys, file formats and SQL.
fn awkward_names() -> Vec<String> {
    vec![
        "users/alice/profile".to_owned(),
        "/leading/and/trailing/".to_owned(),
        "with spaces  and\ttab".to_owned(),
        "ünïcödé/名前/🎉".to_owned(),
        "quote'double\"back\\slash".to_owned(),
        "percent%_underscore*star?".to_owned(),
        "x".repeat(500),
    ]
}

/// Checks that `actual` is the data that was written, as `fidelity` promises.
fn assert_same_data(fidelity: Fidelity, expected: &[u8], actual: &[u8], context: &str) {
    match fidelity {
        Fidelity::ExactBytes => assert!(
            expected == actual,
            "{context}: the data differs (expected {} bytes, got {} bytes)",
            expected.len(),
            actual.len()
        ),
        Fidelity::JsonValue => {
            let expected: serde_json::Value =
                serde_json::from_slice(expected).expect("the test wrote valid JSON");
            let actual: serde_json::Value = serde_json::from_slice(actual)
                .unwrap_or_else(|error| panic!("{context}: the data read is not JSON: {error}"));
            assert!(expected == actual, "{context}: the JSON value differs");
        }
    }
}

async fn expect_record(backend: &Backend, name: &str, context: &str) -> StoredRecord {
    backend
        .get(name)
        .await
        .unwrap_or_else(|error| panic!("{context}: get of `{name}` failed: {error}"))
        .unwrap_or_else(|| panic!("{context}: `{name}` is missing"))
}

// ---------------------------------------------------------------------------------------
// The suite shared by caches and storages.

/// Runs every shared case against `backend`.
async fn shared_suite(backend: Backend, fidelity: Fidelity) {
    get_of_missing_record(&backend).await;
    round_trip_keeps_data(&backend, fidelity).await;
    overwrite_with_higher_version(&backend, fidelity).await;
    delete_removes_record(&backend).await;
    delete_of_missing_record_succeeds(&backend).await;
    concurrent_sets_to_different_names(&backend).await;
    concurrent_sets_to_one_name(&backend).await;
    awkward_names_are_separate_records(&backend, fidelity).await;
}

async fn get_of_missing_record(backend: &Backend) {
    let context = format!("get of a missing record in the {}", backend.description());
    let result = backend.get("never/written").await;
    assert!(
        matches!(result, Ok(None)),
        "{context}: expected Ok(None), got {result:?}"
    );
}

async fn round_trip_keeps_data(backend: &Backend, fidelity: Fidelity) {
    let samples = [
        ("round-trip/object", r#"{"a":1,"b":"two"}"#.to_owned()),
        ("round-trip/array", "[1,2,3]".to_owned()),
        ("round-trip/empty-object", "{}".to_owned()),
        ("round-trip/unicode", UNICODE_JSON.to_owned()),
        ("round-trip/one-mebibyte", one_mebibyte_json()),
    ];
    for (version, (name, data)) in (1..).zip(&samples) {
        let context = format!("round trip of `{name}` in the {}", backend.description());
        backend
            .set(name, record(version, data))
            .await
            .unwrap_or_else(|error| panic!("{context}: set failed: {error}"));

        let read = expect_record(backend, name, &context).await;
        assert_eq!(read.version, version, "{context}: version");
        assert_same_data(fidelity, data.as_bytes(), &read.data, &context);
    }
}

async fn overwrite_with_higher_version(backend: &Backend, fidelity: Fidelity) {
    let context = format!("overwrite in the {}", backend.description());
    let name = "overwrite/profile";
    backend
        .set(name, record(1, r#"{"v":"first"}"#))
        .await
        .unwrap();
    backend
        .set(name, record(2, r#"{"v":"second","more":[1]}"#))
        .await
        .unwrap();

    let read = expect_record(backend, name, &context).await;
    assert_eq!(read.version, 2, "{context}: version");
    assert_same_data(
        fidelity,
        br#"{"v":"second","more":[1]}"#,
        &read.data,
        &context,
    );
}

async fn delete_removes_record(backend: &Backend) {
    let context = format!("delete in the {}", backend.description());
    let name = "delete/me";
    backend.set(name, record(4, r#"{"x":1}"#)).await.unwrap();
    backend
        .delete(name)
        .await
        .unwrap_or_else(|error| panic!("{context}: delete failed: {error}"));

    let after = backend.get(name).await.unwrap();
    assert_eq!(after, None, "{context}: the record is still there");

    backend
        .delete(name)
        .await
        .unwrap_or_else(|error| panic!("{context}: second delete failed: {error}"));
}

async fn delete_of_missing_record_succeeds(backend: &Backend) {
    let result = backend.delete("delete/never-written").await;
    assert!(
        result.is_ok(),
        "delete of a missing record in the {}: {result:?}",
        backend.description()
    );
}

async fn concurrent_sets_to_different_names(backend: &Backend) {
    let context = format!("200 concurrent sets in the {}", backend.description());
    let tasks: Vec<_> = (0..200)
        .map(|index| {
            let backend = backend.clone();
            tokio::spawn(async move {
                let data = format!(r#"{{"index":{index}}}"#);
                backend
                    .set(&format!("parallel/{index}"), record(index + 1, &data))
                    .await
            })
        })
        .collect();
    for (index, task) in tasks.into_iter().enumerate() {
        let result = task.await.expect("the set task panicked");
        assert!(result.is_ok(), "{context}: set {index} failed: {result:?}");
    }

    for index in 0..200 {
        let name = format!("parallel/{index}");
        let read = expect_record(backend, &name, &context).await;
        assert_eq!(read.version, index + 1, "{context}: version of `{name}`");
        let value: serde_json::Value = serde_json::from_slice(&read.data).unwrap();
        assert_eq!(value["index"], index, "{context}: data of `{name}`");
    }
}

async fn concurrent_sets_to_one_name(backend: &Backend) {
    let context = format!(
        "50 concurrent sets to one name in the {}",
        backend.description()
    );
    let name = "contended/record";
    let tasks: Vec<_> = (1..=50)
        .map(|writer| {
            let backend = backend.clone();
            tokio::spawn(async move {
                let data = format!(r#"{{"writer":{writer}}}"#);
                backend.set(name, record(writer, &data)).await
            })
        })
        .collect();
    for task in tasks {
        let result = task.await.expect("the set task panicked");
        assert!(result.is_ok(), "{context}: a set failed: {result:?}");
    }

    // Whichever write is stored, its version and data must come from the same write.
    let read = expect_record(backend, name, &context).await;
    assert!(
        (1..=50).contains(&read.version),
        "{context}: version {} was never written",
        read.version
    );
    let value: serde_json::Value = serde_json::from_slice(&read.data).unwrap();
    assert_eq!(
        value["writer"], read.version,
        "{context}: version and data come from different writes"
    );
}

async fn awkward_names_are_separate_records(backend: &Backend, fidelity: Fidelity) {
    let names = awkward_names();
    for (version, name) in (1..).zip(&names) {
        let data = serde_json::json!({ "name": name }).to_string();
        backend
            .set(name, record(version, &data))
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "set of awkward name {name:?} in the {} failed: {error}",
                    backend.description()
                )
            });
    }

    for (version, name) in (1..).zip(&names) {
        let context = format!("awkward name {name:?} in the {}", backend.description());
        let read = expect_record(backend, name, &context).await;
        assert_eq!(read.version, version, "{context}: version");
        let data = serde_json::json!({ "name": name }).to_string();
        assert_same_data(fidelity, data.as_bytes(), &read.data, &context);
    }

    for name in &names {
        backend.delete(name).await.unwrap();
        let after = backend.get(name).await.unwrap();
        assert_eq!(
            after, None,
            "awkward name {name:?} is still there after delete"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The cases that only caches have.

async fn cache_suite(cache: Arc<dyn Cache>, fidelity: Fidelity) {
    shared_suite(Backend::Cache(cache.clone()), fidelity).await;
    head_bulk_reports_versions_and_missing(&*cache).await;
    head_bulk_of_no_names_is_empty(&*cache).await;
    delete_bulk_removes_only_named_records(&*cache).await;
}

async fn head_bulk_reports_versions_and_missing(cache: &dyn Cache) {
    let context = format!("head_bulk in the {}", cache.description());
    let awkward = awkward_names();
    cache.set("head/a", record(3, r#"{"a":1}"#)).await.unwrap();
    cache.set("head/b", record(7, "[]")).await.unwrap();
    cache.set(&awkward[3], record(11, "{}")).await.unwrap();

    let names: Vec<String> = [
        "head/missing-1",
        "head/a",
        awkward[3].as_str(),
        "head/missing-2",
        "head/b",
    ]
    .map(str::to_owned)
    .to_vec();
    let head = cache
        .head_bulk(&names)
        .await
        .unwrap_or_else(|error| panic!("{context}: failed: {error}"));

    let expected_versions: BTreeMap<String, i32> = [
        ("head/a".to_owned(), 3),
        ("head/b".to_owned(), 7),
        (awkward[3].clone(), 11),
    ]
    .into();
    assert_eq!(head.versions, expected_versions, "{context}: versions");
    assert_eq!(
        head.missing,
        ["head/missing-1", "head/missing-2"],
        "{context}: missing names in request order"
    );
}

async fn head_bulk_of_no_names_is_empty(cache: &dyn Cache) {
    let head = cache.head_bulk(&[]).await.unwrap();
    assert_eq!(
        head,
        HeadBulk::default(),
        "head_bulk of no names in the {}",
        cache.description()
    );
}

async fn delete_bulk_removes_only_named_records(cache: &dyn Cache) {
    let context = format!("delete_bulk in the {}", cache.description());
    for name in ["bulk/1", "bulk/2", "bulk/3"] {
        cache.set(name, record(1, "{}")).await.unwrap();
    }

    let names = ["bulk/1", "bulk/3", "bulk/never-written"].map(str::to_owned);
    cache
        .delete_bulk(&names)
        .await
        .unwrap_or_else(|error| panic!("{context}: failed: {error}"));

    assert_eq!(
        cache.get("bulk/1").await.unwrap(),
        None,
        "{context}: bulk/1"
    );
    assert_eq!(
        cache.get("bulk/3").await.unwrap(),
        None,
        "{context}: bulk/3"
    );
    assert!(
        cache.get("bulk/2").await.unwrap().is_some(),
        "{context}: bulk/2 was deleted too"
    );
    cache
        .delete_bulk(&[])
        .await
        .unwrap_or_else(|error| panic!("{context}: delete_bulk of no names failed: {error}"));
}

// ---------------------------------------------------------------------------------------
// The suite against each backend.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_cache_passes_suite() {
    cache_suite(Arc::new(MemoryCache::new()), Fidelity::ExactBytes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cache_passes_suite() {
    let server = RedisServer::start();
    let cache = RedisCache::connect(&redis_config(server.port()))
        .await
        .unwrap();
    cache_suite(Arc::new(cache), Fidelity::ExactBytes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_storage_passes_suite() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    shared_suite(Backend::Storage(storage), Fidelity::ExactBytes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_storage_passes_suite() {
    let dir = TempDir::new("embedded");
    let storage = Arc::new(
        EmbeddedStorage::open(dir.path().join("records.redb"))
            .await
            .unwrap(),
    );
    shared_suite(Backend::Storage(storage.clone()), Fidelity::ExactBytes).await;
    storage.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_storage_passes_suite() {
    let server = PostgresServer::start();
    let storage = Arc::new(PostgresStorage::connect(&server.config()).await.unwrap());
    shared_suite(Backend::Storage(storage.clone()), Fidelity::JsonValue).await;
    storage.close().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// EmbeddedStorage: durability, group commit and open errors.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_data_survives_close_and_reopen() {
    let dir = TempDir::new("embedded");
    let path = dir.path().join("nested/folders/records.redb");
    let storage = EmbeddedStorage::open(&path).await.unwrap();
    storage.set("kept", record(5, UNICODE_JSON)).await.unwrap();
    storage.set("deleted", record(1, "{}")).await.unwrap();
    storage.delete("deleted").await.unwrap();
    storage.close().await.unwrap();

    let reopened = EmbeddedStorage::open(&path).await.unwrap();
    assert_eq!(
        reopened.get("kept").await.unwrap(),
        Some(record(5, UNICODE_JSON))
    );
    assert_eq!(reopened.get("deleted").await.unwrap(), None);
    reopened.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_data_survives_drop_without_close() {
    let dir = TempDir::new("embedded");
    let path = dir.path().join("records.redb");
    let storage = EmbeddedStorage::open(&path).await.unwrap();
    storage
        .set("acknowledged", record(9, r#"{"ok":true}"#))
        .await
        .unwrap();
    drop(storage);

    let reopened = EmbeddedStorage::open(&path).await.unwrap();
    assert_eq!(
        reopened.get("acknowledged").await.unwrap(),
        Some(record(9, r#"{"ok":true}"#))
    );
}

#[test]
fn embedded_keeps_acknowledged_writes_after_kill() {
    let dir = TempDir::new("embedded-crash");
    let path = dir.path().join("records.redb");
    let mut child = Command::new(std::env::current_exe().expect("find the test binary"))
        .args([
            "embedded_crash_writer_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_ENV, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the writer process");

    // Lines are read on a thread so that the wait for them can time out.
    let stdout = child.stdout.take().expect("the writer's stdout is piped");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });

    let mut acknowledged: HashMap<u32, u32> = HashMap::new();
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while count < 300 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = received.recv_timeout(remaining) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the writer process acknowledged only {count} writes within 60 s");
        };
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (writer, index) = rest.split_once(' ').expect("ACK lines have two numbers");
            let writer: u32 = writer.parse().unwrap();
            let index: u32 = index.parse().unwrap();
            let highest = acknowledged.entry(writer).or_insert(0);
            *highest = (*highest).max(index);
            count += 1;
        }
    }
    // SIGKILL: the writers are still writing, and nothing gets to close the file.
    child.kill().expect("kill the writer process");
    child.wait().expect("reap the writer process");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let storage = EmbeddedStorage::open(&path)
            .await
            .expect("the file opens after a kill");
        for (writer, highest) in &acknowledged {
            for index in 0..=*highest {
                let name = format!("crash/{writer}/{index}");
                let read = storage.get(&name).await.unwrap();
                assert_eq!(
                    read,
                    Some(crash_record(*writer, index)),
                    "acknowledged write `{name}` is missing or wrong after the kill"
                );
            }
        }
        storage.close().await.unwrap();
    });
}

/// Writes records and prints each acknowledged write until it is killed, as the child process
/// of `embedded_keeps_acknowledged_writes_after_kill`. Does nothing unless that test sets
/// `CRASH_CHILD_ENV`.
#[test]
#[ignore = "run only as a child process of embedded_keeps_acknowledged_writes_after_kill"]
fn embedded_crash_writer_process() {
    let Some(path) = std::env::var_os(CRASH_CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let storage = Arc::new(EmbeddedStorage::open(PathBuf::from(path)).await.unwrap());
        let writers: Vec<_> = (0..4_u32)
            .map(|writer| {
                let storage = storage.clone();
                tokio::spawn(async move {
                    for index in 0..100_000_u32 {
                        let name = format!("crash/{writer}/{index}");
                        storage
                            .set(&name, crash_record(writer, index))
                            .await
                            .unwrap();
                        let mut stdout = std::io::stdout().lock();
                        writeln!(stdout, "ACK {writer} {index}").unwrap();
                        stdout.flush().unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        // Not reached when the parent kills the process in time.
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}

fn crash_record(writer: u32, index: u32) -> StoredRecord {
    let version = i32::try_from(index).unwrap() + 1;
    record(
        version,
        &format!(r#"{{"writer":{writer},"index":{index}}}"#),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_groups_concurrent_writes_into_few_commits() {
    let dir = TempDir::new("embedded");
    let storage = Arc::new(
        EmbeddedStorage::open(dir.path().join("records.redb"))
            .await
            .unwrap(),
    );
    let before = storage.commit_count();

    let tasks: Vec<_> = (0..1000)
        .map(|index| {
            let storage = storage.clone();
            tokio::spawn(async move {
                storage
                    .set(&format!("group/{index}"), record(1, r#"{"grouped":true}"#))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let commits = storage.commit_count() - before;
    assert!(commits >= 1, "no commit was counted");
    assert!(
        commits <= 500,
        "1000 concurrent writes took {commits} commits; group commit should need far fewer"
    );
    for index in [0, 499, 999] {
        assert!(
            storage
                .get(&format!("group/{index}"))
                .await
                .unwrap()
                .is_some()
        );
    }
    storage.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_rejects_operations_after_close() {
    let dir = TempDir::new("embedded");
    let storage = EmbeddedStorage::open(dir.path().join("records.redb"))
        .await
        .unwrap();
    storage.set("a", record(1, "{}")).await.unwrap();
    storage.close().await.unwrap();
    storage.close().await.unwrap();

    let set = storage.set("a", record(2, "{}")).await.unwrap_err();
    assert!(
        matches!(
            set,
            StorageError::Closed {
                operation: Operation::Set,
                ..
            }
        ),
        "{set}"
    );
    assert_eq!(set.record(), Some("a"));
    assert!(set.to_string().contains("is closed"), "{set}");

    let get = storage.get("a").await.unwrap_err();
    assert!(
        matches!(
            get,
            StorageError::Closed {
                operation: Operation::Get,
                ..
            }
        ),
        "{get}"
    );
    let delete = storage.delete("a").await.unwrap_err();
    assert!(
        matches!(
            delete,
            StorageError::Closed {
                operation: Operation::Delete,
                ..
            }
        ),
        "{delete}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_open_errors_name_path_and_fix() {
    let dir = TempDir::new("embedded");

    let folder = dir.path().join("a-folder");
    std::fs::create_dir_all(&folder).unwrap();
    let error = EmbeddedStorage::open(&folder).await.unwrap_err();
    assert_open_error(&error, &folder, "storage.options.path");

    let file = dir.path().join("plain-file");
    std::fs::write(&file, "not a folder").unwrap();
    let below_file = file.join("records.redb");
    let error = EmbeddedStorage::open(&below_file).await.unwrap_err();
    assert_open_error(&error, &below_file, "storage.options.path");

    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, vec![0x5a_u8; 8192]).unwrap();
    let error = EmbeddedStorage::open(&garbage).await.unwrap_err();
    assert_open_error(&error, &garbage, "storage.options.path");

    let shared = dir.path().join("shared.redb");
    let first = EmbeddedStorage::open(&shared).await.unwrap();
    let error = EmbeddedStorage::open(&shared).await.unwrap_err();
    assert_open_error(&error, &shared, "has the file open");
    first.close().await.unwrap();

    let error = EmbeddedStorage::open("").await.unwrap_err();
    assert!(matches!(error, StorageError::Open { .. }), "{error}");
}

fn assert_open_error(error: &StorageError, path: &Path, fix: &str) {
    assert!(matches!(error, StorageError::Open { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "the message does not name the file: {message}"
    );
    assert!(
        message.contains(fix),
        "the message does not say `{fix}`: {message}"
    );
}

// ---------------------------------------------------------------------------------------
// PostgresStorage: errors, jsonb, schema and reconnection.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_server_is_clear_error() {
    let port = free_port();
    let mut config = PostgresServer::config_for_port(port);
    config.connect_timeout = Duration::from_secs(5);
    let started = Instant::now();

    let error = PostgresStorage::connect(&config).await.unwrap_err();

    assert!(matches!(error, StorageError::Open { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&format!("{LOOPBACK}:{port}")), "{message}");
    assert!(
        message.contains("Check that PostgreSQL is running"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a refused connection took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_invalid_json_fails_only_that_record() {
    let server = PostgresServer::start();
    let storage = Arc::new(PostgresStorage::connect(&server.config()).await.unwrap());

    // Concurrent, so that the invalid record shares a transaction with valid ones.
    let mut tasks = Vec::new();
    for index in 0..20 {
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move {
            let data = format!(r#"{{"valid":{index}}}"#);
            storage
                .set(&format!("valid/{index}"), record(1, &data))
                .await
        }));
    }
    let invalid = {
        let storage = storage.clone();
        tokio::spawn(async move { storage.set("invalid", record(1, "{not json")).await })
    };
    let not_utf8 = {
        let storage = storage.clone();
        tokio::spawn(async move {
            let data = Bytes::from_static(b"{\"bytes\":\"\xff\xfe\"}");
            storage
                .set("not-utf8", StoredRecord { version: 1, data })
                .await
        })
    };

    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let error = invalid.await.unwrap().unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::Operation {
                operation: Operation::Set,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.record(), Some("invalid"));
    assert!(error.to_string().contains("json"), "{error}");
    let error = not_utf8.await.unwrap().unwrap_err();
    assert_eq!(error.record(), Some("not-utf8"));
    assert!(error.to_string().contains("UTF-8"), "{error}");

    for index in 0..20 {
        assert!(
            storage
                .get(&format!("valid/{index}"))
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(storage.get("invalid").await.unwrap(), None);
    storage.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_normalizes_data_as_jsonb() {
    let server = PostgresServer::start();
    let storage = PostgresStorage::connect(&server.config()).await.unwrap();

    storage
        .set("normalized", record(1, r#"{"zeta":1,   "alpha":[1,2]}"#))
        .await
        .unwrap();
    let read = storage.get("normalized").await.unwrap().unwrap();

    assert_eq!(
        read.data,
        Bytes::from_static(br#"{"zeta": 1, "alpha": [1, 2]}"#)
    );
    storage.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_creates_configured_table_and_keeps_data() {
    let server = PostgresServer::start();
    let mut config = server.config();
    config.schema = "deepstream test".to_owned();
    config.table = "my \"records\"".to_owned();

    let storage = PostgresStorage::connect(&config).await.unwrap();
    assert!(
        storage
            .description()
            .contains("table deepstream test.my \"records\""),
        "{}",
        storage.description()
    );
    storage
        .set("kept", record(3, r#"{"k":true}"#))
        .await
        .unwrap();
    storage.close().await.unwrap();
    let error = storage.get("kept").await.unwrap_err();
    assert!(matches!(error, StorageError::Closed { .. }), "{error}");

    let reconnected = PostgresStorage::connect(&config).await.unwrap();
    let read = reconnected.get("kept").await.unwrap().unwrap();
    assert_eq!(read.version, 3);
    reconnected.close().await.unwrap();

    let admin = admin_client(&server).await;
    let column_type: String = admin
        .query_one(
            "SELECT data_type FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 AND column_name = 'data'",
            &[&"deepstream test", &"my \"records\""],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(column_type, "jsonb");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_incompatible_table_is_open_error() {
    let server = PostgresServer::start();
    let admin = admin_client(&server).await;
    admin
        .batch_execute(
            "CREATE SCHEMA wrong; \
             CREATE TABLE wrong.records (name text PRIMARY KEY, version bigint, data jsonb)",
        )
        .await
        .unwrap();
    let mut config = server.config();
    config.schema = "wrong".to_owned();

    let error = PostgresStorage::connect(&config).await.unwrap_err();

    assert!(matches!(error, StorageError::Open { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("column `version` has type int8"),
        "{message}"
    );
    assert!(message.contains("table `wrong.records`"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connection_string_connects() {
    let server = PostgresServer::start();
    let mut config = server.config();
    config.connection = PostgresConnection::ConnectionString(Secret::new(format!(
        "postgresql://postgres@{LOOPBACK}:{}/postgres",
        server.port()
    )));

    let storage = PostgresStorage::connect(&config).await.unwrap();
    storage.set("via-url", record(1, "[true]")).await.unwrap();
    assert_eq!(storage.get("via-url").await.unwrap().unwrap().version, 1);
    assert!(
        storage
            .description()
            .contains(&format!("{LOOPBACK}:{}", server.port())),
        "{}",
        storage.description()
    );
    storage.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reconnects_after_connections_end() {
    let server = PostgresServer::start();
    let storage = PostgresStorage::connect(&server.config()).await.unwrap();
    storage.set("before", record(1, "{}")).await.unwrap();

    let admin = admin_client(&server).await;
    let terminated: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'deepstream' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        terminated >= 2,
        "only {terminated} connections were terminated"
    );

    // The first operation on a dead connection may fail; the next one reconnects.
    let mut set = Err(None);
    for _attempt in 0..3 {
        match storage.set("after", record(2, "{}")).await {
            Ok(()) => {
                set = Ok(());
                break;
            }
            Err(error) => set = Err(Some(error)),
        }
    }
    assert!(set.is_ok(), "set did not recover: {set:?}");

    let mut read = None;
    for _attempt in 0..(2 * 4) {
        if let Ok(Some(found)) = storage.get("before").await {
            read = Some(found);
            break;
        }
    }
    assert_eq!(read, Some(record(1, "{}")), "get did not recover");
    storage.close().await.unwrap();
}

async fn admin_client(server: &PostgresServer) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&server.connection_string(), tokio_postgres::NoTls)
            .await
            .expect("connect as the administrator");
    tokio::spawn(connection);
    client
}

// ---------------------------------------------------------------------------------------
// RedisCache: errors, connection options and the stored layout.

fn redis_config(port: u16) -> RedisConfig {
    RedisConfig {
        connection: RedisConnection::Parameters {
            host: LOOPBACK.to_owned(),
            port,
            username: None,
            password: None,
            db: 0,
        },
        key_prefix: String::new(),
        ttl: None,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(10),
    }
}

async fn raw_redis(port: u16, db: i64) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{LOOPBACK}:{port}/{db}")).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_server_is_clear_error() {
    let port = free_port();
    let started = Instant::now();

    let error = RedisCache::connect(&redis_config(port)).await.unwrap_err();

    assert!(matches!(error, StorageError::Open { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&format!("{LOOPBACK}:{port}")), "{message}");
    assert!(message.contains("Check that Redis is running"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a refused connection took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_password_is_required_and_used() {
    let server = RedisServer::start_with_password("s3cret pass");

    let error = RedisCache::connect(&redis_config(server.port()))
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::Open { .. }), "{error}");
    assert!(error.to_string().contains("password"), "{error}");

    let mut config = redis_config(server.port());
    if let RedisConnection::Parameters { password, .. } = &mut config.connection {
        *password = Some(Secret::new("wrong"));
    }
    let error = RedisCache::connect(&config).await.unwrap_err();
    assert!(matches!(error, StorageError::Open { .. }), "{error}");
    assert!(
        !error.to_string().contains("wrong"),
        "the message shows the password: {error}"
    );

    if let RedisConnection::Parameters { password, .. } = &mut config.connection {
        *password = Some(Secret::new("s3cret pass"));
    }
    let cache = RedisCache::connect(&config).await.unwrap();
    cache.set("guarded", record(1, "{}")).await.unwrap();
    assert_eq!(cache.get("guarded").await.unwrap(), Some(record(1, "{}")));
    assert!(
        !cache.description().contains("s3cret"),
        "{}",
        cache.description()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_url_selects_database() {
    let server = RedisServer::start();
    let mut config = redis_config(server.port());
    config.connection = RedisConnection::Url(Secret::new(format!(
        "redis://{LOOPBACK}:{}/3",
        server.port()
    )));

    let cache = RedisCache::connect(&config).await.unwrap();
    cache.set("in-db-3", record(2, "[]")).await.unwrap();

    assert!(
        cache.description().contains("(db 3)"),
        "{}",
        cache.description()
    );
    let mut db3 = raw_redis(server.port(), 3).await;
    let exists: bool = redis::cmd("EXISTS")
        .arg("in-db-3")
        .query_async(&mut db3)
        .await
        .unwrap();
    assert!(exists, "the record is not in database 3");
    let mut db0 = raw_redis(server.port(), 0).await;
    let exists: bool = redis::cmd("EXISTS")
        .arg("in-db-3")
        .query_async(&mut db0)
        .await
        .unwrap();
    assert!(!exists, "the record is in database 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stores_hash_with_prefix_and_ttl() {
    let server = RedisServer::start();
    let mut config = redis_config(server.port());
    config.key_prefix = "ds:".to_owned();
    config.ttl = Some(Duration::from_secs(120));
    let cache = RedisCache::connect(&config).await.unwrap();

    cache
        .set("users/alice", record(4, r#"{"a":1}"#))
        .await
        .unwrap();

    let mut raw = raw_redis(server.port(), 0).await;
    let fields: HashMap<String, String> = redis::cmd("HGETALL")
        .arg("ds:users/alice")
        .query_async(&mut raw)
        .await
        .unwrap();
    let expected: HashMap<String, String> = [
        ("v".to_owned(), "4".to_owned()),
        ("d".to_owned(), r#"{"a":1}"#.to_owned()),
    ]
    .into();
    assert_eq!(fields, expected);
    let ttl: i64 = redis::cmd("TTL")
        .arg("ds:users/alice")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((1..=120).contains(&ttl), "TTL is {ttl}");
    let unprefixed: bool = redis::cmd("EXISTS")
        .arg("users/alice")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(!unprefixed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_foreign_values_are_errors() {
    let server = RedisServer::start();
    let cache = RedisCache::connect(&redis_config(server.port()))
        .await
        .unwrap();
    let mut raw = raw_redis(server.port(), 0).await;
    let () = redis::cmd("SET")
        .arg("plain-string")
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    let () = redis::cmd("HSET")
        .arg("bad-version")
        .arg("v")
        .arg("seven")
        .arg("d")
        .arg("{}")
        .query_async(&mut raw)
        .await
        .unwrap();
    let () = redis::cmd("HSET")
        .arg("no-data")
        .arg("v")
        .arg("1")
        .query_async(&mut raw)
        .await
        .unwrap();

    let error = cache.get("plain-string").await.unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::Operation {
                operation: Operation::Get,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.record(), Some("plain-string"));

    let error = cache.get("bad-version").await.unwrap_err();
    assert!(
        matches!(error, StorageError::InvalidStoredValue { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("not a whole number"), "{error}");

    let error = cache.get("no-data").await.unwrap_err();
    assert!(error.to_string().contains("no data field"), "{error}");

    let error = cache
        .head_bulk(&["bad-version".to_owned()])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::InvalidStoredValue {
                operation: Operation::HeadBulk,
                ..
            }
        ),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------
// `storage::open` builds what a config file selects.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_builds_backends_from_config_file() {
    let redis = RedisServer::start();
    let postgres = PostgresServer::start();
    let dir = TempDir::new("open");
    let file = dir.path().join("config.yml");
    std::fs::write(
        &file,
        format!(
            "storage:\n  name: postgres\n  options:\n    host: {LOOPBACK}\n    port: {}\n    \
             user: postgres\n    database: postgres\n    table: from_config\n\
             cache:\n  name: redis\n  options:\n    host: {LOOPBACK}\n    port: {}\n",
            postgres.port(),
            redis.port()
        ),
    )
    .unwrap();
    let config = Config::load(&file).unwrap().config;

    let (cache, storage) = storage::open(&config).await.unwrap();

    assert!(
        cache.description().starts_with("Redis cache"),
        "{}",
        cache.description()
    );
    assert!(
        storage.description().contains("table ds.from_config"),
        "{}",
        storage.description()
    );
    storage.set("configured", record(1, "{}")).await.unwrap();
    cache.set("configured", record(1, "{}")).await.unwrap();
    storage.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_builds_embedded_and_memory_backends() {
    let dir = TempDir::new("open");
    let mut config = Config::embedded();
    assert_eq!(config.cache, CacheConfig::Memory);
    config.storage = StorageConfig::Embedded {
        path: dir.path().join("data/records.redb"),
    };

    let (cache, storage) = storage::open(&config).await.unwrap();
    assert_eq!(cache.description(), "memory cache");
    assert!(
        storage.description().starts_with("embedded storage at "),
        "{}",
        storage.description()
    );
    storage.set("x", record(1, "{}")).await.unwrap();
    storage.close().await.unwrap();
    assert!(dir.path().join("data/records.redb").is_file());

    config.storage = StorageConfig::Memory;
    let (_, storage) = storage::open(&config).await.unwrap();
    assert!(
        storage.description().starts_with("memory storage"),
        "{}",
        storage.description()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_closes_storage_when_cache_fails() {
    let dir = TempDir::new("open");
    let path = dir.path().join("records.redb");
    let mut config = Config::embedded();
    config.storage = StorageConfig::Embedded { path: path.clone() };
    config.cache = CacheConfig::Redis(redis_config(free_port()));

    let error = storage::open(&config)
        .await
        .err()
        .expect("the cache cannot connect");
    assert!(error.to_string().contains("Redis cache"), "{error}");

    // The file was released, so it opens again in this process.
    let reopened = EmbeddedStorage::open(&path).await.unwrap();
    reopened.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_within_times_out() {
    let server = RedisServer::start();
    let cache: Arc<dyn Cache> = Arc::new(
        RedisCache::connect(&redis_config(server.port()))
            .await
            .unwrap(),
    );
    cache.set("slow", record(1, "{}")).await.unwrap();

    // CLIENT PAUSE delays every client's commands for one second, so the next read waits.
    let mut raw = raw_redis(server.port(), 0).await;
    let () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1000)
        .query_async(&mut raw)
        .await
        .unwrap();

    let error = cache
        .get_within("slow", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "get of record `slow` in the {} timed out after 200 ms",
            cache.description()
        )
    );
    let found = cache
        .get_within("slow", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(found, Some(record(1, "{}")));
}
