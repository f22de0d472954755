//! [`Client`] and the one loop every unary call goes through: pick a member, bound the
//! attempt, classify a failure, pause, try elsewhere, until the call's deadline. Writes
//! additionally carry their session ticket through that loop, so a retry is the same
//! request to the server. The etcd services' methods live beside their concept (`kv.rs`,
//! `lease.rs`, `cluster.rs`, `maintenance.rs`, `watch.rs`) and all call in here.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tonic::Status;
use tonic::metadata::MetadataMap;
use vane_proto::api::session_client::SessionClient;
use vane_proto::api::{CloseSessionRequest, OpenSessionRequest};
use vane_proto::etcdserverpb::cluster_client::ClusterClient;
use vane_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use vane_proto::etcdserverpb::{MemberListRequest, ResponseHeader, StatusRequest};

use crate::auth::{TokenSlot, is_token_refusal};
use crate::config::ClientConfig;
use crate::error::{Error, Failure};
use crate::members::{Conn, MemberPool, Route, normalize_endpoint_with};
use crate::retry::{Backoff, Retry};
use crate::session::{Admission, Sessions};
use crate::tls::{Dialer, client_config};

/// Longest wait for the Status that tells which member leads, in milliseconds: the write
/// goes ahead without the hint rather than wait longer.
const LEADER_PROBE_TIMEOUT_MS: u64 = 500;

/// A connection to a Vane (or etcd) cluster: failover across members, retries with
/// backoff, exactly-once writes, resuming watches. Cheap to clone; clones share
/// connections and the session, so one client per process is the intended use.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

/// Counters of what the client's retry machinery did, for tests and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Attempts that failed in a way that allowed a retry.
    pub attempts_failed: u64,
    /// Attempts abandoned because they exceeded `attempt_timeout`.
    pub attempts_timed_out: u64,
    /// Write attempts whose outcome was unknown (maybe applied) and that were sent
    /// again: without a session each of these can apply a write twice.
    pub writes_retried_after_unknown_outcome: u64,
    /// Exactly-once sessions opened.
    pub sessions_opened: u64,
    /// Tokens obtained with the configured credentials: one when connecting, one more
    /// each time the cluster refused the token in use (expired, auth enabled later).
    pub tokens_obtained: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    attempts_failed: AtomicU64,
    attempts_timed_out: AtomicU64,
    writes_retried_after_unknown_outcome: AtomicU64,
    sessions_opened: AtomicU64,
    pub(crate) tokens_obtained: AtomicU64,
}

/// What the attempts of one call went through, for the write path's session decisions.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    /// Whether some attempt may have been applied without its answer arriving.
    pub(crate) outcome_unknown: bool,
}

/// Responses that carry etcd's header, from which the client learns member ids and
/// notices elections.
pub(crate) trait Headed {
    /// The response header, if the response has one.
    fn header(&self) -> Option<&ResponseHeader>;
}

macro_rules! headed {
    ($($response:ty),* $(,)?) => {
        $(impl Headed for $response {
            fn header(&self) -> Option<&ResponseHeader> {
                self.header.as_ref()
            }
        })*
    };
}

headed!(
    vane_proto::etcdserverpb::RangeResponse,
    vane_proto::etcdserverpb::PutResponse,
    vane_proto::etcdserverpb::DeleteRangeResponse,
    vane_proto::etcdserverpb::TxnResponse,
    vane_proto::etcdserverpb::CompactionResponse,
    vane_proto::etcdserverpb::LeaseGrantResponse,
    vane_proto::etcdserverpb::LeaseRevokeResponse,
    vane_proto::etcdserverpb::LeaseTimeToLiveResponse,
    vane_proto::etcdserverpb::LeaseLeasesResponse,
    vane_proto::etcdserverpb::LeaseKeepAliveResponse,
    vane_proto::etcdserverpb::MemberListResponse,
    vane_proto::etcdserverpb::MemberAddResponse,
    vane_proto::etcdserverpb::MemberRemoveResponse,
    vane_proto::etcdserverpb::MemberUpdateResponse,
    vane_proto::etcdserverpb::MemberPromoteResponse,
    vane_proto::etcdserverpb::AlarmResponse,
    vane_proto::etcdserverpb::StatusResponse,
    vane_proto::etcdserverpb::HashKvResponse,
    vane_proto::etcdserverpb::AuthEnableResponse,
    vane_proto::etcdserverpb::AuthDisableResponse,
    vane_proto::etcdserverpb::AuthStatusResponse,
    vane_proto::etcdserverpb::AuthenticateResponse,
    vane_proto::etcdserverpb::AuthUserAddResponse,
    vane_proto::etcdserverpb::AuthUserGetResponse,
    vane_proto::etcdserverpb::AuthUserListResponse,
    vane_proto::etcdserverpb::AuthUserDeleteResponse,
    vane_proto::etcdserverpb::AuthUserChangePasswordResponse,
    vane_proto::etcdserverpb::AuthUserGrantRoleResponse,
    vane_proto::etcdserverpb::AuthUserRevokeRoleResponse,
    vane_proto::etcdserverpb::AuthRoleAddResponse,
    vane_proto::etcdserverpb::AuthRoleGetResponse,
    vane_proto::etcdserverpb::AuthRoleListResponse,
    vane_proto::etcdserverpb::AuthRoleDeleteResponse,
    vane_proto::etcdserverpb::AuthRoleGrantPermissionResponse,
    vane_proto::etcdserverpb::AuthRoleRevokePermissionResponse,
);

impl Headed for vane_proto::api::OpenSessionResponse {
    fn header(&self) -> Option<&ResponseHeader> {
        None
    }
}

impl Headed for vane_proto::api::CloseSessionResponse {
    fn header(&self) -> Option<&ResponseHeader> {
        None
    }
}

/// What every clone of a [`Client`] shares.
pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    pub(crate) pool: MemberPool,
    pub(crate) sessions: Sessions,
    /// The auth token every request carries, when `config.credentials` are set.
    pub(crate) token: TokenSlot,
    pub(crate) counters: Counters,
}

impl Client {
    /// Connects to the cluster: checks the configuration, reaches one of the endpoints
    /// within `dial_timeout` and, with `discover_members`, learns the other members.
    /// With `credentials` it authenticates, as etcd's clients do when they dial.
    /// Fails with [`Error::Unavailable`] when no endpoint answers, and with
    /// [`Error::Authentication`] when the user name or password is refused.
    pub async fn connect(config: ClientConfig) -> Result<Client, Error> {
        let tls = config.tls.as_ref().map(client_config).transpose()?;
        let dialer = Dialer::new(config.dial_timeout, tls).named(&config.name);
        let seeds = config
            .endpoints
            .iter()
            .flat_map(|e| e.split(','))
            .filter(|e| !e.trim().is_empty())
            .map(|e| normalize_endpoint_with(e, dialer.default_scheme()))
            .collect::<Result<Vec<_>, _>>()?;
        if config.request_timeout.is_zero() || config.attempt_timeout.is_zero() {
            return Err(Error::invalid(
                "request_timeout and attempt_timeout must be positive",
            ));
        }
        let token = TokenSlot::default();
        let pool = MemberPool::new(&seeds, dialer, token.clone())?;
        let client = Client {
            inner: Arc::new(Inner {
                config,
                pool,
                sessions: Sessions::default(),
                token,
                counters: Counters::default(),
            }),
        };
        client.inner.reach_cluster().await?;
        let deadline = Instant::now() + client.inner.config.dial_timeout;
        client.inner.authenticate(deadline).await?;
        Ok(client)
    }

    /// The client URLs of the members this client talks to (seeds and discovered ones).
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.pool.urls()
    }

    /// The configuration the client was connected with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// What the retry machinery has done so far.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            attempts_failed: c.attempts_failed.load(Ordering::Relaxed),
            attempts_timed_out: c.attempts_timed_out.load(Ordering::Relaxed),
            writes_retried_after_unknown_outcome: c
                .writes_retried_after_unknown_outcome
                .load(Ordering::Relaxed),
            sessions_opened: c.sessions_opened.load(Ordering::Relaxed),
            tokens_obtained: c.tokens_obtained.load(Ordering::Relaxed),
        }
    }

    /// Closes the exactly-once sessions, if any are open, so the cluster forgets them now
    /// rather than after `session_ttl`. Writes after this open a new one. Call it before
    /// dropping the last clone of a client that wrote.
    pub async fn close(&self) -> Result<(), Error> {
        let _opening = self.inner.sessions.opening.lock().await;
        let deadline = self.inner.deadline();
        for session_id in self.inner.sessions.take_all() {
            self.inner.close_session(session_id, deadline).await?;
        }
        Ok(())
    }
}

impl Inner {
    async fn close_session(&self, session_id: u64, deadline: Instant) -> Result<(), Error> {
        let closed = self
            .call(
                "close session",
                Route::Write,
                Retry::Always,
                deadline,
                &mut Attempts::default(),
                |channel| async move {
                    SessionClient::new(channel)
                        .close(CloseSessionRequest { session_id })
                        .await
                        .map(|r| r.into_inner())
                },
            )
            .await;
        match closed {
            // Already forgotten (expired, or a retried close): nothing left to do.
            Ok(_) | Err(Error::SessionExpired { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Closes the sessions whose last straggler returned, in the background: the write
    /// that notices does not wait, and a close that fails leaves the session to expire.
    fn close_drained_sessions(self: &Arc<Self>) {
        let drained = self.sessions.take_drained();
        if drained.is_empty() {
            return;
        }
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let deadline = inner.deadline();
            for session_id in drained {
                if let Err(e) = inner.close_session(session_id, deadline).await {
                    tracing::debug!(session = session_id, error = %e, "closing a drained session failed; it will expire");
                }
            }
        });
    }
}

impl Inner {
    /// The deadline of a call starting now.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.config.request_timeout
    }

    /// Reaches one member within `dial_timeout`: MemberList when discovering members
    /// (which also fills the pool), else Status.
    async fn reach_cluster(&self) -> Result<(), Error> {
        let deadline = Instant::now() + self.config.dial_timeout;
        if self.config.discover_members {
            let members = self
                .call(
                    "member list",
                    Route::Read,
                    Retry::Always,
                    deadline,
                    &mut Attempts::default(),
                    |channel| async move {
                        ClusterClient::new(channel)
                            .member_list(MemberListRequest {
                                linearizable: false,
                            })
                            .await
                            .map(|r| r.into_inner())
                    },
                )
                .await?;
            self.pool.merge_members(&members.members)?;
        } else {
            let status = self
                .call(
                    "status",
                    Route::Read,
                    Retry::Always,
                    deadline,
                    &mut Attempts::default(),
                    |channel| async move {
                        MaintenanceClient::new(channel)
                            .status(StatusRequest {})
                            .await
                            .map(|r| r.into_inner())
                    },
                )
                .await?;
            self.pool.learn_leader(status.leader, status.raft_term);
        }
        Ok(())
    }

    /// Runs one unary request with failover: `attempt` is called with a member's channel
    /// until it succeeds, fails finally, or `deadline` passes. `retry` says whether an
    /// attempt that may have been applied may be repeated; `attempts` records whether
    /// one was. A refused token is replaced by authenticating again, once per call, and
    /// the request sent again at once (the refusal happened before anything was applied).
    pub(crate) async fn call<T, F, Fut>(
        &self,
        what: &'static str,
        route: Route,
        retry: Retry,
        deadline: Instant,
        attempts: &mut Attempts,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        T: Headed,
        F: FnMut(Conn) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut backoff = Backoff::default();
        let mut avoid: Option<String> = None;
        let mut last: Option<Failure> = None;
        let mut reauthenticated = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.gave_up(what, route, last, attempts));
            }
            if route == Route::Write {
                self.probe_leader(deadline).await;
            }
            let pick = self.pool.pick(route, avoid.as_deref());
            let budget = self
                .config
                .attempt_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let token_generation = self.token.generation();
            let failure = match tokio::time::timeout(budget, attempt(pick.channel.clone())).await {
                Ok(Ok(response)) => {
                    self.pool.mark_reachable(&pick.url);
                    if let Some(header) = response.header() {
                        self.pool.learn_member_id(&pick.url, header.member_id);
                        self.pool.observe_term(header.raft_term);
                    }
                    return Ok(response);
                }
                Ok(Err(status)) => {
                    if !reauthenticated && is_token_refusal(&status) {
                        reauthenticated = true;
                        if self.refresh_token(token_generation, deadline).await? {
                            continue;
                        }
                    }
                    Failure::of(&status)
                }
                Err(_elapsed) => {
                    self.counters
                        .attempts_timed_out
                        .fetch_add(1, Ordering::Relaxed);
                    Failure::Unknown(Error::Timeout {
                        message: format!(
                            "{what}: {} did not answer within {} ms",
                            pick.url,
                            budget.as_millis()
                        ),
                    })
                }
            };
            match &failure {
                Failure::Final(_) => return Err(failure.into_error()),
                Failure::Unknown(_) if retry == Retry::OnlyUnapplied => {
                    return Err(failure.into_error());
                }
                Failure::Unknown(_) => {
                    attempts.outcome_unknown = true;
                    if route == Route::Write {
                        self.counters
                            .writes_retried_after_unknown_outcome
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                Failure::NotApplied(_) => {}
            }
            self.counters
                .attempts_failed
                .fetch_add(1, Ordering::Relaxed);
            if failure.member_unreachable() {
                self.pool.mark_unreachable(&pick.url);
            } else if route == Route::Write {
                // No leader, leader changed, timed out waiting for one: whoever we
                // thought led may not any more.
                self.pool.forget_leader();
            }
            tracing::debug!(
                request = what,
                member = %pick.url,
                error = %failure.clone().into_error(),
                "attempt failed; retrying"
            );
            last = Some(failure);
            avoid = Some(pick.url);
            let pause = backoff
                .next_pause()
                .min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
        }
    }

    /// The error of a call whose deadline passed.
    fn gave_up(
        &self,
        what: &str,
        route: Route,
        last: Option<Failure>,
        attempts: &Attempts,
    ) -> Error {
        let within_ms = self.config.request_timeout.as_millis();
        let members = self.pool.urls().join(", ");
        let Some(last) = last else {
            return Error::Timeout {
                message: format!("{what}: no time left to try any member ({members})"),
            };
        };
        let unreachable = matches!(&last, Failure::NotApplied(_)) && last.member_unreachable();
        let last = last.into_error();
        if unreachable && !attempts.outcome_unknown {
            return Error::Unavailable {
                message: format!("{what}: cannot reach any of {members} ({last})"),
            };
        }
        let unknown = if route == Route::Write && attempts.outcome_unknown {
            "; the write may or may not have been applied"
        } else {
            ""
        };
        let message = format!(
            "{what}: no member answered within {within_ms} ms{unknown}; last error: {last}"
        );
        match last {
            Error::Timeout { .. } => Error::Timeout { message },
            _ if !unknown.is_empty() => Error::Timeout { message },
            _ => Error::Unavailable { message },
        }
    }

    /// Learns which member leads, when that is unknown and nobody asked a moment ago, so
    /// that writes go straight to it. Failures are ignored: writes also work through any
    /// member.
    async fn probe_leader(&self, deadline: Instant) {
        if !self.pool.claim_leader_probe() {
            return;
        }
        let pick = self.pool.pick(Route::Read, None);
        let budget = self
            .config
            .attempt_timeout
            .min(Duration::from_millis(LEADER_PROBE_TIMEOUT_MS))
            .min(deadline.saturating_duration_since(Instant::now()));
        let status = tokio::time::timeout(
            budget,
            MaintenanceClient::new(pick.channel.clone()).status(StatusRequest {}),
        )
        .await;
        let status = match status {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                if Failure::of(&status).member_unreachable() {
                    self.pool.mark_unreachable(&pick.url);
                }
                return;
            }
            Err(_) => return,
        };
        if let Some(header) = &status.header {
            self.pool.learn_member_id(&pick.url, header.member_id);
        }
        self.pool.learn_leader(status.leader, status.raft_term);
        if status.leader != 0 && !self.pool.leader_is_routable() && self.config.discover_members {
            // A leader we have no connection to: the membership changed since we looked.
            let budget = budget.min(deadline.saturating_duration_since(Instant::now()));
            let listed = tokio::time::timeout(
                budget,
                ClusterClient::new(pick.channel).member_list(MemberListRequest {
                    linearizable: false,
                }),
            )
            .await;
            if let Ok(Ok(response)) = listed
                && let Err(e) = self.pool.merge_members(&response.into_inner().members)
            {
                tracing::debug!(error = %e, "cannot adopt the reported membership");
            }
        }
    }

    /// Runs a write: like [`Inner::call`] on the write route, and with sessions on, every
    /// attempt carries the same session number so the cluster applies it once. A session
    /// the server forgot is replaced and the write sent again there, unless an earlier
    /// attempt may have been applied in the old one: then the caller is told the outcome
    /// is unknown rather than risk a duplicate.
    pub(crate) async fn write<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        deadline: Instant,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        T: Headed,
        F: FnMut(Conn, MetadataMap) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        if !self.config.sessions {
            return self
                .call(
                    what,
                    Route::Write,
                    Retry::Always,
                    deadline,
                    &mut Attempts::default(),
                    |channel| attempt(channel, MetadataMap::new()),
                )
                .await;
        }
        self.close_drained_sessions();
        loop {
            let ticket = match self.sessions.admit() {
                Admission::Ticket(ticket) => ticket,
                Admission::NeedsSession => {
                    self.open_session(deadline).await?;
                    continue;
                }
                Admission::Unsupported => {
                    return self
                        .call(
                            what,
                            Route::Write,
                            Retry::Always,
                            deadline,
                            &mut Attempts::default(),
                            |channel| attempt(channel, MetadataMap::new()),
                        )
                        .await;
                }
            };
            let mut attempts = Attempts::default();
            let anonymous = !self.token.has_token();
            let result = self
                .call(
                    what,
                    Route::Write,
                    Retry::Always,
                    deadline,
                    &mut attempts,
                    |channel| attempt(channel, ticket.metadata()),
                )
                .await;
            match result {
                Err(Error::Permission { .. })
                    if anonymous && self.token.has_token() && !attempts.outcome_unknown =>
                {
                    // The client authenticated during this write (auth was enabled after
                    // it connected): the session it was numbered in is anonymous and not
                    // this user's, so nothing was applied. Number it in the user's own.
                    tracing::debug!(
                        session = ticket.session_id,
                        "authenticated mid-write; moving to a session of the user"
                    );
                }
                Err(Error::SessionExpired { message, .. }) if attempts.outcome_unknown => {
                    self.sessions.retire(ticket.session_id);
                    return Err(Error::SessionExpired {
                        message: format!(
                            "{what}: {message}; an earlier attempt of this request may have \
                             been applied, so it was not sent again"
                        ),
                        outcome_unknown: true,
                    });
                }
                Err(Error::SessionExpired { .. }) => {
                    tracing::debug!(
                        session = ticket.session_id,
                        "session expired; opening another"
                    );
                    self.sessions.retire(ticket.session_id);
                }
                other => return other,
            }
        }
    }

    /// Opens a session unless another write just did. A cluster without the Session
    /// service (an etcd) is remembered, and writes go without sessions.
    async fn open_session(&self, deadline: Instant) -> Result<(), Error> {
        let _opening = self.sessions.opening.lock().await;
        if self.sessions.current_id().is_some() || self.sessions.unsupported() {
            return Ok(());
        }
        let ttl_ms = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        let opened = self
            .call(
                "open session",
                Route::Write,
                Retry::Always,
                deadline,
                &mut Attempts::default(),
                |channel| async move {
                    SessionClient::new(channel)
                        .open(OpenSessionRequest { ttl_ms })
                        .await
                        .map(|r| r.into_inner())
                },
            )
            .await;
        match opened {
            Ok(opened) => {
                self.counters
                    .sessions_opened
                    .fetch_add(1, Ordering::Relaxed);
                self.sessions.install(opened.session_id);
                Ok(())
            }
            Err(Error::Other {
                code: tonic::Code::Unimplemented,
                ..
            }) => {
                tracing::warn!(
                    "the cluster offers no exactly-once sessions; retried writes may apply twice"
                );
                self.sessions.mark_unsupported();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
