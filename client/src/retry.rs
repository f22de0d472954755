//! How long to pause between attempts: bounded exponential backoff with jitter, so that
//! many clients retrying after the same leader crash spread out instead of arriving
//! together, and a long outage costs one attempt per [`BACKOFF_MAX_MS`], not a busy loop.

use std::time::Duration;

use rand::Rng;

/// The pause before the first retry, in milliseconds: short, because the next attempt
/// usually goes to another member that may well answer at once.
pub(crate) const BACKOFF_FIRST_MS: u64 = 20;
/// The longest pause between two attempts, in milliseconds.
pub(crate) const BACKOFF_MAX_MS: u64 = 1_000;

/// Whether a request may be sent again after an attempt whose outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads, idempotent requests, and writes made safe by a session (or knowingly
    /// retried without one, as etcd's clients do).
    Always,
    /// Requests whose repetition would do harm or report a false error (membership
    /// changes): retried only when the failed attempt was certainly not applied.
    OnlyUnapplied,
}

/// The pauses of one call's retries.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    retries: u32,
}

impl Backoff {
    /// The pause before the next attempt: the bound doubles per retry up to
    /// [`BACKOFF_MAX_MS`], and the pause is drawn uniformly from its upper half.
    pub(crate) fn next_pause(&mut self) -> Duration {
        let bound_ms = BACKOFF_FIRST_MS
            .saturating_mul(1u64 << self.retries.min(16))
            .min(BACKOFF_MAX_MS);
        self.retries = self.retries.saturating_add(1);
        let pause_ms = rand::rng().random_range(bound_ms / 2..=bound_ms);
        Duration::from_millis(pause_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_then_stay_bounded() {
        let mut backoff = Backoff::default();
        let first = backoff.next_pause();
        assert!(first >= Duration::from_millis(BACKOFF_FIRST_MS / 2));
        assert!(first <= Duration::from_millis(BACKOFF_FIRST_MS));
        for _ in 0..100 {
            let pause = backoff.next_pause();
            assert!(pause <= Duration::from_millis(BACKOFF_MAX_MS));
        }
        let late = backoff.next_pause();
        assert!(late >= Duration::from_millis(BACKOFF_MAX_MS / 2));
    }
}
