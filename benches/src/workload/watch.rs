//! `watch`: watchers on the run's key prefix while one writer puts into it. Every value
//! carries the put's sequence number and send time, so each watcher measures each event's
//! delivery latency and checks that it received every acknowledged put exactly once.
//!
//! Phases: note the current revision; open every watch stream from the next revision and
//! wait until the server confirms each; run the writer on the schedule; tell the watchers
//! the last acknowledged sequence number; let them drain until they reach it or the drain
//! timeout passes; count. Writer and watchers run in the same process and time against
//! the same monotonic clock, so delivery latency needs no clock synchronisation.

use futures::{StreamExt, TryStreamExt};
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

use crate::config::WorkloadConfig;
use crate::connection_pool::ConnectionPool;
use crate::driver::{Operation, drive_clients};
use crate::error::BenchError;
use crate::keyspace::{KeySpace, prefix_range_end};
use crate::outcome::{Completed, Failure, OperationKind, within_timeout};
use crate::recording::Recording;
use crate::report::{Report, WatchReport};

use super::watch_delivery::{DeliveryTracker, WriterLog};

/// Watch streams being opened at once during setup.
const WATCH_CREATIONS_IN_FLIGHT_MAX: usize = 32;
/// Bytes of a value taken by the sequence number, then by the send time.
const SEQ_BYTES: usize = 8;

/// Runs the `watch` workload with `watchers` watch streams.
pub async fn run(
    config: &WorkloadConfig,
    pool: &ConnectionPool,
    key_space: &KeySpace,
    watchers: usize,
    drain_timeout: Duration,
) -> Result<Report, BenchError> {
    let prefix = config.key_prefix.as_bytes().to_vec();
    let start_revision = current_revision(config, pool.kv(0), &prefix).await? + 1;
    let streams = open_watch_streams(config, pool, &prefix, start_revision, watchers).await?;

    let start = Instant::now();
    let (writer_finished, writer_finished_receiver) = latest::channel(None);
    let watcher_tasks: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            let watcher = Watcher {
                stream,
                tracker: DeliveryTracker::default(),
                recording: Recording::new()?,
                clock_start: start,
                drain_timeout,
            };
            Ok(tokio::spawn(
                watcher.receive_until_drained(writer_finished_receiver.clone()),
            ))
        })
        .collect::<Result<_, BenchError>>()?;

    let writer = WatchWriter::new(config, pool, key_space, start);
    let measured = drive_clients(vec![writer], super::schedule(config, start), start).await;
    let writer_log = measured
        .as_ref()
        .ok()
        .and_then(|measured| measured.operations.first())
        .map(WatchWriter::log);
    // Sent even if the writer failed, so that watchers stop instead of draining forever.
    writer_finished.send_replace(Some(
        writer_log
            .clone()
            .unwrap_or_default()
            .last_acknowledged_seq(),
    ));
    let measured = measured?;
    let writer_log = writer_log.unwrap_or_default();

    let mut recording = measured.recording;
    let mut per_watcher = Vec::with_capacity(watchers);
    for (index, task) in watcher_tasks.into_iter().enumerate() {
        let watcher = task.await?;
        recording.merge(&watcher.recording)?;
        per_watcher.push(watcher.tracker.finish(index, &writer_log));
    }
    let mut report = Report::new(config.clone(), start.elapsed(), &recording);
    report.watch = Some(WatchReport {
        watchers,
        puts_acknowledged: writer_log.puts_acknowledged(),
        puts_failed: writer_log.failed_seqs.len() as u64,
        events_received: per_watcher
            .iter()
            .map(|watcher| watcher.events_received)
            .sum(),
        events_lost: per_watcher.iter().map(|watcher| watcher.events_lost).sum(),
        events_duplicated: per_watcher
            .iter()
            .map(|watcher| watcher.events_duplicated)
            .sum(),
        events_reordered: per_watcher
            .iter()
            .map(|watcher| watcher.events_reordered)
            .sum(),
        per_watcher,
    });
    Ok(report)
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

/// Opens one watch stream per watcher, spread over the connections, each confirmed
/// created by the server before the writer starts.
async fn open_watch_streams(
    config: &WorkloadConfig,
    pool: &ConnectionPool,
    prefix: &[u8],
    start_revision: i64,
    watchers: usize,
) -> Result<Vec<Streaming<WatchResponse>>, BenchError> {
    futures::stream::iter(0..watchers)
        .map(|watcher| {
            let create = WatchRequest {
                request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                    key: prefix.to_vec(),
                    range_end: prefix_range_end(prefix),
                    start_revision,
                    ..WatchCreateRequest::default()
                })),
            };
            open_watch_stream(
                pool.watch(watcher),
                create,
                config.request_timeout(),
                watcher,
            )
        })
        .buffered(WATCH_CREATIONS_IN_FLIGHT_MAX)
        .try_collect()
        .await
}

async fn open_watch_stream(
    mut client: WatchClient<Channel>,
    create: WatchRequest,
    request_timeout: Duration,
    watcher: usize,
) -> Result<Streaming<WatchResponse>, BenchError> {
    // The request side stays open (pending after the create request) for as long as the
    // response stream lives: some servers end a watch when its request stream ends.
    let requests = futures::stream::iter([create]).chain(futures::stream::pending());
    let step = format!("create watcher {watcher}");
    let opened = within_timeout(request_timeout, async {
        let mut stream = client.watch(requests).await?.into_inner();
        let created = stream.message().await?;
        Ok::<_, tonic::Status>((stream, created))
    })
    .await;
    match opened {
        Ok((stream, Some(response))) if response.created && !response.canceled => Ok(stream),
        Ok((_, Some(response))) => Err(BenchError::Setup {
            step,
            detail: format!(
                "the server answered without creating the watch ({})",
                response.cancel_reason
            ),
        }),
        Ok((_, None)) => Err(BenchError::Setup {
            step,
            detail: "the server closed the stream".to_owned(),
        }),
        Err(failure) => Err(setup_error(&step, &failure)),
    }
}

fn setup_error(step: &str, failure: &Failure) -> BenchError {
    BenchError::Setup {
        step: step.to_owned(),
        detail: failure.label(),
    }
}

/// Microseconds from `clock_start` to now: the writer stamps values with it, watchers
/// subtract it from their own reading.
fn micros_since(clock_start: Instant) -> u64 {
    u64::try_from(clock_start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The single writer: numbers its puts and stamps each with its send time.
struct WatchWriter {
    kv: KvClient<Channel>,
    key_space: KeySpace,
    rng: SmallRng,
    value_bytes: usize,
    clock_start: Instant,
    request_timeout: Duration,
    log: WriterLog,
}

impl WatchWriter {
    fn new(
        config: &WorkloadConfig,
        pool: &ConnectionPool,
        key_space: &KeySpace,
        clock_start: Instant,
    ) -> Self {
        WatchWriter {
            kv: pool.kv(0),
            key_space: key_space.clone(),
            rng: super::client_rng(config, 0, super::RandomStream::WriteKeys),
            value_bytes: config.value_bytes,
            clock_start,
            request_timeout: config.request_timeout(),
            log: WriterLog::default(),
        }
    }

    fn log(&self) -> WriterLog {
        self.log.clone()
    }
}

impl Operation for WatchWriter {
    async fn execute(&mut self) -> Completed {
        let seq = self.log.puts_sent;
        self.log.puts_sent += 1;
        let mut value = Vec::with_capacity(self.value_bytes);
        value.extend_from_slice(&seq.to_be_bytes());
        value.extend_from_slice(&micros_since(self.clock_start).to_be_bytes());
        value.resize(self.value_bytes, b'.');
        let request = PutRequest {
            key: self.key_space.random_key(&mut self.rng),
            value,
            ..PutRequest::default()
        };
        let result = within_timeout(self.request_timeout, self.kv.put(request))
            .await
            .map(drop);
        if result.is_err() {
            self.log.failed_seqs.push(seq);
        }
        Completed::new(OperationKind::Put, result)
    }
}

/// One watch stream and what it has received.
struct Watcher {
    stream: Streaming<WatchResponse>,
    tracker: DeliveryTracker,
    recording: Recording,
    clock_start: Instant,
    drain_timeout: Duration,
}

impl Watcher {
    /// Receives events until the watcher has the writer's last acknowledged put, or the
    /// drain timeout after the writer finished passes, or the stream fails.
    /// `writer_finished` holds `None` while the writer runs, then the last acknowledged
    /// sequence number (itself `None` if nothing was acknowledged).
    async fn receive_until_drained(
        mut self,
        mut writer_finished: latest::Receiver<Option<Option<u64>>>,
    ) -> Self {
        let mut drain_deadline = None;
        loop {
            let last_acknowledged = *writer_finished.borrow_and_update();
            if let Some(last_acknowledged_seq) = last_acknowledged {
                if self.tracker.has_reached(last_acknowledged_seq) {
                    return self;
                }
                drain_deadline.get_or_insert_with(|| Instant::now() + self.drain_timeout);
            }
            tokio::select! {
                message = self.stream.message() => match message {
                    Ok(Some(response)) if response.canceled => {
                        self.recording.record_error("WatchCanceled".to_owned());
                        return self;
                    }
                    Ok(Some(response)) => response.events.iter().for_each(|event| self.receive(event)),
                    Ok(None) => {
                        self.recording.record_error("WatchStreamClosed".to_owned());
                        return self;
                    }
                    Err(status) => {
                        self.recording.record_error(Failure::from(status).label());
                        return self;
                    }
                },
                changed = writer_finished.changed(), if drain_deadline.is_none() => {
                    if changed.is_err() {
                        // The run dropped the sender without a verdict: nothing to wait for.
                        return self;
                    }
                }
                () = sleep_until_deadline(drain_deadline) => return self,
            }
        }
    }

    fn receive(&mut self, event: &Event) {
        let received_at_us = micros_since(self.clock_start);
        let value = event.kv.as_ref().map_or(&[][..], |kv| kv.value.as_slice());
        let (Some(seq), Some(sent_at_us)) = (read_u64(value, 0), read_u64(value, SEQ_BYTES)) else {
            self.recording.record_error("UndecodableEvent".to_owned());
            return;
        };
        self.tracker.observe(seq);
        self.recording.record_latency_micros(
            OperationKind::WatchEvent,
            received_at_us.saturating_sub(sent_at_us),
        );
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
