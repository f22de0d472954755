//! A follower's writes, forwarded to the leader in batches.
//!
//! Under load most writes arrive at followers (clients spread over all members), and one
//! `Forward` RPC per write costs an HTTP/2 stream on both sides and one message into the
//! leader's Raft core each. Here a follower keeps at most [`FORWARDS_IN_FLIGHT`] batches
//! on the wire; the writes that arrive meanwhile wait in a queue and leave together in the
//! next `ForwardBatch`, which the leader proposes with one call. A lone write waits for
//! nothing: with a free slot it leaves at once, as a batch of one. This is group commit
//! at the forwarding hop, as etcd's followers send their proposals in batched raft
//! messages.
//!
//! Each write keeps its own deadline and its own outcome: one refused unproposed (the
//! receiver is not the leader) may be retried by its caller; any other failure is final.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tonic::{Code, Status};
use vane_proto::raft::forward_outcome::Outcome;
use vane_proto::raft::{Command, CommandResult, ForwardBatchRequest, ForwardOutcome, Node};

use crate::errors;
use crate::metrics::Metrics;
use crate::raft::network::PeerChannels;

/// Batches a follower keeps on the wire at once. More overlap fewer writes per batch; one
/// would make every write wait for the batch ahead of it to commit.
pub const FORWARDS_IN_FLIGHT: usize = 4;
/// Most writes in one batch.
const BATCH_COMMANDS_MAX: usize = 256;
/// Most encoded bytes in one batch; a single larger write still goes, alone.
const BATCH_BYTES_MAX: usize = 4 << 20;

/// What a forwarded write came to: `Ok(None)` when the receiver refused it unproposed
/// because it is not the leader.
pub type Forwarded = Result<Option<CommandResult>, Status>;

/// One write waiting to be forwarded.
struct Pending {
    leader: Node,
    command: Command,
    bytes: usize,
    deadline: Instant,
    reply: oneshot::Sender<Forwarded>,
}

/// The queue of a member's writes to forward, drained into batches by a background task.
pub struct Forwarder {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Forwarder {
    /// A forwarder dialling the leader through `channels`, counting in `metrics`. Spawns
    /// its batching task, which ends when the forwarder is dropped.
    pub fn new(channels: PeerChannels, metrics: Arc<Metrics>) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(batch_forwards(pending, channels, metrics));
        Forwarder { queue }
    }

    /// Forwards `command` to `leader` and waits for its outcome, until `deadline`.
    pub async fn forward(&self, leader: Node, command: Command, deadline: Instant) -> Forwarded {
        let (reply, outcome) = oneshot::channel();
        let bytes = prost::Message::encoded_len(&command);
        let pending = Pending {
            leader,
            command,
            bytes,
            deadline,
            reply,
        };
        if self.queue.send(pending).is_err() {
            return Err(Status::unavailable("etcdserver: server stopped"));
        }
        match tokio::time::timeout_at(deadline.into(), outcome).await {
            Ok(Ok(forwarded)) => forwarded,
            Ok(Err(_)) => Err(Status::unavailable("etcdserver: server stopped")),
            Err(_) => Err(Status::unavailable("etcdserver: request timed out")),
        }
    }
}

/// Takes what is queued into batches, one batch per free slot on the wire.
async fn batch_forwards(
    mut pending: mpsc::UnboundedReceiver<Pending>,
    channels: PeerChannels,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(FORWARDS_IN_FLIGHT));
    let mut carried: Option<Pending> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(first) => first,
            None => match pending.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < BATCH_COMMANDS_MAX {
            let Ok(next) = pending.try_recv() else { break };
            if next.leader != batch[0].leader || bytes + next.bytes > BATCH_BYTES_MAX {
                carried = Some(next);
                break;
            }
            bytes += next.bytes;
            batch.push(next);
        }
        tokio::spawn(send_batch(batch, channels.clone(), metrics.clone(), slot));
    }
}

/// Sends one batch and hands each waiter its outcome; the slot is freed on return.
async fn send_batch(
    batch: Vec<Pending>,
    channels: PeerChannels,
    metrics: Arc<Metrics>,
    _slot: OwnedSemaphorePermit,
) {
    // A write whose caller gave up (timed out, or its client went away) is not sent: it
    // was never proposed, and nobody waits for its outcome.
    let now = Instant::now();
    let batch: Vec<Pending> = batch
        .into_iter()
        .filter(|p| !p.reply.is_closed() && p.deadline > now)
        .collect();
    let Some(first) = batch.first() else { return };
    let leader = first.leader.clone();
    metrics.forward_batches.inc();
    metrics.forwarded_writes.inc_by(batch.len() as u64);
    let timeout = batch
        .iter()
        .map(|p| p.deadline.saturating_duration_since(now))
        .max()
        .unwrap_or(Duration::ZERO);
    let mut client = match channels.client(&leader) {
        Ok(client) => client,
        Err(e) => {
            let status = Status::unavailable(format!("etcdserver: cannot reach leader: {e}"));
            for p in batch {
                let _ = p.reply.send(Err(status.clone()));
            }
            return;
        }
    };
    let (commands, waiters): (Vec<Command>, Vec<oneshot::Sender<Forwarded>>) =
        batch.into_iter().map(|p| (p.command, p.reply)).unzip();
    let mut request = tonic::Request::new(ForwardBatchRequest { commands });
    request.set_timeout(timeout);
    match client.forward_batch(request).await {
        Ok(reply) => {
            let mut outcomes = reply.into_inner().outcomes.into_iter();
            for waiter in waiters {
                let forwarded = match outcomes.next() {
                    Some(outcome) => outcome_of(outcome),
                    None => Err(Status::internal(
                        "etcdserver: the leader answered fewer writes than were forwarded",
                    )),
                };
                let _ = waiter.send(forwarded);
            }
        }
        Err(status) if status.code() == Code::Unimplemented => {
            // A leader from before batching, during a rolling upgrade: nothing of the
            // batch was proposed, so each caller forwards its write on its own.
            for waiter in waiters {
                let _ = waiter.send(Err(Status::unimplemented(BATCH_UNSUPPORTED)));
            }
        }
        Err(status) => {
            let forwarded = failed(status);
            for waiter in waiters {
                let _ = waiter.send(forwarded.clone());
            }
        }
    }
}

/// The status a waiter gets when the leader does not know `ForwardBatch`; the caller
/// then forwards with the single-write RPC.
pub const BATCH_UNSUPPORTED: &str = "vane: leader does not accept forwarded batches";

/// Whether `status` says the leader does not accept batches.
pub fn is_batch_unsupported(status: &Status) -> bool {
    status.code() == Code::Unimplemented && status.message() == BATCH_UNSUPPORTED
}

/// One outcome from the leader's reply.
fn outcome_of(outcome: ForwardOutcome) -> Forwarded {
    match outcome.outcome {
        Some(Outcome::Applied(result)) => Ok(Some(result)),
        Some(Outcome::Failed(failure)) => {
            failed(Status::new(Code::from(failure.code), failure.message))
        }
        None => Err(Status::internal(
            "etcdserver: the leader answered a forwarded write with no outcome",
        )),
    }
}

/// What a failure of a forwarded write means to its caller: a refusal by a member that is
/// not the leader may be retried; running out of time is etcd's timeout; anything else
/// is final.
pub fn failed(status: Status) -> Forwarded {
    match status.code() {
        Code::FailedPrecondition | Code::Unavailable if errors::is_not_leader(&status) => Ok(None),
        Code::DeadlineExceeded => Err(Status::unavailable("etcdserver: request timed out")),
        _ => Err(status),
    }
}

/// The outcome a leader reports for one command of a batch.
pub fn outcome(result: Result<CommandResult, Status>) -> ForwardOutcome {
    ForwardOutcome {
        outcome: Some(match result {
            Ok(applied) => Outcome::Applied(applied),
            Err(status) => Outcome::Failed(vane_proto::raft::ForwardFailure {
                code: status.code() as i32,
                message: status.message().to_string(),
            }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_survives_the_wire_with_its_status() {
        let applied = CommandResult {
            revision: 7,
            ..Default::default()
        };
        assert_eq!(
            outcome_of(outcome(Ok(applied.clone()))).expect("applied"),
            Some(applied)
        );
        let refused = outcome_of(outcome(Err(Status::failed_precondition(
            "etcdserver: requested lease not found",
        ))))
        .expect_err("refused");
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert_eq!(refused.message(), "etcdserver: requested lease not found");
    }

    #[test]
    fn only_a_refusal_by_a_non_leader_may_be_retried() {
        assert!(matches!(failed(errors::not_leader()), Ok(None)));
        let timed_out = failed(Status::deadline_exceeded("late")).expect_err("final");
        assert_eq!(timed_out.message(), "etcdserver: request timed out");
        let discarded =
            failed(Status::unavailable("etcdserver: leader changed")).expect_err("final");
        assert_eq!(discarded.message(), "etcdserver: leader changed");
    }
}
