//! One client Watch stream and its watchers.
//!
//! A watcher is a key range, options and a position: the next revision it must receive.
//! The watchers on the live path at the same position form the stream's synced group,
//! indexed by key; the others (created from an older revision, or catching up) are read
//! for position by position. The stream's task delivers a page of events at a time from
//! the [`EventCache`], and waits for the client to take each response before reading more
//! (the response channel is bounded), so a slow client costs a bounded amount of memory
//! and its watchers simply stay behind; they are caught up from history later and never
//! dropped. While a watcher reads from the stored history it is counted as slow; once it
//! reaches the cached revisions it is back on the live path. Events of one revision
//! always travel in one response, unless the watcher asked for `fragment` and the
//! response would exceed the size limit.
//!
//! With auth on, creating a watcher needs read on its whole range, checked with the
//! stream's token when the watcher is created; a refusal cancels that watcher with
//! etcd's reason (the whole gRPC error text, as etcd sends it) and leaves the stream open.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use vane_proto::etcdserverpb::watch_create_request::FilterType;
use vane_proto::etcdserverpb::watch_request::RequestUnion;
use vane_proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use vane_proto::mvccpb::Event;
use vane_proto::mvccpb::event::EventType;
use vane_raft_store::StoreError;

use super::cache::{EventCache, Selection};
use super::registry::{StreamClient, StreamEntry, WatchedRange};
use crate::auth::Access;
use crate::node::Node;

/// Events read per watcher per turn: bounds the memory one turn holds.
const WATCH_PAGE_EVENTS: usize = 256;
/// Encoded bytes read per watcher per turn (a single larger revision still goes whole).
/// With the stream's bounded queue this caps what a client that stops reading can pin:
/// about [`super::WATCH_RESPONSES_QUEUED_MAX`] pages.
const WATCH_PAGE_BYTES: usize = 256 << 10;
/// Watchers one stream may hold.
pub const WATCHERS_PER_STREAM_MAX: usize = 10_000;
/// etcd's watch id for responses that concern the whole stream (progress).
const STREAM_WATCH_ID: i64 = -1;

struct Watcher {
    range: WatchedRange,
    /// The next revision it needs, while it is outside the synced group; a member of the
    /// group stands at [`Synced::revision`] instead.
    next_revision: i64,
    prev_kv: bool,
    fragment: bool,
    progress_notify: bool,
    /// Whether anything was sent since the last progress notification.
    sent_since_progress: bool,
    /// Whether it is behind the in-memory cache and catching up from the stored history
    /// (counted in the `watch_slow_watchers` gauge until it rejoins the live path).
    slow: bool,
    /// Whether it is a member of the stream's [`Synced`] group.
    synced: bool,
}

/// The watchers of a stream that stand at the same revision on the live path (on a busy
/// stream, nearly all of them), indexed by key: a new revision then costs a lookup per
/// event instead of a pass over every watcher, as etcd's synced watcher group does.
/// With 10,000 watchers on 100 streams, that pass took a third of a member's CPU.
#[derive(Default)]
struct Synced {
    /// The next revision every member needs.
    revision: i64,
    /// Members watching a single key, by key.
    by_key: HashMap<Vec<u8>, Vec<i64>>,
    /// Members watching a range, checked one by one.
    ranges: BTreeSet<i64>,
    /// Members that want previous values.
    prev_kv: usize,
}

impl Synced {
    fn add(&mut self, id: i64, watcher: &Watcher) {
        if watcher.range.range_end.is_empty() {
            self.by_key
                .entry(watcher.range.key.clone())
                .or_default()
                .push(id);
        } else {
            self.ranges.insert(id);
        }
        self.prev_kv += usize::from(watcher.prev_kv);
    }

    fn remove(&mut self, id: i64, watcher: &Watcher) {
        if watcher.range.range_end.is_empty() {
            if let Some(ids) = self.by_key.get_mut(&watcher.range.key) {
                ids.retain(|member| *member != id);
                if ids.is_empty() {
                    self.by_key.remove(&watcher.range.key);
                }
            }
        } else {
            self.ranges.remove(&id);
        }
        self.prev_kv -= usize::from(watcher.prev_kv);
    }
}

/// Every watcher of a stream: the synced group, and the others each at its own position
/// (created with an older start revision, or catching up from the stored history).
struct Watchers {
    all: BTreeMap<i64, Watcher>,
    synced: Synced,
    unsynced: BTreeSet<i64>,
}

impl Watchers {
    fn new() -> Self {
        Watchers {
            all: BTreeMap::new(),
            synced: Synced::default(),
            unsynced: BTreeSet::new(),
        }
    }

    /// Whether the synced group has members: every watcher is in it or in `unsynced`.
    fn any_synced(&self) -> bool {
        self.all.len() > self.unsynced.len()
    }

    /// Whether some watcher still has revisions up to `head` to receive.
    fn behind(&self, head: i64) -> bool {
        (self.any_synced() && self.synced.revision <= head)
            || self
                .unsynced
                .iter()
                .any(|id| self.all.get(id).is_some_and(|w| w.next_revision <= head))
    }

    fn insert(&mut self, id: i64, watcher: Watcher) {
        self.all.insert(id, watcher);
        self.unsynced.insert(id);
        self.try_sync(id);
    }

    fn remove(&mut self, id: i64) -> Option<Watcher> {
        let watcher = self.all.remove(&id)?;
        if watcher.synced {
            self.synced.remove(id, &watcher);
        } else {
            self.unsynced.remove(&id);
        }
        Some(watcher)
    }

    /// Moves watcher `id` into the synced group when it is on the live path and stands
    /// where the group does (an empty group takes its position).
    fn try_sync(&mut self, id: i64) {
        let group_empty = !self.any_synced();
        let Some(watcher) = self.all.get_mut(&id) else {
            return;
        };
        if watcher.synced || watcher.slow {
            return;
        }
        if group_empty {
            self.synced.revision = watcher.next_revision;
        } else if self.synced.revision != watcher.next_revision {
            return;
        }
        watcher.synced = true;
        self.synced.add(id, watcher);
        self.unsynced.remove(&id);
    }

    /// Breaks the synced group up, each member keeping the group's position on its own;
    /// `slow` when the group had to read the stored history.
    fn dissolve(&mut self, node: &Node, slow: bool) {
        let revision = self.synced.revision;
        for (id, watcher) in self.all.iter_mut().filter(|(_, w)| w.synced) {
            watcher.synced = false;
            watcher.next_revision = revision;
            if slow && !watcher.slow {
                watcher.slow = true;
                node.metrics.watch_slow_watchers.inc();
            }
            self.unsynced.insert(*id);
        }
        self.synced = Synced::default();
    }

    /// The synced members that receive `event`.
    fn synced_receivers<'a>(&'a self, event: &'a Event) -> impl Iterator<Item = i64> + 'a {
        let by_key = event
            .kv
            .as_ref()
            .and_then(|kv| self.synced.by_key.get(&kv.key))
            .into_iter()
            .flatten();
        by_key
            .chain(self.synced.ranges.iter())
            .copied()
            .filter(move |id| self.all.get(id).is_some_and(|w| w.keep(event)))
    }
}

/// Takes `watcher` out of the gauges when it ends.
fn forget(node: &Node, watcher: &Watcher) {
    node.metrics.watchers.dec();
    if watcher.slow {
        node.metrics.watch_slow_watchers.dec();
    }
}

/// Ends watcher `id` of a running stream: out of the stream, the gauges and the
/// member's registry.
fn end_watcher(node: &Node, entry: &StreamEntry, watchers: &mut Watchers, id: i64) {
    if let Some(watcher) = watchers.remove(id) {
        forget(node, &watcher);
        entry.remove(id);
    }
}

impl Watcher {
    fn keep(&self, event: &Event) -> bool {
        let Some(kv) = &event.kv else { return false };
        let delete = event.r#type != EventType::Put as i32;
        self.range.receives(&kv.key, delete)
    }
}

/// The credentials a stream was opened with: its token (`None` without one, `Some(Err(_))`
/// when it is not text) and the common name of a verified client certificate, which
/// names the user when there is no token (`--client-cert-auth`).
#[derive(Debug, Default)]
pub struct StreamToken {
    /// The `token` metadata.
    pub token: Option<Result<String, tonic::metadata::errors::ToStrError>>,
    /// The client certificate's common name, passed on by the client port.
    pub cert_user: Option<String>,
}

/// Runs one Watch stream until the client closes it or the member stops. `token` is the
/// one the client opened the stream with.
pub async fn run(
    node: Arc<Node>,
    cache: EventCache,
    mut inbound: Streaming<WatchRequest>,
    outbound: mpsc::Sender<Result<WatchResponse, Status>>,
    progress_interval: Duration,
    token: StreamToken,
    client: StreamClient,
) {
    let entry = node.watchers.open_stream(client);
    let mut watchers = Watchers::new();
    let mut next_id: i64 = 0;
    let mut head = cache.subscribe();
    let mut progress = tokio::time::interval(progress_interval);
    progress.tick().await;
    node.metrics.watch_streams.inc();
    let result: Result<(), ()> = async {
        loop {
            deliver(&node, &cache, &entry, &mut watchers, &outbound).await?;
            let behind = watchers.behind(cache.head());
            if behind {
                // More to deliver: take requests that are already waiting, then go on.
                tokio::task::yield_now().await;
            }
            tokio::select! {
                request = inbound.message() => match request {
                    Ok(Some(request)) => handle(&node, &cache, &entry, request, &mut watchers, &mut next_id, &outbound, &token).await?,
                    Ok(None) | Err(_) => return Ok(()),
                },
                changed = head.changed(), if !behind => {
                    if changed.is_err() {
                        return Ok(());
                    }
                }
                _ = progress.tick() => notify_progress(&node, &cache, &mut watchers, &outbound).await?,
                _ = std::future::ready(()), if behind => {}
            }
        }
    }
    .await;
    let _ = result;
    for watcher in watchers.all.values() {
        forget(&node, watcher);
    }
    node.metrics.watch_streams.dec();
}

async fn send(
    outbound: &mpsc::Sender<Result<WatchResponse, Status>>,
    response: WatchResponse,
) -> Result<(), ()> {
    outbound.send(Ok(response)).await.map_err(|_| ())
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    node: &Node,
    cache: &EventCache,
    entry: &StreamEntry,
    request: WatchRequest,
    watchers: &mut Watchers,
    next_id: &mut i64,
    outbound: &mpsc::Sender<Result<WatchResponse, Status>>,
    token: &StreamToken,
) -> Result<(), ()> {
    match request.request_union {
        Some(RequestUnion::CreateRequest(create)) => {
            create_watcher(
                node, cache, entry, create, watchers, next_id, outbound, token,
            )
            .await
        }
        Some(RequestUnion::CancelRequest(cancel)) => {
            end_watcher(node, entry, watchers, cancel.watch_id);
            send(
                outbound,
                WatchResponse {
                    header: node.header(cache.head()),
                    watch_id: cancel.watch_id,
                    canceled: true,
                    ..Default::default()
                },
            )
            .await
        }
        Some(RequestUnion::ProgressRequest(_)) => {
            // etcd answers a progress request only when every watcher is up to date, with
            // the revision they have all seen.
            let head = cache.head();
            if !watchers.behind(head) {
                send(
                    outbound,
                    WatchResponse {
                        header: node.header(head),
                        watch_id: STREAM_WATCH_ID,
                        ..Default::default()
                    },
                )
                .await?;
            }
            Ok(())
        }
        None => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn create_watcher(
    node: &Node,
    cache: &EventCache,
    entry: &StreamEntry,
    create: WatchCreateRequest,
    watchers: &mut Watchers,
    next_id: &mut i64,
    outbound: &mpsc::Sender<Result<WatchResponse, Status>>,
    token: &StreamToken,
) -> Result<(), ()> {
    let head = cache.head();
    let refuse = |id: i64, reason: String| WatchResponse {
        header: node.header(head),
        watch_id: id,
        created: true,
        canceled: true,
        cancel_reason: reason,
        ..Default::default()
    };
    if create.key.is_empty() {
        return send(
            outbound,
            refuse(-1, "etcdserver: key is not provided".into()),
        )
        .await;
    }
    let user = match may_watch(node, &create, token).await {
        Ok(user) => user,
        Err(status) => {
            // etcd puts the whole gRPC error text in the reason, code included.
            let reason = format!(
                "rpc error: code = {:?} desc = {}",
                status.code(),
                status.message()
            );
            return send(outbound, refuse(create.watch_id, reason)).await;
        }
    };
    if watchers.all.len() >= WATCHERS_PER_STREAM_MAX {
        return send(
            outbound,
            refuse(-1, format!("vane: a watch stream holds at most {WATCHERS_PER_STREAM_MAX} watchers; open another stream")),
        )
        .await;
    }
    let id = if create.watch_id != 0 {
        if watchers.all.contains_key(&create.watch_id) {
            return send(
                outbound,
                refuse(create.watch_id, "mvcc: watcher ID already exists".into()),
            )
            .await;
        }
        create.watch_id
    } else {
        while watchers.all.contains_key(next_id) {
            *next_id += 1;
        }
        *next_id
    };
    let range = WatchedRange {
        key: create.key,
        range_end: create.range_end,
        no_put: create.filters.contains(&(FilterType::Noput as i32)),
        no_delete: create.filters.contains(&(FilterType::Nodelete as i32)),
    };
    entry.add(id, range.clone(), user);
    let watcher = Watcher {
        range,
        next_revision: if create.start_revision > 0 {
            create.start_revision
        } else {
            head + 1
        },
        prev_kv: create.prev_kv,
        fragment: create.fragment,
        progress_notify: create.progress_notify,
        sent_since_progress: false,
        slow: false,
        synced: false,
    };
    watchers.insert(id, watcher);
    node.metrics.watchers.inc();
    send(
        outbound,
        WatchResponse {
            header: node.header(head),
            watch_id: id,
            created: true,
            ..Default::default()
        },
    )
    .await
}

/// Refuses a watcher on a range its stream's caller may not read; names the caller's
/// user otherwise ("" without auth).
async fn may_watch(
    node: &Node,
    create: &WatchCreateRequest,
    token: &StreamToken,
) -> Result<String, Status> {
    let cert_user = token.cert_user.as_deref();
    let token = match &token.token {
        None => None,
        Some(Ok(token)) => Some(token.as_str()),
        Some(Err(_)) => return Err(crate::errors::invalid_auth_token()),
    };
    let caller = node.caller_with(token, cert_user).await?;
    node.authorize(&caller, &[Access::read(&create.key, &create.range_end)])
        .await?;
    Ok(match caller {
        vane_raft_store::auth::Caller::User(user) => user,
        vane_raft_store::auth::Caller::Member => String::new(),
    })
}

/// One page for every watcher that is behind the cache's head: the synced group's, then
/// each other position's. Watchers that reach the group's position join it.
async fn deliver(
    node: &Node,
    cache: &EventCache,
    entry: &StreamEntry,
    watchers: &mut Watchers,
    outbound: &mpsc::Sender<Result<WatchResponse, Status>>,
) -> Result<(), ()> {
    let head = cache.head();
    deliver_synced(node, cache, head, watchers, outbound).await?;
    deliver_unsynced(node, cache, entry, head, watchers, outbound).await?;
    let positioned: Vec<i64> = watchers.unsynced.iter().copied().collect();
    for id in positioned {
        watchers.try_sync(id);
    }
    Ok(())
}

/// The synced group's next page: one read of the cache, events handed to their watchers
/// through the group's key index.
async fn deliver_synced(
    node: &Node,
    cache: &EventCache,
    head: i64,
    watchers: &mut Watchers,
    outbound: &mpsc::Sender<Result<WatchResponse, Status>>,
) -> Result<(), ()> {
    let from = watchers.synced.revision;
    if !watchers.any_synced() || from > head {
        return Ok(());
    }
    let read = {
        let group = &*watchers;
        let keep = |event: &Event| group.synced_receivers(event).next().is_some();
        let selection = Selection {
            keep: &keep,
            prev_kv: group.synced.prev_kv > 0,
        };
        cache
            .read(from, WATCH_PAGE_EVENTS, WATCH_PAGE_BYTES, selection)
            .await
    };
    let page = match read {
        Ok(page) => page,
        Err(StoreError::Compacted { .. }) => {
            // Each member is told on its own, by the next read at its position.
            watchers.dissolve(node, false);
            return Ok(());
        }
        Err(e) => {
            tracing::error!(error = %e, from, "cannot read history for watchers");
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ok(());
        }
    };
    let mut wanted: BTreeMap<i64, Vec<Event>> = BTreeMap::new();
    for event in &page.events {
        for id in watchers.synced_receivers(event) {
            let prev_kv = watchers.all.get(&id).is_some_and(|w| w.prev_kv);
            wanted
                .entry(id)
                .or_default()
                .push(copy_event(event, prev_kv));
        }
    }
    watchers.synced.revision = page.next_revision.max(from);
    if page.from_disk {
        // The group fell behind the cache (its client read slowly): its members catch up
        // one position at a time and rejoin once live.
        node.metrics.watch_catchup_reads.inc();
        watchers.dissolve(node, true);
    }
    for (id, events) in wanted {
        if let Some(watcher) = watchers.all.get_mut(&id) {
            send_events(node, head, id, watcher, events, outbound).await?;
        }
    }
    Ok(())
}

/// One page for each position outside the synced group. Watchers at the same position
/// share one read of the cache: it copies only the events some of them want, and each
/// then takes its own from that page.
async fn deliver_unsynced(
    node: &Node,
    cache: &EventCache,
    entry: &StreamEntry,
    head: i64,
    watchers: &mut Watchers,
    outbound: &mpsc::Sender<Result<WatchResponse, Status>>,
) -> Result<(), ()> {
    let mut groups: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for id in &watchers.unsynced {
        if let Some(watcher) = watchers.all.get(id)
            && watcher.next_revision <= head
        {
            groups.entry(watcher.next_revision).or_default().push(*id);
        }
    }
    for (from, ids) in groups {
        let read = {
            let members: Vec<&Watcher> = ids.iter().filter_map(|id| watchers.all.get(id)).collect();
            let keep = |event: &Event| members.iter().any(|w| w.keep(event));
            let selection = Selection {
                keep: &keep,
                prev_kv: members.iter().any(|w| w.prev_kv),
            };
            cache
                .read(from, WATCH_PAGE_EVENTS, WATCH_PAGE_BYTES, selection)
                .await
        };
        let page = match read {
            Ok(page) => page,
            Err(StoreError::Compacted { compact_revision }) => {
                for id in ids {
                    end_watcher(node, entry, watchers, id);
                    send(
                        outbound,
                        WatchResponse {
                            header: node.header(head),
                            watch_id: id,
                            canceled: true,
                            compact_revision,
                            cancel_reason: "etcdserver: mvcc: required revision has been compacted"
                                .into(),
                            ..Default::default()
                        },
                    )
                    .await?;
                }
                continue;
            }
            Err(e) => {
                // The watchers keep their position and are retried; pause so a persistent
                // storage fault does not spin.
                tracing::error!(error = %e, from, "cannot read history for watchers");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if page.from_disk {
            node.metrics.watch_catchup_reads.inc();
        }
        for id in ids {
            let Some(watcher) = watchers.all.get_mut(&id) else {
                continue;
            };
            if page.from_disk != watcher.slow {
                watcher.slow = page.from_disk;
                if watcher.slow {
                    node.metrics.watch_slow_watchers.inc();
                } else {
                    node.metrics.watch_slow_watchers.dec();
                }
            }
            watcher.next_revision = page.next_revision.max(watcher.next_revision);
            let events: Vec<Event> = page
                .events
                .iter()
                .filter(|e| watcher.keep(e))
                .map(|e| copy_event(e, watcher.prev_kv))
                .collect();
            send_events(node, head, id, watcher, events, outbound).await?;
        }
    }
    Ok(())
}

/// A watcher's copy of `event`, with its previous value only when the watcher asked.
fn copy_event(event: &Event, prev_kv: bool) -> Event {
    Event {
        r#type: event.r#type,
        kv: event.kv.clone(),
        prev_kv: if prev_kv { event.prev_kv.clone() } else { None },
    }
}

/// Sends `events` (none is nothing to send) to watcher `id`, fragmented if it asked.
async fn send_events(
    node: &Node,
    head: i64,
    id: i64,
    watcher: &mut Watcher,
    events: Vec<Event>,
    outbound: &mpsc::Sender<Result<WatchResponse, Status>>,
) -> Result<(), ()> {
    if events.is_empty() {
        return Ok(());
    }
    watcher.sent_since_progress = true;
    node.metrics.watch_events_sent.inc_by(events.len() as u64);
    let limit = node.config.request_bytes_max;
    for response in split(node, head, id, events, watcher.fragment, limit) {
        send(outbound, response).await?;
    }
    Ok(())
}

/// One response, or fragments of it when the watcher allows and it exceeds `limit_bytes`.
fn split(
    node: &Node,
    head: i64,
    id: i64,
    events: Vec<Event>,
    fragment: bool,
    limit_bytes: usize,
) -> Vec<WatchResponse> {
    let whole = WatchResponse {
        header: node.header(head),
        watch_id: id,
        events,
        ..Default::default()
    };
    if !fragment || prost::Message::encoded_len(&whole) <= limit_bytes {
        return vec![whole];
    }
    let mut parts = Vec::new();
    let mut current: Vec<Event> = Vec::new();
    let mut size = 0usize;
    for event in whole.events {
        let event_size = prost::Message::encoded_len(&event) + 8;
        if !current.is_empty() && size + event_size > limit_bytes {
            parts.push(std::mem::take(&mut current));
            size = 0;
        }
        size += event_size;
        current.push(event);
    }
    parts.push(current);
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, events)| WatchResponse {
            header: node.header(head),
            watch_id: id,
            events,
            fragment: i < last,
            ..Default::default()
        })
        .collect()
}

/// Periodic progress notifications, for watchers that asked, are up to date and were
/// sent nothing since the last one: the revision they have seen everything up to.
async fn notify_progress(
    node: &Node,
    cache: &EventCache,
    watchers: &mut Watchers,
    outbound: &mpsc::Sender<Result<WatchResponse, Status>>,
) -> Result<(), ()> {
    let head = cache.head();
    let synced_revision = watchers.synced.revision;
    for (id, watcher) in watchers.all.iter_mut() {
        if !watcher.progress_notify {
            continue;
        }
        let position = if watcher.synced {
            synced_revision
        } else {
            watcher.next_revision
        };
        if position > head && !watcher.sent_since_progress {
            send(
                outbound,
                WatchResponse {
                    header: node.header(head),
                    watch_id: *id,
                    ..Default::default()
                },
            )
            .await?;
        }
        watcher.sent_since_progress = false;
    }
    Ok(())
}
