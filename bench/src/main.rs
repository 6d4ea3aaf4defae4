//! `deepstream-bench`: side-by-side benchmarks of deepstream servers.
//!
//! `compare` starts our server, the official Node.js server and a bare
//! tokio-tungstenite broadcast server on free ports of 127.0.0.1, runs the
//! same workloads against each and writes a Markdown table, an SVG chart and
//! the raw numbers as JSON. `target` runs the workloads against any URL.
//! `ceiling-server` is the broadcast server that `compare` starts.
//!
//! The client side opens thousands of connections and reads them from a few
//! tasks; it speaks the protocol through `deepstream-protocol`. It is a
//! measuring tool, not a test: it reports numbers and fails only when a
//! workload cannot run.

mod ceiling;
mod conn;
mod error;
mod report;
mod servers;
mod stats;
mod suite;
mod workloads;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::conn::Dialect;
use crate::error::{BenchError, error_chain};
use crate::report::{Comparison, Machine};
use crate::servers::{ServerKind, ServerProcess};
use crate::suite::{SuiteParams, Workload};

/// Upper bound on the life of a server that `compare` starts; `timeout`
/// stops it even if this process dies first.
const SERVER_LIFETIME: Duration = Duration::from_secs(900);

#[derive(Debug, Parser)]
#[command(
    name = "deepstream-bench",
    version,
    about = "Side-by-side benchmarks of deepstream servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start our server, the Node.js server and the broadcast ceiling on
    /// 127.0.0.1, run every workload against each and write the results.
    Compare(CompareArgs),
    /// Run every workload against one running server and print JSON results.
    Target(TargetArgs),
    /// Serve the bare WebSocket broadcast server (the fan-out ceiling).
    CeilingServer(CeilingArgs),
}

#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// Tiny loads against our server only, to check that the benchmark runs.
    #[arg(long)]
    smoke: bool,
    /// Our `deepstream` binary.
    #[arg(long, default_value = "target/release/deepstream")]
    server: PathBuf,
    /// The Node.js server's entry script.
    #[arg(
        long,
        default_value = "interop/node_modules/@deepstream/server/dist/bin/deepstream.js"
    )]
    node_script: PathBuf,
    /// A storage plugin for the Node.js server that keeps records in memory.
    #[arg(long, default_value = "interop/test/helpers/node-memory-storage.cjs")]
    node_storage: PathBuf,
    /// Skip the Node.js server.
    #[arg(long)]
    skip_node: bool,
    /// Folder for results.md, results.svg and results.json. Without it, a
    /// smoke run prints the table only and a full run writes to bench/results.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Overrides the number of fan-out subscribers.
    #[arg(long)]
    fanout_subscribers: Option<usize>,
}

#[derive(Debug, clap::Args)]
struct TargetArgs {
    /// WebSocket URL of the server, such as ws://127.0.0.1:6020/deepstream.
    #[arg(long)]
    url: String,
    /// Process id of the server, to measure memory per connection from its VmRSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Tiny loads that finish in about ten seconds.
    #[arg(long)]
    smoke: bool,
    /// Run only this workload.
    #[arg(long, value_enum)]
    only: Option<Workload>,
    /// Connection counts at which to read the server's memory, such as 1000,10000.
    #[arg(long, value_delimiter = ',')]
    memory_steps: Option<Vec<usize>>,
}

#[derive(Debug, clap::Args)]
struct CeilingArgs {
    /// Port on 127.0.0.1 to listen on.
    #[arg(long)]
    port: u16,
    /// Seconds after which the server stops by itself.
    #[arg(long, default_value_t = 600)]
    lifetime_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Compare(args) => compare(args).await,
        Command::Target(args) => target(args).await,
        Command::CeilingServer(args) => {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
            ceiling::serve(addr, Duration::from_secs(args.lifetime_secs)).await
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("deepstream-bench: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft open-files limit to the hard limit, since the workloads
/// open up to 10 000 connections. Returns the soft limit in force afterwards.
fn raise_open_files_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum.unwrap_or(u64::MAX),
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-files limit");
            limit.current.unwrap_or(u64::MAX)
        }
    }
}

fn check_params(params: &SuiteParams, open_files: u64) -> Result<(), BenchError> {
    let steps = &params.memory_steps;
    if steps.contains(&0) || steps.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(BenchError::Server(format!(
            "invalid memory steps {steps:?}: expected increasing connection counts above 0, such as 1000,10000"
        )));
    }
    let largest = params.memory_steps.iter().copied().max().unwrap_or(0);
    let needed = largest.max(params.fanout_subscribers) as u64 + 100;
    if needed > open_files {
        return Err(BenchError::Server(format!(
            "the workloads need about {needed} open files but the limit is {open_files}: \
             raise it with `ulimit -n` in the shell that starts the benchmark"
        )));
    }
    Ok(())
}

async fn target(args: TargetArgs) -> Result<(), BenchError> {
    if !args.url.starts_with("ws://") {
        return Err(BenchError::Server(format!(
            "invalid --url {}: expected a ws:// URL such as ws://127.0.0.1:6020/deepstream",
            args.url
        )));
    }
    let open_files = raise_open_files_limit();
    let mut params = if args.smoke {
        SuiteParams::smoke()
    } else {
        SuiteParams::full()
    };
    if let Some(steps) = args.memory_steps {
        params.memory_steps = steps;
    }
    check_params(&params, open_files)?;
    if args.only == Some(Workload::Memory) && args.pid.is_none() {
        return Err(BenchError::Server(
            "--only memory needs --pid: the memory workload reads the server's VmRSS".to_owned(),
        ));
    }
    // One refused connection would otherwise fail every workload in turn.
    if let Err(error) = tokio_tungstenite::connect_async(args.url.as_str()).await {
        return Err(BenchError::Server(format!(
            "connecting to {} failed: {error}; start the server or check --url",
            args.url
        )));
    }
    let result = suite::run(&args.url, args.pid, &params, args.only).await;
    let json = serde_json::to_string_pretty(&result).unwrap_or_default();
    println!("{json}");
    if result.errors.is_empty() {
        Ok(())
    } else {
        Err(BenchError::Server(format!(
            "workloads failed: {}",
            result.errors.len()
        )))
    }
}

async fn compare(args: CompareArgs) -> Result<(), BenchError> {
    let open_files = raise_open_files_limit();
    let mut params = if args.smoke {
        SuiteParams::smoke()
    } else {
        SuiteParams::full()
    };
    if let Some(subscribers) = args.fanout_subscribers {
        params.fanout_subscribers = subscribers;
    }
    check_params(&params, open_files)?;
    let bench_binary =
        std::env::current_exe().map_err(BenchError::io("locating deepstream-bench"))?;

    let ours = run_against(
        ServerKind::Ours {
            binary: args.server.clone(),
        },
        &params,
    )
    .await?;
    let node = if args.smoke || args.skip_node {
        None
    } else {
        let kind = ServerKind::Node {
            script: args.node_script.clone(),
            storage_plugin: args.node_storage.clone(),
        };
        Some(run_against(kind, &params).await?)
    };
    let (ceiling, ceiling_error) = match run_ceiling(bench_binary, &params).await {
        Ok(result) => (Some(result), None),
        Err(error) => (None, Some(error_chain(&error))),
    };

    let failed = !ours.errors.is_empty() || ceiling_error.is_some();
    let comparison = Comparison {
        machine: Machine::read(open_files),
        params,
        ours,
        node,
        ceiling,
        ceiling_error,
    };
    let table = report::markdown(&comparison);
    println!("{table}");
    let out = args
        .out
        .or_else(|| (!args.smoke).then(|| PathBuf::from("bench/results")));
    if let Some(folder) = out {
        write_results(&folder, &comparison, &table)?;
    }
    if failed {
        return Err(BenchError::Server(
            "some workloads failed against our server or the ceiling; see the table".to_owned(),
        ));
    }
    Ok(())
}

async fn run_against(
    kind: ServerKind,
    params: &SuiteParams,
) -> Result<suite::SuiteResult, BenchError> {
    let label = kind.label();
    let mut server = ServerProcess::start(kind, SERVER_LIFETIME).await?;
    tracing::info!(server = label, "running the workloads");
    let result = suite::run(&server.url, Some(server.pid), params, None).await;
    if !result.errors.is_empty() {
        tracing::warn!(server = label, output = %server.log_tail(), "the server's last output");
    }
    server.stop().await;
    Ok(result)
}

async fn run_ceiling(
    binary: PathBuf,
    params: &SuiteParams,
) -> Result<workloads::fanout::FanoutResult, BenchError> {
    let mut server = ServerProcess::start(ServerKind::Ceiling { binary }, SERVER_LIFETIME).await?;
    tracing::info!("running the fan-out against the broadcast ceiling");
    let result = workloads::fanout::run(&server.url, Dialect::Broadcast, params.fanout()).await;
    server.stop().await;
    result
}

fn write_results(folder: &Path, comparison: &Comparison, table: &str) -> Result<(), BenchError> {
    std::fs::create_dir_all(folder)
        .map_err(BenchError::io(format!("creating {}", folder.display())))?;
    let json = serde_json::to_string_pretty(comparison).unwrap_or_default();
    for (name, content) in [
        ("results.md", table.to_owned()),
        ("results.svg", report::svg(comparison)),
        ("results.json", json + "\n"),
    ] {
        let path = folder.join(name);
        std::fs::write(&path, content)
            .map_err(BenchError::io(format!("writing {}", path.display())))?;
    }
    tracing::info!(folder = %folder.display(), "results written");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_steps_must_increase() {
        let mut params = SuiteParams::smoke();
        params.memory_steps = vec![50, 10];
        assert!(check_params(&params, 20_000).is_err());
        params.memory_steps = vec![0, 10];
        assert!(check_params(&params, 20_000).is_err());
        params.memory_steps = vec![10, 50];
        assert!(check_params(&params, 20_000).is_ok());
    }

    #[test]
    fn too_few_open_files_is_an_error() {
        let params = SuiteParams::full();
        let error = check_params(&params, 1024).unwrap_err();
        assert!(error.to_string().contains("ulimit -n"), "{error}");
    }
}
