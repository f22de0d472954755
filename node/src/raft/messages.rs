//! openraft's RPC messages to and from their protobuf form on the peer wire. Entries,
//! votes, log ids and memberships convert with `vane_raft_store::raft::convert`.

use openraft::raft::{
    AppendEntriesRequest, StreamAppendError, StreamAppendResult, VoteRequest, VoteResponse,
};
use tonic::Status;
use vane_proto::raft as pb;
use vane_raft_store::raft::convert::{
    entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, vote_from_pb, vote_to_pb,
};
use vane_raft_store::raft::types::TypeConfig;

fn missing(what: &str) -> Status {
    Status::invalid_argument(format!("malformed peer message: {what} is missing"))
}

/// Append-entries request to protobuf.
pub fn append_to_pb(request: &AppendEntriesRequest<TypeConfig>) -> pb::AppendEntriesRequest {
    pb::AppendEntriesRequest {
        vote: Some(vote_to_pb(&request.vote)),
        prev_log_id: request.prev_log_id.as_ref().map(log_id_to_pb),
        entries: request.entries.iter().map(entry_to_pb).collect(),
        leader_commit: request.leader_commit.as_ref().map(log_id_to_pb),
    }
}

/// Protobuf append-entries request to openraft; refuses a malformed one.
pub fn append_from_pb(
    request: pb::AppendEntriesRequest,
) -> Result<AppendEntriesRequest<TypeConfig>, Status> {
    let vote = request
        .vote
        .as_ref()
        .map(vote_from_pb)
        .ok_or_else(|| missing("vote"))?;
    let entries = request
        .entries
        .into_iter()
        .map(|e| {
            entry_from_pb(e)
                .map_err(|err| Status::invalid_argument(format!("malformed peer message: {err}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AppendEntriesRequest {
        vote,
        prev_log_id: request.prev_log_id.as_ref().map(log_id_from_pb),
        entries,
        leader_commit: request.leader_commit.as_ref().map(log_id_from_pb),
    })
}

/// A stream-append result to protobuf.
pub fn stream_result_to_pb(result: StreamAppendResult<TypeConfig>) -> pb::StreamAppendReply {
    use pb::stream_append_reply::Result as R;
    let result = match result {
        Ok(accepted) => R::Accepted(pb::AcceptedUpTo {
            log_id: accepted.as_ref().map(log_id_to_pb),
        }),
        Err(StreamAppendError::Conflict(log_id)) => R::Conflict(log_id_to_pb(&log_id)),
        Err(StreamAppendError::HigherVote(vote)) => R::HigherVote(vote_to_pb(&vote)),
    };
    pb::StreamAppendReply {
        result: Some(result),
    }
}

/// Protobuf stream-append reply to openraft.
pub fn stream_result_from_pb(
    reply: pb::StreamAppendReply,
) -> Result<StreamAppendResult<TypeConfig>, String> {
    use pb::stream_append_reply::Result as R;
    match reply.result {
        Some(R::Accepted(a)) => Ok(Ok(a.log_id.as_ref().map(log_id_from_pb))),
        Some(R::Conflict(log_id)) => Ok(Err(StreamAppendError::Conflict(log_id_from_pb(&log_id)))),
        Some(R::HigherVote(vote)) => Ok(Err(StreamAppendError::HigherVote(vote_from_pb(&vote)))),
        None => Err("stream-append reply without a result".into()),
    }
}

/// Vote request to protobuf.
pub fn vote_request_to_pb(request: &VoteRequest<TypeConfig>) -> pb::VoteRequest {
    pb::VoteRequest {
        vote: Some(vote_to_pb(&request.vote)),
        last_log_id: request.last_log_id.as_ref().map(log_id_to_pb),
        leadership_transfer: request.leadership_transfer,
    }
}

/// Protobuf vote request to openraft.
pub fn vote_request_from_pb(request: pb::VoteRequest) -> Result<VoteRequest<TypeConfig>, Status> {
    let mut out = VoteRequest::new(
        request
            .vote
            .as_ref()
            .map(vote_from_pb)
            .ok_or_else(|| missing("vote"))?,
        request.last_log_id.as_ref().map(log_id_from_pb),
    );
    out.leadership_transfer = request.leadership_transfer;
    Ok(out)
}

/// Vote response to protobuf.
pub fn vote_response_to_pb(response: &VoteResponse<TypeConfig>) -> pb::VoteReply {
    pb::VoteReply {
        vote: Some(vote_to_pb(&response.vote)),
        vote_granted: response.vote_granted,
        last_log_id: response.last_log_id.as_ref().map(log_id_to_pb),
    }
}

/// Protobuf vote reply to openraft.
pub fn vote_response_from_pb(reply: pb::VoteReply) -> Result<VoteResponse<TypeConfig>, String> {
    let vote = reply
        .vote
        .as_ref()
        .map(vote_from_pb)
        .ok_or("vote reply without a vote")?;
    Ok(VoteResponse::new(
        vote,
        reply.last_log_id.as_ref().map(log_id_from_pb),
        reply.vote_granted,
    ))
}
