//! Exactly-once client sessions on the client port: the `vane.v1.Session` service that
//! opens and closes them, and the request metadata that tags a write with its place in a
//! session.
//!
//! etcd's messages have no room for a session, so the tag travels as gRPC metadata
//! (`vane-session`, `vane-sequence`, `vane-acked-below`) and etcd clients that send none
//! keep etcd's at-least-once behaviour. The state machine does the real work: it answers
//! a duplicate sequence with the remembered result instead of applying it again.

use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use vane_proto::api::session_server::Session;
use vane_proto::api::{
    CloseSessionRequest, CloseSessionResponse, OpenSessionRequest, OpenSessionResponse,
};
use vane_proto::raft::command::Op;
use vane_proto::raft::command_result::Result as Outcome;
use vane_proto::raft::{CloseSession, OpenSession};
use vane_raft_store::{SESSION_TTL_MAX_MS, SESSION_TTL_MIN_MS};

use crate::errors;
use crate::node::Node;

/// Metadata key carrying the session id.
pub const SESSION_HEADER: &str = "vane-session";
/// Metadata key carrying the request's number in its session.
pub const SEQUENCE_HEADER: &str = "vane-sequence";
/// Metadata key carrying the lowest sequence whose answer the client has not received.
pub const ACKED_BELOW_HEADER: &str = "vane-acked-below";

/// Idle time of a session opened without one.
const DEFAULT_SESSION_TTL_MS: i64 = 60_000;

/// Where a write stands in its client's session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionTag {
    /// The session, as returned by `Open`.
    pub session_id: u64,
    /// The request's number in the session, from 1.
    pub sequence: u64,
    /// Every request below this number has been answered to the client.
    pub acked_below: u64,
}

fn header(metadata: &MetadataMap, key: &str) -> Result<Option<u64>, Status> {
    let Some(value) = metadata.get(key) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "vane: metadata {key} must be an unsigned decimal number"
            ))
        })
}

impl SessionTag {
    /// Reads the tag from a request's metadata: `None` when the request names no session.
    /// A session without a sequence, or a malformed number, is refused rather than
    /// silently applied outside the session.
    pub fn from_metadata(metadata: &MetadataMap) -> Result<Option<SessionTag>, Status> {
        let Some(session_id) = header(metadata, SESSION_HEADER)? else {
            return Ok(None);
        };
        let Some(sequence) = header(metadata, SEQUENCE_HEADER)? else {
            return Err(Status::invalid_argument(format!(
                "vane: a request with {SESSION_HEADER} must also carry {SEQUENCE_HEADER}"
            )));
        };
        let acked_below = header(metadata, ACKED_BELOW_HEADER)?.unwrap_or(0);
        Ok(Some(SessionTag {
            session_id,
            sequence,
            acked_below,
        }))
    }
}

/// Serves `vane.v1.Session` for one member.
pub struct SessionService {
    node: Arc<Node>,
}

impl SessionService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        SessionService { node }
    }
}

#[tonic::async_trait]
impl Session for SessionService {
    async fn open(
        &self,
        request: Request<OpenSessionRequest>,
    ) -> Result<Response<OpenSessionResponse>, Status> {
        // The session belongs to its caller: while auth is on, no other user may use it.
        let caller = self.node.caller(request.metadata()).await?;
        let requested = request.into_inner().ttl_ms;
        if requested < 0 {
            return Err(Status::invalid_argument(
                "vane: a session's ttl_ms cannot be negative",
            ));
        }
        let ttl_ms = if requested == 0 {
            DEFAULT_SESSION_TTL_MS
        } else {
            requested.clamp(SESSION_TTL_MIN_MS, SESSION_TTL_MAX_MS)
        };
        let result = self
            .node
            .propose_as(Op::OpenSession(OpenSession { ttl_ms }), None, &caller)
            .await?;
        match result.result {
            Some(Outcome::SessionOpened(opened)) => Ok(Response::new(OpenSessionResponse {
                session_id: opened.session_id,
                ttl_ms,
                revision: result.revision,
            })),
            Some(Outcome::Error(e)) => Err(errors::from_command(&e)),
            other => Err(Status::internal(format!(
                "vane: unexpected result opening a session: {other:?}"
            ))),
        }
    }

    async fn close(
        &self,
        request: Request<CloseSessionRequest>,
    ) -> Result<Response<CloseSessionResponse>, Status> {
        let caller = self.node.caller(request.metadata()).await?;
        let session_id = request.into_inner().session_id;
        let result = self
            .node
            .propose_as(Op::CloseSession(CloseSession { session_id }), None, &caller)
            .await?;
        match result.result {
            Some(Outcome::SessionClosed(_)) => Ok(Response::new(CloseSessionResponse {})),
            Some(Outcome::Error(e)) => Err(errors::from_command(&e)),
            other => Err(Status::internal(format!(
                "vane: unexpected result closing a session: {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut map = MetadataMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn no_session_header_means_no_session() {
        assert_eq!(SessionTag::from_metadata(&metadata(&[])).unwrap(), None);
    }

    #[test]
    fn a_full_tag_is_read() {
        let tag = SessionTag::from_metadata(&metadata(&[
            ("vane-session", "42"),
            ("vane-sequence", "7"),
            ("vane-acked-below", "5"),
        ]))
        .unwrap();
        assert_eq!(
            tag,
            Some(SessionTag {
                session_id: 42,
                sequence: 7,
                acked_below: 5
            })
        );
    }

    #[test]
    fn a_session_without_sequence_or_with_garbage_is_refused() {
        let missing = SessionTag::from_metadata(&metadata(&[("vane-session", "42")]));
        assert_eq!(missing.unwrap_err().code(), tonic::Code::InvalidArgument);
        let garbage = SessionTag::from_metadata(&metadata(&[
            ("vane-session", "42"),
            ("vane-sequence", "-1"),
        ]));
        assert!(garbage.unwrap_err().message().contains("vane-sequence"));
    }
}
