//! Tests of the permission engine: the parser, the evaluator, records loaded through
//! `NeedRecords`, pattern precedence and every check of the permission file.
//!
//! Expected values marked "deepstream 7.0.2" were produced by running the same rule
//! with deepstream's own rule compiler under Node.js.

mod config;
mod eval;
mod lookups;
mod parser;
mod precedence;

use std::path::Path;

use serde_json::{Value as Json, json};

use super::{
    Action, Decision, Lookups, MessageData, PermissionConfigError, PermissionOptions, Permissions,
    Request, Section, User,
};

/// Sections that allow everything, to complete a test file.
const OPEN_SECTIONS: &str = "
event:
  '*': { publish: true, subscribe: true, listen: true }
rpc:
  '*': { provide: true, request: true }
presence:
  '*': { allow: true }
";

/// Loads a permission file written in YAML.
fn load(yaml: &str) -> Result<Permissions, PermissionConfigError> {
    load_with(yaml, &PermissionOptions::default())
}

fn load_with(
    yaml: &str,
    options: &PermissionOptions,
) -> Result<Permissions, PermissionConfigError> {
    let document: serde_yaml::Value = serde_yaml::from_str(yaml).expect("the test YAML parses");
    Permissions::from_yaml(&document, Path::new("permissions.yml"), options)
}

/// Loads a file whose `record` section is `records` and whose other sections allow
/// everything.
fn load_records(records: &str) -> Permissions {
    let yaml = format!("record:\n{records}{OPEN_SECTIONS}");
    load(&yaml).unwrap_or_else(|error| panic!("the test file loads: {error}"))
}

/// The name, user and data that rule tests evaluate against.
struct Fixture {
    user_data: Json,
    data: Json,
    old_data: Json,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            user_data: json!({ "role": "admin", "level": 3, "tags": ["a", "b"] }),
            data: json!({
                "price": 10,
                "title": "Hello World",
                "tags": ["x", "y"],
                "nested": { "deep": true },
                "empty": "",
                "zero": 0,
                "nothing": null,
                "text": "  padded\u{a0}\u{feff}",
                "emoji": "a😀b",
            }),
            old_data: json!({ "price": 5, "owner": "alice" }),
        }
    }

    fn request<'a>(&'a self, user_id: &'a str, data: MessageData<'a>) -> Request<'a> {
        Request {
            section: Section::Record,
            action: Action::Write,
            name: "items/alice/42",
            message_action: 18,
            user: User {
                id: user_id,
                data: Some(&self.user_data),
            },
            data,
            now_ms: 1_700_000_000_000,
        }
    }
}

/// Evaluates `rule` as the `write` rule of `items/$owner/$item` for the record
/// `items/alice/42`, written by `alice` with the fixture's data, the record's current
/// data already loaded.
fn evaluate(rule: &str) -> Decision {
    let permissions = load_records(&format!(
        "  '*': {{ read: true, write: true }}\n  items/$owner/$item:\n    write: {}\n",
        serde_json::to_string(rule).expect("a string serializes")
    ));
    let fixture = Fixture::new();
    let request = fixture.request("alice", MessageData::Parsed(&fixture.data));
    let mut lookups = Lookups::new();
    lookups.insert("items/alice/42", Some(fixture.old_data.clone()));
    permissions.check(&request, &mut lookups)
}

/// Asserts that `rule` allows.
#[track_caller]
fn assert_allows(rule: &str) {
    assert_eq!(evaluate(rule), Decision::Allow, "rule: {rule}");
}

/// Asserts that `rule` denies without an error.
#[track_caller]
fn assert_denies(rule: &str) {
    assert_eq!(evaluate(rule), Decision::Deny, "rule: {rule}");
}

/// Asserts that `rule` fails with an evaluation error whose message contains `text`.
#[track_caller]
fn assert_fails(rule: &str, text: &str) {
    match evaluate(rule) {
        Decision::Error(error) => assert!(
            error.to_string().contains(text),
            "rule: {rule}: error `{error}` does not contain `{text}`"
        ),
        other => panic!("rule: {rule}: expected an error, got {other:?}"),
    }
}
