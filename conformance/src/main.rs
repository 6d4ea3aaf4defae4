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
    /// Comma-separated client columns: `rust`, `js`, a name given with
    /// --driver, or a mix such as `rust+js`, whose scenario clients take the
    /// listed drivers in turn.
    #[arg(long, value_delimiter = ',', default_value = "rust,js,rust+js,js+rust")]
    client: Vec<String>,
    /// Adds a driver for another client as NAME=COMMAND, such as
    /// `kotlin=java -jar driver.jar`; the command is split at spaces and must
    /// speak the driver protocol of conformance/README.md. Repeatable.
    #[arg(long = "driver", value_name = "NAME=COMMAND")]
    extra_drivers: Vec<String>,
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
    let drivers = drivers(&arguments.client, &arguments.extra_drivers, &workspace)?;
    let folder = arguments
        .scenarios
        .clone()
        .unwrap_or_else(|| workspace.join("conformance/scenarios"));
    let (all_names, scenarios) = load_scenarios(&folder, arguments.filter.as_deref())?;
    let expected = expected_failures(&arguments, &workspace, &all_names)?;
    check_installed(&targets, &scenarios, &workspace)?;
    check_url_targets(&targets).await?;
    let report_path = arguments
        .report
        .clone()
        .unwrap_or_else(|| workspace.join("target/conformance-report.md"));

    let name_width = scenarios
        .iter()
        .map(|scenario| scenario.name.chars().count())
        .max()
        .unwrap_or(0);
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
                print_cell(&cell, report::verdict(&cell, &expected), name_width);
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
    print_line(format_args!(
        "{} cells: {} passed, {failures} failed, {} expected failures, {} unexpected passes, \
         {} skipped; report in {}",
        cells.len(),
        count(Verdict::Pass),
        count(Verdict::ExpectedFail),
        count(Verdict::UnexpectedPass),
        count(Verdict::Skip),
        report_path.display()
    ));
    Ok(failures == 0)
}

/// Loads the scenario files of `folder` whose name contains `filter`, and
/// fails when none is left, so that a typo cannot turn a run green.
/// Returns the names of all scenarios of the folder and the selected ones.
fn load_scenarios(
    folder: &Path,
    filter: Option<&str>,
) -> Result<(Vec<String>, Vec<Scenario>), ConformanceError> {
    let mut names = Vec::new();
    let mut scenarios = Vec::new();
    for path in scenario_files(folder)? {
        let scenario = Scenario::load(&path)?;
        names.push(scenario.name.clone());
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
    Ok((names, scenarios))
}

/// Reads the expected failures and checks that each names a scenario of the
/// folder, so that a stale or misspelt entry is found. The default file may
/// be missing, but one given with --expected-failures must exist.
fn expected_failures(
    arguments: &Arguments,
    workspace: &Path,
    scenario_names: &[String],
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
    let entries = report::load_expected_failures(&path)?;
    if let Some(entry) = entries
        .iter()
        .find(|entry| !scenario_names.contains(&entry.scenario))
    {
        return Err(ConformanceError::InvalidExpectations {
            path,
            reason: format!("the entry for {} names no scenario file", entry.scenario),
        });
    }
    Ok(entries)
}

/// Checks that a server listens at each URL target, so that a wrong --url
/// stops the run instead of failing every cell.
async fn check_url_targets(targets: &[Target]) -> Result<(), ConformanceError> {
    for target in targets {
        if let Target::Url(url) = target
            && let Err(error) = tokio_tungstenite::connect_async(url.as_str()).await
        {
            return Err(ConformanceError::Server {
                target: "url".to_owned(),
                reason: format!(
                    "connecting to {url} failed: {error}; start the server or check --url"
                ),
            });
        }
    }
    Ok(())
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
    let uses_postgres = scenarios.iter().any(|scenario| scenario.storage.is_some());
    if starts_servers && uses_postgres {
        deepstream_conformance::postgres::check_installed()?;
    }
    let runs_node = targets
        .iter()
        .any(|target| matches!(target, Target::Node { .. }));
    if runs_node && uses_postgres {
        require_node_package(workspace, "storage-postgres")?;
    }
    // Only the Node.js target runs clusters, through Redis.
    let runs_clusters = targets
        .iter()
        .any(|target| matches!(target, Target::Node { .. }))
        && scenarios.iter().any(|scenario| scenario.cluster.is_some());
    if runs_clusters {
        deepstream_conformance::redis::check_installed()?;
        require_node_package(workspace, "clusternode-redis")?;
        require_node_package(workspace, "cache-redis")?;
    }
    Ok(())
}

/// Checks that the Node.js server's plugin `@deepstream/NAME` is installed.
fn require_node_package(workspace: &Path, name: &str) -> Result<(), ConformanceError> {
    let manifest = workspace.join(format!(
        "interop/node_modules/@deepstream/{name}/package.json"
    ));
    if manifest.is_file() {
        return Ok(());
    }
    Err(ConformanceError::Server {
        target: "node".to_owned(),
        reason: format!(
            "{} is missing: run `npm ci` in interop/",
            manifest.display()
        ),
    })
}

fn print_cell(cell: &Cell, verdict: Verdict, name_width: usize) {
    let detail = match &cell.outcome {
        Outcome::Pass => String::new(),
        Outcome::Fail(reason) | Outcome::Skip(reason) => format!("  {reason}"),
    };
    print_line(format_args!(
        "{:<name_width$} {:>7} → {:<5} {}{detail}",
        cell.scenario,
        cell.client,
        cell.target,
        verdict.label()
    ));
}

/// Prints a line on stdout, ignoring a closed pipe (as with `| head`) so
/// that the run goes on and still writes its report.
fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
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
                return Err(ConformanceError::Usage(format!(
                    "unknown target {other:?}: use `ours`, `node` or --url"
                )));
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

/// Builds the client columns: `rust`, `js`, drivers added with --driver, and
/// mixes of them joined by `+`.
fn drivers(
    names: &[String],
    extra_drivers: &[String],
    workspace: &Path,
) -> Result<Vec<DriverKind>, ConformanceError> {
    let mut extra = Vec::new();
    for definition in extra_drivers {
        let (name, command) = definition
            .split_once('=')
            .filter(|(name, command)| !name.is_empty() && !command.trim().is_empty())
            .ok_or_else(|| {
                ConformanceError::Usage(format!(
                    "invalid --driver {definition:?}: expected NAME=COMMAND"
                ))
            })?;
        if name.contains(['+', ',']) || ["rust", "js"].contains(&name) {
            return Err(ConformanceError::Usage(format!(
                "invalid --driver name {name:?}: it must not contain `+` or `,` or be rust or js"
            )));
        }
        let command: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        extra.push((name.to_owned(), command));
    }

    let mut drivers = Vec::new();
    for name in names {
        if name.is_empty() {
            continue;
        }
        let mut commands = Vec::new();
        for part in name.split('+') {
            match extra.iter().find(|(extra_name, _)| extra_name == part) {
                Some((_, command)) => commands.push(command.clone()),
                None => commands.push(driver_command(part, workspace)?),
            }
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
            "unknown client {other:?}: use `rust`, `js`, a name given with --driver, \
             or a mix such as `rust+js`"
        ))),
    }
}
