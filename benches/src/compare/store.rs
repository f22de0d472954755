//! The store section: what the same writes cost each system, and whether history slows
//! reads. On a fresh cluster: populate `--key-count` keys, put `--footprint-puts` times
//! over them and read every member's memory and disk, then put on until
//! `--history-revisions` puts in all. Beside it, a second cluster of the same system holds
//! only the populated keys: the fresh store. The same serializable gets then run against
//! the two in turn, fresh, history, fresh, history (without writing the keys once more,
//! which would hide the history behind fresh versions), so that whatever else loads the
//! machine meanwhile slows both figures alike: single runs on one unchanged store
//! differed by up to 1.25× from one ten-second run to the next. Each read figure is the
//! best of [`READ_RUNS`] runs.

use std::path::Path;

use crate::config::{Workload, WorkloadConfig};
use crate::error::BenchError;
use crate::outcome::OperationKind;
use crate::report::Report;

use super::Comparison;
use super::cluster::SystemKind;
use super::summary::StoreRun;

/// Concurrent clients of the section's reads and writes.
const CLIENTS: usize = 64;
/// Read runs per read figure; the fastest counts. Other load on a shared machine only
/// ever slows a run, and single runs on the same store differed by up to 1.8×, which
/// hid whatever history does to reads.
pub(super) const READ_RUNS: usize = 3;

/// Runs the section `--repetitions` times on each system and adds it to the summary.
pub async fn run(comparison: &mut Comparison) {
    for repetition in 1..=comparison.options.repetitions {
        for system in SystemKind::ALTERNATION {
            let dir = comparison.cluster_dir("store", system, repetition);
            match run_once(comparison, system, repetition, &dir).await {
                Ok(run) => {
                    let figures = format!(
                        "reads {:.0} -> {:.0} ops/s, writes {:.0} puts/s, RSS {} MiB",
                        run.reads_fresh_ops_per_sec,
                        run.reads_after_history_ops_per_sec,
                        run.history_puts_per_sec,
                        run.footprint
                            .iter()
                            .map(|node| (node.rss_bytes >> 20).to_string())
                            .collect::<Vec<_>>()
                            .join("/")
                    );
                    comparison.succeeded("store", system, repetition, &dir, &figures);
                    comparison.summary.store.push(run);
                }
                Err(error) => comparison.failed("store", system, repetition, &dir, &error),
            }
        }
    }
}

async fn run_once(
    comparison: &Comparison,
    system: SystemKind,
    repetition: usize,
    dir: &Path,
) -> Result<StoreRun, BenchError> {
    let options = &comparison.options;
    let config = |endpoints: &[String], workload| {
        let mut config = WorkloadConfig::new(workload, endpoints.to_vec());
        config.clients = CLIENTS;
        config.connections = endpoints.len();
        config.key_count = options.key_count;
        config.value_bytes = options.value_bytes;
        config.seed = Some(options.seed);
        config.duration_secs = Some(options.duration_secs);
        config
    };
    let save = |name: &str, report: &Report| {
        comparison.results.write_json(
            &format!("store/{}-rep{repetition}-{name}.json", system.name()),
            report,
        )
    };

    let cluster = comparison.start_cluster(system, dir).await?;
    let endpoints = cluster.endpoints_leader_first().await;
    crate::workload::populate(&config(&endpoints, Workload::GetSerializable)).await?;
    let writes = |puts| {
        let mut writes = config(&endpoints, Workload::Put);
        writes.duration_secs = None;
        writes.total_ops = Some(puts);
        writes
    };
    let footprint_writes = crate::run(writes(options.footprint_puts)).await?;
    save("footprint-writes", &footprint_writes)?;
    let footprint = cluster.footprint();
    let mut history_reports = vec![footprint_writes];
    let remaining = options.history_revisions - options.footprint_puts;
    if remaining > 0 {
        let history_writes = crate::run(writes(remaining)).await?;
        save("history-writes", &history_writes)?;
        history_reports.push(history_writes);
    }

    // Inside the history cluster's directory, so that it goes (or stays for its logs)
    // with it.
    let fresh_cluster = comparison
        .start_cluster(system, &dir.join("fresh-store"))
        .await?;
    let fresh_endpoints = fresh_cluster.endpoints_leader_first().await;
    crate::workload::populate(&config(&fresh_endpoints, Workload::GetSerializable)).await?;
    let reads = |endpoints: &[String]| {
        let mut reads = config(endpoints, Workload::GetSerializable);
        reads.skip_populate = true;
        reads
    };
    let mut fresh_runs = Vec::with_capacity(READ_RUNS);
    let mut after_runs = Vec::with_capacity(READ_RUNS);
    for run in 1..=READ_RUNS {
        let fresh = crate::run(reads(&fresh_endpoints)).await?;
        save(&format!("reads-fresh-{run}"), &fresh)?;
        fresh_runs.push(fresh);
        let after = crate::run(reads(&endpoints)).await?;
        save(&format!("reads-after-history-{run}"), &after)?;
        after_runs.push(after);
    }
    drop(fresh_cluster);
    drop(cluster);

    let throughput = |report: &Report, kind| {
        report
            .operation(kind)
            .map_or(0.0, |operation| operation.throughput_ops_per_sec)
    };
    let puts: u64 = history_reports
        .iter()
        .filter_map(|report| report.operation(OperationKind::Put))
        .map(|operation| operation.count)
        .sum();
    let write_secs: f64 = history_reports
        .iter()
        .map(|report| report.elapsed_secs)
        .sum();
    let fastest = |runs: &[Report]| {
        runs.iter()
            .map(|report| throughput(report, OperationKind::GetSerializable))
            .fold(0.0, f64::max)
    };
    let errors = fresh_runs
        .iter()
        .chain(&after_runs)
        .chain(&history_reports)
        .map(Report::errors_total)
        .sum();
    Ok(StoreRun {
        system,
        repetition,
        reads_fresh_ops_per_sec: fastest(&fresh_runs),
        history_puts_per_sec: if write_secs > 0.0 {
            puts as f64 / write_secs
        } else {
            0.0
        },
        footprint,
        reads_after_history_ops_per_sec: fastest(&after_runs),
        errors,
    })
}
