//! The watch workload: writers put and delete keys under `watch/` while watchers follow
//! the prefix, and the store's own history is read back at the end as the ground truth.
//!
//! Watchers come in kinds, so that every guarantee gets exercised: half start from an
//! explicit revision (a replay, then live events), half "from now"; some ask for progress
//! notifications (bookmarks). Every watcher ends its session when the stream breaks, is
//! canceled, or — at random every few seconds — on purpose, and resumes on the *next*
//! node from the revision after the last one it is sure of: its last event, its last
//! bookmark, or for a "from now" session the revision its creation reported.
//!
//! The ground truth is independent of the watch code: after the heal, a Range of the
//! prefix at every revision of the run (MVCC reads of the past), diffed revision by
//! revision into events.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use vane_proto::etcdserverpb::watch_client::WatchClient;
use vane_proto::etcdserverpb::watch_request::RequestUnion;
use vane_proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, WatchCreateRequest, WatchRequest,
};
use vane_proto::mvccpb::event::EventType;

use super::{
    Client, Completion, OPERATION_DEADLINE_MS, WorkloadContext, WorkloadOutput, clients_for,
    header_revision, perform, prefix_end,
};
use crate::checker::watch::{
    EventKind, KeyRange, RevisionRecord, WatchEvent, WatchResponseRecord, WatchSession, WatcherLog,
};
use crate::error::JepsenError;
use crate::etcd_rpc::{self, with_deadline};
use crate::history::Call;
use crate::nodes::{client_ip, client_url};
use crate::run_clock::RunClock;

/// The prefix every writer writes under and every watcher watches.
pub const WATCH_PREFIX: &str = "watch/";
/// Distinct keys the writers use.
const KEYS: u64 = 8;
/// Pause between one writer's writes, in milliseconds (range): the ground truth costs one
/// Range per revision, so the write rate is kept moderate.
const WRITER_THINK_MS: (u64, u64) = (10, 40);
/// How long a watcher keeps one session before resuming elsewhere on purpose, in
/// milliseconds (range).
const SESSION_MS: (u64, u64) = (4000, 12_000);
/// How long the watchers get to catch up with the final revision after the heal, in
/// milliseconds.
const CATCH_UP_MS: u64 = 20_000;
/// Concurrent Range requests while reading back the store's history.
const HISTORY_READS_IN_FLIGHT: usize = 8;

/// Runs writers and watchers; after the heal lets the watchers catch up and reads the
/// store's history back.
pub async fn run(context: WorkloadContext) -> Result<WorkloadOutput, JepsenError> {
    let writers = context.clients();
    let watcher_count = context.nodes + 1;
    let total = writers + watcher_count + 1;
    let clients = clients_for(&context, 0, writers, total)?;
    let mut reader = Client::new(&context, writers + watcher_count, total, 1)?;
    let start_revision = current_revision(&mut reader, OPERATION_DEADLINE_MS)
        .await
        .unwrap_or(1)
        + 1;

    let (stop_sender, stop) = tokio::sync::watch::channel(None::<i64>);
    let next_value = Arc::new(AtomicI64::new(1));
    let watcher_tasks: Vec<_> = (0..watcher_count)
        .map(|number| {
            let watcher = Watcher::new(&context, number, writers + number, start_revision);
            tokio::spawn(watcher.run(context.sink.clock(), context.nodes, stop.clone()))
        })
        .collect();
    let writer_tasks: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(writer_loop(client, context.clone(), next_value.clone())))
        .collect();
    for task in writer_tasks {
        let _ = task.await;
    }

    let wait = context.final_read_wait(context.wait_for_heal().await);
    let mut output = WorkloadOutput::default();
    let final_revision = retry_current_revision(&mut reader, wait).await;
    match final_revision {
        Some(revision) => {
            let _ = stop_sender.send(Some(revision));
        }
        None => {
            output
                .notes
                .push("could not learn the final revision; watchers stopped at once".to_string());
            let _ = stop_sender.send(Some(0));
        }
    }
    for task in watcher_tasks {
        if let Ok(log) = task.await {
            output.watchers.push(log);
        }
    }
    if let Some(final_revision) = final_revision {
        match read_history(&reader, start_revision, final_revision).await {
            Ok(revisions) => output.revisions = revisions,
            Err(error) => output
                .notes
                .push(format!("could not read the store's history back: {error}")),
        }
    }
    Ok(output)
}

async fn writer_loop(mut client: Client, context: WorkloadContext, next_value: Arc<AtomicI64>) {
    while Instant::now() < context.end {
        let key = format!("{WATCH_PREFIX}{}", client.rng.random_range(0..KEYS));
        let mut kv = client.kv();
        if client.rng.random_range(0..10) == 0 {
            let request = DeleteRangeRequest {
                key: key.as_bytes().to_vec(),
                ..DeleteRangeRequest::default()
            };
            let response = async {
                match with_deadline(OPERATION_DEADLINE_MS, async {
                    Ok(kv.delete_range(request).await?.into_inner())
                })
                .await
                {
                    Ok(response) => Completion::Ok {
                        call: Call::Delete,
                        revision: header_revision(response.header.as_ref()),
                    },
                    Err(status) => Completion::from_write_error(&status),
                }
            };
            perform(
                &mut client,
                &context.sink,
                Some(&key),
                Call::Delete,
                response,
            )
            .await;
        } else {
            let value = next_value.fetch_add(1, Ordering::Relaxed);
            let request = PutRequest {
                key: key.as_bytes().to_vec(),
                value: value.to_string().into_bytes(),
                ..PutRequest::default()
            };
            let response = async {
                match with_deadline(OPERATION_DEADLINE_MS, async {
                    Ok(kv.put(request).await?.into_inner())
                })
                .await
                {
                    Ok(response) => Completion::Ok {
                        call: Call::Write(value),
                        revision: header_revision(response.header.as_ref()),
                    },
                    Err(status) => Completion::from_write_error(&status),
                }
            };
            perform(
                &mut client,
                &context.sink,
                Some(&key),
                Call::Write(value),
                response,
            )
            .await;
        }
        client.think(WRITER_THINK_MS).await;
    }
}

/// The store's current revision, by a linearizable Range.
async fn current_revision(reader: &mut Client, deadline_ms: u64) -> Option<i64> {
    let mut kv = reader.kv();
    let request = RangeRequest {
        key: WATCH_PREFIX.as_bytes().to_vec(),
        range_end: prefix_end(WATCH_PREFIX),
        count_only: true,
        ..RangeRequest::default()
    };
    with_deadline(deadline_ms, async {
        Ok(kv.range(request).await?.into_inner())
    })
    .await
    .ok()
    .and_then(|response| header_revision(response.header.as_ref()))
}

async fn retry_current_revision(reader: &mut Client, wait: Duration) -> Option<i64> {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Some(revision) = current_revision(reader, OPERATION_DEADLINE_MS).await {
            return Some(revision);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    None
}

/// The prefix's contents at one revision: key to value and mod revision.
type PrefixState = BTreeMap<String, (String, i64)>;

/// Every revision's events under the prefix, from `first` to `last`, by diffing the
/// prefix's contents at consecutive revisions.
async fn read_history(
    reader: &Client,
    first: i64,
    last: i64,
) -> Result<Vec<RevisionRecord>, String> {
    if last < first {
        return Ok(Vec::new());
    }
    let revisions: Vec<i64> = ((first - 1).max(1)..=last).collect();
    let states: Vec<(i64, Result<PrefixState, String>)> =
        futures::stream::iter(revisions.into_iter().map(|revision| {
            let mut kv = reader.kv();
            async move {
                let request = RangeRequest {
                    key: WATCH_PREFIX.as_bytes().to_vec(),
                    range_end: prefix_end(WATCH_PREFIX),
                    revision,
                    ..RangeRequest::default()
                };
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let response = with_deadline(OPERATION_DEADLINE_MS, async {
                        Ok(kv.range(request.clone()).await?.into_inner())
                    })
                    .await;
                    match response {
                        Ok(response) => {
                            let state = response
                                .kvs
                                .iter()
                                .map(|kv| {
                                    (
                                        String::from_utf8_lossy(&kv.key).into_owned(),
                                        (
                                            String::from_utf8_lossy(&kv.value).into_owned(),
                                            kv.mod_revision,
                                        ),
                                    )
                                })
                                .collect();
                            return (revision, Ok(state));
                        }
                        Err(status) if attempt >= 5 => {
                            return (
                                revision,
                                Err(format!(
                                    "Range at revision {revision}: {}",
                                    etcd_rpc::describe(&status)
                                )),
                            );
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
        }))
        .buffered(HISTORY_READS_IN_FLIGHT)
        .collect()
        .await;

    let mut records = Vec::new();
    let mut previous: Option<PrefixState> = None;
    for (revision, state) in states {
        let state = state?;
        if let Some(before) = &previous {
            let mut events: Vec<WatchEvent> = state
                .iter()
                .filter(|(_, (_, mod_revision))| *mod_revision == revision)
                .map(|(key, (value, _))| WatchEvent {
                    key: key.clone(),
                    kind: EventKind::Put,
                    value: Some(value.clone()),
                    mod_revision: revision,
                })
                .collect();
            events.extend(
                before
                    .keys()
                    .filter(|key| !state.contains_key(*key))
                    .map(|key| WatchEvent {
                        key: key.clone(),
                        kind: EventKind::Delete,
                        value: None,
                        mod_revision: revision,
                    }),
            );
            if !events.is_empty() {
                records.push(RevisionRecord { revision, events });
            }
        }
        previous = Some(state);
    }
    Ok(records)
}

/// One watcher: its sessions so far and where to resume.
struct Watcher {
    name: String,
    client_index: usize,
    rng: StdRng,
    slot_offset: usize,
    first_start_revision: i64,
    progress_notify: bool,
    sessions: Vec<WatchSession>,
    /// The highest revision this watcher is sure to have seen everything up to.
    covered_through: Option<i64>,
}

impl Watcher {
    fn new(
        context: &WorkloadContext,
        number: usize,
        client_index: usize,
        start_revision: i64,
    ) -> Self {
        Self {
            name: format!("w{number}"),
            client_index,
            rng: StdRng::seed_from_u64(context.seed ^ (0x7761_7463_6800 + number as u64)),
            slot_offset: number,
            first_start_revision: if number.is_multiple_of(2) {
                start_revision
            } else {
                0
            },
            progress_notify: number % 3 == 1,
            sessions: Vec::new(),
            covered_through: None,
        }
    }

    /// Sessions until told to stop: then, once it has covered the final revision (or
    /// the catch-up time has run out), returns its log.
    async fn run(
        mut self,
        clock: RunClock,
        nodes: usize,
        mut stop: tokio::sync::watch::Receiver<Option<i64>>,
    ) -> WatcherLog {
        let mut catch_up_deadline: Option<Instant> = None;
        let mut session_number = 0usize;
        loop {
            let target = *stop.borrow();
            if let Some(target) = target {
                let deadline = *catch_up_deadline
                    .get_or_insert_with(|| Instant::now() + Duration::from_millis(CATCH_UP_MS));
                if self
                    .covered_through
                    .is_some_and(|covered| covered >= target)
                    || Instant::now() >= deadline
                {
                    break;
                }
            }
            let slot = (self.slot_offset + session_number) % nodes + 1;
            session_number += 1;
            let start_revision = match self.covered_through {
                Some(covered) => covered + 1,
                None if self.sessions.is_empty() => self.first_start_revision,
                None => self
                    .sessions
                    .last()
                    .map_or(0, |session| session.start_revision),
            };
            let session_ms = self.rng.random_range(SESSION_MS.0..=SESSION_MS.1);
            let session = self
                .session(
                    clock,
                    slot,
                    start_revision,
                    session_ms,
                    &mut stop,
                    catch_up_deadline,
                )
                .await;
            if let Some(session) = session {
                self.sessions.push(session);
            } else {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        WatcherLog {
            watcher: self.name,
            sessions: self.sessions,
        }
    }

    /// One watch stream on `slot`, until it breaks, is canceled, its time is up, or the
    /// catch-up target is reached. `None` when the stream could not even be opened.
    async fn session(
        &mut self,
        clock: RunClock,
        slot: usize,
        start_revision: i64,
        session_ms: u64,
        stop: &mut tokio::sync::watch::Receiver<Option<i64>>,
        catch_up_deadline: Option<Instant>,
    ) -> Option<WatchSession> {
        let channel = etcd_rpc::channel(
            &client_url(slot),
            Some(IpAddr::V4(client_ip(self.client_index))),
        )
        .ok()?;
        let mut client = WatchClient::new(channel);
        let (requests, receiver) = mpsc::channel(4);
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: WATCH_PREFIX.as_bytes().to_vec(),
                range_end: prefix_end(WATCH_PREFIX),
                start_revision,
                progress_notify: self.progress_notify,
                ..WatchCreateRequest::default()
            })),
        };
        requests.send(create).await.ok()?;
        let opened = tokio::time::timeout(
            Duration::from_millis(OPERATION_DEADLINE_MS),
            client.watch(ReceiverStream::new(receiver)),
        )
        .await;
        let mut stream = match opened {
            Ok(Ok(response)) => response.into_inner(),
            _ => return None,
        };
        let mut session = WatchSession {
            start_revision,
            range: KeyRange::Prefix {
                prefix: WATCH_PREFIX.to_string(),
            },
            responses: Vec::new(),
        };
        let session_end = Instant::now() + Duration::from_millis(session_ms);
        loop {
            let target = *stop.borrow();
            if let Some(target) = target
                && (self
                    .covered_through
                    .is_some_and(|covered| covered >= target)
                    || catch_up_deadline.is_some_and(|deadline| Instant::now() >= deadline))
            {
                break;
            }
            let until = match catch_up_deadline {
                Some(deadline) => session_end.min(deadline),
                None => session_end,
            };
            let next = tokio::select! {
                next = stream.next() => next,
                _ = tokio::time::sleep_until(until.into()) => break,
                _ = stop.changed() => continue,
            };
            let Some(Ok(response)) = next else {
                break;
            };
            let record = WatchResponseRecord {
                watch_id: response.watch_id,
                header_revision: header_revision(response.header.as_ref()).unwrap_or(0),
                created: response.created,
                canceled: response.canceled,
                compact_revision: response.compact_revision,
                fragment: response.fragment,
                events: response
                    .events
                    .iter()
                    .filter_map(|event| {
                        let kv = event.kv.as_ref()?;
                        let kind = if event.r#type == EventType::Delete as i32 {
                            EventKind::Delete
                        } else {
                            EventKind::Put
                        };
                        Some(WatchEvent {
                            key: String::from_utf8_lossy(&kv.key).into_owned(),
                            kind,
                            value: (kind == EventKind::Put)
                                .then(|| String::from_utf8_lossy(&kv.value).into_owned()),
                            mod_revision: kv.mod_revision,
                        })
                    })
                    .collect(),
                time_ns: clock.now_ns(),
            };
            self.note_coverage(&record, start_revision);
            let canceled = record.canceled;
            session.responses.push(record);
            if canceled {
                break;
            }
        }
        drop(requests);
        Some(session)
    }

    /// Moves `covered_through` up by what `record` proves was delivered.
    fn note_coverage(&mut self, record: &WatchResponseRecord, start_revision: i64) {
        let mut covered = self.covered_through;
        if let Some(last) = record.events.last() {
            // A fragment's revision may continue in the next response.
            let through = if record.fragment {
                last.mod_revision - 1
            } else {
                last.mod_revision
            };
            covered = covered.max(Some(through));
        }
        if record.is_progress_notify() {
            covered = covered.max(Some(record.header_revision));
        }
        if record.created && start_revision == 0 {
            covered = covered.max(Some(record.header_revision));
        }
        self.covered_through = covered;
    }
}
