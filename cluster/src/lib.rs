//! Starting, stopping and inspecting a local cluster of real `vaned` processes.
//!
//! Test suites, benchmarks and the jepsen-style suite found a cluster with
//! [`LocalCluster::start`] and drive it through the same operations the `vane-cluster`
//! binary offers a shell (kill, stop, restart, add, remove, down). Everything goes
//! through plain `vaned` flags and the etcd v3 API, so whatever works here works for an
//! operator with `vaned` and `etcdctl`.
//!
//! Which file owns what: `spec.rs` what a caller asks for and how long waits may take;
//! `record.rs` the `cluster.json` that lets separate commands find the members;
//! `local_cluster.rs` the processes' lifecycle; `membership.rs` MemberAdd/Remove/Promote;
//! `status.rs` who is alive and who leads; `process.rs` signals and pids; `ports.rs`
//! port choice; `locate.rs` finding `vaned`; `rpc.rs` the etcd calls.

#![warn(missing_docs)]

mod error;
mod local_cluster;
mod locate;
mod membership;
mod ports;
mod process;
mod record;
mod rpc;
mod spec;
mod status;

pub use error::{ClusterError, Result};
pub use local_cluster::{LocalCluster, ProcessEnd};
pub use locate::{VANED_ENV, locate_vaned};
pub use ports::{PORT_STRIDE_PER_MEMBER, free_loopback_ports};
pub use record::{ClusterRecord, InitialClusterState, MemberRecord, RECORD_FILE_NAME};
pub use spec::{ClusterSpec, Timeouts, worker_threads_per_member};
pub use status::{MemberStatus, RaftStatus, leader_of};
