//! Cutting a non-linearizable history down to a small core a person can read.
//!
//! Every cut used here keeps the core *sound*: if the core cannot be linearized, neither
//! can the history it came from, so the core is a real explanation and never an artefact
//! of what was removed. Three cuts qualify:
//!
//! * **Prefix**: the history up to a time `t`, where operations still running at `t`
//!   become unknown-outcome operations (reads among them are dropped: their value was
//!   not known yet). Linearizability is prefix-closed, so the shortest failing prefix is
//!   found by binary search over completion times.
//! * **Quiescent left cut**: at a time `c` where no completed operation is in flight,
//!   everything that completed before `c` is linearized before everything invoked
//!   after it, so dropping the former and starting from an *unconstrained* register
//!   keeps any violation that remains. Operations with unknown outcomes are kept.
//! * **Dropping a read**: a read changes nothing, so removing it can only make a
//!   history easier to linearize.
//!
//! Writes are never dropped from the middle: that could make a later read look stale
//! when it was not.

use super::register::RegisterState;
use super::search::{SearchLimits, SearchResult, TimedCall, search_linearization};

/// How many read-removal attempts one shrink may spend.
const READ_REMOVAL_ATTEMPTS_MAX: usize = 256;

/// How many rounds of "cut left, drop reads" to run; dropping reads opens new quiescent
/// points, so a second round often helps and a third rarely does.
const SHRINK_ROUNDS_MAX: usize = 3;

/// The core of a non-linearizable history, as indices into the checked calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShrunkCounterexample {
    /// The calls in the core, by index, in invocation order.
    pub(crate) members: Vec<usize>,
    /// True when the core starts from the register's initial (empty) state; false when
    /// it was cut at a quiescent point and fails from *any* starting value.
    pub(crate) starts_from_initial_state: bool,
}

/// A core under construction: which calls, the prefix cut that makes later completions
/// unknown, and the starting state.
#[derive(Debug, Clone)]
struct Core {
    members: Vec<usize>,
    prefix_end_ns: u64,
    starts_from_initial_state: bool,
}

struct Shrinker<'a> {
    calls: &'a [TimedCall],
    initial_state: RegisterState,
    limits: &'a SearchLimits,
}

impl Shrinker<'_> {
    /// The calls of `core` as the search sees them: completions after the prefix end
    /// become unknown outcomes.
    fn materialize(&self, core: &Core) -> Vec<TimedCall> {
        core.members
            .iter()
            .map(|&index| {
                let call = self.calls[index];
                TimedCall {
                    return_time_ns: call
                        .return_time_ns
                        .filter(|&return_time_ns| return_time_ns <= core.prefix_end_ns),
                    ..call
                }
            })
            .collect()
    }

    /// `Some(true)` when the core cannot be linearized, `None` when the search gave up.
    fn fails(&self, core: &Core) -> Option<bool> {
        let start = if core.starts_from_initial_state {
            self.initial_state
        } else {
            RegisterState::Unconstrained
        };
        match search_linearization(&self.materialize(core), start, self.limits) {
            SearchResult::NotLinearizable => Some(true),
            SearchResult::Linearizable => Some(false),
            SearchResult::GaveUp { .. } => None,
        }
    }

    fn completes_within(&self, index: usize, prefix_end_ns: u64) -> bool {
        self.calls[index]
            .return_time_ns
            .is_some_and(|return_time_ns| return_time_ns <= prefix_end_ns)
    }

    fn prefix(&self, prefix_end_ns: u64) -> Core {
        let members = (0..self.calls.len())
            .filter(|&index| {
                let call = self.calls[index];
                call.invoke_time_ns <= prefix_end_ns
                    && (!call.call.is_read() || self.completes_within(index, prefix_end_ns))
            })
            .collect();
        Core {
            members,
            prefix_end_ns,
            starts_from_initial_state: true,
        }
    }

    /// The shortest failing prefix, by binary search over completion times.
    fn shortest_failing_prefix(&self) -> Option<Core> {
        let mut prefix_ends: Vec<u64> = self
            .calls
            .iter()
            .filter_map(|call| call.return_time_ns)
            .collect();
        prefix_ends.sort_unstable();
        prefix_ends.dedup();
        let last = prefix_ends.len().checked_sub(1)?;
        if self.fails(&self.prefix(prefix_ends[last])) != Some(true) {
            return None;
        }
        let (mut passing_below, mut failing) = (0, last);
        while passing_below < failing {
            let middle = (passing_below + failing) / 2;
            match self.fails(&self.prefix(prefix_ends[middle])) {
                Some(true) => failing = middle,
                Some(false) => passing_below = middle + 1,
                None => break,
            }
        }
        Some(self.prefix(prefix_ends[failing]))
    }

    /// The core with everything before the latest quiescent point that still fails
    /// removed.
    fn cut_at_latest_failing_quiescent_point(&self, core: &Core) -> Core {
        let mut completed: Vec<usize> = core
            .members
            .iter()
            .copied()
            .filter(|&index| self.completes_within(index, core.prefix_end_ns))
            .collect();
        completed.sort_by_key(|&index| self.calls[index].invoke_time_ns);

        // A cut at `c` is quiescent when every completed call invoked before `c` also
        // returned strictly before it.
        let mut quiescent_cuts_ns: Vec<u64> = Vec::new();
        let mut latest_return_so_far_ns: Option<u64> = None;
        for &index in &completed {
            let call = self.calls[index];
            let invoke_time_ns = call.invoke_time_ns;
            if latest_return_so_far_ns.is_none_or(|latest| latest < invoke_time_ns) {
                quiescent_cuts_ns.push(invoke_time_ns);
            }
            latest_return_so_far_ns = latest_return_so_far_ns.max(call.return_time_ns);
        }

        let window = |cut_ns: u64| -> Core {
            let members: Vec<usize> = core
                .members
                .iter()
                .copied()
                .filter(|&index| {
                    !self.completes_within(index, core.prefix_end_ns)
                        || self.calls[index].invoke_time_ns >= cut_ns
                })
                .collect();
            let removed_any = members.len() < core.members.len();
            Core {
                members,
                prefix_end_ns: core.prefix_end_ns,
                starts_from_initial_state: core.starts_from_initial_state && !removed_any,
            }
        };

        let Some(last) = quiescent_cuts_ns.len().checked_sub(1) else {
            return core.clone();
        };
        // Invariant: the window at `failing` fails; windows after `passing_above` pass.
        let (mut failing, mut passing_above) = (0, last);
        if self.fails(&window(quiescent_cuts_ns[last])) == Some(true) {
            failing = last;
        }
        while failing < passing_above {
            let middle = (failing + passing_above).div_ceil(2);
            match self.fails(&window(quiescent_cuts_ns[middle])) {
                Some(true) => failing = middle,
                Some(false) => passing_above = middle - 1,
                None => break,
            }
        }
        if failing == 0 {
            core.clone()
        } else {
            window(quiescent_cuts_ns[failing])
        }
    }

    /// The core with every completed read removed whose removal keeps it failing.
    fn drop_unneeded_reads(&self, core: &Core) -> Core {
        let mut reads: Vec<usize> = core
            .members
            .iter()
            .copied()
            .filter(|&index| {
                self.calls[index].call.is_read() && self.completes_within(index, core.prefix_end_ns)
            })
            .collect();
        // The last reads are the likeliest witnesses; try dropping the earliest first.
        reads.sort_by_key(|&index| self.calls[index].invoke_time_ns);
        let mut current = core.clone();
        for read in reads.into_iter().take(READ_REMOVAL_ATTEMPTS_MAX) {
            let candidate = Core {
                members: current
                    .members
                    .iter()
                    .copied()
                    .filter(|&index| index != read)
                    .collect(),
                ..current.clone()
            };
            match self.fails(&candidate) {
                Some(true) => current = candidate,
                Some(false) => {}
                None => break,
            }
        }
        current
    }
}

/// Shrinks the calls of a key already known not to be linearizable from
/// `initial_state`. Stops early, with whatever core it has, when a search gives up.
pub(crate) fn shrink_counterexample(
    calls: &[TimedCall],
    initial_state: RegisterState,
    limits: &SearchLimits,
) -> ShrunkCounterexample {
    let shrinker = Shrinker {
        calls,
        initial_state,
        limits,
    };
    let mut core = shrinker.shortest_failing_prefix().unwrap_or_else(|| Core {
        members: (0..calls.len()).collect(),
        prefix_end_ns: u64::MAX,
        starts_from_initial_state: true,
    });
    for _ in 0..SHRINK_ROUNDS_MAX {
        let size_before = core.members.len();
        core = shrinker.cut_at_latest_failing_quiescent_point(&core);
        core = shrinker.drop_unneeded_reads(&core);
        if core.members.len() == size_before {
            break;
        }
    }
    let mut members = core.members;
    members.sort_by_key(|&index| (calls[index].invoke_time_ns, index));
    ShrunkCounterexample {
        members,
        starts_from_initial_state: core.starts_from_initial_state,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::checker::linearizable::register::RegisterCall;

    fn limits() -> SearchLimits {
        SearchLimits {
            deadline: Instant::now() + Duration::from_secs(60),
            memoized_configurations_max: 1_000_000,
        }
    }

    fn timed(call: RegisterCall, invoke_time_ns: u64, return_time_ns: u64) -> TimedCall {
        TimedCall {
            call,
            invoke_time_ns,
            return_time_ns: Some(return_time_ns),
        }
    }

    #[test]
    fn a_stale_read_shrinks_to_the_two_reads_that_disagree() {
        let calls = [
            timed(RegisterCall::Write(1), 0, 10),
            timed(RegisterCall::Read(Some(1)), 12, 14),
            timed(RegisterCall::Write(2), 20, 30),
            timed(RegisterCall::Read(Some(2)), 32, 34),
            timed(RegisterCall::Read(Some(1)), 40, 50),
            timed(RegisterCall::Write(3), 60, 70),
            timed(RegisterCall::Read(Some(3)), 80, 90),
        ];
        let shrunk = shrink_counterexample(&calls, RegisterState::Known(None), &limits());
        // A read of 2 then a read of 1 with no write between: stale whatever came before.
        assert_eq!(shrunk.members, vec![3, 4]);
        assert!(!shrunk.starts_from_initial_state);
    }

    #[test]
    fn a_read_from_the_future_keeps_the_initial_state() {
        let calls = [
            timed(RegisterCall::Read(Some(5)), 0, 10),
            timed(RegisterCall::Write(5), 20, 30),
        ];
        let shrunk = shrink_counterexample(&calls, RegisterState::Known(None), &limits());
        assert_eq!(shrunk.members, vec![0]);
        assert!(shrunk.starts_from_initial_state);
    }
}
