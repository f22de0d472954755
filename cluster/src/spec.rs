//! What a caller asks for when founding a local cluster, and how long each wait may take.
//! The defaults are what the CLI uses; test suites shorten or lengthen them here rather
//! than sleeping on their own.

use std::path::PathBuf;

/// Every wait of the launcher is bounded by one of these, so a broken `vaned` fails a
/// command or a test with a message instead of hanging it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long founding members, or the survivors of a kill, may take to elect a leader.
    pub leader_wait_ms: u64,
    /// How long a started member may take to answer on its client port.
    pub member_ready_ms: u64,
    /// How long a member may take to exit after SIGTERM (it hands over leadership first).
    pub stop_wait_ms: u64,
    /// How long a new learner may take to apply what the leader has applied.
    pub catch_up_wait_ms: u64,
    /// How long MemberPromote is retried while the server says the learner is not ready.
    pub promote_wait_ms: u64,
    /// The deadline of one etcd API call, connecting included.
    pub rpc_timeout_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            leader_wait_ms: 30_000,
            member_ready_ms: 20_000,
            stop_wait_ms: 15_000,
            catch_up_wait_ms: 60_000,
            promote_wait_ms: 30_000,
            rpc_timeout_ms: 5_000,
        }
    }
}

/// Worker threads for each of `members` members that share this machine: its cores
/// divided among them, at least one each. A local cluster's members all run here, and
/// each `vaned` would otherwise start a worker per core of the whole machine, so that
/// three members on two cores ran six workers preempting each other (see `vaned
/// --worker-threads`). The benchmark gives etcd's members the same share (`GOMAXPROCS`).
pub fn worker_threads_per_member(members: usize) -> usize {
    share_of_cores(
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        members,
    )
}

fn share_of_cores(cores: usize, members: usize) -> usize {
    (cores / members.max(1)).max(1)
}

/// How to found a local cluster: the input of [`crate::LocalCluster::start`].
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Number of founding members, named `n1`..`nN`.
    pub nodes: usize,
    /// Holds `cluster.json`, each member's data directory `nK/` and log `nK.log`. It is
    /// created if missing and must not already hold a cluster.
    pub dir: PathBuf,
    /// The `vaned` binary; `None` looks in the usual build locations (see
    /// [`crate::locate_vaned`]).
    pub vaned: Option<PathBuf>,
    /// With `Some(P)`, member `nK` listens on clients P+10(K-1), peers +1, metrics +2,
    /// so that ports are predictable; with `None` every port is a free one the operating
    /// system picked.
    pub base_port: Option<u16>,
    /// Passed to `vaned --heartbeat-interval`.
    pub heartbeat_interval_ms: u64,
    /// Passed to `vaned --election-timeout`; at least 1000 on a shared two-core machine,
    /// or slow scheduling causes spurious elections.
    pub election_timeout_ms: u64,
    /// Passed to `vaned --log-level`.
    pub log_level: String,
    /// The bounds of every wait.
    pub timeouts: Timeouts,
    /// Further `vaned` flags every member gets (e.g. `--auth-token-ttl 2` in a test of
    /// token expiry).
    pub extra_args: Vec<String>,
}

impl ClusterSpec {
    /// The smallest election timeout accepted, in milliseconds: below it two cores and a
    /// busy test run produce elections nobody asked for.
    pub const ELECTION_TIMEOUT_MIN_MS: u64 = 1_000;

    /// A spec with the defaults: heartbeat 100 ms, election timeout 1000 ms, free ports.
    pub fn new(nodes: usize, dir: impl Into<PathBuf>) -> Self {
        ClusterSpec {
            nodes,
            dir: dir.into(),
            vaned: None,
            base_port: None,
            heartbeat_interval_ms: 100,
            election_timeout_ms: Self::ELECTION_TIMEOUT_MIN_MS,
            log_level: "info,openraft=warn".to_string(),
            timeouts: Timeouts::default(),
            extra_args: Vec::new(),
        }
    }

    /// Refuses specs that could only fail later with a less helpful message.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        if self.nodes == 0 {
            return Err(crate::ClusterError::InvalidSpec(
                "--nodes must be at least 1 (3 or 5 tolerate failures)".to_string(),
            ));
        }
        if self.election_timeout_ms < Self::ELECTION_TIMEOUT_MIN_MS {
            return Err(crate::ClusterError::InvalidSpec(format!(
                "election timeout {} ms is below {} ms; raise it",
                self.election_timeout_ms,
                Self::ELECTION_TIMEOUT_MIN_MS
            )));
        }
        if self.heartbeat_interval_ms == 0
            || self.heartbeat_interval_ms.saturating_mul(2) > self.election_timeout_ms
        {
            return Err(crate::ClusterError::InvalidSpec(format!(
                "heartbeat interval {} ms must be positive and at most half the election \
                 timeout ({} ms)",
                self.heartbeat_interval_ms, self.election_timeout_ms
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_share_the_cores_and_each_gets_at_least_one() {
        assert_eq!(share_of_cores(2, 3), 1);
        assert_eq!(share_of_cores(8, 3), 2);
        assert_eq!(share_of_cores(16, 1), 16);
        assert_eq!(share_of_cores(1, 5), 1);
        assert_eq!(share_of_cores(4, 0), 4);
    }

    #[test]
    fn defaults_are_valid_and_bad_specs_are_refused() {
        assert!(ClusterSpec::new(3, "/tmp/x").validate().is_ok());
        assert!(ClusterSpec::new(0, "/tmp/x").validate().is_err());
        let mut fast = ClusterSpec::new(3, "/tmp/x");
        fast.election_timeout_ms = 300;
        assert!(fast.validate().is_err());
        let mut slow_heartbeat = ClusterSpec::new(3, "/tmp/x");
        slow_heartbeat.heartbeat_interval_ms = 600;
        assert!(slow_heartbeat.validate().is_err());
    }
}
