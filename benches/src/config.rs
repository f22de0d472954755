//! What one benchmark run does: the workload, where it sends traffic, how hard and for how
//! long. One struct carries every tunable so that the CLI, the `bench-compare` orchestrator
//! and the JSON report all describe a run the same way; `validate` holds every limit.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::BenchError;

/// Most concurrent clients a run may start: each is a tokio task with its own request loop.
pub const CLIENTS_MAX: usize = 10_000;
/// Most gRPC connections a run may open.
pub const CONNECTIONS_MAX: usize = 1_000;
/// Most keys a run may pre-populate or address.
pub const KEY_COUNT_MAX: u64 = 100_000_000;
/// Longest key a run may write; etcd accepts more, but longer keys measure copying, not the store.
pub const KEY_BYTES_MAX: usize = 4_096;
/// Largest value a run may write: etcd's default request limit is 1.5 MiB, kept clear of.
pub const VALUE_BYTES_MAX: usize = 1024 * 1024;
/// Most watchers of the `watch` workload; they share at most [`WATCH_STREAMS_MAX`] streams.
pub const WATCHERS_MAX: usize = 100_000;
/// Most gRPC watch streams of the `watch` workload; each is one task and one HTTP/2 stream.
pub const WATCH_STREAMS_MAX: usize = 10_000;
/// Most leases of the `lease-keepalive` workload.
pub const LEASES_MAX: usize = 1_000_000;
/// Longest measured phase, so a mistyped duration cannot run for days.
pub const DURATION_SECS_MAX: u64 = 24 * 60 * 60;
/// Most CAS attempts (Range then Txn) for one operation before it is abandoned.
pub const CAS_ATTEMPTS_MAX: u32 = 10_000;
/// Longest per-request timeout.
pub const REQUEST_TIMEOUT_MS_MAX: u64 = 10 * 60 * 1000;
/// Smallest value the `watch` workload can write: the sequence number and the send time,
/// eight bytes each, that let a watcher find lost events and measure delivery latency.
pub const WATCH_VALUE_BYTES_MIN: usize = 16;

/// The load to generate, with the parameters only that load uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Workload {
    /// Puts of random keys from the key space.
    Put,
    /// Linearizable single-key Range of random pre-populated keys.
    Get,
    /// Serializable single-key Range (served from the local node's state).
    GetSerializable,
    /// Linearizable Range over `range_keys` consecutive pre-populated keys.
    Range {
        /// Keys each Range returns.
        range_keys: u64,
    },
    /// Compare-and-swap: Range a key, then a Txn that writes it only if its
    /// `mod_revision` is unchanged; a failed compare is a conflict and is retried.
    Cas {
        /// Attempts per operation before it is abandoned (counted, not an error).
        attempts_max: u32,
    },
    /// A Txn that only reads: a few random pre-populated keys read together,
    /// linearizably, in one snapshot.
    TxnRead,
    /// Linearizable gets and puts over the same key space.
    Mixed {
        /// Fraction of operations that are gets, in `[0, 1]`.
        read_ratio: f64,
    },
    /// `watchers` watch while a single writer puts (whatever `clients` says: one writer
    /// keeps sequence order equal to revision order); every event's delivery latency is
    /// measured and lost or duplicated events are counted per watcher.
    Watch {
        /// Watches, spread over `streams`.
        watchers: usize,
        /// gRPC watch streams the watchers share, spread over the connections: watcher `i`
        /// is on stream `i % streams`. Equal to `watchers`, each watcher has its own stream;
        /// fewer multiplex them, as real clients do.
        streams: usize,
        /// `None`: every watcher watches the whole key prefix, so each put reaches every
        /// watcher (fan-out). `Some(n)`: each watcher watches one of keys `0..n` alone,
        /// the watchers of one stream distinct keys, and the writer writes the `n` keys in
        /// turn, so each put reaches about `watchers / n` watchers (many watchers, few
        /// events each).
        watched_keys: Option<u64>,
        /// How long watchers may keep receiving after the writer stops before the events
        /// still missing are counted as lost.
        drain_timeout_ms: u64,
        /// The endpoint the writer puts to, e.g. the leader while the watchers sit on a
        /// follower; `None` puts over the first connection.
        writer_endpoint: Option<String>,
    },
    /// Keep-alives over one stream per client for `leases` granted leases.
    LeaseKeepAlive {
        /// Leases granted before the measured phase, shared out among the clients.
        leases: usize,
        /// TTL the leases are granted with.
        lease_ttl_secs: i64,
    },
}

impl Workload {
    /// The workload's command-line name, as in `vane-bench <name>`.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::GetSerializable => "get-serializable",
            Workload::Range { .. } => "range",
            Workload::Cas { .. } => "cas",
            Workload::TxnRead => "txn-read",
            Workload::Mixed { .. } => "mixed",
            Workload::Watch { .. } => "watch",
            Workload::LeaseKeepAlive { .. } => "lease-keepalive",
        }
    }

    /// Whether the measured phase reads keys that must exist beforehand.
    pub fn needs_populated_keys(&self) -> bool {
        matches!(
            self,
            Workload::Get
                | Workload::GetSerializable
                | Workload::Range { .. }
                | Workload::Cas { .. }
                | Workload::TxnRead
                | Workload::Mixed { .. }
        )
    }
}

/// Everything one run needs; the input of [`crate::run`] and part of its [`crate::Report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadConfig {
    /// The load and its own parameters.
    pub workload: Workload,
    /// gRPC endpoints, `http://host:port`; connections are spread over them round-robin.
    pub endpoints: Vec<String>,
    /// gRPC connections (HTTP/2 channels) to open; at least one per endpoint.
    pub connections: usize,
    /// Concurrent clients, each a request loop bound to one connection round-robin.
    pub clients: usize,
    /// Open-loop target rate across all clients; `None` runs closed-loop (each client sends
    /// its next request as soon as the previous one answers).
    pub rate_ops_per_sec: Option<f64>,
    /// Length of the measured phase; the run stops at whichever of this and `total_ops`
    /// comes first.
    pub duration_secs: Option<u64>,
    /// Operations to send in the measured phase.
    pub total_ops: Option<u64>,
    /// Distinct keys the workload addresses (and pre-populates for reads).
    pub key_count: u64,
    /// Length of every key, prefix included.
    pub key_bytes: usize,
    /// Length of every value written.
    pub value_bytes: usize,
    /// Prefix of every key the run writes, so a benchmark never touches other data.
    pub key_prefix: String,
    /// Per-request timeout; a request that takes longer counts as `DeadlineExceeded`.
    pub request_timeout_ms: u64,
    /// Timeout for opening each connection.
    pub connect_timeout_ms: u64,
    /// Seed for key choice, so two runs (say etcd and Vane) send the same key sequence;
    /// `None` seeds from the OS.
    pub seed: Option<u64>,
    /// The keys exist already, written by an earlier run over the same key space (e.g.
    /// before history was added to them): read workloads skip pre-populating, which would
    /// otherwise write every key once more.
    pub skip_populate: bool,
}

impl WorkloadConfig {
    /// A config with the CLI's defaults for `workload` against `endpoints`, for callers
    /// (tests, the orchestrator) that change a few fields.
    pub fn new(workload: Workload, endpoints: Vec<String>) -> Self {
        let connections = endpoints.len().max(1);
        WorkloadConfig {
            workload,
            endpoints,
            connections,
            clients: 1,
            rate_ops_per_sec: None,
            duration_secs: Some(10),
            total_ops: None,
            key_count: 10_000,
            key_bytes: 16,
            value_bytes: 64,
            key_prefix: "bench/".to_owned(),
            request_timeout_ms: 5_000,
            connect_timeout_ms: 3_000,
            seed: None,
            skip_populate: false,
        }
    }

    /// The per-request timeout as a `Duration`.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Checks every limit and cross-field rule, so a bad run fails before any traffic.
    pub fn validate(&self) -> Result<(), BenchError> {
        let invalid =
            |flag: &'static str, reason: String| Err(BenchError::InvalidConfig { flag, reason });

        if self.endpoints.is_empty() {
            return invalid(
                "--endpoints",
                "no endpoint given; pass at least one http://host:port".into(),
            );
        }
        if self.connections < self.endpoints.len() || self.connections > CONNECTIONS_MAX {
            return invalid(
                "--conns",
                format!(
                    "{} connections for {} endpoints; use between the number of endpoints and {CONNECTIONS_MAX}",
                    self.connections,
                    self.endpoints.len()
                ),
            );
        }
        if self.clients == 0 || self.clients > CLIENTS_MAX {
            return invalid(
                "--clients",
                format!("{} clients; use 1 to {CLIENTS_MAX}", self.clients),
            );
        }
        if let Some(rate) = self.rate_ops_per_sec
            && !(rate.is_finite() && rate > 0.0)
        {
            return invalid(
                "--rate",
                format!("{rate} ops/s; use a positive number, or omit it to run closed-loop"),
            );
        }
        match (self.duration_secs, self.total_ops) {
            (None, None) => {
                return invalid(
                    "--duration",
                    "neither a duration nor --total given; set one of them".into(),
                );
            }
            (Some(secs), _) if secs == 0 || secs > DURATION_SECS_MAX => {
                return invalid(
                    "--duration",
                    format!("{secs} s; use 1 to {DURATION_SECS_MAX} seconds"),
                );
            }
            (_, Some(0)) => return invalid("--total", "0 operations; use at least 1".into()),
            _ => {}
        }
        if self.key_count == 0 || self.key_count > KEY_COUNT_MAX {
            return invalid(
                "--key-count",
                format!("{} keys; use 1 to {KEY_COUNT_MAX}", self.key_count),
            );
        }
        if self.key_bytes > KEY_BYTES_MAX {
            return invalid(
                "--key-size",
                format!("{} bytes; use at most {KEY_BYTES_MAX}", self.key_bytes),
            );
        }
        if self.value_bytes > VALUE_BYTES_MAX {
            return invalid(
                "--value-size",
                format!("{} bytes; use at most {VALUE_BYTES_MAX}", self.value_bytes),
            );
        }
        if self.key_prefix.is_empty() {
            return invalid(
                "--key-prefix",
                "empty; a prefix keeps benchmark keys apart from real data".into(),
            );
        }
        if self.request_timeout_ms == 0 || self.request_timeout_ms > REQUEST_TIMEOUT_MS_MAX {
            return invalid(
                "--request-timeout-ms",
                format!(
                    "{} ms; use 1 to {REQUEST_TIMEOUT_MS_MAX}",
                    self.request_timeout_ms
                ),
            );
        }
        if self.connect_timeout_ms == 0 || self.connect_timeout_ms > REQUEST_TIMEOUT_MS_MAX {
            return invalid(
                "--connect-timeout-ms",
                format!(
                    "{} ms; use 1 to {REQUEST_TIMEOUT_MS_MAX}",
                    self.connect_timeout_ms
                ),
            );
        }
        self.validate_workload()
    }

    fn validate_workload(&self) -> Result<(), BenchError> {
        let invalid =
            |flag: &'static str, reason: String| Err(BenchError::InvalidConfig { flag, reason });
        match self.workload {
            Workload::Range { range_keys } if range_keys == 0 || range_keys > self.key_count => {
                invalid(
                    "--range-keys",
                    format!(
                        "{range_keys} keys per range with --key-count {}; use 1 to --key-count",
                        self.key_count
                    ),
                )
            }
            Workload::Cas { attempts_max }
                if attempts_max == 0 || attempts_max > CAS_ATTEMPTS_MAX =>
            {
                invalid(
                    "--cas-attempts-max",
                    format!("{attempts_max}; use 1 to {CAS_ATTEMPTS_MAX}"),
                )
            }
            Workload::Mixed { read_ratio } if !(0.0..=1.0).contains(&read_ratio) => invalid(
                "--read-ratio",
                format!("{read_ratio}; use a fraction from 0 to 1"),
            ),
            Workload::Watch { watchers, .. } if watchers == 0 || watchers > WATCHERS_MAX => {
                invalid(
                    "--watchers",
                    format!("{watchers} watchers; use 1 to {WATCHERS_MAX}"),
                )
            }
            Workload::Watch {
                watchers, streams, ..
            } if streams == 0 || streams > watchers.min(WATCH_STREAMS_MAX) => invalid(
                "--streams",
                format!(
                    "{streams} streams for {watchers} watchers; use 1 to {}",
                    watchers.min(WATCH_STREAMS_MAX)
                ),
            ),
            Workload::Watch {
                watched_keys: Some(keys),
                ..
            } if keys == 0 || keys > self.key_count => invalid(
                "--watched-keys",
                format!(
                    "{keys} keys with --key-count {}; use 1 to --key-count, or omit it to watch the whole prefix",
                    self.key_count
                ),
            ),
            Workload::Watch {
                drain_timeout_ms, ..
            } if drain_timeout_ms > REQUEST_TIMEOUT_MS_MAX => invalid(
                "--drain-timeout-ms",
                format!("{drain_timeout_ms} ms; use at most {REQUEST_TIMEOUT_MS_MAX}"),
            ),
            Workload::Watch { .. } if self.value_bytes < WATCH_VALUE_BYTES_MIN => invalid(
                "--value-size",
                format!(
                    "{} bytes; watch values carry a sequence number and a send time, so use at least {WATCH_VALUE_BYTES_MIN}",
                    self.value_bytes
                ),
            ),
            Workload::LeaseKeepAlive { leases, .. } if leases == 0 || leases > LEASES_MAX => {
                invalid(
                    "--leases",
                    format!("{leases} leases; use 1 to {LEASES_MAX}"),
                )
            }
            Workload::LeaseKeepAlive { lease_ttl_secs, .. } if lease_ttl_secs <= 0 => invalid(
                "--lease-ttl-secs",
                format!("{lease_ttl_secs} s; use a positive TTL"),
            ),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(workload: Workload) -> WorkloadConfig {
        WorkloadConfig::new(workload, vec!["http://127.0.0.1:2379".into()])
    }

    #[test]
    fn defaults_are_valid_for_every_workload() {
        for workload in [
            Workload::Put,
            Workload::Get,
            Workload::GetSerializable,
            Workload::Range { range_keys: 100 },
            Workload::Cas { attempts_max: 100 },
            Workload::TxnRead,
            Workload::Mixed { read_ratio: 0.9 },
            Workload::Watch {
                watchers: 10,
                streams: 10,
                watched_keys: None,
                drain_timeout_ms: 5_000,
                writer_endpoint: None,
            },
            Workload::Watch {
                watchers: 10_000,
                streams: 100,
                watched_keys: Some(100),
                drain_timeout_ms: 5_000,
                writer_endpoint: Some("http://127.0.0.1:2479".into()),
            },
            Workload::LeaseKeepAlive {
                leases: 100,
                lease_ttl_secs: 30,
            },
        ] {
            assert!(config(workload.clone()).validate().is_ok(), "{workload:?}");
        }
    }

    #[test]
    fn rejections_name_the_flag_to_change() {
        let mut range = config(Workload::Range { range_keys: 20_000 });
        range.key_count = 10_000;
        assert!(matches!(
            range.validate(),
            Err(BenchError::InvalidConfig {
                flag: "--range-keys",
                ..
            })
        ));

        let mut fewer_conns = config(Workload::Put);
        fewer_conns.endpoints.push("http://127.0.0.1:2479".into());
        assert!(matches!(
            fewer_conns.validate(),
            Err(BenchError::InvalidConfig {
                flag: "--conns",
                ..
            })
        ));

        let mut no_stop = config(Workload::Put);
        no_stop.duration_secs = None;
        assert!(matches!(
            no_stop.validate(),
            Err(BenchError::InvalidConfig {
                flag: "--duration",
                ..
            })
        ));

        let mut bad_rate = config(Workload::Put);
        bad_rate.rate_ops_per_sec = Some(f64::NAN);
        assert!(matches!(
            bad_rate.validate(),
            Err(BenchError::InvalidConfig { flag: "--rate", .. })
        ));

        let mut small_watch_value = config(Workload::Watch {
            watchers: 1,
            streams: 1,
            watched_keys: None,
            drain_timeout_ms: 100,
            writer_endpoint: None,
        });
        small_watch_value.value_bytes = 8;
        assert!(matches!(
            small_watch_value.validate(),
            Err(BenchError::InvalidConfig {
                flag: "--value-size",
                ..
            })
        ));

        let watch = |watchers, streams, watched_keys| {
            config(Workload::Watch {
                watchers,
                streams,
                watched_keys,
                drain_timeout_ms: 100,
                writer_endpoint: None,
            })
        };
        assert!(matches!(
            watch(10, 11, None).validate(),
            Err(BenchError::InvalidConfig {
                flag: "--streams",
                ..
            })
        ));
        assert!(matches!(
            watch(10, 0, None).validate(),
            Err(BenchError::InvalidConfig {
                flag: "--streams",
                ..
            })
        ));
        assert!(matches!(
            watch(10, 2, Some(20_000)).validate(),
            Err(BenchError::InvalidConfig {
                flag: "--watched-keys",
                ..
            })
        ));
        assert!(watch(10, 2, Some(10_000)).validate().is_ok());
    }
}
