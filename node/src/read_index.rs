//! Linearizable reads share their read index.
//!
//! A linearizable read waits for a read index: the leader's commit index, confirmed by a
//! quorum to still be the leader's. Asking for one per read costs the leader a round of
//! confirmation per read, and a follower an RPC to the leader per read. Here the reads of
//! a member take turns in rounds instead: one round at a time asks for an index, and all
//! the reads that arrived while it was out share the next one. A round starts after each
//! of its reads arrived, so the index it returns covers every write acknowledged before
//! any of them began, which is all a linearizable read needs (etcd's read loop follows
//! the same rule).

use std::sync::Weak;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::errors;
use crate::node::Node;

/// What one round came to: the index to wait for, `None` when no leader could answer
/// (the read retries), or a failure.
pub type Attempt = Result<Option<u64>, Status>;

/// The queue of a member's reads waiting for a round.
pub struct ReadRounds {
    queue: mpsc::UnboundedSender<oneshot::Sender<Attempt>>,
}

/// The other end of [`ReadRounds`], for [`run`].
pub type Waiting = mpsc::UnboundedReceiver<oneshot::Sender<Attempt>>;

impl ReadRounds {
    /// The queue, and its other end for the task that runs the rounds.
    pub fn new() -> (Self, Waiting) {
        let (queue, waiting) = mpsc::unbounded_channel();
        (ReadRounds { queue }, waiting)
    }

    /// Waits for the next round to start and finish, until `deadline`.
    pub async fn join(&self, deadline: Instant, leader_known: bool) -> Attempt {
        let (reply, attempt) = oneshot::channel();
        if self.queue.send(reply).is_err() {
            return Err(Status::unavailable("etcdserver: server stopped"));
        }
        match tokio::time::timeout_at(deadline.into(), attempt).await {
            Ok(Ok(attempt)) => attempt,
            Ok(Err(_)) => Err(Status::unavailable("etcdserver: server stopped")),
            Err(_) => Err(errors::no_leader_or_timeout(leader_known)),
        }
    }
}

/// Runs rounds while the member lives: each takes every read waiting, asks for one index
/// and hands it to them all.
pub async fn run(node: Weak<Node>, mut waiting: Waiting) {
    while let Some(first) = waiting.recv().await {
        let mut readers = vec![first];
        while let Ok(next) = waiting.try_recv() {
            readers.push(next);
        }
        // A read whose caller gave up needs no index.
        readers.retain(|reader| !reader.is_closed());
        if readers.is_empty() {
            continue;
        }
        let Some(node) = node.upgrade() else { return };
        node.metrics.read_index_rounds.inc();
        node.metrics.read_index_reads.inc_by(readers.len() as u64);
        let attempt = node.read_index_once().await;
        drop(node);
        for reader in readers {
            let _ = reader.send(attempt.clone());
        }
    }
}
