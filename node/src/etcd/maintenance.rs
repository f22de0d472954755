//! etcd's Maintenance service: status, hashes and defragmentation of one member.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;

use tonic::{Request, Response, Status};
use vane_proto::etcdserverpb::maintenance_server::Maintenance;
use vane_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, HashKvRequest,
    HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest, MoveLeaderResponse,
    SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};

use super::SERVER_VERSION;
use crate::errors;
use crate::node::Node;

/// Serves the Maintenance API of one member.
pub struct MaintenanceService {
    node: Arc<Node>,
}

impl MaintenanceService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        MaintenanceService { node }
    }
}

type SnapshotStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    type SnapshotStream = SnapshotStream;

    async fn alarm(
        &self,
        _request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        let revision = self.node.state_machine.applied().revision;
        Ok(Response::new(AlarmResponse {
            header: self.node.header(revision),
            alarms: Vec::new(),
        }))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let (leader, last_index, term, applied, is_learner) = {
            let metrics = self.node.raft.metrics();
            let m = metrics.borrow_watched();
            let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
            (
                m.current_leader.unwrap_or(0),
                m.last_log_index.unwrap_or(0),
                m.current_term,
                m.last_applied.as_ref().map_or(0, |l| l.index),
                !voters.contains(&self.node.member_id),
            )
        };
        let revision = self.node.state_machine.applied().revision;
        let db_size = self.node.state_machine.db_size_bytes() as i64;
        Ok(Response::new(StatusResponse {
            header: self.node.header(revision),
            version: SERVER_VERSION.to_string(),
            db_size,
            leader,
            raft_index: last_index,
            raft_term: term,
            raft_applied_index: applied,
            errors: Vec::new(),
            db_size_in_use: db_size,
            is_learner,
        }))
    }

    async fn defragment(
        &self,
        _request: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        let state_machine = self.node.state_machine.clone();
        tokio::task::spawn_blocking(move || state_machine.compact_storage())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(errors::from_store)?;
        let revision = self.node.state_machine.applied().revision;
        Ok(Response::new(DefragmentResponse {
            header: self.node.header(revision),
        }))
    }

    async fn hash(&self, _request: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let (hash, _, current) = self
            .node
            .state_machine
            .hash_kv(0)
            .map_err(errors::from_store)?;
        Ok(Response::new(HashResponse {
            header: self.node.header(current),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        request: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        let revision = request.into_inner().revision;
        let state_machine = self.node.state_machine.clone();
        let (hash, compact_revision, current) =
            tokio::task::spawn_blocking(move || state_machine.hash_kv(revision))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(errors::from_store)?;
        Ok(Response::new(HashKvResponse {
            header: self.node.header(current),
            hash,
            compact_revision,
        }))
    }

    async fn snapshot(
        &self,
        _request: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(Status::unimplemented(
            "vane: snapshot streaming in etcd's format is not available yet in this build",
        ))
    }

    async fn move_leader(
        &self,
        _request: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        Err(Status::unimplemented(
            "vane: MoveLeader is not available yet in this build",
        ))
    }
}
