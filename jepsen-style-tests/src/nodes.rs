//! The cluster under test: real `vaned` processes, one per loopback address.
//!
//! Node slot `i` (1-based) always lives on 127.0.0.(10+i) with the standard etcd ports,
//! whatever member currently occupies it: a member removed and added back by the
//! membership nemesis gets a new name and an empty data directory but the same address,
//! so firewall rules, clients and the timeline keep addressing the slot. Clients bind
//! 127.0.0.100 and up, the runner's own observers 127.0.0.99.
//!
//! The runner does not reuse `vane_cluster::LocalCluster`: its members share 127.0.0.1
//! and differ by port, which firewall rules cannot tell apart as links, and faults need
//! to wrap the command (`faketime`, `strace`). Everything here is still plain `vaned`
//! flags and the etcd API; `membership.rs` holds MemberRemove/MemberAdd.

mod membership;
mod process;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use tonic::transport::Channel;

use crate::error::JepsenError;
use crate::etcd_rpc;

use process::NodeProcess;
pub use process::{FAILING_FSYNC_FROM_CALL, Launch};

/// Port clients connect to on every node's address.
pub const CLIENT_PORT: u16 = 2379;
/// Port peers connect to on every node's address.
pub const PEER_PORT: u16 = 2380;
/// Port of the admin HTTP endpoint on every node's address.
pub const METRICS_PORT: u16 = 2381;
/// Heartbeat interval passed to every node, in milliseconds.
pub const HEARTBEAT_INTERVAL_MS: u64 = 100;
/// The server-side request timeout, in milliseconds: shorter than the clients' deadline,
/// so that a request stuck behind a fault usually gets the server's own answer.
pub const SERVER_REQUEST_TIMEOUT_MS: u64 = 4000;
/// How often a watcher that asked for progress notifications gets one, in milliseconds:
/// often enough that the watch checker sees bookmarks in a one-minute run.
pub const WATCH_PROGRESS_NOTIFY_INTERVAL_MS: u64 = 2000;
/// Deadline of the runner's own Status and membership calls, in milliseconds.
pub const ADMIN_DEADLINE_MS: u64 = 2000;
/// How long a freshly started node is watched for an immediate exit, in milliseconds.
const START_CHECK_MS: u64 = 300;
/// Pause between two looks while waiting for a node or the cluster, in milliseconds.
const POLL_PAUSE_MS: u64 = 200;

/// The address of node slot `slot` (1-based).
pub fn node_ip(slot: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        0,
        0,
        10u8.saturating_add(u8::try_from(slot).unwrap_or(u8::MAX)),
    )
}

/// The source address of client number `client` (0-based).
pub fn client_ip(client: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        0,
        0,
        100u8.saturating_add(u8::try_from(client % 150).unwrap_or(0)),
    )
}

/// The source address of the runner's own observers (leader monitor, nemesis, final
/// reads), never the target of a fault.
pub const OBSERVER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 99);

/// The client URL of node slot `slot`.
pub fn client_url(slot: usize) -> String {
    format!("http://{}:{CLIENT_PORT}", node_ip(slot))
}

/// The peer URL of node slot `slot`.
pub fn peer_url(slot: usize) -> String {
    format!("http://{}:{PEER_PORT}", node_ip(slot))
}

/// A channel from the observer address to node slot `slot`.
pub fn observer_channel(slot: usize) -> Result<Channel, JepsenError> {
    etcd_rpc::channel(&client_url(slot), Some(IpAddr::V4(OBSERVER_IP))).map_err(|status| {
        JepsenError::Environment {
            what: format!("cannot address node slot {slot}"),
            detail: status.message().to_string(),
        }
    })
}

/// How the nodes are started: the binary, its flags, where they keep their files.
#[derive(Debug, Clone)]
pub struct NodeSetSpec {
    /// The `vaned` (or `vaned-planted`) binary.
    pub vaned: PathBuf,
    /// `--planted-bug NAME` for `vaned-planted`.
    pub planted_bug: Option<String>,
    /// `--election-timeout`, in milliseconds.
    pub election_timeout_ms: u64,
    /// Where node data directories and logs go.
    pub dir: PathBuf,
    /// How many nodes.
    pub count: usize,
    /// `--initial-cluster-token`, unique per run.
    pub cluster_token: String,
}

/// One node slot and the member that occupies it.
#[derive(Debug)]
pub struct Node {
    /// The slot, 1-based; fixes the address.
    pub slot: usize,
    /// The current member's name: `n{slot}`, or `n{slot}-g{generation}` once re-added.
    pub name: String,
    /// How many times this slot's member was replaced by a new one.
    pub generation: u32,
    /// The current member's data directory.
    pub data_dir: PathBuf,
    /// The current member's log (stdout and stderr, appended across restarts).
    pub log: PathBuf,
    /// `--initial-cluster` for the current member.
    pub initial_cluster: String,
    /// Whether the current member joins an existing cluster (`--initial-cluster-state
    /// existing`) rather than founding one.
    pub join_existing: bool,
    /// How the process is started: plainly, with a skewed clock, with failing fsync.
    pub launch: Launch,
    /// Whether the process is stopped with SIGSTOP.
    pub paused: bool,
    /// The Raft member id, once learned from the node.
    pub member_id: Option<u64>,
    /// Whether the slot's member was removed from the membership and not yet replaced:
    /// its old data directory must not be started again.
    pub removed: bool,
    process: Option<NodeProcess>,
}

impl Node {
    /// Whether a process for this node was started and has not been seen to exit.
    pub fn is_running(&mut self) -> bool {
        match &mut self.process {
            Some(process) => process.exit_status().is_none(),
            None => false,
        }
    }
}

/// What one node answered to Status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// The node's slot.
    pub slot: usize,
    /// Its member id.
    pub member_id: u64,
    /// The leader it follows, 0 for none.
    pub leader_id: u64,
    /// Its term.
    pub raft_term: u64,
    /// Its last applied index.
    pub applied_index: u64,
    /// Whether it is a learner.
    pub is_learner: bool,
}

impl NodeStatus {
    /// Whether the node says it leads.
    pub fn is_leader(&self) -> bool {
        self.leader_id != 0 && self.leader_id == self.member_id
    }
}

/// Asks node slot `slot` for its Status from the observer address.
pub async fn probe(slot: usize) -> Result<NodeStatus, tonic::Status> {
    let channel = etcd_rpc::channel(&client_url(slot), Some(IpAddr::V4(OBSERVER_IP)))?;
    let response = etcd_rpc::status(channel, ADMIN_DEADLINE_MS).await?;
    Ok(NodeStatus {
        slot,
        member_id: response.header.map_or(0, |header| header.member_id),
        leader_id: response.leader,
        raft_term: response.raft_term,
        applied_index: response.raft_applied_index,
        is_learner: response.is_learner,
    })
}

/// The leader by the nodes' own reports: the one the highest-term report names,
/// provided that node itself answered and agrees.
pub fn leader_among(statuses: &[NodeStatus]) -> Option<NodeStatus> {
    let (_, leader_id) = statuses
        .iter()
        .filter(|status| status.leader_id != 0)
        .map(|status| (status.raft_term, status.leader_id))
        .max()?;
    statuses
        .iter()
        .find(|status| status.member_id == leader_id && status.is_leader())
        .copied()
}

/// The nodes of one run, and the one owner of their processes: dropping it kills them.
#[derive(Debug)]
pub struct NodeSet {
    spec: NodeSetSpec,
    nodes: Vec<Node>,
}

impl NodeSet {
    /// Prepares `spec.count` node slots founding one cluster; starts nothing yet.
    pub fn new(spec: NodeSetSpec) -> Result<Self, JepsenError> {
        std::fs::create_dir_all(&spec.dir).map_err(|source| JepsenError::Io {
            action: "create the nodes directory",
            path: spec.dir.clone(),
            source,
        })?;
        let initial_cluster = (1..=spec.count)
            .map(|slot| format!("n{slot}={}", peer_url(slot)))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = (1..=spec.count)
            .map(|slot| {
                let name = format!("n{slot}");
                Node {
                    slot,
                    data_dir: spec.dir.join(&name),
                    log: spec.dir.join(format!("{name}.log")),
                    name,
                    generation: 0,
                    initial_cluster: initial_cluster.clone(),
                    join_existing: false,
                    launch: Launch::Plain,
                    paused: false,
                    member_id: None,
                    removed: false,
                    process: None,
                }
            })
            .collect();
        Ok(Self { spec, nodes })
    }

    /// How many slots.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no slots (never, for a valid run).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every slot number, 1-based.
    pub fn slots(&self) -> Vec<usize> {
        (1..=self.nodes.len()).collect()
    }

    /// The node in `slot`.
    pub fn node(&self, slot: usize) -> Result<&Node, JepsenError> {
        self.nodes
            .get(slot.wrapping_sub(1))
            .ok_or_else(|| JepsenError::InvalidArguments(format!("no node slot {slot}")))
    }

    fn node_mut(&mut self, slot: usize) -> Result<&mut Node, JepsenError> {
        self.nodes
            .get_mut(slot.wrapping_sub(1))
            .ok_or_else(|| JepsenError::InvalidArguments(format!("no node slot {slot}")))
    }

    /// The name of the member in `slot`, for messages.
    pub fn name(&self, slot: usize) -> String {
        self.node(slot)
            .map_or_else(|_| format!("slot{slot}"), |node| node.name.clone())
    }

    /// Starts every node and waits until they agree on a leader.
    pub async fn start_all(&mut self, wait_ms: u64) -> Result<(), JepsenError> {
        for slot in self.slots() {
            self.start(slot)?;
        }
        self.wait_until_healthy(wait_ms).await
    }

    /// Starts the process of `slot` with its current launch mode, on its current data
    /// directory. Starting a running node is a no-op.
    pub fn start(&mut self, slot: usize) -> Result<(), JepsenError> {
        let spec = self.spec.clone();
        let node = self.node_mut(slot)?;
        if node.is_running() {
            return Ok(());
        }
        let arguments = vaned_arguments(&spec, node);
        let strace_log = spec.dir.join(format!("{}.strace.log", node.name));
        let process = NodeProcess::spawn(
            &spec.vaned,
            &arguments,
            &node.launch,
            &node.log,
            &strace_log,
        )
        .map_err(|detail| JepsenError::Node {
            node: node.name.clone(),
            detail,
            log: node.log.clone(),
        })?;
        node.process = Some(process);
        node.paused = false;
        Ok(())
    }

    /// Starts `slot` like [`NodeSet::start`], then watches it for a moment: a node that
    /// exits at once (a data directory still locked, a bad flag) is an error that names
    /// its last log line.
    pub async fn start_checked(&mut self, slot: usize) -> Result<(), JepsenError> {
        self.start(slot)?;
        tokio::time::sleep(Duration::from_millis(START_CHECK_MS)).await;
        if let Some(exit) = self.exit_of(slot) {
            let last_line = self.last_log_line(slot);
            let node = self.node(slot)?;
            return Err(JepsenError::Node {
                node: node.name.clone(),
                detail: format!("exited right after its start ({exit}): {last_line}"),
                log: node.log.clone(),
            });
        }
        Ok(())
    }

    /// The last line `slot`'s member logged: usually why it stopped.
    pub fn last_log_line(&self, slot: usize) -> String {
        self.node(slot)
            .ok()
            .and_then(|node| std::fs::read_to_string(&node.log).ok())
            .and_then(|log| {
                log.lines()
                    .rev()
                    .find(|line| !line.trim().is_empty())
                    .map(|line| line.chars().take(400).collect())
            })
            .unwrap_or_default()
    }

    /// `kill -9` of `slot`'s process (and its wrapper); waits until it is gone.
    pub async fn kill(&mut self, slot: usize) -> Result<(), JepsenError> {
        let node = self.node_mut(slot)?;
        if let Some(mut process) = node.process.take() {
            process.kill().await;
        }
        node.paused = false;
        Ok(())
    }

    /// SIGSTOP of `slot`'s `vaned`.
    pub fn pause(&mut self, slot: usize) -> Result<(), JepsenError> {
        let node = self.node_mut(slot)?;
        if let Some(process) = &node.process {
            process.signal(libc::SIGSTOP);
            node.paused = true;
        }
        Ok(())
    }

    /// SIGCONT of `slot`'s `vaned`.
    pub fn resume(&mut self, slot: usize) -> Result<(), JepsenError> {
        let node = self.node_mut(slot)?;
        if let Some(process) = &node.process {
            process.signal(libc::SIGCONT);
        }
        node.paused = false;
        Ok(())
    }

    /// Sets how `slot` is started from its next start on.
    pub fn set_launch(&mut self, slot: usize, launch: Launch) -> Result<(), JepsenError> {
        self.node_mut(slot)?.launch = launch;
        Ok(())
    }

    /// Whether `slot`'s process is running; `Some(description)` of how it exited when it
    /// was started and has since exited on its own.
    pub fn exit_of(&mut self, slot: usize) -> Option<String> {
        let node = self.node_mut(slot).ok()?;
        let status = node.process.as_mut()?.exit_status()?;
        Some(status.to_string())
    }

    /// Statuses of every node that answered, asked concurrently.
    pub async fn statuses(&self) -> Vec<NodeStatus> {
        let probes = self.slots().into_iter().map(probe);
        futures::future::join_all(probes)
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect()
    }

    /// The current leader's slot, waiting up to `wait_ms` for one.
    pub async fn wait_for_leader(&self, wait_ms: u64) -> Result<usize, JepsenError> {
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        loop {
            let statuses = self.statuses().await;
            if let Some(leader) = leader_among(&statuses) {
                return Ok(leader.slot);
            }
            if Instant::now() >= deadline {
                return Err(JepsenError::ClusterNotReady {
                    waited_ms: wait_ms,
                    detail: format!("no leader; {} node(s) answered Status", statuses.len()),
                });
            }
            tokio::time::sleep(Duration::from_millis(POLL_PAUSE_MS)).await;
        }
    }

    /// Waits until every node answers Status, no one is a learner and all follow the
    /// same leader; learns member ids on the way.
    pub async fn wait_until_healthy(&mut self, wait_ms: u64) -> Result<(), JepsenError> {
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        loop {
            let statuses = self.statuses().await;
            for status in &statuses {
                if let Ok(node) = self.node_mut(status.slot) {
                    node.member_id = Some(status.member_id);
                }
            }
            let leader = leader_among(&statuses);
            let healthy = statuses.len() == self.nodes.len()
                && leader.is_some_and(|leader| {
                    statuses
                        .iter()
                        .all(|status| status.leader_id == leader.member_id && !status.is_learner)
                });
            if healthy {
                return Ok(());
            }
            let mut exited = Vec::new();
            for slot in self.slots() {
                if self.node(slot).is_ok_and(|node| node.removed) {
                    continue;
                }
                if let Some(exit) = self.exit_of(slot) {
                    let last_line = self.last_log_line(slot);
                    exited.push(format!("{} exited ({exit}): {last_line}", self.name(slot)));
                }
            }
            if !exited.is_empty() {
                // A node that has exited will not become healthy by waiting.
                return Err(JepsenError::NodesExited {
                    detail: exited.join("; "),
                });
            }
            if Instant::now() >= deadline {
                return Err(JepsenError::ClusterNotReady {
                    waited_ms: wait_ms,
                    detail: format!(
                        "{} of {} node(s) answered Status, leader {:?}",
                        statuses.len(),
                        self.nodes.len(),
                        leader.map(|leader| self.name(leader.slot)),
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(POLL_PAUSE_MS)).await;
        }
    }

    /// Kills every process (SIGCONT first, so a paused one dies at once).
    pub async fn kill_all(&mut self) {
        for slot in self.slots() {
            let _ = self.resume(slot);
            let _ = self.kill(slot).await;
        }
    }

    /// Where the nodes keep their files.
    pub fn dir(&self) -> &Path {
        &self.spec.dir
    }
}

impl Drop for NodeSet {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(process) = &mut node.process {
                process.kill_now();
            }
        }
    }
}

/// vaned's command line for `node`.
fn vaned_arguments(spec: &NodeSetSpec, node: &Node) -> Vec<String> {
    let ip = node_ip(node.slot);
    let client = format!("http://{ip}:{CLIENT_PORT}");
    let peer = format!("http://{ip}:{PEER_PORT}");
    let mut arguments = Vec::new();
    if let Some(bug) = &spec.planted_bug {
        arguments.extend(["--planted-bug".to_string(), bug.clone()]);
    }
    arguments.extend([
        "--name".to_string(),
        node.name.clone(),
        "--data-dir".to_string(),
        node.data_dir.display().to_string(),
        "--listen-client-urls".to_string(),
        client.clone(),
        "--advertise-client-urls".to_string(),
        client,
        "--listen-peer-urls".to_string(),
        peer.clone(),
        "--initial-advertise-peer-urls".to_string(),
        peer,
        "--listen-metrics-urls".to_string(),
        format!("http://{ip}:{METRICS_PORT}"),
        "--initial-cluster".to_string(),
        node.initial_cluster.clone(),
        "--initial-cluster-state".to_string(),
        if node.join_existing {
            "existing"
        } else {
            "new"
        }
        .to_string(),
        "--initial-cluster-token".to_string(),
        spec.cluster_token.clone(),
        "--election-timeout".to_string(),
        spec.election_timeout_ms.to_string(),
        "--heartbeat-interval".to_string(),
        HEARTBEAT_INTERVAL_MS.to_string(),
        "--request-timeout".to_string(),
        SERVER_REQUEST_TIMEOUT_MS.to_string(),
        "--watch-progress-notify-interval".to_string(),
        WATCH_PROGRESS_NOTIFY_INTERVAL_MS.to_string(),
        "--log-level".to_string(),
        "info".to_string(),
    ]);
    arguments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(slot: usize, id: u64, leader: u64, term: u64) -> NodeStatus {
        NodeStatus {
            slot,
            member_id: id,
            leader_id: leader,
            raft_term: term,
            applied_index: 0,
            is_learner: false,
        }
    }

    #[test]
    fn addresses_follow_the_slot() {
        assert_eq!(node_ip(1).to_string(), "127.0.0.11");
        assert_eq!(node_ip(5).to_string(), "127.0.0.15");
        assert_eq!(client_ip(0).to_string(), "127.0.0.100");
        assert_eq!(client_url(2), "http://127.0.0.12:2379");
    }

    #[test]
    fn a_deposed_leader_that_has_not_heard_of_the_new_term_is_not_the_leader() {
        let statuses = [
            reported(1, 11, 11, 2),
            reported(2, 12, 13, 3),
            reported(3, 13, 13, 3),
        ];
        assert_eq!(leader_among(&statuses).map(|s| s.slot), Some(3));
        assert_eq!(leader_among(&[reported(1, 11, 12, 2)]), None);
    }

    #[test]
    fn a_joining_member_is_started_with_existing_state_and_the_planted_bug_first() {
        let spec = NodeSetSpec {
            vaned: PathBuf::from("/bin/vaned-planted"),
            planted_bug: Some("stale-reads".to_string()),
            election_timeout_ms: 1000,
            dir: PathBuf::from("/tmp/nodes"),
            count: 3,
            cluster_token: "t".to_string(),
        };
        let mut set = NodeSet::new(NodeSetSpec {
            dir: tempfile::tempdir().unwrap().keep(),
            ..spec.clone()
        })
        .unwrap();
        set.nodes[1].join_existing = true;
        let arguments = vaned_arguments(&spec, &set.nodes[1]);
        assert_eq!(arguments[..2], ["--planted-bug", "stale-reads"]);
        assert!(
            arguments
                .windows(2)
                .any(|w| w == ["--initial-cluster-state", "existing"])
        );
        assert!(
            arguments
                .windows(2)
                .any(|w| w == ["--listen-peer-urls", "http://127.0.0.12:2380"])
        );
    }
}
