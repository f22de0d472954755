//! The workload section: each row, on each system, `--repetitions` times, alternating
//! etcd and Vane, each run on a fresh cluster with the leader's endpoint first.

use crate::error::BenchError;

use super::Comparison;
use super::cluster::SystemKind;
use super::process_stats::cpu_seconds_of;
use super::rows::{WorkloadRow, workload_rows};
use super::summary::{WorkloadComparison, WorkloadRun};

/// Runs every row `--only` picks and adds them to the summary.
pub async fn run(comparison: &mut Comparison) {
    let rows: Vec<WorkloadRow> = workload_rows()
        .into_iter()
        .filter(|row| comparison.options.runs_row(row.name))
        .collect();
    for row in rows {
        let mut row_comparison = WorkloadComparison {
            row: row.name.to_owned(),
            description: row.description.to_owned(),
            targets: row.targets.to_vec(),
            runs: Vec::new(),
        };
        for repetition in 1..=comparison.options.repetitions {
            for system in SystemKind::ALTERNATION {
                let dir = comparison.cluster_dir(row.name, system, repetition);
                match run_once(comparison, &row, system, repetition, &dir).await {
                    Ok(run) => {
                        let figures = format!(
                            "{:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                            run.throughput_ops_per_sec,
                            run.p50_us as f64 / 1000.0,
                            run.p99_us as f64 / 1000.0,
                            run.errors
                        );
                        comparison.succeeded(row.name, system, repetition, &dir, &figures);
                        row_comparison.runs.push(run);
                    }
                    Err(error) => comparison.failed(row.name, system, repetition, &dir, &error),
                }
            }
        }
        comparison.summary.workloads.push(row_comparison);
    }
}

/// One run of `row` on a fresh cluster of `system` in `dir`.
async fn run_once(
    comparison: &Comparison,
    row: &WorkloadRow,
    system: SystemKind,
    repetition: usize,
    dir: &std::path::Path,
) -> Result<WorkloadRun, BenchError> {
    let cluster = comparison.start_cluster(system, dir).await?;
    let endpoints = cluster.endpoints_leader_first().await;
    let mut config = row.config(endpoints, &comparison.options);
    // Populated first, so the CPU the members use below is the measured phase's alone.
    if config.workload.needs_populated_keys() {
        crate::workload::populate(&config).await?;
        config.skip_populate = true;
    }
    let generator = std::process::id();
    let cpu_before = cluster.cpu_seconds();
    let generator_before = cpu_seconds_of(generator).unwrap_or(f64::NAN);
    let report = crate::run(config).await?;
    let cpu_seconds = cluster.cpu_seconds() - cpu_before;
    let generator_seconds = cpu_seconds_of(generator).unwrap_or(f64::NAN) - generator_before;
    let nodes = cluster.footprint();
    drop(cluster);
    let report_file = comparison.results.write_json(
        &format!(
            "workloads/{}/{}-rep{repetition}.json",
            row.name,
            system.name()
        ),
        &report,
    )?;
    let (throughput_ops_per_sec, p50_us, p99_us) = row.figures_of(&report);
    let operations = throughput_ops_per_sec * report.elapsed_secs;
    let per_op = |seconds: f64| {
        (operations > 0.0 && seconds.is_finite()).then(|| seconds * 1e6 / operations)
    };
    let watch_anomalies = report.watch.as_ref().map_or(0, |watch| {
        watch.events_lost + watch.events_duplicated + watch.events_reordered
    });
    Ok(WorkloadRun {
        system,
        repetition,
        throughput_ops_per_sec,
        p50_us,
        p99_us,
        errors: report.errors_total() + watch_anomalies,
        cpu_us_per_op: per_op(cpu_seconds),
        generator_cpu_us_per_op: per_op(generator_seconds),
        nodes,
        report_file,
    })
}
