//! The state machine's RocksDB: its column families, how it is opened, and the two ways
//! it is read.
//!
//! Readers go through [`Reader`], so the same MVCC code serves two callers:
//! * a client read, through a [`SnapshotReader`] (one RocksDB snapshot: the data and the
//!   revision counters it returns always belong to the same applied batch);
//! * apply, through a [`BatchView`], which layers the batch's uncommitted writes over the
//!   database so that every command in a batch sees the commands before it, and which
//!   commits them all as one `WriteBatch` together with the applied log id.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options,
    ReadOptions, ReadTier, WriteBatch,
};

use vane_proto::mvccpb::Event;

use crate::error::{Result, StoreError};

/// Column families of the state machine. The order is the snapshot stream's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Cf {
    /// `StateMachineMeta`: applied log id, membership, revision counters, log time.
    Meta,
    /// Current value of every live key.
    Kv,
    /// Every retained version of every key (see `mvcc::keys`).
    KvHistory,
    /// The key changed at each revision, for watch replay.
    Revisions,
    /// Granted leases.
    Leases,
    /// `lease id ++ key` for every key attached to a lease.
    LeaseKeys,
    /// Exactly-once client sessions.
    Sessions,
    /// `session id ++ sequence`: remembered results of a session's requests.
    SessionResults,
    /// `AuthState`: whether auth is on, the auth revision, the token signing key.
    Auth,
    /// Users by name (`StoredUser`: roles and the password's hash).
    AuthUsers,
    /// Roles by name (`authpb.Role`: the key ranges they may read or write).
    AuthRoles,
    /// Namespaces by name (`vane.v1.Namespace`).
    Namespaces,
    /// `prefix` → namespace name: which namespace governs a key.
    NamespacePrefixes,
    /// Change requests by id (`vane.v1.ChangeRequest`, id as 8 big-endian bytes).
    Changes,
    /// The audit chain by sequence number (`vane.v1.AuditRecord`); never compacted.
    Audit,
}

impl Cf {
    pub(crate) const ALL: [Cf; 15] = [
        Cf::Meta,
        Cf::Kv,
        Cf::KvHistory,
        Cf::Revisions,
        Cf::Leases,
        Cf::LeaseKeys,
        Cf::Sessions,
        Cf::SessionResults,
        Cf::Auth,
        Cf::AuthUsers,
        Cf::AuthRoles,
        Cf::Namespaces,
        Cf::NamespacePrefixes,
        Cf::Changes,
        Cf::Audit,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Cf::Meta => "meta",
            Cf::Kv => "kv",
            Cf::KvHistory => "kv_history",
            Cf::Revisions => "revisions",
            Cf::Leases => "leases",
            Cf::LeaseKeys => "lease_keys",
            Cf::Sessions => "sessions",
            Cf::SessionResults => "session_results",
            Cf::Auth => "auth",
            Cf::AuthUsers => "auth_users",
            Cf::AuthRoles => "auth_roles",
            Cf::Namespaces => "namespaces",
            Cf::NamespacePrefixes => "namespace_prefixes",
            Cf::Changes => "changes",
            Cf::Audit => "audit",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Cf> {
        Cf::ALL.into_iter().find(|cf| cf.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Whether the family holds settings: auth and namespace records, a handful of keys
    /// that every command of a batch may read (the auth state first of all) and that
    /// almost no command writes. A [`BatchView`] keeps what it read of them.
    fn holds_settings(self) -> bool {
        matches!(
            self,
            Cf::Auth | Cf::AuthUsers | Cf::AuthRoles | Cf::Namespaces | Cf::NamespacePrefixes
        )
    }
}

/// What a [`BatchView`] read of the settings families: per family (by index), the value
/// the database held at each key read (`None`: nothing).
type SettingsRead = [HashMap<Vec<u8>, Option<Vec<u8>>>; Cf::ALL.len()];

/// Block cache shared by every column family of one state machine database.
const BLOCK_CACHE_BYTES: usize = 32 << 20;
/// Memtables of all column families together, before RocksDB flushes the largest. Left
/// at RocksDB's defaults (64 MiB per family, with several families written per put) a
/// member held over 100 MiB of memtables after 130,000 puts, most of its RSS. Smaller
/// is not worth it: at 8 MiB a member held about 4 MiB less after 130,000 puts, but each
/// wrote 30% more to disk (258 rather than 198 MiB) and spent 18 rather than 13 µs of CPU
/// per put in flushes and compactions, measured side by side.
const MEMTABLES_BYTES_MAX: usize = 12 << 20;
/// One column family's memtable. Every snapshot flushes them all anyway (a checkpoint
/// flushes first), so between snapshots (10,000 entries by default) they hold what those
/// entries wrote: 7.2 MiB with 256-byte values at the benchmark's point after 130,000
/// puts. At 4 MiB the fullest families flush once in between, and that was 4.6 MiB.
const MEMTABLE_BYTES: usize = 4 << 20;
/// Sorted runs of the history family that start a compaction (RocksDB's default is 4).
///
/// History keys are a key then a revision, so puts to random keys land all over the
/// family, and each revision is written once. Under leveled compaction each
/// compaction of new files rewrote nearly everything below them, more as the family
/// grew: puts per second fell and p99 latency rose the longer a cluster ran. The family
/// therefore uses universal compaction, which merges sorted runs of similar size, so each
/// revision is rewritten a logarithmic number of times rather than once per compaction
/// while it lives. Measured side by side, three members, 64 clients over 100,000 keys,
/// five 20 s windows, three pairs: the history's compactions on a follower read 120 / 130
/// / 138 MB against 277 / 407 / 338 MB; the last window did 7,624 / 9,035 / 8,494 puts/s
/// against 7,130 / 8,264 / 7,215, with p99 20.8 / 17.9 / 21.3 ms against 33.3 / 27.1 /
/// 29.9. (The trigger of 8 rather than 4 was measured under leveled compaction, 13,365 /
/// 13,000 puts/s with 4 and 14,007 / 13,627 with 8, 30 s runs.) A data directory written
/// under leveled compaction opens as it is, and the other way round.
///
/// What it costs: reads of old revisions (and watchers catching up from disk) merge up to
/// this many runs plus a few larger ones, and a merge of the largest runs needs room for a
/// second copy of them while it runs. Reads of current values do not touch this family.
const HISTORY_L0_FILES_COMPACTION_TRIGGER: i32 = 8;
/// How the state machine's table files are compressed: those of its last level only, with
/// LZ4. Flushes and compactions into upper levels write them uncompressed.
///
/// A flushed file lives a few seconds before a compaction merges it down, and under writes
/// a member flushes every family at every snapshot, so compressing flushes spent CPU on
/// files about to be rewritten. The last level holds nearly all the data and is where
/// compression saves disk, as TiKV also compresses only its lower levels. Measured side by
/// side with LZ4 on every file (three members and the load generator on two cores, 256
/// clients, 8 s, two pairs): flushes took 6.36 / 6.34 rather than 8.57 / 9.04 µs of CPU
/// per put (summed over the members), of about 88 in all, and the cluster did 16,613 /
/// 17,325 rather than 16,056 / 16,640 puts/s. The data directories were 18 MB (9%) larger
/// right after the run, while the new files waited for their compaction.
const BOTTOMMOST_COMPRESSION: rocksdb::DBCompressionType = rocksdb::DBCompressionType::Lz4;
/// Share of a current-version memtable given to its bloom filter.
const MEMTABLE_BLOOM_RATIO: f64 = 0.1;

/// Most bytes per second that one database's flushes and compactions write, unless
/// [`set_background_write_bytes_per_sec`] (`vaned --backend-write-bytes-per-sec`) says
/// otherwise.
///
/// Every member writes its table files to the disk that holds its Raft log, and a log
/// fsync waits for the disk to persist whatever went before it, table files included.
/// Unpaced, a flush wrote its megabytes in one burst (a snapshot flushes every family at
/// once, and all members reach a snapshot at the same index), and the fsyncs behind it
/// took 6–50 ms: every put in flight waited, and those bursts made the tail of put
/// latency. Paced, a burst spreads over a few hundred milliseconds in small writes that
/// the disk persists as it goes. Measured side by side (three members and the load
/// generator on two cores and one disk, 64 clients, 10 s runs, three pairs): put p99
/// 13.7 / 13.6 / 12.7 ms against 16.8 / 17.2 / 15.7 ms unpaced, p99.9 19.0 / 21.3 / 20.8
/// against 34.0 / 32.1 / 32.7, fsyncs over 6.4 ms 17–20 / 9–12 / 10–11 per member against
/// 25–28 / 21–23 / 17–24, and 11.1 / 11.4 / 12.7 k puts/s against 10.8 / 11.0 / 11.5 k.
/// 40 MiB/s did as well; an auto-tuned limiter (RocksDB's, up to 200 MiB/s) started too
/// low for a sudden load, and memtables filled faster than it let them flush: p99.9 of
/// 50–340 ms.
///
/// The bound is far above what a configuration store writes: at 16,000 puts/s of 256
/// bytes (where two cores saturate) the state machine's flushes and compactions write
/// about 12 MB/s. A store written faster than the bound allows for long would see
/// RocksDB slow its writes down once the memtables are full; its operator raises the
/// bound, or lifts it.
pub const BACKGROUND_WRITE_BYTES_PER_SEC_DEFAULT: u64 = 64 << 20;

/// The pacing in force for the databases this process opens from now on: what `vaned`'s
/// `--backend-write-bytes-per-sec` sets. Process-wide, as RocksDB's background threads
/// are, so that every database a member opens (its Raft log, its state machine, one
/// installed from a snapshot) is paced alike without the setting being carried to each.
static BACKGROUND_WRITE_BYTES_PER_SEC: AtomicU64 =
    AtomicU64::new(BACKGROUND_WRITE_BYTES_PER_SEC_DEFAULT);

/// Sets the most bytes per second that each database opened from now on writes in
/// flushes and compactions (see [`BACKGROUND_WRITE_BYTES_PER_SEC_DEFAULT`]); 0 leaves
/// them unpaced. Called once, before a member opens its stores.
pub fn set_background_write_bytes_per_sec(bytes_per_sec: u64) {
    BACKGROUND_WRITE_BYTES_PER_SEC.store(bytes_per_sec, Ordering::Relaxed);
}

/// How often the pacing of [`BACKGROUND_WRITE_BYTES_PER_SEC_DEFAULT`] hands out bytes:
/// small grants, so a flush writes in small steps rather than in bursts of 100 ms' worth
/// (RocksDB's default period).
const BACKGROUND_WRITE_REFILL_MICROS: i64 = 5_000;
/// How often the pacing serves a waiting flush before a waiting compaction, one time in
/// this many the other way round: RocksDB's default, kept.
const BACKGROUND_WRITE_FAIRNESS: i32 = 10;
/// A table file being written is synced to disk every this many bytes, rather than all
/// at once when it is finished, for the same reason.
const BACKGROUND_SYNC_BYTES: u64 = 256 << 10;

/// Paces the flushes and compactions of a database opened with `options` (see
/// [`BACKGROUND_WRITE_BYTES_PER_SEC_DEFAULT`]). Both of a member's databases use it: the
/// state machine's and the Raft log's, whose entries are flushed to table files too.
pub(crate) fn pace_background_writes(options: &mut Options) {
    let bytes_per_sec = BACKGROUND_WRITE_BYTES_PER_SEC.load(Ordering::Relaxed);
    if bytes_per_sec > 0 {
        options.set_ratelimiter(
            i64::try_from(bytes_per_sec).unwrap_or(i64::MAX),
            BACKGROUND_WRITE_REFILL_MICROS,
            BACKGROUND_WRITE_FAIRNESS,
        );
    }
    options.set_bytes_per_sync(BACKGROUND_SYNC_BYTES);
}

/// Memory RocksDB holds for one database, as it estimates it: what an operator reads on
/// `/metrics` to see where a member's memory goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageMemory {
    /// Memtables, active and not yet flushed, of every column family.
    pub memtables_bytes: u64,
    /// Index and filter blocks held by open table files.
    pub table_readers_bytes: u64,
    /// Block cache in use: the one cache the column families share, or the sum of their
    /// own caches.
    pub block_cache_bytes: u64,
}

/// RocksDB's memory estimates for `db`, summed over the column families `names`. With
/// `shared_block_cache` the families share one block cache, counted once; otherwise each
/// has its own (RocksDB's default). A property RocksDB cannot give counts as 0: these are
/// gauges, not accounting.
pub(crate) fn storage_memory(db: &DB, names: &[&str], shared_block_cache: bool) -> StorageMemory {
    let property = |name: &str, property: &str| {
        db.cf_handle(name)
            .and_then(|cf| db.property_int_value_cf(cf, property).ok().flatten())
            .unwrap_or(0)
    };
    let sum = |p: &str| names.iter().map(|name| property(name, p)).sum();
    const BLOCK_CACHE: &str = "rocksdb.block-cache-usage";
    StorageMemory {
        memtables_bytes: sum("rocksdb.cur-size-all-mem-tables"),
        table_readers_bytes: sum("rocksdb.estimate-table-readers-mem"),
        block_cache_bytes: if shared_block_cache {
            names.first().map_or(0, |name| property(name, BLOCK_CACHE))
        } else {
            sum(BLOCK_CACHE)
        },
    }
}

/// Opens (creating if needed) a state machine database with all its column families.
///
/// Nothing writes to it through RocksDB's write-ahead log (see [`write_options`]), so
/// what is on disk is what the last flush wrote. Flushes are atomic across the column
/// families: every flush persists all of them at one point between two apply batches,
/// and the applied log id in `Meta` always matches the data beside it.
pub(crate) fn open_state_machine_db(path: &Path) -> Result<Arc<DB>> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_atomic_flush(true);
    options.set_keep_log_file_num(4);
    options.set_db_write_buffer_size(MEMTABLES_BYTES_MAX);
    pace_background_writes(&mut options);
    let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let descriptors = Cf::ALL.iter().map(|cf| {
        let mut cf_options = Options::default();
        cf_options.set_write_buffer_size(MEMTABLE_BYTES);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        cf_options.set_block_based_table_factory(&table);
        cf_options.set_compression_type(rocksdb::DBCompressionType::None);
        cf_options.set_bottommost_compression_type(BOTTOMMOST_COMPRESSION);
        if *cf == Cf::KvHistory {
            cf_options
                .set_level_zero_file_num_compaction_trigger(HISTORY_L0_FILES_COMPACTION_TRIGGER);
            cf_options.set_compaction_style(rocksdb::DBCompactionStyle::Universal);
        }
        if *cf == Cf::Kv {
            // Every put looks up the key's current version; a bloom filter on each
            // memtable lets the lookup skip the memtables that do not hold the key.
            cf_options.set_memtable_whole_key_filtering(true);
            cf_options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
        }
        ColumnFamilyDescriptor::new(cf.name(), cf_options)
    });
    let db = DB::open_cf_descriptors(&options, path, descriptors)?;
    Ok(Arc::new(db))
}

/// How everything writes to the state machine: without RocksDB's write-ahead log.
///
/// The Raft log is the write-ahead log of the state machine: every applied entry is in it,
/// synced, and openraft applies again at start whatever the state machine has lost (from
/// its applied log id to the committed one). A second WAL cost each batch a write and the
/// kernel its writeback, for nothing a restart needs. What makes the log safe to purge is
/// the flush before a snapshot ([`crate::state_machine::StateMachine::build_snapshot`]): the
/// log is purged only up to a snapshot, and the live store is flushed past it by then. A
/// snapshot being installed is flushed before its generation becomes the live one.
pub(crate) fn write_options() -> rocksdb::WriteOptions {
    let mut options = rocksdb::WriteOptions::default();
    options.disable_wal(true);
    options
}

/// Flushes the memtables of every column family of a state machine database, as one
/// atomic flush. A flush of some families alone would persist them at a later batch than
/// the others (and than the applied log id in `Meta`), and a restart would then apply
/// again, over the later ones, entries they already hold.
pub(crate) fn flush_all(db: &DB) -> Result<()> {
    let handles = Cf::ALL
        .iter()
        .map(|cf| handle(db, *cf))
        .collect::<Result<Vec<_>>>()?;
    db.flush_cfs_opt(&handles, &rocksdb::FlushOptions::default())?;
    Ok(())
}

/// Opens a copy of a state machine database (a checkpoint) for reading only. Every table
/// file is opened here (RocksDB's default of no limit on open files), so the copy stays
/// readable even if its directory is removed while it is being read.
pub(crate) fn open_state_machine_read_only(path: &Path) -> Result<DB> {
    let options = Options::default();
    Ok(DB::open_cf_for_read_only(
        &options,
        path,
        Cf::ALL.iter().map(|cf| cf.name()),
        false,
    )?)
}

/// Opens only the `Meta` family of a state machine database (a checkpoint) for reading:
/// all a snapshot's header needs, read for every snapshot built and for the checkpoint
/// kept at start. Opening every family (as [`open_state_machine_read_only`] does) made
/// RocksDB start fifteen threads per family to open table files in parallel, 240 thread
/// starts per snapshot, and read the index and filter blocks of every table file in the
/// checkpoint.
pub(crate) fn open_meta_read_only(path: &Path) -> Result<DB> {
    let mut options = Options::default();
    options.set_max_file_opening_threads(1);
    Ok(DB::open_cf_for_read_only(
        &options,
        path,
        [Cf::Meta.name()],
        false,
    )?)
}

fn handle(db: &DB, cf: Cf) -> Result<&rocksdb::ColumnFamily> {
    db.cf_handle(cf.name())
        .ok_or_else(|| StoreError::Corrupt(format!("column family {} is missing", cf.name())))
}

/// Called for each record of a scan with its key and value; returns `false` to stop.
pub(crate) type Visitor<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<bool>;

/// Read access to the state machine, whatever it is layered on.
pub(crate) trait Reader {
    /// The value at `key`, if any.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Hands the value at `key`, if any, to `visit` without a copy where the reader holds
    /// it in memory: what a caller that only decodes the value uses.
    fn get_with(
        &self,
        cf: Cf,
        key: &[u8],
        visit: &mut dyn FnMut(Option<&[u8]>) -> Result<()>,
    ) -> Result<()> {
        visit(self.get(cf, key)?.as_deref())
    }

    /// Visits the records with `from <= key < to` (no upper bound when `to` is `None`) in
    /// ascending order until `visit` returns `false`.
    fn scan(&self, cf: Cf, from: &[u8], to: Option<&[u8]>, visit: Visitor<'_>) -> Result<()>;
}

/// A consistent point-in-time view of the state machine, for client reads and snapshots.
pub(crate) struct SnapshotReader<'a> {
    db: &'a DB,
    snapshot: rocksdb::Snapshot<'a>,
}

impl<'a> SnapshotReader<'a> {
    pub(crate) fn new(db: &'a DB) -> Self {
        SnapshotReader {
            db,
            snapshot: db.snapshot(),
        }
    }
}

fn read_options(to: Option<&[u8]>) -> ReadOptions {
    let mut opts = ReadOptions::default();
    if let Some(to) = to {
        opts.set_iterate_upper_bound(to.to_vec());
    }
    opts
}

fn drive(
    iter: impl Iterator<Item = std::result::Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>>,
    visit: Visitor<'_>,
) -> Result<()> {
    for item in iter {
        let (key, value) = item?;
        if !visit(&key, &value)? {
            break;
        }
    }
    Ok(())
}

impl Reader for SnapshotReader<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.snapshot.get_cf(handle(self.db, cf)?, key)?)
    }

    fn scan(&self, cf: Cf, from: &[u8], to: Option<&[u8]>, visit: Visitor<'_>) -> Result<()> {
        let iter = self.snapshot.iterator_cf_opt(
            handle(self.db, cf)?,
            read_options(to),
            IteratorMode::From(from, Direction::Forward),
        );
        drive(iter, visit)
    }
}

/// A [`SnapshotReader`] that never waits on the disk, for reads served on an async
/// thread: memtables and the block cache answer, and a read that would load a block from
/// a table file fails with [`StoreError::NotInMemory`] instead, as does one that goes
/// past `records_max` records (so that a large range cannot hold the thread).
/// [`MemoryReader::outcome`] turns those into "ask a thread that may block".
pub(crate) struct MemoryReader<'a> {
    db: &'a DB,
    snapshot: rocksdb::Snapshot<'a>,
    records_left: Cell<usize>,
    declined: Cell<bool>,
}

impl<'a> MemoryReader<'a> {
    pub(crate) fn new(db: &'a DB, records_max: usize) -> Self {
        MemoryReader {
            db,
            snapshot: db.snapshot(),
            records_left: Cell::new(records_max),
            declined: Cell::new(false),
        }
    }

    /// What a read through this reader came to: `Ok(None)` when it needed the disk or
    /// more records than allowed, whatever error that became on its way out.
    pub(crate) fn outcome<T>(&self, result: Result<T>) -> Result<Option<T>> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(_) if self.declined.get() => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn decline(&self) -> StoreError {
        self.declined.set(true);
        StoreError::NotInMemory
    }

    /// Counts one record read, declining once there are no more to read.
    fn spend(&self) -> Result<()> {
        match self.records_left.get().checked_sub(1) {
            Some(left) => {
                self.records_left.set(left);
                Ok(())
            }
            None => Err(self.decline()),
        }
    }

    fn checked(&self, error: rocksdb::Error) -> StoreError {
        if error.kind() == rocksdb::ErrorKind::Incomplete {
            self.decline()
        } else {
            error.into()
        }
    }
}

fn memory_only(to: Option<&[u8]>) -> ReadOptions {
    let mut opts = read_options(to);
    opts.set_read_tier(ReadTier::BlockCache);
    opts
}

impl Reader for MemoryReader<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.spend()?;
        self.snapshot
            .get_cf_opt(handle(self.db, cf)?, key, memory_only(None))
            .map_err(|e| self.checked(e))
    }

    fn scan(&self, cf: Cf, from: &[u8], to: Option<&[u8]>, visit: Visitor<'_>) -> Result<()> {
        let iter = self.snapshot.iterator_cf_opt(
            handle(self.db, cf)?,
            memory_only(to),
            IteratorMode::From(from, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(|e| self.checked(e))?;
            self.spend()?;
            if !visit(&key, &value)? {
                break;
            }
        }
        Ok(())
    }
}

/// Reads straight from the live database. Only apply writes to it, so within apply this
/// is as consistent as a snapshot, without the cost of taking one per batch.
struct LiveReader<'a>(&'a DB);

impl Reader for LiveReader<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get_cf(handle(self.0, cf)?, key)?)
    }

    fn scan(&self, cf: Cf, from: &[u8], to: Option<&[u8]>, visit: Visitor<'_>) -> Result<()> {
        let iter = self.0.iterator_cf_opt(
            handle(self.0, cf)?,
            read_options(to),
            IteratorMode::From(from, Direction::Forward),
        );
        drive(iter, visit)
    }
}

/// Most bytes (keys, values and a per-entry overhead) the [`CurrentCache`] holds.
const CURRENT_CACHE_BYTES_MAX: usize = 8 << 20;
/// What one cached entry costs beyond its key and value: map slot, allocations.
const CURRENT_CACHE_ENTRY_OVERHEAD: usize = 64;

/// The current version of keys (the `Kv` family) as apply last read or wrote them. Every
/// put and delete first looks up the key's current version; a configuration store
/// rewrites the same keys over and over, so apply keeps what it saw here instead of asking
/// RocksDB again. Apply is its only user and the only writer of `Kv`, so what it holds is
/// what the database holds. A new generation of the database (a snapshot installed) comes
/// with a new, empty cache.
///
/// Client reads of one key's current version are served from it too ([`CurrentCache::read`]),
/// with the revision it stands for: each commit moves that revision and the entries
/// together, under one lock, before the new revision is published to readers.
///
/// When it is full it is emptied and starts over: simpler than an LRU, and for the key
/// sets of a configuration store it is rarely full.
#[derive(Default)]
pub(crate) struct CurrentCache {
    entries: Mutex<CurrentEntries>,
}

/// The state the current-version cache stands for: what a read served from it answers
/// at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CachedAt {
    /// The store's revision after the last commit.
    pub(crate) revision: i64,
    /// The compacted revision then.
    pub(crate) compacted: i64,
    /// Whether auth was on then (reads must then be checked against the user's roles).
    pub(crate) auth_enabled: bool,
}

#[derive(Default)]
struct CurrentEntries {
    /// `None`: the key is known not to exist.
    map: HashMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
    /// Unknown until the first commit through the cache.
    at: Option<CachedAt>,
}

fn cached_bytes(key: &[u8], value: &Option<Vec<u8>>) -> usize {
    key.len() + value.as_ref().map_or(0, Vec::len) + CURRENT_CACHE_ENTRY_OVERHEAD
}

impl CurrentEntries {
    fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let added = cached_bytes(&key, &value);
        if let Some(old) = self.map.get(&key) {
            self.bytes -= cached_bytes(&key, old);
        }
        if self.bytes + added > CURRENT_CACHE_BYTES_MAX {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += added;
        self.map.insert(key, value);
    }
}

impl CurrentCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CurrentEntries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached current version of `key`: `None` when not cached, `Some(None)` when the
    /// key is known not to exist.
    fn get(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.lock().map.get(key).cloned()
    }

    /// [`CurrentCache::get`] handing the cached version to `visit` in place: `None` (and
    /// `visit` not called) when `key` is not cached.
    fn get_with(
        &self,
        key: &[u8],
        visit: &mut dyn FnMut(Option<&[u8]>) -> Result<()>,
    ) -> Option<Result<()>> {
        let entries = self.lock();
        let value = entries.map.get(key)?;
        Some(visit(value.as_deref()))
    }

    fn insert(&self, key: &[u8], value: Option<Vec<u8>>) {
        self.lock().insert(key.to_vec(), value);
    }

    /// The current version of `key` (`None` when it does not exist) and the state that is
    /// the version of; `None` when the key is not cached or no commit has been seen yet.
    pub(crate) fn read(&self, key: &[u8]) -> Option<(CachedAt, Option<Vec<u8>>)> {
        let entries = self.lock();
        let at = entries.at?;
        entries.map.get(key).map(|value| (at, value.clone()))
    }
}

/// A reader that knows one key's current version and nothing else: what a read served
/// from the [`CurrentCache`] hands to the range code. Anything else it is asked for is an
/// error, not an empty answer.
pub(crate) struct CachedKey<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: Option<Vec<u8>>,
}

impl Reader for CachedKey<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if cf == Cf::Kv && key == self.key {
            return Ok(self.value.clone());
        }
        Err(StoreError::Corrupt(format!(
            "a cached read of one key was asked for another record ({})",
            cf.name()
        )))
    }

    fn scan(&self, cf: Cf, _from: &[u8], _to: Option<&[u8]>, _visit: Visitor<'_>) -> Result<()> {
        Err(StoreError::Corrupt(format!(
            "a cached read of one key was asked to scan {}",
            cf.name()
        )))
    }
}

/// A write that a savepoint can undo: the key and what the overlay held before.
type UndoRecord = (Cf, Vec<u8>, Option<Option<Vec<u8>>>);

/// The uncommitted writes of one apply batch, readable through [`Reader`].
///
/// Writes land in an ordered overlay (`None` marks a delete) that reads merge over the
/// database; an undo log lets a command that fails half-way be rolled back to its
/// savepoint, so a refused command leaves nothing behind. Range deletes are not visible
/// to reads: they only ever drop history below the compacted revision, which no read may
/// ask for.
pub(crate) struct BatchView<'a> {
    base: LiveReader<'a>,
    db: &'a DB,
    current: Option<&'a CurrentCache>,
    overlay: [BTreeMap<Vec<u8>, Option<Vec<u8>>>; Cf::ALL.len()],
    undo: Vec<UndoRecord>,
    range_deletes: Vec<(Cf, Vec<u8>, Vec<u8>)>,
    /// What the database held at the settings keys read so far (see [`Cf::holds_settings`]).
    /// Apply is the only writer of the database and writes a batch only once it is
    /// complete, so within a batch these never change under the view; its own writes go to
    /// the overlay, which reads consult first. Each command checks whether auth is on: with
    /// this, the batch asks RocksDB once rather than once per command.
    settings: RefCell<SettingsRead>,
    // The watch events of the writes in the view, in revision order, with their previous
    // values: handed to the watch cache after commit so it never reads them back.
    events: Vec<Event>,
}

/// Where a [`BatchView`] can be rolled back to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Savepoint {
    undo_len: usize,
    range_deletes_len: usize,
    events_len: usize,
}

impl<'a> BatchView<'a> {
    pub(crate) fn new(db: &'a DB) -> Self {
        BatchView {
            base: LiveReader(db),
            db,
            current: None,
            overlay: Default::default(),
            undo: Vec::new(),
            range_deletes: Vec::new(),
            settings: RefCell::default(),
            events: Vec::new(),
        }
    }

    /// A view whose reads of current versions go through `current`, and whose commit
    /// ([`BatchView::committed`]) updates it.
    pub(crate) fn with_current_cache(db: &'a DB, current: &'a CurrentCache) -> Self {
        BatchView {
            current: Some(current),
            ..BatchView::new(db)
        }
    }

    /// Tells the current-version cache what this view's batch wrote, and the state the
    /// database is in now (`at`): call once the batch is in the database, never before (a
    /// failed write must leave the cache as it was), and before readers learn of `at`.
    /// The view is spent: its current versions move into the cache rather than being
    /// copied there.
    pub(crate) fn committed(mut self, at: CachedAt) {
        let Some(current) = self.current else { return };
        let written = std::mem::take(&mut self.overlay[Cf::Kv.index()]);
        let mut entries = current.lock();
        entries.at = Some(at);
        if self.range_deletes.iter().any(|(cf, _, _)| *cf == Cf::Kv) {
            // Not made today; should one ever be, forget rather than work out what it hit.
            entries.map.clear();
            entries.bytes = 0;
        }
        for (key, value) in written {
            entries.insert(key, value);
        }
    }

    fn record(&mut self, cf: Cf, key: &[u8], value: Option<Vec<u8>>) {
        let previous = self.overlay[cf.index()].insert(key.to_vec(), value);
        self.undo.push((cf, key.to_vec(), previous));
    }

    pub(crate) fn put(&mut self, cf: Cf, key: &[u8], value: Vec<u8>) {
        self.record(cf, key, Some(value));
    }

    pub(crate) fn delete(&mut self, cf: Cf, key: &[u8]) {
        self.record(cf, key, None);
    }

    /// Deletes `[from, to)` at commit. Reads in this batch still see those records.
    pub(crate) fn delete_range_at_commit(&mut self, cf: Cf, from: Vec<u8>, to: Vec<u8>) {
        self.range_deletes.push((cf, from, to));
    }

    pub(crate) fn savepoint(&self) -> Savepoint {
        Savepoint {
            undo_len: self.undo.len(),
            range_deletes_len: self.range_deletes.len(),
            events_len: self.events.len(),
        }
    }

    pub(crate) fn rollback_to(&mut self, savepoint: Savepoint) {
        while self.undo.len() > savepoint.undo_len {
            let Some((cf, key, previous)) = self.undo.pop() else {
                break;
            };
            match previous {
                Some(value) => {
                    self.overlay[cf.index()].insert(key, value);
                }
                None => {
                    self.overlay[cf.index()].remove(&key);
                }
            }
        }
        self.range_deletes.truncate(savepoint.range_deletes_len);
        self.events.truncate(savepoint.events_len);
    }

    /// Notes the watch event of a write made in this view (rolled back with it).
    pub(crate) fn push_event(&mut self, event: Event) {
        self.events.push(event);
    }

    /// The watch events of everything written, in order, leaving none behind.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Everything written, as one RocksDB batch. Range deletes go last: they only drop
    /// records that are obsolete at the end of the batch (history below a compaction,
    /// results a client acknowledged), including any this batch wrote itself.
    pub(crate) fn write_batch(&self) -> Result<WriteBatch> {
        let mut batch = WriteBatch::default();
        for cf in Cf::ALL {
            #[cfg(feature = "planted-bugs")]
            if crate::planted::leaves_out(cf) {
                continue;
            }
            let cf_handle = handle(self.db, cf)?;
            for (key, value) in &self.overlay[cf.index()] {
                match value {
                    Some(value) => batch.put_cf(cf_handle, key, value),
                    None => batch.delete_cf(cf_handle, key),
                }
            }
        }
        for (cf, from, to) in &self.range_deletes {
            #[cfg(feature = "planted-bugs")]
            if crate::planted::leaves_out(*cf) {
                continue;
            }
            batch.delete_range_cf(handle(self.db, *cf)?, from, to);
        }
        Ok(batch)
    }
}

impl Reader for BatchView<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(value) = self.overlay[cf.index()].get(key) {
            return Ok(value.clone());
        }
        if cf.holds_settings() {
            if let Some(value) = self.settings.borrow()[cf.index()].get(key) {
                return Ok(value.clone());
            }
            let value = self.base.get(cf, key)?;
            self.settings.borrow_mut()[cf.index()].insert(key.to_vec(), value.clone());
            return Ok(value);
        }
        let current = self.current.filter(|_| cf == Cf::Kv);
        if let Some(cached) = current.and_then(|c| c.get(key)) {
            return Ok(cached);
        }
        let value = self.base.get(cf, key)?;
        if let Some(current) = current {
            // Not in the overlay, so this is the committed version: safe to keep.
            current.insert(key, value.clone());
        }
        Ok(value)
    }

    fn get_with(
        &self,
        cf: Cf,
        key: &[u8],
        visit: &mut dyn FnMut(Option<&[u8]>) -> Result<()>,
    ) -> Result<()> {
        if let Some(value) = self.overlay[cf.index()].get(key) {
            return visit(value.as_deref());
        }
        if cf == Cf::Kv
            && let Some(visited) = self.current.and_then(|c| c.get_with(key, visit))
        {
            return visited;
        }
        visit(self.get(cf, key)?.as_deref())
    }

    fn scan(&self, cf: Cf, from: &[u8], to: Option<&[u8]>, visit: Visitor<'_>) -> Result<()> {
        use std::ops::Bound;
        let upper = match to {
            Some(to) => Bound::Excluded(to.to_vec()),
            None => Bound::Unbounded,
        };
        let mut pending = self.overlay[cf.index()]
            .range::<Vec<u8>, _>((Bound::Included(from.to_vec()), upper))
            .peekable();
        let mut stopped = false;
        // Merge the database's records with the overlay's; on equal keys the overlay wins.
        self.base.scan(cf, from, to, &mut |key, value| {
            while let Some((overlay_key, overlay_value)) = pending.peek() {
                if overlay_key.as_slice() > key {
                    break;
                }
                let same = overlay_key.as_slice() == key;
                if let Some(v) = overlay_value
                    && !visit(overlay_key, v)?
                {
                    stopped = true;
                    return Ok(false);
                }
                pending.next();
                if same {
                    return Ok(true);
                }
            }
            if !visit(key, value)? {
                stopped = true;
                return Ok(false);
            }
            Ok(true)
        })?;
        if stopped {
            return Ok(());
        }
        for (key, value) in pending {
            if let Some(value) = value
                && !visit(key, value)?
            {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(reader: &dyn Reader, from: &[u8], to: Option<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        reader
            .scan(Cf::Kv, from, to, &mut |k, v| {
                out.push((k.to_vec(), v.to_vec()));
                Ok(true)
            })
            .unwrap();
        out
    }

    /// What RocksDB says, in the options it writes to a database's `LOG` when it opens
    /// it, of the rate limiter it was given.
    fn logged_rate_limiter(dir: &Path) -> String {
        let log = std::fs::read_to_string(dir.join("LOG")).unwrap();
        let line = log
            .lines()
            .find(|line| line.contains("Options.rate_limiter:"))
            .expect("RocksDB logs its options");
        line.rsplit(' ').next().unwrap_or_default().to_string()
    }

    #[test]
    fn background_writes_are_paced_unless_the_bound_is_zero() {
        let paced = tempfile::tempdir().unwrap();
        drop(open_state_machine_db(paced.path()).unwrap());
        assert_ne!(logged_rate_limiter(paced.path()), "(nil)");
        // Process-wide: set back at once; a database another test opens meanwhile is only
        // paced differently.
        set_background_write_bytes_per_sec(0);
        let unpaced = tempfile::tempdir().unwrap();
        let opened = open_state_machine_db(unpaced.path());
        set_background_write_bytes_per_sec(BACKGROUND_WRITE_BYTES_PER_SEC_DEFAULT);
        drop(opened.unwrap());
        assert_eq!(logged_rate_limiter(unpaced.path()), "(nil)");
    }

    #[test]
    fn overlay_merges_over_the_database_and_rolls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open_state_machine_db(tmp.path()).unwrap();
        let kv = db.cf_handle("kv").unwrap();
        for k in [b"a", b"c", b"e"] {
            db.put_cf(kv, k, b"db").unwrap();
        }
        let mut view = BatchView::new(&db);
        view.put(Cf::Kv, b"b", b"new".to_vec());
        view.delete(Cf::Kv, b"c");
        view.put(Cf::Kv, b"e", b"over".to_vec());
        view.put(Cf::Kv, b"f", b"tail".to_vec());
        let got = collect(&view, b"a", None);
        let expect: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"a".to_vec(), b"db".to_vec()),
            (b"b".to_vec(), b"new".to_vec()),
            (b"e".to_vec(), b"over".to_vec()),
            (b"f".to_vec(), b"tail".to_vec()),
        ];
        assert_eq!(got, expect);
        assert_eq!(collect(&view, b"b", Some(b"f")).len(), 2);

        let sp = view.savepoint();
        view.delete(Cf::Kv, b"a");
        view.put(Cf::Kv, b"b", b"again".to_vec());
        view.rollback_to(sp);
        assert_eq!(collect(&view, b"a", None), expect);

        let batch = view.write_batch().unwrap();
        db.write(batch).unwrap();
        let snap = SnapshotReader::new(&db);
        assert_eq!(collect(&snap, b"", None), expect);
    }

    #[test]
    fn storage_memory_counts_what_the_memtables_and_block_cache_hold() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open_state_machine_db(tmp.path()).unwrap();
        let names: Vec<&str> = Cf::ALL.iter().map(|cf| cf.name()).collect();
        let empty = storage_memory(&db, &names, true);
        let value = vec![7u8; 1 << 10];
        for cf in [Cf::Kv, Cf::KvHistory] {
            let handle = db.cf_handle(cf.name()).unwrap();
            for n in 0..1024u32 {
                db.put_cf(handle, n.to_be_bytes(), &value).unwrap();
            }
        }
        let written = storage_memory(&db, &names, true);
        // Two families, a mebibyte each: both counted.
        assert!(
            written.memtables_bytes >= empty.memtables_bytes + (2 << 20),
            "{empty:?} -> {written:?}"
        );
        // Reads from table files go through the block cache.
        db.flush_cf(db.cf_handle(Cf::Kv.name()).unwrap()).unwrap();
        for n in 0..1024u32 {
            db.get_cf(db.cf_handle(Cf::Kv.name()).unwrap(), n.to_be_bytes())
                .unwrap()
                .unwrap();
        }
        let read = storage_memory(&db, &names, true);
        assert!(read.block_cache_bytes >= 1 << 20, "{read:?}");
        assert!(read.table_readers_bytes > 0, "{read:?}");
        // Counted once, not once per family sharing it.
        let per_family = storage_memory(&db, &names, false);
        assert!(
            per_family.block_cache_bytes >= 2 * read.block_cache_bytes,
            "{per_family:?}"
        );
    }

    #[test]
    fn history_waits_for_more_flushed_files_than_current_values_before_compacting() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open_state_machine_db(tmp.path()).unwrap();
        let flushes = 5;
        for cf in [Cf::Kv, Cf::KvHistory] {
            let handle = db.cf_handle(cf.name()).unwrap();
            for flush in 0..flushes {
                for n in 0..100u32 {
                    db.put_cf(handle, (n * flushes + flush).to_be_bytes(), b"v")
                        .unwrap();
                }
                db.flush_cf(handle).unwrap();
            }
        }
        let mut options = rocksdb::WaitForCompactOptions::default();
        options.set_timeout(std::time::Duration::from_secs(30).as_micros() as u64);
        db.wait_for_compact(&options).unwrap();
        let level0 = |cf: Cf| {
            db.property_int_value_cf(
                db.cf_handle(cf.name()).unwrap(),
                "rocksdb.num-files-at-level0",
            )
            .unwrap()
            .unwrap()
        };
        // RocksDB's default of four files compacted the current values' flushes...
        assert!(level0(Cf::Kv) < flushes as u64, "{}", level0(Cf::Kv));
        // ...while the history's wait for more.
        assert_eq!(level0(Cf::KvHistory), flushes as u64);
    }

    #[test]
    fn history_is_compacted_universally_and_current_values_by_level() {
        let tmp = tempfile::tempdir().unwrap();
        let _db = open_state_machine_db(tmp.path()).unwrap();
        // RocksDB writes the options each family was opened with to an OPTIONS file.
        let options_file = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("OPTIONS-"))
            })
            .max()
            .expect("an OPTIONS file");
        let text = std::fs::read_to_string(options_file).unwrap();
        let style_of = |family: &str| {
            let section = text
                .split("[CFOptions \"")
                .find(|section| section.starts_with(&format!("{family}\"")))
                .unwrap_or_else(|| panic!("no section for {family}"));
            section
                .lines()
                .find_map(|line| line.trim().strip_prefix("compaction_style="))
                .unwrap_or_else(|| panic!("no compaction style for {family}"))
                .to_string()
        };
        assert_eq!(style_of(Cf::KvHistory.name()), "kCompactionStyleUniversal");
        assert_eq!(style_of(Cf::Kv.name()), "kCompactionStyleLevel");
    }

    #[test]
    fn flushed_files_are_written_uncompressed_and_the_last_level_compressed() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open_state_machine_db(tmp.path()).unwrap();
        // Values LZ4 shrinks to a fraction: 1 MiB written.
        let value = vec![b'v'; 1 << 10];
        for cf in [Cf::Kv, Cf::KvHistory] {
            let handle = db.cf_handle(cf.name()).unwrap();
            for n in 0..1024u32 {
                db.put_cf(handle, n.to_be_bytes(), &value).unwrap();
            }
            db.flush_cf(handle).unwrap();
        }
        let sizes = |cf: Cf| -> Vec<(i32, usize)> {
            db.live_files()
                .unwrap()
                .into_iter()
                .filter(|file| file.column_family_name == cf.name())
                .map(|file| (file.level, file.size))
                .collect()
        };
        for cf in [Cf::Kv, Cf::KvHistory] {
            let flushed = sizes(cf);
            assert_eq!(flushed.len(), 1, "{cf:?}: {flushed:?}");
            assert_eq!(flushed[0].0, 0, "{cf:?}: {flushed:?}");
            assert!(
                flushed[0].1 > 1 << 20,
                "{cf:?} flushed compressed: {flushed:?}"
            );

            let handle = db.cf_handle(cf.name()).unwrap();
            let mut options = rocksdb::CompactOptions::default();
            options.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
            db.compact_range_cf_opt(handle, None::<&[u8]>, None::<&[u8]>, &options);
            let compacted = sizes(cf);
            assert_eq!(compacted.len(), 1, "{cf:?}: {compacted:?}");
            assert!(compacted[0].0 > 0, "{cf:?}: {compacted:?}");
            assert!(
                compacted[0].1 < 256 << 10,
                "{cf:?} left uncompressed: {compacted:?}"
            );
        }
    }

    #[test]
    fn the_current_version_cache_learns_only_committed_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open_state_machine_db(tmp.path()).unwrap();
        let kv = db.cf_handle("kv").unwrap();
        db.put_cf(kv, b"a", b"db").unwrap();
        let cache = CurrentCache::default();

        let mut view = BatchView::with_current_cache(&db, &cache);
        assert_eq!(view.get(Cf::Kv, b"a").unwrap(), Some(b"db".to_vec()));
        assert_eq!(view.get(Cf::Kv, b"b").unwrap(), None);
        view.put(Cf::Kv, b"a", b"new".to_vec());
        let sp = view.savepoint();
        view.put(Cf::Kv, b"b", b"refused".to_vec());
        view.rollback_to(sp);
        assert_eq!(
            cache.get(b"a"),
            Some(Some(b"db".to_vec())),
            "not committed yet"
        );
        assert_eq!(
            cache.read(b"a"),
            None,
            "no commit seen: reads go to the database"
        );
        db.write(view.write_batch().unwrap()).unwrap();
        let at = CachedAt {
            revision: 7,
            compacted: 2,
            auth_enabled: false,
        };
        view.committed(at);
        assert_eq!(cache.get(b"a"), Some(Some(b"new".to_vec())));
        assert_eq!(cache.read(b"a"), Some((at, Some(b"new".to_vec()))));
        assert_eq!(
            cache.read(b"b"),
            Some((at, None)),
            "known not to exist at 7"
        );
        assert_eq!(cache.read(b"c"), None, "never looked up");
        assert_eq!(
            cache.get(b"b"),
            Some(None),
            "the rolled-back put left no trace"
        );

        // A batch that never commits teaches the cache nothing.
        let mut view = BatchView::with_current_cache(&db, &cache);
        view.delete(Cf::Kv, b"a");
        drop(view);
        // Later views answer from the cache: what RocksDB holds is not read again.
        db.put_cf(kv, b"a", b"behind the cache's back").unwrap();
        let view = BatchView::with_current_cache(&db, &cache);
        assert_eq!(view.get(Cf::Kv, b"a").unwrap(), Some(b"new".to_vec()));
    }

    #[test]
    fn a_full_current_version_cache_starts_over() {
        let mut entries = CurrentEntries::default();
        let value = vec![0u8; 1 << 20];
        let inserted = (CURRENT_CACHE_BYTES_MAX >> 20) + 2;
        for n in 0..inserted {
            entries.insert(n.to_string().into_bytes(), Some(value.clone()));
            assert!(entries.bytes <= CURRENT_CACHE_BYTES_MAX);
        }
        assert!(entries.map.len() < inserted / 2, "it never started over");
        // Replacing a key's version does not count it twice.
        let before = entries.bytes;
        entries.insert(b"x".to_vec(), None);
        entries.insert(b"x".to_vec(), None);
        assert_eq!(entries.bytes, before + cached_bytes(b"x", &None));
    }

    #[test]
    fn a_view_reads_each_setting_from_the_database_once() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open_state_machine_db(tmp.path()).unwrap();
        let auth = db.cf_handle(Cf::Auth.name()).unwrap();
        db.put_cf(auth, b"state", b"off").unwrap();
        let mut view = BatchView::new(&db);
        assert_eq!(view.get(Cf::Auth, b"state").unwrap(), Some(b"off".to_vec()));
        assert_eq!(view.get(Cf::Auth, b"absent").unwrap(), None);

        // Nothing but apply writes the database, and only after its batch; written behind
        // the view's back here, the change shows that the view answers from what it read.
        db.put_cf(auth, b"state", b"changed").unwrap();
        db.put_cf(auth, b"absent", b"now here").unwrap();
        assert_eq!(view.get(Cf::Auth, b"state").unwrap(), Some(b"off".to_vec()));
        assert_eq!(view.get(Cf::Auth, b"absent").unwrap(), None);

        // The view's own writes come first, and a rollback uncovers what it had read.
        let savepoint = view.savepoint();
        view.put(Cf::Auth, b"state", b"on".to_vec());
        assert_eq!(view.get(Cf::Auth, b"state").unwrap(), Some(b"on".to_vec()));
        view.rollback_to(savepoint);
        assert_eq!(view.get(Cf::Auth, b"state").unwrap(), Some(b"off".to_vec()));

        // Families other than the settings are read from the database every time.
        let kv = db.cf_handle(Cf::Kv.name()).unwrap();
        db.put_cf(kv, b"k", b"1").unwrap();
        assert_eq!(view.get(Cf::Kv, b"k").unwrap(), Some(b"1".to_vec()));
        db.put_cf(kv, b"k", b"2").unwrap();
        assert_eq!(view.get(Cf::Kv, b"k").unwrap(), Some(b"2".to_vec()));

        // A new view, as the next batch makes, reads the database again.
        let next = BatchView::new(&db);
        assert_eq!(
            next.get(Cf::Auth, b"state").unwrap(),
            Some(b"changed".to_vec())
        );
    }

    #[test]
    fn scan_stops_when_the_visitor_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open_state_machine_db(tmp.path()).unwrap();
        let mut view = BatchView::new(&db);
        for k in [b"a", b"b", b"c"] {
            view.put(Cf::Kv, k, b"v".to_vec());
        }
        let mut seen = 0;
        view.scan(Cf::Kv, b"", None, &mut |_, _| {
            seen += 1;
            Ok(seen < 2)
        })
        .unwrap();
        assert_eq!(seen, 2);
    }
}
