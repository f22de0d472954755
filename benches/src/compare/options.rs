//! Every tunable of `vane-bench compare` (and `watch-scale`) in one struct: the flags, the
//! record of what a run did (it is written into the summary JSON) and the limits that
//! keep a mistyped flag from running for hours.

use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::config::{
    CONNECTIONS_MAX, DURATION_SECS_MAX, KEY_COUNT_MAX, VALUE_BYTES_MAX, WATCH_STREAMS_MAX,
    WATCH_VALUE_BYTES_MIN, WATCHERS_MAX,
};
use crate::error::BenchError;

use super::rows::workload_rows;

/// Most repetitions of each measurement.
pub const REPETITIONS_MAX: usize = 100;
/// Smallest election timeout the clusters may run with: on a shared two-core machine a
/// shorter one causes elections nobody asked for, which would measure the machine.
pub const ELECTION_TIMEOUT_MS_MIN: u64 = 1_000;

/// The parts of a comparison that `--only` can pick, besides single workload rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    /// Every workload row (put, get, cas, range, mixed, watch fan-out, lease keep-alive).
    Workloads,
    /// Memory and disk after the same writes, and reads before and after history.
    Store,
    /// Time for a killed member to serve again.
    Recovery,
    /// Many watchers on one member.
    WatchScale,
}

impl Section {
    /// Every section, in the order a comparison runs them.
    pub const ALL: [Section; 4] = [
        Section::Workloads,
        Section::Store,
        Section::Recovery,
        Section::WatchScale,
    ];

    /// The name `--only` takes.
    pub fn name(self) -> &'static str {
        match self {
            Section::Workloads => "workloads",
            Section::Store => "store",
            Section::Recovery => "recovery",
            Section::WatchScale => "watch-scale",
        }
    }
}

/// What `vane-bench compare` runs, and against which binaries.
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
pub struct CompareOptions {
    /// The vaned binary to measure; build it with `cargo build --release -p vane-node` [default: the release vaned beside this vane-bench, else $CARGO_TARGET_DIR/release/vaned, else vane-cluster's search].
    #[arg(long)]
    pub vaned: Option<PathBuf>,
    /// The etcd 3.4 binary to compare with.
    #[arg(long, default_value = "etcd")]
    pub etcd: PathBuf,
    /// Runs of each measurement on each system, alternating etcd, Vane, etcd, Vane, ...
    #[arg(long, default_value_t = 2)]
    pub repetitions: usize,
    /// Seconds each workload row (and each read measurement of the store section) runs.
    #[arg(long = "duration", value_name = "SECONDS", default_value_t = 5)]
    pub duration_secs: u64,
    /// Keys the read workloads pre-populate and every row addresses.
    #[arg(long, default_value_t = 10_000)]
    pub key_count: u64,
    /// Bytes of every value written.
    #[arg(long = "value-size", value_name = "BYTES", default_value_t = 256)]
    pub value_bytes: usize,
    /// Store section: puts (over --key-count keys) after which memory and disk are measured.
    #[arg(long, default_value_t = 130_000)]
    pub footprint_puts: u64,
    /// Store section: revisions of history (puts over --key-count keys) written before the reads are measured again; at least --footprint-puts (the footprint is measured on the way).
    #[arg(long, default_value_t = 200_000)]
    pub history_revisions: u64,
    /// Recovery section: distinct keys in the store when a member is killed and restarted
    /// (issue 9's scale: a million; populating them takes about a minute per system).
    #[arg(long, default_value_t = 1_000_000)]
    pub recovery_keys: u64,
    /// Watch-scale section: watches on the one member.
    #[arg(long, default_value_t = 10_000)]
    pub watch_watchers: usize,
    /// Watch-scale section: gRPC watch streams the watches share.
    #[arg(long, default_value_t = 100)]
    pub watch_streams: usize,
    /// Watch-scale section: connections the streams share.
    #[arg(long, default_value_t = 10)]
    pub watch_conns: usize,
    /// Watch-scale section: distinct keys watched, each by watchers/N watchers spread over the streams; each put reaches watchers/N watchers.
    #[arg(long, default_value_t = 100)]
    pub watch_keys: u64,
    /// Watch-scale section: the writer's steady rate, puts per second.
    #[arg(long, default_value_t = 200.0)]
    pub watch_rate: f64,
    /// Watch-scale section: seconds the writer runs.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub watch_duration_secs: u64,
    /// Election timeout of both systems' members, in ms (heartbeat: a tenth of it).
    #[arg(long, default_value_t = 1_000)]
    pub election_timeout_ms: u64,
    /// Where the JSON of every run and the summary go, in a new `compare-<unix time>` directory.
    #[arg(long, default_value = "bench-results")]
    pub results_dir: PathBuf,
    /// Where the clusters keep their data (fsync must be real there: not a tmpfs) [default: the system's temporary directory].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Run only these sections (workloads, store, recovery, watch-scale) or workload rows (put-64, get-64, ...), comma-separated [default: everything].
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Seed of every run's key choice, so both systems get the same key sequences.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl CompareOptions {
    /// Whether `section` runs.
    pub fn runs_section(&self, section: Section) -> bool {
        self.only.is_empty() || self.only.iter().any(|name| name == section.name())
    }

    /// Whether the workload row `row` runs.
    pub fn runs_row(&self, row: &str) -> bool {
        self.runs_section(Section::Workloads) || self.only.iter().any(|name| name == row)
    }

    /// Checks every limit and cross-flag rule, so that a bad comparison fails before it
    /// starts a cluster.
    pub fn validate(&self) -> Result<(), BenchError> {
        let invalid =
            |flag: &'static str, reason: String| Err(BenchError::InvalidConfig { flag, reason });
        let row_names: Vec<&str> = workload_rows().iter().map(|row| row.name).collect();
        for name in &self.only {
            let known = Section::ALL.iter().any(|section| section.name() == name)
                || row_names.contains(&name.as_str());
            if !known {
                return invalid(
                    "--only",
                    format!(
                        "`{name}` is neither a section ({}) nor a workload row ({})",
                        Section::ALL.map(Section::name).join(", "),
                        row_names.join(", ")
                    ),
                );
            }
        }
        if self.repetitions == 0 || self.repetitions > REPETITIONS_MAX {
            return invalid(
                "--repetitions",
                format!("{}; use 1 to {REPETITIONS_MAX}", self.repetitions),
            );
        }
        for (flag, secs) in [
            ("--duration", self.duration_secs),
            ("--watch-duration-secs", self.watch_duration_secs),
        ] {
            if secs == 0 || secs > DURATION_SECS_MAX {
                return invalid(flag, format!("{secs} s; use 1 to {DURATION_SECS_MAX}"));
            }
        }
        for (flag, count) in [
            ("--key-count", self.key_count),
            ("--footprint-puts", self.footprint_puts),
            ("--history-revisions", self.history_revisions),
            ("--recovery-keys", self.recovery_keys),
        ] {
            if count == 0 || count > KEY_COUNT_MAX {
                return invalid(flag, format!("{count}; use 1 to {KEY_COUNT_MAX}"));
            }
        }
        if self.footprint_puts > self.history_revisions {
            return invalid(
                "--footprint-puts",
                format!(
                    "{} is more than --history-revisions {}: the footprint is measured part-way through the history writes, so raise --history-revisions",
                    self.footprint_puts, self.history_revisions
                ),
            );
        }
        if !(WATCH_VALUE_BYTES_MIN..=VALUE_BYTES_MAX).contains(&self.value_bytes) {
            return invalid(
                "--value-size",
                format!(
                    "{} bytes; use {WATCH_VALUE_BYTES_MIN} (the watch rows stamp values) to {VALUE_BYTES_MAX}",
                    self.value_bytes
                ),
            );
        }
        if self.watch_watchers == 0 || self.watch_watchers > WATCHERS_MAX {
            return invalid(
                "--watch-watchers",
                format!("{}; use 1 to {WATCHERS_MAX}", self.watch_watchers),
            );
        }
        let streams_max = self.watch_watchers.min(WATCH_STREAMS_MAX);
        if self.watch_streams == 0 || self.watch_streams > streams_max {
            return invalid(
                "--watch-streams",
                format!("{}; use 1 to {streams_max}", self.watch_streams),
            );
        }
        if self.watch_conns == 0 || self.watch_conns > CONNECTIONS_MAX {
            return invalid(
                "--watch-conns",
                format!("{}; use 1 to {CONNECTIONS_MAX}", self.watch_conns),
            );
        }
        if self.watch_keys == 0 || self.watch_keys > self.key_count {
            return invalid(
                "--watch-keys",
                format!(
                    "{}; use 1 to --key-count ({})",
                    self.watch_keys, self.key_count
                ),
            );
        }
        if !(self.watch_rate.is_finite() && self.watch_rate > 0.0) {
            return invalid(
                "--watch-rate",
                format!("{} puts/s; use a positive rate", self.watch_rate),
            );
        }
        if self.election_timeout_ms < ELECTION_TIMEOUT_MS_MIN {
            return invalid(
                "--election-timeout-ms",
                format!(
                    "{} ms; use at least {ELECTION_TIMEOUT_MS_MIN} on a shared machine",
                    self.election_timeout_ms
                ),
            );
        }
        Ok(())
    }

    /// The heartbeat interval both systems run with: a tenth of the election timeout, as
    /// etcd's defaults (100 ms and 1000 ms) have it.
    pub fn heartbeat_interval_ms(&self) -> u64 {
        self.election_timeout_ms / 10
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        options: CompareOptions,
    }

    fn options(args: &[&str]) -> CompareOptions {
        Harness::try_parse_from(std::iter::once("compare").chain(args.iter().copied()))
            .unwrap()
            .options
    }

    #[test]
    fn defaults_are_valid_and_run_everything() {
        let options = options(&[]);
        assert!(options.validate().is_ok(), "{options:?}");
        assert!(
            Section::ALL
                .iter()
                .all(|section| options.runs_section(*section))
        );
        assert!(options.runs_row("put-64"));
    }

    #[test]
    fn only_picks_sections_and_rows_by_name() {
        let options = options(&["--only", "put-1,recovery"]);
        assert!(options.validate().is_ok());
        assert!(options.runs_row("put-1"));
        assert!(!options.runs_row("put-64"));
        assert!(options.runs_section(Section::Recovery));
        assert!(!options.runs_section(Section::Store));
        assert!(!options.runs_section(Section::Workloads));
    }

    #[test]
    fn unknown_names_and_bad_counts_name_their_flag() {
        let flag_of = |args: &[&str]| match options(args).validate() {
            Err(BenchError::InvalidConfig { flag, .. }) => flag,
            other => panic!("{args:?} was accepted: {other:?}"),
        };
        assert_eq!(flag_of(&["--only", "put-65"]), "--only");
        assert_eq!(flag_of(&["--repetitions", "0"]), "--repetitions");
        assert_eq!(
            flag_of(&[
                "--footprint-puts",
                "300000",
                "--history-revisions",
                "200000"
            ]),
            "--footprint-puts"
        );
        assert_eq!(flag_of(&["--watch-streams", "20000"]), "--watch-streams");
        assert_eq!(flag_of(&["--watch-keys", "20000"]), "--watch-keys");
        assert_eq!(flag_of(&["--value-size", "8"]), "--value-size");
        assert_eq!(
            flag_of(&["--election-timeout-ms", "300"]),
            "--election-timeout-ms"
        );
    }
}
