//! Snapshot files: the whole state machine at one applied log id, in one stream.
//!
//! ```text
//! "VANESNAP" | format version (u32 BE) | SnapshotHeader | SnapshotRecord* | end | CRC-32 (u32 BE)
//! ```
//! Header and records are length-delimited protobuf; `end` is a zero length. The CRC
//! covers every byte before it, so a truncated or damaged transfer is refused before
//! anything is installed. A file is built from one RocksDB snapshot, so the data, the
//! applied log id, the membership and the revision counters in it always agree.
//!
//! The snapshots Raft builds to purge its log are not files but RocksDB checkpoints: a
//! directory of hard links to the store's table files, made in about the time of one
//! memtable flush whatever the size of the store. Dumping the whole store every
//! `--snapshot-count` entries instead cost a quarter of a loaded cluster's CPU once its
//! history had grown. A checkpoint is turned into the file format above only when a
//! member actually needs it sent (see [`SnapshotFile::open_pinned`]).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message;
use vane_proto::storage::{SnapshotHeader, SnapshotRecord};

use super::read_meta;
use crate::data_dir::FORMAT_VERSION;
use crate::db::{Cf, Reader, SnapshotReader, open_state_machine_read_only};
use crate::error::{Result, StoreError};

const MAGIC: &[u8; 8] = b"VANESNAP";

/// Largest record a snapshot may hold: a bound on what a damaged length can make us allocate.
const SNAPSHOT_RECORD_BYTES_MAX: usize = 64 << 20;

/// Zero padding allowed after the checksum (to a 512-byte page, as etcdctl wants).
const TRAILING_PADDING_BYTES_MAX: u64 = 511;

/// Name of a checkpoint directory in the snapshots directory, before its log index.
pub(crate) const CHECKPOINT_PREFIX: &str = "checkpoint-";

/// A snapshot on disk and what its header says.
#[derive(Clone, Debug)]
pub struct SnapshotFile {
    /// Where it is: a snapshot file, or a checkpoint directory (built here, see the
    /// module's documentation).
    pub path: PathBuf,
    /// Its header: snapshot id and the state machine meta it was taken at.
    pub header: SnapshotHeader,
}

impl SnapshotFile {
    /// Opens the file for reading and checks that it is still this snapshot. The current
    /// snapshot lives at a fixed path that a newer build replaces by a rename, so a sender
    /// must hold an open descriptor of the right file (which a later rename cannot
    /// change) rather than its path: otherwise it could stream a newer snapshot under an
    /// older one's metadata, which the receiver refuses.
    ///
    /// A checkpoint is written out as a snapshot file first, into a temporary file that is
    /// unlinked once open: the sender streams it and nothing is left behind.
    pub fn open_pinned(&self) -> Result<File> {
        if self.path.is_dir() {
            return self.write_out_checkpoint();
        }
        let mut file = File::open(&self.path)
            .map_err(|e| StoreError::io(format!("open snapshot {}", self.path.display()), e))?;
        let header = read_header(&mut BufReader::new(&file), &mut Vec::new(), &self.path)?;
        if header.snapshot_id != self.header.snapshot_id {
            return Err(StoreError::Corrupt(format!(
                "snapshot {} was replaced by {} while being sent",
                self.header.snapshot_id, header.snapshot_id
            )));
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| StoreError::io("rewind snapshot", e))?;
        Ok(file)
    }

    fn write_out_checkpoint(&self) -> Result<File> {
        static SENDS: AtomicU64 = AtomicU64::new(0);
        let tmp = self.path.with_extension(format!(
            "send-{}.tmp",
            SENDS.fetch_add(1, Ordering::Relaxed)
        ));
        let opened = self.write_to(&tmp).and_then(|()| {
            File::open(&tmp).map_err(|e| StoreError::io(format!("open {}", tmp.display()), e))
        });
        let _ = std::fs::remove_file(&tmp);
        opened
    }

    /// Writes this snapshot as a snapshot file at `path` (fsynced): what
    /// [`StateMachine::install_snapshot`](super::StateMachine::install_snapshot) reads.
    pub fn write_to(&self, path: &Path) -> Result<()> {
        if !self.path.is_dir() {
            std::fs::copy(&self.path, path)
                .map_err(|e| StoreError::io(format!("copy snapshot {}", self.path.display()), e))?;
            return File::open(path)
                .and_then(|f| f.sync_all())
                .map_err(|e| StoreError::io(format!("fsync {}", path.display()), e));
        }
        let db = open_state_machine_read_only(&self.path)?;
        let reader = SnapshotReader::new(&db);
        let stored = read_meta(&reader)?;
        let expected = self.header.meta.as_ref().and_then(|m| m.last_applied);
        if stored.last_applied != expected {
            return Err(StoreError::Corrupt(format!(
                "checkpoint {} does not hold snapshot {}",
                self.path.display(),
                self.header.snapshot_id
            )));
        }
        write(&reader, &self.header, path)
    }

    /// Opens a snapshot file received from a peer, checking it end to end.
    pub fn open(path: &Path) -> Result<SnapshotFile> {
        let header = read(path, &mut |_, _| Ok(()))?;
        Ok(SnapshotFile {
            path: path.to_path_buf(),
            header,
        })
    }
}

struct CrcWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct CrcReader<R: Read> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

fn write_delimited(out: &mut impl Write, message: &impl Message) -> std::io::Result<()> {
    out.write_all(&message.encode_length_delimited_to_vec())
}

/// Writes a snapshot of `reader` with `header` to `path`, fsynced.
pub(crate) fn write(reader: &dyn Reader, header: &SnapshotHeader, path: &Path) -> Result<()> {
    let ctx = |what: &str| format!("{what} snapshot {}", path.display());
    let file = File::create(path).map_err(|e| StoreError::io(ctx("create"), e))?;
    let mut out = CrcWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
    };
    let io = |e| StoreError::io(ctx("write"), e);
    out.write_all(MAGIC).map_err(io)?;
    out.write_all(&FORMAT_VERSION.to_be_bytes()).map_err(io)?;
    write_delimited(&mut out, header).map_err(io)?;
    for cf in Cf::ALL.into_iter().filter(|cf| *cf != Cf::Meta) {
        reader.scan(cf, &[], None, &mut |key, value| {
            let record = SnapshotRecord {
                column_family: cf.name().to_string(),
                key: key.to_vec(),
                value: value.to_vec(),
            };
            write_delimited(&mut out, &record).map_err(io)?;
            Ok(true)
        })?;
    }
    out.write_all(&[0]).map_err(io)?;
    let crc = out.crc.clone().finalize();
    let mut inner = out.inner;
    inner.write_all(&crc.to_be_bytes()).map_err(io)?;
    let file = inner
        .into_inner()
        .map_err(|e| StoreError::io(ctx("flush"), e.into_error()))?;
    file.sync_all()
        .map_err(|e| StoreError::io(ctx("fsync"), e))?;
    Ok(())
}

fn read_varint(input: &mut impl Read) -> std::io::Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8; 1];
        input.read_exact(&mut byte)?;
        value |= u64::from(byte[0] & 0x7F) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "varint too long",
    ))
}

fn read_message<M: Message + Default>(
    input: &mut impl Read,
    buffer: &mut Vec<u8>,
) -> Result<Option<M>> {
    let len = read_varint(input).map_err(|e| StoreError::io("read snapshot record length", e))?;
    if len == 0 {
        return Ok(None);
    }
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > SNAPSHOT_RECORD_BYTES_MAX {
        return Err(StoreError::Corrupt(format!(
            "snapshot record of {len} bytes exceeds {SNAPSHOT_RECORD_BYTES_MAX}"
        )));
    }
    buffer.resize(len, 0);
    input
        .read_exact(buffer)
        .map_err(|e| StoreError::io("read snapshot record", e))?;
    M::decode(buffer.as_slice())
        .map(Some)
        .map_err(|e| StoreError::decode("snapshot record", e))
}

/// Reads the magic, the format version and the header at the start of a snapshot.
fn read_header(input: &mut impl Read, buffer: &mut Vec<u8>, path: &Path) -> Result<SnapshotHeader> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("snapshot {}: {what}", path.display()));
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .map_err(|_| corrupt("too short to be a snapshot"))?;
    if &magic != MAGIC {
        return Err(corrupt("not a Vane snapshot file"));
    }
    let mut version = [0u8; 4];
    input
        .read_exact(&mut version)
        .map_err(|_| corrupt("truncated header"))?;
    let version = u32::from_be_bytes(version);
    if version != FORMAT_VERSION {
        return Err(StoreError::DataDir(format!(
            "snapshot {} has format version {version}; this vaned reads {FORMAT_VERSION}",
            path.display()
        )));
    }
    read_message(input, buffer)?.ok_or_else(|| corrupt("missing header"))
}

/// Reads a snapshot file from start to end, checking its framing and checksum, and hands
/// each record to `visit`. Returns the header. `visit` may be a no-op to only verify.
pub(crate) fn read(
    path: &Path,
    visit: &mut dyn FnMut(Cf, SnapshotRecord) -> Result<()>,
) -> Result<SnapshotHeader> {
    let file = File::open(path)
        .map_err(|e| StoreError::io(format!("open snapshot {}", path.display()), e))?;
    let mut input = CrcReader {
        inner: BufReader::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("snapshot {}: {what}", path.display()));
    let mut buffer = Vec::new();
    let header = read_header(&mut input, &mut buffer, path)?;
    while let Some(record) = read_message::<SnapshotRecord>(&mut input, &mut buffer)? {
        let cf = Cf::from_name(&record.column_family)
            .filter(|cf| *cf != Cf::Meta)
            .ok_or_else(|| corrupt(&format!("unknown column family {:?}", record.column_family)))?;
        visit(cf, record)?;
    }
    let computed = input.crc.clone().finalize();
    let mut stored = [0u8; 4];
    input
        .inner
        .read_exact(&mut stored)
        .map_err(|_| corrupt("missing checksum: the transfer was cut short"))?;
    if u32::from_be_bytes(stored) != computed {
        return Err(corrupt("checksum mismatch: the file is damaged"));
    }
    // A snapshot saved by `etcdctl snapshot save` is padded with zeros to whole 512-byte
    // pages; anything else after the checksum means the file is not what it claims.
    let mut trailing = Vec::new();
    input
        .inner
        .take(TRAILING_PADDING_BYTES_MAX + 1)
        .read_to_end(&mut trailing)
        .map_err(|e| StoreError::io("read snapshot padding", e))?;
    if trailing.len() as u64 > TRAILING_PADDING_BYTES_MAX || trailing.iter().any(|b| *b != 0) {
        return Err(corrupt("unexpected bytes after the checksum"));
    }
    Ok(header)
}
