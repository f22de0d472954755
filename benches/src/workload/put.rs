//! `put`: Puts of random keys, the write path alone (Raft commit, fsync, apply).

use tonic::transport::Channel;
use vane_proto::etcdserverpb::PutRequest;
use vane_proto::etcdserverpb::kv_client::KvClient;

use rand::rngs::SmallRng;

use crate::config::WorkloadConfig;
use crate::connection_pool::ConnectionPool;
use crate::driver::Operation;
use crate::keyspace::{KeySpace, random_value};
use crate::outcome::{Completed, Failure, OperationKind, within_timeout};

/// One client of `put`; also the write half of `mixed`.
pub struct PutOperation {
    kv: KvClient<Channel>,
    key_space: KeySpace,
    value: Vec<u8>,
    rng: SmallRng,
    request_timeout: std::time::Duration,
}

impl PutOperation {
    /// The operation of client `client`.
    pub fn new(
        config: &WorkloadConfig,
        pool: &ConnectionPool,
        key_space: &KeySpace,
        client: usize,
    ) -> Self {
        let mut rng = super::client_rng(config, client, super::RandomStream::WriteKeys);
        PutOperation {
            kv: pool.kv(client),
            key_space: key_space.clone(),
            value: random_value(config.value_bytes, &mut rng),
            rng,
            request_timeout: config.request_timeout(),
        }
    }

    /// Puts one random key.
    pub async fn put_random_key(&mut self) -> Result<(), Failure> {
        let request = PutRequest {
            key: self.key_space.random_key(&mut self.rng),
            value: self.value.clone(),
            ..PutRequest::default()
        };
        within_timeout(self.request_timeout, self.kv.put(request))
            .await
            .map(drop)
    }
}

impl Operation for PutOperation {
    async fn execute(&mut self) -> Completed {
        Completed::new(OperationKind::Put, self.put_random_key().await)
    }
}
