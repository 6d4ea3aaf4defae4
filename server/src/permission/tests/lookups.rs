//! Records read through `_()`, `oldData` and patches: `NeedRecords`, the iteration
//! bound, and what the caller can ask before a check.

use std::num::NonZeroU32;

use deepstream_protocol::json_path::JsonPath;
use serde_json::json;

use super::super::RuleError;
use super::{Fixture, OPEN_SECTIONS, load_records, load_with};
use crate::permission::{Action, Decision, Lookups, MessageData, PermissionOptions, Section};

/// Loads a file with one `write` rule for `items/$owner/$item`, and a check of it.
fn rule_check(rule: &str) -> (crate::permission::Permissions, Fixture) {
    let permissions = load_records(&format!(
        "  '*': {{ write: true }}\n  items/$owner/$item:\n    write: {}\n",
        serde_json::to_string(rule).expect("a string serializes")
    ));
    (permissions, Fixture::new())
}

#[test]
fn cross_reference_needs_then_reads_the_record() {
    let (permissions, fixture) = rule_check("_('owners/' + $item) === user.id");
    let request = fixture.request("alice", MessageData::Absent);
    let mut lookups = Lookups::new();

    let first = permissions.check(&request, &mut lookups);
    assert_eq!(first, Decision::NeedRecords(vec!["owners/42".to_owned()]));

    lookups.insert("owners/42", Some(json!("alice")));
    assert_eq!(permissions.check(&request, &mut lookups), Decision::Allow);
    assert_eq!(lookups.evaluations(), 2);
}

#[test]
fn missing_record_reads_as_null() {
    let (permissions, fixture) = rule_check("_('owners/x') === null");
    let request = fixture.request("alice", MessageData::Absent);
    let mut lookups = Lookups::new();
    lookups.insert("owners/x", None);
    assert_eq!(permissions.check(&request, &mut lookups), Decision::Allow);
}

#[test]
fn errors_while_loading_ask_for_records() {
    // `_('a').x` throws while `a` is loading; deepstream swallows that and runs again.
    let (permissions, fixture) = rule_check("_('a').ok === true");
    let request = fixture.request("alice", MessageData::Absent);
    let mut lookups = Lookups::new();
    assert_eq!(
        permissions.check(&request, &mut lookups),
        Decision::NeedRecords(vec!["a".to_owned()])
    );
    lookups.insert("a", Some(json!({ "ok": true })));
    assert_eq!(permissions.check(&request, &mut lookups), Decision::Allow);
}

#[test]
fn independent_records_are_requested_together() {
    let (permissions, fixture) = rule_check("_('a') || _('b') || _('a')");
    let request = fixture.request("alice", MessageData::Absent);
    assert_eq!(
        permissions.check(&request, &mut Lookups::new()),
        Decision::NeedRecords(vec!["a".to_owned(), "b".to_owned()])
    );
}

#[test]
fn nested_references_load_one_level_per_evaluation() {
    let (permissions, fixture) = rule_check("_(_('a').next).ok");
    let request = fixture.request("alice", MessageData::Absent);
    let mut lookups = Lookups::new();

    assert_eq!(
        permissions.check(&request, &mut lookups),
        Decision::NeedRecords(vec!["a".into()])
    );
    lookups.insert("a", Some(json!({ "next": "b" })));
    assert_eq!(
        permissions.check(&request, &mut lookups),
        Decision::NeedRecords(vec!["b".into()])
    );
    lookups.insert("b", Some(json!({ "ok": true })));
    assert_eq!(permissions.check(&request, &mut lookups), Decision::Allow);
    assert_eq!(lookups.evaluations(), 3);
}

#[test]
fn iteration_bound_ends_the_check() {
    let (permissions, fixture) = rule_check("_(_(_('a').next).next).ok");
    let request = fixture.request("alice", MessageData::Absent);
    let mut lookups = Lookups::new();
    for (name, next) in [("a", "b"), ("b", "c")] {
        assert_eq!(
            permissions.check(&request, &mut lookups),
            Decision::NeedRecords(vec![name.into()])
        );
        lookups.insert(name, Some(json!({ "next": next })));
    }

    // The third evaluation, the last of the default 3, still needs `c`.
    let too_many = Decision::Error(RuleError::TooManyIterations { max: 3 });
    assert_eq!(permissions.check(&request, &mut lookups), too_many);
    assert_eq!(lookups.evaluations(), 3);

    // Checking again does not evaluate again, even with every record loaded.
    lookups.insert("c", Some(json!({ "ok": true })));
    assert_eq!(permissions.check(&request, &mut lookups), too_many);
    assert_eq!(lookups.evaluations(), 3);
}

#[test]
fn last_evaluation_may_still_decide() {
    let (permissions, fixture) = rule_check("_(_(_('a').next).next).ok");
    let request = fixture.request("alice", MessageData::Absent);
    let mut lookups = Lookups::new();
    lookups.insert("a", Some(json!({ "next": "b" })));
    assert_eq!(
        permissions.check(&request, &mut lookups),
        Decision::NeedRecords(vec!["b".into()])
    );
    lookups.insert("b", Some(json!({ "next": "c" })));
    assert_eq!(
        permissions.check(&request, &mut lookups),
        Decision::NeedRecords(vec!["c".into()])
    );
    lookups.insert("c", Some(json!({ "ok": true })));
    assert_eq!(permissions.check(&request, &mut lookups), Decision::Allow);
    assert_eq!(lookups.evaluations(), 3);
}

#[test]
fn iteration_bound_is_configurable() {
    let options = PermissionOptions {
        max_rule_iterations: NonZeroU32::MIN,
    };
    let yaml = format!("record:\n  '*':\n    read: \"_('a') === 1\"\n{OPEN_SECTIONS}");
    let permissions = load_with(&yaml, &options).expect("the test file loads");
    let fixture = Fixture::new();
    let mut request = fixture.request("alice", MessageData::Absent);
    request.action = Action::Read;

    let mut lookups = Lookups::new();
    assert_eq!(
        permissions.check(&request, &mut lookups),
        Decision::Error(RuleError::TooManyIterations { max: 1 })
    );

    let mut preloaded = Lookups::new();
    preloaded.insert("a", Some(json!(1)));
    assert_eq!(permissions.check(&request, &mut preloaded), Decision::Allow);
}

#[test]
fn cross_reference_argument_rules() {
    // deepstream 7.0.2 reads `_(undefined)` and names containing "undefined" as
    // `undefined` without loading, and fails for other non-string arguments.
    let fixture = Fixture::new();
    let request = fixture.request("alice", MessageData::Parsed(&fixture.data));
    for rule in [
        "_(data.missing) === undefined",
        "_('users/' + data.missing) === undefined",
    ] {
        let (permissions, _) = rule_check(rule);
        assert_eq!(
            permissions.check(&request, &mut Lookups::new()),
            Decision::Allow,
            "{rule}"
        );
    }
    for (rule, found) in [
        ("_(5)", "number"),
        ("_(data.nothing)", "object"),
        ("_(data.tags)", "object"),
    ] {
        let (permissions, _) = rule_check(rule);
        assert_eq!(
            permissions.check(&request, &mut Lookups::new()),
            Decision::Error(RuleError::InvalidCrossReference { found }),
            "{rule}"
        );
    }
}

#[test]
fn old_data_is_requested_before_evaluation() {
    // deepstream loads the record for any rule that mentions `oldData`, even when the
    // evaluation does not reach it.
    let (permissions, fixture) = rule_check("user.id === 'alice' || oldData.owner === user.id");
    let request = fixture.request("alice", MessageData::Absent);
    let mut lookups = Lookups::new();
    assert_eq!(
        permissions.check(&request, &mut lookups),
        Decision::NeedRecords(vec!["items/alice/42".into()])
    );
    lookups.insert("items/alice/42", None);
    assert_eq!(permissions.check(&request, &mut lookups), Decision::Allow);
}

#[test]
fn old_data_of_missing_record_is_null() {
    let (permissions, fixture) = rule_check("oldData === null");
    let request = fixture.request("alice", MessageData::Absent);
    let mut lookups = Lookups::new();
    lookups.insert("items/alice/42", None);
    assert_eq!(permissions.check(&request, &mut lookups), Decision::Allow);
}

#[test]
fn patch_data_is_the_patched_record() {
    let (permissions, fixture) =
        rule_check("data.price === 20 && data.owner === oldData.owner && oldData.price === 5");
    let path = JsonPath::parse("price").expect("valid path");
    let request = fixture.request(
        "alice",
        MessageData::Patch {
            path: &path,
            value: b"20",
        },
    );
    let mut lookups = Lookups::new();
    assert_eq!(
        permissions.check(&request, &mut lookups),
        Decision::NeedRecords(vec!["items/alice/42".into()])
    );
    lookups.insert("items/alice/42", Some(fixture.old_data.clone()));
    assert_eq!(permissions.check(&request, &mut lookups), Decision::Allow);
}

#[test]
fn patch_of_missing_record_fails() {
    let (permissions, fixture) = rule_check("data.price === 20");
    let path = JsonPath::parse("price").expect("valid path");
    let request = fixture.request(
        "alice",
        MessageData::Patch {
            path: &path,
            value: b"20",
        },
    );
    let mut lookups = Lookups::new();
    lookups.insert("items/alice/42", None);
    assert_eq!(
        permissions.check(&request, &mut lookups),
        Decision::Error(RuleError::PatchOfMissingRecord("items/alice/42".into()))
    );
}

#[test]
fn patch_with_invalid_value_fails() {
    let (permissions, fixture) = rule_check("data.price === 20");
    let path = JsonPath::parse("price").expect("valid path");
    let request = fixture.request(
        "alice",
        MessageData::Patch {
            path: &path,
            value: b"{",
        },
    );
    let mut lookups = Lookups::new();
    lookups.insert("items/alice/42", Some(fixture.old_data.clone()));
    let decision = permissions.check(&request, &mut lookups);
    assert!(
        matches!(decision, Decision::Error(RuleError::InvalidData(_))),
        "{decision:?}"
    );
}

#[test]
fn caller_can_ask_what_a_rule_reads() {
    let permissions = load_records(
        "  '*': { read: true, write: \"data.x === 1\", delete: \"oldData.owner === user.id\" }\n  refs/*:\n    read: \"_('a')\"\n",
    );
    assert!(!permissions.reads_data(Section::Record, Action::Read, "x"));
    assert!(permissions.reads_data(Section::Record, Action::Write, "x"));
    assert!(!permissions.reads_old_data(Section::Record, Action::Write, "x"));
    assert!(permissions.reads_old_data(Section::Record, Action::Delete, "x"));

    let selected = permissions.select(Section::Record, Action::Read, "refs/1");
    assert!(selected.reads_records());
    assert_eq!(selected.pattern(), Some("refs/*"));
    let selected = permissions.select(Section::Record, Action::Read, "other");
    assert!(!selected.reads_records());
    assert_eq!(selected.pattern(), Some("*"));
}

#[test]
fn constant_rules_do_not_count_evaluations() {
    let permissions = load_records("  '*': { read: true, write: false }\n");
    let fixture = Fixture::new();
    let mut request = fixture.request("alice", MessageData::Absent);
    let mut lookups = Lookups::new();
    assert_eq!(permissions.check(&request, &mut lookups), Decision::Deny);
    request.action = Action::Read;
    assert_eq!(permissions.check(&request, &mut lookups), Decision::Allow);
    assert_eq!(lookups.evaluations(), 0);
}
