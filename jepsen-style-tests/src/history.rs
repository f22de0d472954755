//! The recorded history: what every workload writes and every checker reads.
//!
//! A history is a sequence of [`Operation`] records in the order the runner saw them,
//! one JSON object per line (JSONL), as in Jepsen: each client process records an
//! `invoke` before it sends a request and exactly one completion after: `ok` (it took
//! effect, with its result), `fail` (it certainly did not take effect) or `info` (the
//! outcome is unknown: a timeout, a connection cut mid-request). Checkers never look at
//! raw records; they work on [`PairedOperation`]s, built by [`pair_operations`], which
//! join each invocation to its completion and treat an invocation that never completed
//! as `info`.
//!
//! Times are nanoseconds of one monotonic clock in the runner process, so "completed
//! before invoked" compares two numbers from the same clock.
//!
//! Two lines of a history, a compare-and-set whose comparison did not match:
//!
//! ```text
//! {"process":3,"index":41,"type":"invoke","key":"r1","f":"cas","value":{"expected":4,"new":9},"time_ns":1200345}
//! {"process":3,"index":44,"type":"fail","key":"r1","f":"cas","value":{"expected":4,"new":9},"time_ns":1250111,"node":"n2","error":"compare failed"}
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::JepsenError;

/// One line of a history: an invocation or a completion by one client process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The logical client that issued the request. A process runs one operation at a
    /// time; after an `info` completion the runner continues under a fresh process id,
    /// because the old request may still be in flight.
    pub process: u64,
    /// Position of this record in the whole history, unique across processes.
    pub index: u64,
    /// Whether this record is the invocation or which kind of completion it is.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// The key the operation acted on, for single-key operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What was called (`f`) and its arguments or results (`value`).
    #[serde(flatten)]
    pub call: Call,
    /// When the record was taken, from the runner's monotonic clock.
    pub time_ns: u64,
    /// The node the request was sent to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The store revision the response carried (header revision), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// Why a request failed or has an unknown outcome, for the humans reading a report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Jepsen's four record types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordType {
    /// The request is about to be sent.
    Invoke,
    /// The request took effect; the record carries its result.
    Ok,
    /// The request certainly did not take effect.
    Fail,
    /// The request may or may not have taken effect, now or at any later time.
    Info,
}

/// What an operation called, serialised as Jepsen's `f` and `value` fields.
///
/// An invocation carries the arguments; an `ok` completion carries the results too
/// (a read's value, the TTL a keep-alive returned), which is why pairing keeps the
/// completion's `Call` for successful operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", content = "value", rename_all = "kebab-case")]
pub enum Call {
    /// Register read of `key`: `null` in the invocation; in an `ok` completion, the value
    /// read, or `null` when the key was absent.
    Read(Option<i64>),
    /// Register write of a value unique across the history.
    Write(i64),
    /// Register compare-and-set: succeeds (`ok`) only when the current value is `expected`;
    /// a compare that did not match is recorded as `fail`.
    Cas(CompareAndSet),
    /// Register delete: afterwards the key reads as absent.
    Delete,
    /// Add a unique element to the set stored under `key`.
    Add(i64),
    /// Read the whole set stored under `key`: `null` in the invocation, the elements in an
    /// `ok` completion.
    ReadSet(Option<Vec<i64>>),
    /// A list-append transaction: appends and reads over several keys, applied atomically.
    Txn(Vec<MicroOp>),
    /// Grant a lease. The `ok` completion carries the lease id and the TTL actually granted.
    LeaseGrant(LeaseGrant),
    /// Refresh a lease. The `ok` completion carries the TTL the server returned; a TTL of
    /// zero or less means the server no longer knew the lease.
    LeaseKeepAlive(LeaseKeepAlive),
    /// Revoke a lease by id, deleting its keys.
    LeaseRevoke(i64),
    /// Put a value under `key` attached to a lease.
    LeasePut(LeasePut),
    /// An observer saw that the lease with this id no longer exists (a TTL query answered
    /// "not found", or a watch saw its keys deleted by expiry).
    LeaseExpiryObserved(i64),
    /// A fault injected or healed by the nemesis. Recorded in the same history (under the
    /// nemesis's own process id) so that a reader sees which operations ran under which
    /// fault; every checker ignores it.
    Nemesis(NemesisAction),
}

impl Call {
    /// The `f` name as written in the history, for messages and reports.
    pub fn function_name(&self) -> &'static str {
        match self {
            Call::Read(_) => "read",
            Call::Write(_) => "write",
            Call::Cas(_) => "cas",
            Call::Delete => "delete",
            Call::Add(_) => "add",
            Call::ReadSet(_) => "read-set",
            Call::Txn(_) => "txn",
            Call::LeaseGrant(_) => "lease-grant",
            Call::LeaseKeepAlive(_) => "lease-keep-alive",
            Call::LeaseRevoke(_) => "lease-revoke",
            Call::LeasePut(_) => "lease-put",
            Call::LeaseExpiryObserved(_) => "lease-expiry-observed",
            Call::Nemesis(_) => "nemesis",
        }
    }
}

/// Arguments of a register compare-and-set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompareAndSet {
    /// The value the register must hold for the swap to happen.
    pub expected: i64,
    /// The value written when it does; unique across the history.
    pub new: i64,
}

/// One step of a list-append transaction, in Elle's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum MicroOp {
    /// Append `value` (unique per key) to the list stored under `key`.
    Append {
        /// The list's key.
        key: String,
        /// The appended element.
        value: i64,
    },
    /// Read the list stored under `key`: `null` in the invocation, the elements in order
    /// (empty when the key is absent) in an `ok` completion.
    Read {
        /// The list's key.
        key: String,
        /// The elements read, once known.
        #[serde(default)]
        value: Option<Vec<i64>>,
    },
}

/// One start or stop of a fault, as the nemesis records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NemesisAction {
    /// `start` when the fault begins, `stop` when it is healed.
    pub action: String,
    /// The nemesis: `partition`, `loss`, `kill`, `pause`, `clock`, `membership`, `disk`.
    pub fault: String,
    /// What exactly was done, and in a completion what was observed, for a human.
    pub detail: String,
}

/// Arguments and result of a lease grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    /// The lease id: chosen by the client in the invocation, or assigned by the server
    /// and known only in the `ok` completion.
    #[serde(default)]
    pub lease: Option<i64>,
    /// Requested TTL in the invocation; granted TTL in the completion.
    pub ttl_s: i64,
}

/// Arguments and result of a lease keep-alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseKeepAlive {
    /// The lease refreshed.
    pub lease: i64,
    /// The TTL the server answered with, in the `ok` completion only.
    #[serde(default)]
    pub ttl_s: Option<i64>,
}

/// Arguments of a put attached to a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeasePut {
    /// The lease the key is attached to.
    pub lease: i64,
    /// The value written.
    pub value: i64,
}

/// How a paired operation ended, from the checkers' point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It took effect, between its invocation and its completion.
    Ok,
    /// It certainly did not take effect; checkers drop it.
    Fail,
    /// It may take effect at any time after its invocation, or never.
    Info,
}

/// An invocation joined to its completion: the unit every checker reasons about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedOperation {
    /// The process that ran it.
    pub process: u64,
    /// The invocation record's index; identifies the operation in reports.
    pub invoke_index: u64,
    /// The completion record's index, if a completion was recorded.
    pub complete_index: Option<u64>,
    /// How it ended; an invocation with no completion is `Info`.
    pub outcome: Outcome,
    /// The key it acted on, for single-key operations.
    pub key: Option<String>,
    /// The completion's call for `Ok` operations (it carries the results), the
    /// invocation's otherwise.
    pub call: Call,
    /// When it was invoked.
    pub invoke_time_ns: u64,
    /// When it completed; `None` for `Info`, whose effect has no upper time bound.
    pub complete_time_ns: Option<u64>,
    /// The node it was sent to, when known.
    pub node: Option<String>,
    /// The revision its response carried, when known.
    pub revision: Option<i64>,
}

impl PairedOperation {
    /// True when the operation certainly took effect.
    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    /// True when `self` completed before `later` was invoked, so any correct system must
    /// order `self` first.
    pub fn precedes_in_real_time(&self, later: &PairedOperation) -> bool {
        self.complete_time_ns
            .is_some_and(|complete_time_ns| complete_time_ns < later.invoke_time_ns)
    }
}

/// Reads a JSONL file of records of any serialisable type (operations, watch logs).
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, JepsenError> {
    let read_error = |source| JepsenError::ReadHistory {
        path: path.to_path_buf(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(read_error)?);
    let mut records = Vec::new();
    for (line_offset, line) in reader.lines().enumerate() {
        let line = line.map_err(read_error)?;
        if line.trim().is_empty() {
            continue;
        }
        let record =
            serde_json::from_str(&line).map_err(|source| JepsenError::MalformedRecord {
                path: path.to_path_buf(),
                line_number: line_offset + 1,
                source,
            })?;
        records.push(record);
    }
    Ok(records)
}

/// Writes records as JSONL, one per line, replacing the file.
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<(), JepsenError> {
    let write_error = |source| JepsenError::WriteHistory {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = BufWriter::new(File::create(path).map_err(write_error)?);
    for record in records {
        let line =
            serde_json::to_string(record).map_err(|source| JepsenError::EncodeRecord { source })?;
        writeln!(writer, "{line}").map_err(write_error)?;
    }
    writer.flush().map_err(write_error)
}

/// Loads a recorded operation history from a JSONL file.
pub fn load_history(path: &Path) -> Result<Vec<Operation>, JepsenError> {
    read_jsonl(path)
}

/// Joins every invocation to the next completion of the same process.
///
/// The result is in invocation order. An invocation that never completed becomes an
/// `Info` operation: the request may still take effect. Records that break the
/// recording rules (a completion with nothing pending, a second invocation while one is
/// pending, a completion of a different `f`, time running backwards) are errors, because
/// a checker fed such a history would give verdicts about the recorder, not the system.
pub fn pair_operations(records: &[Operation]) -> Result<Vec<PairedOperation>, JepsenError> {
    let mut pending_by_process: HashMap<u64, usize> = HashMap::new();
    let mut paired: Vec<(usize, PairedOperation)> = Vec::new();
    for (position, record) in records.iter().enumerate() {
        if record.record_type == RecordType::Invoke {
            if let Some(&pending_position) = pending_by_process.get(&record.process) {
                return Err(JepsenError::InvocationWhilePending {
                    process: record.process,
                    pending_index: records[pending_position].index,
                    index: record.index,
                });
            }
            pending_by_process.insert(record.process, position);
            continue;
        }
        let Some(invoke_position) = pending_by_process.remove(&record.process) else {
            return Err(JepsenError::CompletionWithoutInvocation {
                process: record.process,
                index: record.index,
            });
        };
        let invocation = &records[invoke_position];
        paired.push((invoke_position, join(invocation, record)?));
    }
    for (_, invoke_position) in pending_by_process {
        let invocation = &records[invoke_position];
        paired.push((invoke_position, never_completed(invocation)));
    }
    paired.sort_by_key(|(invoke_position, _)| *invoke_position);
    Ok(paired.into_iter().map(|(_, operation)| operation).collect())
}

fn join(invocation: &Operation, completion: &Operation) -> Result<PairedOperation, JepsenError> {
    if std::mem::discriminant(&invocation.call) != std::mem::discriminant(&completion.call) {
        return Err(JepsenError::CompletionMismatch {
            process: invocation.process,
            invoke_index: invocation.index,
            complete_index: completion.index,
            invoked: invocation.call.function_name(),
            completed: completion.call.function_name(),
        });
    }
    if completion.time_ns < invocation.time_ns {
        return Err(JepsenError::CompletionBeforeInvocation {
            invoke_index: invocation.index,
            complete_index: completion.index,
            invoke_time_ns: invocation.time_ns,
            complete_time_ns: completion.time_ns,
        });
    }
    let (outcome, call, complete_time_ns) = match completion.record_type {
        RecordType::Ok => (
            Outcome::Ok,
            completion.call.clone(),
            Some(completion.time_ns),
        ),
        RecordType::Fail => (
            Outcome::Fail,
            invocation.call.clone(),
            Some(completion.time_ns),
        ),
        // An `info` completion says nothing about when (or whether) the effect happens.
        RecordType::Info | RecordType::Invoke => (Outcome::Info, invocation.call.clone(), None),
    };
    Ok(PairedOperation {
        process: invocation.process,
        invoke_index: invocation.index,
        complete_index: Some(completion.index),
        outcome,
        key: completion.key.clone().or_else(|| invocation.key.clone()),
        call,
        invoke_time_ns: invocation.time_ns,
        complete_time_ns,
        node: completion.node.clone().or_else(|| invocation.node.clone()),
        revision: completion.revision.or(invocation.revision),
    })
}

fn never_completed(invocation: &Operation) -> PairedOperation {
    PairedOperation {
        process: invocation.process,
        invoke_index: invocation.index,
        complete_index: None,
        outcome: Outcome::Info,
        key: invocation.key.clone(),
        call: invocation.call.clone(),
        invoke_time_ns: invocation.time_ns,
        complete_time_ns: None,
        node: invocation.node.clone(),
        revision: invocation.revision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(process: u64, index: u64, record_type: RecordType, call: Call) -> Operation {
        Operation {
            process,
            index,
            record_type,
            key: Some("x".to_string()),
            call,
            time_ns: index * 10,
            node: None,
            revision: None,
            error: None,
        }
    }

    #[test]
    fn records_round_trip_through_jsonl_with_jepsen_field_names() {
        let records = vec![
            record(
                1,
                0,
                RecordType::Invoke,
                Call::Cas(CompareAndSet {
                    expected: 1,
                    new: 2,
                }),
            ),
            record(
                1,
                1,
                RecordType::Ok,
                Call::Cas(CompareAndSet {
                    expected: 1,
                    new: 2,
                }),
            ),
            record(2, 2, RecordType::Invoke, Call::Delete),
            record(
                3,
                3,
                RecordType::Invoke,
                Call::Txn(vec![
                    MicroOp::Append {
                        key: "a".to_string(),
                        value: 1,
                    },
                    MicroOp::Read {
                        key: "a".to_string(),
                        value: None,
                    },
                ]),
            ),
        ];
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("history.jsonl");
        write_jsonl(&path, &records).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let first_line = text.lines().next().unwrap();
        assert!(first_line.contains(r#""type":"invoke""#), "{first_line}");
        assert!(first_line.contains(r#""f":"cas""#), "{first_line}");
        assert_eq!(load_history(&path).unwrap(), records);
    }

    #[test]
    fn the_module_documentation_example_parses_and_pairs() {
        let lines = [
            r#"{"process":3,"index":41,"type":"invoke","key":"r1","f":"cas","value":{"expected":4,"new":9},"time_ns":1200345}"#,
            r#"{"process":3,"index":44,"type":"fail","key":"r1","f":"cas","value":{"expected":4,"new":9},"time_ns":1250111,"node":"n2","error":"compare failed"}"#,
        ];
        let records: Vec<Operation> = lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let paired = pair_operations(&records).unwrap();
        assert_eq!(paired[0].outcome, Outcome::Fail);
        assert_eq!(
            paired[0].call,
            Call::Cas(CompareAndSet {
                expected: 4,
                new: 9
            })
        );
    }

    #[test]
    fn a_read_recorded_by_hand_parses() {
        let line = r#"{"process":4,"index":9,"type":"ok","f":"read","key":"r","value":null,"time_ns":77,"node":"n2"}"#;
        let operation: Operation = serde_json::from_str(line).unwrap();
        assert_eq!(operation.call, Call::Read(None));
        assert_eq!(operation.node.as_deref(), Some("n2"));
    }

    #[test]
    fn a_malformed_line_is_reported_with_its_line_number() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("history.jsonl");
        std::fs::write(&path, "\n{\"process\":1}\n").unwrap();
        let error = load_history(&path).unwrap_err();
        assert!(
            matches!(error, JepsenError::MalformedRecord { line_number: 2, .. }),
            "{error}"
        );
    }

    #[test]
    fn pairing_keeps_ok_results_and_turns_pending_invocations_into_info() {
        let records = vec![
            record(1, 0, RecordType::Invoke, Call::Read(None)),
            record(2, 1, RecordType::Invoke, Call::Write(5)),
            record(1, 2, RecordType::Ok, Call::Read(Some(5))),
            record(3, 3, RecordType::Invoke, Call::Write(6)),
            record(3, 4, RecordType::Fail, Call::Write(6)),
        ];
        let paired = pair_operations(&records).unwrap();
        assert_eq!(paired.len(), 3);
        assert_eq!(paired[0].call, Call::Read(Some(5)));
        assert_eq!(paired[0].complete_time_ns, Some(20));
        assert_eq!(paired[1].outcome, Outcome::Info);
        assert_eq!(paired[1].complete_time_ns, None);
        assert_eq!(paired[2].outcome, Outcome::Fail);
    }

    #[test]
    fn an_info_completion_has_no_completion_time() {
        let records = vec![
            record(1, 0, RecordType::Invoke, Call::Write(1)),
            record(1, 1, RecordType::Info, Call::Write(1)),
        ];
        let paired = pair_operations(&records).unwrap();
        assert_eq!(paired[0].outcome, Outcome::Info);
        assert_eq!(paired[0].complete_index, Some(1));
        assert_eq!(paired[0].complete_time_ns, None);
    }

    #[test]
    fn pairing_rejects_records_that_break_the_recording_rules() {
        let orphan = vec![record(1, 0, RecordType::Ok, Call::Write(1))];
        assert!(matches!(
            pair_operations(&orphan),
            Err(JepsenError::CompletionWithoutInvocation { .. })
        ));

        let double_invoke = vec![
            record(1, 0, RecordType::Invoke, Call::Write(1)),
            record(1, 1, RecordType::Invoke, Call::Write(2)),
        ];
        assert!(matches!(
            pair_operations(&double_invoke),
            Err(JepsenError::InvocationWhilePending {
                pending_index: 0,
                ..
            })
        ));

        let mismatch = vec![
            record(1, 0, RecordType::Invoke, Call::Write(1)),
            record(1, 1, RecordType::Ok, Call::Read(Some(1))),
        ];
        assert!(matches!(
            pair_operations(&mismatch),
            Err(JepsenError::CompletionMismatch { .. })
        ));
    }
}
