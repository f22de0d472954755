//! Exactly-once sessions over the client port: a write retried with the same sequence is
//! answered with the first attempt's result and applied once, on any member; a sequence
//! already acknowledged is refused; an unknown session is refused, not applied; malformed
//! tags are refused before anything is proposed.

mod common;

use std::time::Duration;

use common::{Cluster, channel, get};
use tonic::Request;
use vane_proto::api::session_client::SessionClient;
use vane_proto::api::{CloseSessionRequest, OpenSessionRequest};
use vane_proto::etcdserverpb::kv_client::KvClient;
use vane_proto::etcdserverpb::{PutRequest, RangeRequest};

fn tagged(
    key: &str,
    value: &str,
    session: u64,
    sequence: u64,
    acked_below: u64,
) -> Request<PutRequest> {
    let mut request = Request::new(PutRequest {
        key: key.into(),
        value: value.into(),
        prev_kv: true,
        ..Default::default()
    });
    let metadata = request.metadata_mut();
    metadata.insert("vane-session", session.to_string().parse().unwrap());
    metadata.insert("vane-sequence", sequence.to_string().parse().unwrap());
    metadata.insert("vane-acked-below", acked_below.to_string().parse().unwrap());
    request
}

async fn store_revision(kv: &mut KvClient<tonic::transport::Channel>) -> i64 {
    kv.range(RangeRequest {
        key: b"any".to_vec(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .header
    .unwrap()
    .revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_is_applied_once_and_answered_with_the_first_result() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let mut sessions = SessionClient::new(channel(&cluster.members[follower].client_url()).await);
    let opened = sessions
        .open(OpenSessionRequest { ttl_ms: 30_000 })
        .await
        .expect("open a session")
        .into_inner();
    assert!(opened.session_id > 0);
    assert_eq!(opened.ttl_ms, 30_000);

    let mut kv_follower = KvClient::new(channel(&cluster.members[follower].client_url()).await);
    let mut kv_leader = cluster.kv(leader).await;
    let first = kv_follower
        .put(tagged("counter", "1", opened.session_id, 1, 1))
        .await
        .expect("first attempt")
        .into_inner();
    let revision_after_first = store_revision(&mut kv_leader).await;

    // The retry goes to another member, with a different value even: the answer is the
    // remembered one and nothing is applied again.
    let retry = kv_leader
        .put(tagged("counter", "2", opened.session_id, 1, 1))
        .await
        .expect("retried attempt")
        .into_inner();
    assert_eq!(
        retry.header.as_ref().unwrap().revision,
        first.header.as_ref().unwrap().revision
    );
    assert_eq!(retry.prev_kv, first.prev_kv);
    assert_eq!(store_revision(&mut kv_leader).await, revision_after_first);
    assert_eq!(
        get(&mut kv_leader, "counter", false).await.as_deref(),
        Some("1")
    );

    // The next request acknowledges the first; the first can no longer be replayed.
    kv_leader
        .put(tagged("counter", "3", opened.session_id, 2, 2))
        .await
        .expect("second request");
    let stale = kv_leader
        .put(tagged("counter", "4", opened.session_id, 1, 1))
        .await
        .expect_err("an acknowledged sequence is refused");
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition);
    assert!(
        stale.message().contains("already acknowledged"),
        "{}",
        stale.message()
    );
    assert_eq!(
        get(&mut kv_leader, "counter", false).await.as_deref(),
        Some("3")
    );

    // Closed: later requests are refused with the session error, and not applied.
    sessions
        .close(CloseSessionRequest {
            session_id: opened.session_id,
        })
        .await
        .expect("close");
    let closed = kv_leader
        .put(tagged("counter", "5", opened.session_id, 3, 3))
        .await
        .expect_err("a closed session is refused");
    assert_eq!(closed.code(), tonic::Code::FailedPrecondition);
    assert!(
        closed.message().contains("has expired"),
        "{}",
        closed.message()
    );
    assert_eq!(
        get(&mut kv_leader, "counter", false).await.as_deref(),
        Some("3")
    );

    // A malformed tag is refused before anything is proposed.
    let mut bad = tagged("counter", "6", opened.session_id, 4, 4);
    bad.metadata_mut()
        .insert("vane-sequence", "four".parse().unwrap());
    let bad = kv_leader.put(bad).await.expect_err("malformed sequence");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        get(&mut kv_leader, "counter", false).await.as_deref(),
        Some("3")
    );
}
