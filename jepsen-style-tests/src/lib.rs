//! Jepsen-style verification of Vane: recorded histories and the checkers that judge them.
//!
//! * [`history`]: the operation record every workload writes (JSONL, Jepsen's field
//!   names), loading it, and pairing invocations with completions.
//! * [`recorder`]: building a history in memory as events happen.
//! * [`checker`]: one checker per property — [`checker::linearizable`] (registers),
//!   [`checker::set`] (lost adds), [`checker::append`] (Elle's list-append cycles),
//!   [`checker::watch`] (etcd's six watch guarantees), [`checker::lease`] (keys lost while
//!   their lease was kept alive).
//!
//! Everything here is a pure function of a recorded history: no clocks (except the
//! linearizability search's time budget), no network, no processes. A violation is a
//! verdict returned as data; [`JepsenError`] is only for histories that cannot be read
//! or were recorded against the rules.

#![warn(missing_docs)]

pub mod checker;
pub mod error;
pub mod history;
pub mod recorder;

pub use error::JepsenError;
pub use history::{
    Call, CompareAndSet, LeaseGrant, LeaseKeepAlive, LeasePut, MicroOp, Operation, Outcome,
    PairedOperation, RecordType, load_history, pair_operations, read_jsonl, write_jsonl,
};
pub use recorder::HistoryRecorder;
