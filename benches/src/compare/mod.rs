//! `vane-bench compare`: Vane against etcd 3.4 on this machine, in one run, with the same
//! load generator. Each measurement starts a fresh three-member cluster of one system,
//! measures, records every member's memory and disk, and kills it before the other
//! system's turn, so only one system ever runs and both get the same cores. Runs
//! alternate etcd, Vane, etcd, Vane, ... so that drift (other work on the machine, a
//! warming disk) hits both; tables show medians and ratios Vane/etcd.
//!
//! Where things live: `options` (every flag), `cluster` and `etcd_cluster` (the systems),
//! `member_status` (who leads), `process_stats` (memory and disk), `rows` (the workload
//! rows and issue 9's targets), `workloads`, `store`, `recovery`, `watch_scale` (the four
//! sections), `results` (the JSON files), `summary` (medians and tables), `machine` (what
//! the figures were measured on).

mod cluster;
mod etcd_cluster;
mod machine;
mod member_status;
mod options;
mod process_stats;
mod recovery;
mod results;
mod rows;
mod store;
mod summary;
mod watch_scale;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub use cluster::{Binaries, SystemKind};
pub use machine::MachineDescription;
pub use options::{CompareOptions, Section};
pub use process_stats::NodeFootprint;
pub use rows::Target;
pub use summary::{
    CompareSummary, RecoveryRun, RunFailure, StoreRun, WatchScaleRun, WorkloadComparison,
    WorkloadRun,
};

use crate::error::BenchError;

use cluster::ClusterUnderTest;
use results::ResultsDir;

/// Runs the comparison `options` describes, or stops at Ctrl-C: the clusters started so
/// far are killed either way, since dropping the comparison drops them.
pub async fn run_until_interrupted(options: CompareOptions) -> Result<CompareSummary, BenchError> {
    tokio::select! {
        summary = run(options) => summary,
        _ = tokio::signal::ctrl_c() => Err(BenchError::Interrupted),
    }
}

/// Runs the comparison `options` describes, prints its tables on standard output (and
/// progress on standard error), and writes every run's report and the summary as JSON.
pub async fn run(options: CompareOptions) -> Result<CompareSummary, BenchError> {
    options.validate()?;
    let binaries = Binaries::locate(&options)?;
    let unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let results = ResultsDir::create(&options.results_dir.join(format!("compare-{unix_secs}")))?;
    let work_dir = options.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "vane-bench-compare-{}-{unix_secs}",
            std::process::id()
        ))
    });
    create_dir(&work_dir, "create the work directory")?;
    let machine = MachineDescription::describe(&binaries, &work_dir);
    if machine.work_dir_filesystem == "tmpfs" {
        eprintln!(
            "vane-bench compare: warning: {} is on a tmpfs, where fsync costs nothing; pass --work-dir on a real disk",
            work_dir.display()
        );
    }
    if machine.vaned_is_debug_build {
        eprintln!(
            "vane-bench compare: warning: {} is a debug build; build with --release (`make bench-compare` does)",
            binaries.vaned.display()
        );
    }
    let mut comparison = Comparison {
        steps_total: steps_total(&options),
        steps_done: 0,
        summary: CompareSummary {
            machine,
            options: options.clone(),
            binaries: binaries.clone(),
            results_dir: results.root().to_path_buf(),
            workloads: Vec::new(),
            store: Vec::new(),
            recovery: Vec::new(),
            watch_scale: Vec::new(),
            failures: Vec::new(),
        },
        options,
        binaries,
        results,
        work_dir,
    };
    // Runs the rows `--only` picks, which may be none.
    workloads::run(&mut comparison).await;
    if comparison.options.runs_section(Section::Store) {
        store::run(&mut comparison).await;
    }
    if comparison.options.runs_section(Section::Recovery) {
        recovery::run(&mut comparison).await;
    }
    if comparison.options.runs_section(Section::WatchScale) {
        watch_scale::run(&mut comparison).await;
    }
    comparison.finish()
}

/// Measurements the comparison will make, for the progress lines.
fn steps_total(options: &CompareOptions) -> usize {
    let rows = rows::workload_rows()
        .iter()
        .filter(|row| options.runs_row(row.name))
        .count();
    let sections = [Section::Store, Section::Recovery, Section::WatchScale]
        .iter()
        .filter(|section| options.runs_section(**section))
        .count();
    (rows + sections) * options.repetitions * SystemKind::ALTERNATION.len()
}

/// A comparison under way: what it runs with, where it writes, what it has measured.
pub(crate) struct Comparison {
    options: CompareOptions,
    binaries: Binaries,
    results: ResultsDir,
    /// Holds one directory per cluster; a cluster's directory is removed after a
    /// successful measurement and kept, for its logs, after a failed one. Removed at the
    /// end if empty, unless the user named it.
    work_dir: PathBuf,
    steps_total: usize,
    steps_done: usize,
    summary: CompareSummary,
}

impl Comparison {
    /// The directory of the cluster of measurement `what`, `system`, `repetition`.
    fn cluster_dir(&self, what: &str, system: SystemKind, repetition: usize) -> PathBuf {
        self.work_dir
            .join(format!("{what}-{}-rep{repetition}", system.name()))
    }

    /// Starts a fresh cluster of `system` in `dir`.
    async fn start_cluster(
        &self,
        system: SystemKind,
        dir: &Path,
    ) -> Result<ClusterUnderTest, BenchError> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|source| BenchError::Io {
                action: "remove the leftover cluster directory",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        ClusterUnderTest::start(system, &self.binaries, dir, &self.options).await
    }

    /// Notes a measurement that worked: a progress line, and its cluster's directory
    /// removed (the cluster itself is gone by now).
    fn succeeded(
        &mut self,
        what: &str,
        system: SystemKind,
        repetition: usize,
        dir: &Path,
        figures: &str,
    ) {
        let _ = std::fs::remove_dir_all(dir);
        self.steps_done += 1;
        eprintln!(
            "[{}/{}] {what} rep {repetition} {}: {figures}",
            self.steps_done,
            self.steps_total,
            system.name()
        );
    }

    /// Notes a measurement that failed as a whole, keeping its cluster's directory.
    fn failed(
        &mut self,
        what: &str,
        system: SystemKind,
        repetition: usize,
        dir: &Path,
        error: &BenchError,
    ) {
        self.steps_done += 1;
        eprintln!(
            "[{}/{}] {what} rep {repetition} {}: FAILED: {error} (logs in {})",
            self.steps_done,
            self.steps_total,
            system.name(),
            dir.display()
        );
        self.summary.failures.push(RunFailure {
            what: what.to_owned(),
            system,
            repetition,
            error: error.to_string(),
            kept_dir: dir.exists().then(|| dir.to_path_buf()),
        });
    }

    /// Prints the tables, writes the summary, and tidies the work directory.
    fn finish(mut self) -> Result<CompareSummary, BenchError> {
        self.summary.machine.load_average_at_end = machine::load_average();
        let table = self.summary.to_table();
        print!("{table}");
        self.results.write_text("summary.txt", &table)?;
        self.results.write_json("summary.json", &self.summary)?;
        if self.options.work_dir.is_none() {
            // Fails, harmlessly, if a failed run's directory was kept in it.
            let _ = std::fs::remove_dir(&self.work_dir);
        }
        eprintln!(
            "vane-bench compare: reports and summary in {}",
            self.results.root().display()
        );
        Ok(self.summary)
    }
}

fn create_dir(path: &Path, action: &'static str) -> Result<(), BenchError> {
    std::fs::create_dir_all(path).map_err(|source| BenchError::Io {
        action,
        path: path.to_path_buf(),
        source,
    })
}
