//! The events of the last applied batches, kept in memory for the watch cache.
//!
//! Apply already holds every event it writes, with the previous value: handing them over
//! spares the watch cache reading each one back from RocksDB (twice: the version written
//! and the one before), which profiles of the put path showed costing as much as apply
//! itself. The buffer is bounded: when nobody takes the events (a store without a watch
//! cache) or the cache falls behind, the oldest revisions are dropped and the reader
//! learns it must read those from the stored history instead.

use std::collections::VecDeque;

use prost::Message;
use vane_proto::mvccpb::Event;

/// Events held at most, whatever their size.
const RECENT_EVENTS_MAX: usize = 65_536;
/// Encoded bytes of events (with previous values) held at most.
const RECENT_BYTES_MAX: usize = 32 << 20;
/// Slots the buffer keeps when it empties after a burst. A `VecDeque` never gives back
/// what it grew to, and a moment in which the watch cache fell behind under load left
/// 4,096 slots of 176 bytes (0.7 MiB) in a member for good; the cache takes every batch
/// soon after apply, so a few hundred events is what the buffer holds in steady state.
const RECENT_SLOTS_KEPT: usize = 1024;

/// Applied events not yet taken, and from which revision on they are complete.
#[derive(Debug)]
pub(crate) struct RecentEvents {
    /// Every event of every revision from here on is held (or was taken).
    complete_from: i64,
    events: VecDeque<(Event, usize)>,
    bytes: usize,
}

fn revision_of(event: &Event) -> i64 {
    event.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}

impl RecentEvents {
    /// An empty buffer for a store whose applied revision is `revision`.
    pub(crate) fn new(revision: i64) -> Self {
        RecentEvents {
            complete_from: revision + 1,
            events: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Forgets everything: the store now stands at `revision` (a snapshot was installed).
    pub(crate) fn reset(&mut self, revision: i64) {
        *self = RecentEvents::new(revision);
    }

    /// Adds the events of one committed batch, in revision order, dropping the oldest
    /// revisions beyond the bounds.
    pub(crate) fn push(&mut self, events: Vec<Event>) {
        for event in events {
            let size = event.encoded_len();
            self.bytes += size;
            self.events.push_back((event, size));
        }
        while self.events.len() > RECENT_EVENTS_MAX || self.bytes > RECENT_BYTES_MAX {
            let Some(oldest) = self.events.front().map(|(e, _)| revision_of(e)) else {
                break;
            };
            // Whole revisions only: a reader must never see half of one.
            while let Some((event, size)) = self.events.front() {
                if revision_of(event) != oldest {
                    break;
                }
                self.bytes -= size;
                self.events.pop_front();
            }
            self.complete_from = oldest + 1;
        }
    }

    /// Takes every event of revisions `from..=through`, and drops those below `from`.
    /// `None` when the revisions from `from` on are not all held any more: the caller
    /// reads them from the stored history, then asks again.
    pub(crate) fn take(&mut self, from: i64, through: i64) -> Option<Vec<Event>> {
        if from < self.complete_from {
            return None;
        }
        while let Some((event, size)) = self.events.front() {
            if revision_of(event) >= from {
                break;
            }
            self.bytes -= size;
            self.events.pop_front();
        }
        let count = self
            .events
            .iter()
            .take_while(|(e, _)| revision_of(e) <= through)
            .count();
        let taken: Vec<Event> = self
            .events
            .drain(..count)
            .map(|(event, size)| {
                self.bytes -= size;
                event
            })
            .collect();
        self.complete_from = self.complete_from.max(through + 1);
        if self.events.capacity() > RECENT_SLOTS_KEPT
            && self.events.len() * 4 < self.events.capacity()
        {
            self.events
                .shrink_to((self.events.len() * 2).max(RECENT_SLOTS_KEPT));
        }
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_proto::mvccpb::KeyValue;

    fn event(revision: i64, value_len: usize) -> Event {
        Event {
            r#type: 0,
            kv: Some(KeyValue {
                key: b"k".to_vec(),
                mod_revision: revision,
                value: vec![0; value_len],
                ..Default::default()
            }),
            prev_kv: None,
        }
    }

    fn revisions(events: &[Event]) -> Vec<i64> {
        events.iter().map(revision_of).collect()
    }

    #[test]
    fn the_buffer_gives_back_what_a_burst_grew_it_to_once_taken() {
        let mut recent = RecentEvents::new(0);
        recent.push((1..=5_000).map(|revision| event(revision, 1)).collect());
        assert!(recent.events.capacity() >= 5_000);
        let taken = recent.take(1, 4_990).expect("all held");
        assert_eq!(taken.len(), 4_990);
        assert_eq!(
            revisions(&recent.take(4_991, 5_000).expect("all held")).len(),
            10
        );
        assert!(
            recent.events.capacity() <= 2 * RECENT_SLOTS_KEPT,
            "{} slots kept for {} events",
            recent.events.capacity(),
            recent.events.len()
        );
        recent.push(vec![event(5_001, 1)]);
        assert_eq!(
            revisions(&recent.take(5_001, 5_001).expect("held")),
            [5_001]
        );
    }

    #[test]
    fn hands_over_whole_revisions_in_order_and_only_once() {
        let mut recent = RecentEvents::new(10);
        recent.push(vec![event(11, 1), event(11, 1), event(12, 1)]);
        recent.push(vec![event(13, 1)]);
        assert_eq!(revisions(&recent.take(11, 12).unwrap()), vec![11, 11, 12]);
        assert_eq!(revisions(&recent.take(13, 13).unwrap()), vec![13]);
        assert_eq!(recent.take(14, 14).unwrap(), Vec::<Event>::new());
        // Taken events are gone: asking again from below is a miss, not a repeat.
        assert_eq!(recent.take(11, 13), None);
        assert_eq!(recent.bytes, 0);
    }

    #[test]
    fn a_reader_behind_what_was_dropped_is_told_to_read_the_disk() {
        let mut recent = RecentEvents::new(0);
        let big = RECENT_BYTES_MAX / 4;
        for revision in 1..=6 {
            recent.push(vec![event(revision, big)]);
        }
        assert!(recent.bytes <= RECENT_BYTES_MAX);
        assert_eq!(recent.take(1, 6), None);
        // From the first revision still complete, everything is there.
        let first = recent.complete_from;
        assert!(first > 1);
        assert_eq!(
            revisions(&recent.take(first, 6).unwrap()),
            (first..=6).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_reader_ahead_skips_what_it_has() {
        let mut recent = RecentEvents::new(0);
        recent.push(vec![event(1, 1), event(2, 1), event(3, 1)]);
        assert_eq!(revisions(&recent.take(3, 3).unwrap()), vec![3]);
        recent.reset(100);
        assert_eq!(recent.take(50, 100), None);
        assert_eq!(recent.take(101, 101).unwrap(), Vec::<Event>::new());
    }
}
