//! The few etcd v3 calls the launcher makes (Status, MemberList, MemberAdd,
//! MemberPromote, MemberRemove), each bounded by one deadline. Connection failures come
//! back as `Unavailable` statuses so that callers decide about retries on one type.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
pub use vane_proto::etcdserverpb::Member;
use vane_proto::etcdserverpb::cluster_client::ClusterClient;
use vane_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use vane_proto::etcdserverpb::{
    MemberAddRequest, MemberAddResponse, MemberListRequest, MemberPromoteRequest,
    MemberRemoveRequest, StatusRequest, StatusResponse,
};

use crate::error::ClusterError;

/// How long establishing a connection to a member may take, in milliseconds; a local
/// member that does not accept within this is down, not slow.
const CONNECT_TIMEOUT_MS: u64 = 500;

async fn channel(url: &str, rpc_timeout_ms: u64) -> Result<Channel, Status> {
    Endpoint::from_shared(url.to_string())
        .map_err(|e| Status::invalid_argument(format!("bad URL {url}: {e}")))?
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(rpc_timeout_ms))
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("cannot connect: {e}")))
}

/// Maintenance.Status of the member at `url`.
pub async fn status(url: &str, rpc_timeout_ms: u64) -> Result<StatusResponse, Status> {
    let mut client = MaintenanceClient::new(channel(url, rpc_timeout_ms).await?);
    Ok(client.status(StatusRequest {}).await?.into_inner())
}

/// Cluster.MemberList as the member at `url` knows it.
pub async fn member_list(url: &str, rpc_timeout_ms: u64) -> Result<Vec<Member>, Status> {
    let mut client = ClusterClient::new(channel(url, rpc_timeout_ms).await?);
    let request = MemberListRequest { linearizable: true };
    Ok(client.member_list(request).await?.into_inner().members)
}

/// Cluster.MemberAdd of a learner with `peer_url`.
pub async fn member_add_learner(
    url: &str,
    peer_url: &str,
    rpc_timeout_ms: u64,
) -> Result<MemberAddResponse, Status> {
    let mut client = ClusterClient::new(channel(url, rpc_timeout_ms).await?);
    let request = MemberAddRequest {
        peer_ur_ls: vec![peer_url.to_string()],
        is_learner: true,
    };
    Ok(client.member_add(request).await?.into_inner())
}

/// Cluster.MemberPromote of the learner `id`.
pub async fn member_promote(url: &str, id: u64, rpc_timeout_ms: u64) -> Result<(), Status> {
    let mut client = ClusterClient::new(channel(url, rpc_timeout_ms).await?);
    client.member_promote(MemberPromoteRequest { id }).await?;
    Ok(())
}

/// Cluster.MemberRemove of `id`.
pub async fn member_remove(url: &str, id: u64, rpc_timeout_ms: u64) -> Result<(), Status> {
    let mut client = ClusterClient::new(channel(url, rpc_timeout_ms).await?);
    client.member_remove(MemberRemoveRequest { id }).await?;
    Ok(())
}

/// Whether a refusal of MemberPromote means "not yet": etcd answers a learner that has
/// not caught up with `FailedPrecondition` ("can only promote a learner member which is
/// in sync with leader"), and a leader change in between surfaces as `Unavailable`.
pub fn promote_may_succeed_later(status: &Status) -> bool {
    let message = status.message().to_ascii_lowercase();
    matches!(
        status.code(),
        Code::FailedPrecondition | Code::Unavailable | Code::DeadlineExceeded | Code::Aborted
    ) || message.contains("in sync")
        || message.contains("not ready")
        || message.contains("caught up")
}

/// The crate error for a failed call: `Unimplemented` gets its own variant because the
/// fix is a newer `vaned`, not a retry.
pub fn to_cluster_error(operation: &'static str, url: &str, status: Status) -> ClusterError {
    if status.code() == Code::Unimplemented {
        return ClusterError::Unimplemented {
            operation,
            message: status.message().to_string(),
        };
    }
    ClusterError::Rpc {
        operation,
        url: url.to_string(),
        message: format!("{:?}: {}", status.code(), status.message()),
    }
}
