//! The real `etcdctl` 3.4 against a real etcd 3.4 and against a three-node Vane: the same
//! sequence of commands must print the same thing (revisions included: both start at 1)
//! and exit the same way. Cluster ids, member ids and terms are masked.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, start_etcd};

/// Runs etcdctl and returns (exit code, stdout, the `Error:` line of stderr if any).
fn etcdctl(endpoints: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg("--command-timeout=10s")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl 3.4 is installed by `make setup` (Debian package etcd-client)");
    if let Some(input) = stdin {
        child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("etcdctl output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr
        .lines()
        .filter(|l| l.starts_with("Error:"))
        .collect::<Vec<_>>()
        .join("\n");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        error,
    )
}

/// Masks what legitimately differs between two clusters: ids and terms.
fn mask(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(pos) = ["\"cluster_id\":", "\"member_id\":", "\"raft_term\":"]
        .iter()
        .filter_map(|k| rest.find(k).map(|p| (p, k.len())))
        .min()
    {
        let (at, len) = pos;
        out.push_str(&rest[..at + len]);
        rest = &rest[at + len..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        out.push('N');
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

const TXN: &str = "value(\"foo\") = \"baz\"\n\nput foo qux\nget foo\n\nput foo nope\n\n";

fn script() -> Vec<(Vec<&'static str>, Option<&'static str>)> {
    let c = |args: &[&'static str]| (args.to_vec(), None);
    vec![
        c(&["put", "foo", "bar"]),
        c(&["put", "foo", "baz", "--prev-kv"]),
        c(&["get", "foo"]),
        c(&["get", "foo", "-w", "json"]),
        c(&["put", "foo2", "x"]),
        c(&["put", "fop", "y"]),
        c(&["put", "zeta", "z"]),
        c(&["get", "fo", "--prefix"]),
        c(&["get", "foo", "--rev=2"]),
        c(&["get", "fo", "--prefix", "--limit=1", "-w", "json"]),
        c(&[
            "get",
            "fo",
            "--prefix",
            "--sort-by=MODIFY",
            "--order=DESCEND",
        ]),
        c(&["get", "fo", "--prefix", "--keys-only"]),
        c(&["get", "fo", "--prefix", "--count-only", "-w", "json"]),
        c(&["get", "foo", "--from-key"]),
        c(&["get", "a", "z"]),
        (vec!["txn"], Some(TXN)),
        (vec!["txn", "-w", "json"], Some(TXN)),
        c(&["del", "foo2"]),
        c(&["del", "fo", "--prefix", "--prev-kv"]),
        c(&["del", "nothing"]),
        c(&["get", "", "--prefix", "-w", "json"]),
        c(&["compaction", "4"]),
        c(&["get", "foo", "--rev=3"]),
        c(&["get", "zeta", "--rev=99"]),
        c(&["compaction", "2"]),
        c(&["put", "", "empty-key"]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_prints_the_same_against_vane_as_against_etcd() {
    let etcd = start_etcd();
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let vane = cluster.endpoints().join(",");
    let etcd_endpoint = etcd.endpoint.clone();

    let mut mismatches = Vec::new();
    for (args, stdin) in script() {
        let etcd_endpoint = etcd_endpoint.clone();
        let vane = vane.clone();
        let args_owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (want, got) = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args_owned.iter().map(String::as_str).collect();
            (
                etcdctl(&etcd_endpoint, &args, stdin),
                etcdctl(&vane, &args, stdin),
            )
        })
        .await
        .expect("etcdctl");
        let want = (want.0, mask(&want.1), want.2);
        let got = (got.0, mask(&got.1), got.2);
        if want != got {
            mismatches.push(format!(
                "etcdctl {}\n  etcd: {want:?}\n  vane: {got:?}",
                args.join(" ")
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} differences:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_manages_members_and_reports_endpoints() {
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let endpoints = cluster.endpoints().join(",");
    let run = move |args: Vec<&'static str>| {
        let endpoints = endpoints.clone();
        async move {
            tokio::task::spawn_blocking(move || etcdctl(&endpoints, &args, None))
                .await
                .expect("etcdctl")
        }
    };
    let (code, out, _) = run(vec!["endpoint", "status", "-w", "table"]).await;
    assert_eq!(code, 0);
    assert_eq!(out.matches("3.4.0+vane").count(), 3, "{out}");
    assert_eq!(out.matches("true").count(), 1, "exactly one leader: {out}");
    // etcdctl 3.4 reports health on stderr.
    let endpoints_for_health = cluster.endpoints().join(",");
    let health = tokio::task::spawn_blocking(move || {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                format!("--endpoints={endpoints_for_health}"),
                "endpoint".into(),
                "health".into(),
            ])
            .output()
            .expect("etcdctl")
    })
    .await
    .expect("etcdctl");
    assert!(health.status.success());
    let report = String::from_utf8_lossy(&health.stderr);
    assert_eq!(report.matches("is healthy").count(), 3, "{report}");
    let (code, out, _) = run(vec!["member", "list"]).await;
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3, "{out}");
    let (code, out, err) = run(vec![
        "member",
        "add",
        "n9",
        "--learner",
        "--peer-urls=http://127.0.0.1:1",
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""),
        "{out}"
    );
    let (_, out, _) = run(vec!["member", "list"]).await;
    let learner = out
        .lines()
        .find(|l| l.contains("http://127.0.0.1:1,"))
        .and_then(|l| l.split(',').next())
        .expect("the learner is listed")
        .to_string();
    let (code, _, err) = run(vec![
        "member",
        "promote",
        Box::leak(learner.clone().into_boxed_str()),
    ])
    .await;
    assert_ne!(code, 0);
    assert_eq!(
        err,
        "Error: etcdserver: can only promote a learner member which is in sync with leader"
    );
    let (code, out, err) = run(vec![
        "member",
        "remove",
        Box::leak(learner.into_boxed_str()),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("removed from cluster"), "{out}");
    let (code, _, err) = run(vec!["member", "remove", "1234"]).await;
    assert_ne!(code, 0);
    assert_eq!(err, "Error: etcdserver: member not found");

    // move-leader: etcdctl finds the leader itself and asks it to hand over.
    let (_, out, _) = run(vec!["endpoint", "status"]).await;
    let follower_id = out
        .lines()
        .find(|l| l.contains(", false, "))
        .and_then(|l| l.split(", ").nth(1))
        .expect("a follower in endpoint status")
        .to_string();
    let target: &'static str = Box::leak(follower_id.clone().into_boxed_str());
    let (code, out, err) = run(vec!["move-leader", target]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Leadership transferred"), "{out}");
    let (_, out, _) = run(vec!["endpoint", "status"]).await;
    let leader_line = out
        .lines()
        .find(|l| l.contains(", true, "))
        .expect("a leader");
    assert!(leader_line.contains(&follower_id), "{out}");
    let (code, _, err) = run(vec!["move-leader", "1234"]).await;
    assert_ne!(code, 0);
    assert_eq!(err, "Error: etcdserver: bad leader transferee");

    // snapshot save: etcdctl checks the trailing SHA-256; what precedes it is a Vane
    // snapshot (zero-padded to whole pages) that a Vane store can open.
    let (code, _, err) = run(vec!["put", "snap", "shot"]).await;
    assert_eq!(code, 0, "{err}");
    let saved = cluster.dir.path().join("saved.db");
    let saved_arg: &'static str =
        Box::leak(saved.to_str().expect("utf-8").to_string().into_boxed_str());
    let one = cluster.endpoints()[0].clone();
    let (code, _, err) =
        tokio::task::spawn_blocking(move || etcdctl(&one, &["snapshot", "save", saved_arg], None))
            .await
            .expect("etcdctl");
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&saved).expect("saved snapshot");
    let (body, checksum) = bytes.split_at(bytes.len() - 32);
    use sha2::Digest;
    assert_eq!(sha2::Sha256::digest(body).as_slice(), checksum);
    let body_path = cluster.dir.path().join("saved.body");
    std::fs::write(&body_path, body).expect("write body");
    let file = vane_raft_store::SnapshotFile::open(&body_path).expect("a Vane snapshot");
    let meta = file.header.meta.expect("meta");
    assert!(meta.revision >= 2, "{meta:?}");
}

/// Runs `etcdctl watch ARGS` and returns what it printed: the replay, then, once it has
/// been quiet for half a second, `during` makes a live change, and the watch is stopped
/// when it has been quiet again for a second (or after 15 s).
fn watch_output(endpoints: &str, args: &[&str], during: impl FnOnce()) -> String {
    use std::io::BufRead;
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg("watch")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcdctl");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut out = Vec::new();
    let mut during = Some(during);
    while Instant::now() < deadline {
        let quiet = if during.is_some() { 500 } else { 1_000 };
        match rx.recv_timeout(Duration::from_millis(quiet)) {
            Ok(line) => out.push(line),
            Err(_) => match during.take() {
                Some(f) => f(),
                None => break,
            },
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    out.join("\n")
}

/// The lease id in `lease 694d7b2a1b8e4f05 granted with TTL(60s)`.
fn lease_id(grant_output: &str) -> String {
    grant_output
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string()
}

/// What one system printed for the watch and lease script.
fn watch_and_lease_script(endpoints: &str) -> Vec<(String, String)> {
    let run = |args: &[&str]| {
        let (code, out, err) = etcdctl(endpoints, args, None);
        format!("exit {code}\n{out}{err}")
    };
    let mut printed = Vec::new();
    for args in [
        &["put", "w/a", "1"][..],
        &["put", "w/b", "2"],
        &["del", "w/a"],
        &["put", "w/b", "3"],
        &["put", "other", "x"],
    ] {
        printed.push((args.join(" "), run(args)));
    }
    // History replay then a live event, for each form of watch.
    let live = |key: &'static str, value: &'static str| {
        let endpoints = endpoints.to_string();
        move || {
            etcdctl(&endpoints, &["put", key, value], None);
        }
    };
    printed.push((
        "watch --prefix w/ --rev=1".into(),
        watch_output(endpoints, &["--prefix", "w/", "--rev=1"], live("w/c", "4")),
    ));
    printed.push((
        "watch w/b --rev=2 --prev-kv".into(),
        watch_output(
            endpoints,
            &["w/b", "--rev=2", "--prev-kv"],
            live("w/b", "5"),
        ),
    ));
    printed.push((
        "watch w/ w/c --rev=1 -w json".into(),
        mask(&watch_output(
            endpoints,
            &["w/", "w/c", "--rev=1", "-w", "json"],
            || {},
        )),
    ));

    // Leases: ids differ between the two systems, so each is replaced by ID.
    let grant = run(&["lease", "grant", "60"]);
    let id = lease_id(grant.lines().nth(1).unwrap_or_default());
    let by_id = |text: String| text.replace(&id, "ID");
    printed.push(("lease grant 60".into(), by_id(grant.clone())));
    for args in [
        vec!["put", "leased", "v", &format!("--lease={id}")],
        vec!["lease", "list"],
        vec!["lease", "keep-alive", "--once", &id],
        vec!["get", "leased"],
    ] {
        let args: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
        printed.push((by_id(args.join(" ")), by_id(run(&args))));
    }
    // The remaining time may differ by a second between the two runs.
    let ttl = by_id(run(&["lease", "timetolive", &id, "--keys"]));
    let ttl = match (ttl.find("remaining("), ttl.find("s), attached")) {
        (Some(a), Some(b)) if a < b => format!("{}remaining(N{}", &ttl[..a], &ttl[b..]),
        _ => ttl,
    };
    printed.push(("lease timetolive ID --keys".into(), ttl));
    for args in [
        vec!["lease", "revoke", &id],
        vec!["get", "leased"],
        vec!["lease", "timetolive", &id],
        vec!["lease", "revoke", &id],
        vec!["put", "x", "y", "--lease=1234abcd"],
    ] {
        let args: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
        printed.push((by_id(args.join(" ")), by_id(run(&args))));
    }
    printed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_watches_and_leases_the_same_against_vane_as_against_etcd() {
    let etcd = start_etcd();
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let vane = cluster.endpoints().join(",");
    let etcd_endpoint = etcd.endpoint.clone();
    let (want, got) = tokio::task::spawn_blocking(move || {
        (
            watch_and_lease_script(&etcd_endpoint),
            watch_and_lease_script(&vane),
        )
    })
    .await
    .expect("scripts");
    let mismatches: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("etcdctl {}\n  etcd: {:?}\n  vane: {:?}", w.0, w.1, g.1))
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} differences:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The script did what it says: the replay and the live event arrived.
    let watch = &want[5].1;
    assert!(watch.contains("w/c\n4"), "no live event in {watch:?}");
}
