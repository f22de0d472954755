//! The audit trail of governed configuration: one record per key changed under a
//! namespace, written by apply in the same batch as the change, so it can neither be
//! skipped nor disagree with the data, and kept in its own column family, which
//! compaction never touches.
//!
//! Records form a hash chain: each record's hash is SHA-256 over the previous record's
//! hash and this record's fields, and the state machine meta holds the chain's length
//! and head. Altering, removing or reordering a stored record breaks the chain at that
//! record, which [`verify_audit`] names. Everything in a record comes from the log entry
//! (its principal, its proposer's clock) and the state, so every member writes the same
//! chain.
//!
//! [`verify_audit`]: crate::state_machine::StateMachine::verify_audit

use prost::Message;
use sha2::{Digest, Sha256};
use vane_proto::api::audit_record::Path;
use vane_proto::api::{AuditRecord, ListAuditRequest, VerifyAuditResponse};
use vane_proto::storage::{RevisionEvent, StateMachineMeta};

use crate::db::{BatchView, Cf, Reader};
use crate::error::{Result, StoreError};
use crate::governance;
use crate::mvcc::range::{get_current, version_at};

/// Who made a change and through which door, for the records of one command.
pub(crate) struct Origin<'a> {
    pub(crate) principal: &'a str,
    pub(crate) path: Path,
    pub(crate) change_id: u64,
    pub(crate) at_ms: i64,
}

fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The record's hash: SHA-256 over the previous hash and the record without its hash.
fn chain_hash(previous: &[u8], record: &AuditRecord) -> Vec<u8> {
    let mut unhashed = record.clone();
    unhashed.hash.clear();
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(unhashed.encode_to_vec());
    hasher.finalize().to_vec()
}

/// Appends a record for every key of `changed` (the request's changes at `revision`)
/// that lies under a namespace.
pub(crate) fn record_revision(
    view: &mut BatchView<'_>,
    meta: &mut StateMachineMeta,
    revision: i64,
    changed: Vec<RevisionEvent>,
    origin: &Origin<'_>,
) -> Result<()> {
    for event in changed {
        let Some(namespace) = governance::governing(view, &event.key)? else {
            continue;
        };
        let before = version_at(view, &event.key, revision - 1)?;
        let after = if event.deleted {
            None
        } else {
            get_current(view, &event.key)?
        };
        let redacted = namespace.sensitive;
        let mut record = AuditRecord {
            seq: meta.audit_seq + 1,
            namespace: namespace.name,
            key: event.key,
            revision,
            at_ms: origin.at_ms,
            principal: origin.principal.to_string(),
            path: origin.path as i32,
            change_id: origin.change_id,
            existed_before: before.is_some(),
            before: if redacted {
                Vec::new()
            } else {
                before.map(|kv| kv.value).unwrap_or_default()
            },
            deleted: after.is_none(),
            after: if redacted {
                Vec::new()
            } else {
                after.map(|kv| kv.value).unwrap_or_default()
            },
            redacted,
            hash: Vec::new(),
        };
        record.hash = chain_hash(&meta.audit_head, &record);
        view.put(Cf::Audit, &seq_key(record.seq), record.encode_to_vec());
        meta.audit_seq = record.seq;
        meta.audit_head = record.hash.clone();
    }
    Ok(())
}

/// Records matching `filter`, oldest first (the newest `limit` when set).
pub(crate) fn list(reader: &dyn Reader, filter: &ListAuditRequest) -> Result<Vec<AuditRecord>> {
    let mut found = Vec::new();
    reader.scan(Cf::Audit, b"", None, &mut |_, value| {
        let record =
            AuditRecord::decode(value).map_err(|e| StoreError::decode("an audit record", e))?;
        let key_matches = filter.key.is_empty()
            || if filter.prefix {
                record.key.starts_with(&filter.key)
            } else {
                record.key == filter.key
            };
        let wanted = key_matches
            && (filter.namespace.is_empty() || record.namespace == filter.namespace)
            && (filter.principal.is_empty() || record.principal == filter.principal)
            && (filter.from_ms == 0 || record.at_ms >= filter.from_ms)
            && (filter.to_ms == 0 || record.at_ms <= filter.to_ms);
        if wanted {
            found.push(record);
        }
        Ok(true)
    })?;
    if filter.limit > 0 && found.len() > filter.limit as usize {
        found.drain(..found.len() - filter.limit as usize);
    }
    Ok(found)
}

/// Walks the chain from the first record: every record must be the next in sequence and
/// hash to what it says, and the last must be the head the meta holds.
pub(crate) fn verify(reader: &dyn Reader, meta: &StateMachineMeta) -> Result<VerifyAuditResponse> {
    let mut previous = Vec::new();
    let mut expected_seq = 1u64;
    let mut broken: Option<(u64, String)> = None;
    reader.scan(Cf::Audit, b"", None, &mut |key, value| {
        let seq = key.try_into().map(u64::from_be_bytes).unwrap_or(0);
        let record = match AuditRecord::decode(value) {
            Ok(record) => record,
            Err(e) => {
                broken = Some((seq, format!("record {seq} does not decode: {e}")));
                return Ok(false);
            }
        };
        if seq != expected_seq || record.seq != seq {
            broken = Some((
                seq,
                format!("record {seq} is out of sequence (expected {expected_seq})"),
            ));
            return Ok(false);
        }
        let hash = chain_hash(&previous, &record);
        if hash != record.hash {
            broken = Some((
                seq,
                format!("record {seq}'s hash does not match its content"),
            ));
            return Ok(false);
        }
        previous = hash;
        expected_seq += 1;
        Ok(true)
    })?;
    let records = expected_seq - 1;
    if broken.is_none() && (records != meta.audit_seq || previous != meta.audit_head) {
        broken = Some((
            records + 1,
            format!(
                "the chain ends at record {records} but {} were written",
                meta.audit_seq
            ),
        ));
    }
    Ok(match broken {
        None => VerifyAuditResponse {
            intact: true,
            records,
            broken_seq: 0,
            detail: String::new(),
        },
        Some((seq, detail)) => VerifyAuditResponse {
            intact: false,
            records: meta.audit_seq,
            broken_seq: seq,
            detail,
        },
    })
}
