//! Reading history as events, in revision order: what a watch replays from disk when it
//! starts at an old revision or falls behind the live stream.

use prost::Message;
use vane_proto::mvccpb::{Event, KeyValue, event::EventType};
use vane_proto::storage::RevisionEvent;

use super::keys::{decode_revision_key, revision_prefix};
use super::range::{Revisions, version_at, version_written_at};
use crate::db::{Cf, Reader};
use crate::error::{Result, StoreError};

/// A page of events and where the next page starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventPage {
    /// Events in revision order; all events of a revision are in the same page.
    pub events: Vec<Event>,
    /// The first revision not in this page.
    pub next_revision: i64,
    /// The store's revisions when the page was read.
    pub revisions: Revisions,
}

/// The watch event of a change: a put of `kv`, or its deletion (`kv` is then the
/// tombstone), with the version it replaced.
pub(crate) fn event(deleted: bool, kv: KeyValue, prev_kv: Option<KeyValue>) -> Event {
    Event {
        r#type: if deleted {
            EventType::Delete
        } else {
            EventType::Put
        } as i32,
        kv: Some(kv),
        prev_kv,
    }
}

/// Events from revision `from` on, at least `events_min_page` of them unless history
/// ends first, never splitting a revision across pages.
pub(crate) fn events_since(
    reader: &dyn Reader,
    revisions: Revisions,
    from: i64,
    events_min_page: usize,
    with_prev_kv: bool,
) -> Result<EventPage> {
    let from = from.max(1);
    if from < revisions.compacted {
        return Err(StoreError::Compacted {
            compact_revision: revisions.compacted,
        });
    }
    let mut events = Vec::new();
    let mut next_revision = revisions.current + 1;
    let mut last_revision = 0;
    let mut failure = None;
    reader.scan(
        Cf::Revisions,
        &revision_prefix(from),
        None,
        &mut |key, value| {
            let Some((revision, _)) = decode_revision_key(key) else {
                failure = Some(StoreError::Corrupt(format!(
                    "revision key {key:?} does not decode"
                )));
                return Ok(false);
            };
            if revision > revisions.current {
                return Ok(false);
            }
            if revision != last_revision && events.len() >= events_min_page {
                next_revision = revision;
                return Ok(false);
            }
            last_revision = revision;
            let change = RevisionEvent::decode(value)
                .map_err(|e| StoreError::decode("revision event", e))?;
            let kv = version_written_at(reader, &change.key, revision)?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "no version of {:?} at revision {revision}",
                    change.key
                ))
            })?;
            let prev_kv = if with_prev_kv {
                version_at(reader, &change.key, revision - 1)?
            } else {
                None
            };
            events.push(event(change.deleted, kv, prev_kv));
            Ok(true)
        },
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(EventPage {
        events,
        next_revision,
        revisions,
    })
}
