//! Deliberate bugs, compiled in only with the `planted-bugs` feature and reachable only
//! through the `vaned-planted` binary. They exist so the jepsen-style suite can show that
//! its checkers catch the violations they are meant to catch, and so the benchmarks can
//! measure what a put costs with part of the store's work taken away (`make
//! bench-floors`).

use std::sync::atomic::{AtomicBool, Ordering};

use vane_raft_store::planted::{self, Fault};

static STALE_READS: AtomicBool = AtomicBool::new(false);

/// A bug `vaned-planted --planted-bug NAME` switches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlantedBug {
    /// Linearizable reads are served from local state without a read index: a
    /// partitioned old leader or a lagging follower answers with stale data.
    StaleReads,
    /// The Raft log acknowledges entries before they are durable (see
    /// `vane_raft_store::planted::Fault`).
    AckBeforeFsync,
    /// The state machine persists no key, value or revision: a benchmark floor.
    MvccUnpersisted,
    /// Puts are stored as the cheapest multi-version layout, the value once in revision
    /// order: a benchmark floor.
    ValueOnceLayout,
}

/// Switches `bug` on for the life of the process.
pub fn enable(bug: PlantedBug) {
    tracing::warn!(
        ?bug,
        "PLANTED BUG ENABLED: this node is deliberately incorrect"
    );
    match bug {
        PlantedBug::StaleReads => STALE_READS.store(true, Ordering::SeqCst),
        PlantedBug::AckBeforeFsync => planted::enable(Fault::AckBeforeFsync),
        PlantedBug::MvccUnpersisted => planted::enable(Fault::MvccUnpersisted),
        PlantedBug::ValueOnceLayout => planted::enable(Fault::ValueOnceLayout),
    }
}

/// Whether linearizable reads skip the read index.
pub fn stale_reads() -> bool {
    STALE_READS.load(Ordering::SeqCst)
}
