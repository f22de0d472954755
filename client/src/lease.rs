//! The Lease service through the client: grant and revoke as exactly-once writes, the
//! leader-answered queries with failover, one-shot keep-alives, and [`LeaseKeeper`], the
//! background task that keeps a lease alive across member failures until dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::members::Conn;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use vane_proto::etcdserverpb::lease_client::LeaseClient;
use vane_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};

use crate::client::{Attempts, Client, Inner};
use crate::error::{Error, Failure, LEASE_NOT_FOUND_MESSAGE};
use crate::kv::tagged;
use crate::members::Route;
use crate::retry::{Backoff, Retry};

/// Keep-alive answers queued for a [`LeaseKeeper`] whose owner is not reading; older
/// ones are dropped beyond it, since only the latest TTL matters.
const KEEPER_RESPONSES_QUEUED_MAX: usize = 16;
/// Pause between keep-alives before the first answer tells the lease's TTL.
const KEEPER_FIRST_INTERVAL_MS: u64 = 500;
/// Shortest pause between keep-alives, whatever the TTL.
const KEEPER_INTERVAL_MIN_MS: u64 = 100;

fn lease_not_found() -> Error {
    Error::NotFound {
        message: LEASE_NOT_FOUND_MESSAGE.to_string(),
    }
}

/// Sends one keep-alive for `id` on a fresh stream and waits for its answer.
async fn keep_alive_once(channel: Conn, id: i64) -> Result<LeaseKeepAliveResponse, Status> {
    let (requests, outbound) = mpsc::channel(1);
    requests
        .send(LeaseKeepAliveRequest { id })
        .await
        .map_err(|_| Status::internal("vane-client: keep-alive request queue closed"))?;
    let mut answers = LeaseClient::new(channel)
        .lease_keep_alive(ReceiverStream::new(outbound))
        .await?
        .into_inner();
    let answer = answers.message().await?.ok_or_else(|| {
        Status::unavailable("vane-client: the keep-alive stream ended without an answer")
    })?;
    // Kept open until the answer arrived: closing the request side first may end the
    // stream before the member answers.
    drop(requests);
    Ok(answer)
}

impl Client {
    /// etcd's LeaseGrant: a lease of `ttl_secs` seconds, with id `id` (0: the cluster
    /// picks). Granted once even when retried (with sessions on).
    pub async fn lease_grant(&self, ttl_secs: i64, id: i64) -> Result<LeaseGrantResponse, Error> {
        let req = LeaseGrantRequest { ttl: ttl_secs, id };
        self.inner
            .write("lease grant", self.inner.deadline(), |channel, metadata| {
                let request = tagged(req, metadata);
                async move {
                    LeaseClient::new(channel)
                        .lease_grant(request)
                        .await
                        .map(|r| r.into_inner())
                }
            })
            .await
    }

    /// etcd's LeaseRevoke: ends the lease and deletes its keys.
    pub async fn lease_revoke(&self, id: i64) -> Result<LeaseRevokeResponse, Error> {
        self.inner
            .write(
                "lease revoke",
                self.inner.deadline(),
                |channel, metadata| {
                    let request = tagged(LeaseRevokeRequest { id }, metadata);
                    async move {
                        LeaseClient::new(channel)
                            .lease_revoke(request)
                            .await
                            .map(|r| r.into_inner())
                    }
                },
            )
            .await
    }

    /// etcd's LeaseTimeToLive (TTL -1 when the lease does not exist), with its keys when
    /// `keys`. The leader times leases, so this goes to it.
    pub async fn lease_time_to_live(
        &self,
        id: i64,
        keys: bool,
    ) -> Result<LeaseTimeToLiveResponse, Error> {
        self.inner
            .call(
                "lease timetolive",
                Route::Write,
                Retry::Always,
                self.inner.deadline(),
                &mut Attempts::default(),
                |channel| async move {
                    LeaseClient::new(channel)
                        .lease_time_to_live(LeaseTimeToLiveRequest { id, keys })
                        .await
                        .map(|r| r.into_inner())
                },
            )
            .await
    }

    /// etcd's LeaseLeases: every live lease.
    pub async fn lease_leases(&self) -> Result<LeaseLeasesResponse, Error> {
        self.inner
            .call(
                "lease list",
                Route::Read,
                Retry::Always,
                self.inner.deadline(),
                &mut Attempts::default(),
                |channel| async move {
                    LeaseClient::new(channel)
                        .lease_leases(LeaseLeasesRequest {})
                        .await
                        .map(|r| r.into_inner())
                },
            )
            .await
    }

    /// One keep-alive: renews the lease and returns its TTL. A lease that expired or was
    /// revoked is [`Error::NotFound`], as etcd's clients report it.
    pub async fn lease_keep_alive_once(&self, id: i64) -> Result<LeaseKeepAliveResponse, Error> {
        let answer = self
            .inner
            .call(
                "lease keep-alive",
                Route::Write,
                Retry::Always,
                self.inner.deadline(),
                &mut Attempts::default(),
                |channel| keep_alive_once(channel, id),
            )
            .await?;
        if answer.ttl <= 0 {
            return Err(lease_not_found());
        }
        Ok(answer)
    }

    /// Starts keeping lease `id` alive in the background: a keep-alive every third of
    /// its TTL, on another member when one fails. The keeper ends when the lease is gone
    /// (its last item is [`Error::NotFound`]) or when it is dropped.
    pub fn lease_keeper(&self, id: i64) -> LeaseKeeper {
        let (answers, responses) = mpsc::channel(KEEPER_RESPONSES_QUEUED_MAX);
        let task = tokio::spawn(keep_lease_alive(self.inner.clone(), id, answers));
        LeaseKeeper {
            id,
            responses,
            task,
        }
    }
}

/// Keeps one lease alive until it is dropped; see [`Client::lease_keeper`].
pub struct LeaseKeeper {
    id: i64,
    responses: mpsc::Receiver<Result<LeaseKeepAliveResponse, Error>>,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    /// The lease kept alive.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The next keep-alive answer (the lease's renewed TTL), an error when keep-alives
    /// have failed for longer than the TTL (the lease may have expired; the keeper goes
    /// on trying), or `None` once the lease is gone and that was reported.
    pub async fn next(&mut self) -> Option<Result<LeaseKeepAliveResponse, Error>> {
        self.responses.recv().await
    }

    /// Same as [`LeaseKeeper::next`], under the name etcd's clients use for the channel
    /// of answers.
    pub async fn responses(&mut self) -> Option<Result<LeaseKeepAliveResponse, Error>> {
        self.next().await
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How one keep-alive stream ended.
enum StreamEnd {
    /// The lease does not exist any more.
    LeaseGone,
    /// The keeper was dropped.
    OwnerGone,
    /// The member or connection failed: try another.
    Failed(Failure),
}

/// What the keeper knows across streams.
struct KeeperState {
    id: i64,
    ttl_secs: Option<i64>,
    last_renewed: Instant,
    /// Whether the current outage was already reported to the owner.
    outage_reported: bool,
}

impl KeeperState {
    fn interval(&self) -> Duration {
        let ms = self.ttl_secs.map_or(KEEPER_FIRST_INTERVAL_MS, |ttl| {
            u64::try_from(ttl).unwrap_or(0).saturating_mul(1000) / 3
        });
        Duration::from_millis(ms.max(KEEPER_INTERVAL_MIN_MS))
    }
}

async fn keep_lease_alive(
    inner: Arc<Inner>,
    id: i64,
    answers: mpsc::Sender<Result<LeaseKeepAliveResponse, Error>>,
) {
    let mut state = KeeperState {
        id,
        ttl_secs: None,
        last_renewed: Instant::now(),
        outage_reported: false,
    };
    let mut backoff = Backoff::default();
    let mut avoid: Option<String> = None;
    loop {
        let pick = inner.pool.pick(Route::Write, avoid.as_deref());
        let stream_started = Instant::now();
        let end = run_keep_alive_stream(&inner, pick.channel, &mut state, &answers).await;
        match end {
            StreamEnd::LeaseGone => {
                let _ = answers.send(Err(lease_not_found())).await;
                return;
            }
            StreamEnd::OwnerGone => return,
            StreamEnd::Failed(failure) => {
                if failure.member_unreachable() {
                    inner.pool.mark_unreachable(&pick.url);
                } else {
                    inner.pool.forget_leader();
                }
                tracing::debug!(lease = id, member = %pick.url, error = %failure.clone().into_error(), "keep-alive stream failed");
                avoid = Some(pick.url);
            }
        }
        let silent_for = state.last_renewed.elapsed();
        if let Some(ttl) = state.ttl_secs
            && silent_for > Duration::from_secs(u64::try_from(ttl).unwrap_or(0))
            && !state.outage_reported
        {
            state.outage_reported = true;
            let report = Error::Unavailable {
                message: format!(
                    "lease {id:x}: no keep-alive answered for {} ms (TTL {ttl} s); it may have \
                     expired; still trying",
                    silent_for.as_millis()
                ),
            };
            if answers.send(Err(report)).await.is_err() {
                return;
            }
        }
        if answers.is_closed() {
            return;
        }
        if state.last_renewed >= stream_started {
            // That stream worked for a while: this is a new failure, not a long outage.
            backoff = Backoff::default();
        }
        tokio::time::sleep(backoff.next_pause()).await;
    }
}

async fn run_keep_alive_stream(
    inner: &Inner,
    channel: Conn,
    state: &mut KeeperState,
    answers: &mpsc::Sender<Result<LeaseKeepAliveResponse, Error>>,
) -> StreamEnd {
    let attempt_timeout = inner.config.attempt_timeout;
    let (requests, outbound) = mpsc::channel(1);
    let request = LeaseKeepAliveRequest { id: state.id };
    if requests.send(request).await.is_err() {
        return StreamEnd::OwnerGone;
    }
    let token_generation = inner.token.generation();
    let opened = tokio::time::timeout(
        attempt_timeout,
        LeaseClient::new(channel).lease_keep_alive(ReceiverStream::new(outbound)),
    )
    .await;
    let mut stream: Streaming<LeaseKeepAliveResponse> = match opened {
        Ok(Ok(response)) => response.into_inner(),
        Ok(Err(status)) => {
            return StreamEnd::Failed(inner.stream_failure(&status, token_generation).await);
        }
        Err(_) => return StreamEnd::Failed(timed_out(attempt_timeout)),
    };
    loop {
        let answer = match tokio::time::timeout(attempt_timeout, stream.message()).await {
            Ok(Ok(Some(answer))) => answer,
            Ok(Ok(None)) => {
                return StreamEnd::Failed(Failure::Unknown(Error::Unavailable {
                    message: "the keep-alive stream ended".to_string(),
                }));
            }
            Ok(Err(status)) => {
                return StreamEnd::Failed(inner.stream_failure(&status, token_generation).await);
            }
            Err(_) => return StreamEnd::Failed(timed_out(attempt_timeout)),
        };
        if answer.ttl <= 0 {
            return StreamEnd::LeaseGone;
        }
        state.ttl_secs = Some(answer.ttl);
        state.last_renewed = Instant::now();
        state.outage_reported = false;
        match answers.try_send(Ok(answer)) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return StreamEnd::OwnerGone,
        }
        tokio::select! {
            _ = tokio::time::sleep(state.interval()) => {}
            _ = answers.closed() => return StreamEnd::OwnerGone,
        }
        if requests
            .send(LeaseKeepAliveRequest { id: state.id })
            .await
            .is_err()
        {
            return StreamEnd::Failed(Failure::Unknown(Error::Unavailable {
                message: "the keep-alive stream closed".to_string(),
            }));
        }
    }
}

fn timed_out(after: Duration) -> Failure {
    Failure::Unknown(Error::Timeout {
        message: format!("keep-alive: no answer within {} ms", after.as_millis()),
    })
}
