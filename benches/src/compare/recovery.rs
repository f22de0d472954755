//! The recovery section: how long a member with a big store takes to serve again after a
//! crash. On a fresh cluster: write `--recovery-keys` distinct keys, then one marker put
//! whose revision is the last; kill a follower with SIGKILL; start it again on its data
//! and time until a serializable read on it returns the marker at that revision, that is
//! until it has reopened its store and applied everything written before the crash.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use vane_proto::etcdserverpb::kv_client::KvClient;
use vane_proto::etcdserverpb::{PutRequest, RangeRequest};

use crate::config::{Workload, WorkloadConfig};
use crate::error::BenchError;

use super::Comparison;
use super::cluster::SystemKind;
use super::summary::RecoveryRun;

/// The key written last, outside the benchmark's key prefix.
const MARKER_KEY: &[u8] = b"bench-recovery-marker";
/// Longest a restarted member may take to serve the marker.
const SERVING_WAIT: Duration = Duration::from_secs(600);
/// Pause between two attempts to read the marker; the recovery time is known to within it.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How long one attempt (connecting, or reading) may take before it is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the section `--repetitions` times on each system and adds it to the summary.
pub async fn run(comparison: &mut Comparison) {
    for repetition in 1..=comparison.options.repetitions {
        for system in SystemKind::ALTERNATION {
            let dir = comparison.cluster_dir("recovery", system, repetition);
            match run_once(comparison, system, repetition, &dir).await {
                Ok(run) => {
                    let figures = format!(
                        "{} with {} keys served again after {:.2} s",
                        run.member, run.keys, run.serving_after_secs
                    );
                    comparison.succeeded("recovery", system, repetition, &dir, &figures);
                    comparison.summary.recovery.push(run);
                }
                Err(error) => comparison.failed("recovery", system, repetition, &dir, &error),
            }
        }
    }
}

async fn run_once(
    comparison: &Comparison,
    system: SystemKind,
    repetition: usize,
    dir: &Path,
) -> Result<RecoveryRun, BenchError> {
    let options = &comparison.options;
    let mut cluster = comparison.start_cluster(system, dir).await?;
    let endpoints = cluster.endpoints_leader_first().await;
    let mut populate = WorkloadConfig::new(Workload::Put, endpoints.clone());
    populate.key_count = options.recovery_keys;
    populate.value_bytes = options.value_bytes;
    populate.seed = Some(options.seed);
    crate::workload::populate(&populate).await?;
    let marker_revision = put_marker(&endpoints[0]).await?;

    let follower = endpoints
        .get(1)
        .and_then(|url| cluster.member_at(url))
        .ok_or_else(|| BenchError::Cluster {
            system: system.name(),
            detail: "no follower to restart".to_owned(),
        })?;
    cluster.kill(&follower.name).await?;
    let started = Instant::now();
    cluster.start_again(&follower.name).await?;
    wait_until_serving(&follower.client_url, marker_revision)
        .await
        .ok_or_else(|| BenchError::Cluster {
            system: system.name(),
            detail: format!(
                "{} did not serve the last write within {SERVING_WAIT:?} of its restart",
                follower.name
            ),
        })?;
    let serving_after = started.elapsed();
    let nodes_after = cluster.footprint();
    drop(cluster);
    let run = RecoveryRun {
        system,
        repetition,
        keys: options.recovery_keys,
        member: follower.name,
        serving_after_secs: serving_after.as_secs_f64(),
        nodes_after,
    };
    comparison.results.write_json(
        &format!("recovery/{}-rep{repetition}.json", system.name()),
        &run,
    )?;
    Ok(run)
}

/// Puts the marker through `leader_url` and returns its revision.
async fn put_marker(leader_url: &str) -> Result<i64, BenchError> {
    let setup = |detail: String| BenchError::Setup {
        step: "write the recovery marker".to_owned(),
        detail,
    };
    let mut kv = connect(leader_url)
        .await
        .ok_or_else(|| setup(format!("cannot connect to {leader_url}")))?;
    let put = kv.put(PutRequest {
        key: MARKER_KEY.to_vec(),
        value: b"last".to_vec(),
        ..PutRequest::default()
    });
    let response = tokio::time::timeout(ATTEMPT_TIMEOUT * 10, put)
        .await
        .map_err(|_| setup("timed out".to_owned()))?
        .map_err(|status| setup(status.to_string()))?;
    response
        .into_inner()
        .header
        .map(|header| header.revision)
        .ok_or_else(|| setup("the response has no header".to_owned()))
}

/// Reads the marker serializably from `url` until it is there at `revision`; `None` if
/// that does not happen within [`SERVING_WAIT`].
async fn wait_until_serving(url: &str, revision: i64) -> Option<()> {
    let deadline = Instant::now() + SERVING_WAIT;
    let mut kv = None;
    while Instant::now() < deadline {
        if kv.is_none() {
            kv = connect(url).await;
        }
        if let Some(client) = kv.as_mut() {
            let read = client.range(RangeRequest {
                key: MARKER_KEY.to_vec(),
                serializable: true,
                ..RangeRequest::default()
            });
            if let Ok(Ok(response)) = tokio::time::timeout(ATTEMPT_TIMEOUT, read).await
                && response
                    .into_inner()
                    .kvs
                    .first()
                    .is_some_and(|kv| kv.mod_revision == revision)
            {
                return Some(());
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    None
}

async fn connect(url: &str) -> Option<KvClient<Channel>> {
    let channel = Endpoint::from_shared(url.to_owned())
        .ok()?
        .connect_timeout(ATTEMPT_TIMEOUT)
        .connect()
        .await
        .ok()?;
    Some(KvClient::new(channel))
}
