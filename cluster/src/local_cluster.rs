//! [`LocalCluster`]: real `vaned` processes on loopback, founded from a [`ClusterSpec`] or
//! reopened from a cluster directory, with the lifecycle operations a test, a benchmark
//! or a fault injector needs (kill, stop, restart, down). Membership changes live in
//! `membership.rs`.
//!
//! Every change is written to `cluster.json` at once, so a crash of the launcher never
//! leaves processes nobody can find. Processes this value started are killed when it is
//! dropped, unless [`LocalCluster::leave_running`] hands them over to the record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{ClusterError, Result};
use crate::locate::locate_vaned;
use crate::ports::choose_member_ports;
use crate::process::{
    Signal, last_log_line, pid_is_live, pid_runs_member, send_signal, spawn_vaned,
};
use crate::record::{ClusterRecord, InitialClusterState, MemberRecord, initial_cluster_of};
use crate::spec::{ClusterSpec, Timeouts};
use crate::status::{MemberStatus, leader_of, probe_member};

/// How often waits look again, in milliseconds: short against the one-second election
/// timeout, long enough not to load two cores.
pub(crate) const POLL_INTERVAL_MS: u64 = 50;

/// How a stop, kill or down ended for one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessEnd {
    /// It was not running to begin with.
    NotRunning,
    /// It exited after SIGTERM.
    Terminated,
    /// It was ended with SIGKILL.
    Killed,
}

/// A local cluster of real `vaned` processes, and the one owner of their process
/// handles and of `cluster.json`.
pub struct LocalCluster {
    /// The cluster directory, absolute.
    pub(crate) dir: PathBuf,
    /// The record, saved after every change.
    pub(crate) record: ClusterRecord,
    /// The bounds of every wait.
    pub(crate) timeouts: Timeouts,
    /// Processes this value started, by member name: killed on drop, reaped through
    /// their handle. Members started by another launcher are known only by pid.
    pub(crate) children: BTreeMap<String, Child>,
}

impl LocalCluster {
    /// Founds a cluster: starts `spec.nodes` members, records them in
    /// `DIR/cluster.json` and returns once they have elected a leader and every member
    /// answers on its client port. A leader needs only a majority: returning then let a
    /// caller reach a member still starting (a test did, on a loaded machine).
    pub async fn start(spec: ClusterSpec) -> Result<LocalCluster> {
        spec.validate()?;
        let vaned = locate_vaned(spec.vaned.as_deref())?;
        std::fs::create_dir_all(&spec.dir).map_err(|source| ClusterError::Io {
            action: "create the cluster directory",
            path: spec.dir.clone(),
            source,
        })?;
        let dir = std::fs::canonicalize(&spec.dir).map_err(|source| ClusterError::Io {
            action: "resolve the cluster directory",
            path: spec.dir.clone(),
            source,
        })?;
        let leftover_data = (1..=spec.nodes).any(|n| dir.join(format!("n{n}")).exists());
        if ClusterRecord::path_in(&dir).exists() || leftover_data {
            return Err(ClusterError::ClusterExists { dir });
        }

        let mut taken = Vec::new();
        let mut members = Vec::new();
        for number in 1..=spec.nodes {
            let number = u32::try_from(number)
                .map_err(|_| ClusterError::InvalidSpec("too many nodes".to_string()))?;
            let ports = choose_member_ports(spec.base_port, number, &taken)?;
            taken.extend([ports.client, ports.peer, ports.metrics]);
            let name = format!("n{number}");
            members.push(MemberRecord {
                data_dir: dir.join(&name),
                log: dir.join(format!("{name}.log")),
                name,
                client_port: ports.client,
                peer_port: ports.peer,
                metrics_port: ports.metrics,
                pid: None,
                member_id: None,
                initial_cluster: String::new(),
                initial_cluster_state: InitialClusterState::New,
            });
        }
        let peer_urls: Vec<(String, String)> = members
            .iter()
            .map(|m| (m.name.clone(), m.peer_url()))
            .collect();
        let initial_cluster =
            initial_cluster_of(peer_urls.iter().map(|(n, u)| (n.as_str(), u.as_str())));
        for member in &mut members {
            member.initial_cluster = initial_cluster.clone();
        }

        let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
        let mut cluster = LocalCluster {
            record: ClusterRecord {
                vaned,
                cluster_token: cluster_token(),
                base_port: spec.base_port,
                heartbeat_interval_ms: spec.heartbeat_interval_ms,
                election_timeout_ms: spec.election_timeout_ms,
                log_level: spec.log_level.clone(),
                extra_args: spec.extra_args.clone(),
                worker_threads: Some(crate::spec::worker_threads_per_member(spec.nodes)),
                names_issued: u32::try_from(names.len()).unwrap_or(u32::MAX),
                members,
            },
            dir,
            timeouts: spec.timeouts.clone(),
            children: BTreeMap::new(),
        };
        cluster.save()?;
        for name in &names {
            cluster.spawn_member(name)?;
        }
        cluster.wait_for_leader().await?;
        for name in &names {
            cluster.wait_for_member_ready(name).await?;
        }
        Ok(cluster)
    }

    /// Reopens the cluster recorded in `dir` (by `up` or [`LocalCluster::start`]), to
    /// inspect or change it from another process. Its members were started elsewhere,
    /// so dropping the result leaves them running.
    pub fn open(dir: impl AsRef<Path>) -> Result<LocalCluster> {
        let dir = dir.as_ref();
        let record = ClusterRecord::load(dir)?;
        let dir = std::fs::canonicalize(dir).map_err(|source| ClusterError::Io {
            action: "resolve the cluster directory",
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(LocalCluster {
            dir,
            record,
            timeouts: Timeouts::default(),
            children: BTreeMap::new(),
        })
    }

    /// Replaces the bounds of the waits of later operations.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
    }

    /// The cluster directory, absolute.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record as last saved: members, ports, pids, flags.
    pub fn record(&self) -> &ClusterRecord {
        &self.record
    }

    /// The names of the current members, in the order they joined.
    pub fn member_names(&self) -> Vec<String> {
        self.record.members.iter().map(|m| m.name.clone()).collect()
    }

    /// The client URLs of every member, running or not, in member order: what
    /// `etcdctl --endpoints` and tonic's `Endpoint` take.
    pub fn endpoints(&self) -> Vec<String> {
        self.record.client_urls()
    }

    /// The client URL of the member `name`.
    pub fn client_url(&self, name: &str) -> Result<String> {
        Ok(self.record.member(name)?.client_url())
    }

    /// Whether the member `name` has a running process.
    pub fn is_running(&self, name: &str) -> Result<bool> {
        Ok(self.runs(self.record.member(name)?))
    }

    /// Every member's process and Raft state.
    pub async fn status(&self) -> Vec<MemberStatus> {
        let mut statuses = Vec::with_capacity(self.record.members.len());
        for member in &self.record.members {
            let alive = self.runs(member);
            statuses.push(probe_member(member, alive, self.timeouts.rpc_timeout_ms).await);
        }
        statuses
    }

    /// The name of the current leader, if the running members agree on one.
    pub async fn leader(&self) -> Option<String> {
        leader_of(&self.status().await)
    }

    /// Waits, up to `timeouts.leader_wait_ms`, until the members agree on a leader, and
    /// returns its name. Fails early if a member this value started has exited.
    pub async fn wait_for_leader(&mut self) -> Result<String> {
        let waited_ms = self.timeouts.leader_wait_ms;
        let deadline = Instant::now() + Duration::from_millis(waited_ms);
        loop {
            self.fail_if_a_child_exited()?;
            if let Some(leader) = self.leader().await {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::NoLeader {
                    waited_ms,
                    dir: self.dir.clone(),
                });
            }
            poll_pause().await;
        }
    }

    /// Ends the member `name` with SIGKILL, as a crash would.
    pub async fn kill(&mut self, name: &str) -> Result<ProcessEnd> {
        let member = self.record.member(name)?.clone();
        let end = if let Some(child) = self.children.get_mut(name) {
            if matches!(child.try_wait(), Ok(None)) {
                // `Child::kill` is SIGKILL; an error means it has just exited by itself.
                let _ = child.kill();
                ProcessEnd::Killed
            } else {
                ProcessEnd::NotRunning
            }
        } else if let (true, Some(pid)) = (self.runs(&member), member.pid) {
            send_signal(pid, Signal::Kill)?;
            ProcessEnd::Killed
        } else {
            ProcessEnd::NotRunning
        };
        let waited_ms = self.timeouts.stop_wait_ms;
        if end == ProcessEnd::Killed && !self.wait_for_exit(name, waited_ms).await {
            return Err(ClusterError::StillRunningAfterKill {
                name: name.to_string(),
                pid: member.pid.unwrap_or_default(),
                waited_ms,
            });
        }
        self.forget_process(name)?;
        Ok(end)
    }

    /// Stops the member `name` with SIGTERM (it hands over leadership first) and waits,
    /// up to `timeouts.stop_wait_ms`, for it to exit.
    pub async fn stop(&mut self, name: &str) -> Result<ProcessEnd> {
        let member = self.record.member(name)?.clone();
        let Some(pid) = member.pid.filter(|_| self.runs(&member)) else {
            self.forget_process(name)?;
            return Ok(ProcessEnd::NotRunning);
        };
        send_signal(pid, Signal::Term)?;
        if !self.wait_for_exit(name, self.timeouts.stop_wait_ms).await {
            return Err(ClusterError::StopTimedOut {
                name: name.to_string(),
                pid,
                waited_ms: self.timeouts.stop_wait_ms,
                log: member.log,
            });
        }
        self.forget_process(name)?;
        Ok(ProcessEnd::Terminated)
    }

    /// Starts the member `name` again with the flags and data of its first start
    /// (stopping it gracefully first if it runs), and waits until it answers.
    pub async fn restart(&mut self, name: &str) -> Result<()> {
        self.stop(name).await?;
        self.spawn_member(name)?;
        self.wait_for_member_ready(name).await
    }

    /// Stops every member: SIGTERM to all at once, then SIGKILL to whoever is still
    /// running after `timeouts.stop_wait_ms`. Data and the record stay, so members can be
    /// restarted one by one.
    pub async fn down(&mut self) -> Result<Vec<(String, ProcessEnd)>> {
        let mut ends = Vec::new();
        for member in self.record.members.clone() {
            let running = self.runs(&member);
            if let (true, Some(pid)) = (running, member.pid) {
                send_signal(pid, Signal::Term)?;
                ends.push((member.name.clone(), ProcessEnd::Terminated));
            } else {
                ends.push((member.name.clone(), ProcessEnd::NotRunning));
            }
        }
        let deadline = Instant::now() + Duration::from_millis(self.timeouts.stop_wait_ms);
        for (name, end) in &mut ends {
            if *end != ProcessEnd::Terminated {
                continue;
            }
            let left_ms = deadline
                .saturating_duration_since(Instant::now())
                .as_millis();
            if !self
                .wait_for_exit(name, u64::try_from(left_ms).unwrap_or(u64::MAX))
                .await
            {
                self.kill(name).await?;
                *end = ProcessEnd::Killed;
            }
        }
        for member in self.member_names() {
            self.forget_process(&member)?;
        }
        Ok(ends)
    }

    /// Hands the processes this value started over to the record: dropping it then
    /// leaves them running, for another `vane-cluster` command to find. What the CLI
    /// does; tests let the drop kill their members instead.
    pub fn leave_running(mut self) {
        // Dropping a `Child` neither kills nor waits for it.
        self.children.clear();
    }

    /// Starts the member `name` from its record and remembers the process.
    pub(crate) fn spawn_member(&mut self, name: &str) -> Result<()> {
        let member = self.record.member(name)?.clone();
        let arguments = self.record.vaned_arguments(&member);
        let child = spawn_vaned(name, &self.record.vaned, &arguments, &member.log)?;
        self.record.member_mut(name)?.pid = Some(child.id());
        self.children.insert(name.to_string(), child);
        self.save()
    }

    /// Waits, up to `timeouts.member_ready_ms`, until the member `name` answers Status,
    /// and records its member id.
    pub(crate) async fn wait_for_member_ready(&mut self, name: &str) -> Result<()> {
        let waited_ms = self.timeouts.member_ready_ms;
        let deadline = Instant::now() + Duration::from_millis(waited_ms);
        loop {
            self.fail_if_a_child_exited()?;
            let member = self.record.member(name)?.clone();
            if !self.runs(&member) {
                return Err(ClusterError::ExitedEarly {
                    name: name.to_string(),
                    status: "not running".to_string(),
                    last_log_line: last_log_line(&member.log),
                    log: member.log,
                });
            }
            let status = probe_member(&member, true, self.timeouts.rpc_timeout_ms).await;
            if let Some(raft) = status.raft {
                self.record.member_mut(name)?.member_id = Some(raft.member_id);
                return self.save();
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::MemberNotReady {
                    name: name.to_string(),
                    url: member.client_url(),
                    waited_ms,
                    log: member.log,
                });
            }
            poll_pause().await;
        }
    }

    /// Stops the member `name` whatever it takes: SIGTERM, then SIGKILL after
    /// `timeouts.stop_wait_ms`.
    pub(crate) async fn stop_or_kill(&mut self, name: &str) -> Result<ProcessEnd> {
        match self.stop(name).await {
            Err(ClusterError::StopTimedOut { .. }) => self.kill(name).await,
            other => other,
        }
    }

    /// Writes the record.
    pub(crate) fn save(&self) -> Result<()> {
        self.record.save(&self.dir)
    }

    /// Whether the member's process runs: by its handle if this value started it (its
    /// pid cannot be recycled before we reap it), else by its recorded pid.
    fn runs(&self, member: &MemberRecord) -> bool {
        match self.children.get(&member.name) {
            Some(child) => pid_is_live(child.id()),
            None => member_is_running(member),
        }
    }

    /// Waits up to `within_ms` for the member's process to end; whether it did.
    async fn wait_for_exit(&mut self, name: &str, within_ms: u64) -> bool {
        let deadline = Instant::now() + Duration::from_millis(within_ms);
        loop {
            let gone = match self.children.get_mut(name) {
                Some(child) => !matches!(child.try_wait(), Ok(None)),
                None => self.record.member(name).map_or(true, |m| !self.runs(m)),
            };
            if gone {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            poll_pause().await;
        }
    }

    /// Drops the process handle and the pid of a member that has ended.
    fn forget_process(&mut self, name: &str) -> Result<()> {
        if let Some(mut child) = self.children.remove(name) {
            // Reaps it; it has exited already, so this does not block.
            let _ = child.try_wait();
        }
        let member = self.record.member_mut(name)?;
        if member.pid.take().is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// A member this value started has exited on its own: fail with its last log line
    /// rather than wait for something that cannot happen.
    fn fail_if_a_child_exited(&mut self) -> Result<()> {
        let exited = self
            .children
            .iter_mut()
            .find_map(|(name, child)| match child.try_wait() {
                Ok(Some(status)) => Some((name.clone(), status.to_string())),
                _ => None,
            });
        let Some((name, status)) = exited else {
            return Ok(());
        };
        self.children.remove(&name);
        let log = self.record.member(&name)?.log.clone();
        self.record.member_mut(&name)?.pid = None;
        self.save()?;
        Err(ClusterError::ExitedEarly {
            name,
            status,
            last_log_line: last_log_line(&log),
            log,
        })
    }
}

impl Drop for LocalCluster {
    /// Kills every process this value started, also when a test panics, so no test run
    /// leaves members behind.
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether the member's recorded process is running.
fn member_is_running(member: &MemberRecord) -> bool {
    member
        .pid
        .is_some_and(|pid| pid_runs_member(pid, &member.data_dir))
}

/// Sleeps one poll interval.
pub(crate) async fn poll_pause() {
    tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
}

/// A token no other local cluster uses, so members of two clusters on one machine
/// never take each other for peers.
fn cluster_token() -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("vane-local-{}-{now_ms}", std::process::id())
}
