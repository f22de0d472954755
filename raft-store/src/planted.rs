//! Deliberate bugs for the jepsen-style suite to catch, compiled in only with the
//! `planted-bugs` feature (never in a release build of `vaned`). A checker that has
//! never failed proves nothing; these give it something real to fail on.

use std::sync::atomic::{AtomicBool, Ordering};

static ACK_BEFORE_FSYNC: AtomicBool = AtomicBool::new(false);

/// Makes the Raft log acknowledge appended entries before they are durable: they are
/// written without the write-ahead log and reported flushed at once, so a `kill -9`
/// loses them just as a power cut loses unsynced data.
pub fn set_ack_before_fsync(on: bool) {
    ACK_BEFORE_FSYNC.store(on, Ordering::SeqCst);
}

/// Whether [`set_ack_before_fsync`] is on.
pub fn ack_before_fsync() -> bool {
    ACK_BEFORE_FSYNC.load(Ordering::SeqCst)
}
