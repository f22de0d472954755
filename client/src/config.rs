//! What a caller decides about a [`crate::Client`]: where the cluster is, how long to wait,
//! and whether writes are applied exactly once. One struct with documented defaults, so a
//! CLI flag or a config-file key maps to exactly one field.

use std::time::Duration;

/// Default bound of establishing one connection.
pub const DIAL_TIMEOUT_DEFAULT: Duration = Duration::from_secs(2);
/// Default bound of one call, retries included.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// Default bound of one attempt of a call.
pub const ATTEMPT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(2);
/// Default idle time after which the server forgets a client's session.
pub const SESSION_TTL_DEFAULT: Duration = Duration::from_secs(60);

/// How to reach a cluster and how patient to be with it; the input of
/// [`crate::Client::connect`]. Build it with struct update syntax from
/// `ClientConfig::default()`, so fields added later keep their defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Seed members, as `host:port` or `http://host:port`. With `discover_members` the
    /// client also talks to every member these report.
    pub endpoints: Vec<String>,
    /// Longest wait for a connection to one member, and for `connect` to reach any.
    /// Default 2 s.
    pub dial_timeout: Duration,
    /// Longest a call may take, every retry and failover included: after it a call fails
    /// with [`crate::Error::Timeout`] or [`crate::Error::Unavailable`]. Default 5 s.
    pub request_timeout: Duration,
    /// Longest one attempt of a call may take before the client gives up on that member
    /// and retries elsewhere (never beyond `request_timeout`). Short values fail over
    /// faster from a member that hangs, at the price of more retries. Default 2 s.
    pub attempt_timeout: Duration,
    /// Whether writes carry an exactly-once session, so that a retry of a write whose
    /// first attempt committed is answered, not applied again. Without it a retried
    /// write may apply twice, as with etcd's own clients. Default true.
    pub sessions: bool,
    /// Idle time after which the cluster forgets this client's session; a later write
    /// opens a new one transparently. Default 60 s.
    pub session_ttl: Duration,
    /// Whether to learn the other members' client URLs from MemberList, so that losing
    /// every seed endpoint is survivable. Default true.
    pub discover_members: bool,
    /// TLS towards the members (etcdctl's `--cacert`, `--cert`, `--key`); with it a
    /// bare `host:port` endpoint means `https://`. Default none.
    pub tls: Option<crate::tls::TlsFiles>,
    /// The user to authenticate as (etcdctl's `--user`, `--password`) on a cluster with
    /// auth on; the client gets a token when it connects and a new one whenever the
    /// cluster refuses the old. Default none: requests go without a token (anonymous,
    /// or the client certificate's user).
    pub credentials: Option<crate::auth::Credentials>,
    /// What this client calls itself: put first in its gRPC user agent, so that the
    /// cluster's impact previews name it as the owner of its watchers (say, the service
    /// and instance). Default empty: the agent is only `vane-client/VERSION`.
    pub name: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoints: vec!["127.0.0.1:2379".to_string()],
            dial_timeout: DIAL_TIMEOUT_DEFAULT,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            attempt_timeout: ATTEMPT_TIMEOUT_DEFAULT,
            sessions: true,
            session_ttl: SESSION_TTL_DEFAULT,
            discover_members: true,
            tls: None,
            credentials: None,
            name: String::new(),
        }
    }
}

impl ClientConfig {
    /// The default configuration for `endpoints`.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        ClientConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..ClientConfig::default()
        }
    }
}
