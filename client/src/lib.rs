//! The Rust client of Vane: etcd's v3 API with the failure handling a configuration
//! store's users should not have to write themselves.
//!
//! - **Failover.** The client keeps one connection per member (learned from MemberList),
//!   sends writes to the leader, spreads reads over the members, and retries a failed
//!   attempt on another member with bounded, jittered backoff until the call's
//!   `request_timeout`.
//! - **Exactly-once writes.** With `sessions` on (the default) every write carries a
//!   session number, and the cluster answers a retry of an already applied write with
//!   the remembered answer: a compare-and-swap retried after a lost answer reports its
//!   success instead of failing against its own write, and an increment is never
//!   counted twice.
//! - **Resuming watches.** A [`Watcher`] re-creates its watch on another member from the
//!   first revision it has not delivered, so a crash never skips or repeats a revision.
//!
//! The raw methods ([`Client::range`], [`Client::put`], [`Client::txn`], ...) take and
//! return etcd's protobuf messages from [`vane_proto::etcdserverpb`]; the typed helpers
//! ([`Client::get`], [`Client::compare_and_swap`], [`Client::update`]) cover the common
//! cases.
//!
//! ```no_run
//! use vane_client::{Client, ClientConfig, txn};
//! use vane_proto::etcdserverpb::{PutRequest, WatchCreateRequest};
//!
//! # async fn example() -> Result<(), vane_client::Error> {
//! let client = Client::connect(ClientConfig::new(["127.0.0.1:2379"])).await?;
//! client
//!     .put(PutRequest { key: b"/app/mode".to_vec(), value: b"blue".to_vec(), ..Default::default() })
//!     .await?;
//!
//! // Read-modify-write, applied once even if the leader crashes mid-way.
//! client
//!     .update("/app/deploys", |old| {
//!         let count: u64 = old.and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()).unwrap_or(0);
//!         Some((count + 1).to_string().into_bytes())
//!     })
//!     .await?;
//!
//! // Every change under /app/ from revision 1 on, across member failures.
//! let mut watcher = client
//!     .watch(WatchCreateRequest {
//!         key: b"/app/".to_vec(),
//!         range_end: txn::prefix_range_end(b"/app/"),
//!         start_revision: 1,
//!         ..Default::default()
//!     })
//!     .await?;
//! while let Some(response) = watcher.next().await {
//!     for event in response?.events {
//!         println!("{:?}", event.kv.map(|kv| kv.key));
//!     }
//! }
//! client.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Which file owns what: `config.rs` the knobs; `error.rs` the error type and how
//! statuses are classified for retrying; `members.rs` connections and routing;
//! `retry.rs` backoff; `auth.rs` credentials, the token and the Auth service; `client.rs` the call loop and the exactly-once write path;
//! `session.rs` session numbering; `kv.rs`, `txn.rs`, `lease.rs`, `cluster.rs`,
//! `maintenance.rs`, `watch.rs` one etcd service each; `namespace.rs` Vane's configuration
//! API.

#![warn(missing_docs)]

mod auth;
mod client;
mod cluster;
mod config;
mod error;
mod kv;
mod lease;
mod maintenance;
mod members;
mod namespace;
mod retry;
mod session;
mod tls;
pub mod txn;
mod watch;

pub use auth::{Credentials, TOKEN_METADATA_KEY};
pub use client::{Client, ClientStats};
pub use config::{
    ATTEMPT_TIMEOUT_DEFAULT, ClientConfig, DIAL_TIMEOUT_DEFAULT, REQUEST_TIMEOUT_DEFAULT,
    SESSION_TTL_DEFAULT,
};
pub use error::{COMPACTED_MESSAGE, Error, LEASE_NOT_FOUND_MESSAGE};
pub use kv::{CasOutcome, Updated};
pub use lease::LeaseKeeper;
pub use maintenance::SnapshotStream;
pub use members::normalize_endpoint;
pub use namespace::ChangeDecision;
pub use session::{ACKED_BELOW_HEADER, SEQUENCE_HEADER, SESSION_HEADER};
pub use tls::TlsFiles;
pub use txn::TxnBuilder;
/// The protobuf types the raw methods take and return, so callers need not depend on
/// `vane-proto` themselves.
pub use vane_proto;
pub use watch::Watcher;
