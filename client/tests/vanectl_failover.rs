//! Every verb keeps working while the cluster fails underneath it: three members, an
//! `--endpoints` list that starts with a dead address and the leader's, and the leader
//! killed (SIGKILL) just before all verbs start at once, so each of them meets the dead
//! endpoints and the election, and must still succeed within its `--command-timeout`.

mod vanectl_support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use vanectl_support::{Output, start_cluster, vanectl, vanectl_in};

/// The `--command-timeout` every verb gets: etcdctl's default.
const COMMAND_TIMEOUT: &str = "--command-timeout=5s";

fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("127.0.0.1:{port}")
}

fn ok(what: &str, output: &Output) -> String {
    assert_eq!(output.code, 0, "{what} failed: {output:?}");
    output.stdout.clone()
}

fn revision_of(put_json: &str) -> i64 {
    let at = put_json.find("\"revision\":").expect("a revision") + "\"revision\":".len();
    put_json[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse().ok())
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_survives_a_dead_endpoint_and_a_killed_leader() {
    let (dir, mut cluster) = start_cluster(3).await;
    let host_port = |url: String| url.trim_start_matches("http://").to_string();
    let all = cluster
        .endpoints()
        .into_iter()
        .map(host_port)
        .collect::<Vec<_>>();

    // What the verbs will read, delete, compare, watch and renew.
    let seed = all.join(",");
    ok("put pre", &vanectl(&seed, &["put", "pre", "x"], None));
    let put_a = ok(
        "put a",
        &vanectl(&seed, &["put", "a", "1", "-w", "json"], None),
    );
    let watch_from = revision_of(&put_a).to_string();
    ok("put b", &vanectl(&seed, &["put", "b", "2"], None));
    ok("put c", &vanectl(&seed, &["put", "c", "3"], None));
    let lease_of = |output: String| output.split_whitespace().nth(1).expect("id").to_string();
    let kept = lease_of(ok(
        "grant",
        &vanectl(&seed, &["lease", "grant", "60"], None),
    ));
    let doomed = lease_of(ok(
        "grant",
        &vanectl(&seed, &["lease", "grant", "60"], None),
    ));
    ok(
        "put with lease",
        &vanectl(&seed, &["put", "lk", "v", &format!("--lease={kept}")], None),
    );

    let leader = cluster.wait_for_leader().await.expect("a leader");
    let leader_endpoint = host_port(cluster.client_url(&leader).expect("leader url"));
    let survivors: Vec<String> = all
        .iter()
        .filter(|e| **e != leader_endpoint)
        .cloned()
        .collect();
    let dead = closed_port();
    // The dead ones first, so every verb has to fail over.
    let endpoints = [
        vec![dead.clone(), leader_endpoint.clone()],
        survivors.clone(),
    ]
    .concat()
    .join(",");

    cluster.kill(&leader).await.expect("kill the leader");

    let snapshot_dir = dir.path().to_path_buf();
    let verbs: Vec<(Vec<String>, Option<&'static str>)> = [
        (vec!["put", "k", "v"], None),
        (vec!["get", "a"], None),
        (vec!["del", "b"], None),
        (
            vec!["txn"],
            Some("value(\"c\") = \"3\"\n\nput c 4\n\nput c failed\n\n"),
        ),
        (
            vec!["watch", "a", "--rev", &watch_from, "--max-events=1"],
            None,
        ),
        (vec!["compaction", "2"], None),
        (vec!["lease", "grant", "30"], None),
        (vec!["lease", "timetolive", &kept, "--keys"], None),
        (vec!["lease", "list"], None),
        (vec!["lease", "keep-alive", "--once", &kept], None),
        (vec!["lease", "revoke", &doomed], None),
        (vec!["member", "list"], None),
        (vec!["endpoint", "status"], None),
        (vec!["endpoint", "health"], None),
        (vec!["snapshot", "save", "failover.db"], None),
        (vec!["version"], None),
    ]
    .into_iter()
    .map(|(args, stdin)| {
        let mut args: Vec<String> = args.into_iter().map(str::to_string).collect();
        args.push(COMMAND_TIMEOUT.to_string());
        (args, stdin)
    })
    .collect();

    let started = Instant::now();
    let runs = verbs.iter().map(|(args, stdin)| {
        let args = args.clone();
        let endpoints = endpoints.clone();
        let dir = snapshot_dir.clone();
        let stdin = *stdin;
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let began = Instant::now();
            let output = vanectl_in(Some(&dir), &endpoints, &refs, stdin);
            (args.join(" "), output, began.elapsed())
        })
    });
    let results: Vec<(String, Output, Duration)> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.expect("vanectl ran"))
        .collect();
    for (what, output, took) in &results {
        eprintln!("{what}: exit {} after {} ms", output.code, took.as_millis());
    }
    eprintln!(
        "all verbs done {} ms after the kill",
        started.elapsed().as_millis()
    );

    let by_verb = |prefix: &str| -> &Output {
        &results
            .iter()
            .find(|(what, _, _)| what.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} ran"))
            .1
    };
    // `endpoint status/health` report on each endpoint: the dead address and the killed
    // leader fail (exit 1, as etcdctl), the two survivors answer. Every other verb
    // succeeds.
    for (what, output, _) in &results {
        if what.starts_with("endpoint") {
            continue;
        }
        assert_eq!(output.code, 0, "{what}: {output:?}");
    }
    assert_eq!(by_verb("put k").stdout, "OK\n");
    assert_eq!(by_verb("get a").stdout, "a\n1\n");
    assert_eq!(by_verb("del b").stdout, "1\n");
    assert_eq!(by_verb("txn").stdout, "SUCCESS\n\nOK\n");
    assert_eq!(by_verb("watch").stdout, "PUT\na\n1\n");
    assert_eq!(by_verb("compaction").stdout, "compacted revision 2\n");
    assert!(
        by_verb("lease grant")
            .stdout
            .contains("granted with TTL(30s)")
    );
    assert!(
        by_verb("lease timetolive")
            .stdout
            .contains("attached keys([lk])"),
        "{:?}",
        by_verb("lease timetolive")
    );
    assert!(by_verb("lease list").stdout.contains(&kept));
    assert!(
        by_verb("lease keep-alive")
            .stdout
            .contains(&format!("lease {kept} keepalived"))
    );
    assert_eq!(
        by_verb("lease revoke").stdout,
        format!("lease {doomed} revoked\n")
    );
    assert_eq!(by_verb("member list").stdout.lines().count(), 3);
    assert_eq!(
        by_verb("snapshot").stdout,
        "Snapshot saved at failover.db\n"
    );
    assert!(snapshot_dir.join("failover.db").exists());
    assert!(by_verb("version").stdout.starts_with("vanectl version: "));

    let status = by_verb("endpoint status");
    assert_eq!(status.code, 1, "{status:?}");
    assert_eq!(status.stdout.lines().count(), 2, "{status:?}");
    for survivor in &survivors {
        assert!(status.stdout.contains(survivor.as_str()), "{status:?}");
    }
    for gone in [&dead, &leader_endpoint] {
        assert!(
            status
                .stderr
                .contains(&format!("Failed to get the status of endpoint {gone} (")),
            "{status:?}"
        );
    }
    let health = by_verb("endpoint health");
    assert_eq!(health.code, 1, "{health:?}");
    for survivor in &survivors {
        assert!(
            health.stderr.contains(&format!("{survivor} is healthy")),
            "{health:?}"
        );
    }
    for gone in [&dead, &leader_endpoint] {
        assert!(
            health.stderr.contains(&format!("{gone} is unhealthy")),
            "{health:?}"
        );
    }
    assert!(
        health.stderr.ends_with("Error: unhealthy cluster\n"),
        "{health:?}"
    );

    // Asked about the live members only, the endpoint verbs succeed.
    let live = survivors.join(",");
    let status = vanectl(&live, &["endpoint", "status", COMMAND_TIMEOUT], None);
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.stdout.lines().count(), 2, "{status:?}");
    let health = vanectl(&live, &["endpoint", "health", COMMAND_TIMEOUT], None);
    assert_eq!(health.code, 0, "{health:?}");
}
