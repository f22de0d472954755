//! The one error type of the client, and the one place where a gRPC status becomes it.
//!
//! Two questions are answered here for every failure: what the caller should be told
//! ([`Error`], keeping the server's own message, which etcd users recognise), and whether
//! the failed attempt may be retried on another member ([`Failure`]), which depends on
//! whether the request may already have been applied.

use tonic::{Code, Status};

/// etcd's message for a read or watch below the compacted revision.
pub const COMPACTED_MESSAGE: &str = "etcdserver: mvcc: required revision has been compacted";
/// etcd's message for a lease that does not exist (also what a keep-alive of an expired
/// lease reports).
pub const LEASE_NOT_FOUND_MESSAGE: &str = "etcdserver: requested lease not found";

/// The start of etcd's message for a wrong user name or password.
const AUTH_FAILED_PREFIX: &str = "etcdserver: authentication failed";

/// Everything a call of the client can fail with. `Display` is one line: the server's
/// message when the server refused, else what the client observed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing named does not exist (a lease, a member).
    #[error("{message}")]
    NotFound {
        /// The server's message.
        message: String,
    },
    /// The revision asked for has been compacted away.
    #[error("{message}")]
    Compacted {
        /// Everything below this revision is gone; a watch or read may start here. 0 when
        /// the server did not say (a range reports only the message).
        compact_revision: i64,
        /// The server's message.
        message: String,
    },
    /// The request conflicts with the current state (a lease or member that already
    /// exists, a compare-and-swap that kept losing).
    #[error("{message}")]
    Conflict {
        /// The server's or the client's message.
        message: String,
    },
    /// No member could serve the request: unreachable, no leader, shutting down.
    #[error("{message}")]
    Unavailable {
        /// What was tried and the last failure.
        message: String,
    },
    /// The call ran out of time. For a write this means its outcome is unknown.
    #[error("{message}")]
    Timeout {
        /// What was tried and the last failure.
        message: String,
    },
    /// The request is malformed or out of range (bad key, future revision, bad URL).
    #[error("{message}")]
    Invalid {
        /// The server's or the client's message.
        message: String,
    },
    /// The user name or password was refused, by Authenticate or when connecting with
    /// credentials: retrying cannot help.
    #[error("{message}")]
    Authentication {
        /// The server's message.
        message: String,
    },
    /// The caller may not do this.
    #[error("{message}")]
    Permission {
        /// The server's message.
        message: String,
    },
    /// The exactly-once session of a write expired. With `outcome_unknown` an earlier
    /// attempt of the write may have been applied and the client cannot find out, so it
    /// reports instead of guessing; without it the write was not applied.
    #[error("{message}")]
    SessionExpired {
        /// The server's or the client's message.
        message: String,
        /// Whether an earlier attempt of the request may have been applied.
        outcome_unknown: bool,
    },
    /// Anything else, with its gRPC code.
    #[error("{message} (gRPC code {code:?})")]
    Other {
        /// The gRPC status code.
        code: Code,
        /// The server's message.
        message: String,
    },
}

impl Error {
    /// The message alone, without any prefix: what etcdctl prints after `Error: `.
    pub fn message(&self) -> &str {
        match self {
            Error::NotFound { message }
            | Error::Compacted { message, .. }
            | Error::Conflict { message }
            | Error::Unavailable { message }
            | Error::Timeout { message }
            | Error::Invalid { message }
            | Error::Permission { message }
            | Error::Authentication { message }
            | Error::SessionExpired { message, .. }
            | Error::Other { message, .. } => message,
        }
    }

    /// An [`Error::Invalid`] raised by the client itself.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid {
            message: one_line(message.into()),
        }
    }

    /// The error a server's refusal means to the caller.
    pub fn from_status(status: &Status) -> Self {
        let message = one_line(if status.message().is_empty() {
            format!("gRPC status {}", status.code())
        } else {
            status.message().to_string()
        });
        match status.code() {
            Code::OutOfRange if message.contains("required revision has been compacted") => {
                Error::Compacted {
                    compact_revision: 0,
                    message,
                }
            }
            Code::InvalidArgument if message.starts_with(AUTH_FAILED_PREFIX) => {
                Error::Authentication { message }
            }
            Code::OutOfRange | Code::InvalidArgument => Error::Invalid { message },
            Code::NotFound => Error::NotFound { message },
            Code::FailedPrecondition if is_session_expired(&message) => Error::SessionExpired {
                message,
                outcome_unknown: false,
            },
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => {
                Error::Conflict { message }
            }
            Code::Unavailable => Error::Unavailable { message },
            Code::DeadlineExceeded => Error::Timeout { message },
            Code::PermissionDenied | Code::Unauthenticated => Error::Permission { message },
            code => Error::Other { code, message },
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::from_status(&status)
    }
}

/// Whether the server refused a write because its session is gone (the message of
/// `vane: client session <id> has expired or was never opened; ...`).
fn is_session_expired(message: &str) -> bool {
    message.starts_with("vane: client session") && message.contains("has expired")
}

/// Messages travel in one line: a multi-line server message would break a CLI's
/// one-line error and any log line.
fn one_line(message: String) -> String {
    if message.contains(['\n', '\r']) {
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        message
    }
}

/// What a failed attempt means for retrying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The request was certainly not applied (the member could not be reached, or it
    /// refused before proposing): any request may be retried.
    NotApplied(Error),
    /// The request may have been applied (the connection broke or the attempt timed
    /// out after sending): a retry is a duplicate unless a session deduplicates it.
    Unknown(Error),
    /// The member answered: the caller gets this, retrying elsewhere would answer alike.
    Final(Error),
}

impl Failure {
    /// Classifies a failed attempt from its status.
    pub(crate) fn of(status: &Status) -> Failure {
        let error = Error::from_status(status);
        let message = status.message();
        match status.code() {
            Code::Unavailable if never_sent(message) || refused_unproposed(message) => {
                Failure::NotApplied(error)
            }
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                Failure::Unknown(error)
            }
            // h2 and hyper report a torn connection as Internal, and a server's GOAWAY
            // (ENHANCE_YOUR_CALM after many cancelled attempts) as ResourceExhausted.
            Code::Internal | Code::ResourceExhausted if is_transport_message(message) => {
                Failure::Unknown(error)
            }
            _ => Failure::Final(error),
        }
    }

    /// The caller-facing error, whatever the classification.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Failure::NotApplied(e) | Failure::Unknown(e) | Failure::Final(e) => e,
        }
    }

    /// Whether the member that failed should be avoided for a while: it could not be
    /// reached or its connection broke, as opposed to answering with a refusal.
    pub(crate) fn member_unreachable(&self) -> bool {
        match self {
            Failure::NotApplied(e) | Failure::Unknown(e) => {
                let message = e.message();
                never_sent(message)
                    || is_transport_message(message)
                    || matches!(e, Error::Timeout { .. })
            }
            Failure::Final(_) => false,
        }
    }
}

/// The request never left the client: the connection could not be made.
fn never_sent(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("tcp connect error")
        || lower.contains("connection refused")
        || lower.contains("error trying to connect")
        || lower.contains("dns error")
        || lower.contains("failed to lookup address")
}

/// The member refused the request before proposing it to Raft.
fn refused_unproposed(message: &str) -> bool {
    message == "etcdserver: no leader" || message == "vane: this member is not the leader"
}

/// The connection itself failed (reset, closed, protocol error) rather than the server
/// refusing the request.
fn is_transport_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("transport error")
        || lower.contains("h2 protocol error")
        || lower.contains("connection reset")
        || lower.contains("broken pipe")
        || lower.contains("connection closed")
        || lower.contains("stream closed")
        || lower.contains("operation was canceled")
        || never_sent(&lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_messages_map_to_their_variants() {
        let compacted = Error::from_status(&Status::out_of_range(COMPACTED_MESSAGE));
        assert_eq!(
            compacted,
            Error::Compacted {
                compact_revision: 0,
                message: COMPACTED_MESSAGE.to_string()
            }
        );
        assert_eq!(compacted.to_string(), COMPACTED_MESSAGE);

        let lease = Error::from_status(&Status::not_found(LEASE_NOT_FOUND_MESSAGE));
        assert!(matches!(lease, Error::NotFound { .. }));
        assert_eq!(lease.to_string(), LEASE_NOT_FOUND_MESSAGE);

        for message in [
            "etcdserver: no leader",
            "etcdserver: request timed out",
            "etcdserver: leader changed",
        ] {
            let error = Error::from_status(&Status::unavailable(message));
            assert!(matches!(error, Error::Unavailable { .. }), "{message}");
            assert_eq!(error.message(), message);
        }

        let denied =
            Error::from_status(&Status::permission_denied("etcdserver: permission denied"));
        assert!(matches!(denied, Error::Permission { .. }));

        let future = Error::from_status(&Status::out_of_range(
            "etcdserver: mvcc: required revision is a future revision",
        ));
        assert!(matches!(future, Error::Invalid { .. }));

        let exists = Error::from_status(&Status::failed_precondition(
            "etcdserver: lease already exists",
        ));
        assert!(matches!(exists, Error::Conflict { .. }));

        let other = Error::from_status(&Status::resource_exhausted(
            "etcdserver: mvcc: database space exceeded",
        ));
        assert_eq!(
            other.to_string(),
            "etcdserver: mvcc: database space exceeded (gRPC code ResourceExhausted)"
        );
    }

    #[test]
    fn an_expired_session_is_told_apart_from_other_preconditions() {
        let expired = Error::from_status(&Status::failed_precondition(
            "vane: client session 17 has expired or was never opened; open a new session and retry",
        ));
        assert!(matches!(
            expired,
            Error::SessionExpired {
                outcome_unknown: false,
                ..
            }
        ));
        let acknowledged = Error::from_status(&Status::failed_precondition(
            "vane: request 3 of session 17 was already acknowledged to the client; it is not applied again",
        ));
        assert!(matches!(acknowledged, Error::Conflict { .. }));
    }

    #[test]
    fn retry_classification_follows_what_the_server_may_have_done() {
        assert!(matches!(
            Failure::of(&Status::unavailable("etcdserver: no leader")),
            Failure::NotApplied(_)
        ));
        assert!(matches!(
            Failure::of(&Status::unavailable(
                "error trying to connect: tcp connect error: Connection refused (os error 111)"
            )),
            Failure::NotApplied(_)
        ));
        assert!(matches!(
            Failure::of(&Status::unavailable("etcdserver: request timed out")),
            Failure::Unknown(_)
        ));
        assert!(matches!(
            Failure::of(&Status::unavailable("etcdserver: leader changed")),
            Failure::Unknown(_)
        ));
        assert!(matches!(
            Failure::of(&Status::internal(
                "h2 protocol error: stream error received"
            )),
            Failure::Unknown(_)
        ));
        assert!(matches!(
            Failure::of(&Status::resource_exhausted(
                "h2 protocol error: http2 error"
            )),
            Failure::Unknown(_)
        ));
        assert!(matches!(
            Failure::of(&Status::resource_exhausted(
                "etcdserver: mvcc: database space exceeded"
            )),
            Failure::Final(_)
        ));
        assert!(matches!(
            Failure::of(&Status::internal("vane: storage failure on this member: x")),
            Failure::Final(_)
        ));
        assert!(matches!(
            Failure::of(&Status::out_of_range(COMPACTED_MESSAGE)),
            Failure::Final(Error::Compacted { .. })
        ));
    }

    #[test]
    fn messages_are_one_line() {
        let error = Error::from_status(&Status::invalid_argument("bad\nthing\r\nhere"));
        assert_eq!(error.to_string(), "bad thing here");
        let empty = Error::from_status(&Status::unavailable(""));
        assert!(!empty.to_string().is_empty());
    }
}
