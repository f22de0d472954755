//! Puts and deletes inside one revision.
//!
//! A [`WriteTxn`] is one mutating request: all of its changes share the revision after the
//! current one (each with its own sub-index, in order), and the revision advances only if
//! something changed, as etcd's does. Reads through the txn see its own earlier writes.

use prost::Message;
use vane_proto::mvccpb::KeyValue;
use vane_proto::storage::RevisionEvent;

use super::KeyRange;
use super::events::event;
use super::keys::{history_key, id_suffix_key, revision_key};
use super::range::{Revisions, get_current, visit_live};
use crate::db::{BatchView, Cf, Reader};
use crate::error::Result;

/// One mutating request in progress over a batch.
pub(crate) struct WriteTxn<'v, 'db> {
    view: &'v mut BatchView<'db>,
    begin: Revisions,
    changes: u32,
}

impl<'v, 'db> WriteTxn<'v, 'db> {
    pub(crate) fn new(view: &'v mut BatchView<'db>, begin: Revisions) -> Self {
        WriteTxn {
            view,
            begin,
            changes: 0,
        }
    }

    /// The revision this request's changes are written at.
    pub(crate) fn write_revision(&self) -> i64 {
        self.begin.current + 1
    }

    /// The revision a read inside this request sees: its own writes included.
    pub(crate) fn revisions(&self) -> Revisions {
        Revisions {
            current: if self.changes > 0 {
                self.begin.current + 1
            } else {
                self.begin.current
            },
            compacted: self.begin.compacted,
        }
    }

    pub(crate) fn reader(&self) -> &dyn Reader {
        &*self.view
    }

    pub(crate) fn view(&mut self) -> &mut BatchView<'db> {
        self.view
    }

    /// Records the change of `kv.key` at this revision: in the revision index, and as the
    /// watch event the batch hands over after commit.
    fn record_event(&mut self, kv: KeyValue, prev_kv: Option<KeyValue>, deleted: bool) {
        let change = RevisionEvent {
            key: kv.key.clone(),
            deleted,
        };
        let at = revision_key(self.write_revision(), self.changes);
        let record = if value_once_layout() {
            kv.encode_to_vec()
        } else {
            change.encode_to_vec()
        };
        self.view.put(Cf::Revisions, &at, record);
        self.changes += 1;
        self.view.push_event(event(deleted, kv, prev_kv));
    }

    fn detach_lease(&mut self, lease: i64, key: &[u8]) {
        if lease != 0 {
            self.view
                .delete(Cf::LeaseKeys, &id_suffix_key(lease as u64, key));
        }
    }

    /// Writes `value` at `key` with `lease`. The caller has checked that the lease exists.
    pub(crate) fn put(&mut self, key: &[u8], value: Vec<u8>, lease: i64) -> Result<()> {
        let previous = get_current(&*self.view, key)?;
        self.put_over(key, value, lease, previous)
    }

    /// [`WriteTxn::put`] for a caller that has just read `previous`, the live version of
    /// `key` in this request (a Put reads it for `ignore_value`, `ignore_lease` and
    /// `prev_kv`): the version is then not looked up and decoded a second time on every
    /// put. It moves into the watch event.
    pub(crate) fn put_over(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        lease: i64,
        previous: Option<KeyValue>,
    ) -> Result<()> {
        let revision = self.write_revision();
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision: previous.as_ref().map_or(revision, |p| p.create_revision),
            mod_revision: revision,
            version: previous.as_ref().map_or(1, |p| p.version + 1),
            value,
            lease,
        };
        if value_once_layout() {
            // The value goes once, into the revision record (`record_event`).
            let current = KeyValue {
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
                version: kv.version,
                lease: kv.lease,
                ..KeyValue::default()
            };
            self.view.put(Cf::Kv, key, current.encode_to_vec());
        } else {
            let encoded = kv.encode_to_vec();
            self.view
                .put(Cf::KvHistory, &history_key(key, revision), encoded.clone());
            self.view.put(Cf::Kv, key, encoded);
        }
        if let Some(previous) = &previous
            && previous.lease != lease
        {
            self.detach_lease(previous.lease, key);
        }
        if lease != 0 {
            self.view
                .put(Cf::LeaseKeys, &id_suffix_key(lease as u64, key), Vec::new());
        }
        self.record_event(kv, previous, false);
        Ok(())
    }

    /// Deletes every live key in `keys` and returns what was deleted, in key order.
    pub(crate) fn delete_range(&mut self, keys: &KeyRange) -> Result<Vec<KeyValue>> {
        let mut doomed = Vec::new();
        let current = self.revisions().current;
        visit_live(&*self.view, keys, current, current, &mut |kv| {
            doomed.push(kv);
            Ok(true)
        })?;
        let revision = self.write_revision();
        for kv in &doomed {
            let tombstone = KeyValue {
                key: kv.key.clone(),
                mod_revision: revision,
                ..Default::default()
            };
            self.view.put(
                Cf::KvHistory,
                &history_key(&kv.key, revision),
                tombstone.encode_to_vec(),
            );
            self.view.delete(Cf::Kv, &kv.key);
            self.detach_lease(kv.lease, &kv.key);
            self.record_event(tombstone, Some(kv.clone()), true);
        }
        Ok(doomed)
    }

    /// The revisions after this request: the next one if it changed anything.
    pub(crate) fn finish(self) -> Revisions {
        self.revisions()
    }
}

/// Whether puts are written as the planted value-once layout
/// ([`crate::planted::Fault::ValueOnceLayout`]), a benchmark floor.
#[cfg(feature = "planted-bugs")]
fn value_once_layout() -> bool {
    crate::planted::is_on(crate::planted::Fault::ValueOnceLayout)
}

/// Never, without the `planted-bugs` feature.
#[cfg(not(feature = "planted-bugs"))]
fn value_once_layout() -> bool {
    false
}

/// Decodes every key attached to `lease` (their `lease_keys` records), in key order.
pub(crate) fn keys_of_lease(reader: &dyn Reader, lease: i64) -> Result<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    let from = super::keys::id_key(lease as u64);
    let to = super::keys::id_end(lease as u64);
    reader.scan(Cf::LeaseKeys, &from, Some(&to), &mut |k, _| {
        keys.push(k[8..].to_vec());
        Ok(true)
    })?;
    Ok(keys)
}
