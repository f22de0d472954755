//! etcd's KV service: Range, Put, DeleteRange, Txn, Compact.
//!
//! Range is linearizable unless the request asks for `serializable`: it waits for a read
//! index confirmed by a quorum and for the local apply to reach it, then reads the local
//! state, so followers serve linearizable reads too. Writes are proposed (forwarded to
//! the leader from a follower) and answered with the state machine's result.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vane_proto::etcdserverpb::kv_server::Kv;
use vane_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use vane_proto::raft::command::Op;
use vane_proto::raft::command_result::Result as Outcome;
use vane_raft_store::{
    Limits, check_delete_request, check_put_request, check_range_request, check_txn_request,
};

use crate::errors;
use crate::node::Node;
use crate::session::SessionTag;

/// Serves the KV API of one member.
pub struct KvService {
    node: Arc<Node>,
}

impl KvService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        KvService { node }
    }

    async fn write(&self, op: Op, session: Option<SessionTag>) -> Result<(i64, Outcome), Status> {
        self.node.check_quota(&op).await?;
        let result = self.node.propose_in(op, session).await?;
        match result.result {
            Some(Outcome::Error(e)) => Err(errors::from_command(&e)),
            Some(outcome) => Ok((result.revision, outcome)),
            None => Err(Status::internal(
                "vane: the state machine returned no result",
            )),
        }
    }
}

fn unexpected(outcome: &Outcome) -> Status {
    Status::internal(format!("vane: unexpected result {outcome:?}"))
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        let request = request.into_inner();
        check_range_request(&request).map_err(errors::from_store)?;
        #[cfg(feature = "planted-bugs")]
        let request = RangeRequest {
            serializable: request.serializable || crate::planted::stale_reads(),
            ..request
        };
        if !request.serializable {
            self.node.linearizable_barrier().await?;
        }
        let state_machine = self.node.state_machine.clone();
        let mut response = tokio::task::spawn_blocking(move || state_machine.range(&request))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(errors::from_store)?;
        let revision = response.header.as_ref().map_or(0, |h| h.revision);
        response.header = self.node.header(revision);
        Ok(Response::new(response))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let session = SessionTag::from_metadata(request.metadata())?;
        let request = request.into_inner();
        check_put_request(&request).map_err(errors::from_store)?;
        match self.write(Op::Put(request), session).await? {
            (revision, Outcome::Put(mut response)) => {
                response.header = self.node.header(revision);
                Ok(Response::new(response))
            }
            (_, other) => Err(unexpected(&other)),
        }
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let session = SessionTag::from_metadata(request.metadata())?;
        let request = request.into_inner();
        check_delete_request(&request).map_err(errors::from_store)?;
        match self.write(Op::DeleteRange(request), session).await? {
            (revision, Outcome::DeleteRange(mut response)) => {
                response.header = self.node.header(revision);
                Ok(Response::new(response))
            }
            (_, other) => Err(unexpected(&other)),
        }
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let session = SessionTag::from_metadata(request.metadata())?;
        let request = request.into_inner();
        check_txn_request(&request, Limits::default()).map_err(errors::from_store)?;
        match self.write(Op::Txn(request), session).await? {
            (revision, Outcome::Txn(mut response)) => {
                response.header = self.node.header(revision);
                Ok(Response::new(response))
            }
            (_, other) => Err(unexpected(&other)),
        }
    }

    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let session = SessionTag::from_metadata(request.metadata())?;
        match self
            .write(Op::Compaction(request.into_inner()), session)
            .await?
        {
            (revision, Outcome::Compaction(mut response)) => {
                response.header = self.node.header(revision);
                Ok(Response::new(response))
            }
            (_, other) => Err(unexpected(&other)),
        }
    }
}
