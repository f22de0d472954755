//! The set checker: acknowledged adds must survive faults.
//!
//! Clients add unique elements to one set while faults run; after the cluster heals,
//! reads of the whole set are the ground truth. An add acknowledged (`ok`) but missing
//! from a final read is a lost write, the failure this workload exists to catch. An
//! add with an unknown outcome may or may not be there. An element that nobody tried to
//! add, or whose every add failed, must not be there at all.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::JepsenError;
use crate::history::{Call, Outcome, PairedOperation};

/// What the set checker found for one set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SetReport {
    /// Distinct elements some client tried to add.
    pub attempted_count: usize,
    /// Distinct elements whose add was acknowledged.
    pub acknowledged_count: usize,
    /// Final reads examined.
    pub final_read_count: usize,
    /// Elements that were acknowledged, or seen by an earlier read, but are missing from
    /// a final read: lost writes.
    pub lost: Vec<i64>,
    /// Elements read that no client ever tried to add.
    pub never_attempted: Vec<i64>,
    /// Elements read whose every add failed, so they must not exist.
    pub failed_but_present: Vec<i64>,
    /// Adds with unknown outcomes that the final reads contain: they did happen.
    pub unknown_but_present: Vec<i64>,
    /// Adds with unknown outcomes absent from the final reads: they did not happen.
    pub unknown_and_absent: Vec<i64>,
}

impl SetReport {
    /// True when nothing was lost and nothing appeared from nowhere.
    pub fn is_valid(&self) -> bool {
        self.lost.is_empty()
            && self.never_attempted.is_empty()
            && self.failed_but_present.is_empty()
    }
}

/// How the adds of one element ended, merged over every attempt.
#[derive(Debug, Clone, Copy, Default)]
struct AddOutcomes {
    acknowledged: bool,
    unknown: bool,
}

/// Checks the set stored under `set_key`: its `add` and `read-set` operations.
///
/// A final read is an `ok` read invoked after every add had been invoked and after every
/// add that completed had completed; there must be at least one.
pub fn check_set(history: &[PairedOperation], set_key: &str) -> Result<SetReport, JepsenError> {
    let of_this_set = |operation: &&PairedOperation| operation.key.as_deref() == Some(set_key);
    let mut adds: BTreeMap<i64, AddOutcomes> = BTreeMap::new();
    let mut adds_settled_by_ns: u64 = 0;
    let mut reads: Vec<(&PairedOperation, BTreeSet<i64>)> = Vec::new();

    for operation in history.iter().filter(of_this_set) {
        match &operation.call {
            Call::Add(element) => {
                let outcomes = adds.entry(*element).or_default();
                match operation.outcome {
                    Outcome::Ok => outcomes.acknowledged = true,
                    Outcome::Info => outcomes.unknown = true,
                    Outcome::Fail => {}
                }
                let settled_ns = operation
                    .complete_time_ns
                    .unwrap_or(operation.invoke_time_ns);
                adds_settled_by_ns = adds_settled_by_ns.max(settled_ns);
            }
            Call::ReadSet(Some(elements)) if operation.is_ok() => {
                reads.push((operation, elements.iter().copied().collect()));
            }
            _ => {}
        }
    }

    let final_reads: Vec<&(&PairedOperation, BTreeSet<i64>)> = reads
        .iter()
        .filter(|(read, _)| read.invoke_time_ns > adds_settled_by_ns)
        .collect();
    if final_reads.is_empty() {
        return Err(JepsenError::NoFinalRead);
    }

    let mut report = SetReport {
        attempted_count: adds.len(),
        acknowledged_count: adds
            .values()
            .filter(|outcomes| outcomes.acknowledged)
            .count(),
        final_read_count: final_reads.len(),
        ..SetReport::default()
    };

    let mut lost = BTreeSet::new();
    for (final_read, final_elements) in &final_reads {
        let mut expected: BTreeSet<i64> = adds
            .iter()
            .filter(|(_, outcomes)| outcomes.acknowledged)
            .map(|(element, _)| *element)
            .collect();
        // An element an earlier read saw did happen, whatever its add's outcome said.
        for (earlier_read, earlier_elements) in &reads {
            if earlier_read.precedes_in_real_time(final_read) {
                expected.extend(earlier_elements.iter().copied());
            }
        }
        lost.extend(expected.difference(final_elements).copied());
    }
    report.lost = lost.into_iter().collect();

    let mut present_anywhere = BTreeSet::new();
    for (_, elements) in &reads {
        present_anywhere.extend(elements.iter().copied());
    }
    for element in &present_anywhere {
        match adds.get(element) {
            None => report.never_attempted.push(*element),
            Some(outcomes) if !outcomes.acknowledged && !outcomes.unknown => {
                report.failed_but_present.push(*element);
            }
            Some(_) => {}
        }
    }

    let in_every_final_read = |element: &i64| {
        final_reads
            .iter()
            .all(|(_, elements)| elements.contains(element))
    };
    for (element, outcomes) in &adds {
        if outcomes.acknowledged || !outcomes.unknown {
            continue;
        }
        if in_every_final_read(element) {
            report.unknown_but_present.push(*element);
        } else if !present_anywhere.contains(element) {
            report.unknown_and_absent.push(*element);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(call: Call, outcome: Outcome, invoke_time_ns: u64) -> PairedOperation {
        PairedOperation {
            process: invoke_time_ns,
            invoke_index: invoke_time_ns,
            complete_index: None,
            outcome,
            key: Some("s".to_string()),
            call,
            invoke_time_ns,
            complete_time_ns: (outcome != Outcome::Info).then_some(invoke_time_ns + 5),
            node: None,
            revision: None,
        }
    }

    fn final_read(elements: &[i64], invoke_time_ns: u64) -> PairedOperation {
        operation(
            Call::ReadSet(Some(elements.to_vec())),
            Outcome::Ok,
            invoke_time_ns,
        )
    }

    #[test]
    fn every_acknowledged_add_in_the_final_read_is_valid() {
        let history = [
            operation(Call::Add(1), Outcome::Ok, 0),
            operation(Call::Add(2), Outcome::Ok, 1),
            operation(Call::Add(3), Outcome::Fail, 2),
            final_read(&[1, 2], 100),
        ];
        let report = check_set(&history, "s").unwrap();
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.acknowledged_count, 2);
    }

    #[test]
    fn an_unknown_add_may_be_present_or_absent() {
        let history = [
            operation(Call::Add(1), Outcome::Info, 0),
            operation(Call::Add(2), Outcome::Info, 1),
            final_read(&[1], 100),
        ];
        let report = check_set(&history, "s").unwrap();
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.unknown_but_present, vec![1]);
        assert_eq!(report.unknown_and_absent, vec![2]);
    }

    #[test]
    fn an_element_seen_once_must_stay() {
        let history = [
            operation(Call::Add(1), Outcome::Info, 0),
            final_read(&[1], 100),
            final_read(&[], 200),
        ];
        let report = check_set(&history, "s").unwrap();
        assert_eq!(report.lost, vec![1]);
    }

    #[test]
    fn elements_from_nowhere_and_from_failed_adds_are_caught() {
        let history = [
            operation(Call::Add(1), Outcome::Fail, 0),
            final_read(&[1, 9], 100),
        ];
        let report = check_set(&history, "s").unwrap();
        assert_eq!(report.failed_but_present, vec![1]);
        assert_eq!(report.never_attempted, vec![9]);
        assert!(!report.is_valid());
    }

    #[test]
    fn a_history_without_a_final_read_cannot_be_judged() {
        let history = [final_read(&[], 0), operation(Call::Add(1), Outcome::Ok, 10)];
        assert!(matches!(
            check_set(&history, "s"),
            Err(JepsenError::NoFinalRead)
        ));
    }
}
