//! `lease-keepalive`: leases granted up front, then kept alive over one bidirectional
//! keep-alive stream per client, the traffic every etcd client with a session sends.
//! One operation is one keep-alive round trip; the client's leases take turns.

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, TryStreamExt};
use tonic::Streaming;
use tonic::transport::Channel;
use vane_proto::etcdserverpb::lease_client::LeaseClient;
use vane_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest,
};

use crate::config::WorkloadConfig;
use crate::connection_pool::ConnectionPool;
use crate::driver::Operation;
use crate::error::BenchError;
use crate::outcome::{Completed, Failure, OperationKind, within_timeout};
use crate::report::Report;

/// Lease grants (and revokes) in flight at once during setup and cleanup.
const LEASE_REQUESTS_IN_FLIGHT_MAX: usize = 32;
/// Keep-alive requests queued on one stream: one round trip at a time, so one slot.
const KEEPALIVES_QUEUED_MAX: usize = 1;
/// Longest the revoking of the run's leases may take; leases left behind expire by TTL.
const CLEANUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs the `lease-keepalive` workload over `leases` leases of `lease_ttl_secs`. With
/// fewer leases than clients, only as many clients as leases run.
pub async fn run(
    config: &WorkloadConfig,
    pool: &ConnectionPool,
    leases: usize,
    lease_ttl_secs: i64,
) -> Result<Report, BenchError> {
    let lease_ids = grant_leases(config, pool, leases, lease_ttl_secs).await?;
    let clients = config.clients.min(lease_ids.len());
    let operations = (0..clients)
        .map(|client| KeepAliveOperation {
            lease: pool.lease(client),
            lease_ids: lease_ids
                .iter()
                .skip(client)
                .step_by(clients)
                .copied()
                .collect(),
            next_lease: 0,
            stream: None,
            request_timeout: config.request_timeout(),
        })
        .collect();
    let report = super::run_request_loops(config, operations).await;
    revoke_leases(config, pool, &lease_ids).await;
    report
}

async fn grant_leases(
    config: &WorkloadConfig,
    pool: &ConnectionPool,
    leases: usize,
    lease_ttl_secs: i64,
) -> Result<Vec<i64>, BenchError> {
    futures::stream::iter(0..leases)
        .map(|index| {
            let mut lease = pool.lease(index);
            async move {
                let request = LeaseGrantRequest {
                    ttl: lease_ttl_secs,
                    id: 0,
                };
                let step = || format!("grant lease {index} of {leases}");
                let granted = within_timeout(config.request_timeout(), lease.lease_grant(request))
                    .await
                    .map_err(|failure| BenchError::Setup {
                        step: step(),
                        detail: failure.label(),
                    })?
                    .into_inner();
                if granted.error.is_empty() {
                    Ok(granted.id)
                } else {
                    Err(BenchError::Setup {
                        step: step(),
                        detail: granted.error,
                    })
                }
            }
        })
        .buffer_unordered(LEASE_REQUESTS_IN_FLIGHT_MAX)
        .try_collect()
        .await
}

/// Revokes the run's leases so they do not linger for their TTL. Best effort: a lease
/// that cannot be revoked expires by itself, and the measured run is already over.
async fn revoke_leases(config: &WorkloadConfig, pool: &ConnectionPool, lease_ids: &[i64]) {
    let revokes = futures::stream::iter(lease_ids.iter().enumerate())
        .map(|(index, &id)| {
            let mut lease = pool.lease(index);
            async move {
                let _ignored = within_timeout(
                    config.request_timeout(),
                    lease.lease_revoke(LeaseRevokeRequest { id }),
                )
                .await;
            }
        })
        .buffer_unordered(LEASE_REQUESTS_IN_FLIGHT_MAX)
        .collect::<()>();
    let _timed_out = tokio::time::timeout(CLEANUP_TIMEOUT, revokes).await;
}

/// An open keep-alive stream: requests go into `requests`, answers come from `responses`.
struct KeepAliveStream {
    requests: mpsc::Sender<LeaseKeepAliveRequest>,
    responses: Streaming<LeaseKeepAliveResponse>,
}

/// One client of `lease-keepalive`.
struct KeepAliveOperation {
    lease: LeaseClient<Channel>,
    lease_ids: Vec<i64>,
    next_lease: usize,
    /// `None` before the first round trip and after a failed one: a stream whose last
    /// round trip failed is in an unknown state, so the next operation opens a new one.
    stream: Option<KeepAliveStream>,
    request_timeout: std::time::Duration,
}

impl KeepAliveOperation {
    /// Sends a keep-alive for `id` and waits for its answer, on the open stream or a new one.
    async fn round_trip(&mut self, id: i64) -> Result<(), Failure> {
        let request = LeaseKeepAliveRequest { id };
        let mut stream = match self.stream.take() {
            Some(mut stream) => {
                stream
                    .requests
                    .send(request)
                    .await
                    .map_err(|_| Failure::Check("KeepAliveStreamClosed"))?;
                stream
            }
            None => {
                let (mut requests, queued) = mpsc::channel(KEEPALIVES_QUEUED_MAX);
                // Queued before the call: a gRPC server may send its response headers only
                // with its first message, which answers this request.
                requests
                    .try_send(request)
                    .map_err(|_| Failure::Check("KeepAliveStreamClosed"))?;
                let responses = self.lease.lease_keep_alive(queued).await?.into_inner();
                KeepAliveStream {
                    requests,
                    responses,
                }
            }
        };
        let answer = match stream.responses.message().await? {
            None => return Err(Failure::Check("KeepAliveStreamClosed")),
            Some(answer) => answer,
        };
        self.stream = Some(stream);
        match answer {
            LeaseKeepAliveResponse { ttl, .. } if ttl <= 0 => Err(Failure::Check("LeaseExpired")),
            LeaseKeepAliveResponse { id: answered, .. } if answered != id => {
                Err(Failure::Check("KeepAliveMismatch"))
            }
            _ => Ok(()),
        }
    }
}

impl Operation for KeepAliveOperation {
    async fn execute(&mut self) -> Completed {
        let id = self.lease_ids[self.next_lease];
        self.next_lease = (self.next_lease + 1) % self.lease_ids.len();
        let request_timeout = self.request_timeout;
        let result = within_timeout(request_timeout, self.round_trip(id)).await;
        Completed::new(OperationKind::LeaseKeepAlive, result)
    }
}
