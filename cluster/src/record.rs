//! `DIR/cluster.json`: what every command after `up` needs to find the members again —
//! their names, ports, process ids, data directories and the exact `vaned` flags — so
//! that `kill`, `restart` or `down` can run from another shell, or after the launcher
//! that started the cluster has exited. Commands on one cluster are meant to run one at
//! a time: the record has no lock, and the last writer wins.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ClusterError, Result};

/// The file name of the record inside the cluster directory.
pub const RECORD_FILE_NAME: &str = "cluster.json";

/// Whether a member founded the cluster or joined it later (`vaned
/// --initial-cluster-state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitialClusterState {
    /// Started with the other founders.
    New,
    /// Added with MemberAdd and started to join.
    Existing,
}

impl InitialClusterState {
    /// The value of `vaned --initial-cluster-state`.
    pub fn as_flag(self) -> &'static str {
        match self {
            InitialClusterState::New => "new",
            InitialClusterState::Existing => "existing",
        }
    }
}

/// One member as the launcher started it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// `vaned --name`, `n1`, `n2`, …
    pub name: String,
    /// Port of etcd's gRPC API on 127.0.0.1.
    pub client_port: u16,
    /// Port of the Raft peer RPCs on 127.0.0.1.
    pub peer_port: u16,
    /// Port of `/metrics`, `/health` and `/readyz` on 127.0.0.1.
    pub metrics_port: u16,
    /// `vaned --data-dir`.
    pub data_dir: PathBuf,
    /// Where the member's stdout and stderr go, appended across restarts.
    pub log: PathBuf,
    /// The process id of the last start; `None` once the launcher saw it end.
    pub pid: Option<u32>,
    /// The Raft member id, once known (from MemberAdd, or the member's own Status).
    pub member_id: Option<u64>,
    /// `vaned --initial-cluster` as given at the member's first start.
    pub initial_cluster: String,
    /// `vaned --initial-cluster-state` as given at the member's first start.
    pub initial_cluster_state: InitialClusterState,
}

impl MemberRecord {
    /// The URL clients (and `etcdctl --endpoints`) use.
    pub fn client_url(&self) -> String {
        loopback_url(self.client_port)
    }

    /// The URL Raft peers use, and the key of this member in MemberList.
    pub fn peer_url(&self) -> String {
        loopback_url(self.peer_port)
    }

    /// The URL of the admin HTTP endpoint.
    pub fn metrics_url(&self) -> String {
        loopback_url(self.metrics_port)
    }
}

/// The whole cluster as the launcher started it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The `vaned` binary every member runs, absolute.
    pub vaned: PathBuf,
    /// `vaned --initial-cluster-token`, unique per cluster so that two local clusters
    /// never accept each other's peers.
    pub cluster_token: String,
    /// `--base-port` of `up`, so that added members get predictable ports too.
    pub base_port: Option<u16>,
    /// `vaned --heartbeat-interval`.
    pub heartbeat_interval_ms: u64,
    /// `vaned --election-timeout`.
    pub election_timeout_ms: u64,
    /// `vaned --log-level`.
    pub log_level: String,
    /// Further flags every member gets ([`crate::ClusterSpec::extra_args`]).
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// `vaned --worker-threads`: the founding members' share of the machine's cores
    /// ([`crate::worker_threads_per_member`]); `None` (a record written before it existed)
    /// leaves each member one per core.
    #[serde(default)]
    pub worker_threads: Option<usize>,
    /// How many member names were ever issued; names are never reused, because a
    /// removed member's data directory stays on disk.
    pub names_issued: u32,
    /// The current members, in the order they were added.
    pub members: Vec<MemberRecord>,
}

impl ClusterRecord {
    /// The record file of the cluster in `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(RECORD_FILE_NAME)
    }

    /// Reads the record of the cluster in `dir`.
    pub fn load(dir: &Path) -> Result<ClusterRecord> {
        let path = Self::path_in(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ClusterError::NoCluster { path });
            }
            Err(source) => {
                return Err(ClusterError::Io {
                    action: "read the cluster record",
                    path,
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|source| ClusterError::RecordCorrupt { path, source })
    }

    /// Writes the record to `dir` through a temporary file and a rename, so a reader in
    /// another shell never sees half of it.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = Self::path_in(dir);
        let temporary = dir.join(format!("{RECORD_FILE_NAME}.tmp"));
        let text =
            serde_json::to_string_pretty(self).map_err(|source| ClusterError::RecordCorrupt {
                path: path.clone(),
                source,
            })?;
        std::fs::write(&temporary, text + "\n").map_err(|source| ClusterError::Io {
            action: "write the cluster record",
            path: temporary.clone(),
            source,
        })?;
        std::fs::rename(&temporary, &path).map_err(|source| ClusterError::Io {
            action: "replace the cluster record",
            path,
            source,
        })
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> Result<&MemberRecord> {
        self.members
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| self.unknown(name))
    }

    /// The member called `name`, to change.
    pub fn member_mut(&mut self, name: &str) -> Result<&mut MemberRecord> {
        let unknown = self.unknown(name);
        self.members
            .iter_mut()
            .find(|m| m.name == name)
            .ok_or(unknown)
    }

    fn unknown(&self, name: &str) -> ClusterError {
        ClusterError::UnknownMember {
            name: name.to_string(),
            known: self
                .members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The client URLs of every member, in member order.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().map(MemberRecord::client_url).collect()
    }

    /// The command line that starts `member`; the same at every restart, so a restarted
    /// member is the member that was killed.
    pub fn vaned_arguments(&self, member: &MemberRecord) -> Vec<String> {
        vec![
            "--name".to_string(),
            member.name.clone(),
            "--data-dir".to_string(),
            member.data_dir.display().to_string(),
            "--listen-client-urls".to_string(),
            member.client_url(),
            "--advertise-client-urls".to_string(),
            member.client_url(),
            "--listen-peer-urls".to_string(),
            member.peer_url(),
            "--initial-advertise-peer-urls".to_string(),
            member.peer_url(),
            "--listen-metrics-urls".to_string(),
            member.metrics_url(),
            "--initial-cluster".to_string(),
            member.initial_cluster.clone(),
            "--initial-cluster-state".to_string(),
            member.initial_cluster_state.as_flag().to_string(),
            "--initial-cluster-token".to_string(),
            self.cluster_token.clone(),
            "--heartbeat-interval".to_string(),
            self.heartbeat_interval_ms.to_string(),
            "--election-timeout".to_string(),
            self.election_timeout_ms.to_string(),
            "--log-level".to_string(),
            self.log_level.clone(),
        ]
        .into_iter()
        .chain(
            self.worker_threads
                .into_iter()
                .flat_map(|n| ["--worker-threads".to_string(), n.to_string()]),
        )
        .chain(self.extra_args.iter().cloned())
        .collect()
    }
}

/// `http://127.0.0.1:PORT`: every local member listens on loopback only.
pub fn loopback_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// `name=peer-url,…` for `vaned --initial-cluster`.
pub fn initial_cluster_of<'a>(members: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    members
        .into_iter()
        .map(|(name, peer_url)| format!("{name}={peer_url}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, base: u16) -> MemberRecord {
        MemberRecord {
            name: name.to_string(),
            client_port: base,
            peer_port: base + 1,
            metrics_port: base + 2,
            data_dir: PathBuf::from(format!("/d/{name}")),
            log: PathBuf::from(format!("/d/{name}.log")),
            pid: Some(42),
            member_id: None,
            initial_cluster: "n1=http://127.0.0.1:2380".to_string(),
            initial_cluster_state: InitialClusterState::New,
        }
    }

    #[test]
    fn record_survives_a_save_and_load_and_names_unknown_members() {
        let dir = tempfile::tempdir().unwrap();
        let record = ClusterRecord {
            vaned: PathBuf::from("/bin/vaned"),
            cluster_token: "t".to_string(),
            base_port: None,
            heartbeat_interval_ms: 100,
            election_timeout_ms: 1000,
            log_level: "info".to_string(),
            extra_args: Vec::new(),
            worker_threads: Some(1),
            names_issued: 2,
            members: vec![member("n1", 2379), member("n2", 2389)],
        };
        record.save(dir.path()).unwrap();
        let loaded = ClusterRecord::load(dir.path()).unwrap();
        assert_eq!(loaded, record);
        let err = loaded.member("n9").unwrap_err().to_string();
        assert!(err.contains("n1, n2"), "{err}");
        let missing = ClusterRecord::load(&dir.path().join("nothing")).unwrap_err();
        assert!(missing.to_string().contains("vane-cluster up"), "{missing}");
    }

    #[test]
    fn arguments_follow_etcd_flag_names() {
        let record = ClusterRecord {
            vaned: PathBuf::from("/bin/vaned"),
            cluster_token: "tok".to_string(),
            base_port: Some(2379),
            heartbeat_interval_ms: 100,
            election_timeout_ms: 1000,
            log_level: "info".to_string(),
            extra_args: Vec::new(),
            worker_threads: Some(2),
            names_issued: 1,
            members: vec![member("n1", 2379)],
        };
        let args = record.vaned_arguments(&record.members[0]).join(" ");
        assert!(args.contains("--listen-client-urls http://127.0.0.1:2379"));
        assert!(args.contains("--listen-peer-urls http://127.0.0.1:2380"));
        assert!(args.contains("--initial-cluster-state new"));
        assert!(args.contains("--initial-cluster-token tok"));
        assert!(args.contains("--worker-threads 2"));
        let unset = ClusterRecord {
            worker_threads: None,
            ..record.clone()
        };
        let args = unset.vaned_arguments(&unset.members[0]).join(" ");
        assert!(!args.contains("--worker-threads"), "{args}");
        assert_eq!(
            initial_cluster_of([("n1", "http://a:1"), ("n2", "http://b:2")]),
            "n1=http://a:1,n2=http://b:2"
        );
    }
}
