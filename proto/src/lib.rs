//! Generated protobuf code for everything Vane puts on a wire or on a disk.
//!
//! `etcdserverpb`, `mvccpb` and `authpb` are etcd's v3 API, so etcd clients work unchanged;
//! `raft` is what the Raft log carries; `storage` is what the state machine persists.
//! Only generated code and a few trait impls live here, never logic.

#![allow(clippy::all, missing_docs)]

/// etcd's key-value and event records.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// etcd's users, roles and permissions.
pub mod authpb {
    tonic::include_proto!("authpb");
}

/// etcd's v3 gRPC services and messages.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

/// Vane's own packages, nested as their protobuf package names so that generated
/// cross-package paths resolve.
pub mod vane {
    /// `vane.v1`: Vane's own client API beside etcd's (exactly-once sessions, the
    /// configuration API).
    pub mod v1 {
        tonic::include_proto!("vane.v1");
    }
    /// `vane.raft.*`
    pub mod raft {
        /// Raft log entries, commands and their results.
        pub mod v1 {
            tonic::include_proto!("vane.raft.v1");
        }
    }
    /// `vane.storage.*`
    pub mod storage {
        /// State machine records kept in RocksDB and streamed in snapshots.
        pub mod v1 {
            tonic::include_proto!("vane.storage.v1");
        }
    }
}

pub use vane::raft::v1 as raft;
pub use vane::storage::v1 as storage;
/// Vane's own client API.
pub use vane::v1 as api;

mod display;
