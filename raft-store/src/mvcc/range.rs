//! Reads at any retained revision, with every option of etcd's `RangeRequest`.
//!
//! A read at the current revision walks the `kv` family only. A read at an older revision
//! walks `kv_history`, taking for each key the newest version at or below the revision
//! (one seek, since versions of a key sort newest first) and skipping tombstones.

use std::cmp::Ordering;

use vane_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use vane_proto::etcdserverpb::{RangeRequest, RangeResponse, ResponseHeader};
use vane_proto::mvccpb::KeyValue;

use super::keys::{decode_history_key, escape, history_key, history_key_after};
use super::{KeyRange, decode_kv, is_tombstone};
use crate::db::{Cf, Reader};
use crate::error::{Result, StoreError};

/// Where a read stands: what revision is current and what has been compacted away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Revisions {
    /// The store's current revision.
    pub current: i64,
    /// Revisions below this are gone (0 when never compacted).
    pub compacted: i64,
}

impl Revisions {
    /// The revision a request asking for `requested` reads at (0 or less means current),
    /// or etcd's error when it is compacted or in the future.
    pub fn resolve(&self, requested: i64) -> Result<i64> {
        if requested <= 0 {
            return Ok(self.current);
        }
        if requested > self.current {
            return Err(StoreError::FutureRevision {
                current_revision: self.current,
            });
        }
        if requested < self.compacted {
            return Err(StoreError::Compacted {
                compact_revision: self.compacted,
            });
        }
        Ok(requested)
    }
}

/// Visits the live key-values of `keys` at `revision`, in key order, until `visit` says stop.
pub(crate) fn visit_live(
    reader: &dyn Reader,
    keys: &KeyRange,
    revision: i64,
    current: i64,
    visit: &mut dyn FnMut(KeyValue) -> Result<bool>,
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    if revision >= current {
        return visit_current(reader, keys, visit);
    }
    visit_history(reader, keys, revision, visit)
}

fn visit_current(
    reader: &dyn Reader,
    keys: &KeyRange,
    visit: &mut dyn FnMut(KeyValue) -> Result<bool>,
) -> Result<()> {
    match keys {
        KeyRange::Single(key) => {
            if let Some(bytes) = reader.get(Cf::Kv, key)? {
                visit(decode_kv(&bytes)?)?;
            }
            Ok(())
        }
        KeyRange::Span { from, to } => reader.scan(Cf::Kv, from, to.as_deref(), &mut |_, value| {
            visit(decode_kv(value)?)
        }),
    }
}

/// The version of `key` in force at `revision`, if the key was live then.
pub(crate) fn version_at(
    reader: &dyn Reader,
    key: &[u8],
    revision: i64,
) -> Result<Option<KeyValue>> {
    let mut found = None;
    let start = history_key(key, revision);
    let end = history_key_after(key);
    reader.scan(Cf::KvHistory, &start, Some(&end), &mut |_, value| {
        found = Some(decode_kv(value)?);
        Ok(false)
    })?;
    Ok(found.filter(|kv| !is_tombstone(kv)))
}

fn visit_history(
    reader: &dyn Reader,
    keys: &KeyRange,
    revision: i64,
    visit: &mut dyn FnMut(KeyValue) -> Result<bool>,
) -> Result<()> {
    let (from, to) = match keys {
        KeyRange::Single(key) => {
            if let Some(kv) = version_at(reader, key, revision)? {
                visit(kv)?;
            }
            return Ok(());
        }
        KeyRange::Span { from, to } => (escape(from), to.as_deref().map(escape)),
    };
    let mut cursor = from;
    loop {
        // Find the next user key at or after the cursor.
        let mut next_key = None;
        reader.scan(Cf::KvHistory, &cursor, to.as_deref(), &mut |encoded, _| {
            next_key = decode_history_key(encoded);
            if next_key.is_none() {
                return Err(StoreError::Corrupt(format!(
                    "history key {encoded:?} does not decode"
                )));
            }
            Ok(false)
        })?;
        let Some((key, _)) = next_key else {
            return Ok(());
        };
        if let Some(kv) = version_at(reader, &key, revision)?
            && !visit(kv)?
        {
            return Ok(());
        }
        cursor = history_key_after(&key);
    }
}

/// The live value of `key` at the current revision.
pub(crate) fn get_current(reader: &dyn Reader, key: &[u8]) -> Result<Option<KeyValue>> {
    let mut current = None;
    reader.get_with(Cf::Kv, key, &mut |bytes| {
        current = bytes.map(decode_kv).transpose()?;
        Ok(())
    })?;
    Ok(current)
}

/// The version written at exactly `revision`, live or tombstone: what a watch replays.
pub(crate) fn version_written_at(
    reader: &dyn Reader,
    key: &[u8],
    revision: i64,
) -> Result<Option<KeyValue>> {
    reader
        .get(Cf::KvHistory, &history_key(key, revision))?
        .map(|b| decode_kv(&b))
        .transpose()
}

/// Serves a `RangeRequest` against `reader`, as etcd's apply does: fetch (all of it when
/// sorting or filtering, else `limit + 1`), filter by create/mod revision, sort, cut to
/// `limit` setting `more`, and report the count of every key in range.
pub(crate) fn range(
    reader: &dyn Reader,
    request: &RangeRequest,
    revisions: Revisions,
) -> Result<RangeResponse> {
    let revision = revisions.resolve(request.revision)?;
    let keys = KeyRange::new(&request.key, &request.range_end);

    let sort_order = SortOrder::try_from(request.sort_order).unwrap_or(SortOrder::None);
    let sort_target = SortTarget::try_from(request.sort_target).unwrap_or(SortTarget::Key);
    let filtered = request.min_mod_revision != 0
        || request.max_mod_revision != 0
        || request.min_create_revision != 0
        || request.max_create_revision != 0;
    let fetch_max = if sort_order != SortOrder::None || filtered || request.limit <= 0 {
        usize::MAX
    } else {
        usize::try_from(request.limit)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
    };

    let mut count: i64 = 0;
    let mut kvs = Vec::new();
    visit_live(reader, &keys, revision, revisions.current, &mut |kv| {
        count += 1;
        if !request.count_only && kvs.len() < fetch_max {
            kvs.push(kv);
        }
        Ok(true)
    })?;

    if filtered {
        kvs.retain(|kv| {
            (request.min_mod_revision == 0 || kv.mod_revision >= request.min_mod_revision)
                && (request.max_mod_revision == 0 || kv.mod_revision <= request.max_mod_revision)
                && (request.min_create_revision == 0
                    || kv.create_revision >= request.min_create_revision)
                && (request.max_create_revision == 0
                    || kv.create_revision <= request.max_create_revision)
        });
    }

    let effective_order = if sort_target != SortTarget::Key && sort_order == SortOrder::None {
        SortOrder::Ascend
    } else {
        sort_order
    };
    if effective_order != SortOrder::None {
        let by = |a: &KeyValue, b: &KeyValue| -> Ordering {
            match sort_target {
                SortTarget::Key => a.key.cmp(&b.key),
                SortTarget::Version => a.version.cmp(&b.version),
                SortTarget::Create => a.create_revision.cmp(&b.create_revision),
                SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
                SortTarget::Value => a.value.cmp(&b.value),
            }
        };
        kvs.sort_by(by);
        if effective_order == SortOrder::Descend {
            kvs.reverse();
        }
    }

    let mut more = false;
    if request.limit > 0 {
        let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
        if kvs.len() > limit {
            kvs.truncate(limit);
            more = true;
        }
    }
    if request.keys_only {
        for kv in &mut kvs {
            kv.value.clear();
        }
    }

    Ok(RangeResponse {
        header: Some(ResponseHeader {
            revision: revisions.current,
            ..Default::default()
        }),
        kvs,
        more,
        count,
    })
}
