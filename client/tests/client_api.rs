//! The client's API against a real one-member cluster: raw requests, typed helpers, the
//! txn builder, leases, maintenance, and how the server's refusals arrive as [`Error`]s.

mod client_common;

use std::time::Duration;

use client_common::TestCluster;
use futures::StreamExt;
use vane_client::txn::{self, CompareOp};
use vane_client::vane_proto::etcdserverpb::response_op::Response as OpResponse;
use vane_client::vane_proto::etcdserverpb::{
    AlarmRequest, CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest,
};
use vane_client::{
    COMPACTED_MESSAGE, CasOutcome, Client, ClientConfig, Error, LEASE_NOT_FOUND_MESSAGE,
};

fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

fn value_of(kv: Option<vane_client::vane_proto::mvccpb::KeyValue>) -> Option<String> {
    kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
}

#[tokio::test]
async fn kv_helpers_and_the_txn_builder_work_against_a_real_member() {
    let cluster = TestCluster::start(1).await;
    let client = cluster.client(|_| {}).await;
    assert_eq!(client.endpoints(), cluster.cluster.endpoints());

    let first = client.put(put("/t/a", "1")).await.expect("put");
    let revision = first.header.expect("header").revision;
    assert_eq!(
        value_of(client.get("/t/a").await.expect("get")),
        Some("1".into())
    );
    assert_eq!(client.get("/t/missing").await.expect("get"), None);

    // The txn builder: a failing compare runs the failure branch only.
    let request = Client::txn_builder()
        .when(txn::compare_value("/t/a", CompareOp::Equal, "nope"))
        .and_then(txn::put("/t/a", "wrong"))
        .or_else(txn::get("/t/a"))
        .build();
    let response = client.txn(request).await.expect("txn");
    assert!(!response.succeeded);
    assert!(matches!(
        &response.responses[0].response,
        Some(OpResponse::ResponseRange(r)) if r.kvs[0].value == b"1"
    ));
    // A holding compare applies both success operations at one revision.
    let request = Client::txn_builder()
        .when(txn::compare_mod_revision(
            "/t/a",
            CompareOp::Equal,
            revision,
        ))
        .when(txn::compare_create_revision("/t/b", CompareOp::Equal, 0))
        .and_then(txn::put("/t/a", "2"))
        .and_then(txn::put("/t/b", "x"))
        .build();
    let response = client.txn(request).await.expect("txn");
    assert!(response.succeeded);
    let txn_revision = response.header.expect("header").revision;
    let a = client.get("/t/a").await.expect("get").expect("a exists");
    let b = client.get("/t/b").await.expect("get").expect("b exists");
    assert_eq!(
        (a.mod_revision, b.mod_revision),
        (txn_revision, txn_revision)
    );

    // Compare-and-swap: the expected revision wins once, a stale one reports the current.
    let swapped = client
        .compare_and_swap("/t/a", a.mod_revision, "3")
        .await
        .expect("cas");
    assert!(swapped.swapped());
    let stale = client
        .compare_and_swap("/t/a", a.mod_revision, "4")
        .await
        .expect("cas");
    match stale {
        CasOutcome::Mismatch { current } => assert_eq!(value_of(current), Some("3".into())),
        other => panic!("a stale swap must not apply: {other:?}"),
    }
    let created = client
        .compare_and_swap("/t/new", 0, "fresh")
        .await
        .expect("cas");
    assert!(created.swapped(), "0 means the key must not exist");

    // update: read-modify-write, declining leaves the key alone.
    let updated = client
        .update("/t/counter", |old| {
            let n: u64 = old
                .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                .unwrap_or(0);
            Some((n + 5).to_string().into_bytes())
        })
        .await
        .expect("update");
    assert_eq!(updated.value.as_deref(), Some(&b"5"[..]));
    assert_eq!(updated.previous, None);
    let declined = client.update("/t/counter", |_| None).await.expect("update");
    assert_eq!(declined.value, None);
    assert_eq!(declined.revision, updated.revision);

    let deleted = client
        .delete_range(DeleteRangeRequest {
            key: b"/t/".to_vec(),
            range_end: txn::prefix_range_end(b"/t/"),
            ..Default::default()
        })
        .await
        .expect("delete");
    assert_eq!(deleted.deleted, 4);

    let stats = client.stats();
    assert_eq!(
        stats.sessions_opened, 1,
        "one session serves every write: {stats:?}"
    );
    client.close().await.expect("close the session");
    client.put(put("/t/after-close", "x")).await.expect("put");
    assert_eq!(
        client.stats().sessions_opened,
        2,
        "a write after close opens another"
    );
}

#[tokio::test]
async fn server_refusals_arrive_as_typed_errors_with_the_server_message() {
    let cluster = TestCluster::start(1).await;
    let client = cluster.client(|_| {}).await;
    for i in 0..5 {
        client.put(put("/e/k", &i.to_string())).await.expect("put");
    }
    let head = client
        .range(RangeRequest {
            key: b"/e/k".to_vec(),
            ..Default::default()
        })
        .await
        .expect("range")
        .header
        .expect("header")
        .revision;
    client
        .compact(CompactionRequest {
            revision: head - 1,
            physical: true,
        })
        .await
        .expect("compact");

    let compacted = client
        .range(RangeRequest {
            key: b"/e/k".to_vec(),
            revision: head - 3,
            ..Default::default()
        })
        .await
        .expect_err("a read below the compaction fails");
    assert!(
        matches!(compacted, Error::Compacted { .. }),
        "{compacted:?}"
    );
    assert_eq!(compacted.to_string(), COMPACTED_MESSAGE);

    let future = client
        .range(RangeRequest {
            key: b"/e/k".to_vec(),
            revision: head + 100,
            ..Default::default()
        })
        .await
        .expect_err("a read in the future fails");
    assert!(matches!(future, Error::Invalid { .. }), "{future:?}");
    assert_eq!(
        future.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );

    let revoke = client
        .lease_revoke(0x1234)
        .await
        .expect_err("no such lease");
    assert!(matches!(revoke, Error::NotFound { .. }), "{revoke:?}");
    assert_eq!(revoke.to_string(), LEASE_NOT_FOUND_MESSAGE);
    let keep_alive = client
        .lease_keep_alive_once(0x1234)
        .await
        .expect_err("no such lease");
    assert!(
        matches!(keep_alive, Error::NotFound { .. }),
        "{keep_alive:?}"
    );

    let empty_key = client
        .put(put("", "v"))
        .await
        .expect_err("an empty key is refused");
    assert!(matches!(empty_key, Error::Invalid { .. }), "{empty_key:?}");
    assert_eq!(empty_key.to_string(), "etcdserver: key is not provided");

    // Nobody listens on a port we just bound and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let unreachable = Client::connect(ClientConfig {
        dial_timeout: Duration::from_millis(500),
        ..ClientConfig::new([format!("127.0.0.1:{port}")])
    })
    .await
    .err()
    .expect("nothing listens there");
    assert!(
        matches!(unreachable, Error::Unavailable { .. }),
        "{unreachable:?}"
    );
    assert!(
        unreachable.to_string().contains("cannot reach"),
        "{unreachable}"
    );
    let tls = Client::connect(ClientConfig::new(["https://127.0.0.1:2379"]))
        .await
        .err()
        .expect("TLS is refused up front");
    assert!(matches!(tls, Error::Invalid { .. }), "{tls:?}");
}

#[tokio::test]
async fn leases_and_maintenance_calls_work_through_the_client() {
    let cluster = TestCluster::start(1).await;
    let client = cluster.client(|_| {}).await;
    let endpoint = cluster.cluster.endpoints()[0].clone();

    // 6 s: long enough for a loaded machine, short enough that the keeper (every third
    // of the TTL) notices the revoke soon.
    let granted = client.lease_grant(6, 0).await.expect("grant");
    assert!(granted.id != 0 && granted.ttl >= 6, "{granted:?}");
    client
        .put(PutRequest {
            lease: granted.id,
            ..put("/l/k", "v")
        })
        .await
        .expect("put with lease");
    let ttl = client
        .lease_time_to_live(granted.id, true)
        .await
        .expect("timetolive");
    assert_eq!(ttl.keys, vec![b"/l/k".to_vec()]);
    let leases = client.lease_leases().await.expect("leases");
    assert!(leases.leases.iter().any(|l| l.id == granted.id));
    let once = client
        .lease_keep_alive_once(granted.id)
        .await
        .expect("keep-alive");
    assert_eq!(once.id, granted.id);

    let mut keeper = client.lease_keeper(granted.id);
    let renewed = keeper.next().await.expect("an answer").expect("renewed");
    assert_eq!((renewed.id, renewed.ttl), (granted.id, granted.ttl));
    client.lease_revoke(granted.id).await.expect("revoke");
    assert_eq!(client.get("/l/k").await.expect("get"), None);
    // The keeper reports the lease gone, then ends.
    loop {
        match keeper.next().await {
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
                break;
            }
            None => panic!("the keeper ended without saying why"),
        }
    }
    assert!(keeper.next().await.is_none());

    let status = client.status(&endpoint).await.expect("status");
    let member_id = status.header.expect("header").member_id;
    assert_eq!(status.leader, member_id, "a single member leads");
    let hash = client.hash_kv(&endpoint, 0).await.expect("hash");
    assert!(hash.header.is_some());
    let members = client.member_list().await.expect("member list");
    assert_eq!(members.members.len(), 1);
    assert_eq!(members.members[0].id, member_id);
    let alarms = client
        .alarm(AlarmRequest::default())
        .await
        .expect("alarm list");
    assert!(alarms.alarms.is_empty());

    let mut snapshot = client.snapshot(&endpoint).await.expect("snapshot");
    let mut bytes = 0usize;
    while let Some(chunk) = snapshot.next().await {
        bytes += chunk.expect("chunk").blob.len();
    }
    assert!(
        bytes > 32,
        "a snapshot carries data and its checksum: {bytes} bytes"
    );

    let dead = client
        .status("127.0.0.1:1")
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(dead, Error::Unavailable { .. }), "{dead:?}");
}

#[tokio::test]
async fn a_write_after_the_session_expired_opens_a_new_one_and_applies_once() {
    let cluster = TestCluster::start(1).await;
    let client = cluster
        .client(|config| config.session_ttl = Duration::from_secs(1))
        .await;
    client.put(put("/s/k", "1")).await.expect("put");
    assert_eq!(client.stats().sessions_opened, 1);
    // Idle past the session's TTL: the server forgets it on the next write, refuses that
    // write unapplied, and the client sends it again in a new session.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let response = client
        .put(PutRequest {
            prev_kv: true,
            ..put("/s/k", "2")
        })
        .await
        .expect("the write goes through in a new session");
    assert_eq!(client.stats().sessions_opened, 2);
    let previous = response.prev_kv.expect("the key existed");
    assert_eq!(previous.value, b"1", "the refused attempt was not applied");
    let current = client.get("/s/k").await.expect("get").expect("exists");
    assert_eq!((current.value.as_slice(), current.version), (&b"2"[..], 2));
}
