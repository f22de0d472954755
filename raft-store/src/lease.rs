//! Leases as replicated state: granting, revoking, and which keys each one holds.
//!
//! Only state lives here. Expiry is decided by the leader, which proposes a revoke as a
//! log entry when a lease's time is up; followers never expire anything on their own
//! clock, so every node deletes a lease's keys at the same revision.

use prost::Message;
use vane_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeResponse, ResponseHeader,
};
use vane_proto::storage::Lease;

use crate::db::{BatchView, Cf, Reader};
use crate::error::{Result, StoreError};
use crate::mvcc::KeyRange;
use crate::mvcc::keys::id_key;
use crate::mvcc::write::{WriteTxn, keys_of_lease};

/// etcd's largest lease TTL, in seconds.
pub const LEASE_TTL_MAX_SECONDS: i64 = 9_000_000_000;

/// The lease with `id`, if granted and not revoked.
pub(crate) fn get(reader: &dyn Reader, id: i64) -> Result<Option<Lease>> {
    reader
        .get(Cf::Leases, &id_key(id as u64))?
        .map(|bytes| Lease::decode(bytes.as_slice()).map_err(|e| StoreError::decode("lease", e)))
        .transpose()
}

pub(crate) fn exists(reader: &dyn Reader, id: i64) -> Result<bool> {
    Ok(reader.get(Cf::Leases, &id_key(id as u64))?.is_some())
}

/// Every lease, in id order.
pub(crate) fn list(reader: &dyn Reader) -> Result<Vec<Lease>> {
    let mut leases = Vec::new();
    reader.scan(Cf::Leases, &[], None, &mut |_, value| {
        leases.push(Lease::decode(value).map_err(|e| StoreError::decode("lease", e))?);
        Ok(true)
    })?;
    Ok(leases)
}

/// A server-chosen lease id, derived from the log index so every node picks the same one:
/// a bijective mix of the index, kept positive, moved on past any id already taken.
fn derived_id(reader: &dyn Reader, log_index: u64) -> Result<i64> {
    let mut x = log_index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let mut id = (x & (i64::MAX as u64)) as i64;
    loop {
        if id != 0 && !exists(reader, id)? {
            return Ok(id);
        }
        id = id.wrapping_add(1) & i64::MAX;
    }
}

/// Grants a lease. `log_index` seeds a server-chosen id; `now_ms` is log time.
pub(crate) fn grant(
    view: &mut BatchView<'_>,
    request: &LeaseGrantRequest,
    log_index: u64,
    now_ms: i64,
    revision: i64,
) -> Result<LeaseGrantResponse> {
    if request.ttl > LEASE_TTL_MAX_SECONDS {
        return Err(StoreError::LeaseTtlTooLarge);
    }
    let id = if request.id == 0 {
        derived_id(view, log_index)?
    } else {
        if exists(view, request.id)? {
            return Err(StoreError::LeaseExists);
        }
        request.id
    };
    let lease = Lease {
        id,
        ttl_seconds: request.ttl,
        granted_at_ms: now_ms,
    };
    view.put(Cf::Leases, &id_key(id as u64), lease.encode_to_vec());
    Ok(LeaseGrantResponse {
        header: Some(ResponseHeader {
            revision,
            ..Default::default()
        }),
        id,
        ttl: request.ttl,
        error: String::new(),
    })
}

/// Revokes a lease and deletes every key attached to it, all at one revision.
pub(crate) fn revoke(txn: &mut WriteTxn<'_, '_>, id: i64) -> Result<LeaseRevokeResponse> {
    if !exists(txn.reader(), id)? {
        return Err(StoreError::LeaseNotFound);
    }
    for key in keys_of_lease(txn.reader(), id)? {
        txn.delete_range(&KeyRange::Single(key))?;
    }
    txn.view().delete(Cf::Leases, &id_key(id as u64));
    Ok(LeaseRevokeResponse {
        header: Some(ResponseHeader {
            revision: txn.revisions().current,
            ..Default::default()
        }),
    })
}
