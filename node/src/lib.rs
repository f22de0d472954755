//! `vaned`, a Vane cluster member.
//!
//! * [`config`]: every tunable, from flags, environment and a TOML file; [`entry`]: the
//!   process's main.
//! * [`server`]: start-up, serving and graceful shutdown.
//! * [`node`]: the member's shared state; proposing writes and linearizable reads;
//!   [`forward`]: a follower's writes, batched on their way to the leader;
//!   [`read_index`]: linearizable reads sharing one read index.
//! * [`raft`]: the openraft wiring and the peer network.
//! * [`etcd`]: etcd's v3 gRPC services; [`watch`]: the Watch service and its cache.
//! * [`errors`]: where failures become gRPC statuses.
//! * [`admin`], [`metrics`]: the admin HTTP endpoint and what it reports.
//! * [`member`]: member and cluster ids; [`membership`]: membership changes.
//! * [`lease`]: lease deadlines and expiry, on the leader.
//! * [`session`]: exactly-once client sessions (`vane.v1.Session` and request tags).
//! * [`auth`]: etcd's Auth service, tokens, and the permission check every service calls.

pub mod admin;
pub mod auth;
pub mod config;
pub mod config_api;
pub mod entry;
pub mod errors;
pub mod etcd;
pub mod forward;
pub mod lease;
pub mod member;
pub mod membership;
pub mod metrics;
pub mod node;
#[cfg(feature = "planted-bugs")]
pub mod planted;
pub mod raft;
pub mod read_index;
pub mod server;
pub mod session;
pub mod tls;
pub mod watch;
