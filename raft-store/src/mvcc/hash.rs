//! HashKV: a digest of the keyspace history up to a revision.
//!
//! Two nodes that applied the same log must produce the same hash at the same revision;
//! this is how a divergent replica is caught. The digest covers every retained version
//! (tombstones included) at or below the revision, and the compacted revision.

use super::keys::decode_history_key;
use crate::db::{Cf, Reader};
use crate::error::{Result, StoreError};

/// CRC-32 over the retained history at or below `revision`.
pub(crate) fn hash_kv(reader: &dyn Reader, revision: i64, compacted: i64) -> Result<u32> {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&compacted.to_be_bytes());
    reader.scan(Cf::KvHistory, &[], None, &mut |key, value| {
        let (_, rev) = decode_history_key(key)
            .ok_or_else(|| StoreError::Corrupt(format!("history key {key:?} does not decode")))?;
        if rev <= revision {
            hasher.update(key);
            hasher.update(value);
        }
        Ok(true)
    })?;
    Ok(hasher.finalize())
}
