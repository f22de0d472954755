//! Deliberate faults of the store, compiled in only with the `planted-bugs` feature (never
//! in a release build of `vaned`).
//!
//! Two kinds, both switched on through `vaned-planted`:
//! * Bugs for the jepsen-style suite to catch. A checker that has never failed proves
//!   nothing; these give it something real to fail on.
//! * Floors for the benchmarks (`make bench-floors`): the store with part of its work
//!   taken away, to measure what that part costs and what the rest of a put costs without
//!   it. They lose data by design.

use std::sync::atomic::{AtomicU8, Ordering};

/// One deliberate fault. Several may be on at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// The Raft log acknowledges appended entries before they are durable: they are
    /// written without the write-ahead log and reported flushed at once, so a `kill -9`
    /// loses them just as a power cut loses unsynced data. Also the floor of a put
    /// without the log's fsync.
    AckBeforeFsync = 1,
    /// The state machine writes no key, value or revision to RocksDB: they live only in
    /// the current-version cache for as long as it holds them. The floor of a put with no
    /// key-value storage at all, under every storage layout.
    MvccUnpersisted = 2,
    /// Each put is written as the cheapest layout a multi-version store could use: its
    /// value once, appended in revision order, and a small current-version record (the
    /// revisions, no value) per key, with no per-key history. Reads of values and of old
    /// revisions come back wrong. The floor of a put under any layout that stores the
    /// value.
    ValueOnceLayout = 4,
}

static ON: AtomicU8 = AtomicU8::new(0);

/// Switches `fault` on for the life of the process.
pub fn enable(fault: Fault) {
    ON.fetch_or(fault as u8, Ordering::SeqCst);
}

/// Whether `fault` is on.
pub fn is_on(fault: Fault) -> bool {
    ON.load(Ordering::Relaxed) & fault as u8 != 0
}

/// Whether a state machine batch leaves out its writes to `cf`: under
/// [`Fault::MvccUnpersisted`], those of the key-value families.
pub(crate) fn leaves_out(cf: crate::db::Cf) -> bool {
    use crate::db::Cf;
    matches!(cf, Cf::Kv | Cf::KvHistory | Cf::Revisions) && is_on(Fault::MvccUnpersisted)
}
