//! The machine a comparison ran on, written at the head of its table: figures from two
//! cores and a loaded machine mean something else than figures from a quiet server, and
//! a tmpfs work directory would make every fsync free.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::cluster::Binaries;

/// What the summary says about the machine and the binaries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineDescription {
    /// Logical CPUs this process may use (`nproc`).
    pub cpus: usize,
    /// The CPU model, from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Total memory, from `/proc/meminfo`.
    pub memory_total_bytes: u64,
    /// The kernel release.
    pub kernel: String,
    /// Load averages (1, 5, 15 minutes) when the comparison started.
    pub load_average_at_start: String,
    /// Load averages when it ended.
    pub load_average_at_end: String,
    /// File system type of the directory the clusters keep their data in.
    pub work_dir_filesystem: String,
    /// `etcd --version`, first line.
    pub etcd_version: String,
    /// `vaned --version`.
    pub vaned_version: String,
    /// Path of the `vaned` measured.
    pub vaned_path: String,
    /// Whether that `vaned` looks like a debug build (its path has a `debug` directory).
    pub vaned_is_debug_build: bool,
    /// Threads each member of either system runs its work on: `vaned --worker-threads`
    /// and etcd's `GOMAXPROCS`, the machine's cores shared among the three members (0 in
    /// a summary written before both were set).
    #[serde(default)]
    pub threads_per_member: usize,
}

impl MachineDescription {
    /// Describes this machine, the binaries and the work directory now.
    pub fn describe(binaries: &Binaries, work_dir: &Path) -> Self {
        MachineDescription {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model: read("/proc/cpuinfo")
                .lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
                .unwrap_or_default(),
            memory_total_bytes: read("/proc/meminfo")
                .lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_average_at_start: load_average(),
            load_average_at_end: String::new(),
            work_dir_filesystem: filesystem_of(work_dir, &read("/proc/mounts")),
            etcd_version: first_line_of(&binaries.etcd, "--version"),
            vaned_version: first_line_of(&binaries.vaned, "--version"),
            vaned_path: binaries.vaned.display().to_string(),
            vaned_is_debug_build: binaries
                .vaned
                .components()
                .any(|component| component.as_os_str() == "debug"),
            threads_per_member: vane_cluster::worker_threads_per_member(super::cluster::MEMBERS),
        }
    }

    /// One line for the head of the table.
    pub fn summary_line(&self) -> String {
        format!(
            "{} CPUs ({}), {:.1} GiB RAM, Linux {}, data on {}; load {} at start, {} at end",
            self.cpus,
            self.cpu_model,
            self.memory_total_bytes as f64 / (1u64 << 30) as f64,
            self.kernel,
            self.work_dir_filesystem,
            self.load_average_at_start,
            self.load_average_at_end
        )
    }
}

/// The three load averages now, as `/proc/loadavg` has them.
pub fn load_average() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn first_line_of(binary: &Path, flag: &str) -> String {
    Command::new(binary)
        .arg(flag)
        .output()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default()
}

/// The type of the file system `path` lives on: that of the longest mount point in
/// `mounts` (the text of `/proc/mounts`) that contains it.
fn filesystem_of(path: &Path, mounts: &str) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_device, mount_point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount_point)
                .then(|| (mount_point.len(), kind.to_owned()))
        })
        .max()
        .map_or_else(|| "unknown".to_owned(), |(_, kind)| kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_containing_mount_point_names_the_filesystem() {
        let mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\ntmpfs /tmpx tmpfs rw 0 0\n";
        assert_eq!(filesystem_of(Path::new("/tmp/work"), mounts), "tmpfs");
        assert_eq!(filesystem_of(Path::new("/root/work"), mounts), "ext4");
        assert_eq!(filesystem_of(Path::new("/tmpfoo"), mounts), "ext4");
        assert_eq!(filesystem_of(Path::new("/x"), ""), "unknown");
    }
}
