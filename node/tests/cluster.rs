//! Three real `vaned` processes: replication, linearizable reads on followers, failover
//! after kill -9 without losing an acknowledged write, catching up after a restart, and
//! refusals of bad input that leave the cluster serving.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, get, put};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{PutRequest, RangeRequest, RequestOp, TxnRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_member_are_read_linearizably_from_every_member() {
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    for i in 0..3 {
        let mut kv = cluster.kv(i).await;
        put(&mut kv, &format!("from-{i}"), &format!("v{i}"))
            .await
            .expect("put");
        // Read back at once through every member: a linearizable read on a follower must
        // see a write acknowledged by another member.
        for j in 0..3 {
            let mut reader = cluster.kv(j).await;
            assert_eq!(
                get(&mut reader, &format!("from-{i}"), false).await,
                Some(format!("v{i}")),
                "member {j} did not see the write made through member {i}"
            );
        }
    }
}

/// `vaned --help` and `--version` are requests, not configuration errors: printed on stdout,
/// exit status 0, as etcd's.
#[test]
fn help_and_version_go_to_stdout_with_success() {
    for flag in ["--help", "--version"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vaned"))
            .arg(flag)
            .output()
            .expect("run vaned");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{flag}: {:?}", out.status);
        assert!(stdout.contains("vaned"), "{flag} printed: {stdout}");
        assert!(
            out.stderr.is_empty(),
            "{flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What a founding member logs when it initialises the cluster because the first did not
/// reach it in time.
const INITIALISED_IN_PLACE_OF_THE_FIRST: &str = "initialising the cluster here";

/// Only the founding member with the lowest id initialises a new cluster, so it is the first
/// leader and nobody else campaigns. (When all three initialised, the leader was any of
/// them, and a member with a higher id could depose it in its first second.) The election
/// timeout is long so that the others' fallback cannot fire on a slow start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_is_initialised_by_its_first_member_alone() {
    let cluster = Cluster::start_with(3, &["--election-timeout", "3000"]);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let first = cluster.first_founding_member();
    for i in 0..3 {
        assert!(
            !cluster
                .log_of(i)
                .contains(INITIALISED_IN_PLACE_OF_THE_FIRST),
            "member {i} did not wait for the first; its log:\n{}",
            cluster.log_of(i)
        );
    }
    assert_eq!(
        leader, first,
        "the first leader is not the member that initialised the cluster"
    );
}

/// A new cluster whose first founding member is down still forms from the others, who
/// initialise it after waiting; the first then joins it when it starts, without
/// initialising a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_forms_without_its_first_member_and_takes_it_in_later() {
    let mut cluster = Cluster::described(3, "http", &[]);
    let first = cluster.first_founding_member();
    for i in (0..3).filter(|&i| i != first) {
        cluster.spawn(i);
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    assert_ne!(leader, first);
    assert!(
        (0..3).any(|i| cluster
            .log_of(i)
            .contains(INITIALISED_IN_PLACE_OF_THE_FIRST)),
        "nobody said why it initialised"
    );
    put(&mut cluster.kv(leader).await, "formed", "without the first")
        .await
        .expect("a put without the first member");

    cluster.spawn(first);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut late = cluster.kv(first).await;
    while get(&mut late, "formed", true).await.as_deref() != Some("without the first") {
        assert!(
            Instant::now() < deadline,
            "the first member never caught up; its log:\n{}",
            cluster.log_of(first)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_loses_no_acknowledged_write_and_the_node_catches_up() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut acknowledged = Vec::new();
    let writer = (leader + 1) % 3;
    let mut kv = cluster.kv(writer).await;
    for n in 0..50 {
        let key = format!("k{n:03}");
        put(&mut kv, &key, &n.to_string())
            .await
            .expect("put before the kill");
        acknowledged.push(key);
    }

    cluster.kill(leader);
    let killed_at = Instant::now();
    let new_leader = cluster.wait_for_leader(Duration::from_secs(15)).await;
    assert_ne!(new_leader, leader);
    // Writes are served again; how long that took is reported, not asserted tightly
    // (timing belongs in benchmarks); 15 s bounds only liveness.
    let survivor = (0..3).find(|i| *i != leader).expect("survivor");
    let mut kv = cluster.kv(survivor).await;
    loop {
        match put(&mut kv, "after-failover", "yes").await {
            Ok(_) => break,
            Err(status) => {
                assert!(
                    killed_at.elapsed() < Duration::from_secs(15),
                    "no write served after failover: {status}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    eprintln!(
        "writes served again {:?} after kill -9 of the leader",
        killed_at.elapsed()
    );

    for key in &acknowledged {
        assert!(
            get(&mut kv, key, false).await.is_some(),
            "acknowledged write {key} was lost"
        );
    }

    cluster.spawn(leader);
    let mut restarted = cluster.kv(leader).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // A serializable read answers from the restarted member's own state.
        if get(&mut restarted, "after-failover", true).await.as_deref() == Some("yes") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted member never caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for key in &acknowledged {
        assert!(
            get(&mut restarted, key, true).await.is_some(),
            "restarted member lacks {key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_etcds_errors_and_the_cluster_keeps_serving() {
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut kv = cluster.kv(0).await;

    let oversized = kv
        .put(PutRequest {
            key: b"big".to_vec(),
            value: vec![b'x'; 1_600_000],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(oversized.message(), "etcdserver: request is too large");

    let no_key = kv.range(RangeRequest::default()).await.unwrap_err();
    assert_eq!(no_key.code(), tonic::Code::InvalidArgument);
    assert_eq!(no_key.message(), "etcdserver: key is not provided");

    let put_op = |k: &str| RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: k.into(),
            value: b"v".to_vec(),
            ..Default::default()
        })),
    };
    let duplicate = kv
        .txn(TxnRequest {
            compare: vec![],
            success: vec![put_op("d"), put_op("d")],
            failure: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        duplicate.message(),
        "etcdserver: duplicate key given in txn request"
    );

    let future = kv
        .range(RangeRequest {
            key: b"x".to_vec(),
            revision: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(future.code(), tonic::Code::OutOfRange);
    assert_eq!(
        future.message(),
        "etcdserver: mvcc: required revision is a future revision"
    );

    // A malformed message on the peer port is refused, and nothing is lost.
    let peer = format!("http://127.0.0.1:{}", cluster.members[1].peer_port);
    let mut raw =
        vane_proto::raft::raft_peer_client::RaftPeerClient::new(common::channel(&peer).await);
    let refused = raw
        .vote(vane_proto::raft::VoteRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    put(&mut kv, "still", "serving")
        .await
        .expect("put after bad input");
    assert_eq!(
        get(&mut kv, "still", false).await.as_deref(),
        Some("serving")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_leader_hands_over_leadership_and_exits_cleanly() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut kv = cluster.kv(leader).await;
    put(&mut kv, "before", "stop").await.expect("put");
    let status = cluster.terminate(leader);
    assert!(status.success(), "vaned exited with {status}");
    let next = cluster.wait_for_leader(Duration::from_secs(10)).await;
    assert_ne!(next, leader);
    let mut kv = cluster.kv(next).await;
    assert_eq!(get(&mut kv, "before", false).await.as_deref(), Some("stop"));
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect admin port");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoint_reports_health_readiness_and_metrics() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut kv = cluster.kv(leader).await;
    put(&mut kv, "m", "1").await.expect("put");
    let _ = kv
        .range(RangeRequest {
            key: b"m".to_vec(),
            revision: 999,
            ..Default::default()
        })
        .await;
    let port = cluster.members[leader].metrics_port;
    // On two loaded cores an election can start at any moment (a heartbeat starved past
    // the timeout), and health rightly says "RAFT NO LEADER" until it ends: ask again
    // for a while rather than judge one instant.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        let (status, body) = tokio::task::spawn_blocking(move || http_get(port, "/health"))
            .await
            .unwrap();
        if status == 200 || Instant::now() >= deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"health":"true","reason":""}"#)
    );
    let (status, _) = tokio::task::spawn_blocking(move || http_get(port, "/readyz"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, metrics) = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    for expected in [
        "vane_raft_term ",
        "vane_server_is_leader 1",
        "vane_proposals_committed_total 1",
        "vane_grpc_requests_total{code=\"0\",method=\"Put\"} 1",
        "vane_grpc_requests_total{code=\"11\",method=\"Range\"} 1",
        "vane_apply_duration_seconds_count",
        "vane_disk_wal_fsync_duration_seconds_count",
        "vane_mvcc_db_total_size_in_bytes",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
    // The log's progress, read when scraped: the founding entries and the put are applied.
    let applied = sample(&metrics, "vane_raft_applied_index");
    assert!(applied >= 2.0, "{metrics}");
    assert!(
        sample(&metrics, "vane_raft_committed_index") >= applied,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "vane_raft_last_log_index") >= applied,
        "{metrics}"
    );
    // Where the memory goes: the process as a whole, and RocksDB's share of it.
    let resident = sample(&metrics, "process_resident_memory_bytes");
    assert!(resident > (1 << 20) as f64, "{metrics}");
    for db in ["state_machine", "raft_log"] {
        let memtables = sample(
            &metrics,
            &format!("vane_storage_memory_bytes{{db=\"{db}\",kind=\"memtables\"}}"),
        );
        assert!(memtables > 0.0 && memtables < resident, "{db}: {metrics}");
    }
    let block_cache = sample(
        &metrics,
        "vane_storage_memory_bytes{db=\"state_machine\",kind=\"block_cache\"}",
    );
    assert!(block_cache < resident, "{metrics}");
}

/// The value of one sample (`name`, with its labels if it has any) in Prometheus' text
/// format.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_reaches_the_same_hash_after_a_mixed_workload() {
    use vane_proto::etcdserverpb::{CompactionRequest, DeleteRangeRequest, HashKvRequest};
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    for n in 0..60 {
        let mut kv = cluster.kv(n % 3).await;
        put(&mut kv, &format!("h/{}", n % 17), &n.to_string())
            .await
            .expect("put");
        if n % 7 == 0 {
            kv.delete_range(DeleteRangeRequest {
                key: format!("h/{}", n % 5).into_bytes(),
                ..Default::default()
            })
            .await
            .expect("delete");
        }
    }
    let mut kv = cluster.kv(0).await;
    let revision = put(&mut kv, "h/last", "x").await.expect("put");
    kv.compact(CompactionRequest {
        revision: revision / 2,
        physical: false,
    })
    .await
    .expect("compact");
    // Wait until every member has applied the compaction, then compare at one revision.
    let mut hashes = Vec::new();
    for i in 0..3 {
        let mut kv = cluster.kv(i).await;
        assert_eq!(get(&mut kv, "h/last", false).await.as_deref(), Some("x"));
        let mut maintenance = cluster.maintenance(i).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let response = loop {
            let r = maintenance
                .hash_kv(HashKvRequest { revision })
                .await
                .expect("hash kv")
                .into_inner();
            if r.compact_revision == revision / 2 {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "member {i} never applied the compaction"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        hashes.push(response.hash);
    }
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "members diverged: {hashes:?}"
    );
}

/// Member `i`'s `/metrics` page.
async fn metrics_of(cluster: &Cluster, i: usize) -> String {
    let port = cluster.members[i].metrics_port;
    tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
        .await
        .unwrap()
        .1
}

/// The value of an unlabelled counter in Prometheus' text format.
fn counter(metrics: &str, name: &str) -> u64 {
    sample(metrics, name) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_through_a_follower_travel_in_batches_each_with_its_own_outcome() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let kv = cluster.kv(follower).await;
    // Every tenth put names a lease that does not exist: etcd's rules refuse it alone,
    // while the writes batched with it apply.
    const WRITES: usize = 200;
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..WRITES {
        let mut kv = kv.clone();
        writes.spawn(async move {
            let result = kv
                .put(PutRequest {
                    key: format!("batch/{n}").into_bytes(),
                    value: n.to_string().into_bytes(),
                    lease: if n % 10 == 0 { 4242 } else { 0 },
                    ..Default::default()
                })
                .await;
            (
                n,
                result.map(|r| r.into_inner().header.map_or(0, |h| h.revision)),
            )
        });
    }
    let mut revisions = Vec::new();
    while let Some(joined) = writes.join_next().await {
        let (n, result) = joined.expect("write task");
        match result {
            Ok(revision) => {
                assert_ne!(n % 10, 0, "put {n} with an unknown lease was applied");
                revisions.push(revision);
            }
            Err(status) => {
                assert_eq!(n % 10, 0, "put {n} failed: {status}");
                assert_eq!(status.message(), "etcdserver: requested lease not found");
            }
        }
    }
    // Each applied put got a revision of its own, and the refused ones took none.
    revisions.sort_unstable();
    let first = revisions[0];
    let expected: Vec<i64> = (first..first + revisions.len() as i64).collect();
    assert_eq!(revisions, expected);
    assert_eq!(revisions.len(), WRITES - WRITES / 10);
    let mut reader = cluster.kv(leader).await;
    for n in [1, 99, 199] {
        assert_eq!(
            get(&mut reader, &format!("batch/{n}"), false).await,
            Some(n.to_string())
        );
    }
    assert_eq!(get(&mut reader, "batch/100", false).await, None);

    let metrics = metrics_of(&cluster, follower).await;
    let forwarded = counter(&metrics, "vane_forwarded_writes_total");
    let batches = counter(&metrics, "vane_forward_batches_total");
    assert_eq!(forwarded, WRITES as u64, "{metrics}");
    assert!(
        batches < forwarded,
        "{forwarded} writes went in {batches} batches: none was shared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_linearizable_reads_on_a_follower_share_read_indexes_and_see_every_write() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let kv = cluster.kv(follower).await;
    let mut writer = cluster.kv(leader).await;
    const READS: usize = 200;
    for round in 0..3 {
        // Acknowledged by the leader before any read starts: every read must see it.
        let value = format!("v{round}");
        put(&mut writer, "shared/read", &value).await.expect("put");
        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..READS {
            let mut kv = kv.clone();
            reads.spawn(async move { get(&mut kv, "shared/read", false).await });
        }
        while let Some(read) = reads.join_next().await {
            assert_eq!(read.expect("read task"), Some(value.clone()));
        }
    }
    let metrics = metrics_of(&cluster, follower).await;
    let reads = counter(&metrics, "vane_read_index_reads_total");
    let rounds = counter(&metrics, "vane_read_index_rounds_total");
    assert!(reads >= 3 * READS as u64, "{metrics}");
    assert!(
        rounds < reads,
        "{reads} reads took {rounds} read indexes: none was shared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_txn_that_only_reads_is_a_read_on_any_member_and_adds_nothing_to_the_log() {
    use vane_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
    use vane_proto::etcdserverpb::response_op::Response;
    use vane_proto::etcdserverpb::{Compare, StatusRequest};

    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let mut writer = cluster.kv(leader).await;
    let mut reader = cluster.kv(follower).await;
    let read_txn = |serializable: bool| TxnRequest {
        compare: vec![Compare {
            key: b"txn/k".to_vec(),
            target: CompareTarget::Version as i32,
            result: CompareResult::Greater as i32,
            target_union: Some(TargetUnion::Version(0)),
            ..Default::default()
        }],
        success: vec![RequestOp {
            request: Some(Request::RequestRange(RangeRequest {
                key: b"txn/k".to_vec(),
                serializable,
                ..Default::default()
            })),
        }],
        failure: vec![],
    };
    let value_of = |response: &vane_proto::etcdserverpb::TxnResponse| {
        assert!(response.succeeded, "{response:?}");
        match &response.responses[0].response {
            Some(Response::ResponseRange(range)) => {
                String::from_utf8(range.kvs[0].value.clone()).expect("utf-8")
            }
            other => panic!("{other:?}"),
        }
    };
    for round in 0..3 {
        // Acknowledged by the leader first: the follower's txn must see it.
        let value = format!("v{round}");
        put(&mut writer, "txn/k", &value).await.expect("put");
        let response = reader.txn(read_txn(false)).await.expect("txn").into_inner();
        assert_eq!(value_of(&response), value);
    }

    let raft_index = |i: usize| {
        let cluster = &cluster;
        async move {
            let mut maintenance = cluster.maintenance(i).await;
            let status = maintenance.status(StatusRequest {}).await.expect("status");
            status.into_inner().raft_index
        }
    };
    // Each member publishes its client URLs through the log once it has started: wait
    // for all three, so that none of those entries falls into the count.
    every_member_listed_with_its_client_urls(&cluster, leader).await;
    let index_before = raft_index(leader).await;
    let reads_before = counter(
        &metrics_of(&cluster, follower).await,
        "vane_read_index_reads_total",
    );
    for _ in 0..20 {
        let response = reader.txn(read_txn(false)).await.expect("txn").into_inner();
        assert_eq!(value_of(&response), "v2");
    }
    let reads_after = counter(
        &metrics_of(&cluster, follower).await,
        "vane_read_index_reads_total",
    );
    assert!(
        reads_after >= reads_before + 20,
        "each linearizable txn takes a read index: {reads_before} -> {reads_after}"
    );
    // Serializable: answered from the follower's state, without a read index.
    for _ in 0..20 {
        let response = reader.txn(read_txn(true)).await.expect("txn").into_inner();
        assert_eq!(value_of(&response), "v2");
    }
    assert_eq!(
        counter(
            &metrics_of(&cluster, follower).await,
            "vane_read_index_reads_total"
        ),
        reads_after
    );
    assert_eq!(
        raft_index(leader).await,
        index_before,
        "txns that only read were proposed"
    );
}

/// Waits until member `i`'s MemberList shows every member with its name and exactly
/// the client URL it advertises; panics after a minute, with the members' logs.
async fn every_member_listed_with_its_client_urls(cluster: &Cluster, i: usize) {
    use vane_proto::etcdserverpb::MemberListRequest;

    let mut expected: Vec<(String, Vec<String>)> = cluster
        .members
        .iter()
        .map(|m| (m.name.clone(), vec![m.client_url()]))
        .collect();
    expected.sort();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut listed: Vec<(String, Vec<String>)> = cluster
            .cluster_client(i)
            .await
            .member_list(MemberListRequest::default())
            .await
            .expect("member list")
            .into_inner()
            .members
            .into_iter()
            .map(|m| (m.name, m.client_ur_ls))
            .collect();
        listed.sort();
        if listed == expected {
            return;
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = (0..cluster.members.len())
                .map(|j| format!("--- member {j}:\n{}", cluster.log_of(j)))
                .collect();
            panic!(
                "member {i} lists {listed:?}, not {expected:?}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_founding_member_is_listed_with_its_client_urls_by_every_member() {
    // Clients find the cluster's endpoints in MemberList (etcd clients' endpoint sync,
    // `endpoint status --cluster`), so every founding member must appear there with its
    // client URLs, whichever member's election won.
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    for i in 0..3 {
        every_member_listed_with_its_client_urls(&cluster, i).await;
    }
}
