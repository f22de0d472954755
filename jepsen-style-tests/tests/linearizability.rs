//! The register linearizability checker on hand-made histories (each pinning one
//! anomaly or one rule about unknown outcomes), on randomly generated histories that are
//! valid by construction, and on a pathological history that must exhaust its budget.

mod common;

use common::HistoryScript;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vane_jepsen::checker::linearizable::{
    LinearizabilityOptions, LinearizabilityVerdict, check_linearizable_registers,
};
use vane_jepsen::{
    Call, CompareAndSet, HistoryRecorder, PairedOperation, RecordType, pair_operations,
};

const KEY: Option<&str> = Some("register");

fn check(history: &[PairedOperation]) -> LinearizabilityVerdict {
    check_linearizable_registers(history, &LinearizabilityOptions::default()).unwrap()
}

fn counterexample_calls(verdict: &LinearizabilityVerdict) -> Vec<Call> {
    match verdict {
        LinearizabilityVerdict::Invalid { counterexample, .. } => counterexample
            .iter()
            .map(|operation| operation.call.clone())
            .collect(),
        other => panic!("expected an invalid verdict, got {other:?}"),
    }
}

fn cas(expected: i64, new: i64) -> Call {
    Call::Cas(CompareAndSet { expected, new })
}

#[test]
fn concurrent_writes_and_reads_in_either_order_are_valid() {
    let history = HistoryScript::new()
        .ok(KEY, Call::Write(1), 0, 100)
        .ok(KEY, Call::Write(2), 10, 90)
        .ok(KEY, Call::Read(Some(1)), 20, 30)
        .ok(KEY, Call::Read(Some(2)), 40, 50)
        .ok(KEY, Call::Read(Some(2)), 110, 120)
        .paired();
    assert_eq!(check(&history), LinearizabilityVerdict::Valid);
}

#[test]
fn a_stale_read_after_a_completed_write_is_invalid() {
    let history = HistoryScript::new()
        .ok(KEY, Call::Write(1), 0, 10)
        .ok(KEY, Call::Write(2), 20, 30)
        .ok(KEY, Call::Read(Some(1)), 40, 50)
        .paired();
    let verdict = check(&history);
    assert_eq!(
        counterexample_calls(&verdict),
        vec![Call::Write(2), Call::Read(Some(1))]
    );
    assert!(matches!(
        verdict,
        LinearizabilityVerdict::Invalid { ref key, starts_from_empty_register: false, .. } if key == "register"
    ));
}

#[test]
fn a_lost_acknowledged_write_is_invalid() {
    let history = HistoryScript::new()
        .ok(KEY, Call::Write(1), 0, 10)
        .ok(KEY, Call::Read(Some(1)), 20, 30)
        .ok(KEY, Call::Write(2), 40, 50)
        .ok(KEY, Call::Read(Some(1)), 60, 70)
        .ok(KEY, Call::Read(None), 80, 90)
        .paired();
    assert!(matches!(
        check(&history),
        LinearizabilityVerdict::Invalid { .. }
    ));
}

#[test]
fn a_read_of_a_value_before_its_write_was_invoked_is_invalid() {
    let history = HistoryScript::new()
        .ok(KEY, Call::Read(Some(5)), 0, 10)
        .ok(KEY, Call::Write(5), 20, 30)
        .paired();
    let verdict = check(&history);
    assert_eq!(counterexample_calls(&verdict), vec![Call::Read(Some(5))]);
    assert!(matches!(
        verdict,
        LinearizabilityVerdict::Invalid {
            starts_from_empty_register: true,
            ..
        }
    ));
}

#[test]
fn a_compare_and_set_that_succeeded_twice_from_one_value_is_invalid() {
    let history = HistoryScript::new()
        .ok(KEY, Call::Write(1), 0, 10)
        .ok(KEY, cas(1, 2), 20, 40)
        .ok(KEY, cas(1, 3), 25, 45)
        .paired();
    let verdict = check(&history);
    let calls = counterexample_calls(&verdict);
    assert!(
        calls.contains(&cas(1, 2)) && calls.contains(&cas(1, 3)),
        "{calls:?}"
    );
}

#[test]
fn a_failed_compare_and_set_leaves_the_register_alone() {
    let history = HistoryScript::new()
        .ok(KEY, Call::Write(1), 0, 10)
        .fail(KEY, cas(7, 2), 20, 30)
        .ok(KEY, Call::Read(Some(1)), 40, 50)
        .paired();
    assert_eq!(check(&history), LinearizabilityVerdict::Valid);
}

#[test]
fn a_timed_out_write_may_take_effect_later_and_explain_a_read() {
    let history = HistoryScript::new()
        .ok(KEY, Call::Write(1), 0, 10)
        .timed_out(KEY, Call::Write(2), 20, 30)
        .ok(KEY, Call::Read(Some(1)), 50, 60)
        .ok(KEY, Call::Read(Some(2)), 100, 110)
        .paired();
    assert_eq!(check(&history), LinearizabilityVerdict::Valid);
}

#[test]
fn a_pending_compare_and_set_may_never_happen() {
    let history = HistoryScript::new()
        .ok(KEY, Call::Write(1), 0, 10)
        .pending(KEY, cas(1, 2), 20)
        .ok(KEY, Call::Read(Some(1)), 50, 60)
        .paired();
    assert_eq!(check(&history), LinearizabilityVerdict::Valid);
}

#[test]
fn the_same_read_is_invalid_when_the_write_failed_instead_of_timing_out() {
    let history = HistoryScript::new()
        .ok(KEY, Call::Write(1), 0, 10)
        .fail(KEY, Call::Write(2), 20, 30)
        .ok(KEY, Call::Read(Some(2)), 100, 110)
        .paired();
    assert!(matches!(
        check(&history),
        LinearizabilityVerdict::Invalid { .. }
    ));
}

#[test]
fn an_unknown_write_cannot_explain_a_read_that_finished_before_it_was_invoked() {
    let history = HistoryScript::new()
        .ok(KEY, Call::Read(Some(2)), 0, 10)
        .timed_out(KEY, Call::Write(2), 20, 30)
        .paired();
    assert!(matches!(
        check(&history),
        LinearizabilityVerdict::Invalid { .. }
    ));
}

#[test]
fn an_unknown_write_cannot_take_effect_twice() {
    let history = HistoryScript::new()
        .ok(KEY, Call::Write(1), 0, 10)
        .timed_out(KEY, Call::Write(2), 20, 30)
        .ok(KEY, Call::Read(Some(2)), 40, 50)
        .ok(KEY, Call::Read(Some(1)), 60, 70)
        .ok(KEY, Call::Read(Some(2)), 80, 90)
        .paired();
    assert!(matches!(
        check(&history),
        LinearizabilityVerdict::Invalid { .. }
    ));
}

#[test]
fn a_history_of_hundreds_of_concurrent_operations_checks_from_a_jsonl_file() {
    let history = generate_register_history(&mut StdRng::seed_from_u64(7), 5, 80);
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("register.jsonl");
    vane_jepsen::write_jsonl(&path, history.records()).unwrap();
    let loaded = pair_operations(&vane_jepsen::load_history(&path).unwrap()).unwrap();
    assert_eq!(check(&loaded), LinearizabilityVerdict::Valid);
}

#[test]
fn generated_histories_of_a_real_register_are_valid_and_one_planted_stale_read_is_not() {
    let mut planted = 0;
    for seed in 0..60 {
        let mut rng = StdRng::seed_from_u64(seed);
        let processes = rng.random_range(2..=5);
        let recorder = generate_register_history(&mut rng, processes, 25);
        let mut history = pair_operations(recorder.records()).unwrap();
        assert_eq!(
            check(&history),
            LinearizabilityVerdict::Valid,
            "seed {seed}"
        );

        if let Some(stale_read_index) = plant_stale_read(&mut history) {
            planted += 1;
            let LinearizabilityVerdict::Invalid { counterexample, .. } = check(&history) else {
                panic!("seed {seed}: a planted stale read must be caught");
            };
            // Every cut the shrinker makes is sound, so a core without the planted read
            // would be a failing core of a valid history.
            assert!(
                counterexample
                    .iter()
                    .any(|operation| operation.invoke_index == stale_read_index),
                "seed {seed}: the counterexample must contain the stale read"
            );
        }
    }
    assert!(
        planted >= 50,
        "only {planted} histories had a read to make stale"
    );
}

#[test]
fn a_pathological_history_runs_out_of_budget_instead_of_hanging() {
    // Forty concurrent writes and a read of a value nobody wrote: the search must try
    // every subset of the writes before concluding, which no budget allows.
    let mut script = HistoryScript::new();
    for value in 0..40 {
        script.ok(KEY, Call::Write(value), value as u64, 1_000);
    }
    script.ok(KEY, Call::Read(Some(-1)), 0, 1_000);
    let options = LinearizabilityOptions {
        search_budget_ms: 200,
        ..LinearizabilityOptions::default()
    };
    let verdict = check_linearizable_registers(&script.paired(), &options).unwrap();
    assert!(
        matches!(verdict, LinearizabilityVerdict::Unknown { .. }),
        "{verdict:?}"
    );
}

/// One simulated operation: what it does, when, and whether it is acknowledged.
struct SimulatedOperation {
    process: u64,
    key: &'static str,
    call: Call,
    invoke_ns: u64,
    complete_ns: u64,
    /// When it takes effect on the real register; `None`: it never does.
    effect_ns: Option<u64>,
    unknown_outcome: bool,
}

/// Histories of a real sequential register per key, driven by concurrent clients whose
/// requests take effect at a random instant inside their interval (or, for a few that
/// time out, possibly much later or never): linearizable by construction.
fn generate_register_history(
    rng: &mut StdRng,
    processes: u64,
    operations_per_process: usize,
) -> HistoryRecorder {
    const KEYS: [&str; 2] = ["a", "b"];
    let mut next_value = 1;
    let mut next_process = processes;
    let mut operations = Vec::new();
    for client in 0..processes {
        let mut process = client;
        let mut clock_ns = rng.random_range(0..20);
        for _ in 0..operations_per_process {
            let invoke_ns = clock_ns + rng.random_range(1..20);
            let effect_ns = invoke_ns + rng.random_range(0..40);
            let complete_ns = effect_ns + rng.random_range(1..40);
            let key = KEYS[rng.random_range(0..KEYS.len())];
            let call = match rng.random_range(0..10) {
                0..4 => Call::Read(None),
                4..7 => {
                    next_value += 1;
                    Call::Write(next_value)
                }
                _ => {
                    next_value += 1;
                    cas(rng.random_range(1..=next_value), next_value)
                }
            };
            let unknown_outcome = rng.random_bool(0.04);
            let effect_ns = if unknown_outcome {
                rng.random_bool(0.5)
                    .then(|| effect_ns + rng.random_range(0..300))
            } else {
                Some(effect_ns)
            };
            operations.push(SimulatedOperation {
                process,
                key,
                call,
                invoke_ns,
                complete_ns,
                effect_ns,
                unknown_outcome,
            });
            clock_ns = complete_ns;
            if unknown_outcome {
                // The request may still be in flight: continue as a new process.
                process = next_process;
                next_process += 1;
            }
        }
    }

    // Run the register in effect order to learn every result.
    let mut by_effect: Vec<usize> = (0..operations.len())
        .filter(|&position| operations[position].effect_ns.is_some())
        .collect();
    by_effect.sort_by_key(|&position| operations[position].effect_ns);
    let mut registers: std::collections::HashMap<&str, Option<i64>> = Default::default();
    let mut succeeded = vec![true; operations.len()];
    for position in by_effect {
        let operation = &mut operations[position];
        let register = registers.entry(operation.key).or_default();
        match &operation.call {
            Call::Read(_) => operation.call = Call::Read(*register),
            Call::Write(value) => *register = Some(*value),
            Call::Cas(swap) if *register == Some(swap.expected) => *register = Some(swap.new),
            Call::Cas(_) => succeeded[position] = false,
            _ => {}
        }
    }

    let mut records: Vec<(u64, u8, usize)> = Vec::new();
    for (position, operation) in operations.iter().enumerate() {
        records.push((operation.invoke_ns, 0, position));
        if !operation.unknown_outcome {
            records.push((operation.complete_ns, 1, position));
        }
    }
    records.sort_unstable();
    let mut recorder = HistoryRecorder::new();
    for (time_ns, is_completion, position) in records {
        let operation = &operations[position];
        let key = Some(operation.key);
        if is_completion == 0 {
            let invocation = match operation.call {
                Call::Read(_) => Call::Read(None),
                ref other => other.clone(),
            };
            recorder.invoke(operation.process, key, invocation, time_ns);
        } else {
            let record_type = if succeeded[position] {
                RecordType::Ok
            } else {
                RecordType::Fail
            };
            recorder.complete(
                operation.process,
                record_type,
                key,
                operation.call.clone(),
                time_ns,
            );
        }
    }
    recorder
}

/// Turns one acknowledged read into a stale one: it returns the value of a write that a
/// later, completed write overwrote before the read began. Values are unique, so no
/// order can explain it. Returns the read's invocation index, or `None` when the
/// history has no such triple.
fn plant_stale_read(history: &mut [PairedOperation]) -> Option<u64> {
    let written_value = |operation: &PairedOperation| match operation.call {
        Call::Write(value) if operation.is_ok() => Some(value),
        Call::Cas(swap) if operation.is_ok() => Some(swap.new),
        _ => None,
    };
    for read in 0..history.len() {
        if !(history[read].is_ok() && matches!(history[read].call, Call::Read(_))) {
            continue;
        }
        for overwritten in 0..history.len() {
            let Some(stale_value) = written_value(&history[overwritten]) else {
                continue;
            };
            let overwritten_before_read = history.iter().any(|overwrite| {
                overwrite.key == history[read].key
                    && written_value(overwrite).is_some()
                    && history[overwritten].precedes_in_real_time(overwrite)
                    && overwrite.precedes_in_real_time(&history[read])
            });
            if history[overwritten].key == history[read].key && overwritten_before_read {
                history[read].call = Call::Read(Some(stale_value));
                return Some(history[read].invoke_index);
            }
        }
    }
    None
}
