//! The workload rows of the comparison table: what each runs, which figures of its report
//! stand for it, and the targets issue 9 sets for the ratio Vane/etcd. One place, so
//! that the table, `--only` and the summary JSON agree on names.

use serde::{Deserialize, Serialize};

use crate::config::{Workload, WorkloadConfig};
use crate::outcome::OperationKind;
use crate::report::Report;

use super::options::CompareOptions;

/// Requests every connection of a row carries at most, about: rows with more clients
/// open more connections (HTTP/2 multiplexes, but one connection is one socket and one
/// server-side reader), as a fleet of real clients would.
const CLIENTS_PER_CONNECTION_MAX: usize = 32;
/// Watchers of the `watch-fanout` row, each on its own stream, all on the whole prefix.
const FANOUT_WATCHERS: usize = 100;
/// Puts per second of the `watch-fanout` row's writer: with every watcher on the
/// prefix, the servers deliver `FANOUT_WATCHERS` times as many events.
const FANOUT_RATE_PUTS_PER_SEC: f64 = 100.0;
/// How long watchers may keep receiving after the writer stops.
pub const WATCH_DRAIN_TIMEOUT_MS: u64 = 10_000;
/// Leases of the `lease-keepalive` row, and their TTL: long enough that no lease expires
/// while a client works through its share.
const KEEPALIVE_LEASES: usize = 1_000;
const KEEPALIVE_LEASE_TTL_SECS: i64 = 60;
/// Keys each Range of the `range` row returns.
const RANGE_KEYS: u64 = 100;

/// A goal for the ratio Vane/etcd of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Target {
    /// Vane's throughput must be at least this many times etcd's.
    ThroughputAtLeast {
        /// The ratio.
        ratio: f64,
    },
    /// Vane's p99 latency must be at most this many times etcd's.
    P99AtMost {
        /// The ratio.
        ratio: f64,
    },
}

impl Target {
    /// How the table names the target, e.g. `ops>=2x`.
    pub fn label(self) -> String {
        match self {
            Target::ThroughputAtLeast { ratio } => format!("ops>={ratio}x"),
            Target::P99AtMost { ratio } => format!("p99<={ratio}x"),
        }
    }

    /// Whether the measured ratios meet it.
    pub fn is_met(self, throughput_ratio: f64, p99_ratio: f64) -> bool {
        match self {
            Target::ThroughputAtLeast { ratio } => throughput_ratio >= ratio,
            Target::P99AtMost { ratio } => p99_ratio <= ratio,
        }
    }
}

/// One row of the comparison table.
#[derive(Debug, Clone)]
pub struct WorkloadRow {
    /// The row's name, as `--only` takes it and the table shows it.
    pub name: &'static str,
    /// What a reader needs to know beyond the name.
    pub description: &'static str,
    /// The workload with its parameters.
    pub workload: Workload,
    /// Concurrent clients.
    pub clients: usize,
    /// Open-loop rate, if the row is paced.
    pub rate_ops_per_sec: Option<f64>,
    /// The operation whose latency the row shows.
    pub latency_of: OperationKind,
    /// The operations whose throughput the row shows, summed.
    pub throughput_of: &'static [OperationKind],
    /// Issue 9's goals for this row.
    pub targets: &'static [Target],
}

impl WorkloadRow {
    /// The run configuration of this row against `endpoints`.
    pub fn config(&self, endpoints: Vec<String>, options: &CompareOptions) -> WorkloadConfig {
        let mut config = WorkloadConfig::new(self.workload.clone(), endpoints);
        config.clients = self.clients;
        config.connections = config
            .endpoints
            .len()
            .max(self.clients.div_ceil(CLIENTS_PER_CONNECTION_MAX));
        config.rate_ops_per_sec = self.rate_ops_per_sec;
        config.duration_secs = Some(options.duration_secs);
        config.key_count = options.key_count;
        config.value_bytes = options.value_bytes;
        config.seed = Some(options.seed);
        config
    }

    /// The row's three figures from one run's report: throughput, p50 and p99 latency.
    pub fn figures_of(&self, report: &Report) -> (f64, u64, u64) {
        let throughput = self
            .throughput_of
            .iter()
            .filter_map(|kind| report.operation(*kind))
            .map(|operation| operation.throughput_ops_per_sec)
            .sum();
        let latency = report
            .operation(self.latency_of)
            .map(|operation| operation.latency)
            .unwrap_or_default();
        (throughput, latency.p50_us, latency.p99_us)
    }
}

/// The rows, in the order the table shows them.
pub fn workload_rows() -> Vec<WorkloadRow> {
    let closed = |name, description, workload, clients, kind, targets| WorkloadRow {
        name,
        description,
        workload,
        clients,
        rate_ops_per_sec: None,
        latency_of: kind,
        throughput_of: match kind {
            OperationKind::Put => &[OperationKind::Put],
            OperationKind::Get => &[OperationKind::Get],
            OperationKind::GetSerializable => &[OperationKind::GetSerializable],
            OperationKind::Range => &[OperationKind::Range],
            OperationKind::Cas => &[OperationKind::Cas],
            OperationKind::TxnRead => &[OperationKind::TxnRead],
            OperationKind::WatchEvent => &[OperationKind::WatchEvent],
            OperationKind::LeaseKeepAlive => &[OperationKind::LeaseKeepAlive],
        },
        targets,
    };
    vec![
        closed(
            "put-1",
            "one client, closed loop",
            Workload::Put,
            1,
            OperationKind::Put,
            &[Target::ThroughputAtLeast { ratio: 1.5 }],
        ),
        closed(
            "put-64",
            "64 clients, closed loop",
            Workload::Put,
            64,
            OperationKind::Put,
            &[
                Target::ThroughputAtLeast { ratio: 2.0 },
                Target::P99AtMost { ratio: 0.5 },
            ],
        ),
        closed(
            "put-256",
            "256 clients, closed loop",
            Workload::Put,
            256,
            OperationKind::Put,
            &[Target::ThroughputAtLeast { ratio: 2.0 }],
        ),
        closed(
            "get-64",
            "linearizable single-key gets, 64 clients",
            Workload::Get,
            64,
            OperationKind::Get,
            &[Target::ThroughputAtLeast { ratio: 2.0 }],
        ),
        closed(
            "get-serializable-64",
            "serializable single-key gets, 64 clients",
            Workload::GetSerializable,
            64,
            OperationKind::GetSerializable,
            &[Target::ThroughputAtLeast { ratio: 2.0 }],
        ),
        closed(
            "cas-64",
            "get then txn on mod_revision, 64 clients",
            Workload::Cas { attempts_max: 100 },
            64,
            OperationKind::Cas,
            &[Target::ThroughputAtLeast { ratio: 2.0 }],
        ),
        closed(
            "txn-read-64",
            "txns that only read (2 keys, linearizable), 64 clients",
            Workload::TxnRead,
            64,
            OperationKind::TxnRead,
            &[],
        ),
        closed(
            "range-16",
            "linearizable ranges of 100 keys, 16 clients",
            Workload::Range {
                range_keys: RANGE_KEYS,
            },
            16,
            OperationKind::Range,
            &[],
        ),
        WorkloadRow {
            throughput_of: &[OperationKind::Get, OperationKind::Put],
            ..closed(
                "mixed-64",
                "90% linearizable gets, 10% puts, 64 clients; latency of the gets",
                Workload::Mixed { read_ratio: 0.9 },
                64,
                OperationKind::Get,
                &[],
            )
        },
        WorkloadRow {
            rate_ops_per_sec: Some(FANOUT_RATE_PUTS_PER_SEC),
            ..closed(
                "watch-fanout",
                "100 watchers of the whole prefix (one stream each), writer at 100 puts/s; events/s delivered and delivery latency",
                Workload::Watch {
                    watchers: FANOUT_WATCHERS,
                    streams: FANOUT_WATCHERS,
                    watched_keys: None,
                    drain_timeout_ms: WATCH_DRAIN_TIMEOUT_MS,
                    writer_endpoint: None,
                },
                1,
                OperationKind::WatchEvent,
                &[],
            )
        },
        closed(
            "lease-keepalive-64",
            "keep-alive round trips over 64 streams, 1000 leases",
            Workload::LeaseKeepAlive {
                leases: KEEPALIVE_LEASES,
                lease_ttl_secs: KEEPALIVE_LEASE_TTL_SECS,
            },
            64,
            OperationKind::LeaseKeepAlive,
            &[],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::histogram::LatencySummary;
    use crate::report::OperationReport;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        options: CompareOptions,
    }

    fn default_options() -> CompareOptions {
        Harness::try_parse_from(["compare"]).unwrap().options
    }

    #[test]
    fn every_row_has_a_unique_name_and_a_valid_config() {
        let options = default_options();
        let rows = workload_rows();
        let mut names: Vec<&str> = rows.iter().map(|row| row.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rows.len());
        let endpoints: Vec<String> = (1..=3).map(|n| format!("http://127.0.0.1:{n}")).collect();
        for row in &rows {
            let config = row.config(endpoints.clone(), &options);
            assert!(config.validate().is_ok(), "{}: {config:?}", row.name);
            assert_eq!(config.workload.name(), row.workload.name());
        }
    }

    #[test]
    fn many_clients_get_more_connections() {
        let options = default_options();
        let rows = workload_rows();
        let endpoints: Vec<String> = (1..=3).map(|n| format!("http://127.0.0.1:{n}")).collect();
        let connections_of = |name: &str| {
            let row = rows.iter().find(|row| row.name == name).unwrap();
            row.config(endpoints.clone(), &options).connections
        };
        assert_eq!(connections_of("put-1"), 3);
        assert_eq!(connections_of("put-64"), 3);
        assert_eq!(connections_of("put-256"), 8);
    }

    #[test]
    fn mixed_row_sums_throughput_and_shows_get_latency() {
        let options = default_options();
        let row = workload_rows()
            .into_iter()
            .find(|row| row.name == "mixed-64")
            .unwrap();
        let operation = |kind, throughput_ops_per_sec, p50_us| OperationReport {
            operation: kind,
            count: 1,
            throughput_ops_per_sec,
            latency: LatencySummary {
                p50_us,
                p99_us: p50_us * 2,
                ..LatencySummary::default()
            },
        };
        let mut report = Report::from_json(
            &serde_json::json!({
                "config": row.config(vec!["http://127.0.0.1:1".into()], &options),
                "elapsed_secs": 1.0,
                "operations": [],
                "errors": {},
                "cas": null,
                "watch": null
            })
            .to_string(),
        )
        .unwrap();
        report.operations = vec![
            operation(OperationKind::Get, 900.0, 100),
            operation(OperationKind::Put, 100.0, 1_000),
        ];
        assert_eq!(row.figures_of(&report), (1_000.0, 100, 200));
    }

    #[test]
    fn targets_compare_the_right_ratio() {
        let faster = Target::ThroughputAtLeast { ratio: 2.0 };
        assert!(faster.is_met(2.0, 9.0));
        assert!(!faster.is_met(1.9, 0.1));
        let tail = Target::P99AtMost { ratio: 0.5 };
        assert!(tail.is_met(0.1, 0.5));
        assert!(!tail.is_met(9.0, 0.6));
        assert_eq!(faster.label(), "ops>=2x");
        assert_eq!(tail.label(), "p99<=0.5x");
    }
}
