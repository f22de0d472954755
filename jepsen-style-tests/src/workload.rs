//! What the clients do during a run, one module per workload, and what they share.
//!
//! Every workload has two phases: the main phase, until the run's end time, while the
//! nemesis injects faults; and a final phase, after the runner has healed the cluster
//! and says so, for what needs a healthy cluster (the set's final reads, the watchers'
//! catch-up and the store's event history). Clients are pinned to one node each (client
//! `c` to slot `c mod nodes + 1`) and never follow the leader themselves: a request to a
//! follower, or to a node cut off from the others, is exactly what a fault should test.

pub mod append;
pub mod lease;
pub mod register;
pub mod set;
pub mod watch;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tonic::Status;
use tonic::transport::Channel;
use vane_proto::etcdserverpb::kv_client::KvClient;

use crate::checker::watch::{RevisionRecord, WatcherLog};
use crate::error::JepsenError;
use crate::etcd_rpc::{self, FailureKind};
use crate::history::{Call, RecordType};
use crate::history_sink::{ClientProcess, CompletionDetail, HistorySink};
use crate::nodes::{client_ip, client_url};

/// The runner-side deadline of one client request, in milliseconds: longer than the
/// server's own request timeout, so a stuck request usually ends with the server's answer.
pub const OPERATION_DEADLINE_MS: u64 = 5000;
/// Largest response a client accepts, in bytes: a final set read holds every element.
const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Pause after an operation that met an unavailable node, in milliseconds (range).
const OUTAGE_PAUSE_MS: (u64, u64) = (100, 300);
/// How long the final phase keeps retrying a read the verdict depends on, in
/// milliseconds.
pub const FINAL_READ_WAIT_MS: u64 = 30_000;

/// What every workload gets from the runner.
#[derive(Debug, Clone)]
pub struct WorkloadContext {
    /// Where operations are recorded.
    pub sink: HistorySink,
    /// Cluster size.
    pub nodes: usize,
    /// Client processes per node.
    pub clients_per_node: usize,
    /// Seeds the clients' choices.
    pub seed: u64,
    /// When the main phase ends.
    pub end: Instant,
    /// Becomes `Some(healthy)` once the runner has healed the cluster after `end`.
    pub healed: tokio::sync::watch::Receiver<Option<bool>>,
}

impl WorkloadContext {
    /// How many clients in all.
    pub fn clients(&self) -> usize {
        self.nodes * self.clients_per_node
    }

    /// How long a final read may keep retrying: long on a healed cluster, one attempt on
    /// a cluster the heal could not bring back.
    pub fn final_read_wait(&self, healthy: bool) -> Duration {
        if healthy {
            Duration::from_millis(FINAL_READ_WAIT_MS)
        } else {
            Duration::from_millis(OPERATION_DEADLINE_MS)
        }
    }

    /// Waits until the runner has healed the cluster; whether it is healthy.
    pub async fn wait_for_heal(&self) -> bool {
        let mut healed = self.healed.clone();
        match healed.wait_for(Option::is_some).await {
            Ok(state) => state.unwrap_or(false),
            Err(_) => false,
        }
    }
}

/// What a workload hands back besides the operations in the history.
#[derive(Debug, Default)]
pub struct WorkloadOutput {
    /// The watch workload's watcher logs.
    pub watchers: Vec<WatcherLog>,
    /// The watch workload's ground truth: every revision's events, read back from the store.
    pub revisions: Vec<RevisionRecord>,
    /// Remarks for the verdict file (a final read that never succeeded, for instance).
    pub notes: Vec<String>,
}

/// One client: a process id, a node, a channel bound to the client's own address, and
/// its own random source.
#[derive(Debug)]
pub struct Client {
    /// The client's number, 0-based.
    pub index: usize,
    /// The node slot it talks to.
    pub slot: usize,
    /// The node's name in the history (`n{slot}`).
    pub node: String,
    /// Its current process id.
    pub process: ClientProcess,
    /// Its random source, seeded from the run's seed and its number.
    pub rng: StdRng,
    /// Whether its last operation met an unavailable node or cluster: the next pause is
    /// longer, so a dead node is not hammered with thousands of refused requests.
    pub met_outage: bool,
    channel: Channel,
}

impl Client {
    /// Client `index` of `clients`, talking to `slot`.
    pub fn new(
        context: &WorkloadContext,
        index: usize,
        clients: usize,
        slot: usize,
    ) -> Result<Self, JepsenError> {
        let channel = etcd_rpc::channel(&client_url(slot), Some(IpAddr::V4(client_ip(index))))
            .map_err(|status| JepsenError::Environment {
                what: format!("cannot create client {index}"),
                detail: status.message().to_string(),
            })?;
        Ok(Self {
            index,
            slot,
            node: format!("n{slot}"),
            process: ClientProcess::new(index, clients),
            rng: StdRng::seed_from_u64(
                context
                    .seed
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .wrapping_add(index as u64),
            ),
            met_outage: false,
            channel,
        })
    }

    /// A KV client on this client's channel.
    pub fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel.clone()).max_decoding_message_size(RESPONSE_BYTES_MAX)
    }

    /// The channel, for other services.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Sleeps a few milliseconds between operations, so a two-core machine keeps up;
    /// longer after an outage.
    pub async fn think(&mut self, range_ms: (u64, u64)) {
        let range_ms = if self.met_outage {
            OUTAGE_PAUSE_MS
        } else {
            range_ms
        };
        let pause_ms = self.rng.random_range(range_ms.0..=range_ms.1);
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
}

/// How an operation ended, as the workload interprets the response.
#[derive(Debug)]
pub enum Completion {
    /// It took effect; the call carries the results.
    Ok {
        /// The invocation's call with its results filled in.
        call: Call,
        /// The response's header revision.
        revision: Option<i64>,
    },
    /// It certainly did not take effect.
    Fail(String),
    /// It may have taken effect.
    Info(String),
}

impl Completion {
    /// The completion of a request that would change the store and failed with `status`.
    pub fn from_write_error(status: &Status) -> Self {
        match etcd_rpc::classify_write_failure(status) {
            FailureKind::Certain => Completion::Fail(etcd_rpc::describe(status)),
            FailureKind::Unknown => Completion::Info(etcd_rpc::describe(status)),
        }
    }

    /// The completion of a read that failed: a read changes nothing, so it failed.
    pub fn from_read_error(status: &Status) -> Self {
        Completion::Fail(etcd_rpc::describe(status))
    }
}

/// Records `call` invoked by `client` on `key`, runs `request`, records its completion,
/// and retires the client's process id after an `info`. Returns the completion.
pub async fn perform(
    client: &mut Client,
    sink: &HistorySink,
    key: Option<&str>,
    call: Call,
    request: impl Future<Output = Completion>,
) -> RecordType {
    let process = client.process.id();
    sink.invoke(process, key, call.clone(), Some(&client.node));
    let completion = request.await;
    client.met_outage = match &completion {
        Completion::Ok { .. } => false,
        Completion::Fail(error) => etcd_rpc::describes_outage(error),
        Completion::Info(_) => true,
    };
    let node = Some(client.node.clone());
    match completion {
        Completion::Ok {
            call: result,
            revision,
        } => {
            sink.complete(
                process,
                RecordType::Ok,
                key,
                result,
                CompletionDetail {
                    node,
                    revision,
                    error: None,
                },
            );
            RecordType::Ok
        }
        Completion::Fail(error) => {
            sink.complete(
                process,
                RecordType::Fail,
                key,
                call,
                CompletionDetail {
                    node,
                    revision: None,
                    error: Some(error),
                },
            );
            RecordType::Fail
        }
        Completion::Info(error) => {
            sink.complete(
                process,
                RecordType::Info,
                key,
                call,
                CompletionDetail {
                    node,
                    revision: None,
                    error: Some(error),
                },
            );
            client.process.retire();
            RecordType::Info
        }
    }
}

/// The header revision of a response, if it has a header.
pub fn header_revision(header: Option<&vane_proto::etcdserverpb::ResponseHeader>) -> Option<i64> {
    header.map(|header| header.revision)
}

/// The smallest key greater than every key starting with `prefix` (etcd's prefix end).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Clients for every slot, `clients_per_node` each, numbered from `first_index`.
pub fn clients_for(
    context: &WorkloadContext,
    first_index: usize,
    count: usize,
    total: usize,
) -> Result<Vec<Client>, JepsenError> {
    (first_index..first_index + count)
        .map(|index| Client::new(context, index, total, index % context.nodes + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_etcds() {
        assert_eq!(prefix_end("set/"), b"set0".to_vec());
        assert_eq!(prefix_end("a"), b"b".to_vec());
    }
}
