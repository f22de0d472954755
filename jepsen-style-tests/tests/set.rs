//! The set checker end to end: a history written to JSONL, loaded, paired and judged.

mod common;

use common::HistoryScript;
use vane_jepsen::checker::set::check_set;
use vane_jepsen::{Call, load_history, pair_operations, write_jsonl};

const SET: Option<&str> = Some("set");

fn check_through_a_file(script: &HistoryScript) -> vane_jepsen::checker::set::SetReport {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("set.jsonl");
    write_jsonl(&path, script.recorder().records()).unwrap();
    let history = pair_operations(&load_history(&path).unwrap()).unwrap();
    check_set(&history, "set").unwrap()
}

#[test]
fn a_set_that_kept_every_acknowledged_add_is_valid() {
    let mut script = HistoryScript::new();
    script
        .ok(SET, Call::Add(1), 0, 10)
        .ok(SET, Call::Add(2), 5, 15)
        .timed_out(SET, Call::Add(3), 6, 30)
        .pending(SET, Call::Add(4), 7)
        .ok(SET, Call::ReadSet(Some(vec![1, 2])), 8, 12)
        .ok(SET, Call::ReadSet(Some(vec![1, 2, 4])), 100, 110);
    let report = check_through_a_file(&script);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.unknown_but_present, vec![4]);
    assert_eq!(report.unknown_and_absent, vec![3]);
}

#[test]
fn an_acknowledged_add_missing_from_the_final_read_is_lost() {
    let mut script = HistoryScript::new();
    script
        .ok(SET, Call::Add(1), 0, 10)
        .ok(SET, Call::Add(2), 5, 15)
        .ok(SET, Call::Add(3), 6, 16)
        .ok(SET, Call::ReadSet(Some(vec![1, 3])), 100, 110);
    let report = check_through_a_file(&script);
    assert!(!report.is_valid());
    assert_eq!(report.lost, vec![2]);
}
