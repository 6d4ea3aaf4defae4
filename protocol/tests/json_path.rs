//! Record paths applied by the official `@deepstream/client` 7.x and by our
//! [`JsonPath`], case by case.
//!
//! `json_path/cases.json` is written by `json_path/generate.mjs`, which runs the client's
//! `setValue` for every case. A case marked `"expected": "result"` passes when our
//! `set` or `erase` gives the document that the client returned, compared as JSON values.
//! A case marked `"expected": "error"` is one where the client throws or computes garbage.
//! It passes when we return the `PathError` variant named by `rejection` and leave the
//! document unchanged.
//!
//! A failure lists every failing case by name.

use deepstream_protocol::json_path::{JsonPath, PathError};
use serde::Deserialize;
use serde_json::Value;

const CASES_JSON: &str = include_str!("json_path/cases.json");

/// The cases file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    #[allow(dead_code, reason = "read by people, not by the test")]
    generated_by: String,
    client_version: String,
    cases: Vec<Case>,
}

/// One call of the client's `setValue` and what it returned or threw.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    root: Value,
    path: String,
    operation: Operation,
    /// The value of a set, which may be `null`. Absent for an erase.
    #[serde(default, deserialize_with = "present_value")]
    value: Option<Value>,
    /// `JSON.stringify` of the document the client returned.
    #[serde(default)]
    client_result: Option<String>,
    /// What the client threw.
    #[serde(default)]
    client_error: Option<String>,
    #[serde(default)]
    client_changed_prototype: bool,
    expected: Expected,
    /// The name of the `PathError` variant we must return, for `Expected::Error`.
    #[serde(default)]
    rejection: Option<String>,
    /// Why the case is rejected, for `Expected::Error`.
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Operation {
    Set,
    Erase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expected {
    Result,
    Error,
}

/// Reads a property that is present, so that `null` becomes `Some(Value::Null)`
/// rather than `None`, which means an absent property.
fn present_value<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

fn load_cases() -> CasesFile {
    serde_json::from_str(CASES_JSON).expect("json_path/cases.json does not match the Case type")
}

/// Returns the name of the variant, as the generator spells rejections.
fn variant_name(error: &PathError) -> &'static str {
    match error {
        PathError::InvalidIndex { .. } => "InvalidIndex",
        PathError::IndexTooLarge { .. } => "IndexTooLarge",
        PathError::TooManyTokens { .. } => "TooManyTokens",
        PathError::EmptyPath { .. } => "EmptyPath",
        PathError::RootNotContainer { .. } => "RootNotContainer",
        PathError::KeyOnArray { .. } => "KeyOnArray",
        PathError::PrototypeKey { .. } => "PrototypeKey",
        PathError::ArrayGrowthTooLarge { .. } => "ArrayGrowthTooLarge",
        _ => "an unknown variant",
    }
}

/// Parses the path and applies the case's operation to a copy of its root.
fn apply(case: &Case) -> Result<Value, PathError> {
    let path = JsonPath::parse(&case.path)?;
    let mut document = case.root.clone();
    let outcome = match case.operation {
        Operation::Set => {
            let value = case.value.clone().expect("a set case has a value");
            path.set(&mut document, value)
        }
        Operation::Erase => path.erase(&mut document),
    };
    match outcome {
        Ok(()) => Ok(document),
        Err(error) => {
            // A failed set or erase must leave the document as it was.
            assert_eq!(
                document, case.root,
                "case {:?}: the document changed although {error}",
                case.name
            );
            Err(error)
        }
    }
}

/// Returns why `case` fails, or `None` when our result matches the client's.
fn check_case(case: &Case) -> Option<String> {
    let outcome = apply(case);
    match case.expected {
        Expected::Result => {
            let Some(client_text) = &case.client_result else {
                return Some("expects a result but the client returned none".to_owned());
            };
            let client: Value = match serde_json::from_str(client_text) {
                Ok(client) => client,
                Err(error) => return Some(format!("client result is not JSON: {error}")),
            };
            match outcome {
                Ok(ours) if ours == client => None,
                Ok(ours) => Some(format!("we computed {ours}, the client {client}")),
                Err(error) => Some(format!("we returned \"{error}\", the client {client}")),
            }
        }
        Expected::Error => {
            let expected = case.rejection.as_deref().unwrap_or("a rejection");
            match outcome {
                Err(error) if variant_name(&error) == expected => None,
                Err(error) => Some(format!(
                    "we returned {} (\"{error}\"), expected {expected}",
                    variant_name(&error)
                )),
                Ok(ours) => Some(format!("we computed {ours}, expected {expected}")),
            }
        }
    }
}

#[test]
fn cases_file_is_complete() {
    let file = load_cases();
    assert!(
        file.client_version.starts_with("7."),
        "cases come from client {}, expected 7.x",
        file.client_version
    );
    assert!(
        file.cases.len() >= 60,
        "only {} cases in the file",
        file.cases.len()
    );
    for case in &file.cases {
        assert_eq!(
            case.operation == Operation::Set,
            case.value.is_some(),
            "case {:?}: a value belongs to sets only",
            case.name
        );
        assert!(
            case.client_result.is_some() != case.client_error.is_some(),
            "case {:?}: expected exactly one of client_result and client_error",
            case.name
        );
        if case.expected == Expected::Error {
            assert!(
                case.rejection.is_some() && case.reason.is_some(),
                "case {:?}: an error case needs a rejection and a reason",
                case.name
            );
        }
    }
}

#[test]
fn client_errors_are_rejected() {
    let file = load_cases();
    for case in &file.cases {
        if case.client_error.is_some() || case.client_changed_prototype {
            assert_eq!(
                case.expected,
                Expected::Error,
                "case {:?}: the client threw or changed a prototype",
                case.name
            );
        }
    }
}

#[test]
fn set_matches_client() {
    let failures = failures_for(Operation::Set);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn erase_matches_client() {
    let failures = failures_for(Operation::Erase);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn both_outcomes_are_covered() {
    let file = load_cases();
    for operation in [Operation::Set, Operation::Erase] {
        for expected in [Expected::Result, Expected::Error] {
            let count = file
                .cases
                .iter()
                .filter(|case| case.operation == operation && case.expected == expected)
                .count();
            assert!(
                count >= 5,
                "only {count} {operation:?} cases expect {expected:?}"
            );
        }
    }
}

fn failures_for(operation: Operation) -> Vec<String> {
    load_cases()
        .cases
        .iter()
        .filter(|case| case.operation == operation)
        .filter_map(|case| {
            check_case(case).map(|problem| {
                format!(
                    "case {:?} ({:?} path {:?}): {problem}",
                    case.name, case.operation, case.path
                )
            })
        })
        .collect()
}
