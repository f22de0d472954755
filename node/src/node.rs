//! One running member: its Raft handle, its state machine, its identity, and the two
//! things every client service needs from them — proposing a write (forwarded to the
//! leader from a follower) and waiting until a read is linearizable (a read index from
//! the leader, confirmed with a quorum, then the local apply catching up to it).

use futures::StreamExt;
use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::ReadPolicy;
use openraft::errors::{ClientWriteError, LinearizableReadError, RaftError};
use tonic::Status;
use vane_proto::etcdserverpb::alarm_request::AlarmAction;
use vane_proto::etcdserverpb::{AlarmRequest, AlarmType, ResponseHeader};
use vane_proto::raft::command::Op;
use vane_proto::raft::{Command, CommandResult, ReadIndexRequest};
use vane_raft_store::auth::Caller;
use vane_raft_store::raft::types::{Raft, TypeConfig};
use vane_raft_store::{DataDir, StateMachine};

use crate::config::Config;
use crate::errors;
use crate::metrics::Metrics;
use crate::raft::network::PeerChannels;
use crate::session::SessionTag;

/// Pause between attempts to publish this member's client URLs.
const PUBLISH_RETRY_MS: u64 = 100;
/// Longest one attempt to publish may take before it is retried.
const PUBLISH_ATTEMPT_TIMEOUT_MS: u64 = 2_000;
/// Pause between attempts while no leader is known.
const NO_LEADER_RETRY_MS: u64 = 50;

/// What a local proposal came to, when it did not fail outright.
enum LocalWrite {
    /// Applied, with its result.
    Applied(CommandResult),
    /// Not proposed: this member is not the leader (the leader, if known).
    NotLeader(Option<u64>),
}

/// Everything a service handler needs of this member. Shared behind an `Arc`; every field
/// is either immutable or internally synchronised.
pub struct Node {
    /// The Raft handle.
    pub raft: Raft,
    /// The applied state this member serves reads from.
    pub state_machine: Arc<StateMachine>,
    /// The Raft log openraft writes through; kept here to report its memory.
    pub log_store: vane_raft_store::raft::log_store::LogStore,
    /// The data directory (held for its lock and its snapshot folder).
    pub data_dir: Arc<DataDir>,
    /// This member's id (etcd's member id, Raft's node id).
    pub member_id: u64,
    /// The cluster's id.
    pub cluster_id: u64,
    /// The configuration the node started with.
    pub config: Arc<Config>,
    /// Channels to peers, shared with the Raft network.
    pub channels: PeerChannels,
    /// What this member reports on `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Lease deadlines, kept while this member is the leader.
    pub lease_deadlines: crate::lease::LeaseDeadlines,
    /// The live watchers of this member's watch streams, for impact previews.
    pub watchers: crate::watch::registry::WatcherRegistry,
    /// This member's writes on their way to the leader.
    pub forwarder: crate::forward::Forwarder,
    /// This member's linearizable reads, waiting for a shared read index.
    pub read_rounds: crate::read_index::ReadRounds,
}

/// What a write Raft refused comes to: `Ok` with the leader (if known) when it was refused
/// unproposed because this member is not the leader, else a final failure.
fn write_refused(error: ClientWriteError<TypeConfig>) -> Result<Option<u64>, Status> {
    match error {
        ClientWriteError::ForwardToLeader(forward) => Ok(forward.leader_id),
        // It may or may not have committed: never retry blindly.
        ClientWriteError::LogEntryDiscarded(_) => {
            Err(Status::unavailable("etcdserver: leader changed"))
        }
        e => Err(Status::failed_precondition(e.to_string())),
    }
}

/// Raft has stopped on this member: nothing more is proposed here.
fn raft_stopped(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("etcdserver: raft stopped: {e}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Node {
    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.config.request_timeout_ms)
    }

    /// The current Raft term.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow_watched().current_term
    }

    /// The current leader, if one is known.
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow_watched().current_leader
    }

    /// An etcd response header at `revision`.
    pub fn header(&self, revision: i64) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id,
            revision,
            raft_term: self.term(),
        })
    }

    fn leader_node(&self, leader: u64) -> Option<vane_proto::raft::Node> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .cloned()
    }

    /// Refuses a write that could grow the store while this member is over
    /// `--quota-backend-bytes`, raising the replicated NOSPACE alarm (etcd's quota
    /// check) so that every member refuses such writes until an operator disarms it.
    pub async fn check_quota(&self, op: &Op) -> Result<(), Status> {
        let grows = match op {
            Op::Put(_) | Op::LeaseGrant(_) => true,
            Op::Txn(t) => vane_raft_store::puts_anything(t),
            _ => false,
        };
        if !grows || self.state_machine.db_size_bytes() <= self.config.quota_backend_bytes {
            return Ok(());
        }
        let raised = self
            .state_machine
            .meta()
            .map(|m| {
                m.alarms
                    .iter()
                    .any(|a| a.member_id == self.member_id && a.alarm == AlarmType::Nospace as i32)
            })
            .unwrap_or(false);
        if !raised {
            tracing::warn!(
                quota_bytes = self.config.quota_backend_bytes,
                "store over quota; raising NOSPACE"
            );
            let alarm = AlarmRequest {
                action: AlarmAction::Activate as i32,
                member_id: self.member_id,
                alarm: AlarmType::Nospace as i32,
            };
            self.propose_as_member(Op::Alarm(alarm)).await?;
        }
        Err(Status::resource_exhausted(
            "etcdserver: mvcc: database space exceeded",
        ))
    }

    /// Proposes `op` for an anonymous client and returns its applied result. On a
    /// follower the command is forwarded to the leader. Retried only where it provably
    /// was not proposed (no leader yet, or the receiver was not the leader), until the
    /// request timeout.
    pub async fn propose(&self, op: Op) -> Result<CommandResult, Status> {
        self.propose_as(op, None, &Caller::anonymous()).await
    }

    /// [`Node::propose`] as request `session` of a client session: a retry whose first
    /// attempt committed is answered with the remembered result, not applied again.
    pub async fn propose_in(
        &self,
        op: Op,
        session: Option<SessionTag>,
    ) -> Result<CommandResult, Status> {
        self.propose_as(op, session, &Caller::anonymous()).await
    }

    /// Proposes `op` on this member's own behalf (a lease's expiry, a quota alarm): apply
    /// checks no permission, as etcd's internal requests run as root.
    pub async fn propose_as_member(&self, op: Op) -> Result<CommandResult, Status> {
        self.propose_as(op, None, &Caller::Member).await
    }

    /// [`Node::propose_in`] on behalf of `caller`, who travels in the command: apply
    /// checks `caller`'s permissions at the command's place in the log.
    pub async fn propose_as(
        &self,
        op: Op,
        session: Option<SessionTag>,
        caller: &Caller,
    ) -> Result<CommandResult, Status> {
        let result = self
            .propose_once(op, session.unwrap_or_default(), caller)
            .await;
        match &result {
            Ok(_) => self.metrics.proposals_committed.inc(),
            Err(_) => self.metrics.proposals_failed.inc(),
        }
        result
    }

    async fn propose_once(
        &self,
        op: Op,
        session: SessionTag,
        caller: &Caller,
    ) -> Result<CommandResult, Status> {
        let (principal, from_member) = match caller {
            Caller::Member => (String::new(), true),
            Caller::User(name) => (name.clone(), false),
        };
        let command = Command {
            session_id: session.session_id,
            sequence: session.sequence,
            acked_below: session.acked_below,
            proposed_at_ms: now_ms(),
            principal,
            from_member,
            op: Some(op),
        };
        let encoded_len = prost::Message::encoded_len(&command);
        if encoded_len > self.config.request_bytes_max {
            return Err(Status::invalid_argument("etcdserver: request is too large"));
        }
        let deadline = Instant::now() + self.request_timeout();
        loop {
            // A member that knows another leader forwards straight away: asking its own
            // Raft first would only cost a round trip through its core to learn the same.
            let leader = match self.leader() {
                Some(known) if known != self.member_id => Some(known),
                _ => match self.write_locally(command.clone()).await? {
                    LocalWrite::Applied(result) => return Ok(result),
                    LocalWrite::NotLeader(leader) => leader,
                },
            };
            if let Some(leader) = leader.filter(|l| *l != self.member_id) {
                match self.forward(leader, &command, deadline).await {
                    Ok(Some(result)) => return Ok(result),
                    Ok(None) => {}
                    Err(status) => return Err(status),
                }
            }
            if Instant::now() >= deadline {
                return Err(errors::no_leader_or_timeout(leader.is_some()));
            }
            tokio::time::sleep(Duration::from_millis(NO_LEADER_RETRY_MS)).await;
        }
    }

    /// Sends `command` to `leader`, batched with this member's other forwarded writes.
    /// `Ok(None)`: the receiver refused it unproposed (it is not the leader), so the
    /// caller may retry.
    async fn forward(
        &self,
        leader: u64,
        command: &Command,
        deadline: Instant,
    ) -> Result<Option<CommandResult>, Status> {
        let Some(node) = self.leader_node(leader) else {
            return Ok(None);
        };
        match self
            .forwarder
            .forward(node, command.clone(), deadline)
            .await
        {
            // Rare (a rolling upgrade): look the leader up again rather than copy it for
            // every write.
            Err(status) if crate::forward::is_batch_unsupported(&status) => {
                match self.leader_node(leader) {
                    Some(node) => self.forward_alone(&node, command, deadline).await,
                    None => Ok(None),
                }
            }
            forwarded => forwarded,
        }
    }

    /// Sends `command` to `leader` in an RPC of its own: for a leader that predates
    /// batched forwarding.
    async fn forward_alone(
        &self,
        leader: &vane_proto::raft::Node,
        command: &Command,
        deadline: Instant,
    ) -> Result<Option<CommandResult>, Status> {
        let mut client = self
            .channels
            .client(leader)
            .map_err(|e| Status::unavailable(format!("etcdserver: cannot reach leader: {e}")))?;
        let mut request = tonic::Request::new(command.clone());
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        match client.forward(request).await {
            Ok(reply) => Ok(Some(reply.into_inner())),
            Err(status) => crate::forward::failed(status),
        }
    }

    /// Proposes `op` only if this member is the leader, never forwarding it: for what the
    /// leader decides on its own clock (lease expiry). A deposed leader that has not
    /// noticed yet (resumed from a pause, or cut off) must not have a decision taken on
    /// its stale clock carried out by the new leader.
    pub async fn propose_as_leader(&self, op: Op) -> Result<CommandResult, Status> {
        self.propose_forwarded(Command {
            proposed_at_ms: now_ms(),
            from_member: true,
            op: Some(op),
            ..Default::default()
        })
        .await
    }

    /// Proposes a command forwarded by a follower; only the leader accepts it.
    pub async fn propose_forwarded(&self, command: Command) -> Result<CommandResult, Status> {
        match self.write_locally(command).await? {
            LocalWrite::Applied(result) => Ok(result),
            LocalWrite::NotLeader(_) => Err(errors::not_leader()),
        }
    }

    /// Proposes commands forwarded together by a follower, with one call into Raft; only
    /// the leader accepts them. One outcome per command, in order.
    pub async fn propose_forwarded_batch(
        &self,
        commands: Vec<Command>,
    ) -> Vec<Result<CommandResult, Status>> {
        let count = commands.len();
        let mut outcomes = Vec::with_capacity(count);
        match self.raft.client_write_many(commands).await {
            Ok(mut written) => {
                while let Some(next) = written.next().await {
                    match next {
                        Ok(Ok(response)) => outcomes.push(Ok(response.response)),
                        Ok(Err(error)) => outcomes
                            .push(write_refused(error).and_then(|_| Err(errors::not_leader()))),
                        Err(fatal) => {
                            outcomes.push(Err(raft_stopped(fatal)));
                            break;
                        }
                    }
                }
            }
            Err(fatal) => outcomes.push(Err(raft_stopped(fatal))),
        }
        // Raft stopped part way: the rest may or may not have committed.
        while outcomes.len() < count {
            outcomes.push(Err(Status::unavailable("etcdserver: raft stopped")));
        }
        outcomes
    }

    /// Proposes `command` through this member's Raft. Refused unproposed when this member
    /// is not the leader; any other failure is final, since the entry may have committed.
    async fn write_locally(&self, command: Command) -> Result<LocalWrite, Status> {
        match self.raft.client_write(command).await {
            Ok(response) => Ok(LocalWrite::Applied(response.data)),
            Err(RaftError::APIError(error)) => write_refused(error).map(LocalWrite::NotLeader),
            Err(RaftError::Fatal(e)) => Err(raft_stopped(e)),
        }
    }

    /// On the leader: confirms leadership with a quorum and returns the log index a
    /// linearizable read must wait for.
    pub async fn leader_read_index(&self) -> Result<u64, Status> {
        match self.raft.get_read_linearizer(ReadPolicy::ReadIndex).await {
            Ok(linearizer) => Ok(linearizer.read_log_id().index()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => {
                Err(errors::not_leader())
            }
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(e))) => Err(
                Status::unavailable(format!("etcdserver: leader lost its quorum: {e}")),
            ),
            Err(RaftError::Fatal(e)) => Err(Status::unavailable(format!(
                "etcdserver: raft stopped: {e}"
            ))),
        }
    }

    /// Waits until this member's state reflects every write acknowledged before the call:
    /// a read index from the leader (asked over the peer network on a follower), then the
    /// local apply reaching it.
    pub async fn linearizable_barrier(&self) -> Result<(), Status> {
        let deadline = Instant::now() + self.request_timeout();
        let index = loop {
            // Shared with the other reads waiting meanwhile (see `read_index`).
            match self
                .read_rounds
                .join(deadline, self.leader().is_some())
                .await
            {
                Ok(Some(index)) => break index,
                Ok(None) => {}
                Err(status) if errors::is_not_leader(&status) => {}
                Err(status) => return Err(status),
            }
            if Instant::now() >= deadline {
                return Err(errors::no_leader_or_timeout(self.leader().is_some()));
            }
            tokio::time::sleep(Duration::from_millis(NO_LEADER_RETRY_MS)).await;
        };
        self.wait_applied(index, deadline).await
    }

    /// One read index: from this member's Raft on the leader, over the peer network on a
    /// follower. `Ok(None)` when no leader is known or the one asked is no longer it.
    pub(crate) async fn read_index_once(&self) -> crate::read_index::Attempt {
        let deadline = Instant::now() + self.request_timeout();
        match self.leader() {
            Some(leader) if leader == self.member_id => self.leader_read_index().await.map(Some),
            Some(leader) => self.remote_read_index(leader, deadline).await,
            None => Ok(None),
        }
    }

    async fn remote_read_index(
        &self,
        leader: u64,
        deadline: Instant,
    ) -> Result<Option<u64>, Status> {
        let Some(node) = self.leader_node(leader) else {
            return Ok(None);
        };
        let mut client = self
            .channels
            .client(&node)
            .map_err(|e| Status::unavailable(format!("etcdserver: cannot reach leader: {e}")))?;
        let mut request = tonic::Request::new(ReadIndexRequest {});
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        match client.read_index(request).await {
            Ok(reply) => Ok(Some(reply.into_inner().index)),
            Err(status) if errors::is_not_leader(&status) => Ok(None),
            Err(status) if status.code() == tonic::Code::DeadlineExceeded => {
                Err(Status::unavailable("etcdserver: request timed out"))
            }
            Err(status) => Err(status),
        }
    }

    /// On the leader: records `node` (new client URLs of an existing member) in the
    /// membership. Only the node data changes, never who votes.
    pub async fn set_member_node(
        &self,
        member_id: u64,
        node: vane_proto::raft::Node,
    ) -> Result<(), Status> {
        let known = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            m.membership_config
                .membership()
                .get_node(&member_id)
                .cloned()
        };
        match known {
            None => {
                return Err(Status::not_found(format!(
                    "etcdserver: member {member_id:x} not found"
                )));
            }
            Some(existing) if existing.peer_urls != node.peer_urls => {
                return Err(Status::invalid_argument(
                    "vane: a member publishes its client URLs only; change peer URLs with MemberUpdate",
                ));
            }
            Some(existing) if existing == node => return Ok(()),
            Some(_) => {}
        }
        let change = openraft::ChangeMembers::SetNodes([(member_id, node)].into_iter().collect());
        match self.raft.change_membership(change, true).await {
            Ok(response) => {
                tracing::debug!(member = format!("{member_id:016x}"), log_id = %response.log_id, "member node data updated");
                Ok(())
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(errors::not_leader())
            }
            Err(e) => Err(Status::unavailable(format!(
                "vane: membership change failed: {e}"
            ))),
        }
    }

    /// Makes the membership carry this member's name and advertised client URLs (a
    /// member added with MemberAdd starts nameless, as in etcd), so MemberList
    /// and `endpoint status --cluster` find it; retried until done or stopped.
    ///
    /// Done only once a membership that carries them is applied here: the membership
    /// this member sees may be one not committed yet, which a new leader can replace.
    pub async fn publish_client_urls(&self) {
        loop {
            let (own, applied, leader) = {
                let metrics = self.raft.metrics();
                let m = metrics.borrow_watched();
                let membership_at = m.membership_config.log_id().as_ref().map(|l| l.index);
                let applied_to = m.last_applied.as_ref().map(|l| l.index);
                (
                    m.membership_config
                        .membership()
                        .get_node(&self.member_id)
                        .cloned(),
                    membership_at.is_some_and(|at| applied_to.is_some_and(|to| at <= to)),
                    m.current_leader,
                )
            };
            if let Some(own) = own {
                if own.client_urls == self.config.advertise_client_urls
                    && own.name == self.config.name
                {
                    if applied {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(PUBLISH_RETRY_MS)).await;
                    continue;
                }
                let wanted = vane_proto::raft::Node {
                    name: self.config.name.clone(),
                    client_urls: self.config.advertise_client_urls.clone(),
                    ..own
                };
                let attempt = async {
                    match leader {
                        Some(l) if l == self.member_id => {
                            self.set_member_node(self.member_id, wanted).await.is_ok()
                        }
                        Some(l) => match self.leader_node(l).map(|n| self.channels.client(&n)) {
                            Some(Ok(mut client)) => {
                                let published = client
                                    .publish_member(vane_proto::raft::PublishMemberRequest {
                                        member_id: self.member_id,
                                        node: Some(wanted),
                                    })
                                    .await;
                                if let Err(status) = &published {
                                    tracing::debug!(%status, "publishing client URLs failed; retrying");
                                }
                                published.is_ok()
                            }
                            _ => false,
                        },
                        None => false,
                    }
                };
                // An attempt caught in a leader change must not hold the loop forever.
                // The leader answers only once the change is committed (or its membership
                // already carries the URLs).
                let done = tokio::time::timeout(
                    Duration::from_millis(PUBLISH_ATTEMPT_TIMEOUT_MS),
                    attempt,
                )
                .await
                .unwrap_or(false);
                if done {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(PUBLISH_RETRY_MS)).await;
        }
    }

    /// Runs `local` when this member is the leader, else `remote` against the leader's
    /// peer client; a refusal because leadership moved, or a leader that cannot be
    /// reached (it may have died; another is being elected), is retried until the
    /// request timeout. Only for idempotent requests (keep-alives, reads of lease state).
    pub async fn on_leader<T, L, LF, R, RF>(&self, local: L, remote: R) -> Result<T, Status>
    where
        L: Fn() -> LF,
        LF: std::future::Future<Output = Result<T, Status>>,
        R: Fn(vane_proto::raft::raft_peer_client::RaftPeerClient<tonic::transport::Channel>) -> RF,
        RF: std::future::Future<Output = Result<T, Status>>,
    {
        let deadline = Instant::now() + self.request_timeout();
        loop {
            let attempt = match self.leader() {
                Some(leader) if leader == self.member_id => local().await,
                Some(leader) => match self.leader_node(leader).map(|n| self.channels.client(&n)) {
                    Some(Ok(client)) => match remote(client).await {
                        // A connection to a leader that died fails as Unavailable, or as
                        // Unknown "transport error" when it broke mid-request.
                        Err(status)
                            if matches!(
                                status.code(),
                                tonic::Code::Unavailable
                                    | tonic::Code::Unknown
                                    | tonic::Code::Cancelled
                            ) =>
                        {
                            Err(errors::not_leader())
                        }
                        other => other,
                    },
                    _ => Err(errors::not_leader()),
                },
                None => Err(errors::not_leader()),
            };
            match attempt {
                Err(status) if errors::is_not_leader(&status) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(NO_LEADER_RETRY_MS)).await;
                }
                Err(status) if errors::is_not_leader(&status) => {
                    return Err(errors::no_leader_or_timeout(self.leader().is_some()));
                }
                other => return other,
            }
        }
    }

    /// Waits until the local state machine has applied `index`.
    pub async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), Status> {
        let mut applied = self.state_machine.subscribe();
        let reached =
            tokio::time::timeout_at(deadline.into(), applied.wait_for(|a| a.log_index >= index))
                .await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Status::unavailable("etcdserver: server stopped")),
            Err(_) => Err(Status::unavailable("etcdserver: request timed out")),
        }
    }
}
