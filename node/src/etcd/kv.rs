//! etcd's KV service: Range, Put, DeleteRange, Txn, Compact.
//!
//! Range is linearizable unless the request asks for `serializable`: it waits for a read
//! index confirmed by a quorum and for the local apply to reach it, then reads the local
//! state, so followers serve linearizable reads too. Writes are proposed (forwarded to
//! the leader from a follower) and answered with the state machine's result. A Txn that
//! only reads is a read, as in etcd: no log entry, linearizable unless every range in it
//! asks to be serializable.
//!
//! With auth on, a Range needs read on its range (checked in the snapshot it reads), a
//! Put or DeleteRange write, a Txn read on every compare and whatever every operation of
//! both branches needs, and Compact the root role (see `vane_raft_store::auth`).

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
    Limits, StateMachine, StoreError, check_delete_request, check_put_request, check_range_request,
    check_txn_request, reads_only, reads_serializable,
};

use vane_raft_store::auth::accesses_of;

use crate::auth::Caller;
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

    async fn write(
        &self,
        op: Op,
        session: Option<SessionTag>,
        caller: &Caller,
    ) -> Result<(i64, Outcome), Status> {
        self.node.authorize(caller, &accesses_of(&op)).await?;
        self.node.check_quota(&op).await?;
        let result = self.node.propose_as(op, session, caller).await?;
        match result.result {
            Some(Outcome::Error(e)) => Err(errors::from_command(&e)),
            Some(outcome) => Ok((result.revision, outcome)),
            None => Err(Status::internal(
                "vane: the state machine returned no result",
            )),
        }
    }

    /// Answers a txn that only reads from this member's state, as a Range is answered:
    /// after a read index unless every range in it is serializable, then on one snapshot,
    /// from memory on this thread or, when it needs the disk, in the blocking pool.
    /// Proposing it instead would cost a log entry, an fsync on a quorum and an apply on
    /// every member, to change nothing.
    async fn read_txn(
        &self,
        request: TxnRequest,
        caller: Caller,
    ) -> Result<Response<TxnResponse>, Status> {
        #[cfg(feature = "planted-bugs")]
        let serializable = reads_serializable(&request) || crate::planted::stale_reads();
        #[cfg(not(feature = "planted-bugs"))]
        let serializable = reads_serializable(&request);
        if !serializable {
            self.node.linearizable_barrier().await?;
        }
        let mut response = read(
            self.node.state_machine.clone(),
            (caller, request),
            |state_machine, (caller, request)| state_machine.txn_read_in_memory(caller, request),
            |state_machine, (caller, request)| state_machine.txn_read_as(&caller, &request),
        )
        .await?;
        let revision = response.header.as_ref().map_or(0, |h| h.revision);
        response.header = self.node.header(revision);
        Ok(Response::new(response))
    }
}

/// Answers a read with `in_memory` on this thread when memory holds what it reads (the
/// current-version cache, memtables, the block cache), else with `blocking` in the
/// blocking pool: only a read that would wait on the disk, or read many records, pays for
/// the two thread hand-offs.
async fn read<A, T>(
    state_machine: Arc<StateMachine>,
    request: A,
    in_memory: impl FnOnce(&StateMachine, &A) -> Result<Option<T>, StoreError>,
    blocking: impl FnOnce(&StateMachine, A) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Status>
where
    A: Send + 'static,
    T: Send + 'static,
{
    if let Some(answer) = in_memory(&state_machine, &request).map_err(errors::from_store)? {
        return Ok(answer);
    }
    tokio::task::spawn_blocking(move || blocking(&state_machine, request))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(errors::from_store)
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
        let (metadata, _, request) = request.into_parts();
        check_range_request(&request).map_err(errors::from_store)?;
        let caller = self.node.caller(&metadata).await?;
        #[cfg(feature = "planted-bugs")]
        let request = RangeRequest {
            serializable: request.serializable || crate::planted::stale_reads(),
            ..request
        };
        if !request.serializable {
            self.node.linearizable_barrier().await?;
        }
        let mut response = read(
            self.node.state_machine.clone(),
            (caller, request),
            |state_machine, (caller, request)| state_machine.range_in_memory(caller, request),
            |state_machine, (caller, request)| state_machine.range_as(&caller, &request),
        )
        .await?;
        let revision = response.header.as_ref().map_or(0, |h| h.revision);
        response.header = self.node.header(revision);
        Ok(Response::new(response))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let session = SessionTag::from_metadata(request.metadata())?;
        let (metadata, _, request) = request.into_parts();
        check_put_request(&request).map_err(errors::from_store)?;
        let caller = self.node.caller(&metadata).await?;
        if session.is_none() && !request.ignore_value {
            // Refuse early what the namespace would refuse at apply. A retry in a session
            // goes to apply, which may hold its remembered answer.
            self.node
                .refuse_ungoverned(&request.key, &request.value, request.lease)
                .await?;
        }
        match self.write(Op::Put(request), session, &caller).await? {
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
        let (metadata, _, request) = request.into_parts();
        check_delete_request(&request).map_err(errors::from_store)?;
        let caller = self.node.caller(&metadata).await?;
        match self
            .write(Op::DeleteRange(request), session, &caller)
            .await?
        {
            (revision, Outcome::DeleteRange(mut response)) => {
                response.header = self.node.header(revision);
                Ok(Response::new(response))
            }
            (_, other) => Err(unexpected(&other)),
        }
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let session = SessionTag::from_metadata(request.metadata())?;
        let (metadata, _, request) = request.into_parts();
        check_txn_request(&request, Limits::default()).map_err(errors::from_store)?;
        let caller = self.node.caller(&metadata).await?;
        // A retry inside a client session goes through the log like the session's other
        // requests, whatever it does.
        if session.is_none() && reads_only(&request) {
            return self.read_txn(request, caller).await;
        }
        match self.write(Op::Txn(request), session, &caller).await? {
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
        let caller = self.node.caller(request.metadata()).await?;
        match self
            .write(Op::Compaction(request.into_inner()), session, &caller)
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
