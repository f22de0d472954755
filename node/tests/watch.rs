//! The Watch service on real processes: replay from history then live delivery, every
//! revision exactly once and in order; compaction; filters and cancel; a watcher that
//! does not read for a while; a watch resumed on another member after its member is
//! killed, checked against the final history; the six guarantees against what concurrent
//! writers were acknowledged; many watchers of one stream, each given exactly its own.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, put};
use tokio::sync::mpsc;
use tonic::Streaming;
use vane_proto::etcdserverpb::watch_client::WatchClient;
use vane_proto::etcdserverpb::watch_create_request::FilterType;
use vane_proto::etcdserverpb::watch_request::RequestUnion;
use vane_proto::etcdserverpb::{
    CompactionRequest, RangeRequest, WatchCancelRequest, WatchCreateRequest, WatchProgressRequest,
    WatchRequest, WatchResponse,
};
use vane_proto::mvccpb::event::EventType;

struct Stream {
    requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
}

async fn open(cluster: &Cluster, member: usize) -> Stream {
    let channel = common::channel(&cluster.members[member].client_url()).await;
    let (requests, rx) = mpsc::channel(16);
    let responses = WatchClient::new(channel)
        .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("watch stream")
        .into_inner();
    Stream {
        requests,
        responses,
    }
}

fn create(key: &str, range_end: &[u8], start_revision: i64) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: key.into(),
            range_end: range_end.to_vec(),
            start_revision,
            ..Default::default()
        })),
    }
}

impl Stream {
    async fn send(&self, request: WatchRequest) {
        self.requests
            .send(request)
            .await
            .expect("send watch request");
    }

    async fn next(&mut self) -> WatchResponse {
        tokio::time::timeout(Duration::from_secs(15), self.responses.message())
            .await
            .expect("a watch response in time")
            .expect("watch stream")
            .expect("stream open")
    }

    /// Collects (revision, key, value, is_put) until `count` events arrived, checking that
    /// the events of one revision never span two responses.
    async fn events(&mut self, count: usize) -> Vec<(i64, String, String, bool)> {
        let mut out = Vec::new();
        let mut last_revision_of_response = 0;
        while out.len() < count {
            let response = self.next().await;
            assert!(!response.canceled, "canceled: {response:?}");
            let revisions: Vec<i64> = response
                .events
                .iter()
                .filter_map(|e| e.kv.as_ref().map(|kv| kv.mod_revision))
                .collect();
            if let Some(first) = revisions.first() {
                assert!(
                    *first > last_revision_of_response,
                    "a revision was split or repeated across responses"
                );
            }
            if let Some(last) = revisions.last() {
                last_revision_of_response = *last;
            }
            for event in response.events {
                let kv = event.kv.expect("kv");
                out.push((
                    kv.mod_revision,
                    String::from_utf8_lossy(&kv.key).into_owned(),
                    String::from_utf8_lossy(&kv.value).into_owned(),
                    event.r#type == EventType::Put as i32,
                ));
            }
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_replays_history_then_delivers_live_changes_exactly_once_in_order() {
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut kv = cluster.kv(0).await;
    for n in 0..5 {
        put(&mut kv, &format!("w/{n}"), &n.to_string())
            .await
            .expect("put"); // revisions 2..6
    }
    put(&mut kv, "elsewhere", "x").await.expect("put"); // 7, outside the range
    let mut stream = open(&cluster, 1).await;
    stream.send(create("w/", b"w0", 3)).await;
    let created = stream.next().await;
    assert!(created.created && !created.canceled);
    let replayed = stream.events(4).await;
    assert_eq!(
        replayed.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );

    // Live, written through another member, including a delete.
    put(&mut kv, "w/live", "1").await.expect("put"); // 8
    kv.delete_range(vane_proto::etcdserverpb::DeleteRangeRequest {
        key: b"w/0".to_vec(),
        ..Default::default()
    })
    .await
    .expect("delete"); // 9
    let live = stream.events(2).await;
    assert_eq!(live[0], (8, "w/live".into(), "1".into(), true));
    assert_eq!(
        (live[1].0, live[1].1.as_str(), live[1].3),
        (9, "w/0", false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_cancels_older_watches_with_the_compact_revision_and_not_the_compacted_one() {
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut kv = cluster.kv(0).await;
    for n in 0..6 {
        put(&mut kv, "c", &n.to_string()).await.expect("put"); // revisions 2..7
    }
    kv.compact(CompactionRequest {
        revision: 5,
        physical: false,
    })
    .await
    .expect("compact");
    // Every member must have applied the compaction before the watches are opened.
    for i in 0..3 {
        let mut member_kv = cluster.kv(i).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        // Only the compaction's own refusal counts: any other error (a busy member, a
        // connection still being made) says nothing about what the member has applied.
        loop {
            let read = member_kv
                .range(RangeRequest {
                    key: b"c".to_vec(),
                    revision: 4,
                    serializable: true,
                    ..Default::default()
                })
                .await;
            if matches!(&read, Err(status) if status.message().contains("compacted")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member {i} never compacted: {read:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut stream = open(&cluster, 2).await;
    stream.send(create("c", b"", 4)).await;
    let created = stream.next().await;
    assert!(created.created);
    let canceled = stream.next().await;
    assert!(canceled.canceled, "{canceled:?}");
    assert_eq!(canceled.compact_revision, 5);
    assert!(canceled.events.is_empty());

    stream.send(create("c", b"", 5)).await;
    assert!(stream.next().await.created);
    let replayed = stream.events(3).await;
    assert_eq!(
        replayed.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_cancel_and_progress_requests_behave_as_in_etcd() {
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut kv = cluster.kv(0).await;
    let mut stream = open(&cluster, 0).await;
    stream
        .send(WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: b"f".to_vec(),
                filters: vec![FilterType::Noput as i32],
                watch_id: 42,
                ..Default::default()
            })),
        })
        .await;
    let created = stream.next().await;
    assert_eq!((created.watch_id, created.created), (42, true));
    put(&mut kv, "f", "1").await.expect("put");
    kv.delete_range(vane_proto::etcdserverpb::DeleteRangeRequest {
        key: b"f".to_vec(),
        ..Default::default()
    })
    .await
    .expect("delete");
    let only_delete = stream.events(1).await;
    assert!(!only_delete[0].3, "NOPUT delivers deletes only");

    stream
        .send(WatchRequest {
            request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})),
        })
        .await;
    let progress = stream.next().await;
    assert_eq!(progress.watch_id, -1);
    assert!(progress.events.is_empty());
    assert!(progress.header.map_or(0, |h| h.revision) >= 3);

    stream
        .send(WatchRequest {
            request_union: Some(RequestUnion::CancelRequest(WatchCancelRequest {
                watch_id: 42,
            })),
        })
        .await;
    let canceled = stream.next().await;
    assert_eq!((canceled.watch_id, canceled.canceled), (42, true));
}

/// One watcher's creation with the options this test varies.
fn create_with(
    watch_id: i64,
    key: &str,
    range_end: &[u8],
    start_revision: i64,
    prev_kv: bool,
    filters: Vec<FilterType>,
) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: key.into(),
            range_end: range_end.to_vec(),
            start_revision,
            prev_kv,
            watch_id,
            filters: filters.into_iter().map(|f| f as i32).collect(),
            ..Default::default()
        })),
    }
}

/// (revision, key, is put, previous value) of each event, by watch id.
type Received = std::collections::HashMap<i64, Vec<(i64, String, bool, Option<String>)>>;

/// The revisions watcher `id` received.
fn revisions(received: &Received, id: i64) -> Vec<i64> {
    received
        .get(&id)
        .map_or(Vec::new(), |events| events.iter().map(|e| e.0).collect())
}

/// Adds the events of `response` to what its watcher received.
fn record(received: &mut Received, response: WatchResponse) {
    for event in response.events {
        let kv = event.kv.expect("kv");
        received.entry(response.watch_id).or_default().push((
            kv.mod_revision,
            String::from_utf8_lossy(&kv.key).into_owned(),
            event.r#type == EventType::Put as i32,
            event
                .prev_kv
                .map(|p| String::from_utf8_lossy(&p.value).into_owned()),
        ));
    }
}

/// Reads responses until `done` says the events received so far are enough.
async fn receive_until(
    stream: &mut Stream,
    received: &mut Received,
    done: impl Fn(&Received) -> bool,
) {
    while !done(received) {
        let response = stream.next().await;
        assert!(
            !response.canceled || response.events.is_empty(),
            "{response:?}"
        );
        record(received, response);
    }
}

/// The watchers of one stream share its work (live ones are looked up by key as one
/// group; ones created from an older revision catch up on their own, then join it), and
/// still each receive exactly their own events: their key or range, their filter, their
/// previous values or none, from their start revision, and nothing after a cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_of_one_stream_each_receive_exactly_their_own_events() {
    let cluster = Cluster::start(1);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut kv = cluster.kv(0).await;
    for n in 0..5 {
        put(&mut kv, &format!("k/{n}"), "a").await.expect("put"); // revisions 2..6
    }
    let mut stream = open(&cluster, 0).await;
    let mut creates = Vec::new();
    for n in 0..5 {
        creates.push(create_with(
            10 + n,
            &format!("k/{n}"),
            b"",
            0,
            false,
            vec![],
        ));
    }
    creates.push(create_with(
        20,
        "k/1",
        b"",
        0,
        false,
        vec![FilterType::Noput],
    ));
    creates.push(create_with(30, "k/", b"k0", 0, true, vec![]));
    creates.push(create_with(40, "k/2", b"", 2, false, vec![]));
    creates.push(create_with(50, "k/", b"k0", 3, false, vec![]));
    let count = creates.len();
    for request in creates {
        stream.send(request).await;
    }
    let mut received = Received::new();
    let mut created = 0;
    while created < count {
        let response = stream.next().await;
        if response.created {
            assert!(!response.canceled, "{response:?}");
            created += 1;
        }
        record(&mut received, response);
    }

    for n in 0..5 {
        put(&mut kv, &format!("k/{n}"), "b").await.expect("put"); // 7..11
    }
    kv.delete_range(vane_proto::etcdserverpb::DeleteRangeRequest {
        key: b"k/1".to_vec(),
        ..Default::default()
    })
    .await
    .expect("delete"); // 12
    put(&mut kv, "other", "x").await.expect("put"); // 13
    put(&mut kv, "k/2", "c").await.expect("put"); // 14
    let expected_counts = [
        (10, 1),
        (11, 2),
        (12, 2),
        (13, 1),
        (14, 1),
        (20, 1),
        (30, 7),
        (40, 3),
        (50, 11),
    ];
    receive_until(&mut stream, &mut received, |r| {
        expected_counts
            .iter()
            .all(|(id, n)| r.get(id).map_or(0, Vec::len) >= *n)
    })
    .await;
    for n in 0..5 {
        assert_eq!(
            received[&(10 + n)][0],
            (7 + n, format!("k/{n}"), true, None)
        );
    }
    assert_eq!(revisions(&received, 11), vec![8, 12]);
    assert_eq!(revisions(&received, 12), vec![9, 14]);
    assert_eq!(
        received[&20],
        vec![(12, "k/1".to_string(), false, None)],
        "a NOPUT watcher gets the delete only"
    );
    let prefix: Vec<(i64, bool, Option<String>)> = received[&30]
        .iter()
        .map(|e| (e.0, e.2, e.3.clone()))
        .collect();
    let b = Some("b".to_string());
    let a = Some("a".to_string());
    assert_eq!(
        prefix,
        vec![
            (7, true, a.clone()),
            (8, true, a.clone()),
            (9, true, a.clone()),
            (10, true, a.clone()),
            (11, true, a),
            (12, false, b.clone()),
            (14, true, b)
        ],
        "the range watcher with prev_kv"
    );
    assert_eq!(
        revisions(&received, 40),
        vec![4, 9, 14],
        "replayed from revision 2, then live"
    );
    assert_eq!(
        revisions(&received, 50),
        vec![3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14],
        "replayed from revision 3, then live"
    );
    assert!(
        received[&50].iter().all(|e| e.3.is_none()),
        "no previous values unasked"
    );

    // A canceled watcher gets nothing more; the others go on.
    stream
        .send(WatchRequest {
            request_union: Some(RequestUnion::CancelRequest(WatchCancelRequest {
                watch_id: 10,
            })),
        })
        .await;
    loop {
        let response = stream.next().await;
        if response.canceled {
            assert_eq!(response.watch_id, 10);
            break;
        }
    }
    put(&mut kv, "k/0", "d").await.expect("put"); // 15
    put(&mut kv, "k/3", "d").await.expect("put"); // 16
    receive_until(&mut stream, &mut received, |r| {
        r[&13].len() >= 2 && r[&30].len() >= 9 && r[&50].len() >= 13
    })
    .await;
    assert_eq!(
        revisions(&received, 10),
        vec![7],
        "nothing after the cancel"
    );
    assert_eq!(revisions(&received, 13), vec![10, 16]);
    assert_eq!(&revisions(&received, 30)[7..], &[15, 16]);
    assert_eq!(&revisions(&received, 50)[11..], &[15, 16]);
}

/// The member's resident memory, in KiB.
fn rss_kib(cluster: &Cluster, member: usize) -> u64 {
    let pid = cluster.members[member]
        .process
        .as_ref()
        .expect("running")
        .id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// One sample of a metric from the member's admin endpoint.
fn metric(cluster: &Cluster, member: usize, name: &str) -> f64 {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", cluster.members[member].metrics_port))
            .expect("admin endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("response");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_reading_later_receives_everything_in_order() {
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let watched = 1;
    let mut stream = open(&cluster, watched).await;
    stream.send(create("slow/", b"slow0", 0)).await;
    assert!(stream.next().await.created);
    let rss_before = rss_kib(&cluster, watched);
    // More events than the stream's queue and the member's in-memory cache hold, while
    // the watcher reads nothing: it falls behind the cache and must catch up from disk.
    let writes = 20_000;
    let value = "v".repeat(512);
    let mut handles = Vec::new();
    let writers = 16;
    for client in 0..writers {
        let mut kv = cluster.kv(client % 3).await;
        let value = value.clone();
        handles.push(tokio::spawn(async move {
            for n in (client..writes).step_by(writers) {
                put(&mut kv, &format!("slow/{n:05}"), &value)
                    .await
                    .expect("put");
            }
        }));
    }
    for h in handles {
        h.await.expect("writer");
    }
    let rss_stalled = rss_kib(&cluster, watched);
    let events = stream.events(writes).await;
    let rss_after = rss_kib(&cluster, watched);
    eprintln!(
        "slow watcher: member RSS {rss_before} KiB before, {rss_stalled} KiB with {writes} events \
         undelivered, {rss_after} KiB after catching up; {} catch-up reads",
        metric(&cluster, watched, "vane_watch_catchup_reads_total")
    );
    let revisions: Vec<i64> = events.iter().map(|e| e.0).collect();
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "out of order or duplicated"
    );
    assert_eq!(revisions.len(), writes);
    assert_eq!(
        *revisions.last().expect("events") - revisions[0] + 1,
        writes as i64,
        "a gap"
    );
    // It went the slow path (the stored history), and is back on the live path.
    assert!(metric(&cluster, watched, "vane_watch_catchup_reads_total") > 0.0);
    assert_eq!(metric(&cluster, watched, "vane_watch_slow_watchers"), 0.0);
    assert_eq!(metric(&cluster, watched, "vane_watchers"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumed_on_another_member_after_a_kill_has_no_gap_and_no_duplicate() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let watched = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let mut stream = open(&cluster, watched).await;
    stream.send(create("r/", b"r0", 0)).await;
    assert!(stream.next().await.created);

    let mut kv = cluster.kv(other).await;
    let mut seen = Vec::new();
    for n in 0..100 {
        put(&mut kv, &format!("r/{n:03}"), &n.to_string())
            .await
            .expect("put");
    }
    seen.extend(stream.events(100).await);
    cluster.kill(watched);
    for n in 100..200 {
        put(&mut kv, &format!("r/{n:03}"), &n.to_string())
            .await
            .expect("put");
    }
    // Resume on another member from the last delivered revision + 1.
    let resume_from = seen.last().expect("events").0 + 1;
    let mut resumed = open(&cluster, other).await;
    resumed.send(create("r/", b"r0", resume_from)).await;
    assert!(resumed.next().await.created);
    seen.extend(resumed.events(100).await);

    let keys: Vec<String> = seen.iter().map(|e| e.1.clone()).collect();
    let expected: Vec<String> = (0..200).map(|n| format!("r/{n:03}")).collect();
    assert_eq!(keys, expected, "every write exactly once, in order");
    assert!(
        seen.windows(2).all(|w| w[0].0 + 1 == w[1].0),
        "revisions are consecutive"
    );
}

/// What writers were told: revision → the (key, is_put) events that revision made.
type Acknowledged = std::collections::BTreeMap<i64, Vec<(String, bool)>>;

/// Four writers on `g/`: puts, deletes and three-key transactions, each recording the
/// revision it was acknowledged at and the events that revision must carry.
async fn write_concurrently(cluster: &Cluster, rounds: usize) -> Acknowledged {
    use vane_proto::etcdserverpb::request_op::Request as Op;
    use vane_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RequestOp, TxnRequest};
    let mut handles = Vec::new();
    for writer in 0..4usize {
        let mut kv = cluster.kv(writer % cluster.members.len()).await;
        handles.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for round in 0..rounds {
                let key = |n: usize| format!("g/{writer}/{n:02}");
                match round % 4 {
                    0 | 1 => {
                        let k = key(round % 20);
                        let revision = put(&mut kv, &k, &round.to_string()).await.expect("put");
                        acknowledged.push((revision, vec![(k, true)]));
                    }
                    2 => {
                        let k = key((round + 19) % 20);
                        let response = kv
                            .delete_range(DeleteRangeRequest {
                                key: k.clone().into_bytes(),
                                ..Default::default()
                            })
                            .await
                            .expect("delete")
                            .into_inner();
                        if response.deleted == 1 {
                            let revision = response.header.expect("header").revision;
                            acknowledged.push((revision, vec![(k, false)]));
                        }
                    }
                    _ => {
                        let keys: Vec<String> = (0..3).map(|i| key(20 + i)).collect();
                        let response = kv
                            .txn(TxnRequest {
                                success: keys
                                    .iter()
                                    .map(|k| RequestOp {
                                        request: Some(Op::RequestPut(PutRequest {
                                            key: k.clone().into_bytes(),
                                            value: round.to_string().into_bytes(),
                                            ..Default::default()
                                        })),
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                            .await
                            .expect("txn")
                            .into_inner();
                        let revision = response.header.expect("header").revision;
                        acknowledged
                            .push((revision, keys.into_iter().map(|k| (k, true)).collect()));
                    }
                }
            }
            acknowledged
        }));
    }
    let mut all = Acknowledged::new();
    for handle in handles {
        for (revision, mut events) in handle.await.expect("writer") {
            events.sort();
            assert!(
                all.insert(revision, events).is_none(),
                "two writes acknowledged at one revision"
            );
        }
    }
    all
}

/// etcd's six watch guarantees, against what concurrent writers were acknowledged:
/// ordered, unique, reliable (no gap: exactly the acknowledged events), atomic (a
/// revision's events in one response), resumable (a second stream on another member from
/// the middle), bookmarkable (a progress notification at the end carries the revision).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_six_guarantees_hold_under_concurrent_writers() {
    let cluster = Cluster::start_with(3, &["--watch-progress-notify-interval", "300"]);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut stream = open(&cluster, 1).await;
    stream
        .send(WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: b"g/".to_vec(),
                range_end: b"g0".to_vec(),
                start_revision: 1,
                progress_notify: true,
                ..Default::default()
            })),
        })
        .await;
    assert!(stream.next().await.created);
    let acknowledged = write_concurrently(&cluster, 120).await;
    let last = *acknowledged.keys().last().expect("writes");

    // Collect until a progress notification says the watcher has seen everything up
    // to the last write (bookmarkable), checking response by response that revisions
    // only grow (ordered, unique) and never span two responses (atomic).
    let mut seen: Vec<(i64, String, String, bool)> = Vec::new();
    let mut previous = 0;
    loop {
        let response = stream.next().await;
        assert!(!response.canceled, "{response:?}");
        if response.events.is_empty() {
            if response.header.expect("header").revision >= last {
                break;
            }
            continue;
        }
        let first = response.events[0].kv.as_ref().expect("kv").mod_revision;
        assert!(
            first > previous,
            "revision {first} out of order, repeated or split across responses"
        );
        for event in response.events {
            let kv = event.kv.expect("kv");
            assert!(
                kv.mod_revision >= previous,
                "out of order within a response"
            );
            previous = kv.mod_revision;
            seen.push((
                kv.mod_revision,
                String::from_utf8_lossy(&kv.key).into_owned(),
                String::from_utf8_lossy(&kv.value).into_owned(),
                event.r#type == EventType::Put as i32,
            ));
        }
    }
    let mut delivered = Acknowledged::new();
    for (revision, key, _, is_put) in &seen {
        delivered
            .entry(*revision)
            .or_default()
            .push((key.clone(), *is_put));
    }
    for events in delivered.values_mut() {
        events.sort();
    }
    // Reliable: exactly what the writers were told, nothing more, nothing less.
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|(r, e)| delivered.get(r) != Some(e))
        .take(5)
        .collect();
    let extra: Vec<_> = delivered
        .iter()
        .filter(|(r, _)| !acknowledged.contains_key(r))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "acknowledged but not delivered as acknowledged: {missing:?}; delivered but never \
         acknowledged: {extra:?}"
    );

    // Resumable: from the middle on another member, the same suffix.
    let middle = *acknowledged
        .keys()
        .nth(acknowledged.len() / 2)
        .expect("middle");
    let mut resumed = open(&cluster, 2).await;
    resumed.send(create("g/", b"g0", middle)).await;
    assert!(resumed.next().await.created);
    let suffix: usize = acknowledged.range(middle..).map(|(_, e)| e.len()).sum();
    let replay = resumed.events(suffix).await;
    let tail: Vec<_> = seen.iter().filter(|e| e.0 >= middle).cloned().collect();
    assert_eq!(replay, tail);
}
