//! The result of one run: what was run, how fast, how slow at the tail, what failed. One
//! serde struct serves the terminal table, the `--json` file and the `bench-compare`
//! orchestrator, so all three always agree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Workload, WorkloadConfig};
use crate::error::BenchError;
use crate::histogram::LatencySummary;
use crate::outcome::OperationKind;
use crate::recording::Recording;
use crate::table::render_table;

/// Per-watcher anomalies the table lists before summarising the rest; the JSON has all.
const WATCHER_ANOMALIES_SHOWN_MAX: usize = 10;

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The run's configuration, so a report file describes itself.
    pub config: WorkloadConfig,
    /// Wall time of the measured phase: from its start until the last client stopped.
    pub elapsed_secs: f64,
    /// Successful operations per kind, with throughput and latency percentiles.
    pub operations: Vec<OperationReport>,
    /// Failed operations, by gRPC status code name (`Unavailable`, `DeadlineExceeded`, ...)
    /// or by the name of the response check that failed (`KeyMissing`, `RangeShort`,
    /// `LeaseExpired`, `WatchCanceled`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Contention of the `cas` workload; `None` for other workloads.
    pub cas: Option<CasReport>,
    /// Delivery of the `watch` workload; `None` for other workloads.
    pub watch: Option<WatchReport>,
}

/// Throughput and latency of one kind of operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationReport {
    /// The kind of operation.
    pub operation: OperationKind,
    /// Successful operations.
    pub count: u64,
    /// Successful operations per second of the measured phase.
    pub throughput_ops_per_sec: f64,
    /// Latency percentiles of the successful operations.
    pub latency: LatencySummary,
}

/// Contention seen by the `cas` workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasReport {
    /// Txns whose `mod_revision` compare failed because another client wrote first; each
    /// was retried and none counts as a success.
    pub conflicts: u64,
    /// Operations that gave up after their last attempt conflicted.
    pub abandoned: u64,
}

/// What the watchers of the `watch` workload received of what the writer wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchReport {
    /// Watchers (watches).
    pub watchers: usize,
    /// gRPC watch streams the watchers shared.
    pub streams: usize,
    /// Puts the server acknowledged: each watcher must receive each acknowledged put of
    /// what it watches exactly once.
    pub puts_acknowledged: u64,
    /// Puts that failed or timed out: a watcher may or may not see them, either is correct.
    pub puts_failed: u64,
    /// Events the watchers should have received: for each watcher, the acknowledged puts
    /// of what it watches.
    pub events_expected: u64,
    /// Events received, summed over watchers (duplicates included).
    pub events_received: u64,
    /// Acknowledged puts some watcher never received, summed over watchers.
    pub events_lost: u64,
    /// Events a watcher received more than once, summed over watchers.
    pub events_duplicated: u64,
    /// Events a watcher received after a later one, summed over watchers.
    pub events_reordered: u64,
    /// The same counts for each watcher.
    pub per_watcher: Vec<WatcherDelivery>,
}

/// What one watcher received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherDelivery {
    /// Index of the watcher (watcher `i` was on stream `i % streams`, stream `s` on
    /// connection `s % connections`).
    pub watcher: usize,
    /// Events received, duplicates included.
    pub events_received: u64,
    /// Acknowledged puts never received.
    pub events_lost: u64,
    /// Events received more than once.
    pub events_duplicated: u64,
    /// Events received after a later one.
    pub events_reordered: u64,
}

impl WatcherDelivery {
    /// Whether this watcher saw anything but every acknowledged put exactly once, in order.
    pub fn has_anomalies(&self) -> bool {
        self.events_lost + self.events_duplicated + self.events_reordered > 0
    }
}

impl Report {
    /// The report of a measured phase that took `elapsed` and recorded `recording`.
    pub(crate) fn new(config: WorkloadConfig, elapsed: Duration, recording: &Recording) -> Self {
        let elapsed_secs = elapsed.as_secs_f64();
        let operations = recording
            .latencies
            .iter()
            .map(|(kind, histogram)| OperationReport {
                operation: *kind,
                count: histogram.count(),
                throughput_ops_per_sec: per_second(histogram.count(), elapsed_secs),
                latency: histogram.summary(),
            })
            .collect();
        let cas = matches!(config.workload, Workload::Cas { .. }).then_some(CasReport {
            conflicts: recording.cas_conflicts,
            abandoned: recording.cas_abandoned,
        });
        Report {
            config,
            elapsed_secs,
            operations,
            errors: recording.errors.clone(),
            cas,
            watch: None,
        }
    }

    /// The figures of one kind of operation, if any succeeded.
    pub fn operation(&self, kind: OperationKind) -> Option<&OperationReport> {
        self.operations
            .iter()
            .find(|operation| operation.operation == kind)
    }

    /// Successful operations of every kind.
    pub fn operations_succeeded(&self) -> u64 {
        self.operations
            .iter()
            .map(|operation| operation.count)
            .sum()
    }

    /// Failed operations of every kind.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, BenchError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// A report read back from [`Report::to_json`]'s output.
    pub fn from_json(json: &str) -> Result<Self, BenchError> {
        Ok(serde_json::from_str(json)?)
    }

    /// The report as an aligned plain-text table with a heading line and notes below.
    pub fn to_table(&self) -> String {
        let mut text = self.heading();
        let header = [
            "operation",
            "count",
            "ops/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
        ];
        let rows: Vec<Vec<String>> = self
            .operations
            .iter()
            .map(|operation| {
                let latency = &operation.latency;
                vec![
                    operation.operation.name().to_owned(),
                    operation.count.to_string(),
                    format!("{:.1}", operation.throughput_ops_per_sec),
                    millis(latency.p50_us),
                    millis(latency.p90_us),
                    millis(latency.p99_us),
                    millis(latency.p999_us),
                    millis(latency.max_us),
                ]
            })
            .collect();
        text.push_str(&render_table(&header, &rows));
        text.push_str(&self.errors_line());
        if let Some(cas) = &self.cas {
            let _ = writeln!(
                text,
                "cas: {} conflicts (retried), {} abandoned",
                cas.conflicts, cas.abandoned
            );
        }
        if let Some(watch) = &self.watch {
            text.push_str(&watch_lines(watch));
        }
        text
    }

    fn heading(&self) -> String {
        let config = &self.config;
        let pacing = match config.rate_ops_per_sec {
            Some(rate) => format!("open loop at {rate} ops/s"),
            None => "closed loop".to_owned(),
        };
        format!(
            "{} | clients {} | conns {} | {} | {pacing} | {:.2} s\n",
            config.workload.name(),
            config.clients,
            config.connections,
            config.endpoints.join(","),
            self.elapsed_secs
        )
    }

    fn errors_line(&self) -> String {
        if self.errors.is_empty() {
            return "errors: none\n".to_owned();
        }
        let counts: Vec<String> = self
            .errors
            .iter()
            .map(|(label, count)| format!("{label} {count}"))
            .collect();
        format!("errors: {} ({})\n", self.errors_total(), counts.join(", "))
    }
}

fn watch_lines(watch: &WatchReport) -> String {
    let mut text = format!(
        "watch: {} watchers on {} streams, {} puts acknowledged ({} failed); events expected {}, received {}, lost {}, duplicated {}, reordered {}\n",
        watch.watchers,
        watch.streams,
        watch.puts_acknowledged,
        watch.puts_failed,
        watch.events_expected,
        watch.events_received,
        watch.events_lost,
        watch.events_duplicated,
        watch.events_reordered
    );
    let anomalies: Vec<&WatcherDelivery> = watch
        .per_watcher
        .iter()
        .filter(|watcher| watcher.has_anomalies())
        .collect();
    for watcher in anomalies.iter().take(WATCHER_ANOMALIES_SHOWN_MAX) {
        let _ = writeln!(
            text,
            "  watcher {}: received {}, lost {}, duplicated {}, reordered {}",
            watcher.watcher,
            watcher.events_received,
            watcher.events_lost,
            watcher.events_duplicated,
            watcher.events_reordered
        );
    }
    if anomalies.len() > WATCHER_ANOMALIES_SHOWN_MAX {
        let _ = writeln!(
            text,
            "  ... and {} more watchers with anomalies (see the JSON report)",
            anomalies.len() - WATCHER_ANOMALIES_SHOWN_MAX
        );
    }
    text
}

fn per_second(count: u64, elapsed_secs: f64) -> f64 {
    if elapsed_secs > 0.0 {
        count as f64 / elapsed_secs
    } else {
        0.0
    }
}

fn millis(micros: u64) -> String {
    format!("{:.3}", micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_report() -> Report {
        let mut recording = Recording::new().unwrap();
        for latency_us in [900, 1_000, 1_100, 25_000] {
            recording.record_latency(OperationKind::Put, Duration::from_micros(latency_us));
        }
        recording.record_latency(OperationKind::Get, Duration::from_micros(150));
        recording.record_error("Unavailable".to_owned());
        recording.record_error("Unavailable".to_owned());
        recording.record_error("KeyMissing".to_owned());
        let mut config = WorkloadConfig::new(
            Workload::Mixed { read_ratio: 0.2 },
            vec!["http://127.0.0.1:2379".into()],
        );
        config.clients = 16;
        Report::new(config, Duration::from_secs(2), &recording)
    }

    #[test]
    fn report_counts_throughput_per_kind() {
        let report = sample_report();
        let put = report.operation(OperationKind::Put).unwrap();
        assert_eq!(put.count, 4);
        assert_eq!(put.throughput_ops_per_sec, 2.0);
        assert_eq!(report.operations_succeeded(), 5);
        assert_eq!(report.errors_total(), 3);
        assert_eq!(report.cas, None);
    }

    #[test]
    fn json_round_trips_exactly() {
        let mut report = sample_report();
        report.watch = Some(WatchReport {
            watchers: 1,
            streams: 1,
            puts_acknowledged: 3,
            puts_failed: 0,
            events_expected: 3,
            events_received: 3,
            events_lost: 0,
            events_duplicated: 0,
            events_reordered: 0,
            per_watcher: vec![WatcherDelivery {
                watcher: 0,
                events_received: 3,
                ..WatcherDelivery::default()
            }],
        });
        report.elapsed_secs = 2.000_123_456_789;
        let json = report.to_json().unwrap();
        assert_eq!(Report::from_json(&json).unwrap(), report);
        assert!(
            json.contains("\"workload\": {\n      \"name\": \"mixed\""),
            "{json}"
        );
        assert!(json.contains("\"operation\": \"put\""), "{json}");
    }

    #[test]
    fn table_shows_percentiles_in_milliseconds_and_errors_by_label() {
        let table = sample_report().to_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "mixed | clients 16 | conns 1 | http://127.0.0.1:2379 | closed loop | 2.00 s"
        );
        assert!(lines[1].starts_with("operation"), "{table}");
        assert_eq!(lines[1].len(), lines[2].len(), "{table}");
        assert_eq!(lines[2].len(), lines[3].len(), "{table}");
        assert!(lines[2].starts_with("put "), "{table}");
        assert!(lines[3].starts_with("get "), "{table}");
        assert!(lines[2].contains(" 1.000 "), "p50 of put in ms: {table}");
        assert!(lines[2].ends_with(" 25.007"), "max of put in ms: {table}");
        assert_eq!(lines[4], "errors: 3 (KeyMissing 1, Unavailable 2)");
    }

    #[test]
    fn table_lists_watchers_with_anomalies() {
        let mut report = sample_report();
        let clean = WatcherDelivery {
            watcher: 0,
            events_received: 3,
            ..WatcherDelivery::default()
        };
        let lossy = WatcherDelivery {
            watcher: 1,
            events_received: 2,
            events_lost: 1,
            ..WatcherDelivery::default()
        };
        report.watch = Some(WatchReport {
            watchers: 2,
            streams: 1,
            puts_acknowledged: 3,
            puts_failed: 0,
            events_expected: 6,
            events_received: 5,
            events_lost: 1,
            events_duplicated: 0,
            events_reordered: 0,
            per_watcher: vec![clean, lossy],
        });
        let table = report.to_table();
        assert!(
            table.contains(
                "2 watchers on 1 streams, 3 puts acknowledged (0 failed); events expected 6, received 5, lost 1, duplicated 0, reordered 0"
            ),
            "{table}"
        );
        assert!(table.contains("  watcher 1: received 2, lost 1"), "{table}");
        assert!(!table.contains("watcher 0:"), "{table}");
    }
}
