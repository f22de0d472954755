//! etcd's Maintenance service: status, hashes and defragmentation of one member.
//!
//! With auth on, everything but Status and listing alarms needs the root role: hashes,
//! snapshots and defragmentation as in etcd 3.4, and moving the leader and raising or
//! clearing alarms too.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};
use vane_proto::etcdserverpb::maintenance_server::Maintenance;
use vane_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, HashKvRequest,
    HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest, MoveLeaderResponse,
    SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};

use vane_proto::etcdserverpb::AlarmType;
use vane_proto::etcdserverpb::alarm_request::AlarmAction;
use vane_proto::raft::command::Op;
use vane_proto::raft::command_result::Result as Outcome;

use super::SERVER_VERSION;
use crate::auth::Access;
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

/// Bytes per Snapshot response message.
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// etcdctl expects the snapshot before its checksum to be whole pages of this size.
const SNAPSHOT_PAGE_BYTES: u64 = 512;
/// Messages queued ahead of a slow client: bounds the memory one download holds.
const SNAPSHOT_CHUNKS_QUEUED_MAX: usize = 4;

async fn stream_file(
    path: &std::path::Path,
    header: Option<vane_proto::etcdserverpb::ResponseHeader>,
    tx: &tokio::sync::mpsc::Sender<Result<SnapshotResponse, Status>>,
) -> Result<(), Status> {
    use sha2::Digest;
    use tokio::io::AsyncReadExt;
    let io = |e: std::io::Error| Status::internal(format!("reading the snapshot: {e}"));
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    let file_bytes = file.metadata().await.map_err(io)?.len();
    // etcdctl checks that what precedes the checksum is a whole number of 512-byte pages
    // (etcd's file is a bbolt database); zero padding makes it so, and Vane's snapshot
    // reader accepts it.
    let padding = (SNAPSHOT_PAGE_BYTES - file_bytes % SNAPSHOT_PAGE_BYTES) % SNAPSHOT_PAGE_BYTES;
    let mut remaining = file_bytes + padding;
    let mut unread = file_bytes;
    let mut digest = sha2::Sha256::new();
    while remaining > 0 {
        let take = SNAPSHOT_CHUNK_BYTES.min(remaining as usize);
        let from_file = take.min(unread as usize);
        let mut buffer = vec![0u8; take];
        file.read_exact(&mut buffer[..from_file])
            .await
            .map_err(io)?;
        unread -= from_file as u64;
        digest.update(&buffer);
        remaining -= buffer.len() as u64;
        let message = SnapshotResponse {
            header,
            remaining_bytes: remaining,
            blob: buffer,
        };
        if tx.send(Ok(message)).await.is_err() {
            return Ok(());
        }
    }
    let _ = tx
        .send(Ok(SnapshotResponse {
            header,
            remaining_bytes: 0,
            blob: digest.finalize().to_vec(),
        }))
        .await;
    Ok(())
}

type SnapshotStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    type SnapshotStream = SnapshotStream;

    async fn alarm(
        &self,
        request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let alarms = match AlarmAction::try_from(request.action) {
            Ok(AlarmAction::Get) => {
                self.node
                    .state_machine
                    .meta()
                    .map_err(errors::from_store)?
                    .alarms
            }
            Ok(_) => {
                let caller = self
                    .node
                    .authorized_caller(&metadata, &[Access::Admin])
                    .await?;
                let result = self
                    .node
                    .propose_as(Op::Alarm(request), None, &caller)
                    .await?;
                match result.result {
                    Some(Outcome::Alarm(response)) => response.alarms,
                    Some(Outcome::Error(e)) => return Err(errors::from_command(&e)),
                    other => {
                        return Err(Status::internal(format!(
                            "vane: unexpected result {other:?}"
                        )));
                    }
                }
            }
            Err(_) => return Err(Status::invalid_argument("etcdserver: unknown alarm action")),
        };
        let revision = self.node.state_machine.applied().revision;
        Ok(Response::new(AlarmResponse {
            header: self.node.header(revision),
            alarms,
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
        let errors = self
            .node
            .state_machine
            .meta()
            .map(|m| m.alarms)
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                let kind = AlarmType::try_from(a.alarm).map_or("UNKNOWN", |t| t.as_str_name());
                format!("memberID:{} alarm:{kind} ", a.member_id)
            })
            .collect();
        Ok(Response::new(StatusResponse {
            header: self.node.header(revision),
            version: SERVER_VERSION.to_string(),
            db_size,
            leader,
            raft_index: last_index,
            raft_term: term,
            raft_applied_index: applied,
            errors,
            db_size_in_use: db_size,
            is_learner,
        }))
    }

    async fn defragment(
        &self,
        request: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        self.node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
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

    async fn hash(&self, request: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        self.node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
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
        self.node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
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

    /// Streams a snapshot of this member's applied state as etcd does: chunks with the
    /// bytes remaining, then the SHA-256 of everything sent as the last message, which is
    /// what `etcdctl snapshot save` writes to its file. The content is Vane's snapshot
    /// format (what `vaned` restores), not etcd's bbolt file.
    async fn snapshot(
        &self,
        request: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        self.node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
        let path = self
            .node
            .data_dir
            .snapshots_path()
            .join(format!("client-{:016x}.tmp", rand::random::<u64>()));
        let state_machine = self.node.state_machine.clone();
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || state_machine.write_snapshot(&target))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(errors::from_store(e));
        }
        let header = self.node.header(self.node.state_machine.applied().revision);
        let (tx, rx) = tokio::sync::mpsc::channel(SNAPSHOT_CHUNKS_QUEUED_MAX);
        tokio::spawn(async move {
            let result = stream_file(&path, header, &tx).await;
            let _ = tokio::fs::remove_file(&path).await;
            if let Err(status) = result {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    /// etcd's MoveLeader: sent to the leader (etcdctl finds it), hands leadership to a
    /// voting member and answers once that member leads.
    async fn move_leader(
        &self,
        request: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        self.node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
        let target = request.into_inner().target_id;
        if self.node.leader() != Some(self.node.member_id) {
            return Err(Status::failed_precondition("etcdserver: not leader"));
        }
        let is_voter = {
            let metrics = self.node.raft.metrics();
            let m = metrics.borrow_watched();
            m.membership_config
                .membership()
                .voter_ids()
                .any(|id| id == target)
        };
        if !is_voter {
            return Err(Status::failed_precondition(
                "etcdserver: bad leader transferee",
            ));
        }
        if target != self.node.member_id {
            self.node
                .raft
                .trigger()
                .transfer_leader(target)
                .await
                .map_err(|e| Status::unavailable(format!("vane: leader transfer failed: {e}")))?;
            let deadline = tokio::time::Instant::now()
                + Duration::from_millis(self.node.config.request_timeout_ms);
            while self.node.leader() != Some(target) {
                if tokio::time::Instant::now() >= deadline {
                    return Err(Status::unavailable(
                        "etcdserver: request timed out, leader transfer took too long",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let revision = self.node.state_machine.applied().revision;
        Ok(Response::new(MoveLeaderResponse {
            header: self.node.header(revision),
        }))
    }
}
