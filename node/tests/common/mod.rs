//! A cluster of real `vaned` processes on loopback for integration tests. Every process is
//! killed when the cluster is dropped, also when a test fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use vane_proto::etcdserverpb::kv_client::KvClient;
use vane_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use vane_proto::etcdserverpb::{PutRequest, RangeRequest, StatusRequest};

/// A port free now, below the kernel's ephemeral range and never handed out before in this
/// test process.
///
/// Never handed out twice: tests of one file run at once, and without the record a member
/// started by one test could be given the port of a member another test has killed and is
/// about to start again (a read sent to a restarted member's client port was once answered
/// `Unimplemented`, as a peer port answers a KV call). Below the ephemeral range: a port
/// the kernel picks for `127.0.0.1:0` can be taken as the source port of the members' own
/// outgoing connections before `vaned` binds it.
pub fn free_port() -> u16 {
    vane_cluster::free_loopback_ports(1, &[]).expect("free port")[0]
}

pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub metrics_port: u16,
    pub data_dir: PathBuf,
    pub process: Option<Child>,
    pub log: PathBuf,
    /// Extra flags, e.g. `--snapshot-count`.
    pub extra_args: Vec<String>,
    /// `new` for founding members, `existing` for members added later.
    pub cluster_state: &'static str,
    /// `http` or `https`, for the client and peer URLs.
    pub scheme: &'static str,
    /// A program and its arguments that start `vaned` (its path is appended), such as
    /// `strace` injecting faults; `vaned` itself when empty.
    pub launcher: Vec<String>,
}

impl Member {
    pub fn client_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.peer_port)
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub members: Vec<Member>,
    initial_cluster: String,
}

impl Cluster {
    pub fn start(size: usize) -> Cluster {
        Cluster::start_with(size, &[])
    }

    /// Starts `size` founding members, each with `extra_args` added to its flags.
    pub fn start_with(size: usize, extra_args: &[&str]) -> Cluster {
        Cluster::start_with_scheme(size, "http", extra_args)
    }

    /// [`Cluster::start_with`] with `https` URLs when `scheme` says so (the TLS flags go
    /// in `extra_args`).
    pub fn start_with_scheme(size: usize, scheme: &'static str, extra_args: &[&str]) -> Cluster {
        let mut cluster = Cluster::described(size, scheme, extra_args);
        for i in 0..size {
            cluster.spawn(i);
        }
        cluster
    }

    /// `size` founding members with their flags, none of them started: the caller spawns
    /// the ones it wants.
    pub fn described(size: usize, scheme: &'static str, extra_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let members: Vec<Member> = (0..size)
            .map(|i| Member {
                name: format!("n{}", i + 1),
                client_port: free_port(),
                peer_port: free_port(),
                metrics_port: free_port(),
                data_dir: dir.path().join(format!("n{}", i + 1)),
                process: None,
                log: dir.path().join(format!("n{}.log", i + 1)),
                extra_args: Vec::new(),
                cluster_state: "new",
                scheme,
                launcher: Vec::new(),
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            dir,
            members,
            initial_cluster,
        };
        for m in &mut cluster.members {
            m.extra_args = extra_args.iter().map(|a| a.to_string()).collect();
        }
        cluster
    }

    /// The index of the founding member with the lowest member id, the one that initialises
    /// a new cluster (computed as `vaned` does, with the default `--initial-cluster-token`).
    pub fn first_founding_member(&self) -> usize {
        (0..self.members.len())
            .min_by_key(|&i| {
                let m = &self.members[i];
                vane_node::member::founding_member_id(
                    vane_node::config::INITIAL_CLUSTER_TOKEN_DEFAULT,
                    &m.name,
                    &[m.peer_url()],
                )
            })
            .expect("a member")
    }

    pub fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .expect("log file");
        let vaned = env!("CARGO_BIN_EXE_vaned");
        let mut command = match m.launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(vaned);
                command
            }
            None => Command::new(vaned),
        };
        let child = command
            .args([
                "--name",
                &m.name,
                "--data-dir",
                m.data_dir.to_str().expect("utf-8 path"),
                "--listen-client-urls",
                &m.client_url(),
                "--listen-peer-urls",
                &m.peer_url(),
                "--listen-metrics-urls",
                &format!("http://127.0.0.1:{}", m.metrics_port),
                "--initial-cluster",
                &self.initial_cluster,
                "--initial-cluster-state",
                m.cluster_state,
                "--log-level",
                "info,openraft=warn",
            ])
            .args(&m.extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn vaned");
        self.members[i].process = Some(child);
    }

    /// Describes a new member (not started) and returns its index and peer URL; the
    /// caller adds it with MemberAdd, then calls [`Cluster::spawn`].
    pub fn new_member(&mut self) -> (usize, String) {
        let i = self.members.len();
        let name = format!("n{}", i + 1);
        let peer_port = free_port();
        let scheme = self.members.first().map_or("http", |m| m.scheme);
        let peer_url = format!("{scheme}://127.0.0.1:{peer_port}");
        self.initial_cluster = format!("{},{name}={peer_url}", self.initial_cluster);
        let extra_args = self
            .members
            .first()
            .map(|m| m.extra_args.clone())
            .unwrap_or_default();
        self.members.push(Member {
            data_dir: self.dir.path().join(&name),
            log: self.dir.path().join(format!("{name}.log")),
            name,
            client_port: free_port(),
            peer_port,
            metrics_port: free_port(),
            process: None,
            extra_args,
            cluster_state: "existing",
            scheme,
            launcher: Vec::new(),
        });
        (i, peer_url)
    }

    pub async fn cluster_client(
        &self,
        i: usize,
    ) -> vane_proto::etcdserverpb::cluster_client::ClusterClient<Channel> {
        vane_proto::etcdserverpb::cluster_client::ClusterClient::new(
            channel(&self.members[i].client_url()).await,
        )
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self, i: usize) -> std::process::ExitStatus {
        let mut child = self.members[i].process.take().expect("running");
        let pid = child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        child.wait().expect("wait")
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect()
    }

    pub async fn kv(&self, i: usize) -> KvClient<Channel> {
        KvClient::new(channel(&self.members[i].client_url()).await)
    }

    pub async fn maintenance(&self, i: usize) -> MaintenanceClient<Channel> {
        MaintenanceClient::new(channel(&self.members[i].client_url()).await)
    }

    /// Waits until every running member names the same leader, that leader among them, and
    /// returns the leader's index.
    ///
    /// One member calling itself leader is not enough: openraft orders votes of one term by
    /// node id, so a member that campaigned in the same term as the winner, and has not yet
    /// heard from it, still deposes it with its higher id (and then loses, the winner's log
    /// being ahead); leadership settles a term later. Once every member has accepted the
    /// leader, none is campaigning.
    pub async fn wait_for_leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            if let Some(leader) = self.agreed_leader().await {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no leader all running members agree on within {within:?}; logs in {:?}",
                self.dir.path()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The index of the leader every running member names, if they all answer and agree.
    async fn agreed_leader(&self) -> Option<usize> {
        let mut named = None;
        let mut leader_index = None;
        for (i, m) in self.members.iter().enumerate() {
            if m.process.is_none() {
                continue;
            }
            let ch = tonic::transport::Endpoint::from_shared(m.client_url())
                .expect("url")
                .connect()
                .await
                .ok()?;
            let status = MaintenanceClient::new(ch)
                .status(StatusRequest {})
                .await
                .ok()?
                .into_inner();
            let member_id = status.header.as_ref().map_or(0, |h| h.member_id);
            if status.leader == 0 || named.is_some_and(|l| l != status.leader) {
                return None;
            }
            named = Some(status.leader);
            if status.leader == member_id {
                leader_index = Some(i);
            }
        }
        leader_index
    }

    pub fn log_of(&self, i: usize) -> String {
        std::fs::read_to_string(&self.members[i].log).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

pub async fn channel(url: &str) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match tonic::transport::Endpoint::from_shared(url.to_string())
            .expect("url")
            .connect()
            .await
        {
            Ok(channel) => return channel,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot connect to {url}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

pub async fn put(kv: &mut KvClient<Channel>, key: &str, value: &str) -> Result<i64, tonic::Status> {
    kv.put(PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().header.map_or(0, |h| h.revision))
}

pub async fn get(kv: &mut KvClient<Channel>, key: &str, serializable: bool) -> Option<String> {
    let response = kv
        .range(RangeRequest {
            key: key.into(),
            serializable,
            ..Default::default()
        })
        .await
        .expect("range")
        .into_inner();
    response
        .kvs
        .first()
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
}

/// A single-node etcd 3.4 (Debian's etcd-server) on free loopback ports, for comparing
/// etcdctl's output against Vane's; killed when dropped.
pub struct Etcd {
    process: Child,
    /// `host:port` of its client URL, the form etcdctl wants.
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Starts etcd and waits until `etcdctl endpoint health` succeeds.
pub fn start_etcd() -> Etcd {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = format!("http://127.0.0.1:{}", free_port());
    let peer = format!("http://127.0.0.1:{}", free_port());
    let process = Command::new("etcd")
        .args([
            "--name",
            "etcd",
            "--data-dir",
            dir.path().join("data").to_str().expect("utf-8"),
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &format!("etcd={peer}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd 3.4 is installed by `make setup` (Debian package etcd-server)");
    let endpoint = client.trim_start_matches("http://").to_string();
    let etcd = Etcd {
        process,
        endpoint,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", etcd.endpoint))
        .args(["endpoint", "health"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < deadline, "etcd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    etcd
}
