//! Leases on real processes: expiry deletes every attached key at one revision on every
//! member; keep-alives sent to a follower hold a lease; killing the leader does not
//! expire a kept-alive lease early, nor an unkept one before its TTL; TimeToLive and Leases
//! answer as etcd.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, get};
use tokio::sync::mpsc;
use vane_proto::etcdserverpb::lease_client::LeaseClient;
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseLeasesRequest, LeaseTimeToLiveRequest,
    PutRequest, RangeRequest,
};
use vane_proto::etcdserverpb::{RequestOp, TxnRequest};

async fn lease_client(cluster: &Cluster, i: usize) -> LeaseClient<tonic::transport::Channel> {
    LeaseClient::new(common::channel(&cluster.members[i].client_url()).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_deletes_its_keys_at_one_revision_on_every_member() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let mut leases = lease_client(&cluster, follower).await;
    let granted = leases
        .lease_grant(LeaseGrantRequest { ttl: 2, id: 0 })
        .await
        .expect("grant")
        .into_inner();
    assert_eq!(granted.ttl, 2);
    let mut kv = cluster.kv(follower).await;
    // One txn right after the grant, so the keys are attached well within the 2 s.
    let attach = |key: &str| RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: key.into(),
            value: b"v".to_vec(),
            lease: granted.id,
            ..Default::default()
        })),
    };
    kv.txn(TxnRequest {
        compare: vec![],
        success: vec![attach("l/a"), attach("l/b"), attach("l/c")],
        failure: vec![],
    })
    .await
    .expect("puts with lease");
    // TimeToLive and Leases, on a lease long enough not to expire while asked about
    // (the 2 s one may already be gone on a loaded machine).
    let long = leases
        .lease_grant(LeaseGrantRequest { ttl: 60, id: 0 })
        .await
        .expect("grant")
        .into_inner();
    kv.put(PutRequest {
        key: b"info/k".to_vec(),
        value: b"v".to_vec(),
        lease: long.id,
        ..Default::default()
    })
    .await
    .expect("put with lease");
    let ttl = leases
        .lease_time_to_live(LeaseTimeToLiveRequest {
            id: long.id,
            keys: true,
        })
        .await
        .expect("ttl")
        .into_inner();
    assert_eq!(ttl.granted_ttl, 60);
    assert!((50..=60).contains(&ttl.ttl), "{ttl:?}");
    assert_eq!(ttl.keys, vec![b"info/k".to_vec()]);
    let listed = leases
        .lease_leases(LeaseLeasesRequest {})
        .await
        .expect("leases")
        .into_inner();
    assert!(listed.leases.iter().any(|l| l.id == long.id));

    let deadline = Instant::now() + Duration::from_secs(15);
    for i in 0..3 {
        let mut member = cluster.kv(i).await;
        while get(&mut member, "l/a", true).await.is_some() {
            assert!(
                Instant::now() < deadline,
                "the lease never expired on member {i}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for key in ["l/b", "l/c"] {
            assert_eq!(
                get(&mut member, key, true).await,
                None,
                "{key} outlived its lease on member {i}"
            );
        }
    }
    // The three deletes happened at one revision: the state just before it had all three.
    let now = kv
        .range(RangeRequest {
            key: b"l/".to_vec(),
            range_end: b"l0".to_vec(),
            ..Default::default()
        })
        .await
        .expect("range")
        .into_inner();
    let before = kv
        .range(RangeRequest {
            key: b"l/".to_vec(),
            range_end: b"l0".to_vec(),
            revision: now.header.map_or(0, |h| h.revision) - 1,
            ..Default::default()
        })
        .await
        .expect("range at the revision before")
        .into_inner();
    assert_eq!((now.count, before.count), (0, 3));
    let gone = leases
        .lease_time_to_live(LeaseTimeToLiveRequest {
            id: granted.id,
            keys: false,
        })
        .await
        .expect("ttl")
        .into_inner();
    assert_eq!(gone.ttl, -1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alives_hold_a_lease_across_a_leader_kill() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let mut leases = lease_client(&cluster, follower).await;
    let granted = leases
        .lease_grant(LeaseGrantRequest { ttl: 3, id: 7 })
        .await
        .expect("grant")
        .into_inner();
    assert_eq!(granted.id, 7);
    let mut kv = cluster.kv(follower).await;
    kv.put(PutRequest {
        key: b"held".to_vec(),
        value: b"v".to_vec(),
        lease: 7,
        ..Default::default()
    })
    .await
    .expect("put with lease");

    // Keep-alives through the follower, once a second (the TTL is 3 s).
    let (tx, rx) = mpsc::channel(4);
    let mut responses = leases
        .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("keep-alive stream")
        .into_inner();
    let keeper = tokio::spawn(async move {
        let mut acknowledged = 0;
        for _ in 0..9 {
            if tx.send(LeaseKeepAliveRequest { id: 7 }).await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(9), responses.message()).await {
                Ok(Ok(Some(response))) => {
                    assert!(response.ttl > 0, "keep-alive found no lease: {response:?}");
                    acknowledged += 1;
                }
                other => eprintln!("keep-alive not acknowledged: {other:?}"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        acknowledged
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.kill(leader);
    let acknowledged = keeper.await.expect("keeper");
    assert!(
        acknowledged >= 6,
        "too few keep-alives acknowledged: {acknowledged}"
    );
    assert_eq!(
        get(&mut kv, "held", false).await.as_deref(),
        Some("v"),
        "a kept-alive lease expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_kill_does_not_expire_a_lease_early_and_the_new_leader_expires_it() {
    use vane_proto::etcdserverpb::watch_client::WatchClient;
    use vane_proto::etcdserverpb::watch_request::RequestUnion;
    use vane_proto::etcdserverpb::{WatchCreateRequest, WatchRequest};
    use vane_proto::mvccpb::event::EventType;

    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let channel = common::channel(&cluster.members[follower].client_url()).await;
    let (requests, rx) = mpsc::channel(1);
    let mut events = WatchClient::new(channel)
        .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("watch")
        .into_inner();
    requests
        .send(WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: b"unkept".to_vec(),
                ..Default::default()
            })),
        })
        .await
        .expect("create");
    assert!(
        events
            .message()
            .await
            .expect("stream")
            .expect("created")
            .created
    );

    // No keep-alive at all: the lease must live at least its TTL from the moment it was
    // asked for, whatever happens to the leader meanwhile.
    let ttl = 4;
    let asked = Instant::now();
    let mut leases = lease_client(&cluster, follower).await;
    let granted = leases
        .lease_grant(LeaseGrantRequest { ttl, id: 0 })
        .await
        .expect("grant")
        .into_inner();
    cluster
        .kv(follower)
        .await
        .put(PutRequest {
            key: b"unkept".to_vec(),
            value: b"v".to_vec(),
            lease: granted.id,
            ..Default::default()
        })
        .await
        .expect("put with lease");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.kill(leader);

    let deleted = loop {
        let response = tokio::time::timeout(Duration::from_secs(40), events.message())
            .await
            .expect("the lease never expired after the leader changed")
            .expect("stream")
            .expect("open");
        if response
            .events
            .iter()
            .any(|e| e.r#type == EventType::Delete as i32)
        {
            break asked.elapsed();
        }
    };
    // A lower bound only: a slow machine can only make the deletion later.
    assert!(
        deleted >= Duration::from_secs(ttl as u64),
        "the lease expired {deleted:?} after it was asked for, before its {ttl} s TTL"
    );
    eprintln!("lease of {ttl} s expired {deleted:?} after the grant, across a leader kill");
}
