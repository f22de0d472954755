//! `cas`: optimistic compare-and-swap, the way configuration is edited safely: Range a key,
//! then a Txn that writes it only if its `mod_revision` is still the one read. A failed
//! compare is a conflict: counted, retried, and never reported as a success.

use rand::rngs::SmallRng;
use tonic::transport::Channel;
use vane_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use vane_proto::etcdserverpb::kv_client::KvClient;
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};

use crate::config::WorkloadConfig;
use crate::connection_pool::ConnectionPool;
use crate::driver::Operation;
use crate::keyspace::{KeySpace, random_value};
use crate::outcome::{Completed, Failure, OperationKind, Outcome, within_timeout};

/// One client of `cas`.
pub struct CasOperation {
    kv: KvClient<Channel>,
    key_space: KeySpace,
    value: Vec<u8>,
    rng: SmallRng,
    attempts_max: u32,
    request_timeout: std::time::Duration,
}

impl CasOperation {
    /// The operation of client `client`; it gives up after `attempts_max` conflicts.
    pub fn new(
        config: &WorkloadConfig,
        pool: &ConnectionPool,
        key_space: &KeySpace,
        client: usize,
        attempts_max: u32,
    ) -> Self {
        let mut rng = super::client_rng(config, client, super::RandomStream::WriteKeys);
        CasOperation {
            kv: pool.kv(client),
            key_space: key_space.clone(),
            value: random_value(config.value_bytes, &mut rng),
            rng,
            attempts_max,
            request_timeout: config.request_timeout(),
        }
    }

    /// One Range-then-Txn attempt: `Ok(true)` if the write won, `Ok(false)` on a conflict.
    async fn attempt(&mut self, key: &[u8]) -> Result<bool, Failure> {
        let read = RangeRequest {
            key: key.to_vec(),
            ..RangeRequest::default()
        };
        let read = within_timeout(self.request_timeout, self.kv.range(read)).await?;
        // A missing key has mod_revision 0, which etcd's compare also uses for absent keys.
        let mod_revision = read
            .into_inner()
            .kvs
            .first()
            .map_or(0, |kv| kv.mod_revision);
        let write = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal.into(),
                target: CompareTarget::Mod.into(),
                key: key.to_vec(),
                target_union: Some(TargetUnion::ModRevision(mod_revision)),
                ..Compare::default()
            }],
            success: vec![RequestOp {
                request: Some(Request::RequestPut(PutRequest {
                    key: key.to_vec(),
                    value: self.value.clone(),
                    ..PutRequest::default()
                })),
            }],
            failure: Vec::new(),
        };
        let written = within_timeout(self.request_timeout, self.kv.txn(write)).await?;
        Ok(written.into_inner().succeeded)
    }
}

impl Operation for CasOperation {
    async fn execute(&mut self) -> Completed {
        let key = self.key_space.random_key(&mut self.rng);
        let mut cas_conflicts = 0;
        for _ in 0..self.attempts_max {
            let outcome = match self.attempt(&key).await {
                Ok(true) => Outcome::Succeeded,
                Ok(false) => {
                    cas_conflicts += 1;
                    continue;
                }
                Err(failure) => Outcome::Failed(failure),
            };
            return Completed {
                kind: OperationKind::Cas,
                outcome,
                cas_conflicts,
            };
        }
        Completed {
            kind: OperationKind::Cas,
            outcome: Outcome::Abandoned,
            cas_conflicts,
        }
    }
}
