//! The Maintenance service through the client. Status, HashKV and Snapshot are about one
//! member, so the caller names it and there is no failover; Alarm is cluster-wide and
//! fails over like any request.

use std::pin::Pin;
use std::time::Duration;

use crate::members::Conn;
use futures::{Stream, StreamExt};
use vane_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use vane_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, HashKvRequest, HashKvResponse, SnapshotRequest, SnapshotResponse,
    StatusRequest, StatusResponse,
};

use crate::client::{Attempts, Client};
use crate::error::{Error, Failure};
use crate::kv::RESPONSE_BYTES_MAX;
use crate::members::{Pick, Route};
use crate::retry::Retry;

/// The chunks of a snapshot as one member streams them; the last chunk's blob ends with
/// the SHA-256 of everything before it, as etcd's does.
pub type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Error>> + Send>>;

fn maintenance_client(channel: Conn) -> MaintenanceClient<Conn> {
    MaintenanceClient::new(channel).max_decoding_message_size(RESPONSE_BYTES_MAX)
}

impl Client {
    /// One attempt against the named member, bounded by `request_timeout`.
    async fn on_member<T, Fut>(
        &self,
        what: &str,
        endpoint: &str,
        attempt: impl FnOnce(Conn) -> Fut,
    ) -> Result<T, Error>
    where
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let Pick { url, channel } = self.inner.pool.channel_for(endpoint)?;
        let timeout: Duration = self.inner.config.request_timeout;
        match tokio::time::timeout(timeout, attempt(channel)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(status)) => {
                let failure = Failure::of(&status);
                match failure {
                    Failure::NotApplied(e) if failure_unreachable(&e) => Err(Error::Unavailable {
                        message: format!("{what}: cannot reach {url} ({e})"),
                    }),
                    other => Err(other.into_error()),
                }
            }
            Err(_) => Err(Error::Timeout {
                message: format!(
                    "{what}: {url} did not answer within {} ms",
                    timeout.as_millis()
                ),
            }),
        }
    }

    /// etcd's Status of the member at `endpoint` (`host:port` or URL): its id, the leader
    /// it follows, Raft indexes, database size.
    pub async fn status(&self, endpoint: &str) -> Result<StatusResponse, Error> {
        let status = self
            .on_member("status", endpoint, |channel| async move {
                maintenance_client(channel)
                    .status(StatusRequest {})
                    .await
                    .map(|r| r.into_inner())
            })
            .await?;
        if let Some(header) = &status.header
            && let Ok(pick) = self.inner.pool.channel_for(endpoint)
        {
            self.inner.pool.learn_member_id(&pick.url, header.member_id);
        }
        self.inner
            .pool
            .learn_leader(status.leader, status.raft_term);
        Ok(status)
    }

    /// etcd's HashKV of the member at `endpoint`, at `revision` (0: its latest): equal
    /// hashes at one revision mean equal key-value histories.
    pub async fn hash_kv(&self, endpoint: &str, revision: i64) -> Result<HashKvResponse, Error> {
        self.on_member("hash", endpoint, |channel| async move {
            maintenance_client(channel)
                .hash_kv(HashKvRequest { revision })
                .await
                .map(|r| r.into_inner())
        })
        .await
    }

    /// etcd's Snapshot from the member at `endpoint`: starting the stream is bounded by
    /// `request_timeout`, the transfer itself is not (a snapshot may be large).
    pub async fn snapshot(&self, endpoint: &str) -> Result<SnapshotStream, Error> {
        let stream = self
            .on_member("snapshot", endpoint, |channel| async move {
                maintenance_client(channel)
                    .snapshot(SnapshotRequest {})
                    .await
                    .map(|r| r.into_inner())
            })
            .await?;
        Ok(Box::pin(stream.map(|chunk| {
            chunk.map_err(|status| Error::from_status(&status))
        })))
    }

    /// etcd's Alarm: list, raise or clear alarms (NOSPACE, CORRUPT), cluster-wide.
    pub async fn alarm(&self, req: AlarmRequest) -> Result<AlarmResponse, Error> {
        self.inner
            .call(
                "alarm",
                Route::Write,
                Retry::Always,
                self.inner.deadline(),
                &mut Attempts::default(),
                |channel| async move {
                    maintenance_client(channel)
                        .alarm(req)
                        .await
                        .map(|r| r.into_inner())
                },
            )
            .await
    }
}

/// Whether a not-applied failure is the member being unreachable (as opposed to it
/// refusing for lack of a leader).
fn failure_unreachable(error: &Error) -> bool {
    Failure::NotApplied(error.clone()).member_unreachable()
}
