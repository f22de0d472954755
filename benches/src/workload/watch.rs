//! `watch`: watchers while one writer puts. Either every watcher watches the run's whole
//! key prefix (fan-out: each put reaches every watcher), or each watcher watches one of
//! `watched_keys` keys alone (scale: many watchers, each put reaching a few of them). The
//! watchers share `streams` gRPC watch streams, as real clients multiplex their watches.
//!
//! Each watched key (or the whole prefix) is a *target* with its own sequence of puts:
//! every value carries its target's sequence number and the send time, so each watcher
//! measures each event's delivery latency and checks that it received every acknowledged
//! put of its target exactly once, in order.
//!
//! Phases: note the current revision; open every stream and create its watches from the
//! next revision, each confirmed by the server before the writer starts; run the writer
//! on the schedule; tell the streams the last acknowledged sequence number of each
//! target; let them drain until every watcher has it or the drain timeout passes; count.
//! Writer and watchers run in the same process and time against the same monotonic
//! clock, so delivery latency needs no clock synchronisation.

use std::collections::HashMap;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, TryStreamExt};
use rand::rngs::SmallRng;
use tokio::sync::watch as latest;
use tokio::time::{Duration, Instant};
use tonic::Streaming;
use tonic::transport::Channel;
use vane_proto::etcdserverpb::kv_client::KvClient;
use vane_proto::etcdserverpb::watch_client::WatchClient;
use vane_proto::etcdserverpb::watch_request::RequestUnion;
use vane_proto::etcdserverpb::{
    PutRequest, RangeRequest, WatchCreateRequest, WatchRequest, WatchResponse,
};
use vane_proto::mvccpb::Event;

use crate::config::{Workload, WorkloadConfig};
use crate::connection_pool::{ConnectionPool, connect_kv};
use crate::driver::{Operation, drive_clients};
use crate::error::BenchError;
use crate::keyspace::{KeySpace, prefix_range_end};
use crate::outcome::{Completed, Failure, OperationKind, within_timeout};
use crate::recording::Recording;
use crate::report::{Report, WatchReport, WatcherDelivery};

use super::watch_delivery::{DeliveryTracker, WriterLog};

/// Watch streams being set up at once.
const STREAM_SETUPS_IN_FLIGHT_MAX: usize = 32;
/// Create requests queued on one stream: they are sent one at a time, each after the
/// previous one was confirmed, so one slot is all a stream needs.
const CREATE_REQUESTS_QUEUED_MAX: usize = 1;
/// Bytes of a value taken by the sequence number, then by the send time.
const SEQ_BYTES: usize = 8;

/// What the watchers watch: the unit of sequence numbering and of loss checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchTargets {
    /// One target, the whole prefix: every watcher sees every put.
    Prefix,
    /// `n` targets, keys `0..n` of the key space, each watched by some of the watchers.
    Keys(u64),
}

impl WatchTargets {
    fn new(watched_keys: Option<u64>) -> Self {
        watched_keys.map_or(WatchTargets::Prefix, WatchTargets::Keys)
    }

    /// How many targets there are; the writer takes them in turn.
    fn count(self) -> usize {
        match self {
            WatchTargets::Prefix => 1,
            WatchTargets::Keys(keys) => usize::try_from(keys).unwrap_or(usize::MAX),
        }
    }

    /// The target of `watcher` when the watchers share `streams` streams. Watcher `i` is
    /// on stream `i % streams`; its place on that stream, `i / streams`, is added to the
    /// stream's number, so one stream watches distinct keys and each key's watchers are
    /// spread over the streams, as with many clients each watching a few keys. With one
    /// stream per watcher this is plainly `i % keys`.
    fn of_watcher(self, watcher: usize, streams: usize) -> usize {
        (watcher % streams + watcher / streams) % self.count()
    }

    /// The create request of a watch on `target`, from `start_revision`.
    fn create_request(
        self,
        key_space: &KeySpace,
        prefix: &[u8],
        target: usize,
        start_revision: i64,
    ) -> WatchRequest {
        let (key, range_end) = match self {
            WatchTargets::Prefix => (prefix.to_vec(), prefix_range_end(prefix)),
            WatchTargets::Keys(_) => (key_space.key(target as u64), Vec::new()),
        };
        WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key,
                range_end,
                start_revision,
                ..WatchCreateRequest::default()
            })),
        }
    }
}

/// The `watch` workload's parameters, taken out of [`Workload::Watch`].
struct WatchPlan {
    watchers: usize,
    streams: usize,
    targets: WatchTargets,
    drain_timeout: Duration,
    writer_endpoint: Option<String>,
}

impl WatchPlan {
    fn of(workload: &Workload) -> Option<Self> {
        match workload {
            Workload::Watch {
                watchers,
                streams,
                watched_keys,
                drain_timeout_ms,
                writer_endpoint,
            } => Some(WatchPlan {
                watchers: *watchers,
                streams: *streams,
                targets: WatchTargets::new(*watched_keys),
                drain_timeout: Duration::from_millis(*drain_timeout_ms),
                writer_endpoint: writer_endpoint.clone(),
            }),
            _ => None,
        }
    }

    /// The watchers on stream `stream`.
    fn watchers_of_stream(&self, stream: usize) -> impl Iterator<Item = usize> + use<> {
        (stream..self.watchers).step_by(self.streams)
    }

    /// The target watcher `watcher` watches.
    fn target_of(&self, watcher: usize) -> usize {
        self.targets.of_watcher(watcher, self.streams)
    }
}

/// Runs the `watch` workload `config` describes.
pub async fn run(
    config: &WorkloadConfig,
    pool: &ConnectionPool,
    key_space: &KeySpace,
) -> Result<Report, BenchError> {
    let Some(plan) = WatchPlan::of(&config.workload) else {
        return Err(BenchError::InvalidConfig {
            flag: "workload",
            reason: format!("`{}` is not a watch workload", config.workload.name()),
        });
    };
    let writer_kv = match &plan.writer_endpoint {
        Some(endpoint) => connect_kv(config, endpoint).await?,
        None => pool.kv(0),
    };
    let prefix = config.key_prefix.as_bytes().to_vec();
    let start_revision = current_revision(config, writer_kv.clone(), &prefix).await? + 1;
    // Values are stamped against this clock from the first setup step on, so an event
    // that arrived during setup would still be timed correctly.
    let clock_start = Instant::now();
    let setup = StreamSetup {
        config,
        pool,
        key_space,
        plan: &plan,
        prefix: &prefix,
        start_revision,
        clock_start,
    };
    let streams = futures::stream::iter(0..plan.streams)
        .map(|stream| setup.open(stream))
        .buffered(STREAM_SETUPS_IN_FLIGHT_MAX)
        .try_collect::<Vec<_>>()
        .await?;

    let start = Instant::now();
    let (writer_finished, writer_finished_receiver) = latest::channel(None);
    let stream_tasks: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            tokio::spawn(
                stream.receive_until_drained(writer_finished_receiver.clone(), plan.drain_timeout),
            )
        })
        .collect();

    let writer = WatchWriter::new(config, writer_kv, key_space, plan.targets, clock_start);
    let measured = drive_clients(vec![writer], super::schedule(config, start), start).await;
    let writer_logs = measured
        .as_ref()
        .ok()
        .and_then(|measured| measured.operations.first())
        .map(|writer| writer.logs.clone())
        .unwrap_or_else(|| vec![WriterLog::default(); plan.targets.count()]);
    // Sent even if the writer failed, so that the streams stop instead of draining forever.
    writer_finished.send_replace(Some(
        writer_logs
            .iter()
            .map(WriterLog::last_acknowledged_seq)
            .collect(),
    ));
    let measured = measured?;

    let mut recording = measured.recording;
    let mut per_watcher = Vec::with_capacity(plan.watchers);
    for task in stream_tasks {
        let stream = task.await?;
        recording.merge(&stream.recording)?;
        per_watcher.extend(stream.watchers.iter().map(|watcher| {
            watcher
                .tracker
                .finish(watcher.index, &writer_logs[watcher.target])
        }));
    }
    per_watcher.sort_by_key(|delivery| delivery.watcher);
    let events_expected = (0..plan.watchers)
        .map(|watcher| writer_logs[plan.target_of(watcher)].puts_acknowledged())
        .sum();
    let mut report = Report::new(config.clone(), start.elapsed(), &recording);
    report.watch = Some(watch_report(
        &plan,
        &writer_logs,
        events_expected,
        per_watcher,
    ));
    Ok(report)
}

fn watch_report(
    plan: &WatchPlan,
    writer_logs: &[WriterLog],
    events_expected: u64,
    per_watcher: Vec<WatcherDelivery>,
) -> WatchReport {
    let sum = |field: fn(&WatcherDelivery) -> u64| per_watcher.iter().map(field).sum();
    WatchReport {
        watchers: plan.watchers,
        streams: plan.streams,
        puts_acknowledged: writer_logs.iter().map(WriterLog::puts_acknowledged).sum(),
        puts_failed: writer_logs
            .iter()
            .map(|log| log.failed_seqs.len() as u64)
            .sum(),
        events_expected,
        events_received: sum(|watcher| watcher.events_received),
        events_lost: sum(|watcher| watcher.events_lost),
        events_duplicated: sum(|watcher| watcher.events_duplicated),
        events_reordered: sum(|watcher| watcher.events_reordered),
        per_watcher,
    }
}

/// The store's revision now: watching from the next one sees exactly the writer's puts.
async fn current_revision(
    config: &WorkloadConfig,
    mut kv: KvClient<Channel>,
    prefix: &[u8],
) -> Result<i64, BenchError> {
    let request = RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_range_end(prefix),
        count_only: true,
        ..RangeRequest::default()
    };
    let response = within_timeout(config.request_timeout(), kv.range(request))
        .await
        .map_err(|failure| setup_error("read the current revision", &failure))?;
    Ok(response
        .into_inner()
        .header
        .map_or(0, |header| header.revision))
}

fn setup_error(step: &str, failure: &Failure) -> BenchError {
    BenchError::Setup {
        step: step.to_owned(),
        detail: failure.label(),
    }
}

/// What opening a stream needs, shared by every stream of the run.
struct StreamSetup<'a> {
    config: &'a WorkloadConfig,
    pool: &'a ConnectionPool,
    key_space: &'a KeySpace,
    plan: &'a WatchPlan,
    prefix: &'a [u8],
    start_revision: i64,
    clock_start: Instant,
}

impl StreamSetup<'_> {
    /// Opens stream `stream` and creates its watches one at a time, each confirmed by the
    /// server (which also tells its watch id) before the next is sent.
    async fn open(&self, stream: usize) -> Result<WatchStream, BenchError> {
        let mut client: WatchClient<Channel> = self.pool.watch(stream);
        let (mut requests, request_receiver) = mpsc::channel(CREATE_REQUESTS_QUEUED_MAX);
        let mut watchers = self.plan.watchers_of_stream(stream).peekable();
        // The first create goes in before the call: a server may send the response
        // headers only with its first message, which answers that create.
        if let Some(&first) = watchers.peek() {
            self.send_create(&mut requests, stream, first).await?;
        }
        let step = format!("open watch stream {stream}");
        let responses = within_timeout(
            self.config.request_timeout(),
            client.watch(request_receiver),
        )
        .await
        .map_err(|failure| setup_error(&step, &failure))?
        .into_inner();
        let mut opened = WatchStream {
            requests,
            responses,
            watchers: Vec::new(),
            slot_of_watch_id: HashMap::new(),
            recording: Recording::new()?,
            clock_start: self.clock_start,
        };
        let mut first = true;
        for watcher in watchers {
            if !first {
                self.send_create(&mut opened.requests, stream, watcher)
                    .await?;
            }
            first = false;
            let step = format!("create watcher {watcher} on stream {stream}");
            let watch_id = within_timeout(self.config.request_timeout(), opened.next_created())
                .await
                .map_err(|failure| setup_error(&step, &failure))?;
            let Some(watch_id) = watch_id else {
                return Err(BenchError::Setup {
                    step,
                    detail: "the server closed the stream or refused the watch".to_owned(),
                });
            };
            opened
                .slot_of_watch_id
                .insert(watch_id, opened.watchers.len());
            opened.watchers.push(StreamWatcher {
                index: watcher,
                target: self.plan.target_of(watcher),
                tracker: DeliveryTracker::default(),
                done: false,
            });
        }
        Ok(opened)
    }

    /// Queues the create request of `watcher` on the request side of `stream`.
    async fn send_create(
        &self,
        requests: &mut mpsc::Sender<WatchRequest>,
        stream: usize,
        watcher: usize,
    ) -> Result<(), BenchError> {
        let create = self.plan.targets.create_request(
            self.key_space,
            self.prefix,
            self.plan.target_of(watcher),
            self.start_revision,
        );
        requests.send(create).await.map_err(|_| BenchError::Setup {
            step: format!("create watcher {watcher} on stream {stream}"),
            detail: "the stream's request side closed".to_owned(),
        })
    }
}

/// One watcher of a stream and what it has received.
struct StreamWatcher {
    /// The watcher's index in the run.
    index: usize,
    /// The target it watches.
    target: usize,
    tracker: DeliveryTracker,
    /// It has the writer's last acknowledged put of its target, or was cancelled: the
    /// stream no longer waits for it.
    done: bool,
}

/// One gRPC watch stream carrying one or more watchers.
struct WatchStream {
    /// The request side, kept open for as long as the responses are read: some servers
    /// end a watch stream when its request side ends.
    requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
    watchers: Vec<StreamWatcher>,
    /// Which watcher (index into `watchers`) each server-assigned watch id belongs to.
    slot_of_watch_id: HashMap<i64, usize>,
    recording: Recording,
    clock_start: Instant,
}

impl WatchStream {
    /// Reads responses until the server confirms a create: `Some(watch_id)`, or `None` if
    /// it refused the watch or closed the stream. Events of watches created earlier that
    /// arrive meanwhile are received as usual.
    async fn next_created(&mut self) -> Result<Option<i64>, tonic::Status> {
        loop {
            let Some(response) = self.responses.message().await? else {
                return Ok(None);
            };
            if response.created {
                return Ok((!response.canceled).then_some(response.watch_id));
            }
            self.receive_response(&response);
        }
    }

    /// Receives until every watcher has the writer's last acknowledged put of its target,
    /// or `drain_timeout` after the writer finished passes, or the stream fails.
    /// `writer_finished` holds `None` while the writer runs, then the last acknowledged
    /// sequence number of each target (itself `None` where nothing was acknowledged).
    async fn receive_until_drained(
        mut self,
        mut writer_finished: latest::Receiver<Option<Vec<Option<u64>>>>,
        drain_timeout: Duration,
    ) -> Self {
        let mut last_acknowledged: Option<Vec<Option<u64>>> = None;
        let mut drain_deadline = None;
        loop {
            if last_acknowledged.is_none()
                && let Some(verdict) = writer_finished.borrow_and_update().clone()
            {
                last_acknowledged = Some(verdict);
                drain_deadline = Some(Instant::now() + drain_timeout);
            }
            if let Some(verdict) = &last_acknowledged
                && self.mark_done(verdict) == 0
            {
                return self;
            }
            tokio::select! {
                message = self.responses.message() => match message {
                    Ok(Some(response)) => self.receive_response(&response),
                    Ok(None) => {
                        self.recording.record_error("WatchStreamClosed".to_owned());
                        return self;
                    }
                    Err(status) => {
                        self.recording.record_error(Failure::from(status).label());
                        return self;
                    }
                },
                changed = writer_finished.changed(), if last_acknowledged.is_none() => {
                    if changed.is_err() {
                        // The run dropped the sender without a verdict: nothing to wait for.
                        return self;
                    }
                }
                () = sleep_until_deadline(drain_deadline) => return self,
            }
        }
    }

    /// Marks the watchers that have their target's last acknowledged put as done, and
    /// returns how many are still waiting. Watchers done before are not looked at again.
    fn mark_done(&mut self, last_acknowledged: &[Option<u64>]) -> usize {
        let mut waiting = 0;
        for watcher in self.watchers.iter_mut().filter(|watcher| !watcher.done) {
            if watcher
                .tracker
                .has_reached(last_acknowledged[watcher.target])
            {
                watcher.done = true;
            } else {
                waiting += 1;
            }
        }
        waiting
    }

    /// Takes in one response: its events, or the cancellation of its watch.
    fn receive_response(&mut self, response: &WatchResponse) {
        let Some(&slot) = self.slot_of_watch_id.get(&response.watch_id) else {
            // Progress notifications for the whole stream (watch id -1) carry no events.
            if !response.events.is_empty() {
                self.recording.record_error("UnknownWatchId".to_owned());
            }
            return;
        };
        if response.canceled {
            self.recording.record_error("WatchCanceled".to_owned());
            self.watchers[slot].done = true;
            return;
        }
        let received_at_us = micros_since(self.clock_start);
        for event in &response.events {
            let value = event_value(event);
            let (Some(seq), Some(sent_at_us)) = (read_u64(value, 0), read_u64(value, SEQ_BYTES))
            else {
                self.recording.record_error("UndecodableEvent".to_owned());
                continue;
            };
            self.watchers[slot].tracker.observe(seq);
            self.recording.record_latency_micros(
                OperationKind::WatchEvent,
                received_at_us.saturating_sub(sent_at_us),
            );
        }
    }
}

fn event_value(event: &Event) -> &[u8] {
    event.kv.as_ref().map_or(&[][..], |kv| kv.value.as_slice())
}

/// Microseconds from `clock_start` to now: the writer stamps values with it, watchers
/// subtract it from their own reading.
fn micros_since(clock_start: Instant) -> u64 {
    u64::try_from(clock_start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The single writer: takes the targets in turn, numbers each target's puts and stamps
/// each with its send time.
struct WatchWriter {
    kv: KvClient<Channel>,
    key_space: KeySpace,
    targets: WatchTargets,
    rng: SmallRng,
    value_bytes: usize,
    clock_start: Instant,
    request_timeout: Duration,
    next_target: usize,
    /// What was written to each target.
    logs: Vec<WriterLog>,
}

impl WatchWriter {
    fn new(
        config: &WorkloadConfig,
        kv: KvClient<Channel>,
        key_space: &KeySpace,
        targets: WatchTargets,
        clock_start: Instant,
    ) -> Self {
        WatchWriter {
            kv,
            key_space: key_space.clone(),
            targets,
            rng: super::client_rng(config, 0, super::RandomStream::WriteKeys),
            value_bytes: config.value_bytes,
            clock_start,
            request_timeout: config.request_timeout(),
            next_target: 0,
            logs: vec![WriterLog::default(); targets.count()],
        }
    }
}

impl Operation for WatchWriter {
    async fn execute(&mut self) -> Completed {
        let target = self.next_target;
        self.next_target = (target + 1) % self.logs.len();
        let log = &mut self.logs[target];
        let seq = log.puts_sent;
        log.puts_sent += 1;
        let mut value = Vec::with_capacity(self.value_bytes);
        value.extend_from_slice(&seq.to_be_bytes());
        value.extend_from_slice(&micros_since(self.clock_start).to_be_bytes());
        value.resize(self.value_bytes, b'.');
        let key = match self.targets {
            WatchTargets::Prefix => self.key_space.random_key(&mut self.rng),
            WatchTargets::Keys(_) => self.key_space.key(target as u64),
        };
        let request = PutRequest {
            key,
            value,
            ..PutRequest::default()
        };
        let result = within_timeout(self.request_timeout, self.kv.put(request))
            .await
            .map(drop);
        if result.is_err() {
            self.logs[target].failed_seqs.push(seq);
        }
        Completed::new(OperationKind::Put, result)
    }
}

async fn sleep_until_deadline(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn read_u64(value: &[u8], offset: usize) -> Option<u64> {
    let bytes = value.get(offset..offset + SEQ_BYTES)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(watchers: usize, streams: usize, watched_keys: Option<u64>) -> WatchPlan {
        WatchPlan {
            watchers,
            streams,
            targets: WatchTargets::new(watched_keys),
            drain_timeout: Duration::from_secs(1),
            writer_endpoint: None,
        }
    }

    #[test]
    fn every_watcher_is_on_exactly_one_stream() {
        let plan = plan(10, 3, None);
        let mut seen: Vec<usize> = (0..plan.streams)
            .flat_map(|stream| plan.watchers_of_stream(stream))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(
            plan.watchers_of_stream(1).collect::<Vec<_>>(),
            vec![1, 4, 7]
        );
    }

    #[test]
    fn key_targets_spread_watchers_over_keys_and_prefix_has_one_target() {
        assert_eq!(WatchTargets::Prefix.count(), 1);
        assert_eq!(WatchTargets::Prefix.of_watcher(7, 3), 0);
        let keys = WatchTargets::Keys(4);
        assert_eq!(keys.count(), 4);
        assert_eq!(
            (0..8).map(|w| keys.of_watcher(w, 8)).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 0, 1, 2, 3],
            "one stream per watcher: watcher i on key i % keys"
        );
    }

    #[test]
    fn streams_watch_distinct_keys_and_each_key_is_watched_from_every_stream() {
        let plan = plan(10_000, 100, Some(100));
        for stream in [0, 37, 99] {
            let mut keys: Vec<usize> = plan
                .watchers_of_stream(stream)
                .map(|watcher| plan.target_of(watcher))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), 100, "stream {stream} watches every key once");
        }
        let mut watchers_per_key = [0usize; 100];
        for watcher in 0..plan.watchers {
            watchers_per_key[plan.target_of(watcher)] += 1;
        }
        assert!(watchers_per_key.iter().all(|&count| count == 100));
    }

    #[test]
    fn create_requests_watch_the_prefix_or_a_single_key() {
        let key_space = KeySpace::new("bench/", 100, 16).unwrap();
        let create = |targets: WatchTargets, target| match targets
            .create_request(&key_space, b"bench/", target, 42)
            .request_union
        {
            Some(RequestUnion::CreateRequest(create)) => create,
            other => panic!("not a create request: {other:?}"),
        };
        let prefix = create(WatchTargets::Prefix, 0);
        assert_eq!(
            (prefix.key, prefix.range_end),
            (b"bench/".to_vec(), b"bench0".to_vec())
        );
        assert_eq!(prefix.start_revision, 42);
        let key = create(WatchTargets::Keys(10), 3);
        assert_eq!(key.key, key_space.key(3));
        assert!(key.range_end.is_empty(), "a single key has no range end");
    }

    #[test]
    fn values_carry_a_sequence_number_then_a_send_time() {
        let mut value = 7u64.to_be_bytes().to_vec();
        value.extend_from_slice(&1_234u64.to_be_bytes());
        value.extend_from_slice(b"....");
        assert_eq!(read_u64(&value, 0), Some(7));
        assert_eq!(read_u64(&value, SEQ_BYTES), Some(1_234));
        assert_eq!(read_u64(&value[..12], SEQ_BYTES), None);
    }
}
