//! Judging a run: the checkers that fit its workload, applied to its history, and the
//! verdict file (`verdicts.json`) they produce.
//!
//! Each checker's verdict is `valid`, `invalid` (with the smallest counterexample the
//! checker can give) or `unknown` (it could not decide: a search ran out of budget, a
//! final read never succeeded). The run's verdict is `invalid` if any checker says so,
//! `valid` if all do, `unknown` otherwise: an undecided checker never passes for a
//! valid one.

use serde::{Deserialize, Serialize};

use crate::checker::append::check_append;
use crate::checker::lease::{LeaseCheckOptions, check_leases};
use crate::checker::linearizable::{
    LinearizabilityOptions, LinearizabilityVerdict, check_linearizable_registers,
};
use crate::checker::set::check_set;
use crate::checker::watch::{RevisionRecord, WatcherLog, check_watches};
use crate::error::JepsenError;
use crate::history::{Call, Operation, RecordType, pair_operations};
use crate::run_config::WorkloadKind;
use crate::workload::set::SET_KEY;

/// How many anomalies or violations a verdict lists in full; the rest are counted.
const LISTED_MAX: usize = 10;

/// One checker's conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The property held.
    Valid,
    /// The property was violated.
    Invalid,
    /// The checker could not decide.
    Unknown,
}

/// One checker's verdict, as written to `verdicts.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckerVerdict {
    /// Which checker.
    pub checker: String,
    /// What it concluded.
    pub outcome: Outcome,
    /// One line for a human.
    pub summary: String,
    /// The checker's report: counterexample, anomalies, counts.
    pub detail: serde_json::Value,
}

/// Operation counts of a history (the nemesis's records excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationCounts {
    /// Operations invoked.
    pub invoked: usize,
    /// Completed `ok`.
    pub ok: usize,
    /// Completed `fail`.
    pub fail: usize,
    /// Completed `info`, or never completed.
    pub info: usize,
    /// Faults started by the nemesis.
    pub faults: usize,
}

/// Counts `records`.
pub fn count_operations(records: &[Operation]) -> OperationCounts {
    let mut counts = OperationCounts::default();
    for record in records {
        if let Call::Nemesis(action) = &record.call {
            if record.record_type == RecordType::Invoke && action.action == "start" {
                counts.faults += 1;
            }
            continue;
        }
        match record.record_type {
            RecordType::Invoke => counts.invoked += 1,
            RecordType::Ok => counts.ok += 1,
            RecordType::Fail => counts.fail += 1,
            RecordType::Info => counts.info += 1,
        }
    }
    counts.info += counts
        .invoked
        .saturating_sub(counts.ok + counts.fail + counts.info);
    counts
}

/// The run's verdict, as written to `verdicts.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdicts {
    /// The workload judged.
    pub workload: WorkloadKind,
    /// The overall outcome.
    pub outcome: Outcome,
    /// Each checker's verdict.
    pub checkers: Vec<CheckerVerdict>,
    /// What the history holds.
    pub operations: OperationCounts,
    /// Remarks from the run (final reads that failed, heal problems).
    pub notes: Vec<String>,
}

/// Everything the checkers read.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The history.
    pub records: &'a [Operation],
    /// The watch workload's watcher logs.
    pub watchers: &'a [WatcherLog],
    /// The watch workload's ground truth.
    pub revisions: &'a [RevisionRecord],
    /// How the cluster came through the faults, when known.
    pub recovery: Option<&'a Recovery>,
}

/// How the cluster came through the faults: whether nodes crashed on their own and
/// whether the final heal brought every node back. Written as `recovery.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// Nodes that exited on their own (a crash, or a refusal to start on their data
    /// directory after a kill), with their last log lines.
    pub crashed: Vec<String>,
    /// Why the final heal did not leave every node running and following one leader.
    pub heal_error: Option<String>,
    /// Whether that failure was nodes exiting (a bug) rather than a slow recovery.
    pub heal_failed_on_exits: bool,
}

/// Runs the checkers of `workload` over `evidence`.
pub fn judge(
    workload: WorkloadKind,
    evidence: Evidence<'_>,
    notes: Vec<String>,
) -> Result<Verdicts, JepsenError> {
    let paired = pair_operations(evidence.records)?;
    let mut checkers = match workload {
        WorkloadKind::Register => vec![linearizability(&paired)?],
        WorkloadKind::Set => vec![set(&paired)?],
        WorkloadKind::Append => vec![append(&paired)?],
        WorkloadKind::Watch => vec![watch(evidence.revisions, evidence.watchers)?],
        WorkloadKind::Lease => vec![lease(&paired)?],
    };
    if let Some(recovery) = evidence.recovery {
        checkers.push(recovery_verdict(recovery)?);
    }
    let outcome = if checkers
        .iter()
        .any(|checker| checker.outcome == Outcome::Invalid)
    {
        Outcome::Invalid
    } else if checkers
        .iter()
        .all(|checker| checker.outcome == Outcome::Valid)
    {
        Outcome::Valid
    } else {
        Outcome::Unknown
    };
    Ok(Verdicts {
        workload,
        outcome,
        checkers,
        operations: count_operations(evidence.records),
        notes,
    })
}

/// Nodes must survive the faults: a crash, or a node that will not start again on its
/// own data directory after `kill -9`, is a violation; a cluster that merely did not
/// settle within the heal's wait is unknown.
fn recovery_verdict(recovery: &Recovery) -> Result<CheckerVerdict, JepsenError> {
    let (outcome, summary) = if !recovery.crashed.is_empty() {
        (
            Outcome::Invalid,
            format!(
                "{} node exit(s) nobody caused: {}",
                recovery.crashed.len(),
                recovery.crashed.join("; ")
            ),
        )
    } else if let Some(error) = &recovery.heal_error {
        if recovery.heal_failed_on_exits {
            (
                Outcome::Invalid,
                format!("nodes did not come back after the faults: {error}"),
            )
        } else {
            (
                Outcome::Unknown,
                format!("the cluster did not settle after the faults: {error}"),
            )
        }
    } else {
        (
            Outcome::Valid,
            "no node crashed; every node came back and followed one leader after the heal"
                .to_string(),
        )
    };
    Ok(CheckerVerdict {
        checker: "recovery".to_string(),
        outcome,
        summary,
        detail: to_json(recovery)?,
    })
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, JepsenError> {
    serde_json::to_value(value).map_err(|source| JepsenError::EncodeRecord { source })
}

fn linearizability(
    paired: &[crate::history::PairedOperation],
) -> Result<CheckerVerdict, JepsenError> {
    let verdict = check_linearizable_registers(paired, &LinearizabilityOptions::default())?;
    let (outcome, summary) = match &verdict {
        LinearizabilityVerdict::Valid => (
            Outcome::Valid,
            "every key's history is linearizable".to_string(),
        ),
        LinearizabilityVerdict::Invalid {
            key,
            counterexample,
            ..
        } => (
            Outcome::Invalid,
            format!(
                "key {key:?} is not linearizable; counterexample of {} operations",
                counterexample.len()
            ),
        ),
        LinearizabilityVerdict::Unknown { reason } => (Outcome::Unknown, reason.clone()),
    };
    Ok(CheckerVerdict {
        checker: "linearizable-registers".to_string(),
        outcome,
        summary,
        detail: to_json(&verdict)?,
    })
}

fn set(paired: &[crate::history::PairedOperation]) -> Result<CheckerVerdict, JepsenError> {
    match check_set(paired, SET_KEY) {
        Ok(report) => {
            let outcome = if report.is_valid() {
                Outcome::Valid
            } else {
                Outcome::Invalid
            };
            let summary = format!(
                "{} adds attempted, {} acknowledged, {} final reads; {} lost, {} unexpected, {} unknown adds present",
                report.attempted_count,
                report.acknowledged_count,
                report.final_read_count,
                report.lost.len(),
                report.never_attempted.len() + report.failed_but_present.len(),
                report.unknown_but_present.len()
            );
            Ok(CheckerVerdict {
                checker: "set".to_string(),
                outcome,
                summary,
                detail: to_json(&report)?,
            })
        }
        Err(JepsenError::NoFinalRead) => Ok(CheckerVerdict {
            checker: "set".to_string(),
            outcome: Outcome::Unknown,
            summary: "no final read succeeded, so lost adds cannot be told apart".to_string(),
            detail: serde_json::Value::Null,
        }),
        Err(error) => Err(error),
    }
}

fn append(paired: &[crate::history::PairedOperation]) -> Result<CheckerVerdict, JepsenError> {
    let report = check_append(paired)?;
    let outcome = if report.is_valid() {
        Outcome::Valid
    } else {
        Outcome::Invalid
    };
    let summary = format!(
        "{} committed transactions; {} anomalies",
        report.committed_transaction_count,
        report.anomalies.len()
    );
    let listed: Vec<_> = report.anomalies.iter().take(LISTED_MAX).collect();
    Ok(CheckerVerdict {
        checker: "list-append".to_string(),
        outcome,
        summary,
        detail: serde_json::json!({
            "committed_transaction_count": report.committed_transaction_count,
            "anomaly_count": report.anomalies.len(),
            "anomalies": to_json(&listed)?,
        }),
    })
}

fn watch(
    revisions: &[RevisionRecord],
    watchers: &[WatcherLog],
) -> Result<CheckerVerdict, JepsenError> {
    if revisions.is_empty() && watchers.iter().all(|watcher| watcher.sessions.is_empty()) {
        return Ok(CheckerVerdict {
            checker: "watch".to_string(),
            outcome: Outcome::Unknown,
            summary: "no watcher session and no store history to check".to_string(),
            detail: serde_json::Value::Null,
        });
    }
    let delivered: usize = watchers
        .iter()
        .flat_map(|watcher| &watcher.sessions)
        .flat_map(|session| &session.responses)
        .map(|response| response.events.len())
        .sum();
    if revisions.is_empty() && delivered > 0 {
        // Without the store's history every delivered event would look invented.
        return Ok(CheckerVerdict {
            checker: "watch".to_string(),
            outcome: Outcome::Unknown,
            summary: format!(
                "{delivered} events delivered but the store's history could not be read back to check them"
            ),
            detail: serde_json::Value::Null,
        });
    }
    let report = check_watches(revisions, watchers)?;
    let outcome = if report.is_valid() {
        Outcome::Valid
    } else {
        Outcome::Invalid
    };
    let sessions: usize = watchers.iter().map(|watcher| watcher.sessions.len()).sum();
    let summary = format!(
        "{} watchers, {sessions} sessions, {} events delivered over {} revisions with events; {} violations",
        report.watchers_checked,
        report.events_delivered,
        revisions.len(),
        report.violations.len()
    );
    let listed: Vec<_> = report.violations.iter().take(LISTED_MAX).collect();
    Ok(CheckerVerdict {
        checker: "watch".to_string(),
        outcome,
        summary,
        detail: serde_json::json!({
            "watchers_checked": report.watchers_checked,
            "events_delivered": report.events_delivered,
            "violation_count": report.violations.len(),
            "violations": to_json(&listed)?,
        }),
    })
}

fn lease(paired: &[crate::history::PairedOperation]) -> Result<CheckerVerdict, JepsenError> {
    let report = check_leases(paired, &LeaseCheckOptions::default());
    let outcome = if report.is_valid() {
        Outcome::Valid
    } else {
        Outcome::Invalid
    };
    let summary = format!(
        "{} leases kept alive; {} observations of a key or lease gone while certainly alive",
        report.leases_checked,
        report.violations.len()
    );
    let listed: Vec<_> = report.violations.iter().take(LISTED_MAX).collect();
    Ok(CheckerVerdict {
        checker: "lease".to_string(),
        outcome,
        summary,
        detail: serde_json::json!({
            "leases_checked": report.leases_checked,
            "violation_count": report.violations.len(),
            "violations": to_json(&listed)?,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::NemesisAction;
    use crate::recorder::HistoryRecorder;

    #[test]
    fn a_stale_read_makes_the_register_verdict_invalid_and_nemesis_records_are_ignored() {
        let mut recorder = HistoryRecorder::new();
        let nemesis = Call::Nemesis(NemesisAction {
            action: "start".to_string(),
            fault: "partition".to_string(),
            detail: String::new(),
        });
        recorder.invoke(99, None, nemesis.clone(), 0);
        recorder.complete(99, RecordType::Ok, None, nemesis, 1);
        recorder.invoke(1, Some("r"), Call::Write(1), 2);
        recorder.complete(1, RecordType::Ok, Some("r"), Call::Write(1), 3);
        recorder.invoke(2, Some("r"), Call::Write(2), 4);
        recorder.complete(2, RecordType::Ok, Some("r"), Call::Write(2), 5);
        recorder.invoke(3, Some("r"), Call::Read(None), 6);
        recorder.complete(3, RecordType::Ok, Some("r"), Call::Read(Some(1)), 7);
        let records = recorder.into_records();
        let evidence = Evidence {
            records: &records,
            watchers: &[],
            revisions: &[],
            recovery: Some(&Recovery::default()),
        };
        let verdicts = judge(WorkloadKind::Register, evidence, Vec::new()).unwrap();
        assert_eq!(verdicts.outcome, Outcome::Invalid);
        assert_eq!(verdicts.operations.invoked, 3);
        assert_eq!(verdicts.operations.faults, 1);
    }

    #[test]
    fn a_set_run_without_a_final_read_is_unknown_not_valid() {
        let mut recorder = HistoryRecorder::new();
        recorder.invoke(1, Some(SET_KEY), Call::Add(1), 0);
        recorder.complete(1, RecordType::Ok, Some(SET_KEY), Call::Add(1), 1);
        let records = recorder.into_records();
        let evidence = Evidence {
            records: &records,
            watchers: &[],
            revisions: &[],
            recovery: None,
        };
        let verdicts = judge(WorkloadKind::Set, evidence, Vec::new()).unwrap();
        assert_eq!(verdicts.outcome, Outcome::Unknown);
    }

    #[test]
    fn delivered_events_without_the_stores_history_are_unknown_not_invented() {
        use crate::checker::watch::{
            EventKind, KeyRange, WatchEvent, WatchResponseRecord, WatchSession,
        };
        let watchers = [WatcherLog {
            watcher: "w0".to_string(),
            sessions: vec![WatchSession {
                start_revision: 2,
                range: KeyRange::Prefix {
                    prefix: "watch/".to_string(),
                },
                responses: vec![WatchResponseRecord {
                    watch_id: 0,
                    header_revision: 2,
                    created: false,
                    canceled: false,
                    compact_revision: 0,
                    fragment: false,
                    events: vec![WatchEvent {
                        key: "watch/1".to_string(),
                        kind: EventKind::Put,
                        value: Some("1".to_string()),
                        mod_revision: 2,
                    }],
                    time_ns: 0,
                }],
            }],
        }];
        let evidence = Evidence {
            records: &[],
            watchers: &watchers,
            revisions: &[],
            recovery: None,
        };
        let verdicts = judge(WorkloadKind::Watch, evidence, Vec::new()).unwrap();
        assert_eq!(verdicts.outcome, Outcome::Unknown);
    }

    #[test]
    fn a_node_that_will_not_restart_is_a_violation_and_a_slow_one_is_unknown() {
        let records = Vec::new();
        let judged = |recovery: &Recovery| {
            let evidence = Evidence {
                records: &records,
                watchers: &[],
                revisions: &[],
                recovery: Some(recovery),
            };
            judge(WorkloadKind::Register, evidence, Vec::new())
                .unwrap()
                .outcome
        };
        assert_eq!(judged(&Recovery::default()), Outcome::Valid);
        let exits = Recovery {
            crashed: Vec::new(),
            heal_error: Some("n1 exited (exit status: 1): Raft did not start".to_string()),
            heal_failed_on_exits: true,
        };
        assert_eq!(judged(&exits), Outcome::Invalid);
        let slow = Recovery {
            heal_failed_on_exits: false,
            ..exits
        };
        assert_eq!(judged(&slow), Outcome::Unknown);
    }
}
