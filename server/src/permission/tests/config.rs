//! Every check of the permission file, and how problems are reported.

use super::{OPEN_SECTIONS, load};
use crate::permission::{Location, PermissionConfigError, Problem, ProblemKind};

fn problems(yaml: &str) -> Vec<Problem> {
    match load(yaml) {
        Ok(_) => panic!("the test file loaded:\n{yaml}"),
        Err(error) => error.problems().to_vec(),
    }
}

/// Loads a file whose `record` section is `records` and returns its single problem.
fn record_problem(records: &str) -> Problem {
    let found = problems(&format!("record:\n{records}{OPEN_SECTIONS}"));
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().expect("one problem")
}

/// Loads `rule` as the `write` rule of the pattern `users/$id` and returns its problem.
fn rule_problem(rule: &str) -> ProblemKind {
    let records = format!(
        "  '*': {{ read: true }}\n  users/$id:\n    write: {}\n",
        serde_json::to_string(rule).expect("a string serializes")
    );
    let problem = record_problem(&records);
    assert_eq!(problem.location, rule_location("users/$id", "write"));
    problem.kind
}

fn rule_location(pattern: &str, action: &str) -> Location {
    Location::Rule {
        section: "record".into(),
        pattern: pattern.into(),
        action: action.into(),
    }
}

fn section_location(section: &str) -> Location {
    Location::Section {
        section: section.into(),
    }
}

fn pattern_location(pattern: &str) -> Location {
    Location::Pattern {
        section: "record".into(),
        pattern: pattern.into(),
    }
}

#[test]
fn valid_file_loads() {
    let yaml = format!(
        "record:\n  '*': {{ create: true, read: true, write: \"data.a === 1\", delete: \"oldData.owner === user.id\", listen: false, notify: false }}\n{OPEN_SECTIONS}"
    );
    assert!(load(&yaml).is_ok());
}

#[test]
fn message_names_file_section_pattern_and_action() {
    let yaml = format!(
        "record:\n  '*': {{ read: true }}\n  users/$id:\n    delete: \"data.x\"\n{OPEN_SECTIONS}"
    );
    let error = load(&yaml).expect_err("the rule reads data in delete");
    assert_eq!(
        error.to_string(),
        "permissions.yml: record.\"users/$id\".delete: rule uses `data`, but delete carries no data"
    );
    assert_eq!(error.file(), std::path::Path::new("permissions.yml"));
}

#[test]
fn every_problem_is_reported() {
    let error: PermissionConfigError = load(
        "record:\n  '*': { read: 1, write: \"x\" }\nevent:\n  '*': { emit: true }\nrpc: {}\nextra: {}\n",
    )
    .expect_err("the file has several problems");
    let lines: Vec<String> = error.to_string().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "permissions.yml: extra: unknown section; expected record, event, rpc or presence",
            "permissions.yml: record.\"*\".read: a rule must be true, false or a string, found a number",
            "permissions.yml: record.\"*\".write: unknown variable `x`; rules can use user, data, oldData, now, action, name, _() and the `$` variables of their pattern",
            "permissions.yml: event.\"*\".emit: unknown action; the actions of event are publish, subscribe and listen",
            "permissions.yml: rpc: the section has no patterns; it needs at least the pattern \"*\"",
            "permissions.yml: missing section `presence`; a permission file needs the sections record, event, rpc and presence",
        ]
    );
}

#[test]
fn document_must_be_a_mapping() {
    for (yaml, found) in [
        ("", "nothing (null)"),
        ("- a\n", "a list"),
        ("text\n", "a string"),
    ] {
        let found_problems = problems(yaml);
        assert_eq!(
            found_problems,
            [Problem {
                location: Location::Document,
                kind: ProblemKind::NotAMapping {
                    expected: "sections",
                    found,
                },
            }],
            "{yaml:?}"
        );
    }
}

#[test]
fn every_section_is_required() {
    let found = problems("record:\n  '*': { read: true }\n");
    let missing: Vec<&ProblemKind> = found.iter().map(|problem| &problem.kind).collect();
    assert_eq!(
        missing,
        [
            &ProblemKind::MissingSection { section: "event" },
            &ProblemKind::MissingSection { section: "rpc" },
            &ProblemKind::MissingSection {
                section: "presence"
            },
        ]
    );
}

#[test]
fn unknown_section() {
    let found = problems(&format!(
        "record:\n  '*': {{ read: true }}\nrecords: {{}}\n{OPEN_SECTIONS}"
    ));
    assert_eq!(
        found,
        [Problem {
            location: section_location("records"),
            kind: ProblemKind::UnknownSection,
        }]
    );
}

#[test]
fn section_must_be_a_mapping() {
    let found = problems(&format!("record: true\n{OPEN_SECTIONS}"));
    assert_eq!(
        found,
        [Problem {
            location: section_location("record"),
            kind: ProblemKind::NotAMapping {
                expected: "patterns",
                found: "a boolean",
            },
        }]
    );
}

#[test]
fn empty_section() {
    let found = problems(&format!("record: {{}}\n{OPEN_SECTIONS}"));
    assert_eq!(
        found,
        [Problem {
            location: section_location("record"),
            kind: ProblemKind::EmptySection,
        }]
    );
}

#[test]
fn root_pattern_is_required() {
    let problem = record_problem("  users/*: { read: true }\n");
    assert_eq!(problem.location, section_location("record"));
    assert_eq!(problem.kind, ProblemKind::MissingRootPattern);
}

#[test]
fn pattern_must_be_a_string() {
    let problem = record_problem("  '*': { read: true }\n  [a]: { read: true }\n");
    assert_eq!(problem.location, section_location("record"));
    assert_eq!(
        problem.kind,
        ProblemKind::InvalidPatternKey { found: "a list" }
    );
}

#[test]
fn invalid_patterns() {
    let cases = [
        ("''", "", ProblemKind::EmptyPattern),
        ("/users/*", "/users/*", ProblemKind::PatternStartsWithSlash),
        (
            "users/$-id",
            "users/$-id",
            ProblemKind::InvalidVariableName {
                variable: "$-".into(),
            },
        ),
        (
            "users/$$id",
            "users/$$id",
            ProblemKind::InvalidVariableName {
                variable: "$$".into(),
            },
        ),
    ];
    for (key, pattern, kind) in cases {
        let problem = record_problem(&format!(
            "  '*': {{ read: true }}\n  {key}: {{ read: true }}\n"
        ));
        assert_eq!(problem.location, pattern_location(pattern), "{key}");
        assert_eq!(problem.kind, kind, "{key}");
    }
}

#[test]
fn pattern_with_invalid_regex_syntax() {
    let problem = record_problem("  '*': { read: true }\n  users/(x: { read: true }\n");
    assert_eq!(problem.location, pattern_location("users/(x"));
    assert!(
        matches!(problem.kind, ProblemKind::InvalidPatternRegex { .. }),
        "{:?}",
        problem.kind
    );
}

#[test]
fn pattern_must_map_actions() {
    let problem = record_problem("  '*': { read: true }\n  users/*: true\n");
    assert_eq!(problem.location, pattern_location("users/*"));
    assert_eq!(
        problem.kind,
        ProblemKind::NotAMapping {
            expected: "actions",
            found: "a boolean",
        }
    );
}

#[test]
fn unknown_actions() {
    let problem = record_problem("  '*': { read: true, publish: true }\n");
    assert_eq!(problem.location, rule_location("*", "publish"));
    assert_eq!(
        problem.kind,
        ProblemKind::UnknownAction {
            section: "record",
            expected: "create, read, write, delete, listen and notify",
        }
    );
    let problem = record_problem("  '*': { read: true, 5: true }\n");
    assert_eq!(problem.location, rule_location("*", "5"));
}

#[test]
fn rule_must_be_boolean_or_string() {
    for (value, found) in [
        ("1", "a number"),
        ("null", "nothing (null)"),
        ("[true]", "a list"),
        ("{a: 1}", "a mapping"),
    ] {
        let problem = record_problem(&format!("  '*': {{ read: {value} }}\n"));
        assert_eq!(
            problem.kind,
            ProblemKind::InvalidRuleType { found },
            "{value}"
        );
    }
}

#[test]
fn empty_rule() {
    assert_eq!(rule_problem(""), ProblemKind::EmptyRule);
}

#[test]
fn rule_syntax_problems() {
    assert_eq!(rule_problem("new Date() > 0"), ProblemKind::NewKeyword);
    assert_eq!(
        rule_problem("(() => true)()"),
        ProblemKind::FunctionDefinition
    );
    assert_eq!(
        rule_problem("data.x.toFixed(2)"),
        ProblemKind::UnsupportedFunction {
            name: "toFixed".into()
        }
    );
    assert_eq!(
        rule_problem("user.id ==="),
        ProblemKind::Syntax {
            position: "at column 12".into(),
            message: "unexpected end of the rule where a value was expected".into(),
        }
    );
    assert_eq!(
        rule_problem(&format!("{}true", "!".repeat(65))),
        ProblemKind::TooDeep { max: 64 }
    );
    assert!(matches!(
        rule_problem("data.x.match(/(/)"),
        ProblemKind::InvalidRegex { .. }
    ));
    assert_eq!(
        rule_problem("userId === $id"),
        ProblemKind::UnknownVariable {
            name: "userId".into()
        }
    );
    assert_eq!(
        rule_problem("user.id === $userId"),
        ProblemKind::UncapturedVariable {
            name: "$userId".into()
        }
    );
}

#[test]
fn data_only_where_the_action_carries_it() {
    let carrying = [
        ("record", "write"),
        ("event", "publish"),
        ("event", "subscribe"),
        ("rpc", "request"),
    ];
    let not_carrying = [
        ("record", "create"),
        ("record", "read"),
        ("record", "delete"),
        ("record", "listen"),
        ("record", "notify"),
        ("event", "listen"),
        ("rpc", "provide"),
        ("presence", "allow"),
    ];
    for (section, action) in carrying {
        assert!(
            load(&one_rule(section, action, "data.x === 1")).is_ok(),
            "{section}.{action}"
        );
    }
    for (section, action) in not_carrying {
        let found = problems(&one_rule(section, action, "user.data.x === data"));
        let kinds: Vec<&ProblemKind> = found.iter().map(|problem| &problem.kind).collect();
        assert_eq!(kinds.len(), 1, "{section}.{action}: {found:?}");
        assert!(
            matches!(kinds[0], ProblemKind::DataNotCarried { action: found } if *found == action),
            "{section}.{action}: {found:?}"
        );
    }
}

#[test]
fn old_data_only_for_existing_records() {
    for (section, action) in [
        ("record", "read"),
        ("record", "write"),
        ("record", "delete"),
    ] {
        assert!(
            load(&one_rule(section, action, "oldData !== null")).is_ok(),
            "{section}.{action}"
        );
    }
    for (section, action) in [
        ("record", "create"),
        ("record", "listen"),
        ("event", "publish"),
        ("rpc", "request"),
    ] {
        let found = problems(&one_rule(section, action, "!!oldData"));
        assert_eq!(found.len(), 1, "{section}.{action}: {found:?}");
        assert!(
            matches!(&found[0].kind, ProblemKind::OldDataNotAvailable { action: found } if *found == action),
            "{section}.{action}: {found:?}"
        );
    }
}

#[test]
fn user_data_is_not_message_data() {
    assert!(load(&one_rule("record", "create", "user.data.admin === true")).is_ok());
}

/// Builds a file where `section."*".action` is `rule` and every other section allows
/// everything.
fn one_rule(section: &str, action: &str, rule: &str) -> String {
    let rule = serde_json::to_string(rule).expect("a string serializes");
    let mut sections = vec![
        ("record", "create: true".to_owned()),
        ("event", "publish: true".to_owned()),
        ("rpc", "request: true".to_owned()),
        ("presence", "allow: true".to_owned()),
    ];
    for (name, body) in &mut sections {
        if *name == section {
            *body = format!("{action}: {rule}");
        }
    }
    sections
        .iter()
        .map(|(name, body)| format!("{name}:\n  '*': {{ {body} }}\n"))
        .collect()
}
