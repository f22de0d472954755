//! What a comparison measured: every run's figures (kept, so the JSON can be re-read and
//! re-summarised), and the tables of medians and ratios Vane/etcd printed at the end.
//! Medians are over repetitions; a ratio compares the two systems' medians.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::table::render_table;

use super::cluster::{Binaries, SystemKind};
use super::machine::MachineDescription;
use super::options::CompareOptions;
use super::process_stats::NodeFootprint;
use super::rows::Target;

/// Bytes in a mebibyte, for the tables.
const MIB: f64 = 1024.0 * 1024.0;
/// Issue 9's goal for Vane's resident memory per member after the same writes, as a
/// ratio to etcd's.
pub const RSS_RATIO_TARGET: f64 = 0.5;
/// Issue 9's goal for Vane's reads after history, as a ratio to its fresh-store reads.
pub const READS_AFTER_HISTORY_TARGET: f64 = 0.95;
/// Issue 9's goal for watch delivery p99 with many watchers, as a ratio to etcd's.
pub const WATCH_P99_RATIO_TARGET: f64 = 1.0;

/// Everything one comparison measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareSummary {
    /// The machine and binaries.
    pub machine: MachineDescription,
    /// What was asked for.
    pub options: CompareOptions,
    /// The binaries that ran.
    pub binaries: Binaries,
    /// Where every run's JSON report is.
    pub results_dir: PathBuf,
    /// One entry per workload row.
    pub workloads: Vec<WorkloadComparison>,
    /// Runs of the store section.
    pub store: Vec<StoreRun>,
    /// Runs of the recovery section.
    pub recovery: Vec<RecoveryRun>,
    /// Runs of the watch-scale section.
    pub watch_scale: Vec<WatchScaleRun>,
    /// Runs that produced no figures, and why.
    pub failures: Vec<RunFailure>,
}

/// A run that failed as a whole (a cluster that did not start, a setup step that failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFailure {
    /// The row or section.
    pub what: String,
    /// Which system.
    pub system: SystemKind,
    /// Which repetition, from 1.
    pub repetition: usize,
    /// The error.
    pub error: String,
    /// The cluster directory, kept for its logs.
    pub kept_dir: Option<PathBuf>,
}

/// One workload row's runs on both systems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadComparison {
    /// The row's name.
    pub row: String,
    /// What the row runs.
    pub description: String,
    /// Issue 9's goals for it.
    pub targets: Vec<Target>,
    /// Every run, both systems, in the order they ran.
    pub runs: Vec<WorkloadRun>,
}

/// One run of a workload row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadRun {
    /// Which system.
    pub system: SystemKind,
    /// Which repetition, from 1.
    pub repetition: usize,
    /// The row's throughput (see the row: events/s for watch rows).
    pub throughput_ops_per_sec: f64,
    /// Median latency of the row's operation.
    pub p50_us: u64,
    /// 99th percentile latency of the row's operation.
    pub p99_us: u64,
    /// Failed requests, plus lost, duplicated or reordered events of watch rows.
    pub errors: u64,
    /// CPU time all members used in the measured phase, per operation of the row (per
    /// event for watch rows), in microseconds; `None` with no operation or from an
    /// older summary. On a machine the load generator shares, it bounds throughput.
    #[serde(default)]
    pub cpu_us_per_op: Option<f64>,
    /// CPU time the load generator (this process) used in the same phase, per operation,
    /// in microseconds: what the members could not have, on a machine they share with it.
    #[serde(default)]
    pub generator_cpu_us_per_op: Option<f64>,
    /// Every member's memory and disk at the end of the run.
    pub nodes: Vec<NodeFootprint>,
    /// The run's report, relative to the results directory.
    pub report_file: String,
}

/// One run of the store section: memory and disk after the same writes, reads before
/// and after history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreRun {
    /// Which system.
    pub system: SystemKind,
    /// Which repetition, from 1.
    pub repetition: usize,
    /// Serializable gets per second on the freshly populated store.
    pub reads_fresh_ops_per_sec: f64,
    /// Puts per second while writing the history.
    pub history_puts_per_sec: f64,
    /// Every member's memory and disk after the footprint puts.
    pub footprint: Vec<NodeFootprint>,
    /// Serializable gets per second after all the history was written.
    pub reads_after_history_ops_per_sec: f64,
    /// Failed requests over all the section's runs.
    pub errors: u64,
}

/// One run of the recovery section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryRun {
    /// Which system.
    pub system: SystemKind,
    /// Which repetition, from 1.
    pub repetition: usize,
    /// Distinct keys in the store.
    pub keys: u64,
    /// The member killed and restarted (a follower).
    pub member: String,
    /// From starting the killed member until it served the last write.
    pub serving_after_secs: f64,
    /// Every member's memory and disk once it served again.
    pub nodes_after: Vec<NodeFootprint>,
}

/// One run of the watch-scale section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchScaleRun {
    /// Which system.
    pub system: SystemKind,
    /// Which repetition, from 1.
    pub repetition: usize,
    /// The member the watchers were on (a follower).
    pub member: String,
    /// Median delivery latency, from the writer's send to the watcher's receipt.
    pub p50_us: u64,
    /// 99th percentile delivery latency.
    pub p99_us: u64,
    /// Events the watchers should have received.
    pub events_expected: u64,
    /// Events they received.
    pub events_received: u64,
    /// Acknowledged puts some watcher never received, summed over watchers.
    pub events_lost: u64,
    /// Events received twice or out of order, summed over watchers.
    pub events_duplicated_or_reordered: u64,
    /// Failed requests and failed streams.
    pub errors: u64,
    /// The member's resident memory before the watchers were created.
    pub rss_before_bytes: u64,
    /// The member's peak resident memory by the end of the run.
    pub peak_rss_bytes: u64,
    /// The run's report, relative to the results directory.
    pub report_file: String,
}

/// The median of `values`; `None` if there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().filter(|value| !value.is_nan()).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    })
}

/// `vane / etcd`, if both exist and etcd's is not zero.
fn ratio(vane: Option<f64>, etcd: Option<f64>) -> Option<f64> {
    match (vane, etcd) {
        (Some(vane), Some(etcd)) if etcd != 0.0 => Some(vane / etcd),
        _ => None,
    }
}

/// The median over the runs of `system` of `figure`.
fn median_of<R>(
    runs: &[R],
    system: SystemKind,
    system_of: impl Fn(&R) -> SystemKind,
    figure: impl Fn(&R) -> f64,
) -> Option<f64> {
    median(
        runs.iter()
            .filter(|run| system_of(run) == system)
            .map(figure),
    )
}

fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, count) = values
        .into_iter()
        .fold((0.0, 0usize), |(sum, count), value| {
            (sum + value, count + 1)
        });
    if count == 0 { 0.0 } else { sum / count as f64 }
}

fn max(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, f64::max)
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.decimals$}"))
}

fn millis(micros: Option<f64>) -> String {
    cell(micros.map(|us| us / 1000.0), 2)
}

fn mib(bytes: Option<f64>) -> String {
    cell(bytes.map(|bytes| bytes / MIB), 1)
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "n/a",
    }
}

impl WorkloadComparison {
    fn median(&self, system: SystemKind, figure: impl Fn(&WorkloadRun) -> f64) -> Option<f64> {
        median_of(&self.runs, system, |run| run.system, figure)
    }

    fn errors(&self, system: SystemKind) -> u64 {
        self.runs
            .iter()
            .filter(|run| run.system == system)
            .map(|run| run.errors)
            .sum()
    }

    /// The row of the workload table.
    fn table_row(&self) -> Vec<String> {
        let throughput = |system| self.median(system, |run| run.throughput_ops_per_sec);
        let p50 = |system| self.median(system, |run| run.p50_us as f64);
        let p99 = |system| self.median(system, |run| run.p99_us as f64);
        let cpu = |system| self.median(system, |run| run.cpu_us_per_op.unwrap_or(f64::NAN));
        let generator_cpu = |system| {
            self.median(system, |run| {
                run.generator_cpu_us_per_op.unwrap_or(f64::NAN)
            })
        };
        let peak_rss = |system| {
            self.median(system, |run| {
                max(run.nodes.iter().map(|node| node.peak_rss_bytes as f64))
            })
        };
        let (vane, etcd) = (SystemKind::Vane, SystemKind::Etcd);
        let throughput_ratio = ratio(throughput(vane), throughput(etcd));
        let p99_ratio = ratio(p99(vane), p99(etcd));
        let targets: Vec<String> = self
            .targets
            .iter()
            .map(|target| {
                let met = throughput_ratio
                    .zip(p99_ratio)
                    .map(|(throughput, p99)| target.is_met(throughput, p99));
                format!("{} {}", target.label(), verdict(met))
            })
            .collect();
        vec![
            self.row.clone(),
            cell(throughput(vane), 0),
            cell(throughput(etcd), 0),
            cell(throughput_ratio, 2),
            millis(p50(vane)),
            millis(p50(etcd)),
            cell(ratio(p50(vane), p50(etcd)), 2),
            millis(p99(vane)),
            millis(p99(etcd)),
            cell(p99_ratio, 2),
            cell(cpu(vane), 0),
            cell(cpu(etcd), 0),
            cell(ratio(cpu(vane), cpu(etcd)), 2),
            format!(
                "{}/{}",
                cell(generator_cpu(vane), 0),
                cell(generator_cpu(etcd), 0)
            ),
            mib(peak_rss(vane)),
            mib(peak_rss(etcd)),
            format!("{}/{}", self.errors(vane), self.errors(etcd)),
            targets.join(", "),
        ]
    }
}

/// A figure of one of the sections, with both systems' medians.
struct FigureRow {
    label: String,
    vane: Option<f64>,
    etcd: Option<f64>,
    shown_as: fn(Option<f64>) -> String,
    /// The goal and whether the figures meet it.
    target: Option<(String, Option<bool>)>,
}

impl FigureRow {
    fn cells(&self) -> Vec<String> {
        vec![
            self.label.clone(),
            (self.shown_as)(self.vane),
            (self.shown_as)(self.etcd),
            cell(ratio(self.vane, self.etcd), 2),
            self.target
                .as_ref()
                .map(|(label, met)| format!("{label} {}", verdict(*met)))
                .unwrap_or_default(),
        ]
    }
}

fn render_figures(rows: &[FigureRow]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(FigureRow::cells).collect();
    render_table(&["figure", "vane", "etcd", "vane/etcd", "target"], &cells)
}

fn whole(value: Option<f64>) -> String {
    cell(value, 0)
}

fn seconds(value: Option<f64>) -> String {
    cell(value, 2)
}

impl CompareSummary {
    /// The tables printed at the end of a comparison.
    pub fn to_table(&self) -> String {
        let options = &self.options;
        let mut text = format!(
            "Vane vs etcd, side by side: {}\n",
            self.machine.summary_line()
        );
        let _ = writeln!(
            text,
            "etcd: {} | vaned: {}{}",
            self.machine.etcd_version,
            self.machine.vaned_path,
            if self.machine.vaned_is_debug_build {
                " (DEBUG BUILD: figures are not representative)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            text,
            "3 members each, {} thread(s) per member (vaned --worker-threads, etcd GOMAXPROCS), fsync on, election timeout {} ms; a fresh cluster per run; runs alternate etcd, vane; medians of {} runs; values {} B; results in {}",
            self.machine.threads_per_member,
            options.election_timeout_ms,
            options.repetitions,
            options.value_bytes,
            self.results_dir.display()
        );
        if !self.workloads.is_empty() {
            text.push_str(&self.workloads_table());
        }
        if !self.store.is_empty() {
            text.push_str(&self.store_table());
        }
        if !self.recovery.is_empty() {
            text.push_str(&self.recovery_table());
        }
        if !self.watch_scale.is_empty() {
            text.push_str(&self.watch_scale_table());
        }
        if !self.failures.is_empty() {
            let _ = writeln!(text, "\nruns that failed ({}):", self.failures.len());
            for failure in &self.failures {
                let _ = writeln!(
                    text,
                    "  {} {} rep {}: {}{}",
                    failure.what,
                    failure.system.name(),
                    failure.repetition,
                    failure.error,
                    failure
                        .kept_dir
                        .as_ref()
                        .map(|dir| format!(" (logs kept in {})", dir.display()))
                        .unwrap_or_default()
                );
            }
        }
        text
    }

    fn workloads_table(&self) -> String {
        let header = [
            "workload",
            "vane ops/s",
            "etcd ops/s",
            "x",
            "vane p50 ms",
            "etcd p50 ms",
            "x",
            "vane p99 ms",
            "etcd p99 ms",
            "x",
            "vane CPU us/op",
            "etcd CPU us/op",
            "x",
            "gen CPU v/e",
            "vane RSS MiB",
            "etcd RSS MiB",
            "err v/e",
            "target",
        ];
        let rows: Vec<Vec<String>> = self
            .workloads
            .iter()
            .map(WorkloadComparison::table_row)
            .collect();
        let mut text = format!(
            "\nworkloads ({} s each; x = vane/etcd; CPU = all members' CPU time in the measured phase per operation, gen CPU = the load generator's; RSS = peak of the busiest member; err = failed requests, and lost/duplicated/reordered events for watch rows)\n",
            self.options.duration_secs
        );
        text.push_str(&render_table(&header, &rows));
        for workload in &self.workloads {
            let _ = writeln!(text, "  {}: {}", workload.row, workload.description);
        }
        text
    }

    fn store_table(&self) -> String {
        let runs = &self.store;
        let figure = |system, value: &dyn Fn(&StoreRun) -> f64| {
            median_of(runs, system, |run| run.system, value)
        };
        let both = |value: &dyn Fn(&StoreRun) -> f64| {
            (
                figure(SystemKind::Vane, value),
                figure(SystemKind::Etcd, value),
            )
        };
        let rss_mean =
            |run: &StoreRun| mean(run.footprint.iter().map(|node| node.rss_bytes as f64));
        let (rss_vane, rss_etcd) = both(&rss_mean);
        let rss_met = ratio(rss_vane, rss_etcd).map(|ratio| ratio <= RSS_RATIO_TARGET);
        let (peak_vane, peak_etcd) =
            both(&|run| max(run.footprint.iter().map(|node| node.peak_rss_bytes as f64)));
        let (disk_vane, disk_etcd) =
            both(&|run| mean(run.footprint.iter().map(|node| node.disk_bytes as f64)));
        let (written_vane, written_etcd) =
            both(&|run| mean(run.footprint.iter().map(|node| node.written_bytes as f64)));
        let (writes_vane, writes_etcd) = both(&|run| run.history_puts_per_sec);
        let (fresh_vane, fresh_etcd) = both(&|run| run.reads_fresh_ops_per_sec);
        let (after_vane, after_etcd) = both(&|run| run.reads_after_history_ops_per_sec);
        let kept = |run: &StoreRun| {
            run.reads_after_history_ops_per_sec / run.reads_fresh_ops_per_sec.max(f64::MIN_POSITIVE)
        };
        let (kept_vane, kept_etcd) = both(&kept);
        let options = &self.options;
        let rows = [
            FigureRow {
                label: format!(
                    "RSS per member after {} puts, MiB (mean)",
                    options.footprint_puts
                ),
                vane: rss_vane.map(|bytes| bytes / MIB),
                etcd: rss_etcd.map(|bytes| bytes / MIB),
                shown_as: |value| cell(value, 1),
                target: Some((format!("<={RSS_RATIO_TARGET}x"), rss_met)),
            },
            FigureRow {
                label: "peak RSS, busiest member, MiB".to_owned(),
                vane: peak_vane.map(|bytes| bytes / MIB),
                etcd: peak_etcd.map(|bytes| bytes / MIB),
                shown_as: |value| cell(value, 1),
                target: None,
            },
            FigureRow {
                label: "disk per member, MiB (mean, allocated)".to_owned(),
                vane: disk_vane.map(|bytes| bytes / MIB),
                etcd: disk_etcd.map(|bytes| bytes / MIB),
                shown_as: |value| cell(value, 1),
                target: None,
            },
            FigureRow {
                label: "written to disk per member, MiB (mean, since start)".to_owned(),
                vane: written_vane.map(|bytes| bytes / MIB),
                etcd: written_etcd.map(|bytes| bytes / MIB),
                shown_as: |value| cell(value, 1),
                target: None,
            },
            FigureRow {
                label: "history writes, puts/s (64 clients)".to_owned(),
                vane: writes_vane,
                etcd: writes_etcd,
                shown_as: whole,
                target: None,
            },
            FigureRow {
                label: format!(
                    "serializable gets/s, fresh store (64 clients, best of {}, alternating with the row below)",
                    super::store::READ_RUNS
                ),
                vane: fresh_vane,
                etcd: fresh_etcd,
                shown_as: whole,
                target: None,
            },
            FigureRow {
                label: format!(
                    "serializable gets/s after {} revisions",
                    options.history_revisions
                ),
                vane: after_vane,
                etcd: after_etcd,
                shown_as: whole,
                target: None,
            },
            FigureRow {
                label: "after history / fresh".to_owned(),
                vane: kept_vane,
                etcd: kept_etcd,
                shown_as: |value| cell(value, 3),
                target: Some((
                    format!("vane>={READS_AFTER_HISTORY_TARGET}"),
                    kept_vane.map(|kept| kept >= READS_AFTER_HISTORY_TARGET),
                )),
            },
        ];
        format!(
            "\nstore ({} keys populated, then {} puts over them, {} in all; errors v/e {}/{})\n{}",
            options.key_count,
            options.footprint_puts,
            options.history_revisions,
            self.store_errors(SystemKind::Vane),
            self.store_errors(SystemKind::Etcd),
            render_figures(&rows)
        )
    }

    fn store_errors(&self, system: SystemKind) -> u64 {
        self.store
            .iter()
            .filter(|run| run.system == system)
            .map(|run| run.errors)
            .sum()
    }

    fn recovery_table(&self) -> String {
        let runs = &self.recovery;
        let figure = |system, value: &dyn Fn(&RecoveryRun) -> f64| {
            median_of(runs, system, |run| run.system, value)
        };
        let rows = [
            FigureRow {
                label: "killed follower serves again after, s".to_owned(),
                vane: figure(SystemKind::Vane, &|run| run.serving_after_secs),
                etcd: figure(SystemKind::Etcd, &|run| run.serving_after_secs),
                shown_as: seconds,
                target: None,
            },
            FigureRow {
                label: "its RSS then, MiB".to_owned(),
                vane: figure(SystemKind::Vane, &recovered_member_rss),
                etcd: figure(SystemKind::Etcd, &recovered_member_rss),
                shown_as: mib,
                target: None,
            },
        ];
        format!(
            "\nrecovery ({} keys; a follower killed with SIGKILL and started again; timed until a serializable read on it returns the last write)\n{}",
            self.options.recovery_keys,
            render_figures(&rows)
        )
    }

    fn watch_scale_table(&self) -> String {
        let runs = &self.watch_scale;
        let figure = |system, value: &dyn Fn(&WatchScaleRun) -> f64| {
            median_of(runs, system, |run| run.system, value)
        };
        let both = |value: &dyn Fn(&WatchScaleRun) -> f64| {
            (
                figure(SystemKind::Vane, value),
                figure(SystemKind::Etcd, value),
            )
        };
        let total = |system, value: fn(&WatchScaleRun) -> u64| {
            Some(
                runs.iter()
                    .filter(|run| run.system == system)
                    .map(value)
                    .sum::<u64>() as f64,
            )
        };
        let (p50_vane, p50_etcd) = both(&|run| run.p50_us as f64);
        let (p99_vane, p99_etcd) = both(&|run| run.p99_us as f64);
        let lost_vane = total(SystemKind::Vane, |run| run.events_lost);
        let (before_vane, before_etcd) = both(&|run| run.rss_before_bytes as f64);
        let (peak_vane, peak_etcd) = both(&|run| run.peak_rss_bytes as f64);
        let p99_met = ratio(p99_vane, p99_etcd).map(|ratio| ratio <= WATCH_P99_RATIO_TARGET);
        let options = &self.options;
        let rows = [
            FigureRow {
                label: "delivery p50, ms".to_owned(),
                vane: p50_vane.map(|us| us / 1000.0),
                etcd: p50_etcd.map(|us| us / 1000.0),
                shown_as: |value| cell(value, 2),
                target: None,
            },
            FigureRow {
                label: "delivery p99, ms".to_owned(),
                vane: p99_vane.map(|us| us / 1000.0),
                etcd: p99_etcd.map(|us| us / 1000.0),
                shown_as: |value| cell(value, 2),
                target: Some((format!("<={WATCH_P99_RATIO_TARGET}x"), p99_met)),
            },
            FigureRow {
                label: "events expected (all runs)".to_owned(),
                vane: total(SystemKind::Vane, |run| run.events_expected),
                etcd: total(SystemKind::Etcd, |run| run.events_expected),
                shown_as: whole,
                target: None,
            },
            FigureRow {
                label: "events received (all runs)".to_owned(),
                vane: total(SystemKind::Vane, |run| run.events_received),
                etcd: total(SystemKind::Etcd, |run| run.events_received),
                shown_as: whole,
                target: None,
            },
            FigureRow {
                label: "events lost (all runs)".to_owned(),
                vane: lost_vane,
                etcd: total(SystemKind::Etcd, |run| run.events_lost),
                shown_as: whole,
                target: Some(("vane=0".to_owned(), lost_vane.map(|lost| lost == 0.0))),
            },
            FigureRow {
                label: "duplicated or reordered (all runs)".to_owned(),
                vane: total(SystemKind::Vane, |run| run.events_duplicated_or_reordered),
                etcd: total(SystemKind::Etcd, |run| run.events_duplicated_or_reordered),
                shown_as: whole,
                target: None,
            },
            FigureRow {
                label: "failed requests or streams (all runs)".to_owned(),
                vane: total(SystemKind::Vane, |run| run.errors),
                etcd: total(SystemKind::Etcd, |run| run.errors),
                shown_as: whole,
                target: None,
            },
            FigureRow {
                label: "member RSS before the watchers, MiB".to_owned(),
                vane: before_vane.map(|bytes| bytes / MIB),
                etcd: before_etcd.map(|bytes| bytes / MIB),
                shown_as: |value| cell(value, 1),
                target: None,
            },
            FigureRow {
                label: "member peak RSS, MiB".to_owned(),
                vane: peak_vane.map(|bytes| bytes / MIB),
                etcd: peak_etcd.map(|bytes| bytes / MIB),
                shown_as: |value| cell(value, 1),
                target: None,
            },
        ];
        format!(
            "\nwatch-scale ({} watchers on {} streams over {} connections, all on one follower, watching {} keys (each stream distinct keys); one writer to the leader at {} puts/s for {} s)\n{}",
            options.watch_watchers,
            options.watch_streams,
            options.watch_conns,
            options.watch_keys,
            options.watch_rate,
            options.watch_duration_secs,
            render_figures(&rows)
        )
    }
}

/// The recovered member's resident memory, in bytes.
fn recovered_member_rss(run: &RecoveryRun) -> f64 {
    run.nodes_after
        .iter()
        .find(|node| node.member == run.member)
        .map_or(0.0, |node| node.rss_bytes as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median([7.0]), Some(7.0));
        assert_eq!(median(std::iter::empty()), None);
        assert_eq!(median([f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn ratios_need_both_figures_and_a_nonzero_reference() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(ratio(Some(3.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(2.0)), None);
    }

    fn run(system: SystemKind, repetition: usize, throughput: f64, p99_us: u64) -> WorkloadRun {
        WorkloadRun {
            system,
            repetition,
            throughput_ops_per_sec: throughput,
            p50_us: p99_us / 2,
            p99_us,
            errors: 0,
            cpu_us_per_op: Some(throughput / 10.0),
            generator_cpu_us_per_op: Some(50.0),
            nodes: vec![NodeFootprint {
                member: "n1".to_owned(),
                rss_bytes: 50 << 20,
                peak_rss_bytes: 64 << 20,
                disk_bytes: 0,
                written_bytes: 0,
            }],
            report_file: String::new(),
        }
    }

    #[test]
    fn a_workload_row_shows_medians_ratios_and_target_verdicts() {
        let comparison = WorkloadComparison {
            row: "put-64".to_owned(),
            description: String::new(),
            targets: vec![
                Target::ThroughputAtLeast { ratio: 2.0 },
                Target::P99AtMost { ratio: 0.5 },
            ],
            runs: vec![
                run(SystemKind::Etcd, 1, 1_000.0, 20_000),
                run(SystemKind::Vane, 1, 2_000.0, 12_000),
                run(SystemKind::Etcd, 2, 3_000.0, 20_000),
                run(SystemKind::Vane, 2, 4_000.0, 12_000),
            ],
        };
        let row = comparison.table_row();
        assert_eq!(row[0], "put-64");
        assert_eq!((row[1].as_str(), row[2].as_str()), ("3000", "2000"));
        assert_eq!(row[3], "1.50");
        assert_eq!((row[7].as_str(), row[8].as_str()), ("12.00", "20.00"));
        assert_eq!(row[9], "0.60");
        assert_eq!((row[10].as_str(), row[11].as_str()), ("300", "200"));
        assert_eq!(row[12], "1.50");
        assert_eq!(row[13], "50/50");
        assert_eq!((row[14].as_str(), row[15].as_str()), ("64.0", "64.0"));
        assert_eq!(row[16], "0/0");
        assert_eq!(row[17], "ops>=2x MISSED, p99<=0.5x MISSED");
    }

    #[test]
    fn a_row_without_runs_of_one_system_shows_dashes() {
        let comparison = WorkloadComparison {
            row: "get-64".to_owned(),
            description: String::new(),
            targets: vec![Target::ThroughputAtLeast { ratio: 2.0 }],
            runs: vec![run(SystemKind::Vane, 1, 2_000.0, 12_000)],
        };
        let row = comparison.table_row();
        assert_eq!((row[1].as_str(), row[2].as_str()), ("2000", "-"));
        assert_eq!(row[3], "-");
        assert_eq!((row[10].as_str(), row[11].as_str()), ("200", "-"));
        assert_eq!(row[13], "50/-");
        assert_eq!(row[17], "ops>=2x n/a");
    }
}
