//! What a member costs the machine, read from outside the way an operator would: resident
//! memory from `/proc/PID/status` (VmRSS now, VmHWM the peak since the process started),
//! what it has written to the disk from `/proc/PID/io`, and disk from the allocated blocks
//! under its data directory (what `du` reports, so etcd's preallocated WAL files count, as
//! they do on a real disk), and the CPU time it has used from `/proc/PID/stat`.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One member's memory and disk at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFootprint {
    /// The member's name (`n1`, `n2`, `n3`).
    pub member: String,
    /// VmRSS: resident memory now; 0 if the process could not be read.
    pub rss_bytes: u64,
    /// VmHWM: the most resident memory the process ever had; 0 if it could not be read.
    pub peak_rss_bytes: u64,
    /// Bytes allocated on disk under the member's data directory.
    pub disk_bytes: u64,
    /// Bytes the process has caused to be written to the disk since it started
    /// (`write_bytes` of `/proc/PID/io`): its write amplification, which wears SSDs and
    /// competes with its own fsyncs. 0 if it could not be read.
    #[serde(default)]
    pub written_bytes: u64,
}

/// Resident memory of a process: (VmRSS, VmHWM) in bytes.
pub fn memory_of(pid: u32) -> std::io::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name| {
        status_kib(&status, name)
            .map(|kib| kib * 1024)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("/proc/{pid}/status has no {name} line"),
                )
            })
    };
    Ok((field("VmRSS")?, field("VmHWM")?))
}

/// Bytes a process has caused to be sent to the storage layer: `write_bytes` of
/// `/proc/PID/io` (the data its writes and fsyncs put on the disk, not what sat in the
/// page cache and was overwritten or deleted first).
pub fn written_bytes_of(pid: u32) -> std::io::Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes:")?.trim().parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("/proc/{pid}/io has no write_bytes line"),
            )
        })
}

/// CPU time a process has used since it started, user and system, all threads: fields
/// `utime` and `stime` of `/proc/PID/stat`, in seconds. With the load generator and every
/// member on the same cores, CPU per operation is what bounds a system's throughput.
pub fn cpu_seconds_of(pid: u32) -> std::io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = stat_cpu_ticks(&stat).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat has no utime and stime fields"),
        )
    })?;
    // SAFETY: sysconf reads a constant of the running system and has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks_per_second <= 0 {
        return Err(std::io::Error::other("sysconf(_SC_CLK_TCK) failed"));
    }
    Ok(ticks as f64 / ticks_per_second as f64)
}

/// `utime + stime` of a `/proc/PID/stat` line, in clock ticks. The command name (field 2)
/// is in parentheses and may hold spaces or parentheses itself, so fields are counted
/// from the last `)`: `utime` and `stime` are fields 14 and 15 of the line.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The value of a `Name:   1234 kB` line of `/proc/PID/status`, in KiB.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        let mut words = rest.split_whitespace();
        let value = words.next()?.parse().ok()?;
        (words.next() == Some("kB")).then_some(value)
    })
}

/// Bytes allocated on disk for every file under `path` (directories themselves not
/// counted); a file removed while walking is skipped, since members write as we look.
pub fn disk_usage_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;

    /// Unit of `st_blocks`, whatever the file system's block size.
    const STAT_BLOCK_BYTES: u64 = 512;

    let mut total = 0;
    let mut pending = vec![path.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let entries = match std::fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let metadata = match entry.path().symlink_metadata() {
                Ok(metadata) => metadata,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                total += metadata.blocks() * STAT_BLOCK_BYTES;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn status_lines_are_read_in_kib() {
        let status = "Name:\tetcd\nVmHWM:\t  120456 kB\nVmRSS:\t  110000 kB\nThreads:\t12\n";
        assert_eq!(status_kib(status, "VmRSS"), Some(110_000));
        assert_eq!(status_kib(status, "VmHWM"), Some(120_456));
        assert_eq!(status_kib(status, "Threads"), None, "no unit");
        assert_eq!(status_kib(status, "VmSwap"), None);
        assert_eq!(status_kib("VmRSSX:\t1 kB\n", "VmRSS"), None);
    }

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        let stat = "4242 (etcd (x) 1) S 1 4242 4242 0 -1 4194560 9044 0 0 0 1234 567 0 0 20 0 12 0";
        assert_eq!(stat_cpu_ticks(stat), Some(1_801));
        assert_eq!(stat_cpu_ticks("4242 (etcd) S 1 2"), None, "truncated");
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn this_process_cpu_time_grows_as_it_works() {
        let before = cpu_seconds_of(std::process::id()).unwrap();
        let mut sum = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(200) {
            sum = sum.wrapping_add(std::hint::black_box(sum) ^ 0x9e37_79b9);
        }
        std::hint::black_box(sum);
        assert!(cpu_seconds_of(std::process::id()).unwrap() > before);
    }

    #[test]
    fn this_process_has_resident_memory_and_a_peak_at_least_as_high() {
        let (rss, peak) = memory_of(std::process::id()).unwrap();
        assert!(rss > 0);
        assert!(peak >= rss);
    }

    #[test]
    fn disk_usage_counts_written_files_in_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(disk_usage_bytes(dir.path()).unwrap(), 0);
        std::fs::create_dir(dir.path().join("wal")).unwrap();
        let mut file = std::fs::File::create(dir.path().join("wal/0.log")).unwrap();
        let written: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8 + 1).collect();
        file.write_all(&written).unwrap();
        file.sync_all().unwrap();
        assert!(disk_usage_bytes(dir.path()).unwrap() >= written.len() as u64);
        assert_eq!(disk_usage_bytes(&dir.path().join("missing")).unwrap(), 0);
    }
}
