//! The one error type of `vane-jepsen`.
//!
//! An error here means either that the *input* cannot be checked (a history file that
//! does not parse, records that break the recording rules every checker relies on: one
//! pending operation per process, completions that match their invocation), or that a
//! run could not be carried out (not root, no network namespace, a `vaned` that would
//! not start). A history that parses but violates a consistency guarantee is never an
//! error: it is a verdict, returned by the checker as data.

use std::path::PathBuf;

/// Everything that stops a history from being loaded or checked.
#[derive(Debug, thiserror::Error)]
pub enum JepsenError {
    /// The history file could not be opened or read.
    #[error("cannot read history file {path}: {source}; check the path the workload wrote to")]
    ReadHistory {
        /// The file that was being read.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The history file could not be created or written.
    #[error(
        "cannot write history file {path}: {source}; check the directory exists and is writable"
    )]
    WriteHistory {
        /// The file that was being written.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// One line of a JSONL history is not a record this crate understands.
    #[error(
        "history file {path}, line {line_number}: {source}; every line must be one JSON record as written by `write_jsonl`"
    )]
    MalformedRecord {
        /// The file that holds the line.
        path: PathBuf,
        /// The 1-based line number.
        line_number: usize,
        /// What the JSON decoder said.
        source: serde_json::Error,
    },

    /// A record could not be encoded as JSON (a map with non-string keys, for instance).
    #[error("cannot encode a history record as JSON: {source}")]
    EncodeRecord {
        /// What the JSON encoder said.
        source: serde_json::Error,
    },

    /// A completion (`ok`, `fail` or `info`) arrived from a process with nothing pending.
    #[error(
        "record {index}: process {process} completed an operation it never invoked; a process must record `invoke` before its completion"
    )]
    CompletionWithoutInvocation {
        /// The process that completed.
        process: u64,
        /// The completion record's index.
        index: u64,
    },

    /// A process invoked a second operation while its first was still pending.
    #[error(
        "record {index}: process {process} invoked while its operation {pending_index} was still pending; a process runs one operation at a time (after an `info`, continue under a new process id)"
    )]
    InvocationWhilePending {
        /// The process that invoked twice.
        process: u64,
        /// The invocation that was still pending.
        pending_index: u64,
        /// The second invocation.
        index: u64,
    },

    /// A completion names a different function than the invocation it completes.
    #[error(
        "record {complete_index}: process {process} invoked `{invoked}` (record {invoke_index}) but completed `{completed}`; a completion must repeat its invocation's `f`"
    )]
    CompletionMismatch {
        /// The process whose records disagree.
        process: u64,
        /// The invocation record's index.
        invoke_index: u64,
        /// The completion record's index.
        complete_index: u64,
        /// The invocation's `f`.
        invoked: &'static str,
        /// The completion's `f`.
        completed: &'static str,
    },

    /// A completion carries an earlier timestamp than its invocation.
    #[error(
        "record {complete_index}: completion at {complete_time_ns} ns precedes its invocation (record {invoke_index}) at {invoke_time_ns} ns; record times from one monotonic clock"
    )]
    CompletionBeforeInvocation {
        /// The invocation record's index.
        invoke_index: u64,
        /// The completion record's index.
        complete_index: u64,
        /// The invocation's timestamp.
        invoke_time_ns: u64,
        /// The completion's timestamp.
        complete_time_ns: u64,
    },

    /// An operation that acts on one key was recorded without its key.
    #[error("record {index}: a `{function}` operation needs a `key`; record the key it acted on")]
    MissingKey {
        /// The invocation record's index.
        index: u64,
        /// The operation's `f`.
        function: &'static str,
    },

    /// Two transactions appended the same value to the same key, so a read of it cannot
    /// name its writer. List-append workloads must append unique values per key.
    #[error(
        "key {key:?}: value {value} is appended by both operation {first_index} and {second_index}; append unique values per key"
    )]
    DuplicateAppend {
        /// The key appended to.
        key: String,
        /// The value appended twice.
        value: i64,
        /// The first appending transaction's invocation index.
        first_index: u64,
        /// The second appending transaction's invocation index.
        second_index: u64,
    },

    /// A set history has no read that began after every add had been invoked, so lost
    /// adds cannot be told from adds that simply had not happened yet.
    #[error(
        "set history has no final read: record a `read-set` after healing the cluster and after every add was invoked"
    )]
    NoFinalRead,

    /// One watcher's sessions watch different key ranges, so their events cannot be
    /// checked as one resumed stream.
    #[error(
        "watcher {watcher:?}: its sessions watch different key ranges; record a resumption as a session of the same range, or use a new watcher name"
    )]
    WatcherRangeChanged {
        /// The watcher's name.
        watcher: String,
    },

    /// The run needs something from the machine that it does not have (root, `ip netns`,
    /// `iptables`, a `vaned` binary).
    #[error("{what}: {detail}")]
    Environment {
        /// What was needed.
        what: String,
        /// What went wrong and what to do about it.
        detail: String,
    },

    /// A file or directory of a run could not be created, read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What the runner was doing.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A process of the cluster under test could not be started, signalled or stopped.
    #[error("node {node}: {detail}; see its log {log}")]
    Node {
        /// The member's name.
        node: String,
        /// What failed.
        detail: String,
        /// The member's log file.
        log: PathBuf,
    },

    /// The cluster did not become usable (a leader that every member agrees on) in time.
    #[error(
        "the cluster did not become ready within {waited_ms} ms: {detail}; see the node logs in the run directory"
    )]
    ClusterNotReady {
        /// How long the runner waited.
        waited_ms: u64,
        /// The last thing seen.
        detail: String,
    },

    /// Nodes exited on their own (a crash, a refusal to start on their data directory):
    /// waiting will not bring them back.
    #[error("node(s) exited on their own: {detail}")]
    NodesExited {
        /// Which, how, and their last log lines.
        detail: String,
    },

    /// The command line asked for something that does not exist or cannot work together.
    #[error("{0}; see `vane-jepsen run --help`")]
    InvalidArguments(String),
}
