//! The openraft type configuration: what Vane's Raft replicates and how nodes are named.

use vane_proto::raft::{Command, CommandResult, Node};

openraft::declare_raft_types!(
    /// Vane's Raft types: commands in, command results out, `u64` node ids, and each
    /// node's etcd-style name and URLs as its node data.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = u64,
        Node = Node,
);

/// A Raft node id.
pub type NodeId = u64;
/// A log id as openraft sees it.
pub type RaftLogId = openraft::alias::LogIdOf<TypeConfig>;
/// A log entry as openraft sees it.
pub type RaftEntry = openraft::alias::EntryOf<TypeConfig>;
/// A vote as openraft sees it.
pub type RaftVote = openraft::alias::VoteOf<TypeConfig>;
/// A membership as openraft sees it.
pub type RaftMembership = openraft::Membership<NodeId, Node>;
/// A stored membership as openraft sees it.
pub type RaftStoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
/// The Raft handle.
pub type Raft = openraft::Raft<TypeConfig, super::state_machine::RaftStateMachineAdapter>;
