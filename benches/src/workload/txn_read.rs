//! `txn-read`: a Txn that only reads: [`KEYS_PER_TXN`] random pre-populated keys read
//! together, linearizably, in one snapshot. Clients read related configuration values
//! this way so that none of them is from before a change the others are from after.

use rand::rngs::SmallRng;
use tonic::transport::Channel;
use vane_proto::etcdserverpb::kv_client::KvClient;
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::response_op::Response;
use vane_proto::etcdserverpb::{RangeRequest, RequestOp, TxnRequest};

use crate::config::WorkloadConfig;
use crate::connection_pool::ConnectionPool;
use crate::driver::Operation;
use crate::keyspace::KeySpace;
use crate::outcome::{Completed, Failure, OperationKind, within_timeout};

/// Keys each txn reads.
pub const KEYS_PER_TXN: usize = 2;

/// One client of `txn-read`.
pub struct TxnReadOperation {
    kv: KvClient<Channel>,
    key_space: KeySpace,
    rng: SmallRng,
    request_timeout: std::time::Duration,
}

impl TxnReadOperation {
    /// The operation of client `client`.
    pub fn new(
        config: &WorkloadConfig,
        pool: &ConnectionPool,
        key_space: &KeySpace,
        client: usize,
    ) -> Self {
        TxnReadOperation {
            kv: pool.kv(client),
            key_space: key_space.clone(),
            rng: super::client_rng(config, client, super::RandomStream::ReadKeys),
            request_timeout: config.request_timeout(),
        }
    }

    /// Reads [`KEYS_PER_TXN`] random keys in one txn; every one must come back.
    async fn read_random_keys(&mut self) -> Result<(), Failure> {
        let success = (0..KEYS_PER_TXN)
            .map(|_| RequestOp {
                request: Some(Request::RequestRange(RangeRequest {
                    key: self.key_space.random_key(&mut self.rng),
                    ..RangeRequest::default()
                })),
            })
            .collect();
        let request = TxnRequest {
            success,
            ..TxnRequest::default()
        };
        let response = within_timeout(self.request_timeout, self.kv.txn(request)).await?;
        let every_key_found = response.into_inner().responses.iter().all(|op| {
            matches!(&op.response, Some(Response::ResponseRange(range)) if range.kvs.len() == 1)
        });
        if every_key_found {
            Ok(())
        } else {
            Err(Failure::Check("KeyMissing"))
        }
    }
}

impl Operation for TxnReadOperation {
    async fn execute(&mut self) -> Completed {
        Completed::new(OperationKind::TxnRead, self.read_random_keys().await)
    }
}
