//! The KV service through the client: etcd's raw requests with failover (reads spread
//! over members, writes through the session), and the typed helpers most code wants
//! instead: [`Client::get`], [`Client::compare_and_swap`] and [`Client::update`].

use std::time::Instant;

use crate::members::Conn;
use tonic::metadata::MetadataMap;
use vane_proto::etcdserverpb::kv_client::KvClient;
use vane_proto::etcdserverpb::response_op::Response as OpResponse;
use vane_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use vane_proto::mvccpb::KeyValue;

use crate::client::{Attempts, Client};
use crate::error::Error;
use crate::members::Route;
use crate::retry::Retry;
use crate::txn::{self, CompareOp, TxnBuilder};

/// Largest response the client accepts, in bytes: etcd's clients accept up to 2 GiB, and a
/// range over a large keyspace is legitimately big.
pub(crate) const RESPONSE_BYTES_MAX: usize = i32::MAX as usize;

/// A KV stub on `channel` that accepts large responses.
pub(crate) fn kv_client(channel: Conn) -> KvClient<Conn> {
    KvClient::new(channel).max_decoding_message_size(RESPONSE_BYTES_MAX)
}

/// `message` as a request carrying `metadata` (a write's session tag).
pub(crate) fn tagged<T>(message: T, metadata: MetadataMap) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = metadata;
    request
}

/// What a compare-and-swap found.
#[derive(Clone, Debug, PartialEq)]
pub enum CasOutcome {
    /// The key had the expected revision and now holds the new value.
    Swapped {
        /// The revision of the write.
        revision: i64,
    },
    /// The key had moved on (or did not exist, or existed when it should not have):
    /// nothing was written.
    Mismatch {
        /// The key as it is now; `None` when absent.
        current: Option<KeyValue>,
    },
}

impl CasOutcome {
    /// Whether the value was written.
    pub fn swapped(&self) -> bool {
        matches!(self, CasOutcome::Swapped { .. })
    }
}

/// What [`Client::update`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Updated {
    /// The key as it was before the update took effect (what the closure last saw).
    pub previous: Option<KeyValue>,
    /// The value written, or `None` when the closure declined to change the key.
    pub value: Option<Vec<u8>>,
    /// The revision of the write; when nothing was written, the key's mod revision (0
    /// for an absent key).
    pub revision: i64,
    /// How many times another writer got in between and the closure ran again.
    pub conflicts: u32,
}

impl Client {
    /// etcd's Range, on any member (linearizable unless `serializable`).
    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse, Error> {
        self.range_until(req, self.inner.deadline()).await
    }

    async fn range_until(
        &self,
        req: RangeRequest,
        deadline: Instant,
    ) -> Result<RangeResponse, Error> {
        self.inner
            .call(
                "range",
                Route::Read,
                Retry::Always,
                deadline,
                &mut Attempts::default(),
                |channel| {
                    let req = req.clone();
                    async move { kv_client(channel).range(req).await.map(|r| r.into_inner()) }
                },
            )
            .await
    }

    /// etcd's Put, applied once even when retried (with sessions on).
    pub async fn put(&self, req: PutRequest) -> Result<PutResponse, Error> {
        self.inner
            .write("put", self.inner.deadline(), |channel, metadata| {
                let request = tagged(req.clone(), metadata);
                async move {
                    kv_client(channel)
                        .put(request)
                        .await
                        .map(|r| r.into_inner())
                }
            })
            .await
    }

    /// etcd's DeleteRange, applied once even when retried (with sessions on).
    pub async fn delete_range(
        &self,
        req: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, Error> {
        self.inner
            .write("delete", self.inner.deadline(), |channel, metadata| {
                let request = tagged(req.clone(), metadata);
                async move {
                    kv_client(channel)
                        .delete_range(request)
                        .await
                        .map(|r| r.into_inner())
                }
            })
            .await
    }

    /// etcd's Txn, applied once even when retried (with sessions on): a retried
    /// compare-and-swap reports the success of its first attempt rather than failing its
    /// compare against its own write.
    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, Error> {
        self.txn_until(req, self.inner.deadline()).await
    }

    async fn txn_until(&self, req: TxnRequest, deadline: Instant) -> Result<TxnResponse, Error> {
        self.inner
            .write("txn", deadline, |channel, metadata| {
                let request = tagged(req.clone(), metadata);
                async move {
                    kv_client(channel)
                        .txn(request)
                        .await
                        .map(|r| r.into_inner())
                }
            })
            .await
    }

    /// etcd's Compact: forgets history below `req.revision`.
    pub async fn compact(&self, req: CompactionRequest) -> Result<CompactionResponse, Error> {
        self.inner
            .write("compaction", self.inner.deadline(), |channel, metadata| {
                let request = tagged(req, metadata);
                async move {
                    kv_client(channel)
                        .compact(request)
                        .await
                        .map(|r| r.into_inner())
                }
            })
            .await
    }

    /// The key's current record, or `None` when it does not exist (a linearizable read).
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<Option<KeyValue>, Error> {
        let response = self
            .range(RangeRequest {
                key: key.into(),
                ..Default::default()
            })
            .await?;
        Ok(response.kvs.into_iter().next())
    }

    /// Writes `value` only if the key's mod revision is `expected_mod_revision` (0: only
    /// if the key does not exist), in one transaction that also returns the current
    /// record when it does not match.
    pub async fn compare_and_swap(
        &self,
        key: impl Into<Vec<u8>>,
        expected_mod_revision: i64,
        value: impl Into<Vec<u8>>,
    ) -> Result<CasOutcome, Error> {
        self.compare_and_swap_until(
            key.into(),
            expected_mod_revision,
            value.into(),
            self.inner.deadline(),
        )
        .await
    }

    async fn compare_and_swap_until(
        &self,
        key: Vec<u8>,
        expected_mod_revision: i64,
        value: Vec<u8>,
        deadline: Instant,
    ) -> Result<CasOutcome, Error> {
        let request = TxnBuilder::new()
            .when(txn::compare_mod_revision(
                key.clone(),
                CompareOp::Equal,
                expected_mod_revision,
            ))
            .and_then(txn::put(key.clone(), value))
            .or_else(txn::get(key))
            .build();
        let response = self.txn_until(request, deadline).await?;
        if response.succeeded {
            return Ok(CasOutcome::Swapped {
                revision: response.header.map_or(0, |h| h.revision),
            });
        }
        let current = response
            .responses
            .into_iter()
            .find_map(|r| match r.response {
                Some(OpResponse::ResponseRange(range)) => Some(range.kvs.into_iter().next()),
                _ => None,
            })
            .flatten();
        Ok(CasOutcome::Mismatch { current })
    }

    /// Read-modify-write of one key: `f` gets the current value (`None` when absent) and
    /// returns the new one, or `None` to leave the key alone. When another writer gets in
    /// between, `f` runs again on the newer value, until `request_timeout` has passed
    /// (then [`Error::Conflict`]). With sessions on, each increment-style update is
    /// applied exactly once even across retries and failovers.
    pub async fn update<F>(&self, key: impl Into<Vec<u8>>, mut f: F) -> Result<Updated, Error>
    where
        F: FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    {
        let key = key.into();
        let give_up_at = self.inner.deadline();
        let mut current = self
            .range_until(
                RangeRequest {
                    key: key.clone(),
                    ..Default::default()
                },
                self.inner.deadline(),
            )
            .await?
            .kvs
            .into_iter()
            .next();
        let mut conflicts: u32 = 0;
        loop {
            let Some(value) = f(current.as_ref().map(|kv| kv.value.as_slice())) else {
                let revision = current.as_ref().map_or(0, |kv| kv.mod_revision);
                return Ok(Updated {
                    previous: current,
                    value: None,
                    revision,
                    conflicts,
                });
            };
            let expected = current.as_ref().map_or(0, |kv| kv.mod_revision);
            // Each swap gets a whole request_timeout: cutting one short because earlier
            // conflicts used the time would turn a conflict into an unknown outcome.
            let outcome = self
                .compare_and_swap_until(key.clone(), expected, value.clone(), self.inner.deadline())
                .await?;
            match outcome {
                CasOutcome::Swapped { revision } => {
                    return Ok(Updated {
                        previous: current,
                        value: Some(value),
                        revision,
                        conflicts,
                    });
                }
                CasOutcome::Mismatch { current: now } => {
                    conflicts = conflicts.saturating_add(1);
                    current = now;
                    if Instant::now() >= give_up_at {
                        return Err(Error::Conflict {
                            message: format!(
                                "update of {}: other writers changed it {conflicts} times in a row \
                                 within {} ms; nothing was written",
                                String::from_utf8_lossy(&key),
                                self.inner.config.request_timeout.as_millis()
                            ),
                        });
                    }
                }
            }
        }
    }

    /// An empty [`TxnBuilder`], for [`Client::txn`].
    pub fn txn_builder() -> TxnBuilder {
        TxnBuilder::new()
    }
}
