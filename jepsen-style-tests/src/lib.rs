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
//! The checkers are pure functions of a recorded history: no clocks (except the
//! linearizability search's time budget), no network, no processes. A violation is a
//! verdict returned as data; [`JepsenError`] is for histories that cannot be read or
//! were recorded against the rules, and for runs that could not be carried out.
//!
//! Around them, the runner that produces real histories (the `vane-jepsen` binary):
//!
//! * [`run_config`]: what one run is (workload, nemeses, size, time, seed);
//!   [`cli`] the command line; [`run`] one run start to finish; [`smoke`] CI's suite.
//! * [`netns`]: the network namespace each run lives in; [`firewall`] the iptables
//!   rules that cut links inside it.
//! * [`nodes`]: the real `vaned` processes, one per loopback address, their wrappers
//!   (`faketime`, `strace`) and membership changes.
//! * [`nemesis`]: the seeded fault timeline and carrying it out.
//! * [`workload`]: the clients of each workload, speaking etcd gRPC through
//!   `vane-proto`; [`etcd_rpc`] what a failed request means for the history.
//! * [`history_sink`], [`run_clock`]: recording from many tasks on one clock;
//!   [`leader_monitor`] who led when; [`verdicts`] the checkers applied to a run;
//!   [`timeline`] the HTML picture of it.

#![warn(missing_docs)]

pub mod checker;
pub mod cli;
pub mod error;
pub mod etcd_rpc;
pub mod firewall;
pub mod history;
pub mod history_sink;
pub mod leader_monitor;
pub mod link_proxy;
pub mod nemesis;
pub mod netns;
pub mod nodes;
pub mod recorder;
pub mod run;
pub mod run_clock;
pub mod run_config;
pub mod smoke;
pub mod timeline;
pub mod verdicts;
pub mod workload;

pub use error::JepsenError;
pub use history::{
    Call, CompareAndSet, LeaseGrant, LeaseKeepAlive, LeasePut, MicroOp, NemesisAction, Operation,
    Outcome, PairedOperation, RecordType, load_history, pair_operations, read_jsonl, write_jsonl,
};
pub use recorder::HistoryRecorder;
