//! Who leads, asked the same way of etcd and of Vane: Maintenance.Status on every member.
//! The comparison orders endpoints leader first, so that a one-client row talks to the
//! leader on both systems instead of to whichever member happened to be listed first.

use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::Endpoint;
use vane_proto::etcdserverpb::StatusRequest;
use vane_proto::etcdserverpb::maintenance_client::MaintenanceClient;

/// How long one Status call may take, connecting included.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two rounds of Status calls while waiting for a leader.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// What one member says about itself and its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberView {
    /// The member's own id.
    pub member_id: u64,
    /// The leader it follows; 0 if it knows none.
    pub leader_id: u64,
    /// Its Raft term.
    pub raft_term: u64,
}

/// Maintenance.Status of the member at `url`; `None` if it does not answer in time.
pub async fn view_of(url: &str) -> Option<MemberView> {
    let ask = async {
        let channel = Endpoint::from_shared(url.to_owned())
            .ok()?
            .connect_timeout(STATUS_TIMEOUT)
            .connect()
            .await
            .ok()?;
        let status = MaintenanceClient::new(channel)
            .status(StatusRequest {})
            .await
            .ok()?
            .into_inner();
        Some(MemberView {
            member_id: status.header.map_or(0, |header| header.member_id),
            leader_id: status.leader,
            raft_term: status.raft_term,
        })
    };
    tokio::time::timeout(STATUS_TIMEOUT, ask).await.ok()?
}

/// The index of the leader among `views`: the member the highest-term view names,
/// provided that member answered and names itself (a deposed leader that has not heard of
/// the new term yet is ignored). `None` while there is no such member.
pub fn leader_among(views: &[Option<MemberView>]) -> Option<usize> {
    let (_, leader_id) = views
        .iter()
        .flatten()
        .filter(|view| view.leader_id != 0)
        .map(|view| (view.raft_term, view.leader_id))
        .max()?;
    views.iter().position(|view| {
        view.is_some_and(|view| view.member_id == leader_id && view.leader_id == leader_id)
    })
}

/// Waits until every member of `urls` answers and they agree on a leader; its index.
pub async fn wait_for_leader(urls: &[String], timeout: Duration) -> Option<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut views = Vec::with_capacity(urls.len());
        for url in urls {
            views.push(view_of(url).await);
        }
        let everyone_follows = |leader: usize| {
            views.iter().flatten().count() == urls.len()
                && views
                    .iter()
                    .flatten()
                    .all(|view| Some(view.leader_id) == views[leader].map(|l| l.member_id))
        };
        if let Some(leader) = leader_among(&views)
            && everyone_follows(leader)
        {
            return Some(leader);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// `urls` with the leader's first and the others in their order; as given if no leader
/// is agreed on within `timeout`.
pub async fn leader_first(urls: &[String], timeout: Duration) -> Vec<String> {
    let mut ordered = urls.to_vec();
    if let Some(leader) = wait_for_leader(urls, timeout).await {
        let leader_url = ordered.remove(leader);
        ordered.insert(0, leader_url);
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(member_id: u64, leader_id: u64, raft_term: u64) -> Option<MemberView> {
        Some(MemberView {
            member_id,
            leader_id,
            raft_term,
        })
    }

    #[test]
    fn the_leader_is_the_member_the_newest_term_names() {
        assert_eq!(
            leader_among(&[view(1, 2, 3), view(2, 2, 3), view(3, 2, 3)]),
            Some(1)
        );
        // Member 1 still thinks it leads term 2; the others moved on to member 3.
        assert_eq!(
            leader_among(&[view(1, 1, 2), view(2, 3, 3), view(3, 3, 3)]),
            Some(2)
        );
    }

    #[test]
    fn no_leader_while_the_named_one_is_silent_or_nobody_leads() {
        assert_eq!(leader_among(&[view(1, 3, 4), view(2, 3, 4), None]), None);
        assert_eq!(leader_among(&[view(1, 0, 1), view(2, 0, 1)]), None);
        assert_eq!(leader_among(&[]), None);
    }
}
