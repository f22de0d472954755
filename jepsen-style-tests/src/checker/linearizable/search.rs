//! The Wing–Gong–Lowe search for a linearization of one key's history.
//!
//! Calls and returns are laid out in time order in a doubly linked list. The search
//! walks it from the front: at a call it tries to linearize that operation now (apply it
//! to the model, unlink its call and return, start again from the front); at a return of
//! an operation not yet linearized it has run out of options on this path and undoes the
//! most recent choice. Lowe's memoisation prunes every configuration — the set of
//! linearized operations and the model state — already explored, which is what makes
//! the search practical (Lowe, "Testing for linearizability", 2017; porcupine).
//!
//! An operation with an unknown outcome returns at +infinity: its return sorts after
//! every real return, so it may be linearized anywhere after its invocation, and once
//! the walk reaches such a return every operation that did complete is linearized, so
//! the remaining unknown ones are taken never to have happened.
//!
//! The search is exponential in the worst case, so it is bounded by a deadline and by
//! the number of memoised configurations; hitting either gives up instead of guessing.

use std::collections::HashSet;
use std::time::Instant;

use super::register::{RegisterCall, RegisterState};

/// How many steps run between two reads of the clock, so the deadline check costs little.
const STEPS_BETWEEN_DEADLINE_CHECKS: u64 = 1024;

/// One operation as the search sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimedCall {
    /// What it did.
    pub(crate) call: RegisterCall,
    /// When it was invoked.
    pub(crate) invoke_time_ns: u64,
    /// When it returned; `None` when it may take effect at any later time, or never.
    pub(crate) return_time_ns: Option<u64>,
}

/// Bounds on one search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchLimits {
    /// Give up when the clock passes this.
    pub(crate) deadline: Instant,
    /// Give up when this many configurations have been memoised (bounds memory).
    pub(crate) memoized_configurations_max: usize,
}

/// Why a search stopped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GiveUpCause {
    /// The deadline passed.
    TimeBudget,
    /// The memo reached its bound.
    MemoryBudget,
}

/// What a search concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SearchResult {
    /// A linearization exists.
    Linearizable,
    /// Every order was tried; none is legal.
    NotLinearizable,
    /// The search stopped before an answer.
    GaveUp {
        /// Which bound stopped it.
        cause: GiveUpCause,
        /// Configurations explored by then, for the report.
        configurations_explored: usize,
    },
}

#[derive(Debug, Clone, Copy)]
enum EntryKind {
    Call { return_entry: usize },
    Return { unbounded: bool },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    call_index: usize,
    kind: EntryKind,
}

/// The time-ordered call/return list, with removal and exact reinsertion ("dancing
/// links"): the search undoes its choices in reverse order, so a removed entry's own
/// links still say where it goes back.
struct EntryList {
    entries: Vec<Entry>,
    next: Vec<usize>,
    previous: Vec<usize>,
}

impl EntryList {
    fn new(calls: &[TimedCall]) -> Self {
        // (time, returns after calls at the same instant, call index, is return)
        let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(calls.len() * 2);
        for (call_index, call) in calls.iter().enumerate() {
            events.push((call.invoke_time_ns, 0, call_index));
            events.push((call.return_time_ns.unwrap_or(u64::MAX), 1, call_index));
        }
        events.sort_unstable();

        let mut return_entry_of_call = vec![0; calls.len()];
        for (position, &(_, rank, call_index)) in events.iter().enumerate() {
            if rank == 1 {
                return_entry_of_call[call_index] = position;
            }
        }
        let entries = events
            .iter()
            .map(|&(_, rank, call_index)| Entry {
                call_index,
                kind: if rank == 0 {
                    EntryKind::Call {
                        return_entry: return_entry_of_call[call_index],
                    }
                } else {
                    EntryKind::Return {
                        unbounded: calls[call_index].return_time_ns.is_none(),
                    }
                },
            })
            .collect::<Vec<_>>();

        // Index `entries.len()` is the sentinel that both starts and ends the list.
        let sentinel = entries.len();
        let next = (0..=sentinel)
            .map(|position| (position + 1) % (sentinel + 1))
            .collect();
        let previous = (0..=sentinel)
            .map(|position| (position + sentinel) % (sentinel + 1))
            .collect();
        Self {
            entries,
            next,
            previous,
        }
    }

    fn sentinel(&self) -> usize {
        self.entries.len()
    }

    fn first(&self) -> usize {
        self.next[self.sentinel()]
    }

    fn unlink(&mut self, position: usize) {
        let (previous, next) = (self.previous[position], self.next[position]);
        self.next[previous] = next;
        self.previous[next] = previous;
    }

    fn relink(&mut self, position: usize) {
        let (previous, next) = (self.previous[position], self.next[position]);
        self.next[previous] = position;
        self.previous[next] = position;
    }
}

/// Linearized operations, as a bitset: half of a memoised configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LinearizedSet {
    words: Vec<u64>,
}

impl LinearizedSet {
    fn with_capacity(calls: usize) -> Self {
        Self {
            words: vec![0; calls.div_ceil(64)],
        }
    }

    fn insert(&mut self, call_index: usize) {
        self.words[call_index / 64] |= 1 << (call_index % 64);
    }

    fn remove(&mut self, call_index: usize) {
        self.words[call_index / 64] &= !(1 << (call_index % 64));
    }
}

/// Searches for a linearization of `calls` starting from `initial_state`.
pub(crate) fn search_linearization(
    calls: &[TimedCall],
    initial_state: RegisterState,
    limits: &SearchLimits,
) -> SearchResult {
    let mut list = EntryList::new(calls);
    let sentinel = list.sentinel();
    let mut linearized = LinearizedSet::with_capacity(calls.len());
    let mut explored: HashSet<(LinearizedSet, RegisterState)> = HashSet::new();
    // The choices made so far: the call entry linearized and the state before it.
    let mut choices: Vec<(usize, RegisterState)> = Vec::new();
    let mut state = initial_state;
    let mut position = list.first();
    let mut steps: u64 = 0;

    loop {
        if position == sentinel {
            return SearchResult::Linearizable;
        }
        steps += 1;
        if steps.is_multiple_of(STEPS_BETWEEN_DEADLINE_CHECKS) && Instant::now() >= limits.deadline
        {
            return SearchResult::GaveUp {
                cause: GiveUpCause::TimeBudget,
                configurations_explored: explored.len(),
            };
        }
        let entry = list.entries[position];
        match entry.kind {
            // Only operations with unknown outcomes are left: leave them unapplied.
            EntryKind::Return { unbounded: true } => return SearchResult::Linearizable,
            EntryKind::Call { return_entry } => {
                if let Some(next_state) = calls[entry.call_index].call.apply(state) {
                    linearized.insert(entry.call_index);
                    if explored.insert((linearized.clone(), next_state)) {
                        if explored.len() > limits.memoized_configurations_max {
                            return SearchResult::GaveUp {
                                cause: GiveUpCause::MemoryBudget,
                                configurations_explored: explored.len(),
                            };
                        }
                        choices.push((position, state));
                        state = next_state;
                        list.unlink(position);
                        list.unlink(return_entry);
                        position = list.first();
                        continue;
                    }
                    linearized.remove(entry.call_index);
                }
                position = list.next[position];
            }
            EntryKind::Return { unbounded: false } => {
                // This operation returned before it could be linearized: undo a choice.
                let Some((call_position, previous_state)) = choices.pop() else {
                    return SearchResult::NotLinearizable;
                };
                let undone = list.entries[call_position];
                if let EntryKind::Call { return_entry } = undone.kind {
                    list.relink(return_entry);
                }
                list.relink(call_position);
                linearized.remove(undone.call_index);
                state = previous_state;
                position = list.next[call_position];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> SearchLimits {
        SearchLimits {
            deadline: Instant::now() + Duration::from_secs(60),
            memoized_configurations_max: 1_000_000,
        }
    }

    fn timed(call: RegisterCall, invoke_time_ns: u64, return_time_ns: Option<u64>) -> TimedCall {
        TimedCall {
            call,
            invoke_time_ns,
            return_time_ns,
        }
    }

    fn search(calls: &[TimedCall]) -> SearchResult {
        search_linearization(calls, RegisterState::Known(None), &limits())
    }

    #[test]
    fn an_empty_history_is_linearizable() {
        assert_eq!(search(&[]), SearchResult::Linearizable);
    }

    #[test]
    fn concurrent_operations_may_be_ordered_either_way() {
        let calls = [
            timed(RegisterCall::Write(1), 0, Some(10)),
            timed(RegisterCall::Write(2), 1, Some(11)),
            timed(RegisterCall::Read(Some(1)), 12, Some(13)),
        ];
        assert_eq!(search(&calls), SearchResult::Linearizable);
    }

    #[test]
    fn a_read_after_a_completed_overwrite_cannot_see_the_old_value() {
        let calls = [
            timed(RegisterCall::Write(1), 0, Some(10)),
            timed(RegisterCall::Write(2), 20, Some(30)),
            timed(RegisterCall::Read(Some(1)), 40, Some(50)),
        ];
        assert_eq!(search(&calls), SearchResult::NotLinearizable);
    }

    #[test]
    fn an_operation_touching_its_neighbour_in_time_counts_as_concurrent() {
        let calls = [
            timed(RegisterCall::Write(1), 0, Some(10)),
            timed(RegisterCall::Read(None), 10, Some(20)),
        ];
        assert_eq!(search(&calls), SearchResult::Linearizable);
    }

    #[test]
    fn an_unknown_outcome_may_take_effect_long_after_its_invocation() {
        let calls = [
            timed(RegisterCall::Write(1), 0, None),
            timed(RegisterCall::Read(None), 100, Some(110)),
            timed(RegisterCall::Read(Some(1)), 200, Some(210)),
        ];
        assert_eq!(search(&calls), SearchResult::Linearizable);
    }

    #[test]
    fn the_memory_bound_gives_up_instead_of_answering() {
        let mut calls: Vec<TimedCall> = (0..20)
            .map(|value| timed(RegisterCall::Write(value), 0, Some(100)))
            .collect();
        calls.push(timed(RegisterCall::Read(Some(-1)), 0, Some(100)));
        let tight = SearchLimits {
            memoized_configurations_max: 100,
            ..limits()
        };
        let result = search_linearization(&calls, RegisterState::Known(None), &tight);
        assert!(matches!(
            result,
            SearchResult::GaveUp {
                cause: GiveUpCause::MemoryBudget,
                ..
            }
        ));
    }
}
