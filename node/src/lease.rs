//! Lease deadlines and expiry, kept by the leader alone.
//!
//! Leases themselves are replicated state (granted and revoked through the log). Only the
//! leader keeps their deadlines, in memory: a grant or a keep-alive sets a lease's
//! deadline to now plus its TTL, and when a deadline passes the leader proposes the
//! revoke, which deletes the lease's keys at one revision on every member. Followers
//! never expire anything on their own clock. A new leader starts every lease's clock
//! afresh (the whole TTL), so a leader change extends leases rather than expiring them
//! early, as etcd does.
//!
//! Ownership: the deadline map sits behind a `std::sync::Mutex`, held only for map
//! operations, never across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::Status;
use vane_proto::etcdserverpb::LeaseRevokeRequest;
use vane_proto::raft::command::Op;
use vane_proto::raft::command_result::Result as Outcome;

use crate::node::Node;

/// How often the leader looks for expired leases.
const EXPIRY_CHECK_INTERVAL_MS: u64 = 100;

/// Deadlines of the leases this member, as leader, is timing.
#[derive(Default)]
pub struct LeaseDeadlines {
    deadlines: Mutex<HashMap<i64, Instant>>,
}

impl LeaseDeadlines {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Instant>> {
        self.deadlines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts or restarts `id`'s clock: it expires `ttl_seconds` from now.
    pub fn renew(&self, id: i64, ttl_seconds: i64) {
        let ttl = Duration::from_secs(ttl_seconds.max(0) as u64);
        self.map().insert(id, Instant::now() + ttl);
    }

    /// [`LeaseDeadlines::renew`], unless `id`'s deadline has already passed: then its
    /// revoke is due or on its way through the log, and a renewal now would promise a TTL
    /// that the revoke is about to cut short. Returns whether it renewed. As etcd's
    /// lessor does, an expired lease is not brought back by a late keep-alive.
    pub fn renew_unless_expired(&self, id: i64, ttl_seconds: i64) -> bool {
        let ttl = Duration::from_secs(ttl_seconds.max(0) as u64);
        let now = Instant::now();
        let mut deadlines = self.map();
        if deadlines.get(&id).is_some_and(|deadline| *deadline <= now) {
            return false;
        }
        deadlines.insert(id, now + ttl);
        true
    }

    /// Seconds `id` has left, if this member is timing it.
    pub fn remaining_seconds(&self, id: i64) -> Option<i64> {
        self.map().get(&id).map(|deadline| {
            let left = deadline.saturating_duration_since(Instant::now());
            // etcd rounds the remaining time up to whole seconds.
            left.as_millis().div_ceil(1000) as i64
        })
    }

    fn clear(&self) {
        self.map().clear();
    }
}

impl Node {
    /// On the leader: renews lease `id` and returns its TTL, or 0 when it does not exist
    /// (etcd's answer to a keep-alive of an unknown lease).
    ///
    /// Leadership is confirmed with a quorum first. A deposed leader that does not know
    /// it yet (partitioned, or paused and resumed) would otherwise acknowledge a renewal
    /// the real leader never sees, and the real leader could expire the lease before the
    /// acknowledged TTL ran out; after the confirmation any newer leader was elected after
    /// the renewal was asked for, and restarts the lease's clock from its election.
    pub async fn renew_lease_as_leader(&self, id: i64) -> Result<i64, Status> {
        if self.leader() != Some(self.member_id) {
            return Err(crate::errors::not_leader());
        }
        self.leader_read_index().await?;
        let stored = |node: &Node| {
            node.state_machine
                .lease(id)
                .map_err(crate::errors::from_store)
        };
        let Some(lease) = stored(self)? else {
            return Ok(0);
        };
        if !self
            .lease_deadlines
            .renew_unless_expired(id, lease.ttl_seconds)
        {
            return Ok(0);
        }
        // A revoke applied between the read above and the renewal (its deadline already
        // forgotten): the renewal came too late, and the lease is gone.
        if stored(self)?.is_none() {
            return Ok(0);
        }
        Ok(lease.ttl_seconds)
    }

    /// The smallest TTL a lease may have: one and a half election timeouts, in whole
    /// seconds, as etcd computes it, so a leader change cannot outlive a lease.
    pub fn lease_ttl_min_seconds(&self) -> i64 {
        ((self.config.election_timeout_ms * 3 / 2) as i64 + 999) / 1000
    }
}

/// Runs on every member; acts while this member is the leader: keeps a deadline for
/// every lease and proposes the revoke of those that expire.
pub async fn expire_leases(node: Arc<Node>) {
    let mut was_leader = false;
    let mut tick = tokio::time::interval(Duration::from_millis(EXPIRY_CHECK_INTERVAL_MS));
    loop {
        tick.tick().await;
        let is_leader = node.leader() == Some(node.member_id);
        if !is_leader {
            if was_leader {
                node.lease_deadlines.clear();
            }
            was_leader = false;
            continue;
        }
        let leases = match node.state_machine.leases() {
            Ok(leases) => leases,
            Err(e) => {
                tracing::error!(error = %e, "cannot list leases");
                continue;
            }
        };
        let expired: Vec<i64> = {
            let mut deadlines = node.lease_deadlines.map();
            if !was_leader {
                // Newly leader: every lease gets its whole TTL again.
                deadlines.clear();
            }
            let now = Instant::now();
            deadlines.retain(|id, _| leases.iter().any(|l| l.id == *id));
            for lease in &leases {
                deadlines
                    .entry(lease.id)
                    .or_insert_with(|| now + Duration::from_secs(lease.ttl_seconds.max(0) as u64));
            }
            deadlines
                .iter()
                .filter(|(_, deadline)| **deadline <= now)
                .map(|(id, _)| *id)
                .collect()
        };
        was_leader = true;
        for id in expired {
            match node
                .propose_as_leader(Op::LeaseRevoke(LeaseRevokeRequest { id }))
                .await
            {
                Ok(result) => {
                    if let Some(Outcome::Error(e)) = result.result {
                        tracing::debug!(lease = id, error = %e.message, "expired lease already gone");
                    }
                    // The passed deadline stays until the next look finds the lease gone
                    // from the state, so a keep-alive racing this revoke sees it expired.
                    node.metrics.leases_expired.inc();
                }
                Err(status) => {
                    tracing::warn!(lease = id, %status, "expiring a lease failed; retrying")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_lease_is_not_renewed_and_a_live_one_is() {
        let deadlines = LeaseDeadlines::default();
        assert!(
            deadlines.renew_unless_expired(1, 5),
            "a lease this member does not time yet gets its whole TTL"
        );
        assert_eq!(deadlines.remaining_seconds(1), Some(5));
        deadlines.renew(2, 0);
        assert!(
            !deadlines.renew_unless_expired(2, 5),
            "past its deadline, its revoke is due: no renewal"
        );
        assert_eq!(deadlines.remaining_seconds(2), Some(0));
        assert!(deadlines.renew_unless_expired(1, 7));
        assert_eq!(deadlines.remaining_seconds(1), Some(7));
    }
}
