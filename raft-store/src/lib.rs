//! Vane's durable, deterministic core: the Raft log and the replicated state machine, on
//! RocksDB.
//!
//! * [`data_dir`]: the data directory's layout, format version and exclusive lock.
//! * [`raft`]: the openraft adapters (type config, log store, state machine, conversions).
//! * [`state_machine`]: the state machine — apply, reads, snapshots.
//! * `mvcc`: the versioned keyspace with etcd's semantics; `lease` and `session`: leases
//!   and exactly-once client sessions as replicated state.
//! * [`auth`]: users, roles and permissions as replicated state, and the permission check
//!   every request path (apply included) goes through.
//!
//! Nothing here reads a clock during apply, draws a random number, or touches the
//! network: every node that applies the same log reaches the same bytes.

pub mod audit;
pub mod auth;
pub mod change;
pub mod data_dir;
mod db;
pub mod error;
pub mod governance;
pub mod impact;
mod lease;
mod mvcc;
#[cfg(feature = "planted-bugs")]
pub mod planted;
pub mod raft;
mod session;
pub mod state_machine;

pub use data_dir::{DataDir, FORMAT_VERSION};
pub use db::{
    BACKGROUND_WRITE_BYTES_PER_SEC_DEFAULT, StorageMemory, set_background_write_bytes_per_sec,
};
pub use error::{AuthError, GovernanceError, StoreError};
pub use governance::prefix_range_end;
pub use lease::LEASE_TTL_MAX_SECONDS;
pub use mvcc::Limits;
pub use mvcc::events::EventPage;
pub use mvcc::range::Revisions;
pub use mvcc::txn::{
    check_delete_request, check_put_request, check_range_request, check_txn_request, puts_anything,
    reads_only, reads_serializable,
};
pub use session::{SESSION_TTL_MAX_MS, SESSION_TTL_MIN_MS, SESSION_UNACKED_MAX};
pub use state_machine::snapshot::SnapshotFile;
pub use state_machine::{Applied, ApplyItem, ApplyPayload, IN_MEMORY_RECORDS_MAX, StateMachine};
