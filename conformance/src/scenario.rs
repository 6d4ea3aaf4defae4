//! Scenario files: parsing and checking the YAML format that
//! `conformance/README.md` documents.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::ConformanceError;

/// Time a step waits for its reply or observation unless it sets `within_ms`.
pub const DEFAULT_WITHIN: Duration = Duration::from_millis(3000);
/// Upper bound on `within_ms` and `ms`, so a typo cannot stall a run for hours.
const MAX_WAIT_MS: u64 = 60_000;

/// One parsed scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// File stem, used as the scenario's name in the matrix.
    pub name: String,
    /// One line on what the scenario checks.
    pub description: String,
    /// Names of the clients, each driven by its own driver process.
    pub clients: Vec<String>,
    /// Users and passwords for file authentication, when the scenario sets them.
    pub users: Option<BTreeMap<String, String>>,
    /// The steps, run in order.
    pub steps: Vec<Step>,
}

/// One step of a scenario.
#[derive(Debug, Clone)]
pub enum Step {
    /// Sends a command to a client's driver and checks its reply.
    Command {
        /// The client that runs the command.
        client: String,
        /// The command line sent to the driver, without its `id`.
        command: serde_json::Map<String, Value>,
        /// The reply the step expects.
        reply: ExpectedReply,
        /// Time limit for the reply.
        within: Duration,
    },
    /// Waits for an observation of a client that contains `pattern`.
    Observe {
        /// The client whose observations are searched.
        client: String,
        /// Fields the observation must contain (see [`contains`]).
        pattern: Value,
        /// When true, the step fails if a matching observation arrives.
        absent: bool,
        /// Time limit, or for `absent` the time to watch.
        within: Duration,
    },
    /// Pauses the scenario.
    Wait(Duration),
}

/// The reply a command step expects.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpectedReply {
    /// Success with any result.
    Success,
    /// Success with this result (compared with [`contains`]).
    Result(Value),
    /// Failure with this error code.
    Error(String),
}

/// A step as written in the file, before checking.
#[derive(Debug, Deserialize)]
struct RawStep {
    client: Option<String>,
    #[serde(rename = "do")]
    operation: String,
    result: Option<Value>,
    error: Option<String>,
    within_ms: Option<u64>,
    #[serde(rename = "match")]
    pattern: Option<Value>,
    #[serde(default)]
    absent: bool,
    ms: Option<u64>,
    #[serde(flatten)]
    arguments: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    description: String,
    clients: Vec<String>,
    #[serde(default)]
    users: Option<BTreeMap<String, String>>,
    steps: Vec<RawStep>,
}

impl Scenario {
    /// Reads and checks one scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ConformanceError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConformanceError::Io {
            action: format!("reading {}", path.display()),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        Scenario::parse(&name, &text).map_err(|reason| ConformanceError::InvalidScenario {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses scenario text. The error is a sentence naming the faulty step.
    pub fn parse(name: &str, text: &str) -> Result<Scenario, String> {
        let raw: RawScenario = serde_yaml::from_str(text).map_err(|error| error.to_string())?;
        if raw.clients.is_empty() {
            return Err("`clients` must name at least one client".to_owned());
        }
        let mut steps = Vec::with_capacity(raw.steps.len());
        for (index, step) in raw.steps.into_iter().enumerate() {
            let step = check_step(step, &raw.clients)
                .map_err(|reason| format!("step {}: {reason}", index + 1))?;
            steps.push(step);
        }
        Ok(Scenario {
            name: name.to_owned(),
            description: raw.description,
            clients: raw.clients,
            users: raw.users,
            steps,
        })
    }
}

fn check_step(raw: RawStep, clients: &[String]) -> Result<Step, String> {
    let within = match raw.within_ms {
        Some(ms) => Duration::from_millis(checked_ms(ms, "within_ms")?),
        None => DEFAULT_WITHIN,
    };
    if raw.operation == "wait" {
        let ms = raw.ms.ok_or("`wait` needs `ms`")?;
        return Ok(Step::Wait(Duration::from_millis(checked_ms(ms, "ms")?)));
    }

    let client = raw.client.ok_or("`client` is missing")?;
    if !clients.contains(&client) {
        return Err(format!("client {client:?} is not listed in `clients`"));
    }
    if raw.operation == "observe" {
        let pattern = raw.pattern.ok_or("`observe` needs `match`")?;
        return Ok(Step::Observe {
            client,
            pattern,
            absent: raw.absent,
            within,
        });
    }
    if raw.pattern.is_some() || raw.absent || raw.ms.is_some() {
        return Err(format!(
            "`match`, `absent` and `ms` do not apply to `{}`",
            raw.operation
        ));
    }

    let reply = match (raw.result, raw.error) {
        (Some(_), Some(_)) => return Err("set `result` or `error`, not both".to_owned()),
        (Some(result), None) => ExpectedReply::Result(result),
        (None, Some(code)) => ExpectedReply::Error(code),
        (None, None) => ExpectedReply::Success,
    };
    let mut command = raw.arguments;
    command.insert("op".to_owned(), Value::String(raw.operation));
    Ok(Step::Command {
        client,
        command,
        reply,
        within,
    })
}

fn checked_ms(ms: u64, field: &str) -> Result<u64, String> {
    if ms > MAX_WAIT_MS {
        return Err(format!(
            "`{field}` is {ms}, above the maximum of {MAX_WAIT_MS}"
        ));
    }
    Ok(ms)
}

/// Lists the `.yml` files of a folder, sorted by name.
pub fn scenario_files(folder: &Path) -> Result<Vec<PathBuf>, ConformanceError> {
    let entries = std::fs::read_dir(folder).map_err(|source| ConformanceError::Io {
        action: format!("listing {}", folder.display()),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Returns whether `actual` contains `expected`: objects match when every
/// expected key is present with a matching value, and other values must be
/// equal.
pub fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => expected.iter().all(|(key, value)| {
            actual
                .get(key)
                .is_some_and(|actual| contains(actual, value))
        }),
        _ => actual == expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VALID: &str = "
description: two clients
clients: [a, b]
steps:
  - {client: a, do: login, auth: {username: a}}
  - {client: b, do: make, name: add, data: [1, 2], result: 3}
  - {client: b, do: make, name: none, error: NO_RPC_PROVIDER, within_ms: 500}
  - {client: a, do: observe, match: {kind: event}, absent: true}
  - {do: wait, ms: 10}
";

    #[test]
    fn parse_valid_scenario() {
        let scenario = Scenario::parse("valid", VALID).expect("valid scenario");
        assert_eq!(scenario.clients, ["a", "b"]);
        assert_eq!(scenario.steps.len(), 5);
        let Step::Command { command, reply, .. } = &scenario.steps[1] else {
            panic!("step 2 is not a command: {:?}", scenario.steps[1]);
        };
        assert_eq!(command.get("op"), Some(&json!("make")));
        assert_eq!(command.get("data"), Some(&json!([1, 2])));
        assert_eq!(*reply, ExpectedReply::Result(json!(3)));
        assert!(matches!(scenario.steps[4], Step::Wait(d) if d == Duration::from_millis(10)));
    }

    #[test]
    fn parse_rejects_bad_steps() {
        let cases = [
            ("clients: [a]\nsteps: []", "description"),
            (
                "description: x\nclients: []\nsteps: []",
                "at least one client",
            ),
            (
                "description: x\nclients: [a]\nsteps: [{client: z, do: login}]",
                "not listed",
            ),
            (
                "description: x\nclients: [a]\nsteps: [{do: login}]",
                "`client` is missing",
            ),
            (
                "description: x\nclients: [a]\nsteps: [{do: wait}]",
                "needs `ms`",
            ),
            (
                "description: x\nclients: [a]\nsteps: [{do: wait, ms: 99999999}]",
                "maximum",
            ),
            (
                "description: x\nclients: [a]\nsteps: [{client: a, do: observe}]",
                "needs `match`",
            ),
            (
                "description: x\nclients: [a]\nsteps: [{client: a, do: make, result: 1, error: E}]",
                "not both",
            ),
            (
                "description: x\nclients: [a]\nextra: 1\nsteps: []",
                "unknown field",
            ),
        ];
        for (text, message) in cases {
            let error = Scenario::parse("bad", text).expect_err(text);
            assert!(error.contains(message), "{text:?} gave {error:?}");
        }
    }

    #[test]
    fn contains_matches_subsets() {
        let actual = json!({"kind": "record", "data": {"age": 36, "name": "ada"}});
        assert!(contains(&actual, &json!({"kind": "record"})));
        assert!(contains(&actual, &json!({"data": {"age": 36}})));
        assert!(!contains(&actual, &json!({"data": {"age": 37}})));
        assert!(!contains(&actual, &json!({"missing": null})));
        assert!(!contains(&json!([1, 2]), &json!([1])));
        assert!(contains(&json!("x"), &json!("x")));
    }
}
