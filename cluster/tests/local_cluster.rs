//! The library API as test suites use it, against real `vaned` processes: membership
//! changes through the etcd API (add a learner, catch up, promote; remove), graceful
//! stop of the leader, and a drop that leaves no process behind.

mod common;

use std::time::Duration;

use common::{get, processes_mentioning, put, try_get, vaned, wait_for};
use tonic::transport::Endpoint;
use vane_cluster::{ClusterSpec, LocalCluster, ProcessEnd};
use vane_proto::etcdserverpb::MemberListRequest;
use vane_proto::etcdserverpb::cluster_client::ClusterClient;

fn spec(nodes: usize, dir: &std::path::Path) -> ClusterSpec {
    ClusterSpec {
        vaned: Some(vaned()),
        ..ClusterSpec::new(nodes, dir)
    }
}

/// (name, is_learner) of every member, as the member at `url` lists them.
async fn member_list(url: &str) -> Vec<(String, bool)> {
    let channel = Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let members = ClusterClient::new(channel)
        .member_list(MemberListRequest { linearizable: true })
        .await
        .expect("MemberList")
        .into_inner()
        .members;
    members
        .into_iter()
        .map(|m| (m.name, m.is_learner))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_member_catches_up_and_votes_and_a_removed_member_is_gone_and_stopped() {
    let temp = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::start(spec(3, temp.path())).await.unwrap();
    let first = cluster.endpoints()[0].clone();
    for n in 0..20 {
        put(&first, &format!("before-add-{n}"), "v").await;
    }

    let added = cluster.add_member().await.unwrap();
    assert_eq!(added, "n4");
    assert_eq!(cluster.endpoints().len(), 4);
    let added_url = cluster.client_url(&added).unwrap();
    assert_eq!(
        get(&added_url, "before-add-19", true).await.as_deref(),
        Some("v"),
        "a promoted member has applied what the leader had"
    );
    let members = member_list(&first).await;
    assert_eq!(members.len(), 4, "{members:?}");
    assert!(members.iter().all(|(_, learner)| !learner), "{members:?}");
    put(&added_url, "through-n4", "yes").await;

    // Remove the leader itself: the hardest case, since it answers while stepping down.
    let leader = cluster.wait_for_leader().await.expect("a leader");
    cluster.remove_member(&leader).await.unwrap();
    assert!(!cluster.member_names().contains(&leader));
    let survivor = cluster.endpoints()[0].clone();
    let members = member_list(&survivor).await;
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(
        members.iter().all(|(name, _)| *name != leader),
        "{members:?}"
    );
    put(&survivor, "after-remove", "yes").await;
    assert_eq!(
        get(&added_url, "after-remove", false).await.as_deref(),
        Some("yes")
    );
    assert!(
        vane_cluster::ClusterRecord::load(temp.path())
            .unwrap()
            .member(&leader)
            .is_err(),
        "the removed member stays in cluster.json"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_leader_hands_over_and_a_restart_rejoins_with_its_data() {
    let temp = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::start(spec(3, temp.path())).await.unwrap();
    let leader = cluster.wait_for_leader().await.expect("a leader");
    let leader_url = cluster.client_url(&leader).unwrap();
    put(&leader_url, "k", "before-stop").await;

    assert_eq!(cluster.stop(&leader).await.unwrap(), ProcessEnd::Terminated);
    assert!(!cluster.is_running(&leader).unwrap());
    assert_eq!(cluster.stop(&leader).await.unwrap(), ProcessEnd::NotRunning);
    let successor = cluster.wait_for_leader().await.unwrap();
    assert_ne!(successor, leader);
    put(&cluster.client_url(&successor).unwrap(), "k", "after-stop").await;

    cluster.restart(&leader).await.unwrap();
    assert!(cluster.is_running(&leader).unwrap());
    let value = wait_for(
        "the restarted member to apply the write it missed",
        Duration::from_secs(30),
        || async {
            try_get(&leader_url, "k", true)
                .await
                .ok()
                .flatten()
                .filter(|v| v == "after-stop")
        },
    )
    .await;
    assert_eq!(value, "after-stop");

    assert_eq!(cluster.kill(&successor).await.unwrap(), ProcessEnd::Killed);
    assert_ne!(cluster.wait_for_leader().await.unwrap(), successor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_cluster_kills_every_member_it_started() {
    let temp = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(spec(3, temp.path())).await.unwrap();
    assert_eq!(processes_mentioning(temp.path()).len(), 3);
    drop(cluster);
    assert!(
        processes_mentioning(temp.path()).is_empty(),
        "left behind: {:?}",
        processes_mentioning(temp.path())
    );
}
