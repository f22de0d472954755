//! Linearizability of single-key registers: read, write, compare-and-set, delete.
//!
//! Each key is an independent register, so the history is partitioned by key and each
//! part searched on its own: a violation on one key is a violation of the whole, and
//! the search's exponential cost is paid per key, not over the whole history.
//! Operations that failed certainly did not happen and are dropped; reads with unknown
//! outcomes say nothing and are dropped; writes, swaps and deletes with unknown outcomes
//! may take effect at any time after their invocation, or never.
//!
//! The search (`search.rs`) is Wing–Gong–Lowe with memoisation; a failing key is cut
//! down to a small sound core (`shrink.rs`). Both are bounded, and running out of budget
//! gives [`LinearizabilityVerdict::Unknown`], never a guess.

mod register;
mod search;
mod shrink;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::JepsenError;
use crate::history::{Outcome, PairedOperation};

use register::{RegisterCall, RegisterState};
use search::{GiveUpCause, SearchLimits, SearchResult, TimedCall, search_linearization};
use shrink::shrink_counterexample;

/// Bounds on the linearizability check, so a pathological history yields `Unknown`
/// instead of hanging a test run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearizabilityOptions {
    /// Wall-clock time the search over all keys may take.
    pub search_budget_ms: u64,
    /// Wall-clock time spent shrinking a failing key to a small counterexample; when it
    /// runs out, the counterexample is larger but still correct.
    pub shrink_budget_ms: u64,
    /// Configurations (linearized set and register value) one search may remember;
    /// bounds memory, at roughly 100 bytes plus one bit per operation of the key each.
    pub memoized_configurations_max: usize,
}

impl Default for LinearizabilityOptions {
    fn default() -> Self {
        Self {
            search_budget_ms: 60_000,
            shrink_budget_ms: 30_000,
            memoized_configurations_max: 1_000_000,
        }
    }
}

/// What the linearizability check concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum LinearizabilityVerdict {
    /// Every key's history has a legal sequential order consistent with real time.
    Valid,
    /// One key's history has none.
    Invalid {
        /// The key.
        key: String,
        /// A small set of that key's operations that cannot be linearized together, in
        /// invocation order. Operations that completed after the failing prefix ends are
        /// treated as having unknown outcomes but are shown as recorded.
        counterexample: Vec<PairedOperation>,
        /// True when the counterexample fails from the initial, absent register; false
        /// when it was cut out of the middle of the history and fails whatever value the
        /// register held before its first operation.
        starts_from_empty_register: bool,
    },
    /// The search ran out of budget before reaching a verdict.
    Unknown {
        /// Which key and which budget.
        reason: String,
    },
}

impl LinearizabilityVerdict {
    /// True only for a proven-valid history.
    pub fn is_valid(&self) -> bool {
        matches!(self, LinearizabilityVerdict::Valid)
    }
}

/// One key's operations, in the search's form and as recorded.
struct KeyHistory<'a> {
    calls: Vec<TimedCall>,
    operations: Vec<&'a PairedOperation>,
}

/// Checks that every key's register operations in `history` are linearizable.
///
/// Operations other than read, write, cas and delete are ignored, so a mixed history
/// can be passed whole. A register operation without a key is an error.
pub fn check_linearizable_registers(
    history: &[PairedOperation],
    options: &LinearizabilityOptions,
) -> Result<LinearizabilityVerdict, JepsenError> {
    let histories_by_key = partition_by_key(history)?;
    let search_limits = SearchLimits {
        deadline: Instant::now() + Duration::from_millis(options.search_budget_ms),
        memoized_configurations_max: options.memoized_configurations_max,
    };
    let initial_state = RegisterState::Known(None);
    let mut first_unknown_reason: Option<String> = None;

    for (key, key_history) in &histories_by_key {
        match search_linearization(&key_history.calls, initial_state, &search_limits) {
            SearchResult::Linearizable => {}
            SearchResult::NotLinearizable => {
                let shrink_limits = SearchLimits {
                    deadline: Instant::now() + Duration::from_millis(options.shrink_budget_ms),
                    ..search_limits
                };
                let shrunk =
                    shrink_counterexample(&key_history.calls, initial_state, &shrink_limits);
                return Ok(LinearizabilityVerdict::Invalid {
                    key: key.clone(),
                    counterexample: shrunk
                        .members
                        .iter()
                        .map(|&index| key_history.operations[index].clone())
                        .collect(),
                    starts_from_empty_register: shrunk.starts_from_initial_state,
                });
            }
            SearchResult::GaveUp {
                cause,
                configurations_explored,
            } => {
                // Keep going: another key may still be proven invalid within the budget.
                first_unknown_reason.get_or_insert_with(|| {
                    give_up_reason(key, cause, configurations_explored, options)
                });
            }
        }
    }
    Ok(match first_unknown_reason {
        Some(reason) => LinearizabilityVerdict::Unknown { reason },
        None => LinearizabilityVerdict::Valid,
    })
}

fn give_up_reason(
    key: &str,
    cause: GiveUpCause,
    configurations_explored: usize,
    options: &LinearizabilityOptions,
) -> String {
    let budget = match cause {
        GiveUpCause::TimeBudget => format!("the time budget of {} ms", options.search_budget_ms),
        GiveUpCause::MemoryBudget => format!(
            "the memo bound of {} configurations",
            options.memoized_configurations_max
        ),
    };
    format!(
        "key {key:?}: the search exhausted {budget} after exploring {configurations_explored} configurations; \
         raise the budget, or lower the workload's concurrency per key"
    )
}

fn partition_by_key(
    history: &[PairedOperation],
) -> Result<BTreeMap<String, KeyHistory<'_>>, JepsenError> {
    let mut histories_by_key: BTreeMap<String, KeyHistory<'_>> = BTreeMap::new();
    for operation in history {
        let Some(call) = RegisterCall::from_call(&operation.call) else {
            continue;
        };
        let Some(key) = &operation.key else {
            return Err(JepsenError::MissingKey {
                index: operation.invoke_index,
                function: operation.call.function_name(),
            });
        };
        let return_time_ns = match operation.outcome {
            Outcome::Fail => continue,
            // An unknown read observed nothing we know of.
            Outcome::Info if call.is_read() => continue,
            Outcome::Info => None,
            Outcome::Ok => operation.complete_time_ns,
        };
        let key_history = histories_by_key
            .entry(key.clone())
            .or_insert_with(|| KeyHistory {
                calls: Vec::new(),
                operations: Vec::new(),
            });
        key_history.calls.push(TimedCall {
            call,
            invoke_time_ns: operation.invoke_time_ns,
            return_time_ns,
        });
        key_history.operations.push(operation);
    }
    Ok(histories_by_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Call, CompareAndSet};

    fn operation(
        key: &str,
        call: Call,
        outcome: Outcome,
        invoke_time_ns: u64,
        complete_time_ns: u64,
    ) -> PairedOperation {
        PairedOperation {
            process: invoke_time_ns,
            invoke_index: invoke_time_ns,
            complete_index: None,
            outcome,
            key: Some(key.to_string()),
            call,
            invoke_time_ns,
            complete_time_ns: (outcome != Outcome::Info).then_some(complete_time_ns),
            node: None,
            revision: None,
        }
    }

    fn check(history: &[PairedOperation]) -> LinearizabilityVerdict {
        check_linearizable_registers(history, &LinearizabilityOptions::default()).unwrap()
    }

    #[test]
    fn keys_are_checked_independently() {
        let history = [
            operation("a", Call::Write(1), Outcome::Ok, 0, 10),
            operation("b", Call::Read(None), Outcome::Ok, 20, 30),
            operation("a", Call::Read(Some(1)), Outcome::Ok, 40, 50),
        ];
        assert_eq!(check(&history), LinearizabilityVerdict::Valid);
    }

    #[test]
    fn a_failed_write_never_happened() {
        let history = [
            operation("a", Call::Write(1), Outcome::Fail, 0, 10),
            operation("a", Call::Read(Some(1)), Outcome::Ok, 20, 30),
        ];
        assert!(matches!(
            check(&history),
            LinearizabilityVerdict::Invalid { .. }
        ));
    }

    #[test]
    fn a_violation_names_its_key_and_operations() {
        let history = [
            operation("a", Call::Write(1), Outcome::Ok, 0, 10),
            operation("z", Call::Write(1), Outcome::Ok, 0, 10),
            operation(
                "z",
                Call::Cas(CompareAndSet {
                    expected: 1,
                    new: 2,
                }),
                Outcome::Ok,
                20,
                30,
            ),
            operation(
                "z",
                Call::Cas(CompareAndSet {
                    expected: 1,
                    new: 3,
                }),
                Outcome::Ok,
                40,
                50,
            ),
        ];
        let LinearizabilityVerdict::Invalid {
            key,
            counterexample,
            ..
        } = check(&history)
        else {
            panic!("a double swap from one value must be caught");
        };
        assert_eq!(key, "z");
        assert!(counterexample.len() <= 3);
    }

    #[test]
    fn a_register_operation_without_a_key_is_an_error() {
        let mut keyless = operation("a", Call::Write(1), Outcome::Ok, 0, 10);
        keyless.key = None;
        let result = check_linearizable_registers(&[keyless], &LinearizabilityOptions::default());
        assert!(matches!(result, Err(JepsenError::MissingKey { .. })));
    }
}
