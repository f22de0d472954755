//! The list-append checker on hand-made transaction histories: one valid, and one per
//! cycle class it must name.

mod common;

use common::{HistoryScript, append, read};
use vane_jepsen::Call;
use vane_jepsen::checker::append::{AppendAnomaly, CycleAnomaly, DependencyKind, check_append};

fn cycles(script: &HistoryScript) -> Vec<CycleAnomaly> {
    check_append(&script.paired())
        .unwrap()
        .anomalies
        .into_iter()
        .filter_map(|anomaly| match anomaly {
            AppendAnomaly::Cycle(cycle) => Some(cycle),
            _ => None,
        })
        .collect()
}

fn only_cycle_name(script: &HistoryScript) -> String {
    let cycles = cycles(script);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    cycles[0].name()
}

#[test]
fn concurrent_transactions_with_a_serial_explanation_are_valid() {
    let mut script = HistoryScript::new();
    script
        .ok(None, Call::Txn(vec![append("x", 1), read("y", &[])]), 0, 50)
        .ok(
            None,
            Call::Txn(vec![read("x", &[1]), append("y", 1)]),
            10,
            60,
        )
        .ok(
            None,
            Call::Txn(vec![append("x", 2), append("y", 2)]),
            20,
            70,
        )
        .timed_out(None, Call::Txn(vec![append("x", 3)]), 30, 40)
        .ok(
            None,
            Call::Txn(vec![read("x", &[1, 2, 3]), read("y", &[1, 2])]),
            100,
            110,
        );
    let report = check_append(&script.paired()).unwrap();
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.committed_transaction_count, 5);
}

#[test]
fn a_read_skew_is_a_g_single_cycle() {
    // T1 appends to x and y together; T2 sees T1's y but not T1's x.
    let mut script = HistoryScript::new();
    script
        .ok(None, Call::Txn(vec![append("x", 1), append("y", 1)]), 0, 50)
        .ok(
            None,
            Call::Txn(vec![read("x", &[]), read("y", &[1])]),
            10,
            60,
        )
        .ok(None, Call::Txn(vec![read("x", &[1])]), 100, 110);
    let cycles = cycles(&script);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(cycles[0].name(), "G-single");
    let kinds: Vec<DependencyKind> = cycles[0].steps.iter().map(|step| step.kind).collect();
    assert_eq!(kinds.len(), 2);
    assert!(
        kinds.contains(&DependencyKind::WriteRead) && kinds.contains(&DependencyKind::ReadWrite)
    );
    let anti_dependency = cycles[0]
        .steps
        .iter()
        .find(|step| step.kind == DependencyKind::ReadWrite)
        .unwrap();
    assert_eq!(
        (anti_dependency.key.as_deref(), anti_dependency.value),
        (Some("x"), Some(1))
    );
}

#[test]
fn a_write_skew_is_a_g2_cycle() {
    // Each transaction reads the key the other appends to, and misses the other's append.
    let mut script = HistoryScript::new();
    script
        .ok(None, Call::Txn(vec![read("x", &[]), append("y", 1)]), 0, 50)
        .ok(
            None,
            Call::Txn(vec![read("y", &[]), append("x", 1)]),
            10,
            60,
        )
        .ok(
            None,
            Call::Txn(vec![read("x", &[1]), read("y", &[1])]),
            100,
            110,
        );
    assert_eq!(only_cycle_name(&script), "G2");
}

#[test]
fn appends_ordered_differently_on_two_keys_are_a_g0_cycle() {
    let mut script = HistoryScript::new();
    script
        .ok(None, Call::Txn(vec![append("x", 1), append("y", 1)]), 0, 50)
        .ok(
            None,
            Call::Txn(vec![append("x", 2), append("y", 2)]),
            10,
            60,
        )
        .ok(
            None,
            Call::Txn(vec![read("x", &[1, 2]), read("y", &[2, 1])]),
            100,
            110,
        );
    assert_eq!(only_cycle_name(&script), "G0");
}

#[test]
fn transactions_that_read_each_other_are_a_g1c_cycle() {
    let mut script = HistoryScript::new();
    script
        .ok(
            None,
            Call::Txn(vec![append("x", 1), read("y", &[1])]),
            0,
            50,
        )
        .ok(
            None,
            Call::Txn(vec![append("y", 1), read("x", &[1])]),
            10,
            60,
        );
    assert_eq!(only_cycle_name(&script), "G1c");
}

#[test]
fn a_stale_read_after_a_completed_append_is_a_realtime_cycle() {
    // Serializable (the reader could go first) but not strictly serializable.
    let mut script = HistoryScript::new();
    script
        .ok(None, Call::Txn(vec![append("x", 1)]), 0, 10)
        .ok(None, Call::Txn(vec![read("x", &[])]), 20, 30)
        .ok(None, Call::Txn(vec![read("x", &[1])]), 40, 50);
    let cycles = cycles(&script);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(cycles[0].realtime);
    assert_eq!(cycles[0].name(), "G-single-realtime");
}

#[test]
fn a_failed_transaction_leaves_no_dependency_but_reading_it_is_an_aborted_read() {
    let mut script = HistoryScript::new();
    script
        .fail(None, Call::Txn(vec![append("x", 1)]), 0, 10)
        .ok(None, Call::Txn(vec![read("x", &[1])]), 20, 30);
    let report = check_append(&script.paired()).unwrap();
    assert!(matches!(
        report.anomalies.as_slice(),
        [AppendAnomaly::AbortedRead { value: 1, .. }]
    ));
}

#[test]
fn a_read_with_an_element_twice_is_caught() {
    let mut script = HistoryScript::new();
    script.ok(None, Call::Txn(vec![append("x", 1)]), 0, 10).ok(
        None,
        Call::Txn(vec![read("x", &[1, 1])]),
        20,
        30,
    );
    let report = check_append(&script.paired()).unwrap();
    assert!(
        report
            .anomalies
            .iter()
            .any(|anomaly| matches!(anomaly, AppendAnomaly::DuplicateElements { values, .. } if values == &vec![1])),
        "{report:?}"
    );
}
