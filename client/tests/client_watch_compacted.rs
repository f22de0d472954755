//! A watch that starts below the compacted revision cannot be served and says so with
//! the compact revision; one that starts at the compacted revision itself replays from
//! there. Against a real member.

mod client_common;

use client_common::TestCluster;
use vane_client::Error;
use vane_client::vane_proto::etcdserverpb::{CompactionRequest, PutRequest, WatchCreateRequest};

const KEY: &[u8] = b"/compacted/k";

#[tokio::test]
async fn a_watch_below_the_compaction_fails_with_the_compact_revision_and_at_it_replays() {
    let cluster = TestCluster::start(1).await;
    let client = cluster.client(|_| {}).await;
    let mut revisions = Vec::new();
    for i in 0..10 {
        let response = client
            .put(PutRequest {
                key: KEY.to_vec(),
                value: format!("v{i}").into_bytes(),
                ..Default::default()
            })
            .await
            .expect("put");
        revisions.push(response.header.expect("header").revision);
    }
    let compact_at = revisions[5];
    client
        .compact(CompactionRequest {
            revision: compact_at,
            physical: true,
        })
        .await
        .expect("compact");

    let watch_from = |start_revision| WatchCreateRequest {
        key: KEY.to_vec(),
        start_revision,
        ..Default::default()
    };

    let mut below = client
        .watch(watch_from(revisions[2]))
        .await
        .expect("the watch is accepted; the compaction is reported by next()");
    match below.next().await {
        Some(Err(Error::Compacted {
            compact_revision,
            message,
        })) => {
            assert_eq!(compact_revision, compact_at);
            assert_eq!(message, vane_client::COMPACTED_MESSAGE);
        }
        other => panic!("expected the compaction, got {other:?}"),
    }
    assert!(below.next().await.is_none(), "a compacted watch ends");

    let mut at = client
        .watch(watch_from(compact_at))
        .await
        .expect("a watch at the compact revision");
    let mut replayed = Vec::new();
    while replayed.len() < 5 {
        let response = at
            .next()
            .await
            .expect("the watch goes on")
            .expect("a replayed response");
        for event in response.events {
            let kv = event.kv.expect("kv");
            replayed.push((
                kv.mod_revision,
                String::from_utf8_lossy(&kv.value).into_owned(),
            ));
        }
    }
    let expected: Vec<(i64, String)> = revisions[5..]
        .iter()
        .enumerate()
        .map(|(i, revision)| (*revision, format!("v{}", i + 5)))
        .collect();
    assert_eq!(replayed, expected);
    at.cancel().await;
    assert!(at.next().await.is_none(), "a canceled watch ends");
}
