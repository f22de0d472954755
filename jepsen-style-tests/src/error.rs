//! The one error type of `vane-jepsen`.
//!
//! An error here means the *input* cannot be checked: a history file that does not
//! parse, or records that break the recording rules every checker relies on (one
//! pending operation per process, completions that match their invocation). A history
//! that parses but violates a consistency guarantee is not an error: it is a verdict,
//! returned by the checker as data.

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
}
