//! The lease workload: owners grant leases, attach a key to each, keep them alive for a
//! while through the keep-alive stream, then revoke them or let them expire; readers
//! read those keys and ask for the leases' time to live.
//!
//! Every acknowledged keep-alive proves its lease alive until the keep-alive's
//! invocation plus the TTL it returned; a reader that finds the key gone, or a TTL query
//! that finds the lease gone, before then is a violation. An owner whose keep-alive
//! stream breaks reopens it on the next node, as a client library would.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use vane_proto::etcdserverpb::lease_client::LeaseClient;
use vane_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest,
    LeaseTimeToLiveRequest, PutRequest, RangeRequest,
};

use super::{
    Client, Completion, OPERATION_DEADLINE_MS, WorkloadContext, WorkloadOutput, clients_for,
    header_revision, perform,
};
use crate::error::JepsenError;
use crate::etcd_rpc::{self, with_deadline};
use crate::history::{Call, LeaseGrant, LeaseKeepAlive, LeasePut, RecordType};
use crate::nodes::{client_ip, client_url};

/// The TTL owners ask for, in seconds.
pub const LEASE_TTL_S: i64 = 4;
/// Pause between two keep-alives of one lease, in milliseconds.
const KEEP_ALIVE_INTERVAL_MS: u64 = 1000;
/// How long a keep-alive may wait for its answer, in milliseconds.
const KEEP_ALIVE_DEADLINE_MS: u64 = 2000;
/// How long an owner keeps a lease alive, in milliseconds (range).
const HOLD_MS: (u64, u64) = (5000, 12_000);
/// How many recently leased keys the readers choose from.
const REGISTRY_SIZE: usize = 12;
/// Pause between one reader's operations, in milliseconds (range).
const READER_THINK_MS: (u64, u64) = (20, 60);

/// Keys recently attached to leases, for the readers: a std mutex, held only to push or
/// pick one entry.
#[derive(Debug, Default)]
struct Registry {
    entries: Mutex<Vec<(String, i64)>>,
}

impl Registry {
    fn push(&self, key: String, lease: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.push((key, lease));
        if entries.len() > REGISTRY_SIZE {
            entries.remove(0);
        }
    }

    fn pick(&self, choice: usize) -> Option<(String, i64)> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.is_empty() {
            return None;
        }
        entries.get(choice % entries.len()).cloned()
    }
}

/// Runs owners and readers until the end of the main phase.
pub async fn run(context: WorkloadContext) -> Result<WorkloadOutput, JepsenError> {
    let owners = context.nodes;
    let readers = context.clients();
    let total = owners + readers;
    let registry = Arc::new(Registry::default());
    let next_value = Arc::new(AtomicI64::new(1));
    let mut tasks = Vec::new();
    for client in clients_for(&context, 0, owners, total)? {
        tasks.push(tokio::spawn(owner_loop(
            client,
            context.clone(),
            registry.clone(),
            next_value.clone(),
        )));
    }
    for client in clients_for(&context, owners, readers, total)? {
        tasks.push(tokio::spawn(reader_loop(
            client,
            context.clone(),
            registry.clone(),
        )));
    }
    for task in tasks {
        let _ = task.await;
    }
    context.wait_for_heal().await;
    Ok(WorkloadOutput::default())
}

async fn owner_loop(
    mut client: Client,
    context: WorkloadContext,
    registry: Arc<Registry>,
    next_value: Arc<AtomicI64>,
) {
    let mut cycle = 0u64;
    let mut keep_alive_slot = client.slot;
    while Instant::now() < context.end {
        cycle += 1;
        let Some(lease) = grant(&mut client, &context).await else {
            client.think((200, 500)).await;
            continue;
        };
        let key = format!("lease/o{}-c{cycle}", client.index);
        let value = next_value.fetch_add(1, Ordering::Relaxed);
        if put_with_lease(&mut client, &context, &key, lease, value).await != RecordType::Fail {
            registry.push(key, lease);
        }
        let hold_until =
            Instant::now() + Duration::from_millis(client.rng.random_range(HOLD_MS.0..=HOLD_MS.1));
        keep_alive_slot = keep_alive(
            &mut client,
            &context,
            lease,
            hold_until.min(context.end),
            keep_alive_slot,
        )
        .await;
        if client.rng.random_bool(0.5) {
            revoke(&mut client, &context, lease).await;
        }
    }
}

async fn grant(client: &mut Client, context: &WorkloadContext) -> Option<i64> {
    let mut lease_client = LeaseClient::new(client.channel());
    let request = LeaseGrantRequest {
        ttl: LEASE_TTL_S,
        id: 0,
    };
    let mut granted = None;
    let response = async {
        match with_deadline(OPERATION_DEADLINE_MS, async {
            Ok(lease_client.lease_grant(request).await?.into_inner())
        })
        .await
        {
            Ok(response) if response.error.is_empty() => {
                granted = Some(response.id);
                Completion::Ok {
                    call: Call::LeaseGrant(LeaseGrant {
                        lease: Some(response.id),
                        ttl_s: response.ttl,
                    }),
                    revision: header_revision(response.header.as_ref()),
                }
            }
            Ok(response) => Completion::Fail(response.error),
            Err(status) => Completion::from_write_error(&status),
        }
    };
    let call = Call::LeaseGrant(LeaseGrant {
        lease: None,
        ttl_s: LEASE_TTL_S,
    });
    perform(client, &context.sink, None, call, response).await;
    granted
}

async fn put_with_lease(
    client: &mut Client,
    context: &WorkloadContext,
    key: &str,
    lease: i64,
    value: i64,
) -> RecordType {
    let mut kv = client.kv();
    let request = PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.to_string().into_bytes(),
        lease,
        ..PutRequest::default()
    };
    let call = Call::LeasePut(LeasePut { lease, value });
    let response = async {
        match with_deadline(OPERATION_DEADLINE_MS, async {
            Ok(kv.put(request).await?.into_inner())
        })
        .await
        {
            Ok(response) => Completion::Ok {
                call: call.clone(),
                revision: header_revision(response.header.as_ref()),
            },
            Err(status) => Completion::from_write_error(&status),
        }
    };
    perform(client, &context.sink, Some(key), call.clone(), response).await
}

/// An open keep-alive stream.
struct KeepAliveStream {
    requests: mpsc::Sender<LeaseKeepAliveRequest>,
    responses: Streaming<LeaseKeepAliveResponse>,
}

async fn open_keep_alive(client_index: usize, slot: usize) -> Option<KeepAliveStream> {
    let channel =
        etcd_rpc::channel(&client_url(slot), Some(IpAddr::V4(client_ip(client_index)))).ok()?;
    let mut lease_client = LeaseClient::new(channel);
    let (requests, receiver) = mpsc::channel(4);
    let opened = tokio::time::timeout(
        Duration::from_millis(KEEP_ALIVE_DEADLINE_MS),
        lease_client.lease_keep_alive(ReceiverStream::new(receiver)),
    )
    .await;
    match opened {
        Ok(Ok(response)) => Some(KeepAliveStream {
            requests,
            responses: response.into_inner(),
        }),
        _ => None,
    }
}

/// Keeps `lease` alive until `until`, one recorded keep-alive per interval; a broken
/// stream is reopened on the next node. Returns the slot the stream ended on.
async fn keep_alive(
    client: &mut Client,
    context: &WorkloadContext,
    lease: i64,
    until: Instant,
    mut slot: usize,
) -> usize {
    let mut stream: Option<KeepAliveStream> = None;
    while Instant::now() < until {
        if stream.is_none() {
            stream = open_keep_alive(client.index, slot).await;
        }
        let call = Call::LeaseKeepAlive(LeaseKeepAlive { lease, ttl_s: None });
        let node = format!("n{slot}");
        let mut ttl_answered: Option<i64> = None;
        let completion = {
            let stream = &mut stream;
            let ttl_answered = &mut ttl_answered;
            async move {
                let Some(open) = stream.as_mut() else {
                    return Completion::Fail("could not open a keep-alive stream".to_string());
                };
                if open
                    .requests
                    .send(LeaseKeepAliveRequest { id: lease })
                    .await
                    .is_err()
                {
                    *stream = None;
                    return Completion::Fail("keep-alive stream closed before sending".to_string());
                }
                let answer = tokio::time::timeout(
                    Duration::from_millis(KEEP_ALIVE_DEADLINE_MS),
                    open.responses.next(),
                )
                .await;
                match answer {
                    Ok(Some(Ok(response))) => {
                        *ttl_answered = Some(response.ttl);
                        Completion::Ok {
                            call: Call::LeaseKeepAlive(LeaseKeepAlive {
                                lease,
                                ttl_s: Some(response.ttl),
                            }),
                            revision: header_revision(response.header.as_ref()),
                        }
                    }
                    Ok(Some(Err(status))) => {
                        *stream = None;
                        Completion::Info(etcd_rpc::describe(&status))
                    }
                    Ok(None) => {
                        *stream = None;
                        Completion::Info("keep-alive stream ended".to_string())
                    }
                    Err(_) => {
                        *stream = None;
                        Completion::Info(format!(
                            "no keep-alive answer within {KEEP_ALIVE_DEADLINE_MS} ms"
                        ))
                    }
                }
            }
        };
        let previous_node = std::mem::replace(&mut client.node, node);
        let outcome = perform(client, &context.sink, None, call, completion).await;
        client.node = previous_node;
        if outcome != RecordType::Ok {
            slot = slot % context.nodes + 1;
        }
        if outcome == RecordType::Ok && ttl_answered.is_some_and(|ttl| ttl <= 0) {
            // The server no longer knows the lease: nothing left to keep alive.
            break;
        }
        tokio::time::sleep(Duration::from_millis(KEEP_ALIVE_INTERVAL_MS)).await;
    }
    slot
}

async fn revoke(client: &mut Client, context: &WorkloadContext, lease: i64) {
    let mut lease_client = LeaseClient::new(client.channel());
    let response = async {
        match with_deadline(OPERATION_DEADLINE_MS, async {
            Ok(lease_client
                .lease_revoke(LeaseRevokeRequest { id: lease })
                .await?
                .into_inner())
        })
        .await
        {
            Ok(response) => Completion::Ok {
                call: Call::LeaseRevoke(lease),
                revision: header_revision(response.header.as_ref()),
            },
            Err(status) => Completion::from_write_error(&status),
        }
    };
    perform(
        client,
        &context.sink,
        None,
        Call::LeaseRevoke(lease),
        response,
    )
    .await;
}

async fn reader_loop(mut client: Client, context: WorkloadContext, registry: Arc<Registry>) {
    while Instant::now() < context.end {
        let choice = client.rng.random_range(0..usize::MAX);
        if let Some((key, lease)) = registry.pick(choice) {
            if client.rng.random_range(0..10) < 7 {
                read_key(&mut client, &context, &key).await;
            } else {
                time_to_live(&mut client, &context, lease).await;
            }
        }
        client.think(READER_THINK_MS).await;
    }
}

async fn read_key(client: &mut Client, context: &WorkloadContext, key: &str) {
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
                let value = response.kvs.first().and_then(|kv| {
                    std::str::from_utf8(&kv.value)
                        .ok()
                        .and_then(|text| text.parse::<i64>().ok())
                });
                if !response.kvs.is_empty() && value.is_none() {
                    return Completion::Fail("unparseable value".to_string());
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

/// Asks for `lease`'s time to live; records an expiry observation when the server no
/// longer knows it, and a `fail` (nothing observed) when it does.
async fn time_to_live(client: &mut Client, context: &WorkloadContext, lease: i64) {
    let mut lease_client = LeaseClient::new(client.channel());
    let request = LeaseTimeToLiveRequest {
        id: lease,
        keys: false,
    };
    let response = async {
        match with_deadline(OPERATION_DEADLINE_MS, async {
            Ok(lease_client.lease_time_to_live(request).await?.into_inner())
        })
        .await
        {
            Ok(response) if response.ttl == -1 => Completion::Ok {
                call: Call::LeaseExpiryObserved(lease),
                revision: header_revision(response.header.as_ref()),
            },
            Ok(response) => Completion::Fail(format!("lease alive, ttl {} s", response.ttl)),
            Err(status) if status.code() == tonic::Code::NotFound => Completion::Ok {
                call: Call::LeaseExpiryObserved(lease),
                revision: None,
            },
            Err(status) => Completion::from_read_error(&status),
        }
    };
    perform(
        client,
        &context.sink,
        None,
        Call::LeaseExpiryObserved(lease),
        response,
    )
    .await;
}
