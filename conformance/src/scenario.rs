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
    /// The permissions file's content, when the scenario sets one.
    pub permissions: Option<String>,
    /// The storage the server keeps records in, when the scenario names one.
    pub storage: Option<StorageKind>,
    /// The cluster the scenario runs on, when it sets `cluster`.
    pub cluster: Option<Cluster>,
    /// The steps, run in order.
    pub steps: Vec<Step>,
}

/// The maximum number of nodes of a cluster scenario.
pub const MAX_NODES: usize = 5;

/// A cluster of server nodes and the node each client connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The number of nodes, from 2 to [`MAX_NODES`].
    pub nodes: usize,
    /// The node index of each client; clients not listed connect to node 0.
    pub placement: BTreeMap<String, usize>,
}

impl Cluster {
    /// Returns the index of the node that `client` connects to.
    pub fn node_of(&self, client: &str) -> usize {
        self.placement.get(client).copied().unwrap_or(0)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    nodes: usize,
    #[serde(default)]
    clients: BTreeMap<String, usize>,
}

/// A storage behind the server that the runner starts and can write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// A PostgreSQL server in a temporary folder.
    Postgres,
}

/// One step of a scenario.
#[derive(Debug, Clone)]
pub enum Step {
    /// Sends a command to a client's driver and checks its reply.
    Command(CommandStep),
    /// Sends several commands before waiting for any reply, so that they run
    /// at the same time, then checks each reply.
    Together(Vec<CommandStep>),
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
    /// Stops one node of a cluster with SIGTERM and waits for it to exit.
    StopNode(usize),
    /// Writes a record straight into the storage, bypassing the server.
    StorageSet {
        /// The record name.
        name: String,
        /// The version to store.
        version: i32,
        /// The data to store.
        data: Value,
    },
}

/// A command for one client's driver and the reply it expects.
#[derive(Debug, Clone)]
pub struct CommandStep {
    /// The client that runs the command.
    pub client: String,
    /// The command line sent to the driver, without its `id`.
    pub command: serde_json::Map<String, Value>,
    /// The reply the step expects.
    pub reply: ExpectedReply,
    /// Name under which the reply's result is kept for a later `equals`.
    pub save: Option<String>,
    /// Time limit for the reply.
    pub within: Duration,
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
    /// Success with a result equal to the one saved under this name.
    Equals(String),
}

/// A step as written in the file, before checking.
#[derive(Debug, Deserialize)]
struct RawStep {
    client: Option<String>,
    #[serde(rename = "do")]
    operation: String,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    error: Option<String>,
    save: Option<String>,
    equals: Option<String>,
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
    #[serde(default)]
    permissions: Option<serde_yaml::Value>,
    #[serde(default)]
    storage: Option<StorageKind>,
    #[serde(default)]
    cluster: Option<RawCluster>,
    steps: Vec<RawStep>,
}

/// Deserializes a value that may be `null`, so that `result: null` checks
/// for a null result instead of reading as a missing key.
fn present<'de, D>(deserializer: D) -> Result<Option<Value>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Value::deserialize(deserializer).map(Some)
}

/// The scenario-wide facts that step checking needs.
struct Context<'a> {
    clients: &'a [String],
    storage: Option<StorageKind>,
    /// The number of nodes: 1 without a cluster.
    nodes: usize,
    /// Names saved by earlier steps.
    saved: Vec<String>,
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
        for (index, client) in raw.clients.iter().enumerate() {
            if raw.clients[..index].contains(client) {
                return Err(format!("client {client:?} is listed twice in `clients`"));
            }
        }
        let permissions = match raw.permissions {
            None => None,
            Some(rules @ serde_yaml::Value::Mapping(_)) => Some(
                serde_yaml::to_string(&rules)
                    .map_err(|error| format!("`permissions` cannot be written: {error}"))?,
            ),
            Some(_) => return Err("`permissions` must be a mapping of sections".to_owned()),
        };
        let cluster = raw
            .cluster
            .map(|cluster| check_cluster(cluster, &raw.clients))
            .transpose()?;
        let mut context = Context {
            clients: &raw.clients,
            storage: raw.storage,
            nodes: cluster.as_ref().map_or(1, |cluster| cluster.nodes),
            saved: Vec::new(),
        };
        let mut steps = Vec::with_capacity(raw.steps.len());
        for (index, step) in raw.steps.into_iter().enumerate() {
            let step = check_step(step, &mut context)
                .map_err(|reason| format!("step {}: {reason}", index + 1))?;
            steps.push(step);
        }
        Ok(Scenario {
            name: name.to_owned(),
            description: raw.description,
            clients: raw.clients,
            users: raw.users,
            permissions,
            storage: raw.storage,
            cluster,
            steps,
        })
    }
}

fn check_cluster(raw: RawCluster, clients: &[String]) -> Result<Cluster, String> {
    if !(2..=MAX_NODES).contains(&raw.nodes) {
        return Err(format!(
            "`cluster.nodes` is {}; expected 2 to {MAX_NODES}",
            raw.nodes
        ));
    }
    for (client, node) in &raw.clients {
        if !clients.contains(client) {
            return Err(format!(
                "`cluster.clients` names {client:?}, which is not listed in `clients`"
            ));
        }
        if *node >= raw.nodes {
            return Err(format!(
                "`cluster.clients` puts {client:?} on node {node}; nodes are 0 to {}",
                raw.nodes - 1
            ));
        }
    }
    Ok(Cluster {
        nodes: raw.nodes,
        placement: raw.clients,
    })
}

/// The commands of the driver protocol that a step can send, each with the
/// arguments it takes, as `conformance/README.md` lists them.
const COMMANDS: &[(&str, &[&str])] = &[
    ("login", &["auth"]),
    ("close", &[]),
    ("subscribe", &["name"]),
    ("subscribe-many", &["prefix", "count"]),
    ("unsubscribe", &["name"]),
    ("emit", &["name", "data"]),
    ("listen", &["pattern"]),
    ("record-listen", &["pattern"]),
    ("accept", &["name"]),
    ("reject", &["name"]),
    ("provide", &["name", "reply", "fail", "reject"]),
    ("make", &["name", "data"]),
    ("presence-get-all", &[]),
    ("presence-get", &["users"]),
    ("presence-subscribe", &["user"]),
    ("record-get", &["name"]),
    ("record-version", &["name"]),
    ("record-set", &["name", "path", "data", "ack"]),
    ("record-erase", &["name", "path"]),
    ("record-subscribe", &["name", "path"]),
    ("record-subscribe-many", &["prefix", "count"]),
    ("record-delete", &["name"]),
    ("record-has", &["name"]),
    ("record-snapshot", &["name"]),
    ("record-head", &["name"]),
    ("record-set-data", &["name", "path", "data"]),
    ("record-notify", &["names"]),
    ("list-get", &["name"]),
    ("list-set", &["name", "entries"]),
    ("list-add", &["name", "entry", "index"]),
    ("list-remove", &["name", "entry"]),
    ("list-subscribe", &["name"]),
];

/// Keys that every command step may set besides the command's arguments.
const COMMAND_KEYS: &[&str] = &["client", "result", "error", "save", "equals", "within_ms"];

fn check_step(raw: RawStep, context: &mut Context<'_>) -> Result<Step, String> {
    match raw.operation.as_str() {
        "wait" => {
            allow_only(&raw, &["ms"])?;
            let ms = raw.ms.ok_or("`wait` needs `ms`")?;
            Ok(Step::Wait(Duration::from_millis(checked_ms(ms, "ms")?)))
        }
        "together" => {
            allow_only(&raw, &["steps"])?;
            check_together(raw, context)
        }
        "storage-set" => {
            allow_only(&raw, &["name", "version", "data"])?;
            check_storage_set(raw, context)
        }
        "stop-node" => {
            allow_only(&raw, &["node"])?;
            check_stop_node(&raw, context)
        }
        "observe" => {
            allow_only(&raw, &["client", "match", "absent", "within_ms"])?;
            let within = within(&raw)?;
            let client = checked_client(raw.client, context)?;
            let pattern = raw.pattern.ok_or("`observe` needs `match`")?;
            if !pattern.is_object() {
                return Err(format!(
                    "`match` must be an object of observation fields, not {pattern}"
                ));
            }
            Ok(Step::Observe {
                client,
                pattern,
                absent: raw.absent,
                within,
            })
        }
        _ => check_command(raw, context).map(Step::Command),
    }
}

/// Rejects every key of `raw` that is not in `allowed`, so that a typo such
/// as `resutl` fails the scenario instead of silently dropping a check.
fn allow_only(raw: &RawStep, allowed: &[&str]) -> Result<(), String> {
    let mut present: Vec<&str> = Vec::new();
    for (key, set) in [
        ("client", raw.client.is_some()),
        ("result", raw.result.is_some()),
        ("error", raw.error.is_some()),
        ("save", raw.save.is_some()),
        ("equals", raw.equals.is_some()),
        ("within_ms", raw.within_ms.is_some()),
        ("match", raw.pattern.is_some()),
        ("absent", raw.absent),
        ("ms", raw.ms.is_some()),
    ] {
        if set {
            present.push(key);
        }
    }
    present.extend(raw.arguments.keys().map(String::as_str));
    match present.into_iter().find(|key| !allowed.contains(key)) {
        None => Ok(()),
        Some(key) => Err(format!(
            "`{key}` does not apply to `{}`, which takes {}",
            raw.operation,
            allowed
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn check_command(raw: RawStep, context: &mut Context<'_>) -> Result<CommandStep, String> {
    let Some((_, arguments)) = COMMANDS
        .iter()
        .find(|(operation, _)| *operation == raw.operation)
    else {
        return Err(format!(
            "unknown command `{}`: use `wait`, `observe`, `together`, `storage-set`, \
             `stop-node` or a driver command listed in conformance/README.md",
            raw.operation
        ));
    };
    let allowed: Vec<&str> = COMMAND_KEYS.iter().chain(*arguments).copied().collect();
    allow_only(&raw, &allowed)?;
    let within = within(&raw)?;
    let client = checked_client(raw.client, context)?;

    let reply = match (raw.result, raw.error, raw.equals) {
        (None, None, None) => ExpectedReply::Success,
        (Some(result), None, None) => ExpectedReply::Result(result),
        (None, Some(code), None) => ExpectedReply::Error(code),
        (None, None, Some(saved)) => {
            if !context.saved.contains(&saved) {
                return Err(format!("`equals: {saved}` names no result saved before"));
            }
            ExpectedReply::Equals(saved)
        }
        _ => return Err("set one of `result`, `error` or `equals`, not several".to_owned()),
    };
    if let Some(save) = &raw.save {
        context.saved.push(save.clone());
    }
    let mut command = raw.arguments;
    command.insert("op".to_owned(), Value::String(raw.operation));
    Ok(CommandStep {
        client,
        command,
        reply,
        save: raw.save,
        within,
    })
}

/// Checks a `together` step: its `steps` must all be commands.
fn check_together(mut raw: RawStep, context: &mut Context<'_>) -> Result<Step, String> {
    let inner = raw
        .arguments
        .remove("steps")
        .ok_or("`together` needs `steps`")?;
    let Value::Array(inner) = inner else {
        return Err("`steps` of `together` must be a list".to_owned());
    };
    if inner.len() < 2 {
        return Err("`together` needs at least two steps".to_owned());
    }
    let mut commands = Vec::with_capacity(inner.len());
    for (index, step) in inner.into_iter().enumerate() {
        let step: RawStep = serde_json::from_value(step)
            .map_err(|error| format!("inner step {}: {error}", index + 1))?;
        if matches!(
            step.operation.as_str(),
            "wait" | "observe" | "together" | "storage-set" | "stop-node"
        ) {
            return Err(format!(
                "inner step {}: `{}` cannot run inside `together`; only commands can",
                index + 1,
                step.operation
            ));
        }
        let command = check_command(step, context)
            .map_err(|reason| format!("inner step {}: {reason}", index + 1))?;
        commands.push(command);
    }
    Ok(Step::Together(commands))
}

/// Checks a `stop-node` step, which needs a cluster with that node.
fn check_stop_node(raw: &RawStep, context: &Context<'_>) -> Result<Step, String> {
    if context.nodes < 2 {
        return Err("`stop-node` needs a `cluster` in the scenario".to_owned());
    }
    let node = raw
        .arguments
        .get("node")
        .and_then(Value::as_u64)
        .and_then(|node| usize::try_from(node).ok())
        .ok_or("`stop-node` needs `node`, a node index")?;
    if node >= context.nodes {
        return Err(format!(
            "`stop-node` names node {node}; nodes are 0 to {}",
            context.nodes - 1
        ));
    }
    Ok(Step::StopNode(node))
}

/// Checks a `storage-set` step, which needs a scenario `storage`.
fn check_storage_set(mut raw: RawStep, context: &Context<'_>) -> Result<Step, String> {
    if context.storage.is_none() {
        return Err("`storage-set` needs `storage: postgres` in the scenario".to_owned());
    }
    let name = match raw.arguments.remove("name") {
        Some(Value::String(name)) if !name.is_empty() => name,
        _ => return Err("`storage-set` needs a non-empty `name`".to_owned()),
    };
    let version = raw
        .arguments
        .remove("version")
        .and_then(|version| version.as_i64())
        .and_then(|version| i32::try_from(version).ok())
        .filter(|version| *version > 0)
        .ok_or("`storage-set` needs a positive integer `version`")?;
    let data = raw
        .arguments
        .remove("data")
        .ok_or("`storage-set` needs `data`")?;
    Ok(Step::StorageSet {
        name,
        version,
        data,
    })
}

fn checked_client(client: Option<String>, context: &Context<'_>) -> Result<String, String> {
    let client = client.ok_or("`client` is missing")?;
    if !context.clients.contains(&client) {
        return Err(format!("client {client:?} is not listed in `clients`"));
    }
    Ok(client)
}

fn within(raw: &RawStep) -> Result<Duration, String> {
    match raw.within_ms {
        Some(ms) => Ok(Duration::from_millis(checked_ms(ms, "within_ms")?)),
        None => Ok(DEFAULT_WITHIN),
    }
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
        let Step::Command(step) = &scenario.steps[1] else {
            panic!("step 2 is not a command: {:?}", scenario.steps[1]);
        };
        assert_eq!(step.command.get("op"), Some(&json!("make")));
        assert_eq!(step.command.get("data"), Some(&json!([1, 2])));
        assert_eq!(step.reply, ExpectedReply::Result(json!(3)));
        assert!(matches!(scenario.steps[4], Step::Wait(d) if d == Duration::from_millis(10)));
    }

    const WITH_EXTRAS: &str = "
description: extras
clients: [a, b]
storage: postgres
permissions:
  event:
    '*': {publish: true, subscribe: true, listen: true}
steps:
  - do: together
    steps:
      - {client: a, do: record-set, name: r, data: {x: 1}, ack: false}
      - {client: b, do: record-set, name: r, data: {x: 2}, ack: false}
  - {client: a, do: record-get, name: r, save: seen-by-a}
  - {client: b, do: record-get, name: r, equals: seen-by-a}
  - {do: storage-set, name: r, version: 9, data: {x: 3}}
";

    #[test]
    fn parse_together_save_and_storage() {
        let scenario = Scenario::parse("extras", WITH_EXTRAS).expect("valid scenario");
        assert_eq!(scenario.storage, Some(StorageKind::Postgres));
        let permissions = scenario.permissions.as_deref().unwrap_or_default();
        assert!(permissions.contains("publish: true"), "{permissions}");

        let Step::Together(commands) = &scenario.steps[0] else {
            panic!("step 1 is not `together`: {:?}", scenario.steps[0]);
        };
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[1].client, "b");
        assert_eq!(commands[1].command.get("ack"), Some(&json!(false)));

        let Step::Command(saving) = &scenario.steps[1] else {
            panic!("step 2 is not a command: {:?}", scenario.steps[1]);
        };
        assert_eq!(saving.save.as_deref(), Some("seen-by-a"));
        let Step::Command(comparing) = &scenario.steps[2] else {
            panic!("step 3 is not a command: {:?}", scenario.steps[2]);
        };
        assert_eq!(
            comparing.reply,
            ExpectedReply::Equals("seen-by-a".to_owned())
        );
        assert!(matches!(
            &scenario.steps[3],
            Step::StorageSet { name, version: 9, data } if name == "r" && data == &json!({"x": 3})
        ));
    }

    #[test]
    fn parse_null_result() {
        let text = "description: n\nclients: [a]\nsteps: [{client: a, do: login, result: null}]";
        let scenario = Scenario::parse("n", text).expect("valid scenario");
        let Step::Command(step) = &scenario.steps[0] else {
            panic!("step 1 is not a command: {:?}", scenario.steps[0]);
        };
        assert_eq!(step.reply, ExpectedReply::Result(Value::Null));
    }

    #[test]
    fn parse_cluster() {
        let text = "description: c\nclients: [a, b]\ncluster: {nodes: 3, clients: {b: 2}}\n\
                    steps: [{do: stop-node, node: 2}]";
        let scenario = Scenario::parse("c", text).expect("valid scenario");
        let cluster = scenario.cluster.expect("cluster");
        assert_eq!(cluster.nodes, 3);
        assert_eq!(cluster.node_of("a"), 0);
        assert_eq!(cluster.node_of("b"), 2);
        assert!(matches!(scenario.steps[0], Step::StopNode(2)));
    }

    #[test]
    fn parse_rejects_bad_extras() {
        let header = "description: x\nclients: [a, b]\n";
        let cases = [
            (
                "steps: [{client: a, do: make, equals: nothing}]",
                "names no result",
            ),
            (
                "steps: [{client: a, do: make, result: 1, equals: x}]",
                "not several",
            ),
            (
                "steps: [{do: together, steps: [{client: a, do: make}]}]",
                "at least two",
            ),
            ("steps: [{do: together}]", "needs `steps`"),
            ("steps: [{do: together, steps: 3}]", "must be a list"),
            (
                "steps: [{do: together, client: a, steps: []}]",
                "`client` does not apply to `together`",
            ),
            (
                "steps: [{client: a, do: make, resutl: 3}]",
                "`resutl` does not apply to `make`",
            ),
            (
                "steps: [{client: a, do: observe, match: {}, result: 1}]",
                "`result` does not apply to `observe`",
            ),
            (
                "steps: [{do: wait, ms: 1, client: a}]",
                "`client` does not apply to `wait`",
            ),
            ("steps: [{do: sleep, ms: 1}]", "unknown command `sleep`"),
            (
                "steps: [{client: a, do: observe, match: evnt, absent: true}]",
                "must be an object",
            ),
            (
                "steps: [{client: a, do: record-sett, name: r}]",
                "unknown command `record-sett`",
            ),
            (
                "steps: [{do: together, steps: [{client: a, do: make}, {do: wait, ms: 1}]}]",
                "cannot run inside",
            ),
            (
                "steps: [{do: together, steps: [{client: a, do: make}, {client: z, do: make}]}]",
                "inner step 2",
            ),
            (
                "steps: [{do: storage-set, name: r, version: 1, data: 1}]",
                "needs `storage",
            ),
            (
                "storage: postgres\nsteps: [{do: storage-set, name: r, version: 0, data: 1}]",
                "positive integer",
            ),
            (
                "storage: postgres\nsteps: [{do: storage-set, version: 1, data: 1}]",
                "non-empty `name`",
            ),
            (
                "storage: postgres\nsteps: [{do: storage-set, name: r, version: 1}]",
                "needs `data`",
            ),
            (
                "storage: postgres\nsteps: [{do: storage-set, name: r, version: 1, data: 1, x: 2}]",
                "`x` does not apply to `storage-set`",
            ),
            ("storage: redis\nsteps: []", "unknown variant"),
            ("cluster: {nodes: 1}\nsteps: []", "expected 2 to 5"),
            ("cluster: {nodes: 6}\nsteps: []", "expected 2 to 5"),
            (
                "cluster: {nodes: 2, clients: {z: 1}}\nsteps: []",
                "not listed in `clients`",
            ),
            (
                "cluster: {nodes: 2, clients: {a: 2}}\nsteps: []",
                "nodes are 0 to 1",
            ),
            ("steps: [{do: stop-node, node: 0}]", "needs a `cluster`"),
            (
                "cluster: {nodes: 2}\nsteps: [{do: stop-node, node: 2}]",
                "nodes are 0 to 1",
            ),
            (
                "cluster: {nodes: 2}\nsteps: [{do: stop-node}]",
                "needs `node`",
            ),
            ("permissions: [1]\nsteps: []", "must be a mapping"),
        ];
        for (body, message) in cases {
            let text = format!("{header}{body}");
            let error = Scenario::parse("bad", &text).expect_err(&text);
            assert!(error.contains(message), "{text:?} gave {error:?}");
        }
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
            ("description: x\nclients: [a, a]\nsteps: []", "listed twice"),
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
                "not several",
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
