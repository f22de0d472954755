//! The sequential specification the linearizability search checks against: one
//! register per key, as etcd's KV presents it to a single-key workload.
//!
//! The search only needs "can this call happen in this state, and what state follows",
//! so the model is a pure step function over a small copyable state.

use crate::history::Call;

/// What the register holds at a point of a candidate linearization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RegisterState {
    /// Any value at all: the starting state of a counterexample window cut out of the
    /// middle of a history, where the value left by the removed prefix is not assumed.
    Unconstrained,
    /// A definite value; `None` is an absent key.
    Known(Option<i64>),
}

/// A register operation as the model sees it; everything else about the record (who,
/// when) lives beside it in the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegisterCall {
    /// Observed this value (`None`: absent).
    Read(Option<i64>),
    /// Set the value.
    Write(i64),
    /// Set `new` if the value was `expected`; only successful swaps reach the model.
    CompareAndSet { expected: i64, new: i64 },
    /// Made the key absent.
    Delete,
}

impl RegisterCall {
    /// The model's view of a history call, or `None` for calls that are not register
    /// operations (set adds, transactions, leases), which this checker ignores.
    pub(crate) fn from_call(call: &Call) -> Option<Self> {
        match call {
            Call::Read(value) => Some(RegisterCall::Read(*value)),
            Call::Write(value) => Some(RegisterCall::Write(*value)),
            Call::Cas(arguments) => Some(RegisterCall::CompareAndSet {
                expected: arguments.expected,
                new: arguments.new,
            }),
            Call::Delete => Some(RegisterCall::Delete),
            _ => None,
        }
    }

    /// True for calls that do not change the register, which a counterexample may drop
    /// without changing what the remaining calls mean.
    pub(crate) fn is_read(self) -> bool {
        matches!(self, RegisterCall::Read(_))
    }

    /// The state after applying `self` in `state`, or `None` when `self` could not have
    /// happened there (a read of another value, a swap whose comparison fails).
    pub(crate) fn apply(self, state: RegisterState) -> Option<RegisterState> {
        match (self, state) {
            (RegisterCall::Read(observed), RegisterState::Unconstrained) => {
                Some(RegisterState::Known(observed))
            }
            (RegisterCall::Read(observed), RegisterState::Known(current)) => {
                (observed == current).then_some(state)
            }
            (RegisterCall::Write(value), _) => Some(RegisterState::Known(Some(value))),
            (RegisterCall::CompareAndSet { new, .. }, RegisterState::Unconstrained) => {
                Some(RegisterState::Known(Some(new)))
            }
            (RegisterCall::CompareAndSet { expected, new }, RegisterState::Known(current)) => {
                (current == Some(expected)).then_some(RegisterState::Known(Some(new)))
            }
            (RegisterCall::Delete, _) => Some(RegisterState::Known(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_must_see_the_current_value_and_an_absent_key_reads_as_none() {
        let empty = RegisterState::Known(None);
        assert_eq!(RegisterCall::Read(None).apply(empty), Some(empty));
        assert_eq!(RegisterCall::Read(Some(1)).apply(empty), None);
    }

    #[test]
    fn compare_and_set_swaps_only_from_the_expected_value() {
        let one = RegisterState::Known(Some(1));
        let swap = RegisterCall::CompareAndSet {
            expected: 1,
            new: 2,
        };
        assert_eq!(swap.apply(one), Some(RegisterState::Known(Some(2))));
        assert_eq!(swap.apply(RegisterState::Known(Some(3))), None);
        assert_eq!(swap.apply(RegisterState::Known(None)), None);
    }

    #[test]
    fn an_unconstrained_register_accepts_any_first_observation() {
        let read = RegisterCall::Read(Some(9)).apply(RegisterState::Unconstrained);
        assert_eq!(read, Some(RegisterState::Known(Some(9))));
        let swap = RegisterCall::CompareAndSet {
            expected: 4,
            new: 5,
        };
        assert_eq!(
            swap.apply(RegisterState::Unconstrained),
            Some(RegisterState::Known(Some(5)))
        );
    }
}
