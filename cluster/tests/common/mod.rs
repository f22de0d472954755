//! What the launcher's integration tests share: finding a built `vaned` (tests never
//! build it), bounded waits, and etcd KV calls.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use vane_proto::etcdserverpb::kv_client::KvClient;
use vane_proto::etcdserverpb::{PutRequest, RangeRequest};

/// The `vaned` the tests run. Tests do not build it: `make test` builds the whole
/// workspace (vaned included) before running tests, and by hand
/// `cargo build -p vane-node --bin vaned` does.
pub fn vaned() -> PathBuf {
    match vane_cluster::locate_vaned(None) {
        Ok(path) => path,
        Err(e) => panic!(
            "these tests run real vaned processes and do not build them: {e}. \
             Run `make test`, or `cargo build -p vane-node --bin vaned` first."
        ),
    }
}

/// Polls `check` until it returns `Some`, for at most `within`.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A KV client on `url`, connecting within a few seconds.
pub async fn try_kv(url: &str) -> Result<KvClient<Channel>, String> {
    let channel = Endpoint::from_shared(url.to_string())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    Ok(KvClient::new(channel))
}

/// Puts `key` = `value` through `url`, retrying for a while: right after a leader change
/// a member may refuse until it knows the new leader.
pub async fn put(url: &str, key: &str, value: &str) {
    wait_for(
        &format!("put {key} through {url}"),
        Duration::from_secs(20),
        || async {
            let mut client = try_kv(url).await.ok()?;
            client
                .put(PutRequest {
                    key: key.into(),
                    value: value.into(),
                    ..Default::default()
                })
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await
}

/// Reads `key` through `url` (linearizable unless `serializable`); panics if the read
/// fails.
pub async fn get(url: &str, key: &str, serializable: bool) -> Option<String> {
    try_get(url, key, serializable)
        .await
        .unwrap_or_else(|e| panic!("range {key} through {url}: {e}"))
}

/// Reads `key` through `url`; `Err` when the member refuses or is unreachable.
pub async fn try_get(url: &str, key: &str, serializable: bool) -> Result<Option<String>, String> {
    let mut client = try_kv(url).await?;
    let response = client
        .range(RangeRequest {
            key: key.into(),
            serializable,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    Ok(response
        .kvs
        .first()
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
}

/// Whether any process still runs with `dir` in its command line (Linux `/proc`).
pub fn processes_mentioning(dir: &std::path::Path) -> Vec<u32> {
    let wanted = dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !zombie && String::from_utf8_lossy(&cmdline).contains(&wanted)
        })
        .collect()
}
