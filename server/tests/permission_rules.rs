//! The permission engine through its public API: a permission file read from disk,
//! checks of every section, records loaded on demand, and the promise that constant
//! rules cost no allocation.

// A counting global allocator needs `unsafe impl GlobalAlloc`. It only forwards each
// call to the system allocator unchanged and counts calls in a thread-local cell.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use deepstream_server::permission::{
    Action, Decision, Lookups, MessageData, PermissionOptions, Permissions, Request, RuleError,
    Section, User,
};
use serde_json::json;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's arguments, so the
// allocator contract is met exactly as by `System`. Counting touches only a
// const-initialized thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from `System` through this allocator with `layout`.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged, as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged; `pointer` came from `System` with `layout`.
        unsafe { System.realloc(pointer, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn count_allocation() {
    // `try_with` fails only while the thread is being torn down; such allocations are
    // not counted.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

/// Runs `operation` and counts the allocations it makes on this thread.
fn allocations_of<T>(operation: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = operation();
    (ALLOCATIONS.with(Cell::get) - before, result)
}

const PERMISSIONS: &str = r#"
record:
  "*":
    create: true
    read: true
    write: false
    delete: false
    listen: true
    notify: false
  "profiles/$userId":
    write: "user.id === $userId && typeof data.name === 'string' && data.name.length <= 20"
    delete: "user.data.role === 'admin'"
  "rooms/$room/messages/*":
    read: "_('rooms/' + $room).members.includes(user.id)"
  "counters/$id":
    write: "data.value === oldData.value + 1"
event:
  "*":
    publish: true
    subscribe: true
    listen: false
  "alerts/*":
    publish: "user.isAuthenticated && data.level.match(/^(info|warn)$/)"
rpc:
  "*":
    provide: "user.data.role === 'service'"
    request: true
presence:
  "*":
    allow: "user.isAuthenticated"
"#;

/// A temporary folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static CREATED: AtomicUsize = AtomicUsize::new(0);
        let unique = CREATED.fetch_add(1, Ordering::Relaxed);
        let folder = format!("permission-rules-{name}-{}-{unique}", std::process::id());
        let path = std::env::temp_dir().join(folder);
        fs::create_dir_all(&path).expect("the temporary folder can be created");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn load_from_disk(name: &str, text: &str) -> Result<Permissions, String> {
    let dir = TempDir::new(name);
    let path = dir.0.join("permissions.yml");
    fs::write(&path, text).expect("the test file can be written");
    let read = fs::read_to_string(&path).expect("the test file can be read");
    let document: serde_yaml::Value =
        serde_yaml::from_str(&read).map_err(|error| error.to_string())?;
    Permissions::from_yaml(&document, &path, &PermissionOptions::default())
        .map_err(|error| error.to_string())
}

fn permissions() -> Permissions {
    load_from_disk("valid", PERMISSIONS).expect("the test file loads")
}

fn request<'a>(section: Section, action: Action, name: &'a str, user: User<'a>) -> Request<'a> {
    Request {
        section,
        action,
        name,
        message_action: 0,
        user,
        data: MessageData::Absent,
        now_ms: 0,
    }
}

fn alice() -> User<'static> {
    User {
        id: "alice",
        data: None,
    }
}

#[test]
fn permissions_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Permissions>();
}

#[test]
fn constant_rules_do_not_allocate() {
    let permissions = permissions();
    let mut lookups = Lookups::new();
    let read = request(Section::Record, Action::Read, "profiles/alice", alice());
    let write = request(Section::Record, Action::Write, "anything", alice());
    let exact = request(Section::Event, Action::Subscribe, "alerts/disk", alice());

    for request in [&read, &write, &exact] {
        // Warm up anything lazily initialized on first use.
        permissions.check(request, &mut lookups);
        let (count, decision) = allocations_of(|| permissions.check(request, &mut lookups));
        assert_eq!(count, 0, "{request:?} -> {decision:?}");
    }
    assert_eq!(permissions.check(&read, &mut lookups), Decision::Allow);
    assert_eq!(permissions.check(&write, &mut lookups), Decision::Deny);
}

#[test]
fn rules_read_user_data_and_message() {
    let permissions = permissions();
    let mut check = request(Section::Record, Action::Write, "profiles/alice", alice());

    check.data = MessageData::Json(br#"{"name": "Alice"}"#);
    assert_eq!(
        permissions.check(&check, &mut Lookups::new()),
        Decision::Allow
    );

    check.data = MessageData::Json(br#"{"name": "A name that is far too long"}"#);
    assert_eq!(
        permissions.check(&check, &mut Lookups::new()),
        Decision::Deny
    );

    check.name = "profiles/bob";
    check.data = MessageData::Json(br#"{"name": "Alice"}"#);
    assert_eq!(
        permissions.check(&check, &mut Lookups::new()),
        Decision::Deny
    );

    let admin = json!({ "role": "admin" });
    let member = json!({ "role": "member" });
    let mut delete = request(Section::Record, Action::Delete, "profiles/bob", alice());
    let decision = permissions.check(&delete, &mut Lookups::new());
    assert!(
        matches!(decision, Decision::Error(RuleError::Evaluation(_))),
        "`user.data.role` fails without server data, as in deepstream: {decision:?}"
    );
    delete.user.data = Some(&member);
    assert_eq!(
        permissions.check(&delete, &mut Lookups::new()),
        Decision::Deny
    );
    delete.user.data = Some(&admin);
    assert_eq!(
        permissions.check(&delete, &mut Lookups::new()),
        Decision::Allow
    );
}

#[test]
fn cross_references_load_through_the_caller() {
    let permissions = permissions();
    let check = request(
        Section::Record,
        Action::Read,
        "rooms/lobby/messages/1",
        alice(),
    );
    let mut lookups = Lookups::new();

    let Decision::NeedRecords(names) = permissions.check(&check, &mut lookups) else {
        panic!("the rule needs the room record");
    };
    assert_eq!(names, ["rooms/lobby"]);
    lookups.insert("rooms/lobby", Some(json!({ "members": ["bob"] })));
    assert_eq!(permissions.check(&check, &mut lookups), Decision::Deny);

    let mut lookups = Lookups::new();
    lookups.insert("rooms/lobby", Some(json!({ "members": ["alice"] })));
    assert_eq!(permissions.check(&check, &mut lookups), Decision::Allow);

    let mut lookups = Lookups::new();
    lookups.insert("rooms/lobby", None);
    let decision = permissions.check(&check, &mut lookups);
    assert!(
        matches!(decision, Decision::Error(RuleError::Evaluation(_))),
        "reading `members` of a missing room fails: {decision:?}"
    );
}

#[test]
fn old_data_is_preloaded_when_the_caller_asks() {
    let permissions = permissions();
    assert!(permissions.reads_old_data(Section::Record, Action::Write, "counters/a"));
    assert!(!permissions.reads_old_data(Section::Record, Action::Write, "profiles/a"));
    assert!(permissions.reads_data(Section::Record, Action::Write, "counters/a"));
    assert!(!permissions.reads_data(Section::Record, Action::Read, "counters/a"));

    let mut check = request(Section::Record, Action::Write, "counters/a", alice());
    check.data = MessageData::Json(br#"{"value": 4}"#);
    let mut lookups = Lookups::new();
    lookups.insert("counters/a", Some(json!({ "value": 3 })));
    assert_eq!(permissions.check(&check, &mut lookups), Decision::Allow);
    assert_eq!(lookups.evaluations(), 1);
}

#[test]
fn events_rpcs_and_presence() {
    let permissions = permissions();
    let anonymous = User {
        id: "open",
        data: None,
    };
    let service = json!({ "role": "service" });

    let mut publish = request(Section::Event, Action::Publish, "alerts/disk", alice());
    publish.data = MessageData::Json(br#"{"level": "warn"}"#);
    assert_eq!(
        permissions.check(&publish, &mut Lookups::new()),
        Decision::Allow
    );
    publish.data = MessageData::Json(br#"{"level": "panic"}"#);
    assert_eq!(
        permissions.check(&publish, &mut Lookups::new()),
        Decision::Deny
    );
    publish.user = anonymous;
    publish.data = MessageData::Json(br#"{"level": "warn"}"#);
    assert_eq!(
        permissions.check(&publish, &mut Lookups::new()),
        Decision::Deny
    );

    let listen = request(Section::Event, Action::Listen, "alerts/disk", alice());
    assert_eq!(
        permissions.check(&listen, &mut Lookups::new()),
        Decision::Deny
    );

    let client = json!({ "role": "client" });
    let mut provide = request(Section::Rpc, Action::Provide, "add", alice());
    provide.user.data = Some(&client);
    assert_eq!(
        permissions.check(&provide, &mut Lookups::new()),
        Decision::Deny
    );
    provide.user.data = Some(&service);
    assert_eq!(
        permissions.check(&provide, &mut Lookups::new()),
        Decision::Allow
    );

    let presence = request(Section::Presence, Action::Allow, "", anonymous);
    assert_eq!(
        permissions.check(&presence, &mut Lookups::new()),
        Decision::Deny
    );
    let presence = request(Section::Presence, Action::Allow, "", alice());
    assert_eq!(
        permissions.check(&presence, &mut Lookups::new()),
        Decision::Allow
    );
}

#[test]
fn documented_example_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/permissions.md");
    let page = fs::read_to_string(&path).expect("docs/permissions.md is readable");
    let start = page.find("```yaml\n").expect("the page has a YAML example") + "```yaml\n".len();
    let length = page[start..]
        .find("```")
        .expect("the YAML example is closed");
    let document: serde_yaml::Value =
        serde_yaml::from_str(&page[start..start + length]).expect("the example is YAML");
    let loaded = Permissions::from_yaml(&document, &path, &PermissionOptions::default());
    assert!(loaded.is_ok(), "{:?}", loaded.err());
}

#[test]
fn invalid_file_names_its_path() {
    let error = load_from_disk("invalid", "record:\n  '*': { read: \"data.x\" }\n")
        .expect_err("the file is invalid");
    assert!(
        error.contains(
            "permissions.yml: record.\"*\".read: rule uses `data`, but read carries no data"
        ),
        "{error}"
    );
    assert!(
        error.contains("permissions.yml: missing section `event`"),
        "{error}"
    );
}
