//! The Raft log on RocksDB: openraft's `RaftLogStorage` and `RaftLogReader`.
//!
//! Durability, and why it holds:
//! * Entries, the vote and the committed id share one RocksDB and so one write-ahead log,
//!   which is written in call order. Syncing the WAL makes everything written before the
//!   sync durable, so a vote and the entries around it can never become durable in the
//!   other order.
//! * `append` writes its entries (readable at once) and hands the callback to the
//!   *syncer*, a thread that syncs the WAL and only then reports the entries flushed.
//!   Whatever is waiting when a sync starts rides on it: group commit, one fsync for many
//!   appends. `save_vote` waits for a sync the same way. A member with nothing else to do
//!   (a follower no client is waiting on; the member decides, see [`InlineSyncGate`])
//!   syncs on the calling thread instead, saving the two thread wake-ups of the handover;
//!   only when no sync is pending, so entries are still reported flushed in order.
//! * `save_committed` writes the committed id and does not wait: it becomes durable with
//!   the next sync, in WAL order after the entries it covers. Waiting would put an fsync
//!   between every commit and its apply, with the Raft core blocked meanwhile. A process
//!   crash loses nothing (the write is in the OS); a power loss may lose the newest
//!   committed id, and the member then re-applies less at restart and catches up from the
//!   leader. etcd does the same: a HardState whose only change is the commit index is
//!   written to its WAL without an fsync.
//! * Truncation deletes a suffix and purge a prefix (recording the last purged id in the
//!   same batch), so the log never has a hole.
//! * The newest entries are also kept decoded in memory (the *tail*), so that the leader's
//!   replication, which reads every entry back just after appending it, neither opens a
//!   RocksDB iterator nor decodes the entry again.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};
use prost::Message;
use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch};
use vane_proto::raft as pb;

use super::convert::{
    entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, vote_from_pb, vote_to_pb,
};
use super::types::{RaftEntry, RaftLogId, RaftVote, TypeConfig};
use crate::error::StoreError;

const CF_LOG: &str = "log";
const CF_META: &str = "meta";
const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// Syncs waiting before the syncer applies backpressure to appenders.
const SYNC_QUEUE_MAX: usize = 4096;
/// The memtable of the entries. Purged entries still in it are dropped at its flush
/// rather than written out, so it is not made smaller than this.
const LOG_MEMTABLE_BYTES: usize = 8 << 20;
/// The memtable of the vote and the commit index. They are three keys, but the commit
/// index is written on every commit, and each write is a new memtable entry. Sized like
/// the entries' memtable, it held most of the log's 8 MiB of memtables after 130,000
/// puts, and since it had not filled, it had not flushed and kept every write-ahead log
/// file since the first (47 MB on disk).
const META_MEMTABLE_BYTES: usize = 1 << 20;
/// Write-ahead log files kept for memtables not yet flushed, before RocksDB flushes the
/// family holding the oldest.
const LOG_WAL_BYTES_MAX: u64 = 32 << 20;
/// Obsolete write-ahead log files RocksDB keeps to overwrite as new ones, instead of
/// deleting them and creating new files.
///
/// Every append is made durable by an fdatasync of the WAL. Appending to a file changes
/// its length, so each fdatasync also commits the inode to the filesystem journal.
/// Overwriting a file that is already long enough changes only data. On this machine's
/// ext4, an fdatasync after a 150-byte write took 157 µs at p50 when appending and 115 µs
/// when overwriting.
///
/// With three members on one disk, the log's mean fsync (per run, over the members) fell
/// from 225–300 µs to 180–245 µs. One client putting to the leader got more puts/s in 10
/// of 11 pairs (−6% to +19%, mean +7%). That was measured after 25 s of writes, once the
/// first WAL files had been retired. 64 clients were within the noise (13 pairs).
///
/// The log switches WAL files at every memtable flush: one for the entries, about 7 MB,
/// and one for the vote and committed id, a few hundred bytes. So a member keeps about one
/// retired 7 MB file on disk, waiting for reuse.
///
/// RocksDB tells a recycled file's old records from new ones by the log number each record
/// carries. A test below reopens a log whose newest entries sit in a recycled file.
const LOG_WAL_FILES_RECYCLED: usize = 4;
/// Slowest fsync after which appends stop syncing inline (see [`InlineSyncGate`]) until
/// one is fast again. A disk that has slowed down (a degraded volume, a noisy neighbour)
/// would otherwise hold the member's threads for as long as each sync takes, and with them
/// its answers to the leader's heartbeats, to status calls and to metrics scrapes.
const INLINE_SYNC_SLOWEST: std::time::Duration = std::time::Duration::from_millis(10);
/// Most entries the in-memory tail holds. Replication and apply read the newest entries;
/// a follower further behind (after a pause or a restart) reads from RocksDB. This holds
/// about 2 MiB of decoded entries with 256-byte values; 1,024 saved most of that but gave
/// 14-17% fewer puts per second at 256 writers, measured side by side.
const TAIL_ENTRIES_MAX: usize = 4096;
/// Most encoded bytes of entries the in-memory tail holds.
const TAIL_BYTES_MAX: usize = 8 << 20;

/// The newest entries of the log, decoded. When not empty it is a contiguous run of
/// entries ending at the last one in the log: appends extend it, a truncation cuts it
/// back, a purge drops its front, and the oldest go when it is full.
#[derive(Default)]
struct Tail {
    /// Each entry with its encoded size.
    entries: std::collections::VecDeque<(RaftEntry, usize)>,
    bytes: usize,
}

impl Tail {
    fn push(&mut self, entry: RaftEntry, bytes: usize) {
        if let Some((last, _)) = self.entries.back()
            && last.log_id.index + 1 != entry.log_id.index
        {
            // Not a continuation (cannot happen after a truncation, which cuts the tail
            // first): start again from this entry rather than hold a run with a gap.
            self.clear();
        }
        // Room is made before the push: a ring pushed past its capacity doubles it, and
        // a full tail of 4,096 slots of 176 bytes would then sit in a ring of 8,192.
        if self.entries.len() >= TAIL_ENTRIES_MAX {
            self.pop_front();
        }
        self.entries.push_back((entry, bytes));
        self.bytes += bytes;
        while self.bytes > TAIL_BYTES_MAX {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, bytes)) = self.entries.pop_front() {
            self.bytes -= bytes;
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Drops the entries at `from` and after.
    fn truncate(&mut self, from: u64) {
        while let Some((last, bytes)) = self.entries.back() {
            if last.log_id.index < from {
                break;
            }
            self.bytes -= bytes;
            self.entries.pop_back();
        }
    }

    /// Drops the entries up to and including `upto`.
    fn purge(&mut self, upto: u64) {
        while self
            .entries
            .front()
            .is_some_and(|(first, _)| first.log_id.index <= upto)
        {
            self.pop_front();
        }
    }

    /// The entries from `start` to `end`, if the tail holds `start`: it ends at the last
    /// entry of the log, so it then holds every entry of the range that exists.
    fn read(&self, start: u64, end: Bound<u64>) -> Option<Vec<RaftEntry>> {
        let first = self.entries.front()?.0.log_id.index;
        if start < first {
            return None;
        }
        let skip = usize::try_from(start - first).ok()?;
        Some(
            self.entries
                .iter()
                .skip(skip)
                .map(|(entry, _)| entry)
                .take_while(|entry| match end {
                    Bound::Included(e) => entry.log_id.index <= e,
                    Bound::Excluded(e) => entry.log_id.index < e,
                    Bound::Unbounded => true,
                })
                .cloned()
                .collect(),
        )
    }
}

enum SyncWaiter {
    Flushed(IOFlushed<TypeConfig>),
    Done(tokio::sync::oneshot::Sender<io::Result<()>>),
}

impl SyncWaiter {
    fn complete(self, result: &Result<(), rocksdb::Error>) {
        let result = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| io::Error::other(format!("syncing the Raft log failed: {e}")));
        match self {
            SyncWaiter::Flushed(callback) => callback.io_completed(result),
            SyncWaiter::Done(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

struct LogDb {
    db: Arc<DB>,
    tail: std::sync::Mutex<Tail>,
    sync_tx: Option<mpsc::SyncSender<SyncWaiter>>,
    syncer: Option<JoinHandle<()>>,
    /// Shared with the syncer thread.
    syncs: Arc<Syncs>,
}

/// What the log and its syncer thread share about fsyncs.
#[derive(Default)]
struct Syncs {
    /// Told how long each fsync took ([`LogStore::observe_syncs`]).
    observer: OnceLock<SyncObserver>,
    /// When `append` may sync on the calling thread ([`LogStore::sync_inline_when`]).
    inline_gate: OnceLock<InlineSyncGate>,
    /// Waiters handed to the syncer and not yet told their sync is done.
    pending: AtomicUsize,
    /// Whether the last fsync, wherever it ran, took longer than [`INLINE_SYNC_SLOWEST`].
    last_slow: AtomicBool,
}

impl Syncs {
    /// Syncs the WAL of `db`, reports how long it took to the observer and notes whether
    /// it took longer than [`INLINE_SYNC_SLOWEST`].
    fn sync_wal(&self, db: &DB) -> Result<(), rocksdb::Error> {
        let started = std::time::Instant::now();
        let result = db.flush_wal(true);
        let took = started.elapsed();
        self.last_slow
            .store(took > INLINE_SYNC_SLOWEST, Ordering::Release);
        if let Some(observe) = self.observer.get() {
            observe(took);
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, "fsync of the Raft log failed; this node stops acknowledging writes");
        }
        result
    }
}

impl Drop for LogDb {
    fn drop(&mut self) {
        // Closing the queue ends the syncer; joining it releases its handle on the DB so
        // the directory can be reopened as soon as the store is dropped.
        self.sync_tx.take();
        if let Some(handle) = self.syncer.take() {
            let _ = handle.join();
        }
    }
}

/// The Raft log of one node. Cheap to clone: clones share the database and the syncer.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<LogDb>,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// Told how long each fsync of the log took (one fsync covers every append queued behind
/// it), for metrics: etcd operators watch `etcd_disk_wal_fsync_duration_seconds` first when
/// writes slow down, and a slow disk shows here before anywhere else.
pub type SyncObserver = Arc<dyn Fn(std::time::Duration) + Send + Sync>;

/// Asked by every append that finds no sync pending: should this append sync the log on
/// the calling thread (blocking it for one fsync) instead of handing the sync to the
/// syncer thread?
///
/// Handing over costs two thread wake-ups on the path of the write: one to start the
/// syncer, one to wake the Raft core when it is done. On a loaded machine each wake-up
/// waits for a core: with three members and a client on two cores, a woken syncer waited
/// 120 µs on average before it ran. A member with nothing else to do is better off
/// syncing where it is. A member with work waiting (clients' requests, or the
/// replication a leader starts right after `append` returns) must not be held up for an
/// fsync, and then the syncer, which also batches concurrent appends, is the right place.
/// The member decides, since only it knows its role and its load.
pub type InlineSyncGate = Arc<dyn Fn() -> bool + Send + Sync>;

fn run_syncer(db: Arc<DB>, queue: mpsc::Receiver<SyncWaiter>, syncs: Arc<Syncs>) {
    while let Ok(first) = queue.recv() {
        let mut waiters = vec![first];
        while let Ok(more) = queue.try_recv() {
            waiters.push(more);
        }
        let result = syncs.sync_wal(&db);
        let synced = waiters.len();
        for waiter in waiters {
            waiter.complete(&result);
        }
        // Uncounted only once they have been told, so that no append syncs inline and is
        // reported flushed ahead of them.
        syncs.pending.fetch_sub(synced, Ordering::AcqRel);
    }
}

/// [`LOG_WAL_FILES_RECYCLED`], except under the planted ack-before-fsync bug: its writes
/// skip the WAL, which RocksDB refuses while WAL files are recycled.
fn wal_files_recycled() -> usize {
    #[cfg(feature = "planted-bugs")]
    if crate::planted::is_on(crate::planted::Fault::AckBeforeFsync) {
        return 0;
    }
    LOG_WAL_FILES_RECYCLED
}

impl LogStore {
    /// Opens (creating if needed) the log at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_keep_log_file_num(4);
        options.set_max_total_wal_size(LOG_WAL_BYTES_MAX);
        options.set_recycle_log_file_num(wal_files_recycled());
        // Entries live in the log only until the next snapshot: small memtables are
        // enough, and RocksDB's default (64 MiB each) held most of a member's memory.
        options.set_db_write_buffer_size(LOG_MEMTABLE_BYTES + META_MEMTABLE_BYTES);
        crate::db::pace_background_writes(&mut options);
        let cfs = [(CF_LOG, LOG_MEMTABLE_BYTES), (CF_META, META_MEMTABLE_BYTES)].map(
            |(name, memtable_bytes)| {
                let mut cf_options = Options::default();
                cf_options.set_write_buffer_size(memtable_bytes);
                // Entries are purged soon after they are written; those a flush writes out
                // are deleted within seconds. Compressing them spent CPU for nothing.
                cf_options.set_compression_type(rocksdb::DBCompressionType::None);
                ColumnFamilyDescriptor::new(name, cf_options)
            },
        );
        let db = Arc::new(DB::open_cf_descriptors(&options, path, cfs)?);
        let (sync_tx, queue) = mpsc::sync_channel(SYNC_QUEUE_MAX);
        let syncer_db = db.clone();
        let syncs = Arc::new(Syncs::default());
        let syncer_syncs = syncs.clone();
        let syncer = std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || run_syncer(syncer_db, queue, syncer_syncs))
            .map_err(|e| StoreError::io("start the Raft log syncer thread", e))?;
        Ok(LogStore {
            inner: Arc::new(LogDb {
                db,
                tail: Default::default(),
                sync_tx: Some(sync_tx),
                syncer: Some(syncer),
                syncs,
            }),
        })
    }

    /// Reports every fsync of the log from now on to `observer`. The log is opened before
    /// the metrics exist, hence after the fact; only the first observer set counts.
    pub fn observe_syncs(&self, observer: SyncObserver) {
        let _ = self.inner.syncs.observer.set(observer);
    }

    /// What RocksDB holds in memory for the log (its memtables above all), for the admin
    /// endpoint.
    pub fn storage_memory(&self) -> crate::db::StorageMemory {
        crate::db::storage_memory(self.db(), &[CF_LOG, CF_META], false)
    }

    fn db(&self) -> &DB {
        &self.inner.db
    }

    fn cf(&self, name: &str) -> io::Result<&rocksdb::ColumnFamily> {
        self.db()
            .cf_handle(name)
            .ok_or_else(|| io_err(format!("column family {name} is missing from the Raft log")))
    }

    fn enqueue_sync(&self, waiter: SyncWaiter) -> io::Result<()> {
        let tx = self
            .inner
            .sync_tx
            .as_ref()
            .ok_or_else(|| io_err("the Raft log is closing"))?;
        self.inner.syncs.pending.fetch_add(1, Ordering::AcqRel);
        tx.send(waiter).map_err(|_| {
            self.inner.syncs.pending.fetch_sub(1, Ordering::AcqRel);
            io_err("the Raft log syncer has stopped")
        })
    }

    /// Lets `append` sync the log on the thread that calls it whenever `gate` says so,
    /// rather than hand the sync to the syncer thread. See [`InlineSyncGate`].
    pub fn sync_inline_when(&self, gate: InlineSyncGate) {
        let _ = self.inner.syncs.inline_gate.set(gate);
    }

    /// Whether this append should sync on the calling thread: the gate says so, no sync
    /// is pending (so appends are still reported flushed in the order they came) and the
    /// last fsync was not slow.
    fn may_sync_inline(&self) -> bool {
        let syncs = &self.inner.syncs;
        syncs.pending.load(Ordering::Acquire) == 0
            && !syncs.last_slow.load(Ordering::Acquire)
            && syncs.inline_gate.get().is_some_and(|gate| gate())
    }

    async fn wait_for_sync(&self) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.enqueue_sync(SyncWaiter::Done(tx))?;
        rx.await
            .map_err(|_| io_err("the Raft log syncer stopped before syncing"))?
    }

    fn get_meta<M: Message + Default>(&self, key: &[u8]) -> io::Result<Option<M>> {
        let Some(bytes) = self.db().get_cf(self.cf(CF_META)?, key).map_err(io_err)? else {
            return Ok(None);
        };
        M::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| io_err(StoreError::decode("Raft log meta", e)))
    }

    fn last_purged(&self) -> io::Result<Option<RaftLogId>> {
        Ok(self
            .get_meta::<pb::LogId>(KEY_LAST_PURGED)?
            .map(|l| log_id_from_pb(&l)))
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        self.inner
            .tail
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_entries(&self, start: u64, end: Bound<u64>) -> io::Result<Vec<RaftEntry>> {
        if let Some(entries) = self.tail().read(start, end) {
            return Ok(entries);
        }
        let mut entries = Vec::new();
        let iter = self.db().iterator_cf(
            self.cf(CF_LOG)?,
            IteratorMode::From(&index_key(start), Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(io_err)?;
            let index = u64::from_be_bytes(
                key.as_ref()
                    .try_into()
                    .map_err(|_| io_err("log key is not 8 bytes"))?,
            );
            let past_end = match end {
                Bound::Included(e) => index > e,
                Bound::Excluded(e) => index >= e,
                Bound::Unbounded => false,
            };
            if past_end {
                break;
            }
            let entry = pb::Entry::decode(value.as_ref())
                .map_err(|e| io_err(StoreError::decode("log entry", e)))?;
            let entry = entry_from_pb(entry).map_err(io_err)?;
            if entry.log_id.index != index {
                return Err(io_err(format!(
                    "log entry stored at index {index} says it is {}",
                    entry.log_id.index
                )));
            }
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<RaftEntry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        self.read_entries(start, range.end_bound().cloned())
    }

    async fn read_vote(&mut self) -> Result<Option<RaftVote>, io::Error> {
        Ok(self
            .get_meta::<pb::Vote>(KEY_VOTE)?
            .map(|v| vote_from_pb(&v)))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id = self.last_purged()?;
        let mut last = self.db().iterator_cf(self.cf(CF_LOG)?, IteratorMode::End);
        let last_log_id = match last.next() {
            Some(item) => {
                let (_, value) = item.map_err(io_err)?;
                let entry = pb::Entry::decode(value.as_ref())
                    .map_err(|e| io_err(StoreError::decode("log entry", e)))?;
                entry.log_id.as_ref().map(log_id_from_pb)
            }
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &RaftVote) -> Result<(), io::Error> {
        self.db()
            .put_cf(
                self.cf(CF_META)?,
                KEY_VOTE,
                vote_to_pb(vote).encode_to_vec(),
            )
            .map_err(io_err)?;
        self.wait_for_sync().await
    }

    async fn save_committed(&mut self, committed: Option<RaftLogId>) -> Result<(), io::Error> {
        let Some(committed) = committed else {
            return Ok(());
        };
        self.db()
            .put_cf(
                self.cf(CF_META)?,
                KEY_COMMITTED,
                log_id_to_pb(&committed).encode_to_vec(),
            )
            .map_err(io_err)
    }

    async fn read_committed(&mut self) -> Result<Option<RaftLogId>, io::Error> {
        Ok(self
            .get_meta::<pb::LogId>(KEY_COMMITTED)?
            .map(|l| log_id_from_pb(&l)))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = RaftEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.cf(CF_LOG)?;
        let mut batch = WriteBatch::default();
        let mut appended = Vec::new();
        for entry in entries {
            let encoded = entry_to_pb(&entry).encode_to_vec();
            batch.put_cf(cf, index_key(entry.log_id.index), &encoded);
            appended.push((entry, encoded.len()));
        }
        // Into the tail before the write: once `append` returns, a reader must find the
        // entries, and the tail is where it looks first. Should the write fail, the tail
        // forgets them again, and the failure stops this member's Raft.
        {
            let mut tail = self.tail();
            for (entry, bytes) in appended {
                tail.push(entry, bytes);
            }
        }
        #[cfg(feature = "planted-bugs")]
        if crate::planted::is_on(crate::planted::Fault::AckBeforeFsync) {
            let mut options = rocksdb::WriteOptions::default();
            options.disable_wal(true);
            self.db().write_opt(batch, &options).map_err(io_err)?;
            callback.io_completed(Ok(()));
            return Ok(());
        }
        // Written now, so readers see the entries at once; reported flushed after the sync,
        // here or on the syncer thread.
        if let Err(e) = self.db().write(batch) {
            self.tail().clear();
            return Err(io_err(e));
        }
        if self.may_sync_inline() {
            let result = self.inner.syncs.sync_wal(self.db());
            SyncWaiter::Flushed(callback).complete(&result);
            return Ok(());
        }
        self.enqueue_sync(SyncWaiter::Flushed(callback))
    }

    async fn truncate_after(&mut self, last_log_id: Option<RaftLogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |l| l.index + 1);
        self.tail().truncate(from);
        self.db()
            .delete_range_cf(
                self.cf(CF_LOG)?,
                index_key(from).as_slice(),
                [0xFF_u8; 9].as_slice(),
            )
            .map_err(io_err)
    }

    async fn purge(&mut self, log_id: RaftLogId) -> Result<(), io::Error> {
        self.tail().purge(log_id.index);
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_META)?,
            KEY_LAST_PURGED,
            log_id_to_pb(&log_id).encode_to_vec(),
        );
        batch.delete_range_cf(self.cf(CF_LOG)?, index_key(0), index_key(log_id.index + 1));
        self.db().write(batch).map_err(io_err)?;
        // The range delete hides the entries; dropping the table files that hold nothing
        // else gives their space back now rather than at some later compaction. The end
        // is inclusive here, so it stops at the last purged index.
        self.db()
            .delete_file_in_range_cf(self.cf(CF_LOG)?, index_key(0), index_key(log_id.index))
            .map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::entry::RaftEntry as _;

    fn entry(index: u64) -> RaftEntry {
        let log_id = log_id_from_pb(&pb::LogId {
            term: 1,
            node_id: 1,
            index,
        });
        RaftEntry::new_blank(log_id)
    }

    fn indexes(entries: Option<Vec<RaftEntry>>) -> Option<Vec<u64>> {
        entries.map(|e| e.iter().map(|e| e.log_id.index).collect())
    }

    #[test]
    fn the_tail_is_the_newest_run_of_entries_through_appends_truncations_and_purges() {
        let mut tail = Tail::default();
        for index in 1..=10 {
            tail.push(entry(index), 100);
        }
        assert_eq!(
            indexes(tail.read(4, Bound::Included(6))),
            Some(vec![4, 5, 6])
        );
        assert_eq!(indexes(tail.read(9, Bound::Unbounded)), Some(vec![9, 10]));
        assert_eq!(indexes(tail.read(11, Bound::Unbounded)), Some(vec![]));
        tail.truncate(8);
        assert_eq!(indexes(tail.read(6, Bound::Excluded(20))), Some(vec![6, 7]));
        tail.purge(3);
        assert_eq!(
            indexes(tail.read(3, Bound::Unbounded)),
            None,
            "purged: read the store"
        );
        assert_eq!(indexes(tail.read(4, Bound::Included(4))), Some(vec![4]));
        // An entry that does not follow the last one restarts the run.
        tail.push(entry(20), 100);
        assert_eq!(indexes(tail.read(7, Bound::Unbounded)), None);
        assert_eq!(indexes(tail.read(20, Bound::Unbounded)), Some(vec![20]));
        assert_eq!(tail.bytes, 100);
    }

    #[test]
    fn a_full_tail_forgets_its_oldest_entries() {
        let mut tail = Tail::default();
        for index in 1..=(TAIL_ENTRIES_MAX as u64 + 5) {
            tail.push(entry(index), 10);
        }
        assert_eq!(tail.entries.len(), TAIL_ENTRIES_MAX);
        assert!(
            tail.entries.capacity() < 2 * TAIL_ENTRIES_MAX,
            "the ring grew to {} slots for {TAIL_ENTRIES_MAX} entries",
            tail.entries.capacity()
        );
        assert_eq!(indexes(tail.read(5, Bound::Unbounded)), None);
        assert_eq!(
            tail.read(6, Bound::Unbounded).map(|e| e.len()),
            Some(TAIL_ENTRIES_MAX)
        );
        let mut tail = Tail::default();
        tail.push(entry(1), TAIL_BYTES_MAX);
        tail.push(entry(2), 1);
        assert_eq!(indexes(tail.read(2, Bound::Unbounded)), Some(vec![2]));
        assert_eq!(tail.bytes, 1);
    }

    #[tokio::test]
    async fn commit_index_writes_flush_instead_of_piling_up_in_memory() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(tmp.path()).unwrap();
        // About 5 MiB of memtable entries, which an 8 MiB memtable (as before) kept unflushed.
        for index in 1..=100_000 {
            let committed = entry(index).log_id;
            store.save_committed(Some(committed)).await.unwrap();
        }
        let memory = store.storage_memory();
        assert!(memory.memtables_bytes <= 2 << 20, "{memory:?}");
        assert_eq!(
            store.read_committed().await.unwrap().map(|id| id.index),
            Some(100_000)
        );
    }

    /// The write-ahead log files in `dir`, oldest first: (number, length in bytes).
    fn wal_files(dir: &Path) -> Vec<(u64, u64)> {
        let mut files: Vec<(u64, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let number = name.strip_suffix(".log")?.parse().ok()?;
                Some((number, e.metadata().unwrap().len()))
            })
            .collect();
        files.sort();
        files
    }

    async fn append_synced(store: &mut LogStore, indexes: std::ops::RangeInclusive<u64>) {
        use openraft::type_config::TypeConfigExt as _;
        let (tx, rx) = TypeConfig::oneshot();
        store
            .append(indexes.map(entry), IOFlushed::signal(tx))
            .await
            .unwrap();
        rx.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn entries_written_over_a_recycled_wal_file_survive_a_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let rounds = 4u64;
        let per_round = 5_000u64;
        {
            let mut store = LogStore::open(tmp.path()).unwrap();
            // Each flush of the memtable switches WAL files and retires the previous one,
            // which the next switch overwrites.
            for round in 0..rounds {
                append_synced(&mut store, round * per_round + 1..=(round + 1) * per_round).await;
                store.db().flush_cf(store.cf(CF_LOG).unwrap()).unwrap();
            }
            // A few entries into the newest file: a recycled one keeps its old length.
            append_synced(&mut store, rounds * per_round + 1..=rounds * per_round + 10).await;
            let files = wal_files(tmp.path());
            let &(_, newest_len) = files.last().unwrap();
            assert!(
                newest_len > 10_000,
                "the newest WAL file was not a recycled one: {files:?}"
            );
        }
        // Reopened without a flush: the newest entries come back from the recycled file,
        // and none of the records it held before.
        let mut store = LogStore::open(tmp.path()).unwrap();
        let last = rounds * per_round + 10;
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.map(|id| id.index), Some(last));
        let entries = store.try_get_log_entries(1..=last).await.unwrap();
        assert!(
            entries.iter().map(|e| e.log_id.index).eq(1..=last),
            "the log has a hole or a stray entry"
        );
    }

    #[tokio::test]
    async fn every_fsync_is_reported_once_observed_and_not_before() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(tmp.path()).unwrap();
        let vote = RaftVote::new(1, 1);
        store.save_vote(&vote).await.unwrap();
        let syncs = Arc::new(AtomicUsize::new(0));
        let counted = syncs.clone();
        store.observe_syncs(Arc::new(move |_took| {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        for term in 2..=4 {
            store.save_vote(&RaftVote::new(term, 1)).await.unwrap();
        }
        // Each save waits for its own fsync, which is reported before the wait ends.
        assert_eq!(syncs.load(Ordering::SeqCst), 3);
    }

    /// Opens a log whose fsyncs report the name of the thread that ran them.
    fn log_naming_sync_threads(dir: &Path) -> (LogStore, Arc<std::sync::Mutex<Vec<String>>>) {
        let store = LogStore::open(dir).unwrap();
        let threads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = threads.clone();
        store.observe_syncs(Arc::new(move |_took| {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            seen.lock().unwrap().push(name);
        }));
        (store, threads)
    }

    #[tokio::test]
    async fn appends_sync_on_the_callers_thread_only_while_the_gate_is_open() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut store, threads) = log_naming_sync_threads(tmp.path());
        let open = Arc::new(AtomicBool::new(false));
        let gate = open.clone();
        store.sync_inline_when(Arc::new(move || gate.load(Ordering::SeqCst)));
        let caller = std::thread::current().name().unwrap_or("").to_owned();
        assert_ne!(caller, "raft-log-sync");

        append_synced(&mut store, 1..=3).await;
        syncer_caught_up(&store).await;
        open.store(true, Ordering::SeqCst);
        // An fsync slower than INLINE_SYNC_SLOWEST (the disk busy with other tests) sends
        // the next append to the syncer, which the test after this one covers: here each
        // gated append starts from a fast last sync, whatever the disk did.
        forget_slow_sync(&store);
        append_synced(&mut store, 4..=6).await;
        forget_slow_sync(&store);
        append_synced(&mut store, 7..=9).await;
        open.store(false, Ordering::SeqCst);
        append_synced(&mut store, 10..=12).await;
        assert_eq!(
            *threads.lock().unwrap(),
            [
                "raft-log-sync",
                caller.as_str(),
                caller.as_str(),
                "raft-log-sync"
            ]
        );
        let entries = store.try_get_log_entries(1..=12).await.unwrap();
        assert!(entries.iter().map(|e| e.log_id.index).eq(1..=12));
    }

    fn forget_slow_sync(store: &LogStore) {
        store.inner.syncs.last_slow.store(false, Ordering::SeqCst);
    }

    /// Waits until the syncer has counted its last waiters done: it reports them flushed
    /// first and uncounts them just after, so an append right behind may still find
    /// them pending.
    async fn syncer_caught_up(store: &LogStore) {
        for _ in 0..1000 {
            if store.inner.syncs.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the syncer still counts a sync pending after 5 s");
    }

    #[tokio::test]
    async fn an_append_behind_a_pending_sync_or_after_a_slow_one_leaves_it_to_the_syncer() {
        use openraft::type_config::TypeConfigExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let (mut store, threads) = log_naming_sync_threads(tmp.path());
        store.sync_inline_when(Arc::new(|| true));

        // A sync still pending: reporting this append flushed first would report the
        // appends out of order, so it queues behind.
        store.inner.syncs.pending.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = TypeConfig::oneshot();
        store
            .append([entry(1)], IOFlushed::signal(tx))
            .await
            .unwrap();
        rx.await.unwrap().unwrap();
        store.inner.syncs.pending.fetch_sub(1, Ordering::SeqCst);
        assert_eq!(*threads.lock().unwrap(), ["raft-log-sync"]);
        syncer_caught_up(&store).await;

        // The last fsync was slow: the disk may be in trouble, so the syncer keeps the
        // syncs until one is fast again.
        store.inner.syncs.last_slow.store(true, Ordering::SeqCst);
        append_synced(&mut store, 2..=2).await;
        assert_eq!(threads.lock().unwrap().len(), 2);
        assert_eq!(threads.lock().unwrap()[1], "raft-log-sync");
        // Once a sync is fast again, appends sync where they are.
        syncer_caught_up(&store).await;
        store.inner.syncs.last_slow.store(false, Ordering::SeqCst);
        append_synced(&mut store, 3..=3).await;
        assert_ne!(threads.lock().unwrap()[2], "raft-log-sync");
    }
}
