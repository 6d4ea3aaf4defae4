//! Every workload against one target, with one set of parameters.

use std::time::Duration;

use serde::Serialize;

use crate::conn::Dialect;
use crate::error::{BenchError, error_chain};
use crate::workloads::bulk::{self, BulkResult};
use crate::workloads::fanout::{self, FanoutParams, FanoutResult};
use crate::workloads::memory::{self, MemoryResult};
use crate::workloads::records::{self, RecordParams, RecordResult, Sharing};
use crate::workloads::rpc::{self, RpcParams, RpcResult};

/// Pause between workloads, so the server finishes closing the previous
/// workload's connections before the next one starts.
const PAUSE: Duration = Duration::from_secs(1);

/// One workload, to run it alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Memory per idle connection.
    Memory,
    /// Event fan-out.
    Fanout,
    /// Record updates on distinct records and on one shared record.
    Records,
    /// RPC round trips.
    Rpc,
    /// Bulk subscription and notify.
    Bulk,
}

/// The parameters of every workload.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteParams {
    /// Connection counts at which memory is read, increasing.
    pub memory_steps: Vec<usize>,
    /// Fan-out subscribers.
    pub fanout_subscribers: usize,
    /// Events the fan-out publisher emits.
    pub fanout_messages: usize,
    /// Events the fan-out publisher may have ahead of delivery.
    pub fanout_window: usize,
    /// Record writers.
    pub record_writers: usize,
    /// Subscribers of the written records.
    pub record_subscribers: usize,
    /// Updates each record writer sends.
    pub record_updates_per_writer: usize,
    /// Updates a writer may have in flight.
    pub record_window: usize,
    /// Records in the bulk subscription and the notify.
    pub bulk_records: usize,
    /// RPC providers.
    pub rpc_providers: usize,
    /// RPC callers.
    pub rpc_callers: usize,
    /// Requests each RPC caller makes.
    pub rpc_requests_per_caller: usize,
    /// Requests each RPC caller may have in flight.
    pub rpc_window: usize,
    /// Tasks that read the subscriber connections.
    pub reader_tasks: usize,
    /// Maximum time each load may run, in seconds.
    pub deadline_secs: u64,
}

impl SuiteParams {
    /// Returns the parameters of a full run.
    pub fn full() -> SuiteParams {
        SuiteParams {
            memory_steps: vec![1_000, 10_000],
            fanout_subscribers: 2_000,
            fanout_messages: 300,
            fanout_window: 4,
            record_writers: 8,
            record_subscribers: 100,
            record_updates_per_writer: 250,
            record_window: 2,
            bulk_records: 100_000,
            rpc_providers: 4,
            rpc_callers: 8,
            rpc_requests_per_caller: 5_000,
            rpc_window: 8,
            reader_tasks: 4,
            deadline_secs: 60,
        }
    }

    /// Small loads that finish in a second or two, to check that everything runs.
    pub fn smoke() -> SuiteParams {
        SuiteParams {
            memory_steps: vec![10, 50],
            fanout_subscribers: 20,
            fanout_messages: 20,
            fanout_window: 4,
            record_writers: 2,
            record_subscribers: 5,
            record_updates_per_writer: 20,
            record_window: 2,
            bulk_records: 1_000,
            rpc_providers: 2,
            rpc_callers: 2,
            rpc_requests_per_caller: 100,
            rpc_window: 4,
            reader_tasks: 2,
            deadline_secs: 10,
        }
    }

    fn deadline(&self) -> Duration {
        Duration::from_secs(self.deadline_secs)
    }

    /// Returns the fan-out parameters.
    pub fn fanout(&self) -> FanoutParams {
        FanoutParams {
            subscribers: self.fanout_subscribers,
            messages: self.fanout_messages,
            window: self.fanout_window,
            reader_tasks: self.reader_tasks,
            deadline: self.deadline(),
        }
    }

    fn records(&self) -> RecordParams {
        RecordParams {
            writers: self.record_writers,
            subscribers: self.record_subscribers,
            updates_per_writer: self.record_updates_per_writer,
            window: self.record_window,
            reader_tasks: self.reader_tasks,
            deadline: self.deadline(),
        }
    }

    fn rpc(&self) -> RpcParams {
        RpcParams {
            providers: self.rpc_providers,
            callers: self.rpc_callers,
            requests_per_caller: self.rpc_requests_per_caller,
            window: self.rpc_window,
            deadline: self.deadline(),
        }
    }
}

/// The results of every workload against one target. A workload that failed
/// has no result and an entry in `errors`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SuiteResult {
    /// Memory per idle connection; only when the server's pid is known.
    pub memory: Option<MemoryResult>,
    /// Event fan-out.
    pub fanout: Option<FanoutResult>,
    /// Record updates, one record per writer.
    pub records_distinct: Option<RecordResult>,
    /// Record updates, all writers on one record.
    pub records_shared: Option<RecordResult>,
    /// RPC round trips.
    pub rpc: Option<RpcResult>,
    /// Bulk subscription and notify.
    pub bulk: Option<BulkResult>,
    /// One line per failed workload.
    pub errors: Vec<String>,
}

/// Runs the workloads against the deepstream server at `url`, one after the
/// other: all of them, or only `only`. Memory is measured first, while the
/// server is fresh, and only when `pid` is given.
pub async fn run(
    url: &str,
    pid: Option<u32>,
    params: &SuiteParams,
    only: Option<Workload>,
) -> SuiteResult {
    let selected = |workload| only.is_none_or(|chosen| chosen == workload);
    let mut result = SuiteResult::default();
    if let (Some(pid), true) = (pid, selected(Workload::Memory)) {
        result.memory = step(
            &mut result.errors,
            "memory",
            memory::run(url, pid, &params.memory_steps),
        )
        .await;
    }
    if selected(Workload::Fanout) {
        run_fanout(url, params, &mut result).await;
    }
    if selected(Workload::Records) {
        run_records(url, params, &mut result).await;
    }
    if selected(Workload::Rpc) {
        result.rpc = step(&mut result.errors, "RPC", rpc::run(url, params.rpc())).await;
    }
    if selected(Workload::Bulk) {
        run_bulk(url, params, &mut result).await;
    }
    result
}

async fn run_fanout(url: &str, params: &SuiteParams, result: &mut SuiteResult) {
    result.fanout = step(
        &mut result.errors,
        "event fan-out",
        fanout::run(url, Dialect::Deepstream, params.fanout()),
    )
    .await;
}

async fn run_records(url: &str, params: &SuiteParams, result: &mut SuiteResult) {
    result.records_distinct = step(
        &mut result.errors,
        "record updates, distinct records",
        records::run(url, Sharing::Distinct, params.records()),
    )
    .await;
    result.records_shared = step(
        &mut result.errors,
        "record updates, one shared record",
        records::run(url, Sharing::Shared, params.records()),
    )
    .await;
}

async fn run_bulk(url: &str, params: &SuiteParams, result: &mut SuiteResult) {
    let bulk_timeout = params.deadline() * 2;
    result.bulk = step(
        &mut result.errors,
        "bulk subscription and notify",
        bulk::run(url, params.bulk_records, bulk_timeout),
    )
    .await;
    if let Some(error) = result.bulk.as_ref().and_then(|b| b.notify_error.clone()) {
        result.errors.push(format!("notify: {error}"));
    }
}

async fn step<T>(
    errors: &mut Vec<String>,
    name: &str,
    workload: impl Future<Output = Result<T, BenchError>>,
) -> Option<T> {
    tracing::info!(workload = name, "starting");
    let outcome = workload.await;
    tokio::time::sleep(PAUSE).await;
    match outcome {
        Ok(value) => Some(value),
        Err(error) => {
            let text = error_chain(&error);
            tracing::warn!(workload = name, error = %text, "workload failed");
            errors.push(format!("{name}: {text}"));
            None
        }
    }
}
