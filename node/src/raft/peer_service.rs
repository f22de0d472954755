//! The peer network, server side: what this member answers on its peer port. Raft's RPCs
//! go straight to openraft; a malformed message is refused with InvalidArgument and never
//! reaches it. A snapshot arrives as a stream of chunks written to a file as they come,
//! checked end to end, then installed.

use openraft::async_runtime::WatchReceiver;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use openraft::storage::SnapshotMeta;
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};
use vane_proto::raft as pb;
use vane_proto::raft::raft_peer_server::RaftPeer;
use vane_raft_store::SnapshotFile;
use vane_raft_store::raft::convert::{
    log_id_from_pb, stored_membership_from_pb, stored_membership_to_pb, vote_from_pb, vote_to_pb,
};

use super::messages::{
    append_from_pb, stream_result_to_pb, vote_request_from_pb, vote_response_to_pb,
};
use crate::node::Node;

/// Serves the peer RPCs of one member.
pub struct PeerService {
    node: Arc<Node>,
}

impl PeerService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        PeerService { node }
    }
}

fn fatal(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft stopped on this member: {e}"))
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<pb::StreamAppendReply, Status>> + Send>>;

#[tonic::async_trait]
impl RaftPeer for PeerService {
    type StreamAppendStream = ReplyStream;

    async fn stream_append(
        &self,
        request: Request<Streaming<pb::AppendEntriesRequest>>,
    ) -> Result<Response<Self::StreamAppendStream>, Status> {
        // A malformed request ends the stream: the leader reconnects and starts over.
        let input = tokio_stream::StreamExt::map_while(
            request.into_inner(),
            |message| match message {
                Ok(message) => match append_from_pb(message) {
                    Ok(request) => Some(request),
                    Err(status) => {
                        tracing::warn!(%status, "dropping a replication stream with a malformed request");
                        None
                    }
                },
                Err(_) => None,
            },
        );
        let output = self
            .node
            .raft
            .stream_append(Box::pin(input))
            .map(|result| result.map(stream_result_to_pb).map_err(fatal));
        Ok(Response::new(Box::pin(output)))
    }

    async fn vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteReply>, Status> {
        let request = vote_request_from_pb(request.into_inner())?;
        let response = self.node.raft.vote(request).await.map_err(fatal)?;
        Ok(Response::new(vote_response_to_pb(&response)))
    }

    async fn pre_vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteReply>, Status> {
        let request = vote_request_from_pb(request.into_inner())?;
        let response = self.node.raft.pre_vote(request).await.map_err(fatal)?;
        Ok(Response::new(vote_response_to_pb(&response)))
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::InstallSnapshotReply>, Status> {
        let mut chunks = request.into_inner();
        let meta = match chunks.next().await {
            Some(Ok(pb::SnapshotChunk {
                payload: Some(pb::snapshot_chunk::Payload::Meta(meta)),
            })) => meta,
            Some(Err(status)) => return Err(status),
            _ => {
                return Err(Status::invalid_argument(
                    "a snapshot stream must start with its meta",
                ));
            }
        };
        let vote = meta
            .vote
            .as_ref()
            .map(vote_from_pb)
            .ok_or_else(|| Status::invalid_argument("snapshot meta has no vote"))?;
        let snapshot_meta = SnapshotMeta {
            last_log_id: meta.last_log_id.as_ref().map(log_id_from_pb),
            last_membership: stored_membership_from_pb(meta.last_membership.as_ref())
                .map_err(|e| Status::invalid_argument(e.to_string()))?,
        };

        let path = self
            .node
            .data_dir
            .snapshots_path()
            .join(format!("recv-{:016x}.tmp", rand::random::<u64>()));
        let received = receive_file(&mut chunks, &path).await;
        let file = match received {
            Ok(()) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || SnapshotFile::open(&path))
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?
            }
            Err(status) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(status);
            }
        };
        let file = match file {
            Ok(file) => file,
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(Status::invalid_argument(format!(
                    "received snapshot is unusable: {e}"
                )));
            }
        };
        let snapshot = openraft::Snapshot {
            meta: snapshot_meta,
            snapshot: file,
        };
        let response = self
            .node
            .raft
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(fatal);
        let _ = tokio::fs::remove_file(&path).await;
        let response = response?;
        Ok(Response::new(pb::InstallSnapshotReply {
            vote: Some(vote_to_pb(&response.vote)),
        }))
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderReply>, Status> {
        let request = request.into_inner();
        let from = request
            .from_leader
            .as_ref()
            .map(vote_from_pb)
            .ok_or_else(|| Status::invalid_argument("transfer-leader request has no vote"))?;
        let transfer = openraft::raft::TransferLeaderRequest::new(
            from,
            request.to_node_id,
            request.last_log_id.as_ref().map(log_id_from_pb),
        );
        match self
            .node
            .raft
            .handle_transfer_leader(transfer)
            .await
            .map_err(fatal)?
        {
            Ok(()) => Ok(Response::new(pb::TransferLeaderReply {})),
            Err(e) => Err(Status::failed_precondition(e.to_string())),
        }
    }

    async fn forward(
        &self,
        request: Request<pb::Command>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        let result = self.node.propose_forwarded(request.into_inner()).await?;
        Ok(Response::new(result))
    }

    async fn forward_batch(
        &self,
        request: Request<pb::ForwardBatchRequest>,
    ) -> Result<Response<pb::ForwardBatchReply>, Status> {
        Ok(Response::new(
            crate::forward::propose_batch(self.node.clone(), request.into_inner()).await,
        ))
    }

    type ForwardBatchesStream = crate::forward::BatchReplies;

    async fn forward_batches(
        &self,
        request: Request<Streaming<pb::ForwardBatchRequest>>,
    ) -> Result<Response<Self::ForwardBatchesStream>, Status> {
        Ok(Response::new(crate::forward::serve_batches(
            self.node.clone(),
            request.into_inner(),
        )))
    }

    async fn read_index(
        &self,
        _request: Request<pb::ReadIndexRequest>,
    ) -> Result<Response<pb::ReadIndexReply>, Status> {
        let index = self.node.leader_read_index().await?;
        Ok(Response::new(pb::ReadIndexReply { index }))
    }

    async fn members(
        &self,
        _request: Request<pb::MembersRequest>,
    ) -> Result<Response<pb::MembersReply>, Status> {
        let metrics = self.node.raft.metrics();
        let (membership, leader) = {
            let m = metrics.borrow_watched();
            (
                stored_membership_to_pb(&m.membership_config),
                m.current_leader.unwrap_or(0),
            )
        };
        Ok(Response::new(pb::MembersReply {
            membership: Some(membership),
            leader_id: leader,
            cluster_id: self.node.cluster_id,
        }))
    }

    async fn publish_member(
        &self,
        request: Request<pb::PublishMemberRequest>,
    ) -> Result<Response<pb::PublishMemberReply>, Status> {
        let request = request.into_inner();
        let node = request
            .node
            .ok_or_else(|| Status::invalid_argument("publish-member request has no node"))?;
        self.node.set_member_node(request.member_id, node).await?;
        Ok(Response::new(pb::PublishMemberReply {}))
    }

    async fn change_members(
        &self,
        request: Request<pb::MembershipChange>,
    ) -> Result<Response<pb::MembershipChangeReply>, Status> {
        let reply = self
            .node
            .change_members_as_leader(request.into_inner())
            .await?;
        Ok(Response::new(reply))
    }

    async fn lease_keep_alive(
        &self,
        request: Request<vane_proto::etcdserverpb::LeaseKeepAliveRequest>,
    ) -> Result<Response<vane_proto::etcdserverpb::LeaseKeepAliveResponse>, Status> {
        let id = request.into_inner().id;
        let ttl = self.node.renew_lease_as_leader(id).await?;
        Ok(Response::new(
            vane_proto::etcdserverpb::LeaseKeepAliveResponse {
                header: self.node.header(self.node.state_machine.applied().revision),
                id,
                ttl,
            },
        ))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<vane_proto::etcdserverpb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<vane_proto::etcdserverpb::LeaseTimeToLiveResponse>, Status> {
        Ok(Response::new(
            self.node
                .lease_time_to_live_as_leader(&request.into_inner())
                .await?,
        ))
    }

    async fn watchers(
        &self,
        request: Request<vane_proto::api::WatchersRequest>,
    ) -> Result<Response<vane_proto::api::WatchersReply>, Status> {
        let request = request.into_inner();
        if request.events.len() > vane_raft_store::impact::IMPACT_KEYS_LISTED {
            return Err(Status::invalid_argument(format!(
                "vane: a watcher listing takes at most {} events",
                vane_raft_store::impact::IMPACT_KEYS_LISTED
            )));
        }
        let (watchers, count) = self
            .node
            .watchers
            .receiving(&request.events, request.limit as usize);
        Ok(Response::new(vane_proto::api::WatchersReply {
            watchers,
            count,
        }))
    }
}

async fn receive_file(
    chunks: &mut Streaming<pb::SnapshotChunk>,
    path: &std::path::Path,
) -> Result<(), Status> {
    let io = |e: std::io::Error| Status::internal(format!("writing received snapshot: {e}"));
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    while let Some(chunk) = chunks.next().await {
        match chunk?.payload {
            Some(pb::snapshot_chunk::Payload::Data(data)) => {
                file.write_all(&data).await.map_err(io)?
            }
            _ => {
                return Err(Status::invalid_argument(
                    "snapshot chunk after the meta must carry data",
                ));
            }
        }
    }
    file.sync_all().await.map_err(io)?;
    Ok(())
}
