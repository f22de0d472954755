//! When each request of the measured phase is sent, and when the phase ends.
//!
//! Closed loop: a client sends its next request as soon as the previous one answers, and its
//! latency runs from the actual send. Open loop: request `i` is due at `start + i / rate`
//! whichever client takes it. If every client was still busy when it fell due, its latency
//! runs from the due time, not from when a client got round to sending it: a server that
//! stalls for a second shows a second of latency on every request due during the stall,
//! instead of one slow request hiding the rest (the "coordinated omission" of closed-loop
//! tools). A request taken before it is due waits for its time and is measured from its
//! actual send, so the timer's wake-up lag (up to a millisecond in tokio) is not blamed on
//! the server.
//!
//! Times are tokio's `Instant`, so that tests can pause the clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Permission to send one request: its index in the run, and in open loop the time it was
/// due, from which its latency is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Position of the request in the run, from 0.
    pub index: u64,
    /// When the request is due (open loop); `None` means now (closed loop).
    pub due_at: Option<Instant>,
}

/// The open-loop timetable: request `i` is due at `start + i / rate_ops_per_sec`.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoopTimetable {
    start: Instant,
    rate_ops_per_sec: f64,
}

impl OpenLoopTimetable {
    /// A timetable at a fixed rate; `rate_ops_per_sec` must be positive and finite
    /// (checked by [`crate::WorkloadConfig::validate`]).
    pub fn new(start: Instant, rate_ops_per_sec: f64) -> Self {
        OpenLoopTimetable {
            start,
            rate_ops_per_sec,
        }
    }

    /// When request `index` is due; `None` if that lies beyond what `Instant` can hold.
    pub fn due_at(&self, index: u64) -> Option<Instant> {
        let offset = Duration::try_from_secs_f64(index as f64 / self.rate_ops_per_sec).ok()?;
        self.start.checked_add(offset)
    }
}

/// Hands out tickets to all clients of a run until the duration or the operation count is
/// used up. Shared by every client; the only shared state is one atomic counter, so clients
/// never wait on each other.
#[derive(Debug)]
pub struct Schedule {
    next_index: AtomicU64,
    total_ops: Option<u64>,
    deadline: Option<Instant>,
    timetable: Option<OpenLoopTimetable>,
}

impl Schedule {
    /// A schedule starting at `start` that stops after `duration` or `total_ops`, whichever
    /// comes first, paced by `rate_ops_per_sec` if given.
    pub fn new(
        start: Instant,
        duration: Option<Duration>,
        total_ops: Option<u64>,
        rate_ops_per_sec: Option<f64>,
    ) -> Self {
        Schedule {
            next_index: AtomicU64::new(0),
            total_ops,
            deadline: duration.and_then(|duration| start.checked_add(duration)),
            timetable: rate_ops_per_sec.map(|rate| OpenLoopTimetable::new(start, rate)),
        }
    }

    /// The next ticket, or `None` once the run is over. `now` is the caller's clock, passed
    /// in so that tests need no sleeping.
    pub fn next_ticket(&self, now: Instant) -> Option<Ticket> {
        if self.deadline.is_some_and(|deadline| now >= deadline) && self.timetable.is_none() {
            return None;
        }
        let index = self.next_index.fetch_add(1, Ordering::Relaxed);
        if self.total_ops.is_some_and(|total_ops| index >= total_ops) {
            return None;
        }
        let Some(timetable) = self.timetable else {
            return Some(Ticket {
                index,
                due_at: None,
            });
        };
        let due_at = timetable.due_at(index)?;
        if self.deadline.is_some_and(|deadline| due_at >= deadline) {
            return None;
        }
        Some(Ticket {
            index,
            due_at: Some(due_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn open_loop_tickets_are_due_evenly_from_the_start() {
        let start = Instant::now();
        let schedule = Schedule::new(start, Some(Duration::from_secs(1)), None, Some(10.0));
        let tickets: Vec<Ticket> = std::iter::from_fn(|| schedule.next_ticket(start)).collect();
        assert_eq!(tickets.len(), 10, "10 ops/s for 1 s");
        for (position, ticket) in tickets.iter().enumerate() {
            assert_eq!(ticket.index, position as u64);
            let offset = ticket.due_at.unwrap() - start;
            let expected = Duration::from_millis(100 * position as u64);
            assert!(
                offset.abs_diff(expected) < Duration::from_micros(1),
                "{offset:?}"
            );
        }
    }

    #[test]
    fn open_loop_does_not_skip_requests_a_late_client_picks_up() {
        // A client that only asks long after the deadline still gets every due request:
        // work that fell behind is sent late and measured from its due time.
        let start = Instant::now();
        let schedule = Schedule::new(start, Some(Duration::from_secs(1)), None, Some(4.0));
        let late = start + Duration::from_secs(30);
        let tickets: Vec<Ticket> = std::iter::from_fn(|| schedule.next_ticket(late)).collect();
        assert_eq!(tickets.len(), 4);
        assert!(tickets.iter().all(|ticket| ticket.due_at.unwrap() < late));
    }

    #[test]
    fn total_ops_stops_before_the_duration() {
        let start = Instant::now();
        let schedule = Schedule::new(start, Some(Duration::from_secs(60)), Some(3), None);
        let tickets: Vec<Ticket> = std::iter::from_fn(|| schedule.next_ticket(start)).collect();
        assert_eq!(tickets.len(), 3);
        assert!(tickets.iter().all(|ticket| ticket.due_at.is_none()));
        assert_eq!(schedule.next_ticket(start), None, "stays over once over");
    }

    #[test]
    fn closed_loop_stops_at_the_deadline() {
        let start = Instant::now();
        let schedule = Schedule::new(start, Some(Duration::from_secs(1)), None, None);
        assert!(
            schedule
                .next_ticket(start + Duration::from_millis(999))
                .is_some()
        );
        assert_eq!(schedule.next_ticket(start + Duration::from_secs(1)), None);
    }

    #[test]
    fn an_absurdly_low_rate_ends_the_run_instead_of_overflowing() {
        let start = Instant::now();
        let schedule = Schedule::new(start, None, Some(3), Some(1e-300));
        assert_eq!(
            schedule.next_ticket(start).map(|ticket| ticket.index),
            Some(0)
        );
        assert_eq!(schedule.next_ticket(start), None);
    }

    #[test]
    fn concurrent_clients_never_share_a_ticket() {
        let start = Instant::now();
        let schedule = Arc::new(Schedule::new(start, None, Some(10_000), Some(1e9)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let schedule = Arc::clone(&schedule);
                std::thread::spawn(move || {
                    std::iter::from_fn(|| schedule.next_ticket(start))
                        .map(|ticket| ticket.index)
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let indexes: Vec<u64> = threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect();
        let unique: HashSet<u64> = indexes.iter().copied().collect();
        assert_eq!(indexes.len(), 10_000);
        assert_eq!(unique.len(), 10_000);
    }
}
