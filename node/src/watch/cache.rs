//! The recent history every watcher on this member reads from.
//!
//! One task follows the state machine's applied revision and keeps the events of the
//! last `EVENT_CACHE_REVISIONS_MAX` revisions in memory (with their previous values), so
//! watchers that keep up read from memory. It takes them as apply left them, and reads
//! the stored history only for revisions no longer held there (after a snapshot install,
//! or when it fell far behind). A watcher that has fallen further behind, or starts at an
//! older revision, reads the same events from the stored history instead. Nothing is ever
//! dropped for being slow: a watcher's position is a revision, and every retained
//! revision can be read again.
//!
//! Ownership: the ring sits behind a `std::sync::RwLock`, written by the follower task
//! only, read by every watch stream; it is held only while copying events, never across
//! an await.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use prost::Message;
use tokio::sync::watch;
use vane_proto::mvccpb::Event;
use vane_raft_store::{StateMachine, StoreError};

/// Revisions kept in memory.
pub const EVENT_CACHE_REVISIONS_MAX: usize = 8192;
/// Encoded bytes of events (with their previous values) kept in memory: with large
/// values the revision bound alone would let the cache grow to gigabytes. Held in memory,
/// an event takes about half as much again as encoded, and a busy cache was the largest
/// share of a member's heap (8,192 revisions of 256-byte values: about 7 MiB); 2 MiB
/// still holds seconds of a steady write load, and a watcher further behind reads the
/// same events from the stored history.
pub const EVENT_CACHE_BYTES_MAX: usize = 2 << 20;
/// Events read from disk per step while the cache catches up.
const FILL_EVENTS_PER_READ: usize = 1024;

/// A page of events for one watcher.
pub struct Page {
    /// Events of whole revisions, in order.
    pub events: Vec<Event>,
    /// The first revision not in this page.
    pub next_revision: i64,
    /// Whether the page came from the stored history rather than memory.
    pub from_disk: bool,
}

struct Ring {
    /// Events grouped by revision, oldest first; revisions without events are absent.
    revisions: VecDeque<(i64, Vec<Event>)>,
    /// Every revision from here to `head` is represented (possibly by absence).
    first_revision: i64,
    /// Encoded size of the events held.
    bytes: usize,
    /// The last revision the cache has caught up to.
    head: i64,
}

/// Recent events of this member, and the revision it has caught up to.
#[derive(Clone)]
pub struct EventCache {
    state_machine: Arc<StateMachine>,
    ring: Arc<RwLock<Ring>>,
    head: watch::Receiver<i64>,
}

impl EventCache {
    /// Starts following `state_machine` from its current revision.
    pub fn start(state_machine: Arc<StateMachine>) -> EventCache {
        let current = state_machine.applied().revision;
        let ring = Arc::new(RwLock::new(Ring {
            revisions: VecDeque::new(),
            first_revision: current + 1,
            bytes: 0,
            head: current,
        }));
        let (head_tx, head) = watch::channel(current);
        let cache = EventCache {
            state_machine,
            ring,
            head,
        };
        tokio::spawn(cache.clone().follow(head_tx));
        cache
    }

    /// The revision every cached read has reached.
    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }

    /// Follows the head revision (for waking up when new events exist).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.head.clone()
    }

    async fn follow(self, head_tx: watch::Sender<i64>) {
        let mut applied = self.state_machine.subscribe();
        loop {
            let target = applied.borrow_and_update().revision;
            let mut from = self.ring.read().unwrap_or_else(|p| p.into_inner()).head + 1;
            if target < from - 1 {
                // A snapshot was installed below what we had: start over from it.
                self.reset(target);
                let _ = head_tx.send(target);
                from = target + 1;
            }
            while from <= target {
                // Usually apply has left the events in memory; the stored history is read
                // only for what is no longer there.
                if let Some(events) = self.state_machine.take_recent_events(from, target) {
                    self.push(events, target);
                    let _ = head_tx.send(target);
                    break;
                }
                let state_machine = self.state_machine.clone();
                let page = tokio::task::spawn_blocking(move || {
                    state_machine.events_since(from, FILL_EVENTS_PER_READ, true)
                })
                .await;
                let page = match page {
                    Ok(Ok(page)) => page,
                    Ok(Err(StoreError::Compacted { compact_revision })) => {
                        // Fell behind a compaction (only possible right after a snapshot
                        // install): resume from what is retained.
                        self.reset(compact_revision - 1);
                        from = compact_revision;
                        continue;
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "watch cache cannot read history; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "watch cache read task failed");
                        return;
                    }
                };
                let reached = (page.next_revision - 1).min(page.revisions.current);
                self.push(page.events, reached);
                let _ = head_tx.send(reached);
                from = reached + 1;
            }
            if applied.changed().await.is_err() {
                return;
            }
        }
    }

    fn reset(&self, revision: i64) {
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        ring.revisions.clear();
        ring.bytes = 0;
        ring.first_revision = revision + 1;
        ring.head = revision;
    }

    fn push(&self, events: Vec<Event>, reached: i64) {
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        for event in events {
            let revision = event.kv.as_ref().map_or(0, |kv| kv.mod_revision);
            ring.bytes += event.encoded_len();
            match ring.revisions.back_mut() {
                Some((last, events)) if *last == revision => events.push(event),
                _ => ring.revisions.push_back((revision, vec![event])),
            }
        }
        ring.head = reached.max(ring.head);
        while ring.revisions.len() > EVENT_CACHE_REVISIONS_MAX
            || (ring.bytes > EVENT_CACHE_BYTES_MAX && ring.revisions.len() > 1)
        {
            if let Some((revision, events)) = ring.revisions.pop_front() {
                ring.first_revision = revision + 1;
                let freed: usize = events.iter().map(Message::encoded_len).sum();
                ring.bytes = ring.bytes.saturating_sub(freed);
            }
        }
    }

    /// The events one watcher wants from revision `from` up to the head, whole revisions
    /// only: at least one revision, then more until `events_max` selected events or
    /// `bytes_max` encoded bytes would be passed. From memory when cached, else from disk.
    /// Only selected events are copied (and their previous values only if asked for): with
    /// thousands of watchers on different keys, copying every event for every watcher and
    /// filtering afterwards would cost watchers × events copies.
    pub async fn read(
        &self,
        from: i64,
        events_max: usize,
        bytes_max: usize,
        selection: Selection<'_>,
    ) -> Result<Page, StoreError> {
        // Compacted history may still be cached; a watcher below the compaction is told so
        // exactly as if it had read the disk.
        let compacted = self.state_machine.applied().compacted;
        if from < compacted {
            return Err(StoreError::Compacted {
                compact_revision: compacted,
            });
        }
        {
            let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
            if from >= ring.first_revision {
                let mut page = PageBuilder::new(events_max, bytes_max, ring.head + 1);
                // Revisions are in order: find the first one wanted without a scan, which
                // with thousands of watchers would cost a pass over the ring per watcher.
                let start = ring.revisions.partition_point(|(r, _)| *r < from);
                for (revision, revision_events) in ring.revisions.range(start..) {
                    if !page.add_revision(*revision, revision_events.iter(), &selection) {
                        break;
                    }
                }
                return Ok(page.finish(from, false));
            }
        }
        let head = self.head();
        let state_machine = self.state_machine.clone();
        let stored =
            tokio::task::spawn_blocking(move || state_machine.events_since(from, events_max, true))
                .await
                .map_err(|e| StoreError::Corrupt(format!("history read task failed: {e}")))??;
        // Never run ahead of the cache's head: what follows is delivered from memory.
        let mut page = PageBuilder::new(events_max, bytes_max, stored.next_revision.min(head + 1));
        let mut rest = stored.events.as_slice();
        while let Some(first) = rest.first() {
            let revision = revision_of(first);
            if revision > head {
                page.next_revision = page.next_revision.min(revision);
                break;
            }
            let same = rest
                .iter()
                .take_while(|e| revision_of(e) == revision)
                .count();
            let (events, tail) = rest.split_at(same);
            if !page.add_revision(revision, events.iter(), &selection) {
                break;
            }
            rest = tail;
        }
        Ok(page.finish(from, true))
    }
}

/// Which events a reader wants, and whether with their previous values.
#[derive(Clone, Copy)]
pub struct Selection<'a> {
    /// Whether an event is wanted (key range and filters).
    pub keep: &'a (dyn Fn(&Event) -> bool + Sync),
    /// Whether to copy `prev_kv` too.
    pub prev_kv: bool,
}

fn revision_of(event: &Event) -> i64 {
    event.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}

/// Collects whole revisions of selected events within a page's limits.
struct PageBuilder {
    events: Vec<Event>,
    bytes: usize,
    events_max: usize,
    bytes_max: usize,
    next_revision: i64,
}

impl PageBuilder {
    fn new(events_max: usize, bytes_max: usize, next_revision: i64) -> Self {
        PageBuilder {
            events: Vec::new(),
            bytes: 0,
            events_max,
            bytes_max,
            next_revision,
        }
    }

    /// Adds the selected events of `revision`; false (and nothing added) when the page is
    /// full, in which case the page ends before `revision`.
    fn add_revision<'e>(
        &mut self,
        revision: i64,
        events: impl Iterator<Item = &'e Event>,
        selection: &Selection<'_>,
    ) -> bool {
        let selected: Vec<Event> = events
            .filter(|e| (selection.keep)(e))
            .map(|e| Event {
                r#type: e.r#type,
                kv: e.kv.clone(),
                prev_kv: if selection.prev_kv {
                    e.prev_kv.clone()
                } else {
                    None
                },
            })
            .collect();
        if selected.is_empty() {
            return true;
        }
        let size: usize = selected.iter().map(Message::encoded_len).sum();
        if !self.events.is_empty()
            && (self.events.len() + selected.len() > self.events_max
                || self.bytes + size > self.bytes_max)
        {
            self.next_revision = revision;
            return false;
        }
        self.bytes += size;
        self.events.extend(selected);
        true
    }

    fn finish(self, from: i64, from_disk: bool) -> Page {
        Page {
            events: self.events,
            next_revision: self.next_revision.max(from),
            from_disk,
        }
    }
}
