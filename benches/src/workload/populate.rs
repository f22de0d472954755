//! Pre-population: before a read workload measures anything, every key of the key space is
//! written once, so that gets and ranges read real values instead of missing keys.

use futures::{StreamExt, TryStreamExt};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{PutRequest, RequestOp, TxnRequest};

use crate::config::WorkloadConfig;
use crate::connection_pool::ConnectionPool;
use crate::error::BenchError;
use crate::keyspace::{KeySpace, random_value};
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
        .await
}
