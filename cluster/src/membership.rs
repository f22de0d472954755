//! Growing and shrinking a running cluster the way an operator does it with etcdctl:
//! MemberAdd a learner, start it with `--initial-cluster-state existing`, let it catch
//! up, MemberPromote it; or MemberRemove a member and stop its process. Nothing here
//! bypasses the etcd API, so these paths test the server's membership changes too.

use std::time::{Duration, Instant};

use crate::error::{ClusterError, Result};
use crate::local_cluster::{LocalCluster, poll_pause};
use crate::ports::choose_member_ports;
use crate::record::{InitialClusterState, MemberRecord, initial_cluster_of, loopback_url};
use crate::rpc::{self, Member, promote_may_succeed_later, to_cluster_error};
use crate::status::leader_of;

impl LocalCluster {
    /// Adds one member: MemberAdd as a learner through the leader, start it, wait until
    /// it has applied what the leader had applied, then MemberPromote (retried while the
    /// server says it is not ready). Returns the new member's name.
    ///
    /// If a step after MemberAdd fails, the member stays in the record (and running, if
    /// it started) so that it can be inspected and removed.
    pub async fn add_member(&mut self) -> Result<String> {
        let leader = self.wait_for_leader().await?;
        let leader_url = self.client_url(&leader)?;

        let (number, name) = self.next_member_name();
        let taken: Vec<u16> = self
            .record
            .members
            .iter()
            .flat_map(|m| [m.client_port, m.peer_port, m.metrics_port])
            .collect();
        let ports = choose_member_ports(self.record.base_port, number, &taken)?;
        let peer_url = loopback_url(ports.peer);

        let response =
            rpc::member_add_learner(&leader_url, &peer_url, self.timeouts.rpc_timeout_ms)
                .await
                .map_err(|s| to_cluster_error("MemberAdd", &leader_url, s))?;
        let Some(member_id) = response.member.as_ref().map(|m| m.id) else {
            return Err(ClusterError::Rpc {
                operation: "MemberAdd",
                url: leader_url,
                message: "the answer does not name the new member".to_string(),
            });
        };
        let initial_cluster =
            self.initial_cluster_with(&response.members, member_id, &name, &peer_url);

        self.record.names_issued = number;
        self.record.members.push(MemberRecord {
            data_dir: self.dir.join(&name),
            log: self.dir.join(format!("{name}.log")),
            name: name.clone(),
            client_port: ports.client,
            peer_port: ports.peer,
            metrics_port: ports.metrics,
            pid: None,
            member_id: Some(member_id),
            initial_cluster,
            initial_cluster_state: InitialClusterState::Existing,
        });
        self.save()?;
        self.spawn_member(&name)?;
        self.wait_for_member_ready(&name).await?;
        self.wait_for_catch_up(&name).await?;
        self.promote(&name, member_id).await?;
        Ok(name)
    }

    /// Removes the member `name`: MemberRemove through the leader, then stop its process
    /// (SIGTERM, SIGKILL if it lingers) and drop it from the record. Its data directory
    /// and log stay on disk. A member already gone from the membership is only stopped.
    pub async fn remove_member(&mut self, name: &str) -> Result<()> {
        let member = self.record.member(name)?.clone();
        if self.record.members.len() == 1 {
            return Err(ClusterError::LastMember {
                name: name.to_string(),
            });
        }
        let leader = self.wait_for_leader().await?;
        let leader_url = self.client_url(&leader)?;
        let rpc_timeout_ms = self.timeouts.rpc_timeout_ms;
        let members = rpc::member_list(&leader_url, rpc_timeout_ms)
            .await
            .map_err(|s| to_cluster_error("MemberList", &leader_url, s))?;
        let removal = match id_in_membership(&members, &member) {
            Some(id) => rpc::member_remove(&leader_url, id, rpc_timeout_ms).await,
            None => Ok(()),
        };
        if let Err(status) = removal {
            // A leader removing itself may stop before answering: when the outcome is
            // unknown, what counts is whether the others stop listing the member.
            let removed = outcome_unknown(&status) && self.wait_until_gone(&member).await;
            if !removed {
                return Err(to_cluster_error("MemberRemove", &leader_url, status));
            }
        }
        self.stop_or_kill(name).await?;
        self.record.members.retain(|m| m.name != name);
        self.save()
    }

    /// The next unused `nK`: names are never reused, and a leftover data directory of
    /// that name is skipped rather than joined.
    fn next_member_name(&self) -> (u32, String) {
        let mut number = self.record.names_issued.saturating_add(1);
        while self.dir.join(format!("n{number}")).exists() {
            number = number.saturating_add(1);
        }
        (number, format!("n{number}"))
    }

    /// `--initial-cluster` for a member that joins: every member of MemberAdd's answer
    /// (named by the answer, by our record, or as the new member), falling back to the
    /// record when the answer lists nobody.
    fn initial_cluster_with(
        &self,
        answered: &[Member],
        new_id: u64,
        new_name: &str,
        new_peer_url: &str,
    ) -> String {
        let mut entries: Vec<(String, String)> = Vec::new();
        for member in answered {
            let name = if member.id == new_id {
                Some(new_name.to_string())
            } else if !member.name.is_empty() {
                Some(member.name.clone())
            } else {
                self.record
                    .members
                    .iter()
                    .find(|m| member.peer_ur_ls.contains(&m.peer_url()))
                    .map(|m| m.name.clone())
            };
            // A member with no name yet is another learner that never started; it
            // cannot be named, and the new member learns it from the leader anyway.
            if let Some(name) = name {
                entries.extend(member.peer_ur_ls.iter().map(|u| (name.clone(), u.clone())));
            }
        }
        if answered.is_empty() {
            entries.extend(
                self.record
                    .members
                    .iter()
                    .map(|m| (m.name.clone(), m.peer_url())),
            );
        }
        if entries.iter().all(|(name, _)| name != new_name) {
            entries.push((new_name.to_string(), new_peer_url.to_string()));
        }
        initial_cluster_of(entries.iter().map(|(n, u)| (n.as_str(), u.as_str())))
    }

    /// Waits, up to `timeouts.catch_up_wait_ms`, until the learner `name` has applied
    /// what the leader had applied when the wait began: a fixed target, so that a busy
    /// cluster cannot keep it moving away. MemberPromote checks the rest.
    async fn wait_for_catch_up(&mut self, name: &str) -> Result<()> {
        let waited_ms = self.timeouts.catch_up_wait_ms;
        let deadline = Instant::now() + Duration::from_millis(waited_ms);
        let mut target = None;
        loop {
            let statuses = self.status().await;
            let applied_of = |member: &str| {
                statuses
                    .iter()
                    .find(|s| s.name == member)
                    .and_then(|s| s.raft.as_ref())
                    .map(|r| r.applied_index)
            };
            if target.is_none() {
                target = leader_of(&statuses).and_then(|leader| applied_of(&leader));
            }
            let applied = applied_of(name).unwrap_or(0);
            if let Some(target) = target
                && applied >= target
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::CatchUpTimedOut {
                    name: name.to_string(),
                    applied,
                    leader_applied: target.unwrap_or(0),
                    waited_ms,
                    log: self.record.member(name)?.log.clone(),
                });
            }
            poll_pause().await;
        }
    }

    /// MemberPromote of learner `id` through the current leader, retried up to
    /// `timeouts.promote_wait_ms` while the refusal means "not yet". A promotion whose
    /// answer was lost is recognised by the member no longer being a learner.
    async fn promote(&mut self, name: &str, id: u64) -> Result<()> {
        let waited_ms = self.timeouts.promote_wait_ms;
        let deadline = Instant::now() + Duration::from_millis(waited_ms);
        loop {
            let leader = self.wait_for_leader().await?;
            let url = self.client_url(&leader)?;
            let status = match rpc::member_promote(&url, id, self.timeouts.rpc_timeout_ms).await {
                Ok(()) => return Ok(()),
                Err(status) => status,
            };
            if !promote_may_succeed_later(&status) {
                return Err(to_cluster_error("MemberPromote", &url, status));
            }
            let promoted = self
                .any_member_list(name)
                .await
                .is_some_and(|list| list.iter().any(|m| m.id == id && !m.is_learner));
            if promoted {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::PromoteTimedOut {
                    name: name.to_string(),
                    waited_ms,
                    last_error: format!("{:?}: {}", status.code(), status.message()),
                });
            }
            poll_pause().await;
        }
    }

    /// Waits, up to `timeouts.leader_wait_ms`, until the other members' MemberList no
    /// longer holds `member`; whether that happened.
    async fn wait_until_gone(&self, member: &MemberRecord) -> bool {
        let deadline = Instant::now() + Duration::from_millis(self.timeouts.leader_wait_ms);
        loop {
            let listed = self.any_member_list(&member.name).await;
            if listed.is_some_and(|list| id_in_membership(&list, member).is_none()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            poll_pause().await;
        }
    }

    /// MemberList from the first running member other than `except` that answers.
    async fn any_member_list(&self, except: &str) -> Option<Vec<Member>> {
        for member in self.record.members.iter().filter(|m| m.name != except) {
            if let Ok(list) =
                rpc::member_list(&member.client_url(), self.timeouts.rpc_timeout_ms).await
            {
                return Some(list);
            }
        }
        None
    }
}

/// Whether a failed call may nevertheless have been applied: the member stopped or the
/// connection broke before the answer.
fn outcome_unknown(status: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Unknown
            | Code::Cancelled
    )
}

/// The Raft id of `member` in `members`: by its peer URL, or by the id we recorded.
fn id_in_membership(members: &[Member], member: &MemberRecord) -> Option<u64> {
    let peer_url = member.peer_url();
    members
        .iter()
        .find(|m| m.peer_ur_ls.contains(&peer_url))
        .or_else(|| {
            members
                .iter()
                .find(|m| member.member_id.is_some_and(|id| id == m.id))
        })
        .map(|m| m.id)
}
