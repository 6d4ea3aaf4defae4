//! Which pattern's rule applies when several match, and what applies when none does.

use super::{Fixture, load, load_records};
use crate::permission::{Action, Decision, Lookups, MessageData, Permissions, Section};

fn decide(permissions: &Permissions, action: Action, name: &str) -> Decision {
    let fixture = Fixture::new();
    let mut request = fixture.request("alice", MessageData::Absent);
    request.action = action;
    request.name = name;
    permissions.check(&request, &mut Lookups::new())
}

fn pattern_for(permissions: &Permissions, action: Action, name: &str) -> Option<String> {
    permissions
        .select(Section::Record, action, name)
        .pattern()
        .map(str::to_owned)
}

#[test]
fn longest_matching_pattern_wins() {
    let permissions = load_records(
        "  '*': { read: false }\n  users/*: { read: true }\n  users/$id/private: { read: false }\n",
    );
    assert_eq!(decide(&permissions, Action::Read, "other"), Decision::Deny);
    assert_eq!(
        decide(&permissions, Action::Read, "users/1"),
        Decision::Allow
    );
    assert_eq!(
        decide(&permissions, Action::Read, "users/1/private"),
        Decision::Deny
    );
    assert_eq!(
        pattern_for(&permissions, Action::Read, "users/1/private").as_deref(),
        Some("users/$id/private")
    );
}

#[test]
fn equal_length_goes_to_the_later_pattern() {
    // `a/$x` and `a/*b` are both four characters long; deepstream keeps the later one.
    let permissions =
        load_records("  '*': { read: false }\n  a/$x: { read: true }\n  a/*b: { read: false }\n");
    assert_eq!(
        pattern_for(&permissions, Action::Read, "a/b").as_deref(),
        Some("a/*b")
    );
    assert_eq!(decide(&permissions, Action::Read, "a/b"), Decision::Deny);

    let reversed =
        load_records("  '*': { read: false }\n  a/*b: { read: false }\n  a/$x: { read: true }\n");
    assert_eq!(
        pattern_for(&reversed, Action::Read, "a/b").as_deref(),
        Some("a/$x")
    );
    assert_eq!(decide(&reversed, Action::Read, "a/b"), Decision::Allow);
}

#[test]
fn longer_wildcard_beats_shorter_exact_pattern() {
    let permissions = load_records(
        "  '*': { read: false }\n  users: { read: false }\n  user*: { read: true }\n  users*: { read: true }\n",
    );
    assert_eq!(
        pattern_for(&permissions, Action::Read, "users").as_deref(),
        Some("users*")
    );
    assert_eq!(decide(&permissions, Action::Read, "users"), Decision::Allow);
}

#[test]
fn exact_pattern_beats_shorter_wildcards() {
    let permissions = load_records(
        "  '*': { read: true }\n  user*: { read: true }\n  users/admin: { read: false }\n",
    );
    assert_eq!(
        decide(&permissions, Action::Read, "users/admin"),
        Decision::Deny
    );
    assert_eq!(
        decide(&permissions, Action::Read, "users/adminx"),
        Decision::Allow
    );
}

#[test]
fn patterns_without_the_action_are_skipped() {
    let permissions =
        load_records("  '*': { read: true, write: false }\n  users/*: { read: false }\n");
    // `users/*` has no write rule, so the write falls back to `*`.
    assert_eq!(
        pattern_for(&permissions, Action::Write, "users/1").as_deref(),
        Some("*")
    );
    assert_eq!(
        decide(&permissions, Action::Read, "users/1"),
        Decision::Deny
    );
}

#[test]
fn missing_action_denies() {
    let permissions = load_records("  '*': { read: true }\n");
    assert_eq!(
        decide(&permissions, Action::Delete, "anything"),
        Decision::Deny
    );
    assert_eq!(pattern_for(&permissions, Action::Delete, "anything"), None);
}

#[test]
fn action_of_another_section_denies() {
    let permissions = load_records("  '*': { read: true }\n");
    assert_eq!(
        decide(&permissions, Action::Publish, "anything"),
        Decision::Deny
    );
}

#[test]
fn sections_are_independent() {
    let permissions = load(
        "record:\n  '*': { listen: false }\nevent:\n  '*': { listen: true, publish: true, subscribe: true }\nrpc:\n  '*': { provide: false, request: true }\npresence:\n  '*': { allow: false }\n",
    )
    .expect("the test file loads");
    let fixture = Fixture::new();
    let mut request = fixture.request("alice", MessageData::Absent);
    let cases = [
        (Section::Record, Action::Listen, Decision::Deny),
        (Section::Event, Action::Listen, Decision::Allow),
        (Section::Rpc, Action::Provide, Decision::Deny),
        (Section::Rpc, Action::Request, Decision::Allow),
        (Section::Presence, Action::Allow, Decision::Deny),
    ];
    for (section, action, expected) in cases {
        request.section = section;
        request.action = action;
        assert_eq!(
            permissions.check(&request, &mut Lookups::new()),
            expected,
            "{section}.{action}"
        );
    }
}

#[test]
fn allow_all_allows_everything() {
    let permissions = Permissions::allow_all();
    assert_eq!(
        decide(&permissions, Action::Delete, "anything"),
        Decision::Allow
    );
    assert!(!permissions.reads_data(Section::Record, Action::Write, "x"));
    assert_eq!(pattern_for(&permissions, Action::Write, "x"), None);
}

#[test]
fn regex_patterns_rank_like_others() {
    let permissions = load_records("  '*': { read: false }\n  v1.*: { read: true }\n");
    assert_eq!(
        decide(&permissions, Action::Read, "v1.config"),
        Decision::Allow
    );
    // deepstream reads the dot as "any character".
    assert_eq!(
        decide(&permissions, Action::Read, "v1xconfig"),
        Decision::Allow
    );
    assert_eq!(
        decide(&permissions, Action::Read, "v2.config"),
        Decision::Deny
    );
}

#[test]
fn numeric_pattern_keys_are_names() {
    let permissions = load_records("  '*': { read: false }\n  123: { read: true }\n");
    assert_eq!(decide(&permissions, Action::Read, "123"), Decision::Allow);
}
