//! Conversions between openraft's types and their protobuf form in `vane_proto::raft`,
//! which is how entries, votes and memberships are stored and sent between peers.

use std::collections::{BTreeMap, BTreeSet};

use openraft::EntryPayload;
use openraft::entry::RaftEntry as _;
use vane_proto::raft as pb;

use super::types::{
    RaftEntry, RaftLogId, RaftMembership, RaftStoredMembership, RaftVote, TypeConfig,
};
use crate::error::{Result, StoreError};

type LeaderId = openraft::alias::LeaderIdOf<TypeConfig>;

/// openraft log id to protobuf.
pub fn log_id_to_pb(log_id: &RaftLogId) -> pb::LogId {
    pb::LogId {
        term: log_id.leader_id.term,
        node_id: log_id.leader_id.node_id,
        index: log_id.index,
    }
}

/// Protobuf log id to openraft.
pub fn log_id_from_pb(log_id: &pb::LogId) -> RaftLogId {
    openraft::LogId::new(
        LeaderId {
            term: log_id.term,
            node_id: log_id.node_id,
        },
        log_id.index,
    )
}

/// openraft vote to protobuf.
pub fn vote_to_pb(vote: &RaftVote) -> pb::Vote {
    pb::Vote {
        term: vote.leader_id.term,
        node_id: vote.leader_id.node_id,
        committed: vote.committed,
    }
}

/// Protobuf vote to openraft.
pub fn vote_from_pb(vote: &pb::Vote) -> RaftVote {
    if vote.committed {
        openraft::Vote::new_committed(vote.term, vote.node_id)
    } else {
        openraft::Vote::new(vote.term, vote.node_id)
    }
}

/// openraft membership to protobuf.
pub fn membership_to_pb(membership: &RaftMembership) -> pb::Membership {
    pb::Membership {
        configs: membership
            .get_joint_config()
            .iter()
            .map(|set| pb::NodeIdSet {
                ids: set.iter().copied().collect(),
            })
            .collect(),
        nodes: membership
            .nodes()
            .map(|(id, node)| (*id, node.clone()))
            .collect(),
    }
}

/// Protobuf membership to openraft; fails on a membership openraft would not accept.
pub fn membership_from_pb(membership: &pb::Membership) -> Result<RaftMembership> {
    let configs: Vec<BTreeSet<u64>> = membership
        .configs
        .iter()
        .map(|set| set.ids.iter().copied().collect())
        .collect();
    let nodes: BTreeMap<u64, pb::Node> = membership
        .nodes
        .iter()
        .map(|(id, node)| (*id, node.clone()))
        .collect();
    openraft::Membership::new(configs, nodes)
        .map_err(|e| StoreError::Corrupt(format!("stored membership is invalid: {e}")))
}

/// Stored membership (log id and membership) to protobuf.
pub fn stored_membership_to_pb(stored: &RaftStoredMembership) -> pb::StoredMembership {
    pb::StoredMembership {
        log_id: stored.log_id().as_ref().map(log_id_to_pb),
        membership: Some(membership_to_pb(stored.membership())),
    }
}

/// Protobuf stored membership to openraft; an absent one is the empty membership.
pub fn stored_membership_from_pb(
    stored: Option<&pb::StoredMembership>,
) -> Result<RaftStoredMembership> {
    let Some(stored) = stored else {
        return Ok(RaftStoredMembership::default());
    };
    let membership = match &stored.membership {
        Some(m) => membership_from_pb(m)?,
        None => RaftMembership::default(),
    };
    Ok(openraft::StoredMembership::new(
        stored.log_id.as_ref().map(log_id_from_pb),
        membership,
    ))
}

/// openraft entry to protobuf.
pub fn entry_to_pb(entry: &RaftEntry) -> pb::Entry {
    let payload = match &entry.payload {
        EntryPayload::Blank => pb::entry::Payload::Blank(pb::Blank {}),
        EntryPayload::Normal(command) => pb::entry::Payload::Command(command.clone()),
        EntryPayload::Membership(membership) => {
            pb::entry::Payload::Membership(membership_to_pb(membership))
        }
    };
    pb::Entry {
        log_id: Some(log_id_to_pb(&entry.log_id())),
        payload: Some(payload),
    }
}

/// Protobuf entry to openraft.
pub fn entry_from_pb(entry: pb::Entry) -> Result<RaftEntry> {
    let log_id = entry
        .log_id
        .as_ref()
        .map(log_id_from_pb)
        .ok_or_else(|| StoreError::Corrupt("log entry without a log id".into()))?;
    let payload = match entry.payload {
        None | Some(pb::entry::Payload::Blank(_)) => EntryPayload::Blank,
        Some(pb::entry::Payload::Command(command)) => EntryPayload::Normal(command),
        Some(pb::entry::Payload::Membership(m)) => {
            EntryPayload::Membership(membership_from_pb(&m)?)
        }
    };
    Ok(openraft::Entry { log_id, payload })
}
