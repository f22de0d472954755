//! Pre-population: before a read workload measures anything, every key of the key space is
//! written once, so that gets and ranges read real values instead of missing keys; then
//! every endpoint is made to catch up, so that serializable reads on a follower do not
//! find keys missing that its leader has already acknowledged.

use futures::{StreamExt, TryStreamExt};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{PutRequest, RangeRequest, RequestOp, TxnRequest};

use crate::config::WorkloadConfig;
use crate::connection_pool::ConnectionPool;
use crate::error::BenchError;
use crate::keyspace::{KeySpace, prefix_range_end, random_value};
use crate::outcome::within_timeout;

/// Most puts in one pre-population Txn: under etcd's default `--max-txn-ops` of 128.
const KEYS_PER_TXN_MAX: u64 = 100;
/// Most bytes of keys and values in one pre-population Txn: under etcd's default
/// `--max-request-bytes` of 1.5 MiB.
const TXN_PAYLOAD_BYTES_MAX: u64 = 1024 * 1024;
/// Pre-population Txns in flight at once: enough to keep a Raft leader's pipeline busy,
/// few enough not to queue behind each other past the request timeout.
const TXNS_IN_FLIGHT_MAX: usize = 8;

/// Writes every key of `key_space` once, in batched Txns spread over the connections.
pub async fn populate_keys(
    config: &WorkloadConfig,
    pool: &ConnectionPool,
    key_space: &KeySpace,
) -> Result<(), BenchError> {
    let value = random_value(
        config.value_bytes,
        &mut super::client_rng(config, 0, super::RandomStream::WriteKeys),
    );
    let entry_bytes = (config.key_bytes + config.value_bytes).max(1) as u64;
    let keys_per_txn = (TXN_PAYLOAD_BYTES_MAX / entry_bytes).clamp(1, KEYS_PER_TXN_MAX);
    let batch_count = key_space.key_count().div_ceil(keys_per_txn);
    let request_timeout = config.request_timeout();

    futures::stream::iter(0..batch_count)
        .map(|batch| {
            let first = batch * keys_per_txn;
            let end = (first + keys_per_txn).min(key_space.key_count());
            let puts = (first..end)
                .map(|index| RequestOp {
                    request: Some(Request::RequestPut(PutRequest {
                        key: key_space.key(index),
                        value: value.clone(),
                        ..PutRequest::default()
                    })),
                })
                .collect();
            let mut kv = pool.kv(batch as usize);
            async move {
                let txn = TxnRequest {
                    compare: Vec::new(),
                    success: puts,
                    failure: Vec::new(),
                };
                within_timeout(request_timeout, kv.txn(txn))
                    .await
                    .map_err(|failure| BenchError::Setup {
                        step: format!(
                            "pre-populate keys {} to {}",
                            String::from_utf8_lossy(&key_space.key(first)),
                            String::from_utf8_lossy(&key_space.key(end - 1))
                        ),
                        detail: failure.label(),
                    })
            }
        })
        .buffer_unordered(TXNS_IN_FLIGHT_MAX)
        .try_for_each(|_response| futures::future::ready(Ok(())))
        .await?;
    wait_until_every_endpoint_has_applied(config, pool).await
}

/// Sends one linearizable count-only Range over the run's prefix to every endpoint: each
/// answers only once it has applied everything committed before, the pre-population
/// included. Serializable reads that start right after would otherwise see a lagging
/// follower's older state and count the newest keys as missing.
async fn wait_until_every_endpoint_has_applied(
    config: &WorkloadConfig,
    pool: &ConnectionPool,
) -> Result<(), BenchError> {
    let prefix = config.key_prefix.as_bytes();
    // Connection `i` goes to endpoint `i`, for every `i` below the number of endpoints.
    for (connection, endpoint) in config.endpoints.iter().enumerate() {
        let request = RangeRequest {
            key: prefix.to_vec(),
            range_end: prefix_range_end(prefix),
            count_only: true,
            ..RangeRequest::default()
        };
        within_timeout(config.request_timeout(), pool.kv(connection).range(request))
            .await
            .map_err(|failure| BenchError::Setup {
                step: format!("wait for {endpoint} to apply the pre-populated keys"),
                detail: failure.label(),
            })?;
    }
    Ok(())
}
