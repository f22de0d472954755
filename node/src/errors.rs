//! Where every failure becomes a gRPC status, in one place. Codes and messages are etcd's
//! where etcd clients match on them (`clientv3` maps error strings back to its typed
//! errors), and say what to do otherwise.

use tonic::{Code, Status};
use vane_proto::raft::CommandError;
use vane_proto::raft::command_error::Code as CommandCode;
use vane_raft_store::StoreError;

const NOT_LEADER: &str = "vane: this member is not the leader";

/// Refusal of a request that only the leader may serve; the sender retries elsewhere.
pub fn not_leader() -> Status {
    Status::unavailable(NOT_LEADER)
}

/// Whether `status` is [`not_leader`] from a peer.
pub fn is_not_leader(status: &Status) -> bool {
    status.message() == NOT_LEADER
}

/// The request ran out of time: etcd's "no leader" when none was known, else its timeout.
pub fn no_leader_or_timeout(leader_known: bool) -> Status {
    if leader_known {
        Status::unavailable("etcdserver: request timed out")
    } else {
        Status::unavailable("etcdserver: no leader")
    }
}

fn code_of(code: CommandCode) -> Code {
    match code {
        CommandCode::Compacted | CommandCode::FutureRevision | CommandCode::LeaseTtlTooLarge => {
            Code::OutOfRange
        }
        CommandCode::LeaseNotFound => Code::NotFound,
        CommandCode::KeyNotFound
        | CommandCode::DuplicateKey
        | CommandCode::InvalidArgument
        | CommandCode::TooManyOps => Code::InvalidArgument,
        CommandCode::LeaseExists | CommandCode::SessionExpired | CommandCode::SessionSequence => {
            Code::FailedPrecondition
        }
        CommandCode::NoSpace => Code::ResourceExhausted,
        CommandCode::PermissionDenied => Code::PermissionDenied,
        CommandCode::UserEmpty | CommandCode::RoleEmpty | CommandCode::InvalidAuthMgmt => {
            Code::InvalidArgument
        }
        CommandCode::RootUserNotExist
        | CommandCode::RootRoleNotExist
        | CommandCode::UserAlreadyExist
        | CommandCode::UserNotFound
        | CommandCode::RoleAlreadyExist
        | CommandCode::RoleNotFound
        | CommandCode::RoleNotGranted
        | CommandCode::PermissionNotGranted => Code::FailedPrecondition,
        CommandCode::NamespaceNotFound | CommandCode::ChangeNotFound => Code::NotFound,
        CommandCode::NamespaceExists => Code::AlreadyExists,
        CommandCode::GovernanceConflict | CommandCode::ApprovalRequired => Code::FailedPrecondition,
        CommandCode::Unknown => Code::Internal,
    }
}

/// A command the state machine refused.
pub fn from_command(error: &CommandError) -> Status {
    let code = CommandCode::try_from(error.code).unwrap_or(CommandCode::Unknown);
    Status::new(code_of(code), error.message.clone())
}

/// A failure serving a read from the local state.
pub fn from_store(error: StoreError) -> Status {
    match error.command_code() {
        Some(code) => Status::new(code_of(code), error.to_string()),
        None => {
            tracing::error!(%error, "storage failure while serving a request");
            Status::internal(format!("vane: storage failure on this member: {error}"))
        }
    }
}

/// Authenticate with an unknown user, a wrong password, or a user added without one.
pub fn auth_failed() -> Status {
    Status::invalid_argument("etcdserver: authentication failed, invalid user ID or password")
}

/// Authenticate while auth is off (etcd clients then go on without a token).
pub fn auth_not_enabled() -> Status {
    Status::failed_precondition("etcdserver: authentication is not enabled")
}

/// A token that is malformed, forged, expired, from another cluster or from before its
/// user's password changed; etcd clients authenticate again when they see it.
pub fn invalid_auth_token() -> Status {
    Status::unauthenticated("etcdserver: invalid auth token")
}
