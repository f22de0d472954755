//! The openraft wiring of a member: its Raft configuration, the peer network (client and
//! server) and the conversions of Raft's messages for the wire. Along with
//! `raft-store/src/raft`, the only place that names openraft's types.

pub mod messages;
pub mod network;
pub mod peer_service;

use std::sync::Arc;

use vane_raft_store::StateMachine;
use vane_raft_store::raft::log_store::LogStore;
use vane_raft_store::raft::state_machine::RaftStateMachineAdapter;
use vane_raft_store::raft::types::Raft;

use crate::config::Config;
use network::{PeerChannels, PeerNetwork};

/// Entries kept in the log behind a snapshot, so a briefly lagging follower catches up
/// from the log rather than with a whole snapshot.
const LOG_ENTRIES_KEPT_AFTER_SNAPSHOT: u64 = 5_000;

/// openraft's configuration from the node's.
pub fn raft_config(config: &Config) -> Result<openraft::Config, String> {
    openraft::Config {
        cluster_name: config.initial_cluster_token.clone(),
        heartbeat_interval: config.heartbeat_interval_ms,
        // `--election-timeout` is the longest a follower waits for a silent leader:
        // candidates start between three quarters of it and all of it. openraft grants a
        // fallen leader's followers a vote lease of `election_timeout_max`, so the first
        // campaign after a leader dies is refused until the lease runs out and the second
        // wins: failover takes about two timeouts' worth of this window.
        election_timeout_min: config.election_timeout_ms * 3 / 4,
        election_timeout_max: config.election_timeout_ms,
        install_snapshot_timeout: 30_000,
        max_payload_entries: 512,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_count),
        max_in_snapshot_log_to_keep: LOG_ENTRIES_KEPT_AFTER_SNAPSHOT.min(config.snapshot_count),
        enable_pre_vote: Some(true),
        ..Default::default()
    }
    .validate()
    .map_err(|e| format!("Raft settings are inconsistent: {e}"))
}

/// Starts this member's Raft.
pub async fn start(
    config: &Config,
    member_id: u64,
    log_store: LogStore,
    state_machine: Arc<StateMachine>,
    channels: PeerChannels,
    apply_observer: vane_raft_store::raft::state_machine::ApplyObserver,
) -> Result<Raft, String> {
    let raft_config = Arc::new(raft_config(config)?);
    Raft::new(
        member_id,
        raft_config,
        PeerNetwork::new(channels),
        log_store,
        RaftStateMachineAdapter::new(state_machine).with_observer(apply_observer),
    )
    .await
    .map_err(|e| format!("Raft did not start: {e}"))
}
