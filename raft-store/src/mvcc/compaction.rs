//! Compaction: forgetting history below a revision.
//!
//! After `compact(C)` a read at any revision >= C still answers exactly as before, and a
//! watch from C still replays every event from C on; anything below C is refused with
//! etcd's "compacted" error. So for each key changed below C we keep its newest version
//! at or below C if it is live (a read at C needs it) and drop every older version, and
//! tombstones at or below C. Only keys that changed in `[previous compaction, C)` can hold
//! such versions, so the work is proportional to the history dropped, not to the store.

use std::collections::BTreeSet;

use prost::Message;
use vane_proto::storage::RevisionEvent;

use super::keys::{history_key, history_key_after, revision_prefix};
use super::range::Revisions;
use super::{decode_kv, is_tombstone};
use crate::db::{BatchView, Cf, Reader};
use crate::error::{Result, StoreError};

/// Checks a compaction request against the store's revisions, with etcd's errors.
pub(crate) fn check(revisions: Revisions, to: i64) -> Result<()> {
    if to <= revisions.compacted {
        return Err(StoreError::Compacted {
            compact_revision: revisions.compacted,
        });
    }
    if to > revisions.current {
        return Err(StoreError::FutureRevision {
            current_revision: revisions.current,
        });
    }
    Ok(())
}

/// Drops the history below `to`. The caller records `to` as the new compacted revision.
pub(crate) fn compact(view: &mut BatchView<'_>, revisions: Revisions, to: i64) -> Result<()> {
    check(revisions, to)?;
    let from = revisions.compacted.max(1);
    let mut keys = BTreeSet::new();
    view.scan(
        Cf::Revisions,
        &revision_prefix(from),
        Some(&revision_prefix(to)),
        &mut |_, value| {
            let event = RevisionEvent::decode(value)
                .map_err(|e| StoreError::decode("revision event", e))?;
            keys.insert(event.key);
            Ok(true)
        },
    )?;

    for key in keys {
        let mut newest_at_or_below = None;
        let end = history_key_after(&key);
        view.scan(
            Cf::KvHistory,
            &history_key(&key, to),
            Some(&end),
            &mut |_, value| {
                newest_at_or_below = Some(decode_kv(value)?);
                Ok(false)
            },
        )?;
        let Some(kept) = newest_at_or_below else {
            continue;
        };
        let drop_from = if is_tombstone(&kept) {
            history_key(&key, kept.mod_revision)
        } else if kept.mod_revision > 1 {
            history_key(&key, kept.mod_revision - 1)
        } else {
            continue;
        };
        view.delete_range_at_commit(Cf::KvHistory, drop_from, end);
    }
    view.delete_range_at_commit(
        Cf::Revisions,
        revision_prefix(from).to_vec(),
        revision_prefix(to).to_vec(),
    );
    Ok(())
}
