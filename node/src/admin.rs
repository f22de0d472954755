//! The admin HTTP endpoint (`--listen-metrics-urls`): `/metrics` for Prometheus,
//! `/health` in etcd's JSON (what `etcdctl endpoint health` and load balancers read), and
//! `/readyz` for orchestrators deciding whether to send traffic.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use openraft::async_runtime::WatchReceiver;

use crate::node::Node;

/// The admin routes of `node`.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/readyz", get(readyz))
        .with_state(node)
}

async fn metrics(State(node): State<Arc<Node>>) -> Response {
    node.metrics
        .record_log_progress(&node.raft.metrics().borrow_watched());
    node.metrics
        .db_size_bytes
        .set(node.state_machine.db_size_bytes() as i64);
    node.metrics
        .set_storage_memory("state_machine", node.state_machine.storage_memory());
    node.metrics
        .set_storage_memory("raft_log", node.log_store.storage_memory());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(),
    )
        .into_response()
}

/// Why this member is not healthy, if it is not.
fn unhealthy_reason(node: &Node) -> Option<&'static str> {
    let metrics = node.raft.metrics();
    let m = metrics.borrow_watched();
    if m.running_state.is_err() {
        return Some("RAFT STOPPED");
    }
    if m.current_leader.is_none() {
        return Some("RAFT NO LEADER");
    }
    None
}

async fn health(State(node): State<Arc<Node>>) -> Response {
    match unhealthy_reason(&node) {
        None => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"health":"true","reason":""}"#,
        )
            .into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            format!(r#"{{"health":"false","reason":"{reason}"}}"#),
        )
            .into_response(),
    }
}

async fn readyz(State(node): State<Arc<Node>>) -> Response {
    let lagging = {
        let metrics = node.raft.metrics();
        let m = metrics.borrow_watched();
        let committed = m.local_committed.as_ref().map_or(0, |l| l.index);
        let applied = m.last_applied.as_ref().map_or(0, |l| l.index);
        applied < committed
    };
    match unhealthy_reason(&node) {
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
        None if lagging => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: applying the committed log\n",
        )
            .into_response(),
        None => (StatusCode::OK, "ok\n").into_response(),
    }
}
