//! The seeded fault timeline.
//!
//! Faults come one at a time: a quiet gap, a fault for a few seconds, its heal, another
//! gap. Overlapping faults would make a failing history much harder to explain, and on a
//! two-core machine the cluster needs the gaps to recover. The same seed, node count,
//! nemesis list and duration always give the same timeline.

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::{Fault, KillTargets, NodeTarget, PartitionShape};
use crate::run_config::NemesisKind;

/// Quiet time before the first fault, so the history starts with a healthy stretch, in
/// milliseconds.
const FIRST_FAULT_AFTER_MS: u64 = 3000;
/// No fault starts later than this before the end of the run, in milliseconds: its heal
/// and recovery belong in the run.
const LAST_FAULT_MARGIN_MS: u64 = 4000;
/// Gap between one fault's heal and the next fault, in milliseconds (range).
const GAP_MS: (u64, u64) = (2500, 5000);
/// Wall-clock offsets the clock nemesis picks from.
const CLOCK_OFFSETS: [&str; 3] = ["+30s", "-30s", "+90s"];

/// One fault on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFault {
    /// When it starts, in milliseconds after the workload began.
    pub start_ms: u64,
    /// How long it lasts before it is healed, in milliseconds.
    pub duration_ms: u64,
    /// What it is.
    pub fault: Fault,
}

/// The timeline for a run of `run_ms` on `nodes` nodes with the `kinds` enabled.
pub fn plan_faults(
    kinds: &[NemesisKind],
    nodes: usize,
    run_ms: u64,
    seed: u64,
) -> Vec<PlannedFault> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7300);
    let mut planned = Vec::new();
    if kinds.is_empty() || nodes == 0 {
        return planned;
    }
    let mut at_ms = FIRST_FAULT_AFTER_MS;
    while at_ms + LAST_FAULT_MARGIN_MS < run_ms {
        let kind = kinds[rng.random_range(0..kinds.len())];
        let (fault, duration_ms) = plan_one(kind, nodes, &mut rng);
        // Never let a fault run past the end: it would be healed by the final heal anyway,
        // but its stop record would then describe the final heal, not the fault.
        let duration_ms = duration_ms.min(run_ms.saturating_sub(at_ms + 1000).max(1000));
        planned.push(PlannedFault {
            start_ms: at_ms,
            duration_ms,
            fault,
        });
        at_ms += duration_ms + rng.random_range(GAP_MS.0..=GAP_MS.1);
    }
    planned
}

fn plan_one(kind: NemesisKind, nodes: usize, rng: &mut StdRng) -> (Fault, u64) {
    let slots: Vec<usize> = (1..=nodes).collect();
    let target = |rng: &mut StdRng| {
        if rng.random_bool(0.5) {
            NodeTarget::Leader
        } else {
            NodeTarget::Slot(rng.random_range(1..=nodes))
        }
    };
    let minority_size = (nodes - 1) / 2;
    match kind {
        NemesisKind::Partition => {
            let mut shuffled = slots.clone();
            shuffled.shuffle(rng);
            let shape = match rng.random_range(0..4) {
                0 => PartitionShape::IsolateOne {
                    target: target(rng),
                },
                1 => PartitionShape::MajorityMinority {
                    minority: sorted(&shuffled[..minority_size]),
                },
                2 => {
                    let half = nodes / 2;
                    PartitionShape::Bridge {
                        left: sorted(&shuffled[..half]),
                        bridge: shuffled[half],
                        right: sorted(&shuffled[half + 1..]),
                    }
                }
                _ => {
                    let (from, to) = shuffled.split_at(minority_size.max(1));
                    if rng.random_bool(0.5) {
                        PartitionShape::OneWay {
                            from: sorted(from),
                            to: sorted(to),
                        }
                    } else {
                        PartitionShape::OneWay {
                            from: sorted(to),
                            to: sorted(from),
                        }
                    }
                }
            };
            (Fault::Partition { shape }, rng.random_range(4000..=9000))
        }
        NemesisKind::Loss => (
            Fault::Loss {
                per_mille: rng.random_range(100..=300),
            },
            rng.random_range(4000..=8000),
        ),
        NemesisKind::Kill => {
            let targets = match rng.random_range(0..10) {
                0..=5 => KillTargets::One {
                    target: target(rng),
                },
                6..=7 if minority_size > 1 => {
                    let mut shuffled = slots.clone();
                    shuffled.shuffle(rng);
                    KillTargets::Minority {
                        slots: sorted(&shuffled[..minority_size]),
                    }
                }
                6..=7 => KillTargets::One {
                    target: NodeTarget::Leader,
                },
                _ => KillTargets::All,
            };
            (Fault::Kill { targets }, rng.random_range(2000..=5000))
        }
        NemesisKind::Pause => (
            Fault::Pause {
                target: target(rng),
            },
            rng.random_range(3000..=7000),
        ),
        NemesisKind::Clock => (
            Fault::Clock {
                target: target(rng),
                offset: CLOCK_OFFSETS[rng.random_range(0..CLOCK_OFFSETS.len())].to_string(),
            },
            rng.random_range(6000..=10_000),
        ),
        NemesisKind::Membership => (
            Fault::Membership {
                target: target(rng),
            },
            rng.random_range(2000..=4000),
        ),
        NemesisKind::Disk => (
            Fault::Disk {
                target: NodeTarget::Slot(rng.random_range(1..=nodes)),
            },
            rng.random_range(6000..=10_000),
        ),
        NemesisKind::Delay => {
            // Half the time one node (often the leader) is slow to reach, else the whole
            // network. Delays reach past the election timeout's lower half, so heartbeats
            // arrive late and some elections happen under delay.
            let target = rng.random_bool(0.5).then(|| target(rng));
            let base_ms = rng.random_range(20..=900);
            let jitter_ms = rng.random_range(0..=base_ms);
            (
                Fault::Delay {
                    target,
                    base_ms,
                    jitter_ms,
                },
                rng.random_range(4000..=9000),
            )
        }
    }
}

fn sorted(slots: &[usize]) -> Vec<usize> {
    let mut slots = slots.to_vec();
    slots.sort_unstable();
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_timeline_and_another_seed_another() {
        let kinds = NemesisKind::ALL;
        let first = plan_faults(&kinds, 5, 120_000, 7);
        assert_eq!(first, plan_faults(&kinds, 5, 120_000, 7));
        assert_ne!(first, plan_faults(&kinds, 5, 120_000, 8));
    }

    #[test]
    fn faults_do_not_overlap_and_end_before_the_run_does() {
        for seed in 0..50 {
            let planned = plan_faults(&NemesisKind::ALL, 3, 60_000, seed);
            assert!(!planned.is_empty());
            for pair in planned.windows(2) {
                assert!(pair[0].start_ms + pair[0].duration_ms < pair[1].start_ms);
            }
            let last = planned.last().unwrap();
            assert!(last.start_ms + LAST_FAULT_MARGIN_MS < 60_000);
            assert!(last.start_ms + last.duration_ms < 60_000);
        }
    }

    #[test]
    fn only_enabled_families_appear_and_partitions_split_every_node_once() {
        for seed in 0..50 {
            for fault in plan_faults(&[NemesisKind::Partition], 5, 60_000, seed) {
                let Fault::Partition { shape } = fault.fault else {
                    panic!("only partitions were enabled: {fault:?}");
                };
                match shape {
                    PartitionShape::MajorityMinority { minority } => assert_eq!(minority.len(), 2),
                    PartitionShape::Bridge {
                        left,
                        bridge,
                        right,
                    } => {
                        let mut all = [left, vec![bridge], right].concat();
                        all.sort_unstable();
                        assert_eq!(all, vec![1, 2, 3, 4, 5]);
                    }
                    PartitionShape::OneWay { from, to } => {
                        assert_eq!(from.len() + to.len(), 5);
                        assert!(from.iter().all(|slot| !to.contains(slot)));
                    }
                    PartitionShape::IsolateOne { .. } => {}
                }
            }
        }
    }

    #[test]
    fn no_nemesis_means_no_faults() {
        assert!(plan_faults(&[], 3, 60_000, 1).is_empty());
    }
}
