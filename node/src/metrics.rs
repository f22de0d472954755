//! What a member reports about itself in Prometheus' text format: Raft (term, leader,
//! leader changes, indexes), proposals (committed, failed), apply latency, client
//! requests by method and status with their latency, the store's size, and where the
//! process's memory goes (RocksDB's share by database, and the standard `process_*`
//! metrics: resident memory, CPU time, open files, threads).
//!
//! Counters live in one registry per member, owned by [`Metrics`]. Raft's term and leader
//! gauges are refreshed by a task that follows openraft's server metrics; the log's
//! indexes are read from openraft when the metrics are scraped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use openraft::RaftMetrics;
use openraft::async_runtime::WatchReceiver;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use vane_raft_store::StorageMemory;
use vane_raft_store::raft::types::TypeConfig;

use crate::node::Node;

/// Latency buckets from 100 µs to about 6.5 s.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.0001, 2.0, 17).unwrap_or_default()
}

/// The collectors of one member.
pub struct Metrics {
    registry: Registry,
    /// The `process_*` metrics, under the names every Prometheus client gives them (etcd's
    /// included), so without the `vane_` prefix.
    process: Registry,
    /// Current Raft term.
    pub raft_term: IntGauge,
    /// 1 when this member knows a leader.
    pub has_leader: IntGauge,
    /// 1 when this member is the leader.
    pub is_leader: IntGauge,
    /// Client calls being handled now: unary calls until they answer, streams until they
    /// open. Zero tells a follower it has no client waiting on it (see [`Metrics::idle_follower`]).
    pub client_calls_in_flight: IntGauge,
    /// Leader changes this member has seen.
    pub leader_changes: IntCounter,
    /// Last log index, committed index and applied index.
    pub raft_last_index: IntGauge,
    /// See `raft_last_index`.
    pub raft_committed_index: IntGauge,
    /// See `raft_last_index`.
    pub raft_applied_index: IntGauge,
    /// Proposals applied with a result (including etcd-rule refusals).
    pub proposals_committed: IntCounter,
    /// Proposals that did not get a result (no leader, timeout, leader change).
    pub proposals_failed: IntCounter,
    /// Time to apply one batch of entries.
    pub apply_duration: Histogram,
    /// Time of each fsync of the Raft log: etcd's `etcd_disk_wal_fsync_duration_seconds`,
    /// the first thing to look at when writes slow down.
    pub wal_fsync_duration: Histogram,
    /// Client requests by gRPC method and status code.
    pub requests: IntCounterVec,
    /// Client request latency by gRPC method.
    pub request_duration: HistogramVec,
    /// Bytes the state machine occupies on disk.
    pub db_size_bytes: IntGauge,
    /// RocksDB's memory by database (`state_machine`, `raft_log`) and kind (`memtables`,
    /// `table_readers`, `block_cache`), refreshed when scraped.
    pub storage_memory_bytes: IntGaugeVec,
    /// Leases the leader revoked because their time ran out.
    pub leases_expired: IntCounter,
    /// Open watch streams.
    pub watch_streams: IntGauge,
    /// Watchers across every stream.
    pub watchers: IntGauge,
    /// Watchers behind the in-memory cache, catching up from the stored history.
    pub watch_slow_watchers: IntGauge,
    /// Events delivered to watchers.
    pub watch_events_sent: IntCounter,
    /// Pages a watcher read from the stored history because it was too far behind the
    /// in-memory cache (slow or resuming from an old revision).
    pub watch_catchup_reads: IntCounter,
    /// Writes this member forwarded to the leader.
    pub forwarded_writes: IntCounter,
    /// Batches those writes left in: writes per batch is how much forwarding is shared.
    pub forward_batches: IntCounter,
    /// Read indexes this member asked for on behalf of its linearizable reads.
    pub read_index_rounds: IntCounter,
    /// Linearizable reads that waited for those: reads per round is how much is shared.
    pub read_index_reads: IntCounter,
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> C {
    if let Err(e) = registry.register(Box::new(collector.clone())) {
        tracing::warn!(error = %e, "metric not registered");
    }
    collector
}

impl Metrics {
    /// Whether this member follows a known leader and has no client call to handle: then
    /// nothing but the leader's next message waits on it, and it can block for an fsync of
    /// its log rather than hand it to another thread (see `InlineSyncGate`).
    pub fn idle_follower(&self) -> bool {
        self.has_leader.get() == 1
            && self.is_leader.get() == 0
            && self.client_calls_in_flight.get() == 0
    }

    /// A fresh registry with every collector registered.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("vane".into()), None)?;
        let process = Registry::new();
        #[cfg(target_os = "linux")]
        if let Err(e) = process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::warn!(error = %e, "process metrics not registered");
        }
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let counter = |name: &str, help: &str| IntCounter::new(name, help);
        Ok(Metrics {
            raft_term: register(&registry, gauge("raft_term", "Current Raft term.")?),
            has_leader: register(
                &registry,
                gauge("server_has_leader", "1 when this member knows a leader.")?,
            ),
            is_leader: register(
                &registry,
                gauge("server_is_leader", "1 when this member is the leader.")?,
            ),
            client_calls_in_flight: register(
                &registry,
                gauge(
                    "client_calls_in_flight",
                    "Client gRPC calls being handled: unary calls until they answer, streams until they open.",
                )?,
            ),
            leader_changes: register(
                &registry,
                counter("server_leader_changes_seen_total", "Leader changes seen.")?,
            ),
            raft_last_index: register(
                &registry,
                gauge("raft_last_log_index", "Last index in this member's log.")?,
            ),
            raft_committed_index: register(
                &registry,
                gauge("raft_committed_index", "Last committed index.")?,
            ),
            raft_applied_index: register(
                &registry,
                gauge("raft_applied_index", "Last applied index.")?,
            ),
            proposals_committed: register(
                &registry,
                counter(
                    "proposals_committed_total",
                    "Proposals applied with a result.",
                )?,
            ),
            proposals_failed: register(
                &registry,
                counter(
                    "proposals_failed_total",
                    "Proposals that got no result (no leader, timeout).",
                )?,
            ),
            apply_duration: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "apply_duration_seconds",
                        "Time to apply one batch of entries.",
                    )
                    .buckets(latency_buckets()),
                )?,
            ),
            wal_fsync_duration: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "disk_wal_fsync_duration_seconds",
                        "Time of each fsync of the Raft log.",
                    )
                    .buckets(latency_buckets()),
                )?,
            ),
            requests: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "grpc_requests_total",
                        "Client gRPC requests by method and status code.",
                    ),
                    &["method", "code"],
                )?,
            ),
            request_duration: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "grpc_request_duration_seconds",
                        "Client gRPC request latency.",
                    )
                    .buckets(latency_buckets()),
                    &["method"],
                )?,
            ),
            db_size_bytes: register(
                &registry,
                gauge("mvcc_db_total_size_in_bytes", "Bytes of the store on disk.")?,
            ),
            storage_memory_bytes: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "storage_memory_bytes",
                        "Memory RocksDB holds, by database and kind.",
                    ),
                    &["db", "kind"],
                )?,
            ),
            leases_expired: register(
                &registry,
                counter("leases_expired_total", "Leases revoked on expiry.")?,
            ),
            watch_streams: register(&registry, gauge("watch_streams", "Open watch streams.")?),
            watchers: register(
                &registry,
                gauge("watchers", "Watchers across every stream.")?,
            ),
            watch_slow_watchers: register(
                &registry,
                gauge(
                    "watch_slow_watchers",
                    "Watchers catching up from the stored history.",
                )?,
            ),
            watch_events_sent: register(
                &registry,
                counter("watch_events_sent_total", "Events delivered to watchers.")?,
            ),
            watch_catchup_reads: register(
                &registry,
                counter(
                    "watch_catchup_reads_total",
                    "Watcher pages read from stored history.",
                )?,
            ),
            forwarded_writes: register(
                &registry,
                counter(
                    "forwarded_writes_total",
                    "Writes forwarded to the leader by this member.",
                )?,
            ),
            forward_batches: register(
                &registry,
                counter(
                    "forward_batches_total",
                    "Batches the forwarded writes were sent in.",
                )?,
            ),
            read_index_rounds: register(
                &registry,
                counter(
                    "read_index_rounds_total",
                    "Read indexes asked for on behalf of linearizable reads.",
                )?,
            ),
            read_index_reads: register(
                &registry,
                counter(
                    "read_index_reads_total",
                    "Linearizable reads that waited for a shared read index.",
                )?,
            ),
            registry,
            process,
        })
    }

    /// Records RocksDB's memory estimates of the database `db`.
    pub fn set_storage_memory(&self, db: &str, memory: StorageMemory) {
        for (kind, bytes) in [
            ("memtables", memory.memtables_bytes),
            ("table_readers", memory.table_readers_bytes),
            ("block_cache", memory.block_cache_bytes),
        ] {
            self.storage_memory_bytes
                .with_label_values(&[db, kind])
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// Copies the log's progress from `raft` (last, committed and applied index) into
    /// the gauges: done when the metrics are scraped, as these change with every write.
    pub fn record_log_progress(&self, raft: &RaftMetrics<TypeConfig>) {
        self.raft_last_index
            .set(raft.last_log_index.unwrap_or(0) as i64);
        self.raft_committed_index
            .set(raft.local_committed.as_ref().map_or(0, |l| l.index) as i64);
        self.raft_applied_index
            .set(raft.last_applied.as_ref().map_or(0, |l| l.index) as i64);
    }

    /// Every metric in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::warn!(error = %e, "metrics did not encode");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Counts leader changes and mirrors the term and the leader into `node.metrics` until
/// the Raft core stops. It follows openraft's server metrics (vote, role, leader,
/// membership), which change only with leadership: the full metrics are sent on every
/// turn of the core, hundreds of times a second under writes, and a task following them
/// was woken for each (about 5% of a member's CPU under 64 writers). The log's indexes,
/// which do change with every write, are read when the metrics are scraped
/// ([`Metrics::record_log_progress`]).
pub async fn follow_raft(node: Arc<Node>) {
    let mut server = node.raft.server_metrics();
    let mut last_leader = None;
    loop {
        {
            // Read from the server metrics themselves: openraft sends them before the
            // full metrics, which may not show this change yet.
            let m = server.borrow_watched();
            let metrics = &node.metrics;
            metrics.raft_term.set(m.vote.leader_id().term as i64);
            metrics
                .has_leader
                .set(i64::from(m.current_leader.is_some()));
            metrics
                .is_leader
                .set(i64::from(m.current_leader == Some(node.member_id)));
            if m.current_leader.is_some() && m.current_leader != last_leader {
                if last_leader.is_some() {
                    metrics.leader_changes.inc();
                }
                last_leader = m.current_leader;
            }
        }
        if server.changed().await.is_err() {
            return;
        }
    }
}

/// A tower layer that counts client requests by gRPC method and status, and times them.
#[derive(Clone)]
pub struct RequestMetricsLayer {
    metrics: Arc<Metrics>,
}

impl RequestMetricsLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        RequestMetricsLayer { metrics }
    }
}

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// See [`RequestMetricsLayer`].
#[derive(Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, ResB> tower::Service<http::Request<B>> for RequestMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResB>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("unknown")
            .to_string();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let in_flight = InFlight::enter(&metrics.client_calls_in_flight);
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(in_flight);
            // Errors of unary calls travel as trailers-only responses, so their status is
            // in the headers; a missing status means the call went on to succeed.
            let code = match &response {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_string(),
                Err(_) => "transport".to_string(),
            };
            metrics.requests.with_label_values(&[&method, &code]).inc();
            metrics
                .request_duration
                .with_label_values(&[&method])
                .observe(duration_secs(started.elapsed()));
            response
        })
    }
}

/// One call counted in a gauge of calls in flight, until dropped (answered, or abandoned
/// by a client that went away).
struct InFlight(IntGauge);

impl InFlight {
    fn enter(gauge: &IntGauge) -> Self {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A duration in seconds, as Prometheus wants it.
pub fn duration_secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    #[test]
    fn only_a_follower_of_a_known_leader_with_no_client_call_is_idle() {
        let metrics = Metrics::new().unwrap();
        assert!(!metrics.idle_follower(), "no leader known yet");
        metrics.has_leader.set(1);
        assert!(metrics.idle_follower());
        metrics.client_calls_in_flight.inc();
        assert!(!metrics.idle_follower(), "a client call is being handled");
        metrics.client_calls_in_flight.dec();
        metrics.is_leader.set(1);
        assert!(
            !metrics.idle_follower(),
            "the leader replicates after each append"
        );
    }

    #[tokio::test]
    async fn a_client_call_counts_in_flight_until_it_answers_or_is_abandoned() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
        let handler = tower::service_fn(move |_request: http::Request<()>| {
            let released = released.clone();
            async move {
                if let Some(released) = released.lock().await.take() {
                    let _ = released.await;
                }
                Ok::<_, std::convert::Infallible>(http::Response::new(()))
            }
        });
        let mut service = RequestMetricsLayer::new(metrics.clone()).layer(handler);
        let request = || http::Request::get("/etcdserverpb.KV/Put").body(()).unwrap();

        let waiting = tokio::spawn(service.ready().await.unwrap().call(request()));
        tokio::task::yield_now().await;
        assert_eq!(metrics.client_calls_in_flight.get(), 1);
        release.send(()).unwrap();
        waiting.await.unwrap().unwrap();
        assert_eq!(metrics.client_calls_in_flight.get(), 0);

        // A call whose client goes away before the answer is dropped, and uncounted.
        let abandoned = service.ready().await.unwrap().call(request());
        assert_eq!(metrics.client_calls_in_flight.get(), 1);
        drop(abandoned);
        assert_eq!(metrics.client_calls_in_flight.get(), 0);
    }
}
