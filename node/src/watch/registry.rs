//! Every live watcher on this member, described for the people who change configuration:
//! before a change is made, an impact preview asks each member which of its watchers the
//! change would reach, and names them by client, address and user.
//!
//! Streams register when they open and leave when they end (the [`StreamEntry`] guard
//! removes them, however the stream ends); watchers are added and removed with their
//! stream's create and cancel requests. One short lock per watcher created or cancelled;
//! delivery never touches it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use vane_proto::api::{WatchedEvent, WatcherImpact};

/// Who opened a watch stream.
#[derive(Clone, Debug, Default)]
pub struct StreamClient {
    /// The gRPC user agent (the Vane client puts its configured name first).
    pub client: String,
    /// The client's address as this member sees it.
    pub address: String,
}

/// One watcher's range and filters, as its client created it: what decides which events
/// it receives, for delivery and for previews alike.
#[derive(Clone, Debug)]
pub struct WatchedRange {
    /// The watched key, or the start of the range.
    pub key: Vec<u8>,
    /// The end of the range (etcd's convention: empty for one key, `\0` for all above).
    pub range_end: Vec<u8>,
    /// Puts are filtered out.
    pub no_put: bool,
    /// Deletes are filtered out.
    pub no_delete: bool,
}

impl WatchedRange {
    /// Whether an event on `key` (a delete when `delete`) reaches this watcher.
    pub fn receives(&self, key: &[u8], delete: bool) -> bool {
        let in_range = if self.range_end.is_empty() {
            key == self.key.as_slice()
        } else {
            key >= self.key.as_slice() && (self.range_end == [0] || key < self.range_end.as_slice())
        };
        in_range && !(delete && self.no_delete || !delete && self.no_put)
    }
}

struct Stream {
    client: StreamClient,
    /// Each watcher's range and the user that created it ("" without auth).
    watchers: BTreeMap<i64, (WatchedRange, String)>,
}

#[derive(Default)]
struct Streams {
    next_id: u64,
    open: HashMap<u64, Stream>,
}

/// The live watchers of one member; shared by its watch streams and its impact previews.
#[derive(Clone, Default)]
pub struct WatcherRegistry {
    streams: Arc<Mutex<Streams>>,
}

/// A stream's place in the registry; the stream and its watchers leave when it drops.
pub struct StreamEntry {
    registry: WatcherRegistry,
    id: u64,
}

impl WatcherRegistry {
    fn lock(&self) -> MutexGuard<'_, Streams> {
        // The map stays consistent whatever a panicking holder did: every change is a
        // single insert or remove.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a stream opened by `client`.
    pub fn open_stream(&self, client: StreamClient) -> StreamEntry {
        let mut streams = self.lock();
        streams.next_id += 1;
        let id = streams.next_id;
        streams.open.insert(
            id,
            Stream {
                client,
                watchers: BTreeMap::new(),
            },
        );
        StreamEntry {
            registry: self.clone(),
            id,
        }
    }

    /// The watchers that would receive any of `events`: at most `limit` of them, with how
    /// many events each would receive, and how many there are in all. Ordered by stream,
    /// then watch id, so that the listing is stable.
    pub fn receiving(&self, events: &[WatchedEvent], limit: usize) -> (Vec<WatcherImpact>, u64) {
        let streams = self.lock();
        let mut ids: Vec<&u64> = streams.open.keys().collect();
        ids.sort_unstable();
        let mut listed = Vec::new();
        let mut count = 0u64;
        for id in ids {
            let stream = &streams.open[id];
            for (watch_id, (range, user)) in &stream.watchers {
                let matched = events
                    .iter()
                    .filter(|e| range.receives(&e.key, e.delete))
                    .count();
                if matched == 0 {
                    continue;
                }
                count += 1;
                if listed.len() < limit {
                    listed.push(WatcherImpact {
                        client: stream.client.client.clone(),
                        address: stream.client.address.clone(),
                        user: user.clone(),
                        watch_id: *watch_id,
                        key: range.key.clone(),
                        range_end: range.range_end.clone(),
                        matched_keys: u32::try_from(matched).unwrap_or(u32::MAX),
                        ..Default::default()
                    });
                }
            }
        }
        (listed, count)
    }
}

impl StreamEntry {
    /// Records watcher `id` of this stream, created by `user`.
    pub fn add(&self, id: i64, range: WatchedRange, user: String) {
        if let Some(stream) = self.registry.lock().open.get_mut(&self.id) {
            stream.watchers.insert(id, (range, user));
        }
    }

    /// Forgets watcher `id` of this stream.
    pub fn remove(&self, id: i64) {
        if let Some(stream) = self.registry.lock().open.get_mut(&self.id) {
            stream.watchers.remove(&id);
        }
    }
}

impl Drop for StreamEntry {
    fn drop(&mut self) {
        self.registry.lock().open.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(key: &str, end: &[u8]) -> WatchedRange {
        WatchedRange {
            key: key.as_bytes().to_vec(),
            range_end: end.to_vec(),
            no_put: false,
            no_delete: false,
        }
    }

    fn event(key: &str, delete: bool) -> WatchedEvent {
        WatchedEvent {
            key: key.as_bytes().to_vec(),
            delete,
        }
    }

    #[test]
    fn ranges_follow_etcd_and_filters_apply() {
        assert!(range("a", b"").receives(b"a", false));
        assert!(!range("a", b"").receives(b"ab", false));
        assert!(range("a", b"b").receives(b"ab", true));
        assert!(!range("a", b"b").receives(b"b", false));
        assert!(range("a", b"\0").receives(b"zzz", false));
        let no_delete = WatchedRange {
            no_delete: true,
            ..range("a", b"\0")
        };
        assert!(no_delete.receives(b"a", false));
        assert!(!no_delete.receives(b"a", true));
    }

    #[test]
    fn streams_leave_with_their_watchers() {
        let registry = WatcherRegistry::default();
        let client = StreamClient {
            client: "svc".into(),
            address: "127.0.0.1:1".into(),
        };
        let first = registry.open_stream(client.clone());
        first.add(0, range("app/", b"app0"), String::new());
        first.add(1, range("other", b""), String::new());
        let second = registry.open_stream(client);
        second.add(0, range("app/db", b""), String::new());
        let events = [event("app/db", false)];
        let (listed, count) = registry.receiving(&events, 10);
        assert_eq!(count, 2);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].key, b"app/");
        let (listed, count) = registry.receiving(&events, 1);
        assert_eq!((listed.len(), count), (1, 2));
        first.remove(0);
        assert_eq!(registry.receiving(&events, 10).1, 1);
        drop(second);
        assert_eq!(registry.receiving(&events, 10).1, 0);
    }
}
