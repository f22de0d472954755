//! The members a client talks to: one tonic channel per member, which member leads, which
//! ones failed a moment ago, and whose turn it is to serve a read.
//!
//! Every member serves reads and forwards writes to the leader, so routing is only an
//! optimisation and a stale view is harmless: writes go to the leader when it is known
//! (one hop less), reads rotate over the members, and a member that could not be reached
//! is skipped for [`MEMBER_AVOID_MS`] so that retries go where they can succeed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use vane_proto::etcdserverpb::Member as EtcdMember;

use crate::auth::TokenSlot;
use crate::error::Error;
use crate::tls::Dialer;

/// A member's connection as every request uses it: the channel, with the current auth
/// token added to each request.
pub(crate) type Conn = InterceptedService<Channel, TokenSlot>;

/// How long a member that could not be reached is skipped when another one is available.
pub(crate) const MEMBER_AVOID_MS: u64 = 1_000;
/// Shortest pause between two Status probes for the leader: a burst of writes while the
/// cluster has no leader must not turn into a burst of probes.
pub(crate) const LEADER_PROBE_INTERVAL_MS: u64 = 200;
/// HTTP/2 ping interval on idle connections, so a member that vanished without closing
/// its sockets (power loss, partition) is noticed before a request waits on it.
const KEEP_ALIVE_INTERVAL_MS: u64 = 10_000;
/// How long a ping may go unanswered before the connection is dropped.
const KEEP_ALIVE_TIMEOUT_MS: u64 = 5_000;

/// Which members suit a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Any member; rotate to spread load.
    Read,
    /// The leader if known (it proposes without a forwarding hop), else any member.
    Write,
}

/// The member chosen for one attempt.
#[derive(Clone, Debug)]
pub(crate) struct Pick {
    /// Its client URL, as normalised by [`normalize_endpoint`].
    pub(crate) url: String,
    /// Its connection, shared by every request to it.
    pub(crate) channel: Conn,
}

/// `host:port`, `http://host:port` or `https://host:port` as the URL tonic takes; a bare
/// `host:port` is `http://`.
pub fn normalize_endpoint(endpoint: &str) -> Result<String, Error> {
    normalize_endpoint_with(endpoint, "http")
}

/// [`normalize_endpoint`] with `scheme` for a bare `host:port`.
pub(crate) fn normalize_endpoint_with(endpoint: &str, scheme: &str) -> Result<String, Error> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(Error::invalid("an endpoint is empty; give host:port"));
    }
    let url = if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        trimmed.to_string()
    } else if trimmed.contains("://") {
        return Err(Error::invalid(format!(
            "endpoint {trimmed}: unknown scheme; give host:port, http://host:port or https://host:port"
        )));
    } else {
        format!("{scheme}://{trimmed}")
    };
    Endpoint::from_shared(url.clone()).map_err(|e| {
        Error::invalid(format!(
            "endpoint {endpoint:?} is not a valid host:port or URL: {e}"
        ))
    })?;
    Ok(url)
}

/// A lazily connected channel to `url`: creating it never blocks and never fails on an
/// unreachable member; the first request connects, bounded by the dial timeout. Its
/// requests carry the token in `token`.
pub(crate) fn lazy_channel(url: &str, dialer: &Dialer, token: &TokenSlot) -> Result<Conn, Error> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| Error::invalid(format!("endpoint {url} is not a valid URL: {e}")))?
        .connect_timeout(dialer.dial_timeout)
        .user_agent(dialer.user_agent.clone())
        .map_err(|e| {
            Error::invalid(format!(
                "client name {:?} cannot be sent in a user agent: {e}",
                dialer.user_agent
            ))
        })?
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_millis(KEEP_ALIVE_INTERVAL_MS))
        .keep_alive_timeout(Duration::from_millis(KEEP_ALIVE_TIMEOUT_MS))
        .keep_alive_while_idle(true);
    let channel = dialer.channel(endpoint, url)?;
    Ok(InterceptedService::new(channel, token.clone()))
}

struct Member {
    url: String,
    channel: Conn,
    /// Its Raft member id, once MemberList or its Status said.
    id: Option<u64>,
    /// Skip it until then, if another member is available.
    avoid_until: Option<Instant>,
    /// Whether it was given in the configuration (kept even if MemberList omits it).
    seed: bool,
}

/// The leader as last learned, and the term it was learned in: a response from a later
/// term means an election happened since, so the hint is dropped.
#[derive(Clone, Copy, Debug)]
struct Leader {
    id: u64,
    term: u64,
}

struct PoolState {
    members: Vec<Member>,
    leader: Option<Leader>,
    /// Index of the member that serves the next rotated request.
    turn: usize,
    leader_probed_at: Option<Instant>,
}

/// Connections to every known member and the routing state. The state sits behind a
/// std mutex: it is held for a few field reads and writes, never across an await.
pub(crate) struct MemberPool {
    dialer: Dialer,
    token: TokenSlot,
    state: Mutex<PoolState>,
}

impl MemberPool {
    /// A pool of the seed endpoints (already normalised), none connected yet, whose
    /// requests carry the token in `token`.
    pub(crate) fn new(
        seeds: &[String],
        dialer: Dialer,
        token: TokenSlot,
    ) -> Result<MemberPool, Error> {
        let mut members: Vec<Member> = Vec::with_capacity(seeds.len());
        for url in seeds {
            if members.iter().any(|m| &m.url == url) {
                continue;
            }
            members.push(Member {
                url: url.clone(),
                channel: lazy_channel(url, &dialer, &token)?,
                id: None,
                avoid_until: None,
                seed: true,
            });
        }
        if members.is_empty() {
            return Err(Error::invalid(
                "no endpoints given; name at least one member as host:port",
            ));
        }
        Ok(MemberPool {
            dialer,
            token,
            state: Mutex::new(PoolState {
                members,
                leader: None,
                turn: 0,
                leader_probed_at: None,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // A panic while holding the lock cannot leave the routing state inconsistent in
        // a way that matters (it is only hints), so a poisoned lock is simply reused.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client URLs of every known member.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.state().members.iter().map(|m| m.url.clone()).collect()
    }

    /// How many members are known.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state().members.len()
    }

    /// The pooled channel to `url` if it is a known member, else a new one: per-endpoint
    /// calls (Status, HashKV, Snapshot) may name any member.
    pub(crate) fn channel_for(&self, endpoint: &str) -> Result<Pick, Error> {
        let url = normalize_endpoint_with(endpoint, self.dialer.default_scheme())?;
        if let Some(member) = self.state().members.iter().find(|m| m.url == url) {
            return Ok(Pick {
                url,
                channel: member.channel.clone(),
            });
        }
        let channel = lazy_channel(&url, &self.dialer, &self.token)?;
        Ok(Pick { url, channel })
    }

    /// The member for the next attempt of a request on `route`, other than `avoid` (the
    /// member that just failed) when another exists.
    pub(crate) fn pick(&self, route: Route, avoid: Option<&str>) -> Pick {
        let now = Instant::now();
        let mut state = self.state();
        let usable = |m: &Member| {
            Some(m.url.as_str()) != avoid && m.avoid_until.is_none_or(|until| until <= now)
        };
        if route == Route::Write
            && let Some(leader) = state.leader
            && let Some(member) = state
                .members
                .iter()
                .find(|m| m.id == Some(leader.id) && usable(m))
        {
            return Pick {
                url: member.url.clone(),
                channel: member.channel.clone(),
            };
        }
        let count = state.members.len();
        let start = state.turn % count.max(1);
        let order: Vec<usize> = (0..count).map(|i| (start + i) % count).collect();
        let chosen = order
            .iter()
            .copied()
            .find(|&i| usable(&state.members[i]))
            .or_else(|| {
                order
                    .iter()
                    .copied()
                    .find(|&i| Some(state.members[i].url.as_str()) != avoid)
            })
            .unwrap_or(start);
        state.turn = chosen + 1;
        let member = &state.members[chosen];
        Pick {
            url: member.url.clone(),
            channel: member.channel.clone(),
        }
    }

    /// `url` could not be reached or its connection broke: skip it for a while, and
    /// forget it as leader.
    pub(crate) fn mark_unreachable(&self, url: &str) {
        let mut state = self.state();
        let until = Instant::now() + Duration::from_millis(MEMBER_AVOID_MS);
        let mut id = None;
        if let Some(member) = state.members.iter_mut().find(|m| m.url == url) {
            member.avoid_until = Some(until);
            id = member.id;
        }
        if id.is_some() && state.leader.map(|l| l.id) == id {
            state.leader = None;
        }
    }

    /// `url` answered: it is fine again.
    pub(crate) fn mark_reachable(&self, url: &str) {
        let mut state = self.state();
        if let Some(member) = state.members.iter_mut().find(|m| m.url == url) {
            member.avoid_until = None;
        }
    }

    /// The member at `url` has Raft id `id`.
    pub(crate) fn learn_member_id(&self, url: &str, id: u64) {
        if id == 0 {
            return;
        }
        let mut state = self.state();
        if let Some(member) = state.members.iter_mut().find(|m| m.url == url) {
            member.id = Some(id);
        }
    }

    /// A member reported `leader_id` as leader in `term` (0: it knows none).
    pub(crate) fn learn_leader(&self, leader_id: u64, term: u64) {
        let mut state = self.state();
        state.leader = (leader_id != 0).then_some(Leader {
            id: leader_id,
            term,
        });
    }

    /// Forgets the leader, so the next write asks who leads.
    pub(crate) fn forget_leader(&self) {
        self.state().leader = None;
    }

    /// A response carried Raft term `term`: if an election happened since the leader was
    /// learned, the hint is stale.
    pub(crate) fn observe_term(&self, term: u64) {
        let mut state = self.state();
        if state.leader.is_some_and(|l| term > l.term) {
            state.leader = None;
        }
    }

    /// Whether the leader's id is known and is one of the pooled members.
    pub(crate) fn leader_is_routable(&self) -> bool {
        let state = self.state();
        state
            .leader
            .is_some_and(|l| state.members.iter().any(|m| m.id == Some(l.id)))
    }

    /// Whether the leader should be asked for now: it is not known, and nobody asked a
    /// moment ago. Claims the probe, so concurrent writes do not all ask.
    pub(crate) fn claim_leader_probe(&self) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        let routable = state
            .leader
            .is_some_and(|l| state.members.iter().any(|m| m.id == Some(l.id)));
        if routable {
            return false;
        }
        let recent = state.leader_probed_at.is_some_and(|at| {
            now.saturating_duration_since(at) < Duration::from_millis(LEADER_PROBE_INTERVAL_MS)
        });
        if recent {
            return false;
        }
        state.leader_probed_at = Some(now);
        true
    }

    /// Adopts the membership a member reported: adds members not known yet (by their
    /// first client URL), records ids, and drops discovered members that left. Seeds
    /// stay: the caller named them.
    pub(crate) fn merge_members(&self, reported: &[EtcdMember]) -> Result<(), Error> {
        let mut additions: Vec<(String, u64)> = Vec::new();
        for member in reported {
            for client_url in &member.client_ur_ls {
                match normalize_endpoint_with(client_url, self.dialer.default_scheme()) {
                    Ok(url) => additions.push((url, member.id)),
                    Err(e) => {
                        tracing::debug!(%client_url, error = %e, "ignoring a member's client URL")
                    }
                }
            }
        }
        let mut state = self.state();
        state
            .members
            .retain(|m| m.seed || additions.iter().any(|(url, _)| *url == m.url));
        for (url, id) in additions {
            if let Some(member) = state.members.iter_mut().find(|m| m.url == url) {
                member.id = Some(id);
                continue;
            }
            // A member may list several client URLs; one connection per member is enough.
            if state.members.iter().any(|m| m.id == Some(id)) {
                continue;
            }
            let channel = lazy_channel(&url, &self.dialer, &self.token)?;
            state.members.push(Member {
                url,
                channel,
                id: Some(id),
                avoid_until: None,
                seed: false,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised_and_bad_ones_refused() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:2379").unwrap(),
            "http://127.0.0.1:2379"
        );
        assert_eq!(
            normalize_endpoint(" http://10.0.0.1:2379/ ").unwrap(),
            "http://10.0.0.1:2379"
        );
        assert!(normalize_endpoint("").is_err());
        assert_eq!(normalize_endpoint("https://a:1").unwrap(), "https://a:1");
        assert_eq!(
            normalize_endpoint_with("a:1", "https").unwrap(),
            "https://a:1"
        );
        assert!(normalize_endpoint("unix:///tmp/x").is_err());
    }

    fn member(id: u64, url: &str) -> EtcdMember {
        EtcdMember {
            id,
            name: format!("n{id}"),
            client_ur_ls: vec![url.to_string()],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn writes_follow_the_leader_and_reads_rotate() {
        let pool = MemberPool::new(
            &["http://127.0.0.1:1".to_string()],
            Dialer::new(Duration::from_millis(100), None),
            TokenSlot::default(),
        )
        .unwrap();
        pool.merge_members(&[
            member(11, "127.0.0.1:1"),
            member(22, "http://127.0.0.1:2"),
            member(33, "http://127.0.0.1:3"),
        ])
        .unwrap();
        assert_eq!(pool.len(), 3);

        let reads: Vec<String> = (0..3).map(|_| pool.pick(Route::Read, None).url).collect();
        let mut sorted = reads.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 3, "reads rotate over every member: {reads:?}");

        assert!(pool.claim_leader_probe());
        assert!(
            !pool.claim_leader_probe(),
            "a second probe right away is refused"
        );
        pool.learn_leader(22, 5);
        assert!(pool.leader_is_routable());
        for _ in 0..3 {
            assert_eq!(pool.pick(Route::Write, None).url, "http://127.0.0.1:2");
        }
        assert_ne!(
            pool.pick(Route::Write, Some("http://127.0.0.1:2")).url,
            "http://127.0.0.1:2"
        );

        pool.observe_term(5);
        assert!(pool.leader_is_routable());
        pool.observe_term(6);
        assert!(!pool.leader_is_routable(), "a later term drops the hint");

        pool.learn_leader(33, 6);
        pool.mark_unreachable("http://127.0.0.1:3");
        assert!(
            !pool.leader_is_routable(),
            "an unreachable leader is forgotten"
        );
        for _ in 0..4 {
            assert_ne!(pool.pick(Route::Read, None).url, "http://127.0.0.1:3");
        }
        pool.mark_reachable("http://127.0.0.1:3");

        pool.merge_members(&[member(11, "127.0.0.1:1"), member(22, "127.0.0.1:2")])
            .unwrap();
        assert_eq!(
            pool.urls(),
            vec!["http://127.0.0.1:1", "http://127.0.0.1:2"],
            "a removed member is dropped"
        );
    }
}
