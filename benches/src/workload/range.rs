//! `range`: linearizable Ranges over `range_keys` consecutive pre-populated keys, measuring
//! the cost of reading and shipping many keys in one response.

use rand::Rng;
use rand::rngs::SmallRng;
use tonic::transport::Channel;
use vane_proto::etcdserverpb::RangeRequest;
use vane_proto::etcdserverpb::kv_client::KvClient;

use crate::config::WorkloadConfig;
use crate::connection_pool::ConnectionPool;
use crate::driver::Operation;
use crate::keyspace::KeySpace;
use crate::outcome::{Completed, Failure, OperationKind, within_timeout};

/// One client of `range`.
pub struct RangeOperation {
    kv: KvClient<Channel>,
    key_space: KeySpace,
    range_keys: u64,
    rng: SmallRng,
    request_timeout: std::time::Duration,
}

impl RangeOperation {
    /// The operation of client `client`; `range_keys` is at most the key count (validated).
    pub fn new(
        config: &WorkloadConfig,
        pool: &ConnectionPool,
        key_space: &KeySpace,
        client: usize,
        range_keys: u64,
    ) -> Self {
        RangeOperation {
            kv: pool.kv(client),
            key_space: key_space.clone(),
            range_keys,
            rng: super::client_rng(config, client, super::RandomStream::ReadKeys),
            request_timeout: config.request_timeout(),
        }
    }

    /// Reads `range_keys` keys from a random start; all must come back.
    async fn range_from_random_start(&mut self) -> Result<(), Failure> {
        let first = self
            .rng
            .random_range(0..=self.key_space.key_count() - self.range_keys);
        let request = RangeRequest {
            key: self.key_space.key(first),
            range_end: self.key_space.key(first + self.range_keys),
            ..RangeRequest::default()
        };
        let response = within_timeout(self.request_timeout, self.kv.range(request)).await?;
        let returned = response.into_inner().kvs.len() as u64;
        if returned == self.range_keys {
            Ok(())
        } else {
            Err(Failure::Check("RangeShort"))
        }
    }
}

impl Operation for RangeOperation {
    async fn execute(&mut self) -> Completed {
        Completed::new(OperationKind::Range, self.range_from_random_start().await)
    }
}
