//! `mixed`: linearizable gets and puts over one key space, in a `read_ratio` proportion,
//! the shape of a configuration store's everyday traffic.

use rand::Rng;
use rand::rngs::SmallRng;

use crate::config::WorkloadConfig;
use crate::connection_pool::ConnectionPool;
use crate::driver::Operation;
use crate::keyspace::KeySpace;
use crate::outcome::{Completed, OperationKind};

use super::get::GetOperation;
use super::put::PutOperation;

/// One client of `mixed`: a get or a put per operation, by coin toss.
pub struct MixedOperation {
    reads: GetOperation,
    writes: PutOperation,
    read_ratio: f64,
    rng: SmallRng,
}

impl MixedOperation {
    /// The operation of client `client`; `read_ratio` is in `[0, 1]` (validated).
    pub fn new(
        config: &WorkloadConfig,
        pool: &ConnectionPool,
        key_space: &KeySpace,
        client: usize,
        read_ratio: f64,
    ) -> Self {
        MixedOperation {
            reads: GetOperation::new(config, pool, key_space, client, false),
            writes: PutOperation::new(config, pool, key_space, client),
            read_ratio,
            rng: super::client_rng(config, client, super::RandomStream::OperationChoice),
        }
    }
}

impl Operation for MixedOperation {
    async fn execute(&mut self) -> Completed {
        if self.rng.random_bool(self.read_ratio) {
            Completed::new(OperationKind::Get, self.reads.get_random_key().await)
        } else {
            Completed::new(OperationKind::Put, self.writes.put_random_key().await)
        }
    }
}
