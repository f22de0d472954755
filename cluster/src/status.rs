//! What each member says about itself through Maintenance.Status, joined with whether
//! its process is alive, and who the leader is according to the members themselves.

use serde::{Deserialize, Serialize};

use crate::record::MemberRecord;
use crate::rpc;

/// One member's process and Raft state, as `vane-cluster status` shows it and
/// `status --json` prints it (which is why it also deserialises: scripts and tests read it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// The member's name.
    pub name: String,
    /// Its recorded process id, if the launcher believes it started one.
    pub pid: Option<u32>,
    /// Whether that process is running.
    pub alive: bool,
    /// Its client URL.
    pub client_url: String,
    /// What Status reported; `None` when the member is down or did not answer.
    pub raft: Option<RaftStatus>,
    /// Why `raft` is missing, when the process is alive but did not answer.
    pub error: Option<String>,
}

/// The Raft part of Maintenance.Status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStatus {
    /// The member's own id (`header.member_id`).
    pub member_id: u64,
    /// The leader it follows, 0 when it knows none.
    pub leader_id: u64,
    /// Its current term.
    pub raft_term: u64,
    /// Its last log index.
    pub raft_index: u64,
    /// Its last applied index.
    pub applied_index: u64,
    /// Whether it is a non-voting learner.
    pub is_learner: bool,
}

impl MemberStatus {
    /// Whether this member reports itself as the leader.
    pub fn is_leader(&self) -> bool {
        self.raft
            .as_ref()
            .is_some_and(|r| r.leader_id != 0 && r.leader_id == r.member_id)
    }

    /// `leader`, `follower`, `learner`, `no-leader`, `unreachable` (alive, no answer) or
    /// `down`, for tables.
    pub fn role(&self) -> &'static str {
        match &self.raft {
            None if self.alive => "unreachable",
            None => "down",
            Some(_) if self.is_leader() => "leader",
            Some(r) if r.is_learner => "learner",
            Some(r) if r.leader_id == 0 => "no-leader",
            Some(_) => "follower",
        }
    }
}

/// Asks a live member for its Status; a dead one is not asked.
pub async fn probe_member(member: &MemberRecord, alive: bool, rpc_timeout_ms: u64) -> MemberStatus {
    let mut status = MemberStatus {
        name: member.name.clone(),
        pid: member.pid,
        alive,
        client_url: member.client_url(),
        raft: None,
        error: None,
    };
    if !alive {
        return status;
    }
    match rpc::status(&member.client_url(), rpc_timeout_ms).await {
        Ok(response) => {
            status.raft = Some(RaftStatus {
                member_id: response.header.as_ref().map_or(0, |h| h.member_id),
                leader_id: response.leader,
                raft_term: response.raft_term,
                raft_index: response.raft_index,
                applied_index: response.raft_applied_index,
                is_learner: response.is_learner,
            });
        }
        Err(e) => status.error = Some(e.message().to_string()),
    }
    status
}

/// The leader's name by the members' own reports: the one the highest-term report
/// names, provided that member itself answered and agrees (a deposed leader that has
/// not heard of the new term yet is ignored).
pub fn leader_of(statuses: &[MemberStatus]) -> Option<String> {
    let (_, leader_id) = statuses
        .iter()
        .filter_map(|s| s.raft.as_ref())
        .filter(|r| r.leader_id != 0)
        .map(|r| (r.raft_term, r.leader_id))
        .max()?;
    statuses
        .iter()
        .find(|s| {
            s.raft
                .as_ref()
                .is_some_and(|r| r.member_id == leader_id && r.leader_id == leader_id)
        })
        .map(|s| s.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(name: &str, id: u64, leader: u64, term: u64) -> MemberStatus {
        MemberStatus {
            name: name.to_string(),
            pid: Some(1),
            alive: true,
            client_url: String::new(),
            raft: Some(RaftStatus {
                member_id: id,
                leader_id: leader,
                raft_term: term,
                raft_index: 0,
                applied_index: 0,
                is_learner: false,
            }),
            error: None,
        }
    }

    #[test]
    fn the_highest_term_decides_and_a_deposed_leader_is_ignored() {
        let statuses = [
            reported("n1", 1, 1, 2), // deposed, still believes in itself
            reported("n2", 2, 3, 3),
            reported("n3", 3, 3, 3),
        ];
        assert_eq!(leader_of(&statuses).as_deref(), Some("n3"));
        assert_eq!(statuses[0].role(), "leader");
        assert_eq!(statuses[1].role(), "follower");
    }

    #[test]
    fn no_leader_when_nobody_knows_one_or_the_leader_did_not_answer() {
        assert_eq!(leader_of(&[reported("n1", 1, 0, 1)]), None);
        assert_eq!(leader_of(&[reported("n1", 1, 2, 1)]), None);
    }
}
