//! The one clock of a run.
//!
//! Every timestamp the runner writes (operations, faults, leader samples) is nanoseconds
//! since the run began on the runner's monotonic clock, so a checker that compares a
//! completion with an invocation compares two readings of one clock, and no wall-clock
//! step (or `faketime` on a node) can reorder them.

use std::time::{Duration, Instant};

/// Nanoseconds since the start of the run, monotonic.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    started: Instant,
}

impl RunClock {
    /// A clock that reads zero now.
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
        }
    }

    /// Nanoseconds since the start.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant `offset` after the start.
    pub fn at(&self, offset: Duration) -> Instant {
        self.started + offset
    }
}
