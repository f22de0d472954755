//! The set workload: clients add unique elements, each as its own key under `set/`, and
//! now and then read the whole set; after the heal every node is asked for the whole set
//! once more. An acknowledged add missing from a final read is a lost write.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use vane_proto::etcdserverpb::{PutRequest, RangeRequest};

use super::{
    Client, Completion, OPERATION_DEADLINE_MS, WorkloadContext, WorkloadOutput, clients_for,
    header_revision, perform, prefix_end,
};
use crate::error::JepsenError;
use crate::etcd_rpc::with_deadline;
use crate::history::{Call, RecordType};

/// The key the history files every add and read under: the set's name.
pub const SET_KEY: &str = "set";
/// The prefix of the element keys in the store.
const ELEMENT_PREFIX: &str = "set/";
/// Pause between one client's operations, in milliseconds (range).
const THINK_MS: (u64, u64) = (2, 15);

/// Runs the adders until the end of the main phase, then reads the set from every node.
pub async fn run(context: WorkloadContext) -> Result<WorkloadOutput, JepsenError> {
    let next_element = Arc::new(AtomicI64::new(1));
    let total = context.clients() + context.nodes;
    let clients = clients_for(&context, 0, context.clients(), total)?;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(client_loop(client, context.clone(), next_element.clone())))
        .collect();
    for task in tasks {
        let _ = task.await;
    }

    let wait = context.final_read_wait(context.wait_for_heal().await);
    let mut output = WorkloadOutput::default();
    let readers = clients_for(&context, context.clients(), context.nodes, total)?;
    for mut reader in readers {
        if !final_read(&mut reader, &context, wait).await {
            output.notes.push(format!(
                "the final read from {} never succeeded within {} ms",
                reader.node,
                wait.as_millis()
            ));
        }
    }
    Ok(output)
}

async fn client_loop(mut client: Client, context: WorkloadContext, next_element: Arc<AtomicI64>) {
    while Instant::now() < context.end {
        if client.rng.random_range(0..10) == 0 {
            read_set(&mut client, &context).await;
        } else {
            let element = next_element.fetch_add(1, Ordering::Relaxed);
            add(&mut client, &context, element).await;
        }
        client.think(THINK_MS).await;
    }
}

/// Reads the set until one read succeeds or the final-read wait runs out.
async fn final_read(reader: &mut Client, context: &WorkloadContext, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if read_set(reader, context).await == RecordType::Ok {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

async fn add(client: &mut Client, context: &WorkloadContext, element: i64) {
    let mut kv = client.kv();
    let request = PutRequest {
        key: format!("{ELEMENT_PREFIX}{element:010}").into_bytes(),
        value: element.to_string().into_bytes(),
        ..PutRequest::default()
    };
    let response = async {
        match with_deadline(OPERATION_DEADLINE_MS, async {
            Ok(kv.put(request).await?.into_inner())
        })
        .await
        {
            Ok(response) => Completion::Ok {
                call: Call::Add(element),
                revision: header_revision(response.header.as_ref()),
            },
            Err(status) => Completion::from_write_error(&status),
        }
    };
    perform(
        client,
        &context.sink,
        Some(SET_KEY),
        Call::Add(element),
        response,
    )
    .await;
}

async fn read_set(client: &mut Client, context: &WorkloadContext) -> RecordType {
    let mut kv = client.kv();
    let request = RangeRequest {
        key: ELEMENT_PREFIX.as_bytes().to_vec(),
        range_end: prefix_end(ELEMENT_PREFIX),
        ..RangeRequest::default()
    };
    let response = async {
        match with_deadline(OPERATION_DEADLINE_MS, async {
            Ok(kv.range(request).await?.into_inner())
        })
        .await
        {
            Ok(response) => {
                let mut elements = Vec::with_capacity(response.kvs.len());
                for kv in &response.kvs {
                    match std::str::from_utf8(&kv.value)
                        .ok()
                        .and_then(|text| text.parse::<i64>().ok())
                    {
                        Some(element) => elements.push(element),
                        None => {
                            return Completion::Fail(format!(
                                "unparseable element {:?} under {:?}",
                                kv.value, kv.key
                            ));
                        }
                    }
                }
                elements.sort_unstable();
                Completion::Ok {
                    call: Call::ReadSet(Some(elements)),
                    revision: header_revision(response.header.as_ref()),
                }
            }
            Err(status) => Completion::from_read_error(&status),
        }
    };
    perform(
        client,
        &context.sink,
        Some(SET_KEY),
        Call::ReadSet(None),
        response,
    )
    .await
}
