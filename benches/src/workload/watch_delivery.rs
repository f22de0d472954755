//! Checking one watcher's events against what the writer wrote. The single writer numbers
//! its puts 0, 1, 2, ... and sends them one at a time, so the order of sequence numbers is
//! the order of revisions, and a watcher must receive every acknowledged number exactly
//! once, in order. The tracker keeps only the gaps it has seen, not every number, so its
//! memory grows with anomalies, not with the length of the run.

use std::ops::Range;

use crate::report::WatcherDelivery;

/// What the writer did: puts numbered `0..puts_sent`, of which `failed_seqs` (ascending)
/// failed or timed out. A failed put may still have been applied, so a watcher that sees
/// one is right, and one that misses it is right too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterLog {
    /// Puts sent, numbered from 0.
    pub puts_sent: u64,
    /// Sequence numbers of the puts that failed, ascending.
    pub failed_seqs: Vec<u64>,
}

impl WriterLog {
    /// Puts the server acknowledged.
    pub fn puts_acknowledged(&self) -> u64 {
        self.puts_sent - self.failed_seqs.len() as u64
    }

    /// The highest acknowledged sequence number: once a watcher has received it, every
    /// acknowledged put before it has had its chance to arrive.
    pub fn last_acknowledged_seq(&self) -> Option<u64> {
        (0..self.puts_sent)
            .rev()
            .find(|seq| self.failed_seqs.binary_search(seq).is_err())
    }

    fn failed_within(&self, seqs: &Range<u64>) -> u64 {
        let below_start = self.failed_seqs.partition_point(|&seq| seq < seqs.start);
        let below_end = self.failed_seqs.partition_point(|&seq| seq < seqs.end);
        (below_end - below_start) as u64
    }
}

/// The sequence numbers one watcher has received so far.
#[derive(Debug, Clone, Default)]
pub struct DeliveryTracker {
    highest_seen: Option<u64>,
    /// Numbers below `highest_seen` not received yet: ascending, disjoint, half-open.
    gaps: Vec<Range<u64>>,
    events_received: u64,
    events_duplicated: u64,
    events_reordered: u64,
}

impl DeliveryTracker {
    /// Takes note of one received event.
    pub fn observe(&mut self, seq: u64) {
        self.events_received += 1;
        let next_expected = self.highest_seen.map_or(0, |highest| highest + 1);
        if seq >= next_expected {
            if seq > next_expected {
                self.gaps.push(next_expected..seq);
            }
            self.highest_seen = Some(seq);
        } else if self.fill_gap(seq) {
            self.events_reordered += 1;
        } else {
            self.events_duplicated += 1;
        }
    }

    /// Whether the watcher has received `seq` or anything after it.
    pub fn has_reached(&self, seq: Option<u64>) -> bool {
        match (seq, self.highest_seen) {
            (None, _) => true,
            (Some(seq), Some(highest)) => highest >= seq,
            (Some(_), None) => false,
        }
    }

    /// The final count, once the writer is done and the watcher has stopped receiving.
    pub fn finish(&self, watcher: usize, writer: &WriterLog) -> WatcherDelivery {
        let next_expected = self.highest_seen.map_or(0, |highest| highest + 1);
        let tail = next_expected..writer.puts_sent.max(next_expected);
        let events_lost = self
            .gaps
            .iter()
            .chain(std::iter::once(&tail))
            .map(|missing| (missing.end - missing.start) - writer.failed_within(missing))
            .sum();
        WatcherDelivery {
            watcher,
            events_received: self.events_received,
            events_lost,
            events_duplicated: self.events_duplicated,
            events_reordered: self.events_reordered,
        }
    }

    /// Removes `seq` from the gaps if it is in one; false if it was already received.
    fn fill_gap(&mut self, seq: u64) -> bool {
        let position = self.gaps.partition_point(|gap| gap.end <= seq);
        let Some(gap) = self.gaps.get(position).cloned() else {
            return false;
        };
        if !gap.contains(&seq) {
            return false;
        }
        match (seq == gap.start, seq + 1 == gap.end) {
            (true, true) => {
                self.gaps.remove(position);
            }
            (true, false) => self.gaps[position].start += 1,
            (false, true) => self.gaps[position].end -= 1,
            (false, false) => {
                self.gaps[position].end = seq;
                self.gaps.insert(position + 1, seq + 1..gap.end);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(puts_sent: u64, failed_seqs: &[u64]) -> WriterLog {
        WriterLog {
            puts_sent,
            failed_seqs: failed_seqs.to_vec(),
        }
    }

    fn deliver(seqs: &[u64]) -> DeliveryTracker {
        let mut tracker = DeliveryTracker::default();
        seqs.iter().for_each(|&seq| tracker.observe(seq));
        tracker
    }

    #[test]
    fn every_put_once_in_order_is_clean() {
        let delivery = deliver(&[0, 1, 2, 3]).finish(0, &writer(4, &[]));
        assert!(!delivery.has_anomalies(), "{delivery:?}");
        assert_eq!(delivery.events_received, 4);
    }

    #[test]
    fn skipped_and_missing_tail_events_are_lost() {
        let delivery = deliver(&[0, 2, 3]).finish(0, &writer(6, &[]));
        assert_eq!(delivery.events_lost, 3, "1 in a gap, 4 and 5 at the tail");
    }

    #[test]
    fn a_watcher_that_received_nothing_lost_everything_acknowledged() {
        let delivery = deliver(&[]).finish(0, &writer(5, &[1]));
        assert_eq!(delivery.events_lost, 4);
    }

    #[test]
    fn failed_puts_are_neither_lost_when_missing_nor_wrong_when_seen() {
        assert_eq!(deliver(&[0, 2]).finish(0, &writer(3, &[1])).events_lost, 0);
        assert!(
            !deliver(&[0, 1, 2])
                .finish(0, &writer(3, &[1]))
                .has_anomalies()
        );
        assert_eq!(deliver(&[0, 1]).finish(0, &writer(3, &[2])).events_lost, 0);
    }

    #[test]
    fn repeats_are_duplicates_and_late_arrivals_are_reordered() {
        let delivery = deliver(&[0, 1, 1, 3, 2, 2, 0]).finish(0, &writer(4, &[]));
        assert_eq!(delivery.events_duplicated, 3, "{delivery:?}");
        assert_eq!(delivery.events_reordered, 1, "{delivery:?}");
        assert_eq!(delivery.events_lost, 0, "{delivery:?}");
    }

    #[test]
    fn late_arrivals_split_gaps_correctly() {
        let mut tracker = deliver(&[0, 10]);
        for seq in [5, 1, 9, 3] {
            tracker.observe(seq);
        }
        assert_eq!(tracker.gaps, vec![2..3, 4..5, 6..9]);
        assert_eq!(tracker.finish(0, &writer(11, &[])).events_lost, 5);
    }

    #[test]
    fn the_last_acknowledged_put_skips_trailing_failures() {
        assert_eq!(writer(0, &[]).last_acknowledged_seq(), None);
        assert_eq!(writer(3, &[]).last_acknowledged_seq(), Some(2));
        assert_eq!(writer(4, &[2, 3]).last_acknowledged_seq(), Some(1));
        assert_eq!(writer(2, &[0, 1]).last_acknowledged_seq(), None);
        assert_eq!(writer(4, &[2, 3]).puts_acknowledged(), 2);
    }

    #[test]
    fn reaching_a_sequence_number() {
        let tracker = deliver(&[0, 1]);
        assert!(tracker.has_reached(None));
        assert!(tracker.has_reached(Some(1)));
        assert!(!tracker.has_reached(Some(2)));
        assert!(!DeliveryTracker::default().has_reached(Some(0)));
    }
}
