//! A local etcd 3.4 cluster for the comparison: real `etcd` processes on loopback ports
//! the operating system picked, each with its data directory and log under one
//! directory, fsync on (etcd's default; nothing here turns it off). The counterpart of
//! vane-cluster's `LocalCluster`, with only what the comparison needs: start, kill -9,
//! start again on the same data, and kill everything on drop.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::BenchError;

use super::cluster::Member;
use super::member_status;

/// How long the founding members may take to elect a leader.
const LEADER_WAIT: Duration = Duration::from_secs(60);

/// One etcd member: how to start it and, while it runs, its process.
struct EtcdMember {
    name: String,
    client_url: String,
    data_dir: PathBuf,
    log: PathBuf,
    /// The full command line after the binary; the same at every start, so a restarted
    /// member is the member that was killed.
    arguments: Vec<String>,
    child: Option<Child>,
}

/// A running local etcd cluster; dropping it kills every member it started.
pub struct EtcdCluster {
    etcd: PathBuf,
    members: Vec<EtcdMember>,
    /// `GOMAXPROCS` of every member: the same share of the machine's cores that each
    /// Vane member gets as `--worker-threads` ([`vane_cluster::worker_threads_per_member`]),
    /// so that neither system runs more threads than the other on the shared cores.
    gomaxprocs: usize,
}

impl EtcdCluster {
    /// Starts `nodes` members named `n1`..`nN` under `dir` and waits until they agree on
    /// a leader.
    pub async fn start(
        etcd: &Path,
        dir: &Path,
        nodes: usize,
        heartbeat_interval_ms: u64,
        election_timeout_ms: u64,
    ) -> Result<EtcdCluster, BenchError> {
        std::fs::create_dir_all(dir).map_err(|source| BenchError::Io {
            action: "create the etcd cluster directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let ports = free_ports(nodes * 2)?;
        let names: Vec<String> = (1..=nodes).map(|number| format!("n{number}")).collect();
        let peer_urls: Vec<String> = (0..nodes)
            .map(|index| loopback_url(ports[2 * index + 1]))
            .collect();
        let initial_cluster = names
            .iter()
            .zip(&peer_urls)
            .map(|(name, url)| format!("{name}={url}"))
            .collect::<Vec<_>>()
            .join(",");
        let token = cluster_token();
        let members = names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let client_url = loopback_url(ports[2 * index]);
                let data_dir = dir.join(name);
                let arguments = vec![
                    format!("--name={name}"),
                    format!("--data-dir={}", data_dir.display()),
                    format!("--listen-client-urls={client_url}"),
                    format!("--advertise-client-urls={client_url}"),
                    format!("--listen-peer-urls={}", peer_urls[index]),
                    format!("--initial-advertise-peer-urls={}", peer_urls[index]),
                    format!("--initial-cluster={initial_cluster}"),
                    "--initial-cluster-state=new".to_owned(),
                    format!("--initial-cluster-token={token}"),
                    format!("--heartbeat-interval={heartbeat_interval_ms}"),
                    format!("--election-timeout={election_timeout_ms}"),
                ];
                EtcdMember {
                    name: name.clone(),
                    client_url,
                    data_dir,
                    log: dir.join(format!("{name}.log")),
                    arguments,
                    child: None,
                }
            })
            .collect();
        let mut cluster = EtcdCluster {
            etcd: etcd.to_path_buf(),
            members,
            gomaxprocs: vane_cluster::worker_threads_per_member(nodes),
        };
        for name in names {
            cluster.spawn(&name)?;
        }
        let urls: Vec<String> = cluster
            .members
            .iter()
            .map(|member| member.client_url.clone())
            .collect();
        if member_status::wait_for_leader(&urls, LEADER_WAIT)
            .await
            .is_none()
        {
            return Err(cluster.failure(format!(
                "no leader within {LEADER_WAIT:?}; see the logs under {}",
                dir.display()
            )));
        }
        Ok(cluster)
    }

    /// The members, running or not.
    pub fn members(&self) -> Vec<Member> {
        self.members
            .iter()
            .map(|member| Member {
                name: member.name.clone(),
                client_url: member.client_url.clone(),
                pid: member.child.as_ref().map(Child::id),
                data_dir: member.data_dir.clone(),
            })
            .collect()
    }

    /// Ends the member `name` with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self, name: &str) -> Result<(), BenchError> {
        let member = self.member_mut(name)?;
        if let Some(mut child) = member.child.take() {
            // An error means it has already exited, which is what we want.
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(())
    }

    /// Starts the member `name` (again, on its data directory if it has one).
    pub fn spawn(&mut self, name: &str) -> Result<(), BenchError> {
        let etcd = self.etcd.clone();
        let gomaxprocs = self.gomaxprocs.to_string();
        let member = self.member_mut(name)?;
        if member.child.is_some() {
            return Ok(());
        }
        let open_log = || -> std::io::Result<(File, File)> {
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&member.log)?;
            Ok((log.try_clone()?, log))
        };
        let (stdout, stderr) = open_log().map_err(|source| BenchError::Io {
            action: "open the etcd log",
            path: member.log.clone(),
            source,
        })?;
        let child = Command::new(&etcd)
            .args(&member.arguments)
            .env("GOMAXPROCS", gomaxprocs)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|error| BenchError::Cluster {
                system: "etcd",
                detail: format!(
                    "cannot start {}: {error}; install etcd 3.4 (Debian etcd-server, `make setup`) or pass --etcd PATH",
                    etcd.display()
                ),
            })?;
        member.child = Some(child);
        Ok(())
    }

    fn member_mut(&mut self, name: &str) -> Result<&mut EtcdMember, BenchError> {
        self.members
            .iter_mut()
            .find(|member| member.name == name)
            .ok_or_else(|| BenchError::Cluster {
                system: "etcd",
                detail: format!("no member named {name}"),
            })
    }

    fn failure(&self, detail: String) -> BenchError {
        BenchError::Cluster {
            system: "etcd",
            detail,
        }
    }
}

impl Drop for EtcdCluster {
    /// Kills every member this value started, also when a run fails half-way, so that no
    /// comparison leaves an etcd behind.
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `http://127.0.0.1:PORT`.
fn loopback_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// `count` distinct loopback ports nothing listens on right now, below the kernel's
/// ephemeral range, where the members' own outgoing connections could take one before
/// etcd binds it. Another program could still take one, which would fail the start with
/// etcd's own message in its log.
fn free_ports(count: usize) -> Result<Vec<u16>, BenchError> {
    vane_cluster::free_loopback_ports(count, &[]).map_err(|e| BenchError::Io {
        action: "pick a free port on",
        path: PathBuf::from("127.0.0.1"),
        source: std::io::Error::other(e),
    })
}

/// A token no other local cluster uses, so that two clusters never accept each other's
/// members.
fn cluster_token() -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("vane-bench-etcd-{}-{now_ms}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let mut ports = free_ports(6).unwrap();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 6);
    }
}
