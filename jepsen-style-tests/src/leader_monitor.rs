//! Who leads, over time: every node is asked for its Status a few times a second from the
//! observer address (which no fault targets), and each round is kept as a sample for the
//! timeline and for reports ("the leader changed 4 times").

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::nodes::{NodeStatus, leader_among, probe};
use crate::run_clock::RunClock;

/// Pause between two polling rounds, in milliseconds.
const POLL_INTERVAL_MS: u64 = 500;

/// One polling round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderSample {
    /// When the round started, on the run's clock.
    pub time_ns: u64,
    /// Slots that answered Status.
    pub answered: Vec<usize>,
    /// The leader's slot, if the answers agree on one.
    pub leader: Option<usize>,
    /// The leader's term.
    pub term: Option<u64>,
}

/// Polls until `stop` turns true; returns the samples.
pub async fn monitor_leaders(
    clock: RunClock,
    nodes: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<LeaderSample> {
    let mut samples = Vec::new();
    loop {
        if *stop.borrow() {
            return samples;
        }
        let time_ns = clock.now_ns();
        let statuses: Vec<NodeStatus> = futures::future::join_all((1..=nodes).map(probe))
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        let leader = leader_among(&statuses);
        samples.push(LeaderSample {
            time_ns,
            answered: statuses.iter().map(|status| status.slot).collect(),
            leader: leader.map(|leader| leader.slot),
            term: leader.map(|leader| leader.raft_term),
        });
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// How many times leadership moved (a new leader or a new term) across `samples`.
pub fn leader_changes(samples: &[LeaderSample]) -> usize {
    let mut changes = 0;
    let mut current: Option<(usize, u64)> = None;
    for sample in samples {
        if let (Some(leader), Some(term)) = (sample.leader, sample.term) {
            if current.is_some_and(|known| known != (leader, term)) {
                changes += 1;
            }
            current = Some((leader, term));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(leader: Option<usize>, term: Option<u64>) -> LeaderSample {
        LeaderSample {
            time_ns: 0,
            answered: vec![1, 2, 3],
            leader,
            term,
        }
    }

    #[test]
    fn a_gap_without_a_leader_is_not_a_change_but_a_new_term_is() {
        let samples = [
            sample(Some(1), Some(2)),
            sample(None, None),
            sample(Some(1), Some(2)),
            sample(Some(1), Some(3)),
            sample(Some(2), Some(4)),
        ];
        assert_eq!(leader_changes(&samples), 2);
    }
}
