//! The register workload: reads, writes of unique values and compare-and-sets on
//! single keys, checked for linearizability.
//!
//! Keys rotate: every [`OPERATIONS_PER_GENERATION`] operations the clients move on to
//! [`ACTIVE_KEYS`] fresh keys, so each key's history stays short enough for the
//! linearizability search however long the run. Compare-and-set is a Txn comparing the
//! value and putting the new one; the expected value is the last one any client saw for
//! the key, so most swaps have a chance to succeed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rand::Rng;
use vane_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};

use super::{
    Client, Completion, OPERATION_DEADLINE_MS, WorkloadContext, WorkloadOutput, clients_for,
    header_revision, perform,
};
use crate::error::JepsenError;
use crate::etcd_rpc::with_deadline;
use crate::history::{Call, CompareAndSet};

/// Operations issued (over all keys) before the clients move to fresh keys.
pub const OPERATIONS_PER_GENERATION: u64 = 300;
/// Keys in use at any time.
pub const ACTIVE_KEYS: u64 = 3;
/// Pause between one client's operations, in milliseconds (range).
const THINK_MS: (u64, u64) = (2, 15);

/// What the clients share: the operation count that drives key rotation, the next
/// unique value, and the last value seen per key.
#[derive(Debug, Default)]
struct Shared {
    issued: AtomicU64,
    next_value: AtomicI64,
    /// Last value known per key, for compare-and-set; guarded by a std mutex because it
    /// is only touched between awaits.
    last_seen: Mutex<HashMap<String, i64>>,
}

impl Shared {
    fn remember(&self, key: &str, value: i64) {
        self.last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_string(), value);
    }

    fn last_seen(&self, key: &str) -> Option<i64> {
        self.last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied()
    }
}

/// Runs the register clients until the end of the main phase; nothing to do after the
/// heal.
pub async fn run(context: WorkloadContext) -> Result<WorkloadOutput, JepsenError> {
    let shared = Arc::new(Shared {
        next_value: AtomicI64::new(1),
        ..Shared::default()
    });
    let total = context.clients();
    let clients = clients_for(&context, 0, total, total)?;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(client_loop(client, context.clone(), shared.clone())))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    context.wait_for_heal().await;
    Ok(WorkloadOutput::default())
}

async fn client_loop(mut client: Client, context: WorkloadContext, shared: Arc<Shared>) {
    while Instant::now() < context.end {
        let issued = shared.issued.fetch_add(1, Ordering::Relaxed);
        let generation = issued / OPERATIONS_PER_GENERATION;
        let key = format!(
            "reg/{}",
            generation * ACTIVE_KEYS + client.rng.random_range(0..ACTIVE_KEYS)
        );
        let choice = client.rng.random_range(0..10);
        if choice < 5 {
            read(&mut client, &context, &shared, &key).await;
        } else if choice < 8 {
            let value = shared.next_value.fetch_add(1, Ordering::Relaxed);
            write(&mut client, &context, &shared, &key, value).await;
        } else {
            let new = shared.next_value.fetch_add(1, Ordering::Relaxed);
            let expected = shared
                .last_seen(&key)
                .unwrap_or_else(|| client.rng.random_range(1..=new));
            compare_and_set(&mut client, &context, &shared, &key, expected, new).await;
        }
        client.think(THINK_MS).await;
    }
}

async fn read(client: &mut Client, context: &WorkloadContext, shared: &Shared, key: &str) {
    let mut kv = client.kv();
    let request = RangeRequest {
        key: key.as_bytes().to_vec(),
        ..RangeRequest::default()
    };
    let response = async {
        match with_deadline(OPERATION_DEADLINE_MS, async {
            Ok(kv.range(request).await?.into_inner())
        })
        .await
        {
            Ok(response) => {
                let value = match response.kvs.first() {
                    None => None,
                    Some(kv) => match parse_value(&kv.value) {
                        Some(value) => Some(value),
                        None => {
                            return Completion::Fail(format!("unparseable value {:?}", kv.value));
                        }
                    },
                };
                if let Some(value) = value {
                    shared.remember(key, value);
                }
                Completion::Ok {
                    call: Call::Read(value),
                    revision: header_revision(response.header.as_ref()),
                }
            }
            Err(status) => Completion::from_read_error(&status),
        }
    };
    perform(client, &context.sink, Some(key), Call::Read(None), response).await;
}

async fn write(
    client: &mut Client,
    context: &WorkloadContext,
    shared: &Shared,
    key: &str,
    value: i64,
) {
    let mut kv = client.kv();
    let request = PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.to_string().into_bytes(),
        ..PutRequest::default()
    };
    let response = async {
        match with_deadline(OPERATION_DEADLINE_MS, async {
            Ok(kv.put(request).await?.into_inner())
        })
        .await
        {
            Ok(response) => {
                shared.remember(key, value);
                Completion::Ok {
                    call: Call::Write(value),
                    revision: header_revision(response.header.as_ref()),
                }
            }
            Err(status) => Completion::from_write_error(&status),
        }
    };
    perform(
        client,
        &context.sink,
        Some(key),
        Call::Write(value),
        response,
    )
    .await;
}

async fn compare_and_set(
    client: &mut Client,
    context: &WorkloadContext,
    shared: &Shared,
    key: &str,
    expected: i64,
    new: i64,
) {
    let mut kv = client.kv();
    let request = TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Value as i32,
            key: key.as_bytes().to_vec(),
            range_end: Vec::new(),
            target_union: Some(TargetUnion::Value(expected.to_string().into_bytes())),
        }],
        success: vec![RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: key.as_bytes().to_vec(),
                value: new.to_string().into_bytes(),
                ..PutRequest::default()
            })),
        }],
        failure: Vec::new(),
    };
    let call = Call::Cas(CompareAndSet { expected, new });
    let response = async {
        match with_deadline(OPERATION_DEADLINE_MS, async {
            Ok(kv.txn(request).await?.into_inner())
        })
        .await
        {
            Ok(response) if response.succeeded => {
                shared.remember(key, new);
                Completion::Ok {
                    call: call.clone(),
                    revision: header_revision(response.header.as_ref()),
                }
            }
            Ok(_) => Completion::Fail("compare failed".to_string()),
            Err(status) => Completion::from_write_error(&status),
        }
    };
    perform(client, &context.sink, Some(key), call.clone(), response).await;
}

/// A register value as written: a decimal integer.
fn parse_value(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}
