//! The watch-scale section (issue 4's benchmark): many watchers on one member, multiplexed
//! over a few streams as real clients do, while one writer puts to the leader at a steady
//! rate. On a fresh cluster: note the follower's memory, run the `watch` workload with
//! every watcher on that follower, then read its peak memory (VmHWM: the watchers are
//! closed by the time the run returns, the peak remembers them). Delivery latency runs
//! from the writer's send to the watcher's receipt; every acknowledged put must reach
//! every watcher of its key exactly once.

use std::path::Path;

use crate::config::{Workload, WorkloadConfig};
use crate::error::BenchError;
use crate::outcome::OperationKind;

use super::Comparison;
use super::cluster::SystemKind;
use super::process_stats::memory_of;
use super::rows::WATCH_DRAIN_TIMEOUT_MS;
use super::summary::WatchScaleRun;

/// Runs the section `--repetitions` times on each system and adds it to the summary.
pub async fn run(comparison: &mut Comparison) {
    for repetition in 1..=comparison.options.repetitions {
        for system in SystemKind::ALTERNATION {
            let dir = comparison.cluster_dir("watch-scale", system, repetition);
            match run_once(comparison, system, repetition, &dir).await {
                Ok(run) => {
                    let figures = format!(
                        "p50 {:.2} ms, p99 {:.2} ms, {} of {} events, {} lost, RSS {} -> peak {} MiB",
                        run.p50_us as f64 / 1000.0,
                        run.p99_us as f64 / 1000.0,
                        run.events_received,
                        run.events_expected,
                        run.events_lost,
                        run.rss_before_bytes >> 20,
                        run.peak_rss_bytes >> 20
                    );
                    comparison.succeeded("watch-scale", system, repetition, &dir, &figures);
                    comparison.summary.watch_scale.push(run);
                }
                Err(error) => comparison.failed("watch-scale", system, repetition, &dir, &error),
            }
        }
    }
}

/// The `watch` workload of the section: every watcher on `follower_url`, the writer on
/// `leader_url`.
fn watch_scale_config(
    comparison_options: &super::CompareOptions,
    leader_url: &str,
    follower_url: &str,
) -> WorkloadConfig {
    let options = comparison_options;
    let workload = Workload::Watch {
        watchers: options.watch_watchers,
        streams: options.watch_streams,
        watched_keys: Some(options.watch_keys),
        drain_timeout_ms: WATCH_DRAIN_TIMEOUT_MS,
        writer_endpoint: Some(leader_url.to_owned()),
    };
    let mut config = WorkloadConfig::new(workload, vec![follower_url.to_owned()]);
    config.connections = options.watch_conns;
    config.rate_ops_per_sec = Some(options.watch_rate);
    config.duration_secs = Some(options.watch_duration_secs);
    config.key_count = options.key_count;
    config.value_bytes = options.value_bytes;
    config.seed = Some(options.seed);
    config
}

async fn run_once(
    comparison: &Comparison,
    system: SystemKind,
    repetition: usize,
    dir: &Path,
) -> Result<WatchScaleRun, BenchError> {
    let cluster = comparison.start_cluster(system, dir).await?;
    let endpoints = cluster.endpoints_leader_first().await;
    let follower = endpoints
        .get(1)
        .and_then(|url| cluster.member_at(url))
        .ok_or_else(|| BenchError::Cluster {
            system: system.name(),
            detail: "no follower to put the watchers on".to_owned(),
        })?;
    let member_memory = || {
        follower
            .pid
            .and_then(|pid| memory_of(pid).ok())
            .unwrap_or_default()
    };
    let (rss_before_bytes, _) = member_memory();
    let config = watch_scale_config(&comparison.options, &endpoints[0], &follower.client_url);
    let report = crate::run(config).await?;
    let (_, peak_rss_bytes) = member_memory();
    drop(cluster);
    let report_file = comparison.results.write_json(
        &format!("watch-scale/{}-rep{repetition}.json", system.name()),
        &report,
    )?;
    let latency = report
        .operation(OperationKind::WatchEvent)
        .map(|operation| operation.latency)
        .unwrap_or_default();
    let watch = report.watch.clone().unwrap_or_default();
    Ok(WatchScaleRun {
        system,
        repetition,
        member: follower.name,
        p50_us: latency.p50_us,
        p99_us: latency.p99_us,
        events_expected: watch.events_expected,
        events_received: watch.events_received,
        events_lost: watch.events_lost,
        events_duplicated_or_reordered: watch.events_duplicated + watch.events_reordered,
        errors: report.errors_total(),
        rss_before_bytes,
        peak_rss_bytes,
        report_file,
    })
}
