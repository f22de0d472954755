//! A load generator speaking the etcd v3 gRPC API, so that the same load runs against
//! etcd and against Vane and their numbers can be compared side by side.
//!
//! [`run`] takes a [`WorkloadConfig`] and returns a [`Report`]; the `vane-bench` binary is a
//! thin CLI over it, and [`compare`] (`vane-bench compare`, `make bench-compare`) starts
//! etcd and Vane clusters and calls it once per run. Where things live: `config` (every
//! tunable and limit), `connection_pool` (gRPC channels), `schedule` (closed and open
//! loop, when the run stops), `driver` (the client request loops), `workload/` (one file
//! per workload), `recording` and `histogram` (measuring), `report` and `table`
//! (presenting), `compare/` (the side-by-side comparison and its clusters).

#![warn(missing_docs)]

pub mod cli;
pub mod compare;
mod config;
mod connection_pool;
mod driver;
mod error;
mod histogram;
mod keyspace;
mod outcome;
mod recording;
mod report;
mod schedule;
mod table;
mod workload;

pub use config::{Workload, WorkloadConfig};
pub use error::BenchError;
pub use histogram::LatencySummary;
pub use outcome::OperationKind;
pub use report::{CasReport, OperationReport, Report, WatchReport, WatcherDelivery};

/// Runs one benchmark: validates `config`, connects to its endpoints, prepares the store
/// (pre-populated keys, leases, watchers), runs the measured phase and reports it.
///
/// Failed requests during the measured phase do not fail the run; they are counted in
/// [`Report::errors`]. An error here means the run could not produce a report at all.
pub async fn run(config: WorkloadConfig) -> Result<Report, BenchError> {
    workload::run(config).await
}
