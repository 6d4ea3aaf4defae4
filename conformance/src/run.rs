//! Running one scenario in one cell of the matrix: a target and a driver kind.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::driver::{Driver, DriverKind};
use crate::postgres::{Layout, Postgres};
use crate::redis::Redis;
use crate::scenario::{CommandStep, ExpectedReply, Scenario, Step, StorageKind, contains};
use crate::target::{RunningServer, ServerSetup, Target, free_port};

/// The outcome of one scenario in one cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step passed.
    Pass,
    /// A step failed, or the target or a driver did not start.
    Fail(String),
    /// The scenario cannot run on this target.
    Skip(String),
}

/// The state that the steps of one scenario share: the drivers by client
/// name, the results saved by `save`, and the storage for `storage-set`.
struct Cell<'a> {
    drivers: BTreeMap<String, Driver>,
    saved: BTreeMap<String, Value>,
    storage: Option<(&'a Postgres, Layout)>,
    server: &'a mut RunningServer,
}

/// Runs `scenario` against `target`, with its clients driven by the
/// implementations of `kind`.
pub async fn run_scenario(scenario: &Scenario, target: &Target, kind: &DriverKind) -> Outcome {
    let needs_config = scenario.users.is_some()
        || scenario.permissions.is_some()
        || scenario.storage.is_some()
        || scenario.cluster.is_some();
    let layout = match target {
        Target::Url(_) if needs_config => {
            return Outcome::Skip(
                "needs its own server config, which a URL target cannot take".to_owned(),
            );
        }
        Target::Ours { .. } if scenario.cluster.is_some() => {
            return Outcome::Skip(
                "our server has no clustering yet, so it cannot run a cluster".to_owned(),
            );
        }
        Target::Node { .. } => Layout::NodeConnector,
        _ => Layout::Ours,
    };

    let mut redis = None;
    if scenario.cluster.is_some() {
        let started = match free_port() {
            Ok(port) => Redis::start(port).await,
            Err(error) => return Outcome::Fail(format!("no free port for redis: {error}")),
        };
        match started {
            Ok(started) => redis = Some(started),
            Err(error) => return Outcome::Fail(error.to_string()),
        }
    }

    let mut postgres = None;
    if scenario.storage == Some(StorageKind::Postgres) {
        let started = match free_port() {
            Ok(port) => Postgres::start(port).await,
            Err(error) => return Outcome::Fail(format!("no free port for postgres: {error}")),
        };
        match started {
            Ok(started) => postgres = Some(started),
            Err(error) => return Outcome::Fail(error.to_string()),
        }
    }
    let setup = ServerSetup {
        users: scenario.users.as_ref(),
        permissions: scenario.permissions.as_deref(),
        postgres_port: postgres.as_ref().map(Postgres::port),
        nodes: scenario.cluster.as_ref().map_or(1, |cluster| cluster.nodes),
        redis_port: redis.as_ref().map(Redis::port),
    };
    let outcome = match target.start(setup).await {
        Ok(mut server) => {
            let storage = postgres.as_ref().map(|postgres| (postgres, layout));
            let outcome = run_clients(scenario, kind, &mut server, storage).await;
            if let Outcome::Fail(reason) = &outcome {
                tracing::debug!(scenario = %scenario.name, %reason, log = %server.log_tail(), "scenario failed");
            }
            server.stop().await;
            outcome
        }
        Err(error) => Outcome::Fail(error.to_string()),
    };
    if let Some(mut postgres) = postgres {
        postgres.stop().await;
    }
    if let Some(mut redis) = redis {
        redis.stop().await;
    }
    outcome
}

/// Starts one driver per scenario client, runs the steps and stops the drivers.
async fn run_clients(
    scenario: &Scenario,
    kind: &DriverKind,
    server: &mut RunningServer,
    storage: Option<(&Postgres, Layout)>,
) -> Outcome {
    let mut cell = Cell {
        drivers: BTreeMap::new(),
        saved: BTreeMap::new(),
        storage,
        server,
    };
    let mut outcome = Outcome::Pass;
    for (index, client) in scenario.clients.iter().enumerate() {
        let node = scenario
            .cluster
            .as_ref()
            .map_or(0, |cluster| cluster.node_of(client));
        // Scenario parsing keeps every node index below the node count, and
        // the target started that many nodes.
        let Some(url) = cell.server.urls.get(node).cloned() else {
            outcome = Outcome::Fail(format!("no node {node} for client {client}"));
            break;
        };
        match Driver::start(kind.command_for(index), client, &url).await {
            Ok(driver) => {
                cell.drivers.insert(client.clone(), driver);
            }
            Err(error) => {
                outcome = Outcome::Fail(error.to_string());
                break;
            }
        }
    }
    if outcome == Outcome::Pass {
        outcome = run_steps(scenario, &mut cell).await;
    }
    for driver in cell.drivers.into_values() {
        driver.stop().await;
    }
    outcome
}

async fn run_steps(scenario: &Scenario, cell: &mut Cell<'_>) -> Outcome {
    for (index, step) in scenario.steps.iter().enumerate() {
        if let Err(reason) = run_step(step, cell).await {
            return Outcome::Fail(format!("step {}: {reason}", index + 1));
        }
    }
    Outcome::Pass
}

async fn run_step(step: &Step, cell: &mut Cell<'_>) -> Result<(), String> {
    match step {
        Step::Wait(duration) => {
            tokio::time::sleep(*duration).await;
            Ok(())
        }
        Step::Command(command) => {
            let driver = driver_of(&mut cell.drivers, &command.client)?;
            let id = driver.send(command.command.clone()).await?;
            finish_command(command, id, cell).await
        }
        Step::Together(commands) => {
            // Every command goes out before any reply is awaited, so the
            // drivers run them at the same time.
            let mut ids = Vec::with_capacity(commands.len());
            for command in commands {
                let driver = driver_of(&mut cell.drivers, &command.client)?;
                ids.push(driver.send(command.command.clone()).await?);
            }
            for (command, id) in commands.iter().zip(ids) {
                finish_command(command, id, cell).await?;
            }
            Ok(())
        }
        Step::Observe {
            client,
            pattern,
            absent,
            within,
        } => {
            let driver = driver_of(&mut cell.drivers, client)?;
            let found = driver.observe(pattern, *within).await?;
            match (found, absent) {
                (Some(_), false) | (None, true) => Ok(()),
                (Some(observation), true) => Err(format!(
                    "{client} observed {observation}, expected none like {pattern}"
                )),
                (None, false) => Err(format!(
                    "{client} observed nothing like {pattern} within {} ms; unmatched: {}",
                    within.as_millis(),
                    Value::Array(driver.unmatched())
                )),
            }
        }
        Step::StopNode(node) => cell.server.stop_node(*node).await,
        Step::StorageSet {
            name,
            version,
            data,
        } => {
            // Scenario parsing allows `storage-set` only with `storage`, and
            // the cell has a storage whenever the scenario sets one.
            let (postgres, layout) = cell
                .storage
                .ok_or("`storage-set` without a storage in this cell")?;
            postgres.write_record(layout, name, *version, data).await
        }
    }
}

/// Waits for the reply to a command sent with `id`, checks it, and saves its
/// result when the step sets `save`.
async fn finish_command(command: &CommandStep, id: u64, cell: &mut Cell<'_>) -> Result<(), String> {
    let driver = driver_of(&mut cell.drivers, &command.client)?;
    let actual = driver.reply(id, command.within).await?;
    check_reply(command, &actual, &cell.saved)?;
    if let Some(save) = &command.save {
        let result = actual.get("result").cloned().unwrap_or(Value::Null);
        cell.saved.insert(save.clone(), result);
    }
    Ok(())
}

fn driver_of<'a>(
    drivers: &'a mut BTreeMap<String, Driver>,
    client: &str,
) -> Result<&'a mut Driver, String> {
    // Scenario parsing checks every step's client against `clients`, and
    // every listed client has a driver once the steps run.
    drivers
        .get_mut(client)
        .ok_or_else(|| format!("no driver for client {client:?}"))
}

fn check_reply(
    step: &CommandStep,
    actual: &Value,
    saved: &BTreeMap<String, Value>,
) -> Result<(), String> {
    let error = actual.get("error").filter(|error| !error.is_null());
    let result = actual.get("result").unwrap_or(&Value::Null);
    let operation = step
        .command
        .get("op")
        .and_then(|op| op.as_str())
        .unwrap_or("?");
    let matches = match (&step.reply, error) {
        (ExpectedReply::Success, None) => true,
        (ExpectedReply::Result(value), None) => contains(result, value),
        (ExpectedReply::Equals(name), None) => saved.get(name) == Some(result),
        (ExpectedReply::Error(code), Some(error)) => error.as_str() == Some(code.as_str()),
        _ => false,
    };
    if matches {
        return Ok(());
    }
    let expected_text = match &step.reply {
        ExpectedReply::Success => "success".to_owned(),
        ExpectedReply::Result(value) => format!("result {value}"),
        ExpectedReply::Equals(name) => format!(
            "the result saved as {name} ({})",
            saved.get(name).unwrap_or(&Value::Null)
        ),
        ExpectedReply::Error(code) => format!("error {code}"),
    };
    Err(format!(
        "{} {operation}: expected {expected_text}, got {actual}",
        step.client
    ))
}
