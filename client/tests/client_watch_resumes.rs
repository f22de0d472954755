//! A resuming watch across member crashes: writers make about two thousand changes (puts,
//! deletes, and transactions that change several keys in one revision) through a
//! three-member cluster while the test kills the leader, and then the member the watch is
//! attached to. The watch, started at revision 1, must deliver every revision exactly
//! once, in order, with all events of a revision in one response: the same history a
//! fresh watch on a healthy member replays afterwards, and containing every write the
//! writers saw acknowledged.

mod client_common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client_common::TestCluster;
use tokio_stream::wrappers::ReceiverStream;
use vane_client::txn;
use vane_client::vane_proto::etcdserverpb::watch_client::WatchClient;
use vane_client::vane_proto::etcdserverpb::watch_request::RequestUnion;
use vane_client::vane_proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, WatchCreateRequest, WatchRequest, WatchResponse,
};
use vane_client::vane_proto::mvccpb::Event;
use vane_client::vane_proto::mvccpb::event::EventType;
use vane_client::{Client, Error};

const PREFIX: &[u8] = b"/watched/";
const WRITERS: usize = 8;
const OPS_PER_WRITER: usize = 250;
/// Keys per writer: small enough that deletes find keys to delete.
const KEYS_PER_WRITER: usize = 20;
/// Pause between one writer's changes, so that the writes span both kills.
const WRITE_PAUSE_MS: u64 = 60;

/// An event as compared between the resuming watch and the reference replay.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Change {
    revision: i64,
    delete: bool,
    key: Vec<u8>,
    value: Vec<u8>,
}

fn change_of(event: &Event) -> Change {
    let kv = event.kv.clone().unwrap_or_default();
    Change {
        revision: kv.mod_revision,
        delete: event.r#type == EventType::Delete as i32,
        key: kv.key,
        value: kv.value,
    }
}

fn key(writer: usize, n: usize) -> Vec<u8> {
    let mut key = PREFIX.to_vec();
    key.extend_from_slice(format!("{writer}/{}", n % KEYS_PER_WRITER).as_bytes());
    key
}

/// One writer's changes; returns the revisions of the writes it saw acknowledged that
/// changed something (and so must appear in the watch).
async fn write_changes(client: Client, writer: usize) -> Result<Vec<i64>, Error> {
    let mut revisions = Vec::new();
    for op in 0..OPS_PER_WRITER {
        let value = format!("w{writer}-op{op}");
        let revision = match op % 5 {
            0 | 1 => {
                let response = client
                    .put(PutRequest {
                        key: key(writer, op),
                        value: value.into_bytes(),
                        ..Default::default()
                    })
                    .await?;
                response.header.map(|h| h.revision)
            }
            2 => {
                // Several keys in one revision.
                let request = Client::txn_builder()
                    .and_then(txn::put(key(writer, op), value.clone()))
                    .and_then(txn::put(key(writer, op + 1), value.clone()))
                    .and_then(txn::put(key(writer, op + 2), value))
                    .build();
                client.txn(request).await?.header.map(|h| h.revision)
            }
            3 => {
                let response = client
                    .delete_range(DeleteRangeRequest {
                        key: key(writer, op + 7),
                        ..Default::default()
                    })
                    .await?;
                (response.deleted > 0)
                    .then_some(response.header.map(|h| h.revision))
                    .flatten()
            }
            _ => {
                // A put and a delete in one revision, when the compare holds.
                let request = Client::txn_builder()
                    .when(txn::compare_version(
                        key(writer, op + 3),
                        txn::CompareOp::Greater,
                        0,
                    ))
                    .and_then(txn::delete(key(writer, op + 3)))
                    .and_then(txn::put(key(writer, op + 11), value.clone()))
                    .or_else(txn::put(key(writer, op + 3), value))
                    .build();
                client.txn(request).await?.header.map(|h| h.revision)
            }
        };
        if let Some(revision) = revision {
            revisions.push(revision);
        }
        tokio::time::sleep(Duration::from_millis(WRITE_PAUSE_MS)).await;
    }
    Ok(revisions)
}

/// A watch straight over tonic from revision 1 to `until` on `url`: the reference
/// history, independent of the client library.
async fn reference_history(url: &str, until: i64) -> Vec<Change> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect to a healthy member");
    let (requests, outbound) = tokio::sync::mpsc::channel(1);
    requests
        .send(WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: PREFIX.to_vec(),
                range_end: txn::prefix_range_end(PREFIX),
                start_revision: 1,
                ..Default::default()
            })),
        })
        .await
        .expect("queue the create");
    let mut responses = WatchClient::new(channel)
        .max_decoding_message_size(usize::MAX >> 1)
        .watch(ReceiverStream::new(outbound))
        .await
        .expect("watch")
        .into_inner();
    let mut history = Vec::new();
    let mut last = 0;
    while last < until {
        let response = tokio::time::timeout(Duration::from_secs(30), responses.message())
            .await
            .expect("the reference watch keeps delivering")
            .expect("reference stream")
            .expect("reference stream open");
        assert!(!response.canceled, "reference watch canceled: {response:?}");
        for event in &response.events {
            let change = change_of(event);
            last = last.max(change.revision);
            history.push(change);
        }
    }
    drop(requests);
    history.retain(|c| c.revision <= until);
    history
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resuming_watch_delivers_every_revision_once_across_kills() {
    let mut cluster = TestCluster::start(3).await;
    let writer_client = cluster
        .client(|config| config.request_timeout = Duration::from_secs(60))
        .await;
    let watch_client = cluster
        .client(|config| config.attempt_timeout = Duration::from_millis(1000))
        .await;

    let mut watcher = watch_client
        .watch(WatchCreateRequest {
            key: PREFIX.to_vec(),
            range_end: txn::prefix_range_end(PREFIX),
            start_revision: 1,
            ..Default::default()
        })
        .await
        .expect("create the watch");

    // The collector owns the watcher; the test reads where it is attached from here.
    let attached: Arc<Mutex<Option<String>>> =
        Arc::new(Mutex::new(watcher.endpoint().map(str::to_string)));
    let members_served: Arc<Mutex<BTreeSet<String>>> = Arc::new(Mutex::new(
        watcher.endpoint().map(str::to_string).into_iter().collect(),
    ));
    let (until_tx, mut until_rx) = tokio::sync::watch::channel(i64::MAX);
    let collector = {
        let attached = attached.clone();
        let members_served = members_served.clone();
        tokio::spawn(async move {
            let mut responses: Vec<WatchResponse> = Vec::new();
            let mut errors: Vec<String> = Vec::new();
            loop {
                let until = *until_rx.borrow_and_update();
                if watcher.resume_revision() > until {
                    return (responses, errors);
                }
                let next = tokio::select! {
                    next = watcher.next() => next,
                    _ = until_rx.changed() => continue,
                };
                let endpoint = watcher.endpoint().map(str::to_string);
                if let Some(endpoint) = &endpoint {
                    members_served.lock().unwrap().insert(endpoint.clone());
                }
                *attached.lock().unwrap() = endpoint;
                match next {
                    Some(Ok(response)) => responses.push(response),
                    // Not final: the watcher keeps trying on the next call.
                    Some(Err(Error::Unavailable { message })) => errors.push(message),
                    Some(Err(e)) => panic!("the watch ended: {e}"),
                    None => panic!("the watch ended without an error"),
                }
            }
        })
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| tokio::spawn(write_changes(writer_client.clone(), writer)))
        .collect();

    // First the leader, then whichever member serves the watch by then.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let leader = cluster.leader().await;
    cluster
        .cluster
        .kill(&leader)
        .await
        .expect("kill the leader");
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.cluster.restart(&leader).await.expect("restart it");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let watched_url = attached
        .lock()
        .unwrap()
        .clone()
        .expect("the watch is attached to a member");
    let watched = cluster.name_of(&watched_url);
    cluster
        .cluster
        .kill(&watched)
        .await
        .expect("kill the member serving the watch");
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.cluster.restart(&watched).await.expect("restart it");

    let mut acknowledged: BTreeSet<i64> = BTreeSet::new();
    for writer in writers {
        let revisions = writer
            .await
            .expect("writer task")
            .expect("every write succeeds within its timeout");
        acknowledged.extend(revisions);
    }
    let head = writer_client
        .range(RangeRequest {
            key: PREFIX.to_vec(),
            count_only: true,
            ..Default::default()
        })
        .await
        .expect("read the head revision")
        .header
        .expect("header")
        .revision;
    until_tx.send(head).expect("collector alive");
    let (responses, resume_errors) = tokio::time::timeout(Duration::from_secs(120), collector)
        .await
        .expect("the watch catches up with the writes")
        .expect("collector task");

    // Every revision exactly once, in order, each revision whole in one response.
    let mut delivered: Vec<Change> = Vec::new();
    let mut last_revision = 0;
    for response in &responses {
        let changes: Vec<Change> = response.events.iter().map(change_of).collect();
        if changes.is_empty() {
            continue;
        }
        assert!(
            changes[0].revision > last_revision,
            "revision {} delivered again or out of order after {last_revision}",
            changes[0].revision
        );
        assert!(
            changes.windows(2).all(|w| w[0].revision <= w[1].revision),
            "events out of order inside a response: {changes:?}"
        );
        last_revision = changes.last().map_or(last_revision, |c| c.revision);
        delivered.extend(changes);
    }
    delivered.retain(|c| c.revision <= head);

    let healthy = cluster
        .cluster
        .endpoints()
        .into_iter()
        .find(|url| *url != watched_url)
        .expect("another member");
    let reference = reference_history(&healthy, head).await;
    let delivered_revisions: BTreeSet<i64> = delivered.iter().map(|c| c.revision).collect();
    let missing: Vec<&i64> = acknowledged.difference(&delivered_revisions).collect();
    assert!(
        missing.is_empty(),
        "acknowledged writes missing from the watch: {missing:?}"
    );
    assert_eq!(
        delivered.len(),
        reference.len(),
        "the watch and the replay differ in length"
    );
    assert!(
        delivered == reference,
        "the resuming watch differs from the replayed history at {:?}",
        delivered.iter().zip(&reference).find(|(a, b)| a != b)
    );
    let served = members_served.lock().unwrap().clone();
    assert!(
        served.len() >= 2,
        "the watch must have moved to another member: {served:?}"
    );
    eprintln!(
        "watch: {} events in {} revisions up to {head} over {} responses, served by {} \
         members ({served:?}); {} acknowledged writes; killed leader {leader} and watched \
         member {watched}; {} resume errors reported: {resume_errors:?}",
        delivered.len(),
        delivered_revisions.len(),
        responses.len(),
        served.len(),
        acknowledged.len(),
        resume_errors.len()
    );
}
