//! The replicated state machine: the MVCC keyspace, leases and sessions of one node, what
//! it has applied, and its snapshots.
//!
//! Ownership: the live RocksDB handle sits behind a `std::sync::RwLock`, held only long
//! enough to clone the `Arc` (readers) or to swap in a freshly installed generation
//! (snapshot install), never across I/O. Apply and install are called by one task (the
//! Raft core); reads come from any task and see whole batches, through a RocksDB
//! snapshot.

pub(crate) mod apply;
mod recent;
pub mod snapshot;

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use prost::Message;
use rocksdb::DB;
use tokio::sync::watch;
use vane_proto::api::change_request::State as ChangeState;
use vane_proto::api::{
    AuditRecord, ChangeRequest, EnvironmentDifference, ListAuditRequest, Namespace, Resolved,
    VerifyAuditResponse,
};
use vane_proto::authpb::Role;
use vane_proto::etcdserverpb::{RangeRequest, RangeResponse, TxnRequest, TxnResponse};
use vane_proto::mvccpb::Event;
use vane_proto::raft::{Command, CommandResult, LogId, Membership, StoredMembership};
use vane_proto::storage::{
    AuthState, Lease, Session, SnapshotHeader, StateMachineMeta, StoredUser,
};

use self::apply::ApplyBatch;
use self::recent::RecentEvents;
use self::snapshot::{CHECKPOINT_PREFIX, SnapshotFile};
use crate::auth::{self, Access, Caller};
use crate::data_dir::{DataDir, FORMAT_VERSION, sync_dir};
use crate::db::{
    BatchView, CachedAt, CachedKey, Cf, CurrentCache, MemoryReader, Reader, SnapshotReader,
    flush_all, open_meta_read_only, open_state_machine_db, write_options,
};
use crate::error::{Result, StoreError};
use crate::governance::{self, SchemaCache};
use crate::mvcc::events::{self, EventPage};
use crate::mvcc::range::Revisions;
use crate::mvcc::{Limits, hash, range};

const META_KEY: &[u8] = b"state";
const CURRENT_SNAPSHOT: &str = "current.snap";
/// Records written per RocksDB batch while installing a snapshot: bounds install memory.
const INSTALL_BATCH_RECORDS: usize = 4096;
/// How stale the measured on-disk size may be.
const DB_SIZE_REFRESH_MS: u64 = 250;

/// One entry to apply, in storage terms (the openraft adapter converts to this).
#[derive(Clone, Debug)]
pub struct ApplyItem {
    /// The entry's log id.
    pub log_id: LogId,
    /// What it carries.
    pub payload: ApplyPayload,
}

/// What an entry carries.
#[derive(Clone, Debug)]
pub enum ApplyPayload {
    /// A leader's no-op at the start of its term.
    Blank,
    /// A client command.
    Command(Command),
    /// A new cluster membership.
    Membership(Membership),
}

/// How far the state machine has applied: published after every batch so that reads
/// waiting for a read index, and watchers, wake up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Index of the last applied log entry (0 before any).
    pub log_index: u64,
    /// Store revision after it.
    pub revision: i64,
    /// Revisions below this one have been compacted away.
    pub compacted: i64,
    /// How many namespaces exist: with none, a write needs no governance check.
    pub namespaces: u64,
}

/// The live generation: cheap to clone, so apply takes its own copy of what it works with.
#[derive(Clone)]
struct Live {
    generation: u64,
    db: Arc<DB>,
    /// Apply's cache of this database's current versions.
    current: Arc<CurrentCache>,
    /// The meta the last apply batch wrote to `db`. Apply is the database's only writer
    /// (an install writes a new generation), so the next batch starts from this rather
    /// than reading the meta back through a RocksDB snapshot and decoding it. Empty when
    /// unknown: at open, and after a batch that failed, whose write may or may not have
    /// reached the database.
    applied_meta: Arc<Mutex<Option<StateMachineMeta>>>,
}

/// The state machine of one node.
pub struct StateMachine {
    dir: Arc<DataDir>,
    live: RwLock<Live>,
    limits: Limits,
    applied: watch::Sender<Applied>,
    // Serialises changes to the snapshots directory (a build racing an install).
    snapshot_files: Mutex<()>,
    // The newest checkpoint built here, if it is still kept.
    checkpoint: Mutex<Option<SnapshotFile>>,
    // When the on-disk size was last measured, and what it was.
    db_size: Mutex<Option<(std::time::Instant, u64)>>,
    // Namespaces' compiled schemas, for apply and for early checks.
    schemas: SchemaCache,
    // Events of the last applied batches, for the watch cache.
    recent: Mutex<RecentEvents>,
}

fn lock_meta(
    meta: &Mutex<Option<StateMachineMeta>>,
) -> std::sync::MutexGuard<'_, Option<StateMachineMeta>> {
    meta.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn empty_meta() -> StateMachineMeta {
    StateMachineMeta {
        revision: 1,
        ..Default::default()
    }
}

pub(crate) fn read_meta(reader: &dyn Reader) -> Result<StateMachineMeta> {
    match reader.get(Cf::Meta, META_KEY)? {
        Some(bytes) => StateMachineMeta::decode(bytes.as_slice())
            .map_err(|e| StoreError::decode("state machine meta", e)),
        None => Ok(empty_meta()),
    }
}

/// The log index a snapshot was taken at.
fn snapshot_index(header: &SnapshotHeader) -> u64 {
    header
        .meta
        .as_ref()
        .and_then(|m| m.last_applied)
        .map_or(0, |l| l.index)
}

/// Removes a file or a directory at `path`, if there is one.
fn remove_path(path: &Path) -> Result<()> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(|e| StoreError::io(format!("remove {}", path.display()), e))
}

/// The log index of the checkpoint directory called `name`; `None` for anything else,
/// such as a checkpoint being built or written out (`*.tmp`).
fn checkpoint_index(name: &std::ffi::OsStr) -> Option<u64> {
    name.to_str()?
        .strip_prefix(CHECKPOINT_PREFIX)?
        .parse::<u64>()
        .ok()
}

/// Removes every checkpoint in `dir` but `keep`.
fn remove_checkpoints_except(dir: &Path, keep: Option<&Path>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| StoreError::io(format!("list {}", dir.display()), e))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if checkpoint_index(&entry.file_name()).is_some() && Some(path.as_path()) != keep {
            remove_path(&path)?;
        }
    }
    Ok(())
}

/// At start: the newest complete checkpoint in `dir`, once leftovers of interrupted
/// builds and sends (`*.tmp`) and older checkpoints are removed.
fn kept_checkpoint(dir: &Path) -> Result<Option<SnapshotFile>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| StoreError::io(format!("list {}", dir.display()), e))?;
    let mut newest: Option<(u64, std::path::PathBuf)> = None;
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(".tmp"))
        {
            remove_path(&path)?;
            continue;
        }
        let Some(index) = checkpoint_index(&entry.file_name()) else {
            continue;
        };
        if newest.as_ref().is_none_or(|(n, _)| index > *n) {
            newest = Some((index, path));
        }
    }
    let Some((_, path)) = newest else {
        return Ok(None);
    };
    remove_checkpoints_except(dir, Some(&path))?;
    let header = kept_checkpoint_header(&path)?;
    Ok(Some(SnapshotFile { path, header }))
}

/// The header of the checkpoint at `path`, from the meta it holds.
fn kept_checkpoint_header(path: &Path) -> Result<SnapshotHeader> {
    let meta = read_meta(&SnapshotReader::new(&open_meta_read_only(path)?))?;
    Ok(checkpoint_header(meta))
}

fn checkpoint_header(meta: StateMachineMeta) -> SnapshotHeader {
    let last = meta.last_applied.unwrap_or_default();
    SnapshotHeader {
        format_version: FORMAT_VERSION,
        snapshot_id: format!("{}-{}-checkpoint", last.term, last.index),
        meta: Some(meta),
    }
}

fn applied_of(meta: &StateMachineMeta) -> Applied {
    Applied {
        log_index: meta.last_applied.map_or(0, |l| l.index),
        revision: meta.revision,
        compacted: meta.compact_revision,
        namespaces: meta.namespaces,
    }
}

impl StateMachine {
    /// Opens the live generation of `dir`'s state machine, creating the first one for a
    /// new directory and removing what an interrupted install left behind.
    pub fn open(dir: Arc<DataDir>, limits: Limits) -> Result<Self> {
        let generation = match dir.current_generation()? {
            Some(g) => g,
            None => {
                let g = 1;
                open_state_machine_db(&dir.generation_path(g))?;
                dir.set_current_generation(g)?;
                g
            }
        };
        dir.remove_other_generations(generation)?;
        let db = open_state_machine_db(&dir.generation_path(generation))?;
        let meta = read_meta(&SnapshotReader::new(&db))?;
        let (applied, _) = watch::channel(applied_of(&meta));
        let recent = Mutex::new(RecentEvents::new(meta.revision));
        let checkpoint = Mutex::new(kept_checkpoint(&dir.snapshots_path())?);
        Ok(StateMachine {
            dir,
            live: RwLock::new(Live {
                generation,
                db,
                current: Default::default(),
                applied_meta: Default::default(),
            }),
            limits,
            applied,
            snapshot_files: Mutex::new(()),
            checkpoint,
            db_size: Mutex::new(None),
            schemas: SchemaCache::default(),
            recent,
        })
    }

    /// The live generation: its database and current-version cache.
    fn live(&self) -> std::sync::RwLockReadGuard<'_, Live> {
        self.live
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn db(&self) -> Arc<DB> {
        self.live().db.clone()
    }

    /// The applied log id, membership and counters, as last committed.
    pub fn meta(&self) -> Result<StateMachineMeta> {
        let db = self.db();
        read_meta(&SnapshotReader::new(&db))
    }

    /// Follows how far this node has applied.
    pub fn subscribe(&self) -> watch::Receiver<Applied> {
        self.applied.subscribe()
    }

    /// How far this node has applied, now.
    pub fn applied(&self) -> Applied {
        *self.applied.borrow()
    }

    /// Serves a Range from the applied state.
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResponse> {
        crate::mvcc::txn::check_range_request(request)?;
        if let Some(response) = self.range_from_current_cache(request)? {
            return Ok(response);
        }
        let db = self.db();
        let reader = SnapshotReader::new(&db);
        let meta = read_meta(&reader)?;
        range::range(&reader, request, revisions_of(&meta))
    }

    /// Serves a Range for `caller`: the read permission is checked and the keys read in
    /// one snapshot, so no auth change can fall between the two.
    pub fn range_as(&self, caller: &Caller, request: &RangeRequest) -> Result<RangeResponse> {
        crate::mvcc::txn::check_range_request(request)?;
        // Served from the cache only while auth is off, when there is nothing to check.
        if let Some(response) = self.range_from_current_cache(request)? {
            return Ok(response);
        }
        let db = self.db();
        range_on(&SnapshotReader::new(&db), caller, request)
    }

    /// [`StateMachine::range_as`] from memory alone, never waiting on the disk, so that a
    /// server may call it on its async threads and keep the blocking pool, with its two
    /// thread hand-offs per read, for the reads that need it. `None` when the read would
    /// load a block from a table file, or read more than [`IN_MEMORY_RECORDS_MAX`]
    /// records; the answer is otherwise the same, from one snapshot.
    pub fn range_in_memory(
        &self,
        caller: &Caller,
        request: &RangeRequest,
    ) -> Result<Option<RangeResponse>> {
        crate::mvcc::txn::check_range_request(request)?;
        if let Some(response) = self.range_from_current_cache(request)? {
            return Ok(Some(response));
        }
        let db = self.db();
        let reader = MemoryReader::new(&db, IN_MEMORY_RECORDS_MAX);
        reader.outcome(range_on(&reader, caller, request))
    }

    /// Answers a txn that only reads ([`crate::reads_only`]) for `caller` from the applied
    /// state, as applying it would, without a log entry: the permission check (read
    /// access to every compare and range, whichever branch runs) and the txn see one
    /// snapshot, so no auth change can fall between the two. A txn that writes is refused.
    pub fn txn_read_as(&self, caller: &Caller, request: &TxnRequest) -> Result<TxnResponse> {
        crate::mvcc::txn::check_txn_request(request, self.limits)?;
        let db = self.db();
        txn_read_on(&SnapshotReader::new(&db), caller, request)
    }

    /// [`StateMachine::txn_read_as`] from memory alone, as
    /// [`StateMachine::range_in_memory`] is to [`StateMachine::range_as`].
    pub fn txn_read_in_memory(
        &self,
        caller: &Caller,
        request: &TxnRequest,
    ) -> Result<Option<TxnResponse>> {
        crate::mvcc::txn::check_txn_request(request, self.limits)?;
        let db = self.db();
        let reader = MemoryReader::new(&db, IN_MEMORY_RECORDS_MAX);
        reader.outcome(txn_read_on(&reader, caller, request))
    }

    /// A read of one key's current version, served from the current-version cache when
    /// it holds the key and auth was off as of the revision it stands for; `None` when the
    /// read needs the database. It skips a RocksDB snapshot and the reads of the meta and
    /// auth records, and answers the same whether the key's newest version is in a
    /// memtable or in a table file deep under its history. The revision it answers at is
    /// the cache's, which is published to readers only after the cache has it, so a
    /// linearizable read that waited for a revision gets that one or a later one.
    fn range_from_current_cache(&self, request: &RangeRequest) -> Result<Option<RangeResponse>> {
        if !request.range_end.is_empty() || request.revision > 0 {
            return Ok(None);
        }
        let current = self.live().current.clone();
        let Some((at, value)) = current.read(&request.key) else {
            return Ok(None);
        };
        if at.auth_enabled {
            return Ok(None);
        }
        let reader = CachedKey {
            key: &request.key,
            value,
        };
        let revisions = Revisions {
            current: at.revision,
            compacted: at.compacted,
        };
        range::range(&reader, request, revisions).map(Some)
    }

    /// Refuses unless `caller` may do everything in `accesses` in the applied state
    /// (anything goes while auth is off): what a member checks before proposing, and
    /// before serving what is not a Range.
    pub fn check_access(&self, caller: &Caller, accesses: &[Access]) -> Result<()> {
        let db = self.db();
        auth::check(&SnapshotReader::new(&db), caller, accesses)
    }

    /// Whether auth is on, its revision and the token signing key.
    pub fn auth_state(&self) -> Result<AuthState> {
        let db = self.db();
        auth::state(&SnapshotReader::new(&db))
    }

    /// The user named `name`, if any.
    pub fn auth_user(&self, name: &str) -> Result<Option<StoredUser>> {
        let db = self.db();
        auth::user(&SnapshotReader::new(&db), name)
    }

    /// Every user, by name.
    pub fn auth_users(&self) -> Result<Vec<StoredUser>> {
        let db = self.db();
        auth::users(&SnapshotReader::new(&db))
    }

    /// The role named `name`, if any.
    pub fn auth_role(&self, name: &str) -> Result<Option<Role>> {
        let db = self.db();
        auth::role(&SnapshotReader::new(&db), name)
    }

    /// Every role, by name.
    pub fn auth_roles(&self) -> Result<Vec<Role>> {
        let db = self.db();
        auth::roles(&SnapshotReader::new(&db))
    }

    /// Whether user `user` holds role `role`.
    pub fn auth_user_has_role(&self, user: &str, role: &str) -> Result<bool> {
        let db = self.db();
        auth::has_role(&SnapshotReader::new(&db), user, role)
    }

    /// The current and compacted revisions.
    pub fn revisions(&self) -> Result<Revisions> {
        Ok(revisions_of(&self.meta()?))
    }

    /// HashKV at `revision` (0 for current): the hash, the compacted revision and the
    /// current revision, all from one snapshot.
    pub fn hash_kv(&self, revision: i64) -> Result<(u32, i64, i64)> {
        let db = self.db();
        let reader = SnapshotReader::new(&db);
        let meta = read_meta(&reader)?;
        let revisions = revisions_of(&meta);
        let at = revisions.resolve(revision)?;
        let hash = hash::hash_kv(&reader, at, revisions.compacted)?;
        Ok((hash, revisions.compacted, revisions.current))
    }

    /// Events from revision `from` on, for a watch replaying history: at least
    /// `events_min_page` of them unless history ends first, whole revisions only.
    pub fn events_since(
        &self,
        from: i64,
        events_min_page: usize,
        with_prev_kv: bool,
    ) -> Result<EventPage> {
        let db = self.db();
        let reader = SnapshotReader::new(&db);
        let meta = read_meta(&reader)?;
        events::events_since(
            &reader,
            revisions_of(&meta),
            from,
            events_min_page,
            with_prev_kv,
        )
    }

    /// The lease with `id`, if it exists.
    pub fn lease(&self, id: i64) -> Result<Option<Lease>> {
        let db = self.db();
        crate::lease::get(&SnapshotReader::new(&db), id)
    }

    /// Every lease.
    pub fn leases(&self) -> Result<Vec<Lease>> {
        let db = self.db();
        crate::lease::list(&SnapshotReader::new(&db))
    }

    /// The keys attached to lease `id`.
    pub fn lease_keys(&self, id: i64) -> Result<Vec<Vec<u8>>> {
        let db = self.db();
        crate::mvcc::write::keys_of_lease(&SnapshotReader::new(&db), id)
    }

    /// The namespace called `name`, if any.
    pub fn namespace(&self, name: &str) -> Result<Option<Namespace>> {
        let db = self.db();
        governance::get(&SnapshotReader::new(&db), name)
    }

    /// Every namespace, by name, and the revision of the state they were read from.
    pub fn namespaces(&self) -> Result<(Vec<Namespace>, i64)> {
        let db = self.db();
        let reader = SnapshotReader::new(&db);
        let meta = read_meta(&reader)?;
        Ok((governance::list(&reader)?, meta.revision))
    }

    /// Why a direct write of `value` at `key` (a deletion when `None`) would be refused by
    /// its namespace in the applied state, and that namespace's name: the early check a
    /// member makes before proposing, and the answer of a dry run. Apply checks again.
    pub fn check_governed_write(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        lease: i64,
    ) -> Result<Option<(String, StoreError)>> {
        if self.applied().namespaces == 0 {
            return Ok(None);
        }
        let db = self.db();
        let reader = SnapshotReader::new(&db);
        Ok(
            governance::check_write(&reader, &self.schemas, key, value, lease)?
                .map(|(namespace, refusal)| (namespace.name, refusal)),
        )
    }

    /// A dry run of a direct write of `value` at `key`: the name of the namespace
    /// governing the key (`None` when none does) and why it would refuse the write now,
    /// every reason, the schema's first (see `governance::dry_run_verdict`).
    pub fn dry_run_write(
        &self,
        key: &[u8],
        value: &[u8],
    ) -> Result<Option<(String, Option<String>)>> {
        if self.applied().namespaces == 0 {
            return Ok(None);
        }
        let db = self.db();
        let Some(namespace) = governance::governing(&SnapshotReader::new(&db), key)? else {
            return Ok(None);
        };
        let refusal = governance::dry_run_verdict(&self.schemas, &namespace, key, Some(value))?;
        Ok(Some((namespace.name, refusal)))
    }

    /// The change request `id`, if it exists.
    pub fn change_request(&self, id: u64) -> Result<Option<ChangeRequest>> {
        let db = self.db();
        crate::change::get(&SnapshotReader::new(&db), id)
    }

    /// Change requests, newest first, of `namespace` (all when empty) and in `state`.
    pub fn change_requests(
        &self,
        namespace: &str,
        state: Option<ChangeState>,
    ) -> Result<Vec<ChangeRequest>> {
        let db = self.db();
        crate::change::list(&SnapshotReader::new(&db), namespace, state)
    }

    /// `key` of namespace `name` as environment `environment` sees it, from one snapshot.
    pub fn resolve(&self, name: &str, environment: &str, key: &[u8]) -> Result<(Resolved, i64)> {
        self.with_namespace(name, |reader, namespace| {
            governance::resolve(reader, namespace, environment, key)
        })
    }

    /// The keys of namespace `name` whose resolved values differ between two
    /// environments, from one snapshot.
    pub fn diff_environments(
        &self,
        name: &str,
        from: &str,
        to: &str,
    ) -> Result<(Vec<EnvironmentDifference>, i64)> {
        self.with_namespace(name, |reader, namespace| {
            governance::diff_environments(reader, namespace, from, to)
        })
    }

    /// Runs `read` on namespace `name` and the snapshot it was found in; returns its
    /// answer and that snapshot's revision.
    fn with_namespace<T>(
        &self,
        name: &str,
        read: impl FnOnce(&dyn Reader, &Namespace) -> Result<T>,
    ) -> Result<(T, i64)> {
        let db = self.db();
        let reader = SnapshotReader::new(&db);
        let namespace = governance::get(&reader, name)?
            .ok_or_else(|| crate::error::GovernanceError::NotFound(name.to_string()))?;
        let revision = read_meta(&reader)?.revision;
        Ok((read(&reader, &namespace)?, revision))
    }

    /// What applying change request `id` now would do to each of its keys, and the
    /// revision of the snapshot that says so.
    pub fn change_impact(&self, id: u64) -> Result<(crate::impact::KeysImpact, i64)> {
        let db = self.db();
        let reader = SnapshotReader::new(&db);
        let change = crate::change::get(&reader, id)?
            .ok_or(crate::error::GovernanceError::ChangeNotFound(id))?;
        let impact = crate::impact::of_change(&reader, &self.schemas, &change)?;
        Ok((impact, read_meta(&reader)?.revision))
    }

    /// What the direct writes `writes` would do now to each key they touch, and the
    /// revision of the snapshot that says so.
    pub fn writes_impact(
        &self,
        writes: &[vane_proto::api::ProposedWrite],
    ) -> Result<(crate::impact::KeysImpact, i64)> {
        let db = self.db();
        let reader = SnapshotReader::new(&db);
        let impact = crate::impact::of_writes(&reader, &self.schemas, writes)?;
        Ok((impact, read_meta(&reader)?.revision))
    }

    /// Audit records matching `filter`, oldest first.
    pub fn audit(&self, filter: &ListAuditRequest) -> Result<Vec<AuditRecord>> {
        let db = self.db();
        crate::audit::list(&SnapshotReader::new(&db), filter)
    }

    /// Recomputes the audit chain against the stored records.
    pub fn verify_audit(&self) -> Result<VerifyAuditResponse> {
        let db = self.db();
        let reader = SnapshotReader::new(&db);
        let meta = read_meta(&reader)?;
        crate::audit::verify(&reader, &meta)
    }

    /// A CRC of every namespace: members that applied the same log agree on it.
    pub fn governance_hash(&self) -> Result<u32> {
        let db = self.db();
        governance::hash(&SnapshotReader::new(&db))
    }

    /// A client session's stored state.
    pub fn session(&self, id: u64) -> Result<Option<Session>> {
        let db = self.db();
        crate::session::get(&SnapshotReader::new(&db), id)
    }

    /// Applies `items` in order as one RocksDB write, with the last applied log id and
    /// membership, and returns one result per item.
    pub fn apply(&self, items: &[ApplyItem]) -> Result<Vec<CommandResult>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let Live {
            db,
            current,
            applied_meta,
            ..
        } = self.live().clone();
        // Taken, not copied: should this batch fail, the next one reads the meta back.
        let cached = lock_meta(&applied_meta).take();
        let meta = match cached {
            Some(meta) => meta,
            None => read_meta(&SnapshotReader::new(&db))?,
        };
        let view = BatchView::with_current_cache(&db, &current);
        let mut batch = ApplyBatch::new(view, meta, self.limits, &self.schemas);
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let result = match &item.payload {
                ApplyPayload::Blank => CommandResult {
                    revision: batch.meta.revision,
                    result: None,
                },
                ApplyPayload::Command(command) => {
                    batch.apply_command(item.log_id.index, command)?
                }
                ApplyPayload::Membership(membership) => {
                    batch.meta.membership = Some(StoredMembership {
                        log_id: Some(item.log_id),
                        membership: Some(membership.clone()),
                    });
                    CommandResult {
                        revision: batch.meta.revision,
                        result: None,
                    }
                }
            };
            batch.advance(&item.log_id);
            results.push(result);
        }
        let meta = batch.meta.clone();
        let mut view = batch.view;
        view.put(Cf::Meta, META_KEY, meta.encode_to_vec());
        let events = view.take_events();
        let auth_enabled = auth::state(&view)?.enabled;
        db.write_opt(view.write_batch()?, &write_options())?;
        view.committed(CachedAt {
            revision: meta.revision,
            compacted: meta.compact_revision,
            auth_enabled,
        });
        // Before the new revision is published, so whoever wakes up finds its events.
        if !events.is_empty() {
            self.lock_recent().push(events);
        }
        self.applied.send_replace(applied_of(&meta));
        *lock_meta(&applied_meta) = Some(meta);
        Ok(results)
    }

    fn lock_recent(&self) -> std::sync::MutexGuard<'_, RecentEvents> {
        self.recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes the events of revisions `from..=through` from memory, as apply left them
    /// (with previous values), for the one reader that follows every revision: the watch
    /// cache. `None` when they are no longer all in memory (nobody took them for a while,
    /// or a snapshot was installed): read them with [`StateMachine::events_since`], then
    /// ask again from where that left off.
    pub fn take_recent_events(&self, from: i64, through: i64) -> Option<Vec<Event>> {
        self.lock_recent().take(from, through)
    }

    /// Builds a snapshot of the applied state and makes it the current one: a RocksDB
    /// checkpoint (see [`snapshot`]), so its cost does not grow with the store.
    pub fn build_snapshot(&self) -> Result<SnapshotFile> {
        let dir = self.dir.snapshots_path();
        let db = self.db();
        // The log may be purged up to this snapshot, so the live store must hold what it
        // covers on disk: apply writes no WAL, and the checkpoint flushes every column
        // family (atomically) before it links the files, which makes it so.
        let tmp = dir.join(format!("{CHECKPOINT_PREFIX}build.tmp"));
        remove_path(&tmp)?;
        rocksdb::checkpoint::Checkpoint::new(&db)?.create_checkpoint(&tmp)?;
        drop(db);
        // Apply goes on meanwhile: what the checkpoint holds is what its own meta says.
        let header = kept_checkpoint_header(&tmp)?;
        let index = snapshot_index(&header);
        sync_dir(&tmp)?;

        let _guard = self
            .snapshot_files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(existing) = self.current_snapshot()?
            && snapshot_index(&existing.header) >= index
        {
            // A newer snapshot was installed while this one was built: keep it.
            remove_path(&tmp)?;
            return Ok(existing);
        }
        let path = dir.join(format!("{CHECKPOINT_PREFIX}{index:020}"));
        remove_path(&path)?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| StoreError::io(format!("rename {}", tmp.display()), e))?;
        sync_dir(&dir)?;
        let built = SnapshotFile { path, header };
        *self.lock_checkpoint() = Some(built.clone());
        // Older snapshots are superseded (a sender still reading one holds it open).
        remove_path(&dir.join(CURRENT_SNAPSHOT))?;
        remove_checkpoints_except(&dir, Some(&built.path))?;
        Ok(built)
    }

    fn lock_checkpoint(&self) -> std::sync::MutexGuard<'_, Option<SnapshotFile>> {
        self.checkpoint
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes a snapshot of the applied state to `path` (fsynced) and returns its header,
    /// without making it the current one: what a client's Snapshot request streams.
    pub fn write_snapshot(&self, path: &Path) -> Result<SnapshotHeader> {
        let db = self.db();
        let reader = SnapshotReader::new(&db);
        let meta = read_meta(&reader)?;
        let last = meta.last_applied.unwrap_or_default();
        let created_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let header = SnapshotHeader {
            format_version: FORMAT_VERSION,
            snapshot_id: format!("{}-{}-{}", last.term, last.index, created_ms),
            meta: Some(meta),
        };
        snapshot::write(&reader, &header, path)?;
        Ok(header)
    }

    fn make_current_snapshot(
        &self,
        from: &Path,
        header: SnapshotHeader,
        owned: bool,
    ) -> Result<SnapshotFile> {
        let _guard = self
            .snapshot_files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = self.dir.snapshots_path();
        let current = dir.join(CURRENT_SNAPSHOT);
        if let Some(existing) = self.current_snapshot()?
            && snapshot_index(&existing.header) > snapshot_index(&header)
        {
            // A newer snapshot was built or installed meanwhile: keep it.
            if owned {
                let _ = std::fs::remove_file(from);
            }
            return Ok(existing);
        }
        if owned {
            std::fs::rename(from, &current)
                .map_err(|e| StoreError::io(format!("rename {} to current", from.display()), e))?;
        } else if from != current {
            let tmp = dir.join("copy.tmp");
            std::fs::copy(from, &tmp)
                .map_err(|e| StoreError::io(format!("copy snapshot {}", from.display()), e))?;
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| StoreError::io("fsync copied snapshot", e))?;
            std::fs::rename(&tmp, &current)
                .map_err(|e| StoreError::io("rename copied snapshot to current", e))?;
        }
        sync_dir(&dir)?;
        // A checkpoint built before is superseded by the file.
        let mut checkpoint = self.lock_checkpoint();
        if checkpoint
            .as_ref()
            .is_some_and(|c| snapshot_index(&c.header) <= snapshot_index(&header))
        {
            *checkpoint = None;
            remove_checkpoints_except(&dir, None)?;
        }
        Ok(SnapshotFile {
            path: current,
            header,
        })
    }

    /// The most recent snapshot built or installed here, if any: the checkpoint built
    /// last, or the file installed last, whichever is newer.
    pub fn current_snapshot(&self) -> Result<Option<SnapshotFile>> {
        let checkpoint = self.lock_checkpoint().clone();
        let path = self.dir.snapshots_path().join(CURRENT_SNAPSHOT);
        let file = if path.exists() {
            let header = snapshot::read(&path, &mut |_, _| Ok(()))?;
            Some(SnapshotFile { path, header })
        } else {
            None
        };
        Ok(match (checkpoint, file) {
            (Some(c), Some(f)) if snapshot_index(&f.header) > snapshot_index(&c.header) => Some(f),
            (Some(c), _) => Some(c),
            (None, f) => f,
        })
    }

    /// Replaces the whole state with the snapshot at `path`, atomically: the snapshot is
    /// loaded into a new generation, which becomes live by one rename. A crash at any
    /// point leaves the old state or the new one. The file is checked end to end first.
    /// A checkpoint (another member's directory, as openraft's own tests hand over) is
    /// written out as a file first.
    pub fn install_snapshot(&self, path: &Path) -> Result<SnapshotFile> {
        if path.is_dir() {
            let checkpoint = SnapshotFile {
                path: path.to_path_buf(),
                header: kept_checkpoint_header(path)?,
            };
            let file = self.dir.snapshots_path().join("install.tmp");
            checkpoint.write_to(&file)?;
            return self.install_snapshot(&file);
        }
        let header = snapshot::read(path, &mut |_, _| Ok(()))?;
        let meta = header
            .meta
            .clone()
            .ok_or_else(|| StoreError::Corrupt("snapshot header has no meta".into()))?;

        let generation = self.live().generation + 1;
        let new_path = self.dir.generation_path(generation);
        if new_path.exists() {
            std::fs::remove_dir_all(&new_path)
                .map_err(|e| StoreError::io(format!("remove {}", new_path.display()), e))?;
        }
        let db = open_state_machine_db(&new_path)?;
        let mut batch = rocksdb::WriteBatch::default();
        let mut pending = 0usize;
        snapshot::read(path, &mut |cf, record| {
            let handle = db.cf_handle(cf.name()).ok_or_else(|| {
                StoreError::Corrupt(format!("column family {} missing", cf.name()))
            })?;
            batch.put_cf(handle, &record.key, &record.value);
            pending += 1;
            if pending >= INSTALL_BATCH_RECORDS {
                db.write_opt(std::mem::take(&mut batch), &write_options())?;
                pending = 0;
            }
            Ok(())
        })?;
        let meta_cf = db
            .cf_handle(Cf::Meta.name())
            .ok_or_else(|| StoreError::Corrupt("meta column family missing".into()))?;
        batch.put_cf(meta_cf, META_KEY, meta.encode_to_vec());
        db.write_opt(batch, &write_options())?;
        // On disk before `set_current_generation` makes this generation the live one.
        flush_all(&db)?;

        self.dir.set_current_generation(generation)?;
        let old = {
            let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(
                &mut *live,
                Live {
                    generation,
                    db,
                    current: Default::default(),
                    applied_meta: Default::default(),
                },
            )
        };
        self.lock_recent().reset(meta.revision);
        self.applied.send_replace(applied_of(&meta));
        drop(old);
        // Readers may still hold the old generation; what is left is removed at next start.
        let _ = self.dir.remove_other_generations(generation);

        let owned = path.starts_with(self.dir.snapshots_path());
        self.make_current_snapshot(path, header, owned)
    }

    /// What RocksDB holds in memory for the live database: memtables, table readers and
    /// the block cache, for the admin endpoint.
    pub fn storage_memory(&self) -> crate::db::StorageMemory {
        let db = self.db();
        let names: Vec<&str> = Cf::ALL.iter().map(|cf| cf.name()).collect();
        crate::db::storage_memory(&db, &names, true)
    }

    /// Bytes the state machine holds: its live generation's files, and its memtables,
    /// which hold the newest writes before any file does (apply writes no write-ahead log,
    /// so until a flush they are on disk only in the Raft log). The memtables count as
    /// RocksDB estimates their memory, index and filter included: a few MiB at most
    /// beyond their data, against quotas of hundreds of MiB and more. Recomputed at most
    /// every `DB_SIZE_REFRESH_MS`: what the quota and Status report.
    pub fn db_size_bytes(&self) -> u64 {
        let mut cached = self.db_size.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, bytes)) = *cached
            && at.elapsed() < std::time::Duration::from_millis(DB_SIZE_REFRESH_MS)
        {
            return bytes;
        }
        let generation = self
            .live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .generation;
        let bytes = std::fs::read_dir(self.dir.generation_path(generation))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
            + self.storage_memory().memtables_bytes;
        *cached = Some((std::time::Instant::now(), bytes));
        bytes
    }

    /// Rewrites the database files to reclaim the space of deleted and compacted data
    /// (etcd's Defragment).
    pub fn compact_storage(&self) -> Result<()> {
        let db = self.db();
        flush_all(&db)?;
        for cf in Cf::ALL {
            if let Some(handle) = db.cf_handle(cf.name()) {
                db.compact_range_cf(handle, None::<&[u8]>, None::<&[u8]>);
            }
        }
        // The size measured before must not outlive the space given back: the quota
        // check would raise the alarm again right after an operator disarmed it.
        *self.db_size.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }
}

/// Most records a read from memory ([`StateMachine::range_in_memory`]) reads before it
/// leaves the read to the blocking pool: a range of a hundred keys with its meta and auth
/// records fits, and at about a microsecond per record an async thread is not held long.
pub const IN_MEMORY_RECORDS_MAX: usize = 256;

/// A Range for `caller` on `reader`: the permission check, then the keys.
fn range_on(reader: &dyn Reader, caller: &Caller, request: &RangeRequest) -> Result<RangeResponse> {
    auth::check(
        reader,
        caller,
        &[Access::read(&request.key, &request.range_end)],
    )?;
    let meta = read_meta(reader)?;
    range::range(reader, request, revisions_of(&meta))
}

/// A txn that only reads, for `caller` on `reader`: the permission check, then the txn.
fn txn_read_on(reader: &dyn Reader, caller: &Caller, request: &TxnRequest) -> Result<TxnResponse> {
    auth::check(reader, caller, &auth::txn_accesses_of(request))?;
    let meta = read_meta(reader)?;
    crate::mvcc::txn::read_txn(reader, revisions_of(&meta), request)
}

fn revisions_of(meta: &StateMachineMeta) -> Revisions {
    Revisions {
        current: meta.revision,
        compacted: meta.compact_revision,
    }
}
