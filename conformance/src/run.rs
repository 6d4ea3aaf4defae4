//! Running one scenario in one cell of the matrix: a target and a driver kind.

use std::collections::BTreeMap;

use crate::driver::{Driver, DriverKind};
use crate::scenario::{ExpectedReply, Scenario, Step, contains};
use crate::target::Target;

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

/// Runs `scenario` with every client driven by `kind` against `target`.
pub async fn run_scenario(scenario: &Scenario, target: &Target, kind: &DriverKind) -> Outcome {
    if scenario.users.is_some() && matches!(target, Target::Url(_)) {
        return Outcome::Skip(
            "needs its own server config, which a URL target cannot take".to_owned(),
        );
    }
    let mut server = match target.start(scenario.users.as_ref()).await {
        Ok(server) => server,
        Err(error) => return Outcome::Fail(error.to_string()),
    };

    let mut drivers = BTreeMap::new();
    let mut outcome = Outcome::Pass;
    for client in &scenario.clients {
        match Driver::start(kind, client, &server.url).await {
            Ok(driver) => {
                drivers.insert(client.clone(), driver);
            }
            Err(error) => {
                outcome = Outcome::Fail(error.to_string());
                break;
            }
        }
    }
    if outcome == Outcome::Pass {
        outcome = run_steps(scenario, &mut drivers).await;
    }

    for driver in drivers.into_values() {
        driver.stop().await;
    }
    if let Outcome::Fail(reason) = &outcome {
        tracing::debug!(scenario = %scenario.name, %reason, log = %server.log_tail(), "scenario failed");
    }
    server.stop().await;
    outcome
}

async fn run_steps(scenario: &Scenario, drivers: &mut BTreeMap<String, Driver>) -> Outcome {
    for (index, step) in scenario.steps.iter().enumerate() {
        if let Err(reason) = run_step(step, drivers).await {
            return Outcome::Fail(format!("step {}: {reason}", index + 1));
        }
    }
    Outcome::Pass
}

async fn run_step(step: &Step, drivers: &mut BTreeMap<String, Driver>) -> Result<(), String> {
    match step {
        Step::Wait(duration) => {
            tokio::time::sleep(*duration).await;
            Ok(())
        }
        Step::Command {
            client,
            command,
            reply,
            within,
        } => {
            let driver = driver_of(drivers, client)?;
            let actual = driver.command(command.clone(), *within).await?;
            check_reply(client, command, reply, &actual)
        }
        Step::Observe {
            client,
            pattern,
            absent,
            within,
        } => {
            let driver = driver_of(drivers, client)?;
            let found = driver.observe(pattern, *within).await?;
            match (found, absent) {
                (Some(_), false) | (None, true) => Ok(()),
                (Some(observation), true) => Err(format!(
                    "{client} observed {observation}, expected none like {pattern}"
                )),
                (None, false) => Err(format!(
                    "{client} observed nothing like {pattern} within {} ms; unmatched: {}",
                    within.as_millis(),
                    serde_json::Value::Array(driver.unmatched())
                )),
            }
        }
    }
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
    client: &str,
    command: &serde_json::Map<String, serde_json::Value>,
    expected: &ExpectedReply,
    actual: &serde_json::Value,
) -> Result<(), String> {
    let error = actual.get("error").filter(|error| !error.is_null());
    let result = actual.get("result").unwrap_or(&serde_json::Value::Null);
    let operation = command.get("op").and_then(|op| op.as_str()).unwrap_or("?");
    let matches = match (expected, error) {
        (ExpectedReply::Success, None) => true,
        (ExpectedReply::Result(value), None) => contains(result, value),
        (ExpectedReply::Error(code), Some(error)) => error.as_str() == Some(code.as_str()),
        _ => false,
    };
    if matches {
        return Ok(());
    }
    let wanted = match expected {
        ExpectedReply::Success => "success".to_owned(),
        ExpectedReply::Result(value) => format!("result {value}"),
        ExpectedReply::Error(code) => format!("error {code}"),
    };
    Err(format!(
        "{client} {operation}: expected {wanted}, got {actual}"
    ))
}
