//! The `vane-cluster` binary against real `vaned` processes: `up` founds a cluster that
//! serves etcd clients, `kill` of the leader leads to a new one in `status`, `restart`
//! brings the member back with its data, `down` leaves no process behind, and every
//! failure is one line on stderr with a non-zero exit.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{get, processes_mentioning, put, try_get, vaned, wait_for};
use vane_cluster::{MemberStatus, leader_of};

fn vane_cluster(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vane-cluster"))
        .args(args)
        .env_remove("VANE_CLUSTER_DIR")
        .output()
        .expect("run vane-cluster")
}

/// Runs a command that must succeed; returns its stdout.
fn succeed(args: &[&str]) -> String {
    let output = vane_cluster(args);
    assert!(
        output.status.success(),
        "vane-cluster {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command that must fail; returns its only stderr line.
fn fail(args: &[&str]) -> String {
    let output = vane_cluster(args);
    assert!(!output.status.success(), "vane-cluster {args:?} succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    stderr
}

fn status(dir: &str) -> Vec<MemberStatus> {
    serde_json::from_str(&succeed(&["status", "--dir", dir, "--json"])).expect("status JSON")
}

/// Ends the cluster whatever the test did, since the binary's members outlive it.
struct DownOnDrop(PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let _ = vane_cluster(&["down", "--dir", &self.0.display().to_string()]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_clients_survives_a_leader_kill_restarts_and_down_leaves_no_process() {
    let vaned = vaned();
    let temp = tempfile::tempdir().unwrap();
    let dir_path = temp.path().join("cluster");
    let dir = dir_path.to_str().unwrap();
    let _down = DownOnDrop(dir_path.clone());

    let printed = succeed(&[
        "up",
        "--nodes",
        "3",
        "--dir",
        dir,
        "--vaned",
        vaned.to_str().unwrap(),
        "--election-timeout",
        "1000",
    ]);
    // Printed as host:port, the form etcdctl wants; gRPC clients add the scheme.
    let first_line = printed.lines().next().expect("endpoints line").to_string();
    let endpoints: Vec<String> = first_line
        .split(',')
        .map(|e| format!("http://{e}"))
        .collect();
    assert_eq!(endpoints.len(), 3, "{printed}");
    for name in ["n1", "n2", "n3"] {
        assert!(
            printed.contains(name),
            "member table lacks {name}: {printed}"
        );
        assert!(Path::new(dir).join(name).is_dir(), "no data dir for {name}");
    }
    assert!(Path::new(dir).join("cluster.json").is_file());
    assert_eq!(succeed(&["endpoints", "--dir", dir]).trim(), first_line);

    // Written through one endpoint, read linearizably through all.
    put(&endpoints[0], "greeting", "hello").await;
    for url in &endpoints {
        assert_eq!(get(url, "greeting", false).await.as_deref(), Some("hello"));
    }

    let old_leader = leader_of(&status(dir)).expect("a leader after up");
    assert!(succeed(&["kill", &old_leader, "--dir", dir]).contains("killed"));
    let new_leader = wait_for(
        "a new leader after killing the old one",
        Duration::from_secs(30),
        || async { leader_of(&status(dir)).filter(|l| *l != old_leader) },
    )
    .await;
    let after_kill = status(dir);
    let killed = after_kill.iter().find(|s| s.name == old_leader).unwrap();
    assert!(!killed.alive && killed.raft.is_none(), "{killed:?}");
    assert!(succeed(&["status", "--dir", dir]).contains(&format!("leader: {new_leader}")));
    let url_of = |name: &str| endpoints[name[1..].parse::<usize>().unwrap() - 1].clone();
    put(&url_of(&new_leader), "after-kill", "yes").await;

    succeed(&["restart", &old_leader, "--dir", dir]);
    let restarted_url = url_of(&old_leader);
    wait_for(
        "the restarted member to catch up",
        Duration::from_secs(30),
        || async {
            try_get(&restarted_url, "after-kill", true)
                .await
                .ok()
                .flatten()
        },
    )
    .await;
    assert_eq!(
        get(&restarted_url, "greeting", true).await.as_deref(),
        Some("hello"),
        "the restarted member lost what it had on disk"
    );
    assert!(status(dir).iter().all(|s| s.alive && s.raft.is_some()));

    let down = succeed(&["down", "--dir", dir]);
    assert_eq!(down.lines().count(), 3, "{down}");
    assert!(
        processes_mentioning(&dir_path).is_empty(),
        "processes left after down: {:?}",
        processes_mentioning(&dir_path)
    );
    assert!(status(dir).iter().all(|s| !s.alive));
}

#[test]
fn every_failure_is_one_line_that_says_what_to_do() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_str().unwrap();

    let no_cluster = fail(&["status", "--dir", dir]);
    assert!(no_cluster.contains("vane-cluster up"), "{no_cluster}");

    let no_vaned = fail(&["up", "--dir", dir, "--vaned", "/nonexistent/vaned"]);
    assert!(
        no_vaned.contains("cargo build -p vane-node --bin vaned"),
        "{no_vaned}"
    );

    let too_fast = fail(&["up", "--dir", dir, "--election-timeout", "100"]);
    assert!(too_fast.contains("election timeout"), "{too_fast}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_members_and_a_second_up_are_refused_without_touching_the_cluster() {
    let vaned = vaned();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_str().unwrap();
    let _down = DownOnDrop(temp.path().to_path_buf());
    succeed(&[
        "up",
        "--nodes",
        "1",
        "--dir",
        dir,
        "--vaned",
        vaned.to_str().unwrap(),
    ]);

    let unknown = fail(&["kill", "n9", "--dir", dir]);
    assert!(unknown.contains("n1"), "should list the members: {unknown}");
    let again = fail(&["up", "--dir", dir, "--vaned", vaned.to_str().unwrap()]);
    assert!(again.contains("already holds a cluster"), "{again}");
    let last = fail(&["remove", "n1", "--dir", dir]);
    assert!(last.contains("vane-cluster down"), "{last}");

    assert_eq!(leader_of(&status(dir)).as_deref(), Some("n1"));
}
