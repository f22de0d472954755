//! The store section: what the same writes cost each system, and whether history slows
//! reads. On a fresh cluster: populate `--key-count` keys and measure serializable gets;
//! put `--footprint-puts` times over those keys and read every member's memory and disk;
//! put on until `--history-revisions` puts in all; measure the same gets again (without
//! writing the keys once more, which would hide the history behind fresh versions).
//! Each read figure is the best of [`READ_RUNS`] runs.

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
    let cluster = comparison.start_cluster(system, dir).await?;
    let endpoints = cluster.endpoints_leader_first().await;
    let config = |workload| {
        let mut config = WorkloadConfig::new(workload, endpoints.clone());
        config.clients = CLIENTS;
        config.connections = endpoints.len();
        config.key_count = options.key_count;
        config.value_bytes = options.value_bytes;
        config.seed = Some(options.seed);
        config.duration_secs = Some(options.duration_secs);
        config
    };
    let writes = |puts| {
        let mut writes = config(Workload::Put);
        writes.duration_secs = None;
        writes.total_ops = Some(puts);
        writes
    };
    let save = |name: &str, report: &Report| {
        comparison.results.write_json(
            &format!("store/{}-rep{repetition}-{name}.json", system.name()),
            report,
        )
    };

    let read_runs = async |mut config: WorkloadConfig, name: &str| {
        let mut runs = Vec::with_capacity(READ_RUNS);
        for run in 1..=READ_RUNS {
            let report = crate::run(config.clone()).await?;
            save(&format!("{name}-{run}"), &report)?;
            // The first run wrote the keys (or the history did); the others read them.
            config.skip_populate = true;
            runs.push(report);
        }
        Ok::<_, BenchError>(runs)
    };
    let fresh_runs = read_runs(config(Workload::GetSerializable), "reads-fresh").await?;
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
    let mut after_config = config(Workload::GetSerializable);
    after_config.skip_populate = true;
    let after_runs = read_runs(after_config, "reads-after-history").await?;
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
