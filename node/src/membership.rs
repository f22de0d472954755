//! Membership changes with etcd's rules: add (as a learner, or as a voter), promote a
//! learner once it has caught up, remove, update peer URLs. Only the leader changes the
//! membership; a follower forwards the change to it, and a change refused unproposed
//! (the receiver was not the leader) is retried until the request timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ChangeMembershipError, ClientWriteError, RaftError};
use tonic::Status;
use vane_proto::raft::membership_change::Change;
use vane_proto::raft::{MembershipChange, MembershipChangeReply, Node as MemberNode};
use vane_raft_store::raft::convert::membership_to_pb;

use crate::config::parse_url;
use crate::errors;
use crate::member::added_member_id;
use crate::node::Node;

/// A learner counts as caught up once it has this share of the leader's committed log
/// (etcd's rule for promotion).
const PROMOTE_READY_PERCENT: u64 = 90;

/// Another membership change is still being committed; this one is retried.
const CHANGE_IN_PROGRESS: &str = "vane: another membership change is in progress";

fn member_not_found() -> Status {
    Status::not_found("etcdserver: member not found")
}

fn raft_failure(
    e: RaftError<
        vane_raft_store::raft::types::TypeConfig,
        ClientWriteError<vane_raft_store::raft::types::TypeConfig>,
    >,
) -> Status {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => errors::not_leader(),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(e),
        )) => Status::unavailable(format!("{CHANGE_IN_PROGRESS}: {e}")),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            Status::failed_precondition(format!("vane: membership change refused: {e}"))
        }
        other => Status::unavailable(format!("vane: membership change failed: {other}")),
    }
}

impl Node {
    /// Makes `change`, on the leader (forwarding from a follower), and returns the result.
    pub async fn change_members(
        &self,
        change: MembershipChange,
    ) -> Result<MembershipChangeReply, Status> {
        let deadline = Instant::now() + Duration::from_millis(self.config.request_timeout_ms);
        loop {
            let attempt = match self.leader() {
                Some(leader) if leader == self.member_id => {
                    self.change_members_as_leader(change.clone()).await
                }
                Some(leader) => self.forward_membership_change(leader, change.clone()).await,
                None => Err(errors::not_leader()),
            };
            match attempt {
                Err(status)
                    if (errors::is_not_leader(&status)
                        || status.message().starts_with(CHANGE_IN_PROGRESS))
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) if errors::is_not_leader(&status) => {
                    return Err(errors::no_leader_or_timeout(self.leader().is_some()));
                }
                other => return other,
            }
        }
    }

    async fn forward_membership_change(
        &self,
        leader: u64,
        change: MembershipChange,
    ) -> Result<MembershipChangeReply, Status> {
        let node = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            m.membership_config.membership().get_node(&leader).cloned()
        };
        let node = node.ok_or_else(errors::not_leader)?;
        let mut client = self
            .channels
            .client(&node)
            .map_err(|e| Status::unavailable(format!("etcdserver: cannot reach leader: {e}")))?;
        Ok(client.change_members(change).await?.into_inner())
    }

    pub(crate) fn current_membership(&self) -> (BTreeMap<u64, MemberNode>, BTreeSet<u64>) {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let membership = m.membership_config.membership();
        (
            membership.nodes().map(|(id, n)| (*id, n.clone())).collect(),
            membership.voter_ids().collect(),
        )
    }

    fn membership_reply(&self, added_id: u64) -> MembershipChangeReply {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        MembershipChangeReply {
            added_id,
            membership: Some(membership_to_pb(m.membership_config.membership())),
        }
    }

    /// Makes `change` on this member, which must be the leader.
    pub async fn change_members_as_leader(
        &self,
        change: MembershipChange,
    ) -> Result<MembershipChangeReply, Status> {
        if self.leader() != Some(self.member_id) {
            return Err(errors::not_leader());
        }
        let (nodes, voters) = self.current_membership();
        match change.change {
            Some(Change::Add(add)) => {
                if add.peer_urls.is_empty() || add.peer_urls.iter().any(|u| parse_url(u).is_err()) {
                    return Err(Status::invalid_argument(
                        "etcdserver: given member URLs are invalid",
                    ));
                }
                if nodes
                    .values()
                    .any(|n| n.peer_urls.iter().any(|u| add.peer_urls.contains(u)))
                {
                    return Err(Status::failed_precondition(
                        "etcdserver: Peer URLs already exists",
                    ));
                }
                let now_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let id =
                    added_member_id(&self.config.initial_cluster_token, &add.peer_urls, now_ms);
                if nodes.contains_key(&id) {
                    return Err(Status::failed_precondition(
                        "etcdserver: member ID already exist",
                    ));
                }
                let node = MemberNode {
                    name: String::new(),
                    peer_urls: add.peer_urls.clone(),
                    client_urls: Vec::new(),
                };
                self.raft
                    .add_learner(id, node, false)
                    .await
                    .map_err(raft_failure)?;
                if !add.is_learner {
                    self.raft
                        .change_membership(
                            ChangeMembers::AddVoterIds([id].into_iter().collect()),
                            true,
                        )
                        .await
                        .map_err(raft_failure)?;
                }
                Ok(self.membership_reply(id))
            }
            Some(Change::Remove(id)) => {
                if !nodes.contains_key(&id) {
                    return Err(member_not_found());
                }
                let change = if voters.contains(&id) {
                    if voters.len() == 1 {
                        return Err(Status::failed_precondition(
                            "vane: cannot remove the last voting member; add another first",
                        ));
                    }
                    ChangeMembers::RemoveVoters([id].into_iter().collect())
                } else {
                    ChangeMembers::RemoveNodes([id].into_iter().collect())
                };
                self.raft
                    .change_membership(change, false)
                    .await
                    .map_err(raft_failure)?;
                Ok(self.membership_reply(0))
            }
            Some(Change::Promote(id)) => {
                if !nodes.contains_key(&id) {
                    return Err(member_not_found());
                }
                if voters.contains(&id) {
                    return Err(Status::failed_precondition(
                        "etcdserver: can only promote a learner member",
                    ));
                }
                if !self.learner_caught_up(id) {
                    return Err(Status::failed_precondition(
                        "etcdserver: can only promote a learner member which is in sync with leader",
                    ));
                }
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds([id].into_iter().collect()), true)
                    .await
                    .map_err(raft_failure)?;
                Ok(self.membership_reply(0))
            }
            Some(Change::Update(update)) => {
                let Some(existing) = nodes.get(&update.id) else {
                    return Err(member_not_found());
                };
                if update.peer_urls.is_empty()
                    || update.peer_urls.iter().any(|u| parse_url(u).is_err())
                {
                    return Err(Status::invalid_argument(
                        "etcdserver: given member URLs are invalid",
                    ));
                }
                if nodes.iter().any(|(id, n)| {
                    *id != update.id && n.peer_urls.iter().any(|u| update.peer_urls.contains(u))
                }) {
                    return Err(Status::failed_precondition(
                        "etcdserver: Peer URLs already exists",
                    ));
                }
                let node = MemberNode {
                    peer_urls: update.peer_urls.clone(),
                    ..existing.clone()
                };
                self.raft
                    .change_membership(
                        ChangeMembers::SetNodes([(update.id, node)].into_iter().collect()),
                        true,
                    )
                    .await
                    .map_err(raft_failure)?;
                Ok(self.membership_reply(0))
            }
            None => Err(Status::invalid_argument(
                "vane: membership change names no change",
            )),
        }
    }

    fn learner_caught_up(&self, id: u64) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let committed = m.cluster_committed.as_ref().map_or(0, |l| l.index);
        let matched = m
            .replication
            .as_ref()
            .and_then(|r| r.get(&id).cloned())
            .flatten()
            .map_or(0, |l| l.index);
        matched * 100 >= committed * PROMOTE_READY_PERCENT && matched > 0
    }
}
