//! The workloads: how each prepares the store, what one operation of it does, and what it
//! adds to the report. Everything they share (connections, the schedule, the request
//! loops) lives outside this folder; each file here is one workload.

mod cas;
mod get;
mod lease_keepalive;
mod mixed;
mod populate;
mod put;
mod range;
mod txn_read;
mod watch;
mod watch_delivery;

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use crate::config::{Workload, WorkloadConfig};
use crate::connection_pool::ConnectionPool;
use crate::driver::{Operation, drive_clients};
use crate::error::BenchError;
use crate::keyspace::KeySpace;
use crate::report::Report;
use crate::schedule::Schedule;

/// Validates `config`, connects, prepares the store, runs the measured phase and reports.
pub async fn run(config: WorkloadConfig) -> Result<Report, BenchError> {
    config.validate()?;
    let key_space = KeySpace::from_config(&config)?;
    let pool = ConnectionPool::connect(&config).await?;
    if config.workload.needs_populated_keys() && !config.skip_populate {
        populate::populate_keys(&config, &pool, &key_space).await?;
    }
    match config.workload.clone() {
        Workload::Put => {
            let operations = (0..config.clients)
                .map(|client| put::PutOperation::new(&config, &pool, &key_space, client))
                .collect();
            run_request_loops(&config, operations).await
        }
        Workload::Get | Workload::GetSerializable => {
            let serializable = config.workload == Workload::GetSerializable;
            let operations = (0..config.clients)
                .map(|client| {
                    get::GetOperation::new(&config, &pool, &key_space, client, serializable)
                })
                .collect();
            run_request_loops(&config, operations).await
        }
        Workload::Range { range_keys } => {
            let operations = (0..config.clients)
                .map(|client| {
                    range::RangeOperation::new(&config, &pool, &key_space, client, range_keys)
                })
                .collect();
            run_request_loops(&config, operations).await
        }
        Workload::Mixed { read_ratio } => {
            let operations = (0..config.clients)
                .map(|client| {
                    mixed::MixedOperation::new(&config, &pool, &key_space, client, read_ratio)
                })
                .collect();
            run_request_loops(&config, operations).await
        }
        Workload::Cas { attempts_max } => {
            let operations = (0..config.clients)
                .map(|client| {
                    cas::CasOperation::new(&config, &pool, &key_space, client, attempts_max)
                })
                .collect();
            run_request_loops(&config, operations).await
        }
        Workload::TxnRead => {
            let operations = (0..config.clients)
                .map(|client| txn_read::TxnReadOperation::new(&config, &pool, &key_space, client))
                .collect();
            run_request_loops(&config, operations).await
        }
        Workload::Watch { .. } => watch::run(&config, &pool, &key_space).await,
        Workload::LeaseKeepAlive {
            leases,
            lease_ttl_secs,
        } => lease_keepalive::run(&config, &pool, leases, lease_ttl_secs).await,
    }
}

/// Writes every key of `config`'s key space once, as read workloads do before measuring,
/// and nothing else: for callers that prepare a store and measure it later.
pub async fn populate(config: &WorkloadConfig) -> Result<(), BenchError> {
    config.validate()?;
    let key_space = KeySpace::from_config(config)?;
    let pool = ConnectionPool::connect(config).await?;
    populate::populate_keys(config, &pool, &key_space).await
}

/// Runs the measured phase of a request-loop workload (one operation per client) and
/// reports it.
async fn run_request_loops<O: Operation>(
    config: &WorkloadConfig,
    operations: Vec<O>,
) -> Result<Report, BenchError> {
    let start = Instant::now();
    let measured = drive_clients(operations, schedule(config, start), start).await?;
    Ok(Report::new(
        config.clone(),
        measured.elapsed,
        &measured.recording,
    ))
}

/// The schedule of a run's measured phase, starting at `start`.
fn schedule(config: &WorkloadConfig, start: Instant) -> Arc<Schedule> {
    Arc::new(Schedule::new(
        start,
        config.duration_secs.map(Duration::from_secs),
        config.total_ops,
        config.rate_ops_per_sec,
    ))
}

/// The independent random choices a client makes; each gets its own generator so that a
/// seeded run does not correlate them (the keys a `mixed` client reads would otherwise
/// replay the keys it writes).
#[derive(Debug, Clone, Copy)]
enum RandomStream {
    ReadKeys = 0,
    WriteKeys = 1,
    OperationChoice = 2,
}

/// The random generator of `stream` for client `client`: seeded from `--seed` (so two runs
/// send the same keys in the same order) or from the OS.
fn client_rng(config: &WorkloadConfig, client: usize, stream: RandomStream) -> SmallRng {
    match config.seed {
        Some(seed) => {
            let client_stream = ((client as u64) << 8) | stream as u64;
            SmallRng::seed_from_u64(seed ^ client_stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        }
        None => SmallRng::from_os_rng(),
    }
}
