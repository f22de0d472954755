//! The versioned keyspace, with etcd's semantics.
//!
//! One global revision counts mutating requests; every key carries `create_revision`,
//! `mod_revision`, `version` and `lease`, exactly as `mvccpb.KeyValue`. Each file here is
//! one concept: `keys` (how records are laid out), `range` (reads at any retained
//! revision), `events` (history as watch events), `write` (puts and deletes inside one revision), `txn` (compares, branches,
//! the duplicate-key rule), `compaction` (dropping history), `hash` (HashKV).

pub(crate) mod compaction;
pub(crate) mod events;
pub(crate) mod hash;
pub(crate) mod keys;
pub(crate) mod range;
pub(crate) mod txn;
pub(crate) mod write;

use prost::Message;
use vane_proto::mvccpb::KeyValue;

use crate::error::{Result, StoreError};

/// Decodes a `KeyValue` record of the `kv` or `kv_history` family.
pub(crate) fn decode_kv(bytes: &[u8]) -> Result<KeyValue> {
    KeyValue::decode(bytes).map_err(|e| StoreError::decode("key-value record", e))
}

/// True when a history record marks a delete rather than a value.
pub(crate) fn is_tombstone(kv: &KeyValue) -> bool {
    kv.version == 0
}

/// How a request names the keys it touches, decoded from etcd's `key`/`range_end` pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyRange {
    /// `range_end` empty: exactly `key`.
    Single(Vec<u8>),
    /// `[from, to)`, or every key from `from` on when `to` is `None` (`range_end` "\0").
    Span { from: Vec<u8>, to: Option<Vec<u8>> },
}

impl KeyRange {
    pub(crate) fn new(key: &[u8], range_end: &[u8]) -> KeyRange {
        if range_end.is_empty() {
            KeyRange::Single(key.to_vec())
        } else if range_end == [0] {
            KeyRange::Span {
                from: key.to_vec(),
                to: None,
            }
        } else {
            KeyRange::Span {
                from: key.to_vec(),
                to: Some(range_end.to_vec()),
            }
        }
    }

    /// Whether the range holds no key at all (an end at or before its start).
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            KeyRange::Single(_) => false,
            KeyRange::Span { from, to: Some(to) } => to <= from,
            KeyRange::Span { to: None, .. } => false,
        }
    }
}

/// Store-wide limits that are part of the replicated semantics, so every node must agree.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most operations in one txn branch and most compares (etcd's `--max-txn-ops`).
    pub txn_ops_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { txn_ops_max: 128 }
    }
}
