//! The one error type of `raft-store`.
//!
//! Two kinds of failure live here and must never be confused. A *request* error (a
//! compacted revision, a missing lease, a txn that puts one key twice) is a deterministic
//! outcome of applying a command: every node reaches it, it is recorded as the command's
//! result, and the client sees etcd's own message. A *storage* error (RocksDB failed, a
//! record did not decode) means this node cannot go on; it is handed to openraft as an
//! I/O error, which stops the node rather than let its state diverge.

use vane_proto::raft::command_error::Code;

/// Everything that can go wrong in the durable core.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A read or watch below the compacted revision. etcd's exact string: clients match on it.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted {
        /// The revision everything below which is gone.
        compact_revision: i64,
    },

    /// A read at a revision the store has not reached yet.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision {
        /// The store's current revision.
        current_revision: i64,
    },

    /// `ignore_value` or `ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,

    /// A put or revoke naming a lease that does not exist.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,

    /// A lease grant asking for more than etcd's largest TTL.
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,

    /// A lease grant with a client-chosen id that is taken.
    #[error("etcdserver: lease already exists")]
    LeaseExists,

    /// A txn that writes one key twice, or puts a key it also deletes.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,

    /// A write while a NOSPACE alarm is raised.
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,

    /// A txn with more operations than `txn_ops_max`.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,

    /// A request that breaks one of etcd's argument rules; the message is etcd's.
    #[error("{0}")]
    InvalidArgument(String),

    /// A refusal by etcd's auth rules (a permission, a user or role that does or does not
    /// exist); the message is etcd's.
    #[error(transparent)]
    Auth(#[from] AuthError),

    /// A refusal by a namespace's rules, or of a namespace change.
    #[error(transparent)]
    Governance(#[from] GovernanceError),

    /// A command from a session the state machine no longer knows.
    #[error(
        "vane: client session {session_id} has expired or was never opened; open a new session and retry"
    )]
    SessionExpired {
        /// The session the command named.
        session_id: u64,
    },

    /// A command whose sequence the session already forgot, or beyond its window.
    #[error("vane: {0}")]
    SessionSequence(String),

    /// RocksDB failed; the node must stop rather than guess.
    #[error("storage failure: {0}")]
    Rocks(#[from] rocksdb::Error),

    /// A stored record did not decode: the data directory is damaged.
    #[error("corrupt data: {0}")]
    Corrupt(String),

    /// An I/O failure outside RocksDB (snapshot files, the lock, the version file).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },

    /// The data directory cannot be used by this binary or by this process.
    #[error("{0}")]
    DataDir(String),

    /// A read tried from memory alone needs the disk, or more records than an async
    /// thread should read at once. Never a client's answer: the server retries the read
    /// on a thread that may block.
    #[error("vane: this read needs the disk")]
    NotInMemory,
}

impl StoreError {
    /// True for outcomes of a request, which are replicated results rather than faults.
    pub fn is_request_error(&self) -> bool {
        self.command_code().is_some()
    }

    /// The code a request error is recorded under in a `CommandResult`; `None` for faults.
    pub fn command_code(&self) -> Option<Code> {
        Some(match self {
            StoreError::Compacted { .. } => Code::Compacted,
            StoreError::FutureRevision { .. } => Code::FutureRevision,
            StoreError::KeyNotFound => Code::KeyNotFound,
            StoreError::LeaseNotFound => Code::LeaseNotFound,
            StoreError::LeaseExists => Code::LeaseExists,
            StoreError::LeaseTtlTooLarge => Code::LeaseTtlTooLarge,
            StoreError::DuplicateKey => Code::DuplicateKey,
            StoreError::TooManyOps => Code::TooManyOps,
            StoreError::NoSpace => Code::NoSpace,
            StoreError::InvalidArgument(_) => Code::InvalidArgument,
            StoreError::Auth(refusal) => refusal.code(),
            StoreError::Governance(refusal) => refusal.code(),
            StoreError::SessionExpired { .. } => Code::SessionExpired,
            StoreError::SessionSequence(_) => Code::SessionSequence,
            StoreError::Rocks(_)
            | StoreError::Corrupt(_)
            | StoreError::Io { .. }
            | StoreError::DataDir(_)
            | StoreError::NotInMemory => return None,
        })
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn decode(what: &str, err: prost::DecodeError) -> Self {
        StoreError::Corrupt(format!("{what} did not decode: {err}"))
    }
}

/// Refusals of the governance rules (namespaces and the writes they govern).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceError {
    /// No namespace has this name.
    #[error("vane: namespace {0} not found")]
    NotFound(String),
    /// A namespace with this name exists.
    #[error("vane: namespace {0} already exists")]
    Exists(String),
    /// The change contradicts the state: overlapping prefixes, keys left under a
    /// namespace being deleted, existing values a new schema rejects.
    #[error("vane: {0}")]
    Conflict(String),
    /// A direct write into a namespace whose changes need approvals.
    #[error("vane: {0}")]
    ApprovalRequired(String),
    /// No change request has this id.
    #[error("vane: change request {0} not found")]
    ChangeNotFound(u64),
    /// The principal may not take this decision (approve its own change, approve without
    /// an approver role, break glass without the role).
    #[error("vane: {0}")]
    NotAllowed(String),
}

impl GovernanceError {
    /// The code the refusal is recorded under.
    pub fn code(&self) -> Code {
        match self {
            GovernanceError::NotFound(_) => Code::NamespaceNotFound,
            GovernanceError::Exists(_) => Code::NamespaceExists,
            GovernanceError::Conflict(_) => Code::GovernanceConflict,
            GovernanceError::ApprovalRequired(_) => Code::ApprovalRequired,
            GovernanceError::ChangeNotFound(_) => Code::ChangeNotFound,
            GovernanceError::NotAllowed(_) => Code::PermissionDenied,
        }
    }
}

impl From<StoreError> for std::io::Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        }
    }
}

/// etcd's auth refusals, with etcd's strings: `clientv3` maps them back to typed errors
/// (etcdctl's `auth enable` adds the root role when it sees `RootRoleNotExist`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The caller's roles do not cover what the request touches.
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    /// Auth is on and the request carries no user (no token), or names none.
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    /// AuthEnable before a `root` user exists.
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    /// AuthEnable while the `root` user lacks the `root` role.
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    /// UserAdd of a name that is taken.
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    /// A user operation naming an unknown user.
    #[error("etcdserver: user name not found")]
    UserNotFound,
    /// RoleAdd of a name that is taken.
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    /// A role operation naming an unknown role.
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    /// RoleAdd with an empty name.
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    /// UserRevokeRole of a role the user does not have.
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    /// RoleRevokePermission of a range the role does not hold.
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    /// While auth is on: deleting `root`, deleting the `root` role, or taking it from `root`.
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
}

impl AuthError {
    /// The code it is recorded under in a `CommandResult`.
    pub fn code(self) -> Code {
        match self {
            AuthError::PermissionDenied => Code::PermissionDenied,
            AuthError::UserEmpty => Code::UserEmpty,
            AuthError::RootUserNotExist => Code::RootUserNotExist,
            AuthError::RootRoleNotExist => Code::RootRoleNotExist,
            AuthError::UserAlreadyExist => Code::UserAlreadyExist,
            AuthError::UserNotFound => Code::UserNotFound,
            AuthError::RoleAlreadyExist => Code::RoleAlreadyExist,
            AuthError::RoleNotFound => Code::RoleNotFound,
            AuthError::RoleEmpty => Code::RoleEmpty,
            AuthError::RoleNotGranted => Code::RoleNotGranted,
            AuthError::PermissionNotGranted => Code::PermissionNotGranted,
            AuthError::InvalidAuthMgmt => Code::InvalidAuthMgmt,
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
