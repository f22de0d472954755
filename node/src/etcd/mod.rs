//! etcd's v3 gRPC services, as etcd clients see them. Each file is one service; each
//! handler checks its arguments with etcd's rules, then proposes (writes) or reads
//! through [`crate::node::Node`].

pub mod cluster;
pub mod kv;
pub mod lease;
pub mod maintenance;

/// The etcd API version this server answers as (what `etcdctl version` and
/// `endpoint status` show), with Vane's own version as build metadata.
pub const SERVER_VERSION: &str = concat!("3.4.0+vane.", env!("CARGO_PKG_VERSION"));
