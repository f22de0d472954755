//! The data directory: its layout, its format version and its exclusive lock.
//!
//! ```text
//! data-dir/
//!   VERSION              "vane-data-format N": refuse what this binary cannot read
//!   LOCK                 held (flock) by the one process that uses the directory
//!   IDENTITY             this node's member id and cluster id, fixed at first start
//!   raft-log/            RocksDB: log entries, vote, committed id, last purged id
//!   state-machine/
//!     CURRENT            name of the live generation, replaced by an atomic rename
//!     gen-NNNNNNNNNNNN/  RocksDB: the MVCC keyspace, leases, sessions, meta
//!   snapshots/           snapshot files being built, sent or received
//! ```
//!
//! The state machine lives in generations so that installing a snapshot is one rename of
//! `CURRENT`: a crash leaves either the old generation or the new one, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};

/// On-disk format this binary writes and reads. Bump it whenever a record's encoding or
/// the layout changes meaning, and teach `open` to upgrade or refuse older versions.
pub const FORMAT_VERSION: u32 = 1;

const VERSION_FILE: &str = "VERSION";
const VERSION_PREFIX: &str = "vane-data-format ";
const LOCK_FILE: &str = "LOCK";
const IDENTITY_FILE: &str = "IDENTITY";
const CURRENT_FILE: &str = "CURRENT";
const GENERATION_PREFIX: &str = "gen-";

/// An opened, locked data directory. The lock is held for as long as this value lives.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    // Held only for its flock; closing the file releases the lock.
    _lock: File,
}

impl DataDir {
    /// Creates the directory if needed, takes its lock, and checks or writes its version.
    ///
    /// Fails, changing nothing, when another process holds the directory or when it was
    /// written by a format this binary does not know.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(&root)
            .map_err(|e| StoreError::io(format!("create data directory {}", root.display()), e))?;

        let lock_path = root.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io(format!("open {}", lock_path.display()), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::DataDir(format!(
                    "data directory {} is in use by another process; stop it or choose another --data-dir",
                    root.display()
                )));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(StoreError::io(format!("lock {}", lock_path.display()), e));
            }
        }

        let dir = DataDir { root, _lock: lock };
        dir.check_or_write_version()?;
        for sub in [
            dir.raft_log_path(),
            dir.state_machine_root(),
            dir.snapshots_path(),
        ] {
            fs::create_dir_all(&sub)
                .map_err(|e| StoreError::io(format!("create {}", sub.display()), e))?;
        }
        Ok(dir)
    }

    fn check_or_write_version(&self) -> Result<()> {
        let path = self.root.join(VERSION_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let version = text
                    .trim()
                    .strip_prefix(VERSION_PREFIX)
                    .and_then(|v| v.parse::<u32>().ok())
                    .ok_or_else(|| {
                        StoreError::DataDir(format!(
                            "{} does not name a Vane data format (found {:?}); is this a Vane data directory?",
                            path.display(),
                            text.trim()
                        ))
                    })?;
                if version != FORMAT_VERSION {
                    return Err(StoreError::DataDir(format!(
                        "data directory {} has format version {version}, but this vaned reads version {FORMAT_VERSION}; \
                         run the vaned release that wrote it, or restore from a snapshot",
                        self.root.display()
                    )));
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let has_content = fs::read_dir(&self.root)
                    .map_err(|e| StoreError::io(format!("list {}", self.root.display()), e))?
                    .filter_map(|entry| entry.ok())
                    .any(|entry| entry.file_name() != LOCK_FILE);
                if has_content {
                    return Err(StoreError::DataDir(format!(
                        "{} is not empty and has no {VERSION_FILE} file; refusing to use a directory Vane did not create",
                        self.root.display()
                    )));
                }
                write_atomically(
                    &path,
                    format!("{VERSION_PREFIX}{FORMAT_VERSION}\n").as_bytes(),
                )
            }
            Err(e) => Err(StoreError::io(format!("read {}", path.display()), e)),
        }
    }

    /// This node's member id and its cluster's id, once the node has started here.
    pub fn identity(&self) -> Result<Option<(u64, u64)>> {
        let path = self.root.join(IDENTITY_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(format!("read {}", path.display()), e)),
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("{} has no valid {name}", path.display()))
                })
        };
        Ok(Some((field("member")?, field("cluster")?)))
    }

    /// Records this node's member id and cluster id; done once, at the first start.
    pub fn set_identity(&self, member_id: u64, cluster_id: u64) -> Result<()> {
        write_atomically(
            &self.root.join(IDENTITY_FILE),
            format!("member={member_id:016x}\ncluster={cluster_id:016x}\n").as_bytes(),
        )
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the Raft log's RocksDB lives.
    pub fn raft_log_path(&self) -> PathBuf {
        self.root.join("raft-log")
    }

    /// Where snapshot files are built and received.
    pub fn snapshots_path(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    fn state_machine_root(&self) -> PathBuf {
        self.root.join("state-machine")
    }

    /// The path of state machine generation `generation`.
    pub fn generation_path(&self, generation: u64) -> PathBuf {
        self.state_machine_root()
            .join(format!("{GENERATION_PREFIX}{generation:012}"))
    }

    /// The live state machine generation, or `None` for a new directory.
    pub fn current_generation(&self) -> Result<Option<u64>> {
        let path = self.state_machine_root().join(CURRENT_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .strip_prefix(GENERATION_PREFIX)
                .and_then(|g| g.parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("{} holds {:?}", path.display(), text.trim()))
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Makes `generation` the live one. Atomic: after a crash `CURRENT` names either the
    /// old generation or this one.
    pub fn set_current_generation(&self, generation: u64) -> Result<()> {
        let path = self.state_machine_root().join(CURRENT_FILE);
        write_atomically(
            &path,
            format!("{GENERATION_PREFIX}{generation:012}\n").as_bytes(),
        )
    }

    /// Removes every generation directory but `keep`: leftovers of an install that did not
    /// finish, or of the generation an install replaced.
    pub fn remove_other_generations(&self, keep: u64) -> Result<()> {
        let root = self.state_machine_root();
        let entries = fs::read_dir(&root)
            .map_err(|e| StoreError::io(format!("list {}", root.display()), e))?;
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(generation) = name
                .strip_prefix(GENERATION_PREFIX)
                .and_then(|g| g.parse::<u64>().ok())
            else {
                continue;
            };
            if generation != keep {
                let path = entry.path();
                fs::remove_dir_all(&path)
                    .map_err(|e| StoreError::io(format!("remove {}", path.display()), e))?;
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old content or the new: a temporary
/// file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let ctx = |what: &str| format!("{what} {}", tmp.display());
    let mut file = File::create(&tmp).map_err(|e| StoreError::io(ctx("create"), e))?;
    file.write_all(bytes)
        .map_err(|e| StoreError::io(ctx("write"), e))?;
    file.sync_all()
        .map_err(|e| StoreError::io(ctx("fsync"), e))?;
    fs::rename(&tmp, path)
        .map_err(|e| StoreError::io(format!("rename to {}", path.display()), e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Makes a rename or a new file in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("fsync directory {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_the_same_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DataDir::open(tmp.path()).unwrap();
        let err = DataDir::open(tmp.path()).unwrap_err();
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
        drop(first);
        DataDir::open(tmp.path()).expect("lock released when the holder closes");
    }

    #[test]
    fn unknown_format_version_is_refused_and_left_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(VERSION_FILE), "vane-data-format 99\n").unwrap();
        let err = DataDir::open(tmp.path()).unwrap_err();
        assert!(err.to_string().contains("format version 99"), "{err}");
        assert_eq!(
            fs::read_to_string(tmp.path().join(VERSION_FILE)).unwrap(),
            "vane-data-format 99\n"
        );
        assert!(!tmp.path().join("raft-log").exists());
    }

    #[test]
    fn foreign_non_empty_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        let err = DataDir::open(tmp.path()).unwrap_err();
        assert!(err.to_string().contains("did not create"), "{err}");
    }

    #[test]
    fn identity_is_kept_once_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        assert_eq!(dir.identity().unwrap(), None);
        dir.set_identity(0xabc, u64::MAX).unwrap();
        assert_eq!(dir.identity().unwrap(), Some((0xabc, u64::MAX)));
    }

    #[test]
    fn generations_switch_atomically_and_leftovers_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        assert_eq!(dir.current_generation().unwrap(), None);
        fs::create_dir_all(dir.generation_path(1)).unwrap();
        fs::create_dir_all(dir.generation_path(2)).unwrap();
        dir.set_current_generation(2).unwrap();
        assert_eq!(dir.current_generation().unwrap(), Some(2));
        dir.remove_other_generations(2).unwrap();
        assert!(!dir.generation_path(1).exists());
        assert!(dir.generation_path(2).exists());
    }
}
