//! Talking etcd v3 gRPC to one node, and deciding what a failure means for the history.
//!
//! Each client opens its own channel to one node, bound to its own source address, so a
//! firewall rule could single out the link between that client and that node. Requests
//! are bounded by a deadline on the runner's side; the server's own request timeout is
//! shorter, so usually its answer arrives first.
//!
//! The one judgement that matters for correctness lives here: whether a failed request
//! *certainly* did not take effect (`fail`) or *may* have (`info`). Only failures that
//! cannot have reached the state machine, or that the state machine itself returned,
//! count as certain; everything else is unknown, because claiming a write failed when it
//! took effect would make a correct system look wrong.

use std::net::IpAddr;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use vane_proto::etcdserverpb::cluster_client::ClusterClient;
use vane_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use vane_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberPromoteRequest,
    MemberRemoveRequest, StatusRequest, StatusResponse,
};

/// How long opening a TCP connection to a node may take, in milliseconds: a local node
/// that does not accept within this is down, paused or cut off.
pub const CONNECT_TIMEOUT_MS: u64 = 1000;

/// A lazily connecting channel to `url` whose connections leave from `source`.
///
/// Lazy, so that creating a client for a node that is down is not an error: each request
/// connects if needed, and a refused connection is a certain failure of that request.
pub fn channel(url: &str, source: Option<IpAddr>) -> Result<Channel, Status> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|error| Status::invalid_argument(format!("bad URL {url}: {error}")))?
        .local_address(source)
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5));
    Ok(endpoint.connect_lazy())
}

/// Runs `request` with a deadline; running out of time is `DeadlineExceeded`.
pub async fn with_deadline<T>(
    deadline_ms: u64,
    request: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(Duration::from_millis(deadline_ms), request).await {
        Ok(result) => result,
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer within {deadline_ms} ms"
        ))),
    }
}

/// Whether a failed request may have taken effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// It certainly did not: record `fail`.
    Certain,
    /// It may have, now or later: record `info`.
    Unknown,
}

/// Classifies the failure of a request that would change the store.
///
/// Certain: the connection was never established (the request was not sent), or the
/// server answered with a code only the state machine or request validation produce
/// (invalid argument, lease not found, out of range, failed precondition, no space).
/// Unknown: timeouts, "no leader", broken connections, cancellations, internal errors.
pub fn classify_write_failure(status: &Status) -> FailureKind {
    if never_connected(status) {
        return FailureKind::Certain;
    }
    match status.code() {
        Code::InvalidArgument
        | Code::NotFound
        | Code::OutOfRange
        | Code::FailedPrecondition
        | Code::ResourceExhausted
        | Code::PermissionDenied
        | Code::Unauthenticated => FailureKind::Certain,
        _ => FailureKind::Unknown,
    }
}

/// Whether the request failed because no connection could be opened, so it was never
/// sent. tonic reports this as `Unavailable` with the connector's error in the message.
pub fn never_connected(status: &Status) -> bool {
    if status.code() != Code::Unavailable {
        return false;
    }
    let message = status.message().to_ascii_lowercase();
    let mut source_text = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        source_text.push_str(&error.to_string().to_ascii_lowercase());
        source_text.push(' ');
        source = error.source();
    }
    let text = format!("{message} {source_text}");
    text.contains("connection refused")
        || text.contains("tcp connect error")
        || text.contains("error trying to connect")
}

/// A short description of a status for the history's `error` field.
pub fn describe(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// Whether an `error` field written by [`describe`] says the node or the cluster was
/// unavailable (as opposed to a refusal on the merits, such as a failed compare).
pub fn describes_outage(error: &str) -> bool {
    [
        "Unavailable",
        "DeadlineExceeded",
        "Cancelled",
        "Unknown",
        "Internal",
        "Aborted",
    ]
    .iter()
    .any(|code| error.starts_with(&format!("{code}:")))
}

/// Maintenance.Status of the node behind `channel`.
pub async fn status(channel: Channel, deadline_ms: u64) -> Result<StatusResponse, Status> {
    let mut client = MaintenanceClient::new(channel);
    with_deadline(deadline_ms, async {
        Ok(client.status(StatusRequest {}).await?.into_inner())
    })
    .await
}

/// Cluster.MemberList, linearizable.
pub async fn member_list(channel: Channel, deadline_ms: u64) -> Result<Vec<Member>, Status> {
    let mut client = ClusterClient::new(channel);
    with_deadline(deadline_ms, async {
        let request = MemberListRequest { linearizable: true };
        Ok(client.member_list(request).await?.into_inner().members)
    })
    .await
}

/// Cluster.MemberAdd of a learner at `peer_url`.
pub async fn member_add_learner(
    channel: Channel,
    peer_url: &str,
    deadline_ms: u64,
) -> Result<MemberAddResponse, Status> {
    let mut client = ClusterClient::new(channel);
    with_deadline(deadline_ms, async {
        let request = MemberAddRequest {
            peer_ur_ls: vec![peer_url.to_string()],
            is_learner: true,
        };
        Ok(client.member_add(request).await?.into_inner())
    })
    .await
}

/// Cluster.MemberPromote of learner `id`.
pub async fn member_promote(channel: Channel, id: u64, deadline_ms: u64) -> Result<(), Status> {
    let mut client = ClusterClient::new(channel);
    with_deadline(deadline_ms, async {
        client.member_promote(MemberPromoteRequest { id }).await?;
        Ok(())
    })
    .await
}

/// Cluster.MemberRemove of member `id`.
pub async fn member_remove(channel: Channel, id: u64, deadline_ms: u64) -> Result<(), Status> {
    let mut client = ClusterClient::new(channel);
    with_deadline(deadline_ms, async {
        client.member_remove(MemberRemoveRequest { id }).await?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine_refusals_are_certain_and_timeouts_are_unknown() {
        let refused = Status::invalid_argument("etcdserver: duplicate key given in txn request");
        assert_eq!(classify_write_failure(&refused), FailureKind::Certain);
        let timed_out = Status::unavailable("etcdserver: request timed out");
        assert_eq!(classify_write_failure(&timed_out), FailureKind::Unknown);
        let deadline = Status::deadline_exceeded("no answer within 5000 ms");
        assert_eq!(classify_write_failure(&deadline), FailureKind::Unknown);
        let cancelled = Status::cancelled("h2 protocol error");
        assert_eq!(classify_write_failure(&cancelled), FailureKind::Unknown);
    }

    #[test]
    fn a_refused_connection_is_a_certain_failure() {
        let status = Status::unavailable(
            "error trying to connect: tcp connect error: Connection refused (os error 111)",
        );
        assert_eq!(classify_write_failure(&status), FailureKind::Certain);
    }

    #[tokio::test]
    async fn a_request_to_a_closed_port_never_connects() {
        // Port 9 (discard) is closed on loopback in any test environment we run in.
        let channel = channel("http://127.0.0.1:9", None).unwrap();
        let error = status(channel, 5_000).await.unwrap_err();
        assert!(never_connected(&error), "{error:?}");
    }
}
