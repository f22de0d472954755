//! `get` and `get-serializable`: single-key Ranges of pre-populated keys. Linearizable gets
//! measure the read-index round trip; serializable gets measure the local read path.

use rand::rngs::SmallRng;
use tonic::transport::Channel;
use vane_proto::etcdserverpb::RangeRequest;
use vane_proto::etcdserverpb::kv_client::KvClient;

use crate::config::WorkloadConfig;
use crate::connection_pool::ConnectionPool;
use crate::driver::Operation;
use crate::keyspace::KeySpace;
use crate::outcome::{Completed, Failure, OperationKind, within_timeout};

/// One client of `get` or `get-serializable`; also the read half of `mixed`.
pub struct GetOperation {
    kv: KvClient<Channel>,
    key_space: KeySpace,
    rng: SmallRng,
    serializable: bool,
    request_timeout: std::time::Duration,
}

impl GetOperation {
    /// The operation of client `client`.
    pub fn new(
        config: &WorkloadConfig,
        pool: &ConnectionPool,
        key_space: &KeySpace,
        client: usize,
        serializable: bool,
    ) -> Self {
        GetOperation {
            kv: pool.kv(client),
            key_space: key_space.clone(),
            rng: super::client_rng(config, client, super::RandomStream::ReadKeys),
            serializable,
            request_timeout: config.request_timeout(),
        }
    }

    /// The kind this operation reports as.
    pub fn kind(&self) -> OperationKind {
        if self.serializable {
            OperationKind::GetSerializable
        } else {
            OperationKind::Get
        }
    }

    /// Reads one random key, which must exist: every key was pre-populated.
    pub async fn get_random_key(&mut self) -> Result<(), Failure> {
        let request = RangeRequest {
            key: self.key_space.random_key(&mut self.rng),
            serializable: self.serializable,
            ..RangeRequest::default()
        };
        let response = within_timeout(self.request_timeout, self.kv.range(request)).await?;
        if response.into_inner().kvs.len() == 1 {
            Ok(())
        } else {
            Err(Failure::Check("KeyMissing"))
        }
    }
}

impl Operation for GetOperation {
    async fn execute(&mut self) -> Completed {
        let kind = self.kind();
        Completed::new(kind, self.get_random_key().await)
    }
}
