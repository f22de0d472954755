//! The list-append workload (Elle's): transactions of appends and reads over a few keys,
//! each key holding a list of unique integers.
//!
//! etcd has no append, so a transaction is optimistic, in two requests: a read-only Txn
//! reads every key the transaction touches at one revision; the runner computes the
//! reads' results and the new lists; a second Txn writes the new lists only if no key it
//! read has changed (`mod_revision` compares on every touched key, read or written), so
//! the transaction takes effect at the second Txn's revision with exactly the reads it
//! reports. A compare that fails is a certain failure, retried a few times before the
//! operation is recorded as `fail`. Read-only transactions are the first Txn alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use vane_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::response_op::Response;
use vane_proto::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};

use super::{
    Client, Completion, OPERATION_DEADLINE_MS, WorkloadContext, WorkloadOutput, clients_for,
    header_revision, perform,
};
use crate::error::JepsenError;
use crate::etcd_rpc::with_deadline;
use crate::history::{Call, MicroOp, RecordType};

/// Transactions issued before the clients move to fresh keys.
pub const TRANSACTIONS_PER_GENERATION: u64 = 200;
/// Keys in use at any time.
pub const ACTIVE_KEYS: u64 = 4;
/// Most micro-operations in one transaction.
const MICRO_OPS_MAX: usize = 4;
/// Attempts at committing one transaction whose keys changed under it.
const COMMIT_ATTEMPTS: u32 = 3;
/// Pause between one client's transactions, in milliseconds (range).
const THINK_MS: (u64, u64) = (2, 15);

#[derive(Debug, Default)]
struct Shared {
    issued: AtomicU64,
    next_value: AtomicI64,
    /// The highest key number handed out, for the final reads.
    highest_key: AtomicU64,
}

/// Runs the transaction clients until the end of the main phase, then reads every key
/// from every node.
pub async fn run(context: WorkloadContext) -> Result<WorkloadOutput, JepsenError> {
    let shared = Arc::new(Shared {
        next_value: AtomicI64::new(1),
        ..Shared::default()
    });
    let total = context.clients() + context.nodes;
    let clients = clients_for(&context, 0, context.clients(), total)?;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(client_loop(client, context.clone(), shared.clone())))
        .collect();
    for task in tasks {
        let _ = task.await;
    }

    let wait = context.final_read_wait(context.wait_for_heal().await);
    let mut output = WorkloadOutput::default();
    let key_count = shared.highest_key.load(Ordering::Relaxed) + 1;
    let readers = clients_for(&context, context.clients(), context.nodes, total)?;
    for mut reader in readers {
        let deadline = Instant::now() + wait;
        let mut read = false;
        while !read && Instant::now() < deadline {
            // Reads of at most MICRO_OPS_MAX * 2 keys per transaction keep responses small.
            let mut all_read = true;
            for chunk_start in (0..key_count).step_by(MICRO_OPS_MAX * 2) {
                let micro_ops = (chunk_start
                    ..(chunk_start + (MICRO_OPS_MAX * 2) as u64).min(key_count))
                    .map(|key| MicroOp::Read {
                        key: key_name(key),
                        value: None,
                    })
                    .collect();
                all_read &= transact(&mut reader, &context, micro_ops).await == RecordType::Ok;
            }
            read = all_read;
            if !read {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        if !read {
            output.notes.push(format!(
                "the final reads from {} did not all succeed within {} ms",
                reader.node,
                wait.as_millis()
            ));
        }
    }
    Ok(output)
}

fn key_name(key: u64) -> String {
    format!("append/{key}")
}

async fn client_loop(mut client: Client, context: WorkloadContext, shared: Arc<Shared>) {
    while Instant::now() < context.end {
        let issued = shared.issued.fetch_add(1, Ordering::Relaxed);
        let first_key = (issued / TRANSACTIONS_PER_GENERATION) * ACTIVE_KEYS;
        let count = client.rng.random_range(1..=MICRO_OPS_MAX);
        let micro_ops = (0..count)
            .map(|_| {
                let key_number = first_key + client.rng.random_range(0..ACTIVE_KEYS);
                shared.highest_key.fetch_max(key_number, Ordering::Relaxed);
                let key = key_name(key_number);
                if client.rng.random_bool(0.5) {
                    MicroOp::Append {
                        key,
                        value: shared.next_value.fetch_add(1, Ordering::Relaxed),
                    }
                } else {
                    MicroOp::Read { key, value: None }
                }
            })
            .collect();
        transact(&mut client, &context, micro_ops).await;
        client.think(THINK_MS).await;
    }
}

/// One key as the snapshot read found it.
#[derive(Debug, Clone, Default)]
struct KeyState {
    list: Vec<i64>,
    mod_revision: i64,
}

async fn transact(
    client: &mut Client,
    context: &WorkloadContext,
    micro_ops: Vec<MicroOp>,
) -> RecordType {
    let call = Call::Txn(micro_ops.clone());
    let mut kv = client.kv();
    let response = async {
        let mut keys: Vec<String> = Vec::new();
        for micro_op in &micro_ops {
            let key = match micro_op {
                MicroOp::Append { key, .. } | MicroOp::Read { key, .. } => key,
            };
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        let writes = micro_ops
            .iter()
            .any(|micro_op| matches!(micro_op, MicroOp::Append { .. }));
        for _ in 0..COMMIT_ATTEMPTS {
            let snapshot = TxnRequest {
                compare: Vec::new(),
                success: keys
                    .iter()
                    .map(|key| RequestOp {
                        request: Some(Request::RequestRange(RangeRequest {
                            key: key.as_bytes().to_vec(),
                            ..RangeRequest::default()
                        })),
                    })
                    .collect(),
                failure: Vec::new(),
            };
            let snapshot = match with_deadline(OPERATION_DEADLINE_MS, async {
                Ok(kv.txn(snapshot).await?.into_inner())
            })
            .await
            {
                Ok(response) => response,
                // Nothing has been written by this transaction yet.
                Err(status) => return Completion::from_read_error(&status),
            };
            let mut states: BTreeMap<String, KeyState> = BTreeMap::new();
            for (key, response_op) in keys.iter().zip(&snapshot.responses) {
                let Some(Response::ResponseRange(range)) = &response_op.response else {
                    return Completion::Fail(format!("snapshot read of {key} answered no range"));
                };
                let state = match range.kvs.first() {
                    None => KeyState::default(),
                    Some(kv) => match parse_list(&kv.value) {
                        Some(list) => KeyState {
                            list,
                            mod_revision: kv.mod_revision,
                        },
                        None => {
                            return Completion::Fail(format!(
                                "unparseable list {:?} under {key}",
                                kv.value
                            ));
                        }
                    },
                };
                states.insert(key.clone(), state);
            }
            let (results, new_lists) = apply_locally(&micro_ops, &states);
            if !writes {
                return Completion::Ok {
                    call: Call::Txn(results),
                    revision: header_revision(snapshot.header.as_ref()),
                };
            }
            let commit = TxnRequest {
                compare: keys
                    .iter()
                    .map(|key| Compare {
                        result: CompareResult::Equal as i32,
                        target: CompareTarget::Mod as i32,
                        key: key.as_bytes().to_vec(),
                        range_end: Vec::new(),
                        target_union: Some(TargetUnion::ModRevision(
                            states.get(key).map_or(0, |state| state.mod_revision),
                        )),
                    })
                    .collect(),
                success: new_lists
                    .iter()
                    .map(|(key, list)| RequestOp {
                        request: Some(Request::RequestPut(PutRequest {
                            key: key.as_bytes().to_vec(),
                            value: encode_list(list),
                            ..PutRequest::default()
                        })),
                    })
                    .collect(),
                failure: Vec::new(),
            };
            match with_deadline(OPERATION_DEADLINE_MS, async {
                Ok(kv.txn(commit).await?.into_inner())
            })
            .await
            {
                Ok(response) if response.succeeded => {
                    return Completion::Ok {
                        call: Call::Txn(results),
                        revision: header_revision(response.header.as_ref()),
                    };
                }
                // A key moved since the snapshot: nothing was written; try again.
                Ok(_) => continue,
                Err(status) => return Completion::from_write_error(&status),
            }
        }
        Completion::Fail(format!(
            "keys kept changing under the transaction ({COMMIT_ATTEMPTS} attempts)"
        ))
    };
    perform(client, &context.sink, None, call, response).await
}

/// Runs the micro-operations against the snapshot: the reads' results (each sees the
/// transaction's own earlier appends) and the final list of every key appended to.
fn apply_locally(
    micro_ops: &[MicroOp],
    states: &BTreeMap<String, KeyState>,
) -> (Vec<MicroOp>, BTreeMap<String, Vec<i64>>) {
    let mut lists: BTreeMap<String, Vec<i64>> = states
        .iter()
        .map(|(key, state)| (key.clone(), state.list.clone()))
        .collect();
    let mut appended: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let results = micro_ops
        .iter()
        .map(|micro_op| match micro_op {
            MicroOp::Append { key, value } => {
                let list = lists.entry(key.clone()).or_default();
                list.push(*value);
                appended.insert(key.clone(), list.clone());
                micro_op.clone()
            }
            MicroOp::Read { key, .. } => MicroOp::Read {
                key: key.clone(),
                value: Some(lists.get(key).cloned().unwrap_or_default()),
            },
        })
        .collect();
    (results, appended)
}

fn encode_list(list: &[i64]) -> Vec<u8> {
    list.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(" ")
        .into_bytes()
}

fn parse_list(bytes: &[u8]) -> Option<Vec<i64>> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.split_whitespace()
        .map(|item| item.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_the_transactions_own_earlier_appends() {
        let mut states = BTreeMap::new();
        states.insert(
            "a".to_string(),
            KeyState {
                list: vec![1],
                mod_revision: 4,
            },
        );
        let micro_ops = vec![
            MicroOp::Read {
                key: "a".to_string(),
                value: None,
            },
            MicroOp::Append {
                key: "a".to_string(),
                value: 2,
            },
            MicroOp::Read {
                key: "a".to_string(),
                value: None,
            },
            MicroOp::Read {
                key: "b".to_string(),
                value: None,
            },
        ];
        let (results, appended) = apply_locally(&micro_ops, &states);
        assert_eq!(
            results[0],
            MicroOp::Read {
                key: "a".to_string(),
                value: Some(vec![1])
            }
        );
        assert_eq!(
            results[2],
            MicroOp::Read {
                key: "a".to_string(),
                value: Some(vec![1, 2])
            }
        );
        assert_eq!(
            results[3],
            MicroOp::Read {
                key: "b".to_string(),
                value: Some(Vec::new())
            }
        );
        assert_eq!(appended.get("a"), Some(&vec![1, 2]));
        assert!(!appended.contains_key("b"));
    }

    #[test]
    fn lists_round_trip_and_garbage_is_refused() {
        assert_eq!(parse_list(&encode_list(&[3, 1, 2])), Some(vec![3, 1, 2]));
        assert_eq!(parse_list(b""), Some(Vec::new()));
        assert_eq!(parse_list(b"1 x"), None);
    }
}
