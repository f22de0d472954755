//! Deliberate bugs for the jepsen-style suite, compiled in only with the `planted-bugs`
//! feature and reachable only through the `vaned-planted` binary. They exist so the
//! suite can show that its checkers catch the violations they are meant to catch.

use std::sync::atomic::{AtomicBool, Ordering};

static STALE_READS: AtomicBool = AtomicBool::new(false);

/// A bug `vaned-planted --planted-bug NAME` switches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlantedBug {
    /// Linearizable reads are served from local state without a read index: a
    /// partitioned old leader or a lagging follower answers with stale data.
    StaleReads,
    /// The Raft log acknowledges entries before they are durable (see
    /// `vane_raft_store::planted`).
    AckBeforeFsync,
}

/// Switches `bug` on for the life of the process.
pub fn enable(bug: PlantedBug) {
    tracing::warn!(
        ?bug,
        "PLANTED BUG ENABLED: this node is deliberately incorrect"
    );
    match bug {
        PlantedBug::StaleReads => STALE_READS.store(true, Ordering::SeqCst),
        PlantedBug::AckBeforeFsync => vane_raft_store::planted::set_ack_before_fsync(true),
    }
}

/// Whether linearizable reads skip the read index.
pub fn stale_reads() -> bool {
    STALE_READS.load(Ordering::SeqCst)
}
