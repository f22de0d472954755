//! The one error type of `vane-bench`: everything that stops a run before it can produce a
//! report. Failures of individual requests during the measured phase are not errors here;
//! they are counted in the report, because a benchmark must survive them to say how many
//! there were.

use std::path::PathBuf;

/// Why a benchmark run could not start, finish or save its report. Each message names the
/// thing that failed and what to change.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A configuration value breaks a rule; `flag` is the command-line flag to change.
    #[error("invalid {flag}: {reason}")]
    InvalidConfig {
        /// The command-line flag that carries the bad value, e.g. `--clients`.
        flag: &'static str,
        /// The rule it breaks and the fix.
        reason: String,
    },

    /// An endpoint is not a URI tonic can dial.
    #[error(
        "endpoint `{endpoint}` is not a valid URI ({source}); pass --endpoints as host:port or http://host:port"
    )]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What tonic disliked about it.
        source: tonic::transport::Error,
    },

    /// The TCP/HTTP2 connection to an endpoint could not be opened.
    #[error(
        "could not connect to {endpoint}: {source}; check that the server is running and listening there, and that --endpoints is right"
    )]
    Connect {
        /// The endpoint that refused or timed out.
        endpoint: String,
        /// The transport error.
        source: tonic::transport::Error,
    },

    /// A request needed to prepare the run (pre-populating keys, granting leases, creating
    /// watchers) failed, so the measured phase would have nothing valid to measure.
    #[error(
        "setup step `{step}` failed: {detail}; check that the server is healthy and accepts writes, or raise --request-timeout-ms"
    )]
    Setup {
        /// What was being prepared, e.g. `pre-populate key bench/0000000042`.
        step: String,
        /// The gRPC status or check that failed.
        detail: String,
    },

    /// A cluster of the `compare` command could not be started, stopped or inspected.
    #[error("{system} cluster: {detail}")]
    Cluster {
        /// `etcd` or `vane`.
        system: &'static str,
        /// What failed and where its log is.
        detail: String,
    },

    /// A file or directory of the `compare` command could not be created, read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was tried, e.g. "create the results directory".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's answer.
        source: std::io::Error,
    },

    /// The run was interrupted (Ctrl-C); the clusters it had started were killed.
    #[error("interrupted; the clusters this run started were stopped")]
    Interrupted,

    /// A client task ended by panicking; a bug in vane-bench.
    #[error("a benchmark client task failed: {0}; this is a bug in vane-bench, please report it")]
    ClientTask(#[from] tokio::task::JoinError),

    /// Latency histograms could not be created or merged; a bug in vane-bench, since all
    /// histograms share one set of bounds.
    #[error("latency histogram error: {0}; this is a bug in vane-bench, please report it")]
    Histogram(String),

    /// The report could not be turned into JSON.
    #[error("could not serialise the report as JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// The JSON report file could not be written.
    #[error(
        "could not write the JSON report to {path}: {source}; check that the directory exists and is writable"
    )]
    WriteReport {
        /// The `--json` path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
