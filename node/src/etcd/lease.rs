//! etcd's Lease service. Grants and revokes go through the log; keep-alives and
//! time-to-live are answered by the leader (forwarded from a follower), which alone
//! times leases (see `crate::lease`).
//!
//! With auth on, revoking a lease needs write on every key attached to it (it deletes
//! them), as etcd; a time-to-live that lists the keys needs read on each of them. Grants
//! and keep-alives need nothing, as in etcd.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tonic::{Request, Response, Status, Streaming};
use vane_proto::etcdserverpb::lease_server::Lease;
use vane_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use vane_proto::raft::command::Op;
use vane_proto::raft::command_result::Result as Outcome;

use crate::auth::Access;
use crate::errors;
use crate::node::Node;
use crate::session::SessionTag;

/// Keep-alive responses queued ahead of a slow client.
const KEEPALIVE_RESPONSES_QUEUED_MAX: usize = 16;

/// Serves the Lease API of one member.
pub struct LeaseService {
    node: Arc<Node>,
}

impl LeaseService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        LeaseService { node }
    }
}

impl Node {
    /// Renews lease `id` on the leader, forwarding from a follower.
    pub async fn renew_lease(&self, id: i64) -> Result<i64, Status> {
        self.on_leader(
            || self.renew_lease_as_leader(id),
            move |mut client| async move {
                Ok(client
                    .lease_keep_alive(LeaseKeepAliveRequest { id })
                    .await?
                    .into_inner()
                    .ttl)
            },
        )
        .await
    }

    /// Lease `id`'s time to live, from the leader's clock.
    pub async fn lease_time_to_live(
        &self,
        request: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, Status> {
        self.on_leader(
            || self.lease_time_to_live_as_leader(&request),
            |mut client| async move { Ok(client.lease_time_to_live(request).await?.into_inner()) },
        )
        .await
    }

    /// On the leader: lease `id`'s remaining and granted TTL (and keys when asked); TTL
    /// -1 when the lease does not exist, as etcd answers.
    ///
    /// Leadership is confirmed with a quorum, and the local apply brought up to it, before
    /// answering: a deposed leader that has not noticed yet (just healed from a partition)
    /// would otherwise report leases granted since by the real leader as gone.
    pub async fn lease_time_to_live_as_leader(
        &self,
        request: &LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, Status> {
        if self.leader() != Some(self.member_id) {
            return Err(errors::not_leader());
        }
        self.linearizable_barrier().await?;
        if self.leader() != Some(self.member_id) {
            return Err(errors::not_leader());
        }
        let revision = self.state_machine.applied().revision;
        let Some(lease) = self
            .state_machine
            .lease(request.id)
            .map_err(errors::from_store)?
        else {
            return Ok(LeaseTimeToLiveResponse {
                header: self.header(revision),
                id: request.id,
                ttl: -1,
                granted_ttl: 0,
                keys: Vec::new(),
            });
        };
        let remaining = self
            .lease_deadlines
            .remaining_seconds(request.id)
            .unwrap_or(lease.ttl_seconds);
        let keys = if request.keys {
            self.state_machine
                .lease_keys(request.id)
                .map_err(errors::from_store)?
        } else {
            Vec::new()
        };
        Ok(LeaseTimeToLiveResponse {
            header: self.header(revision),
            id: request.id,
            ttl: remaining,
            granted_ttl: lease.ttl_seconds,
            keys,
        })
    }
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let session = SessionTag::from_metadata(request.metadata())?;
        let caller = self.node.caller(request.metadata()).await?;
        let mut request = request.into_inner();
        request.ttl = request.ttl.max(self.node.lease_ttl_min_seconds());
        let op = Op::LeaseGrant(request);
        self.node.check_quota(&op).await?;
        let result = self.node.propose_as(op, session, &caller).await?;
        match result.result {
            Some(Outcome::LeaseGrant(mut response)) => {
                if self.node.leader() == Some(self.node.member_id) {
                    self.node.lease_deadlines.renew(response.id, response.ttl);
                }
                response.header = self.node.header(result.revision);
                Ok(Response::new(response))
            }
            Some(Outcome::Error(e)) => Err(errors::from_command(&e)),
            other => Err(Status::internal(format!(
                "vane: unexpected result {other:?}"
            ))),
        }
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let session = SessionTag::from_metadata(request.metadata())?;
        let request_id = request.get_ref().id;
        let caller = self
            .node
            .authorized_caller(request.metadata(), &[Access::WriteLeaseKeys(request_id)])
            .await?;
        let result = self
            .node
            .propose_as(Op::LeaseRevoke(request.into_inner()), session, &caller)
            .await?;
        match result.result {
            Some(Outcome::LeaseRevoke(mut response)) => {
                response.header = self.node.header(result.revision);
                Ok(Response::new(response))
            }
            Some(Outcome::Error(e)) => Err(errors::from_command(&e)),
            other => Err(Status::internal(format!(
                "vane: unexpected result {other:?}"
            ))),
        }
    }

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut inbound = request.into_inner();
        let node = self.node.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(KEEPALIVE_RESPONSES_QUEUED_MAX);
        tokio::spawn(async move {
            while let Ok(Some(request)) = inbound.message().await {
                let response = match node.renew_lease(request.id).await {
                    Ok(ttl) => Ok(LeaseKeepAliveResponse {
                        header: node.header(node.state_machine.applied().revision),
                        id: request.id,
                        ttl,
                    }),
                    Err(status) => Err(status),
                };
                let failed = response.is_err();
                if tx.send(response).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let caller = self.node.caller(request.metadata()).await?;
        let response = self.node.lease_time_to_live(request.into_inner()).await?;
        // The keys' names are data too: listing them needs read on each (etcd closed the
        // same gap in 3.4.26).
        let reads: Vec<Access> = response
            .keys
            .iter()
            .map(|key| Access::read(key, &[]))
            .collect();
        self.node.authorize(&caller, &reads).await?;
        Ok(Response::new(response))
    }

    async fn lease_leases(
        &self,
        _request: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        // Linearizable, like a default Range: a lease just granted through another member
        // is listed.
        self.node.linearizable_barrier().await?;
        let leases = self
            .node
            .state_machine
            .leases()
            .map_err(errors::from_store)?;
        Ok(Response::new(LeaseLeasesResponse {
            header: self.node.header(self.node.state_machine.applied().revision),
            leases: leases
                .into_iter()
                .map(|l| LeaseStatus { id: l.id })
                .collect(),
        }))
    }
}
