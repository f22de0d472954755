//! The two systems under comparison behind one face: start a fresh three-member cluster,
//! list its members (URLs, pids, data directories), kill one and start it again. Vane's
//! clusters come from vane-cluster's `LocalCluster`, etcd's from [`EtcdCluster`]; both
//! kill every member they started when dropped, so a failed or interrupted run leaves
//! nothing behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vane_cluster::{ClusterSpec, LocalCluster};

use crate::error::BenchError;

use super::etcd_cluster::EtcdCluster;
use super::member_status;
use super::options::CompareOptions;
use super::process_stats::{
    NodeFootprint, cpu_seconds_of, disk_usage_bytes, memory_of, written_bytes_of,
};

/// Members of every cluster the comparison starts.
pub const MEMBERS: usize = 3;
/// How long a restarted Vane member may take to answer again; recovery of a big store is
/// what is being measured, so this is generous.
const VANE_MEMBER_READY_MS: u64 = 600_000;
/// How long a cluster may take to agree on a leader before endpoints are ordered anyway.
const LEADER_AGREEMENT_WAIT: Duration = Duration::from_secs(30);

/// Which system a figure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemKind {
    /// etcd 3.4, the reference.
    Etcd,
    /// Vane, the system measured against it.
    Vane,
}

impl SystemKind {
    /// The order runs alternate in: etcd, Vane, etcd, Vane, ...
    pub const ALTERNATION: [SystemKind; 2] = [SystemKind::Etcd, SystemKind::Vane];

    /// The lowercase name used in file names, tables and errors.
    pub fn name(self) -> &'static str {
        match self {
            SystemKind::Etcd => "etcd",
            SystemKind::Vane => "vane",
        }
    }
}

/// The binaries the comparison runs, resolved before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binaries {
    /// The `vaned` binary, absolute.
    pub vaned: PathBuf,
    /// The `etcd` binary, absolute.
    pub etcd: PathBuf,
}

impl Binaries {
    /// Finds `vaned` (preferring release builds: a debug `vaned` would measure the
    /// compiler's lack of optimisation) and `etcd`.
    pub fn locate(options: &CompareOptions) -> Result<Binaries, BenchError> {
        let vaned = match &options.vaned {
            Some(path) => existing(path).ok_or_else(|| missing("vane", path))?,
            None => release_vaned_candidates()
                .iter()
                .find_map(|path| existing(path))
                .map_or_else(
                    || {
                        vane_cluster::locate_vaned(None).map_err(|error| BenchError::Cluster {
                            system: "vane",
                            detail: error.to_string(),
                        })
                    },
                    Ok,
                )?,
        };
        let etcd = if options.etcd.components().count() == 1 {
            on_path(&options.etcd).ok_or_else(|| missing("etcd", &options.etcd))?
        } else {
            existing(&options.etcd).ok_or_else(|| missing("etcd", &options.etcd))?
        };
        Ok(Binaries { vaned, etcd })
    }
}

/// Where a release `vaned` usually is: beside this (release) `vane-bench`, then in the
/// build directory the Makefile uses.
fn release_vaned_candidates() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
        && dir.ends_with("release")
    {
        candidates.push(dir.join("vaned"));
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        candidates.push(PathBuf::from(target).join("release/vaned"));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|dir| !dir.is_empty()) {
        candidates.push(PathBuf::from(home).join(".cache/vane-target/release/vaned"));
    }
    candidates
}

fn existing(path: &Path) -> Option<PathBuf> {
    path.is_file()
        .then(|| std::fs::canonicalize(path).ok())
        .flatten()
}

fn on_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| existing(&dir.join(name)))
}

fn missing(system: &'static str, path: &Path) -> BenchError {
    let advice = match system {
        "vane" => "build it with `cargo build --release -p vane-node` or pass --vaned PATH",
        _ => "install etcd 3.4 (Debian etcd-server; `make setup` does) or pass --etcd PATH",
    };
    BenchError::Cluster {
        system,
        detail: format!("no binary at {}; {advice}", path.display()),
    }
}

/// One member of a running cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `n1`, `n2`, ...
    pub name: String,
    /// Its client URL, `http://127.0.0.1:PORT`.
    pub client_url: String,
    /// Its process, while it runs.
    pub pid: Option<u32>,
    /// Its data directory.
    pub data_dir: PathBuf,
}

/// A fresh cluster of one of the two systems.
pub enum ClusterUnderTest {
    /// Three `etcd` processes.
    Etcd(EtcdCluster),
    /// Three `vaned` processes.
    Vane(LocalCluster),
}

impl ClusterUnderTest {
    /// Starts a fresh cluster of `system` with its data under `dir` (which must not hold
    /// one yet), and returns once it has a leader.
    pub async fn start(
        system: SystemKind,
        binaries: &Binaries,
        dir: &Path,
        options: &CompareOptions,
    ) -> Result<ClusterUnderTest, BenchError> {
        match system {
            SystemKind::Etcd => Ok(ClusterUnderTest::Etcd(
                EtcdCluster::start(
                    &binaries.etcd,
                    dir,
                    MEMBERS,
                    options.heartbeat_interval_ms(),
                    options.election_timeout_ms,
                )
                .await?,
            )),
            SystemKind::Vane => {
                let mut spec = ClusterSpec::new(MEMBERS, dir);
                spec.vaned = Some(binaries.vaned.clone());
                spec.heartbeat_interval_ms = options.heartbeat_interval_ms();
                spec.election_timeout_ms = options.election_timeout_ms;
                spec.timeouts.member_ready_ms = VANE_MEMBER_READY_MS;
                let cluster = LocalCluster::start(spec).await.map_err(vane_error)?;
                Ok(ClusterUnderTest::Vane(cluster))
            }
        }
    }

    /// The members, in name order.
    pub fn members(&self) -> Vec<Member> {
        match self {
            ClusterUnderTest::Etcd(cluster) => cluster.members(),
            ClusterUnderTest::Vane(cluster) => cluster
                .record()
                .members
                .iter()
                .map(|member| Member {
                    name: member.name.clone(),
                    client_url: member.client_url(),
                    pid: member.pid,
                    data_dir: member.data_dir.clone(),
                })
                .collect(),
        }
    }

    /// The members' client URLs with the leader's first, once every member follows it.
    pub async fn endpoints_leader_first(&self) -> Vec<String> {
        let urls: Vec<String> = self
            .members()
            .into_iter()
            .map(|member| member.client_url)
            .collect();
        member_status::leader_first(&urls, LEADER_AGREEMENT_WAIT).await
    }

    /// The member whose client URL is `url`.
    pub fn member_at(&self, url: &str) -> Option<Member> {
        self.members()
            .into_iter()
            .find(|member| member.client_url == url)
    }

    /// Every member's memory now and its data directory's size on disk.
    pub fn footprint(&self) -> Vec<NodeFootprint> {
        self.members().iter().map(footprint_of).collect()
    }

    /// CPU time every running member has used since it started, summed, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.members()
            .iter()
            .filter_map(|member| member.pid)
            .filter_map(|pid| cpu_seconds_of(pid).ok())
            .sum()
    }

    /// Ends the member `name` with SIGKILL, as a crash would.
    pub async fn kill(&mut self, name: &str) -> Result<(), BenchError> {
        match self {
            ClusterUnderTest::Etcd(cluster) => cluster.kill(name),
            ClusterUnderTest::Vane(cluster) => {
                cluster.kill(name).await.map(drop).map_err(vane_error)
            }
        }
    }

    /// Starts the killed member `name` again on its data. Vane's launcher returns once
    /// the member answers Status; etcd's at once.
    pub async fn start_again(&mut self, name: &str) -> Result<(), BenchError> {
        match self {
            ClusterUnderTest::Etcd(cluster) => cluster.spawn(name),
            ClusterUnderTest::Vane(cluster) => cluster.restart(name).await.map_err(vane_error),
        }
    }
}

/// One member's memory and disk; zeros where it could not be read (a member that has
/// exited has no memory to report).
pub fn footprint_of(member: &Member) -> NodeFootprint {
    let (rss_bytes, peak_rss_bytes) = member
        .pid
        .and_then(|pid| memory_of(pid).ok())
        .unwrap_or_default();
    NodeFootprint {
        member: member.name.clone(),
        rss_bytes,
        peak_rss_bytes,
        disk_bytes: disk_usage_bytes(&member.data_dir).unwrap_or_default(),
        written_bytes: member
            .pid
            .and_then(|pid| written_bytes_of(pid).ok())
            .unwrap_or_default(),
    }
}

fn vane_error(error: vane_cluster::ClusterError) -> BenchError {
    BenchError::Cluster {
        system: "vane",
        detail: error.to_string(),
    }
}
