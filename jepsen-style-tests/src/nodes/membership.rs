//! The membership nemesis's two halves, done the way an operator does them with etcdctl:
//! MemberRemove a member through the leader and stop it; later MemberAdd a learner at the
//! same peer URL, start a new member there with an empty data directory and
//! `--initial-cluster-state existing`, let it catch up, MemberPromote it.

use std::time::{Duration, Instant};

use tonic::Code;
use vane_proto::etcdserverpb::Member;

use super::{ADMIN_DEADLINE_MS, NodeSet, POLL_PAUSE_MS, leader_among, observer_channel, peer_url};
use crate::error::JepsenError;
use crate::etcd_rpc;

/// How long a re-added member may take to catch up and be promoted, in milliseconds.
const JOIN_WAIT_MS: u64 = 40_000;

impl NodeSet {
    /// Whether `slot`'s peer URL is in the membership the leader reports; `None` when no
    /// leader answered.
    pub async fn is_member(&self, slot: usize) -> Option<bool> {
        let members = self.leader_member_list().await.ok()?;
        Some(member_at(&members, slot).is_some())
    }

    /// MemberRemove of `slot`'s member through the leader, then kills its process.
    /// Returns what happened, for the history.
    pub async fn remove_member(&mut self, slot: usize) -> Result<String, JepsenError> {
        let leader = self.wait_for_leader(ADMIN_DEADLINE_MS * 5).await?;
        let members = self.leader_member_list().await?;
        let Some(member) = member_at(&members, slot) else {
            self.kill(slot).await?;
            self.node_mut(slot)?.removed = true;
            return Ok(format!(
                "{} was not a member any more; stopped it",
                self.name(slot)
            ));
        };
        let removal =
            etcd_rpc::member_remove(observer_channel(leader)?, member.id, ADMIN_DEADLINE_MS * 3)
                .await;
        if let Err(status) = removal {
            // A leader removing itself may step down before answering: what counts is
            // whether the membership no longer lists it.
            let gone = self
                .wait_until_not_member(slot, ADMIN_DEADLINE_MS * 5)
                .await;
            if !gone {
                return Err(JepsenError::Node {
                    node: self.name(slot),
                    detail: format!("MemberRemove failed: {}", etcd_rpc::describe(&status)),
                    log: self.node(slot)?.log.clone(),
                });
            }
        }
        self.kill(slot).await?;
        self.node_mut(slot)?.removed = true;
        Ok(format!(
            "removed {} (id {:x}) through {}",
            self.name(slot),
            member.id,
            self.name(leader)
        ))
    }

    /// Adds a new member in `slot`: MemberAdd as a learner, start it on an empty data
    /// directory, wait until it has caught up, promote it. Returns what happened.
    pub async fn add_member(&mut self, slot: usize) -> Result<String, JepsenError> {
        let leader = self.wait_for_leader(ADMIN_DEADLINE_MS * 5).await?;
        let members = self.leader_member_list().await?;
        let added = match member_at(&members, slot) {
            // A retry after a MemberAdd whose answer was lost: the learner is there.
            Some(existing) => existing.clone(),
            None => {
                let response = etcd_rpc::member_add_learner(
                    observer_channel(leader)?,
                    &peer_url(slot),
                    ADMIN_DEADLINE_MS * 3,
                )
                .await
                .map_err(|status| JepsenError::Node {
                    node: self.name(slot),
                    detail: format!("MemberAdd failed: {}", etcd_rpc::describe(&status)),
                    log: self.node(slot).map(|n| n.log.clone()).unwrap_or_default(),
                })?;
                response.member.unwrap_or_default()
            }
        };

        let initial_cluster = self.initial_cluster_with(slot).await?;
        {
            let dir = self.dir().to_path_buf();
            let node = self.node_mut(slot)?;
            node.generation += 1;
            node.name = format!("n{slot}-g{}", node.generation);
            node.data_dir = dir.join(&node.name);
            node.log = dir.join(format!("{}.log", node.name));
            node.initial_cluster = initial_cluster;
            node.join_existing = true;
            node.member_id = Some(added.id);
            node.removed = false;
        }
        self.start_checked(slot).await?;
        self.wait_until_caught_up(slot).await?;
        self.promote(slot, added.id).await?;
        Ok(format!(
            "added {} (id {:x}) as a learner, caught up, promoted",
            self.name(slot),
            added.id
        ))
    }

    /// `--initial-cluster` for a member joining in `slot`: every member the leader lists,
    /// named as the runner knows the slot at its peer URL.
    async fn initial_cluster_with(&self, joining: usize) -> Result<String, JepsenError> {
        let members = self.leader_member_list().await?;
        let mut entries = Vec::new();
        for slot in self.slots() {
            let listed = member_at(&members, slot).is_some();
            if slot == joining {
                let node = self.node(slot)?;
                entries.push(format!(
                    "n{slot}-g{}={}",
                    node.generation + 1,
                    peer_url(slot)
                ));
            } else if listed {
                entries.push(format!("{}={}", self.name(slot), peer_url(slot)));
            }
        }
        Ok(entries.join(","))
    }

    async fn leader_member_list(&self) -> Result<Vec<Member>, JepsenError> {
        let leader = self.wait_for_leader(ADMIN_DEADLINE_MS * 5).await?;
        etcd_rpc::member_list(observer_channel(leader)?, ADMIN_DEADLINE_MS)
            .await
            .map_err(|status| JepsenError::ClusterNotReady {
                waited_ms: ADMIN_DEADLINE_MS,
                detail: format!("MemberList failed: {}", etcd_rpc::describe(&status)),
            })
    }

    async fn wait_until_not_member(&self, slot: usize, wait_ms: u64) -> bool {
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        loop {
            if self.is_member(slot).await == Some(false) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(POLL_PAUSE_MS)).await;
        }
    }

    /// Waits until the learner in `slot` has applied what the leader had applied when
    /// the wait began (a fixed target, so a busy cluster cannot keep it moving away).
    async fn wait_until_caught_up(&mut self, slot: usize) -> Result<(), JepsenError> {
        let deadline = Instant::now() + Duration::from_millis(JOIN_WAIT_MS);
        let mut target = None;
        loop {
            let statuses = self.statuses().await;
            if target.is_none() {
                target = leader_among(&statuses).map(|leader| leader.applied_index);
            }
            let applied = statuses
                .iter()
                .find(|status| status.slot == slot)
                .map(|status| status.applied_index);
            if let (Some(target), Some(applied)) = (target, applied)
                && applied >= target
            {
                return Ok(());
            }
            if let Some(exit) = self.exit_of(slot) {
                return Err(JepsenError::Node {
                    node: self.name(slot),
                    detail: format!("exited while joining ({exit})"),
                    log: self.node(slot)?.log.clone(),
                });
            }
            if Instant::now() >= deadline {
                return Err(JepsenError::Node {
                    node: self.name(slot),
                    detail: format!(
                        "did not catch up within {JOIN_WAIT_MS} ms (applied {applied:?}, leader {target:?})"
                    ),
                    log: self.node(slot)?.log.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(POLL_PAUSE_MS)).await;
        }
    }

    /// MemberPromote through the leader, retried while the refusal means "not yet"; a
    /// promotion whose answer was lost is recognised by the member no longer being a
    /// learner.
    async fn promote(&self, slot: usize, id: u64) -> Result<(), JepsenError> {
        let deadline = Instant::now() + Duration::from_millis(JOIN_WAIT_MS);
        loop {
            let leader = self.wait_for_leader(ADMIN_DEADLINE_MS * 5).await?;
            let status = match etcd_rpc::member_promote(
                observer_channel(leader)?,
                id,
                ADMIN_DEADLINE_MS * 3,
            )
            .await
            {
                Ok(()) => return Ok(()),
                Err(status) => status,
            };
            let promoted = self.leader_member_list().await.is_ok_and(|members| {
                members
                    .iter()
                    .any(|member| member.id == id && !member.is_learner)
            });
            if promoted {
                return Ok(());
            }
            let may_succeed_later = matches!(
                status.code(),
                Code::FailedPrecondition
                    | Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Aborted
            );
            if !may_succeed_later || Instant::now() >= deadline {
                return Err(JepsenError::Node {
                    node: self.name(slot),
                    detail: format!("MemberPromote failed: {}", etcd_rpc::describe(&status)),
                    log: self.node(slot)?.log.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(POLL_PAUSE_MS)).await;
        }
    }
}

/// The member whose peer URLs include `slot`'s.
fn member_at(members: &[Member], slot: usize) -> Option<&Member> {
    let url = peer_url(slot);
    members
        .iter()
        .find(|member| member.peer_ur_ls.contains(&url))
}
