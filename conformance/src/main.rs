//! `deepstream-conformance`: runs the scenario files for every target and
//! client pair, prints one line per cell, writes a Markdown report and exits
//! with status 1 when a failure is not listed in the expected-failures file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use deepstream_conformance::driver::{DriverKind, js_driver};
use deepstream_conformance::error::ConformanceError;
use deepstream_conformance::report::{self, Cell, Verdict};
use deepstream_conformance::run::{Outcome, run_scenario};
use deepstream_conformance::scenario::{Scenario, scenario_files};
use deepstream_conformance::target::Target;

/// The hidden first argument that makes this binary act as the Rust driver.
const DRIVE_RUST: &str = "--drive-rust";

/// Runs deepstream conformance scenarios against clients and servers.
#[derive(Debug, Parser)]
#[command(version)]
struct Arguments {
    /// Comma-separated targets: `ours` (the workspace's deepstream binary) and
    /// `node` (the official server from interop/node_modules).
    #[arg(long, value_delimiter = ',', default_value = "ours,node")]
    target: Vec<String>,
    /// A running server's WebSocket URL, added as the target `url`.
    /// Scenarios that need their own server config are skipped there.
    #[arg(long)]
    url: Option<String>,
    /// Comma-separated client columns: `rust`, `js`, or a mix such as
    /// `rust+js`, whose scenario clients take the listed drivers in turn.
    #[arg(long, value_delimiter = ',', default_value = "rust,js,rust+js,js+rust")]
    client: Vec<String>,
    /// Runs only the scenarios whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Our server binary [default: target/debug/deepstream in the workspace].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Folder of scenario files [default: conformance/scenarios].
    #[arg(long)]
    scenarios: Option<PathBuf>,
    /// Expected-failures file [default: conformance/expected-failures.yml].
    #[arg(long)]
    expected_failures: Option<PathBuf>,
    /// Path of the Markdown report [default: target/conformance-report.md in the workspace].
    #[arg(long)]
    report: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the tokio runtime failed: {error}");
            return ExitCode::FAILURE;
        }
    };

    if std::env::args().nth(1).as_deref() == Some(DRIVE_RUST) {
        return match runtime.block_on(deepstream_conformance::rust_driver::run()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: the Rust driver failed: {error}");
                ExitCode::FAILURE
            }
        };
    }

    let arguments = Arguments::parse();
    // On Ctrl-C the run is dropped, and with it the servers, PostgreSQL and
    // drivers of the current cell, which stop themselves on drop.
    let interruptible = async {
        tokio::select! {
            result = run(arguments) => Some(result),
            _ = tokio::signal::ctrl_c() => None,
        }
    };
    let Some(result) = runtime.block_on(interruptible) else {
        eprintln!("interrupted; the servers of the current cell were stopped");
        return ExitCode::from(130);
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs the matrix and returns whether it has no unexpected failure.
async fn run(arguments: Arguments) -> Result<bool, ConformanceError> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_owned();
    let targets = targets(&arguments, &workspace)?;
    let drivers = drivers(&arguments.client, &workspace)?;
    let folder = arguments
        .scenarios
        .clone()
        .unwrap_or_else(|| workspace.join("conformance/scenarios"));
    let scenarios = load_scenarios(&folder, arguments.filter.as_deref())?;
    let expected = expected_failures(&arguments, &workspace)?;
    check_installed(&targets, &scenarios, &workspace)?;
    let report_path = arguments
        .report
        .clone()
        .unwrap_or_else(|| workspace.join("target/conformance-report.md"));

    let mut cells = Vec::new();
    let mut columns = Vec::new();
    for target in &targets {
        for driver in &drivers {
            columns.push((target.label().to_owned(), driver.label.clone()));
            for scenario in &scenarios {
                let outcome = run_scenario(scenario, target, driver).await;
                let cell = Cell {
                    scenario: scenario.name.clone(),
                    target: target.label().to_owned(),
                    client: driver.label.clone(),
                    outcome,
                };
                print_cell(&cell, report::verdict(&cell, &expected));
                cells.push(cell);
            }
        }
    }

    let names: Vec<String> = scenarios
        .iter()
        .map(|scenario| scenario.name.clone())
        .collect();
    let text = report::markdown(&names, &columns, &cells, &expected);
    if let Some(parent) = report_path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| ConformanceError::Io {
            action: format!("creating {}", parent.display()),
            source,
        })?;
    }
    std::fs::write(&report_path, text).map_err(|source| ConformanceError::Io {
        action: format!("writing {}", report_path.display()),
        source,
    })?;

    let count = |verdict: Verdict| {
        cells
            .iter()
            .filter(|cell| report::verdict(cell, &expected) == verdict)
            .count()
    };
    let failures = count(Verdict::Fail);
    println!(
        "{} cells: {} passed, {failures} failed, {} expected failures, {} unexpected passes, \
         {} skipped; report in {}",
        cells.len(),
        count(Verdict::Pass),
        count(Verdict::ExpectedFail),
        count(Verdict::UnexpectedPass),
        count(Verdict::Skip),
        report_path.display()
    );
    Ok(failures == 0)
}

/// Loads the scenario files of `folder` whose name contains `filter`, and
/// fails when none is left, so that a typo cannot turn a run green.
fn load_scenarios(folder: &Path, filter: Option<&str>) -> Result<Vec<Scenario>, ConformanceError> {
    let mut scenarios = Vec::new();
    for path in scenario_files(folder)? {
        let scenario = Scenario::load(&path)?;
        if filter.is_none_or(|filter| scenario.name.contains(filter)) {
            scenarios.push(scenario);
        }
    }
    if scenarios.is_empty() {
        let reason = match filter {
            Some(filter) => format!(
                "no scenario in {} has a name that contains {filter:?}",
                folder.display()
            ),
            None => format!("{} has no scenario files (*.yml)", folder.display()),
        };
        return Err(ConformanceError::Usage(reason));
    }
    Ok(scenarios)
}

/// Reads the expected failures. The default file may be missing, but one
/// given with --expected-failures must exist.
fn expected_failures(
    arguments: &Arguments,
    workspace: &Path,
) -> Result<Vec<report::ExpectedFailure>, ConformanceError> {
    let path = match &arguments.expected_failures {
        Some(path) if !path.is_file() => {
            return Err(ConformanceError::Usage(format!(
                "--expected-failures {} is not a file",
                path.display()
            )));
        }
        Some(path) => path.clone(),
        None => workspace.join("conformance/expected-failures.yml"),
    };
    report::load_expected_failures(&path)
}

/// Checks before the first cell that the servers and PostgreSQL the run
/// needs are installed, so that a missing program stops the run with status
/// 2 instead of failing every cell.
fn check_installed(
    targets: &[Target],
    scenarios: &[Scenario],
    workspace: &Path,
) -> Result<(), ConformanceError> {
    for target in targets {
        target.check_installed()?;
    }
    let starts_servers = targets
        .iter()
        .any(|target| !matches!(target, Target::Url(_)));
    if starts_servers && scenarios.iter().any(|scenario| scenario.storage.is_some()) {
        deepstream_conformance::postgres::check_installed()?;
    }
    // Only the Node.js target runs clusters, through Redis.
    let runs_clusters = targets
        .iter()
        .any(|target| matches!(target, Target::Node { .. }))
        && scenarios.iter().any(|scenario| scenario.cluster.is_some());
    if runs_clusters {
        deepstream_conformance::redis::check_installed()?;
        let plugin =
            workspace.join("interop/node_modules/@deepstream/clusternode-redis/package.json");
        if !plugin.is_file() {
            return Err(ConformanceError::Server {
                target: "node".to_owned(),
                reason: format!("{} is missing: run `npm ci` in interop/", plugin.display()),
            });
        }
    }
    Ok(())
}

fn print_cell(cell: &Cell, verdict: Verdict) {
    let detail = match &cell.outcome {
        Outcome::Pass => String::new(),
        Outcome::Fail(reason) | Outcome::Skip(reason) => format!("  {reason}"),
    };
    println!(
        "{:<28} {:>7} → {:<5} {}{detail}",
        cell.scenario,
        cell.client,
        cell.target,
        verdict.label()
    );
}

fn targets(arguments: &Arguments, workspace: &Path) -> Result<Vec<Target>, ConformanceError> {
    let mut targets = Vec::new();
    for name in &arguments.target {
        let target = match name.as_str() {
            "ours" => Target::Ours {
                binary: arguments
                    .server_bin
                    .clone()
                    .unwrap_or_else(|| workspace.join("target/debug/deepstream")),
            },
            "node" => Target::Node {
                script: workspace
                    .join("interop/node_modules/@deepstream/server/dist/bin/deepstream.js"),
            },
            "" => continue,
            other => {
                return Err(ConformanceError::Server {
                    target: other.to_owned(),
                    reason: "unknown target: use `ours`, `node` or --url".to_owned(),
                });
            }
        };
        targets.push(target);
    }
    if let Some(url) = &arguments.url {
        if !url.starts_with("ws://") {
            return Err(ConformanceError::Server {
                target: "url".to_owned(),
                reason: format!("invalid --url {url:?}: expected a ws:// URL"),
            });
        }
        targets.push(Target::Url(url.clone()));
    }
    if targets.is_empty() {
        return Err(ConformanceError::Usage(
            "no target: pass --target ours,node, --url, or both".to_owned(),
        ));
    }
    for (index, target) in targets.iter().enumerate() {
        if targets[..index]
            .iter()
            .any(|earlier| earlier.label() == target.label())
        {
            return Err(ConformanceError::Usage(format!(
                "target {} is named twice",
                target.label()
            )));
        }
    }
    Ok(targets)
}

/// Builds the client columns: `rust`, `js`, and mixes of them joined by `+`.
fn drivers(names: &[String], workspace: &Path) -> Result<Vec<DriverKind>, ConformanceError> {
    let mut drivers = Vec::new();
    for name in names {
        if name.is_empty() {
            continue;
        }
        let mut commands = Vec::new();
        for part in name.split('+') {
            commands.push(driver_command(part, workspace)?);
        }
        if drivers
            .iter()
            .any(|driver: &DriverKind| &driver.label == name)
        {
            return Err(ConformanceError::Usage(format!(
                "client column {name} is named twice"
            )));
        }
        drivers.push(DriverKind {
            label: name.clone(),
            commands,
        });
    }
    if drivers.is_empty() {
        return Err(ConformanceError::Usage(
            "no client: pass --client with rust, js or a mix such as rust+js".to_owned(),
        ));
    }
    Ok(drivers)
}

fn driver_command(name: &str, workspace: &Path) -> Result<Vec<String>, ConformanceError> {
    match name {
        "rust" => {
            let exe = std::env::current_exe().map_err(|source| ConformanceError::Io {
                action: "finding this program's path".to_owned(),
                source,
            })?;
            Ok(vec![exe.display().to_string(), DRIVE_RUST.to_owned()])
        }
        "js" => js_driver(workspace),
        other => Err(ConformanceError::Usage(format!(
            "unknown client {other:?}: use `rust`, `js`, or a mix such as `rust+js`"
        ))),
    }
}
