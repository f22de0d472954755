//! The `vane-bench` command line: one subcommand per workload, each taking the common flags
//! plus its own, turned into a [`WorkloadConfig`], and the printing of the report; plus
//! `compare` and `watch-scale`, which start etcd and Vane clusters themselves (see
//! [`crate::compare`]). Kept in the library so that `main.rs` only parses and hands off.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::compare::{CompareOptions, Section};
use crate::config::{Workload, WorkloadConfig};
use crate::error::BenchError;
use crate::report::Report;

/// Duration of a run given neither `--duration` nor `--total`.
const DEFAULT_DURATION_SECS: u64 = 10;

/// `vane-bench <workload|compare|watch-scale> [flags]`.
#[derive(Debug, Parser)]
#[command(
    name = "vane-bench",
    version,
    about = "Load generator for etcd v3 API servers (Vane and etcd alike)",
    long_about = "Load generator for etcd v3 API servers (Vane and etcd alike). \
                  Runs one workload, then prints throughput, latency percentiles and errors \
                  as a table or as JSON."
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// A workload against running servers, or a side-by-side comparison that starts them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One workload against the servers at --endpoints.
    #[command(flatten)]
    Workload(WorkloadCommand),
    /// Starts a three-node etcd and a three-node Vane (one at a time, fresh for every run),
    /// runs every workload against both alternately, and prints medians and ratios
    /// Vane/etcd; also memory and disk after the same writes, reads after history,
    /// recovery of a restarted member and the many-watchers benchmark.
    Compare(CompareOptions),
    /// The many-watchers benchmark alone (the `watch-scale` section of `compare`):
    /// --watch-watchers watches on one member of each system, a writer at --watch-rate,
    /// delivery latency, events lost and the member's memory.
    WatchScale(CompareOptions),
}

/// One subcommand per workload.
#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// Puts of random keys from the key space.
    Put(CommonArgs),
    /// Linearizable single-key gets of pre-populated keys.
    Get(CommonArgs),
    /// Serializable single-key gets of pre-populated keys.
    GetSerializable(CommonArgs),
    /// Linearizable ranges over consecutive pre-populated keys.
    Range {
        /// Flags every workload takes.
        #[command(flatten)]
        common: CommonArgs,
        /// Keys each range returns.
        #[arg(long, default_value_t = 100)]
        range_keys: u64,
    },
    /// Compare-and-swap: range a key, then a txn conditional on its mod_revision; conflicts are retried and reported apart.
    Cas {
        /// Flags every workload takes.
        #[command(flatten)]
        common: CommonArgs,
        /// Attempts per operation before it is abandoned.
        #[arg(long = "cas-attempts-max", default_value_t = 100)]
        attempts_max: u32,
    },
    /// Txns that only read: a few random pre-populated keys read together, linearizably.
    TxnRead(CommonArgs),
    /// Linearizable gets and puts over the same key space.
    Mixed {
        /// Flags every workload takes.
        #[command(flatten)]
        common: CommonArgs,
        /// Fraction of operations that are gets, from 0 to 1.
        #[arg(long, default_value_t = 0.9)]
        read_ratio: f64,
    },
    /// Watchers on the key prefix (or on single keys) while one writer (whatever --clients says) puts at --rate; measures delivery latency and lost or duplicated events.
    Watch {
        /// Flags every workload takes.
        #[command(flatten)]
        common: CommonArgs,
        /// Watches, spread over the streams.
        #[arg(long, default_value_t = 10)]
        watchers: usize,
        /// gRPC watch streams the watchers share, spread over the connections [default: one per watcher].
        #[arg(long)]
        streams: Option<usize>,
        /// Each watcher watches one of keys 0..N of the key space instead of the whole prefix (a stream's watchers distinct keys); the writer writes the N keys in turn.
        #[arg(long)]
        watched_keys: Option<u64>,
        /// How long watchers keep receiving after the writer stops before missing events count as lost.
        #[arg(long, default_value_t = 5_000)]
        drain_timeout_ms: u64,
        /// Endpoint the writer puts to, e.g. the leader while watchers sit on a follower [default: the first connection's].
        #[arg(long)]
        writer_endpoint: Option<String>,
    },
    /// Keep-alives for granted leases over one stream per client.
    LeaseKeepalive {
        /// Flags every workload takes.
        #[command(flatten)]
        common: CommonArgs,
        /// Leases granted up front and shared out among the clients.
        #[arg(long, default_value_t = 100)]
        leases: usize,
        /// TTL of the granted leases.
        #[arg(long, default_value_t = 30)]
        lease_ttl_secs: i64,
    },
}

/// Flags every workload takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// gRPC endpoints, comma-separated: host:port (plain HTTP/2) or http://host:port.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// gRPC connections to open, spread over the endpoints [default: one per endpoint].
    #[arg(long = "conns")]
    pub connections: Option<usize>,
    /// Concurrent clients, spread over the connections.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Open-loop target rate in operations per second across all clients; latency is measured from each request's scheduled time [default: closed loop].
    #[arg(long = "rate", value_name = "OPS_PER_SEC")]
    pub rate_ops_per_sec: Option<f64>,
    /// Seconds to run [default: 10 unless --total is given].
    #[arg(long = "duration", value_name = "SECONDS")]
    pub duration_secs: Option<u64>,
    /// Operations to send; the run stops at whichever of --duration and --total comes first.
    #[arg(long = "total", value_name = "OPS")]
    pub total_ops: Option<u64>,
    /// Distinct keys; read workloads write them all before measuring.
    #[arg(long, default_value_t = 10_000)]
    pub key_count: u64,
    /// Bytes per key, prefix included.
    #[arg(long = "key-size", value_name = "BYTES", default_value_t = 16)]
    pub key_bytes: usize,
    /// Bytes per value.
    #[arg(long = "value-size", value_name = "BYTES", default_value_t = 64)]
    pub value_bytes: usize,
    /// Prefix of every key the run writes; concurrent runs need distinct prefixes.
    #[arg(long, default_value = "bench/")]
    pub key_prefix: String,
    /// Per-request timeout; slower requests count as DeadlineExceeded.
    #[arg(long, default_value_t = 5_000)]
    pub request_timeout_ms: u64,
    /// Timeout for opening each connection.
    #[arg(long, default_value_t = 3_000)]
    pub connect_timeout_ms: u64,
    /// Seed for key choice, so that two runs send the same keys in the same order.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The keys exist already (an earlier run wrote them): read workloads do not write them again first.
    #[arg(long)]
    pub skip_populate: bool,
    /// Format of the report on standard output.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Also write the report as JSON to this file.
    #[arg(long = "json", value_name = "FILE")]
    pub json_path: Option<PathBuf>,
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// An aligned table for terminals.
    Table,
    /// Pretty-printed JSON, as written by `--json`.
    Json,
}

impl WorkloadCommand {
    /// The run configuration and the output flags this command line asks for.
    pub fn into_config(self) -> (WorkloadConfig, OutputFormat, Option<PathBuf>) {
        let (workload, common) = match self {
            WorkloadCommand::Put(common) => (Workload::Put, common),
            WorkloadCommand::Get(common) => (Workload::Get, common),
            WorkloadCommand::GetSerializable(common) => (Workload::GetSerializable, common),
            WorkloadCommand::Range { common, range_keys } => {
                (Workload::Range { range_keys }, common)
            }
            WorkloadCommand::Cas {
                common,
                attempts_max,
            } => (Workload::Cas { attempts_max }, common),
            WorkloadCommand::TxnRead(common) => (Workload::TxnRead, common),
            WorkloadCommand::Mixed { common, read_ratio } => {
                (Workload::Mixed { read_ratio }, common)
            }
            WorkloadCommand::Watch {
                common,
                watchers,
                streams,
                watched_keys,
                drain_timeout_ms,
                writer_endpoint,
            } => (
                Workload::Watch {
                    watchers,
                    streams: streams.unwrap_or(watchers),
                    watched_keys,
                    drain_timeout_ms,
                    writer_endpoint,
                },
                common,
            ),
            WorkloadCommand::LeaseKeepalive {
                common,
                leases,
                lease_ttl_secs,
            } => (
                Workload::LeaseKeepAlive {
                    leases,
                    lease_ttl_secs,
                },
                common,
            ),
        };
        let duration_secs = match (common.duration_secs, common.total_ops) {
            (None, None) => Some(DEFAULT_DURATION_SECS),
            (duration_secs, _) => duration_secs,
        };
        let config = WorkloadConfig {
            connections: common.connections.unwrap_or(common.endpoints.len()),
            workload,
            endpoints: common.endpoints,
            clients: common.clients,
            rate_ops_per_sec: common.rate_ops_per_sec,
            duration_secs,
            total_ops: common.total_ops,
            key_count: common.key_count,
            key_bytes: common.key_bytes,
            value_bytes: common.value_bytes,
            key_prefix: common.key_prefix,
            request_timeout_ms: common.request_timeout_ms,
            connect_timeout_ms: common.connect_timeout_ms,
            seed: common.seed,
            skip_populate: common.skip_populate,
        };
        (config, common.output, common.json_path)
    }
}

/// Runs what the command line names and prints its report.
pub async fn execute(cli: Cli) -> Result<(), BenchError> {
    match cli.command {
        Command::Workload(workload) => {
            let (config, output, json_path) = workload.into_config();
            let report = crate::run(config).await?;
            print_report(&report, output, json_path)
        }
        Command::Compare(options) => crate::compare::run_until_interrupted(options)
            .await
            .map(drop),
        Command::WatchScale(mut options) => {
            options.only = vec![Section::WatchScale.name().to_owned()];
            crate::compare::run_until_interrupted(options)
                .await
                .map(drop)
        }
    }
}

fn print_report(
    report: &Report,
    output: OutputFormat,
    json_path: Option<PathBuf>,
) -> Result<(), BenchError> {
    match output {
        OutputFormat::Table => print!("{}", report.to_table()),
        OutputFormat::Json => println!("{}", report.to_json()?),
    }
    if let Some(path) = json_path {
        std::fs::write(&path, report.to_json()? + "\n")
            .map_err(|source| BenchError::WriteReport { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("vane-bench").chain(args.iter().copied())).unwrap()
    }

    fn config_of(args: &[&str]) -> WorkloadConfig {
        match parse(args).command {
            Command::Workload(workload) => workload.into_config().0,
            other => panic!("not a workload: {other:?}"),
        }
    }

    #[test]
    fn flags_map_onto_the_config() {
        let config = config_of(&[
            "mixed",
            "--endpoints",
            "http://127.0.0.1:1,http://127.0.0.1:2",
            "--clients",
            "16",
            "--rate",
            "500",
            "--total",
            "1000",
            "--read-ratio",
            "0.5",
            "--key-size",
            "32",
            "--value-size",
            "128",
        ]);
        assert_eq!(config.workload, Workload::Mixed { read_ratio: 0.5 });
        assert_eq!(config.endpoints.len(), 2);
        assert_eq!(
            config.connections, 2,
            "one connection per endpoint by default"
        );
        assert_eq!(config.clients, 16);
        assert_eq!(config.rate_ops_per_sec, Some(500.0));
        assert_eq!((config.duration_secs, config.total_ops), (None, Some(1000)));
        assert_eq!((config.key_bytes, config.value_bytes), (32, 128));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn watch_streams_default_to_one_per_watcher() {
        let config = config_of(&["watch", "--watchers", "7"]);
        assert!(matches!(
            config.workload,
            Workload::Watch {
                watchers: 7,
                streams: 7,
                watched_keys: None,
                writer_endpoint: None,
                ..
            }
        ));
        let config = config_of(&[
            "watch",
            "--watchers",
            "1000",
            "--streams",
            "10",
            "--watched-keys",
            "50",
            "--writer-endpoint",
            "http://127.0.0.1:9",
        ]);
        assert_eq!(
            config.workload,
            Workload::Watch {
                watchers: 1000,
                streams: 10,
                watched_keys: Some(50),
                drain_timeout_ms: 5_000,
                writer_endpoint: Some("http://127.0.0.1:9".to_owned()),
            }
        );
        assert!(config.validate().is_ok());
    }

    #[test]
    fn compare_and_watch_scale_are_commands_beside_the_workloads() {
        assert!(matches!(
            parse(&["compare", "--repetitions", "3"]).command,
            Command::Compare(CompareOptions { repetitions: 3, .. })
        ));
        assert!(matches!(
            parse(&["watch-scale"]).command,
            Command::WatchScale(_)
        ));
    }

    #[test]
    fn no_stop_condition_means_the_default_duration() {
        let config = config_of(&["put"]);
        assert_eq!(config.duration_secs, Some(DEFAULT_DURATION_SECS));
        assert_eq!(config.total_ops, None);
    }

    #[test]
    fn every_workload_has_a_subcommand() {
        for (name, expected) in [
            ("put", "put"),
            ("get", "get"),
            ("get-serializable", "get-serializable"),
            ("range", "range"),
            ("cas", "cas"),
            ("txn-read", "txn-read"),
            ("mixed", "mixed"),
            ("watch", "watch"),
            ("lease-keepalive", "lease-keepalive"),
        ] {
            assert_eq!(config_of(&[name]).workload.name(), expected);
        }
    }
}
