//! What one run is: the workload, the faults, the cluster size, how long, which seed.
//!
//! A run is reproducible from its configuration: the seed fixes every random choice the
//! runner makes (the fault schedule, the targets, each client's operations); only the
//! timing of real processes differs between two runs of the same seed. The configuration
//! is written to the run directory as `run.json`, and [`RunConfig::to_arguments`] turns it
//! back into the command line that repeats it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::JepsenError;

/// The smallest election timeout the runner accepts, in milliseconds: shorter ones make
/// a loaded two-core machine elect leaders spuriously, which tests the machine.
pub const ELECTION_TIMEOUT_MS_MIN: u64 = 1000;

/// What the clients do, and therefore which checkers judge the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Reads, writes and compare-and-sets on rotating single-key registers; checked
    /// for linearizability.
    Register,
    /// Unique adds to one set, final reads after healing; checked for lost adds.
    Set,
    /// Transactions of appends and reads on a few keys; checked for dependency cycles
    /// (Elle's list-append).
    Append,
    /// Writers plus watchers that resume on another node; checked against the store's
    /// final history for etcd's watch guarantees.
    Watch,
    /// Keys attached to kept-alive leases, with readers and TTL observers; checked for
    /// keys that vanish while their lease was certainly alive.
    Lease,
}

impl WorkloadKind {
    /// Every workload, in the order the smoke runs them.
    pub const ALL: [WorkloadKind; 5] = [
        WorkloadKind::Register,
        WorkloadKind::Set,
        WorkloadKind::Append,
        WorkloadKind::Watch,
        WorkloadKind::Lease,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Set => "set",
            WorkloadKind::Append => "append",
            WorkloadKind::Watch => "watch",
            WorkloadKind::Lease => "lease",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WorkloadKind {
    type Err = JepsenError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        WorkloadKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                JepsenError::InvalidArguments(format!(
                    "unknown workload {text:?}; expected one of register, set, append, watch, lease"
                ))
            })
    }
}

/// A family of faults the nemesis may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NemesisKind {
    /// Network partitions between nodes: isolate one, majority/minority, bridge, one-way.
    Partition,
    /// Random packet loss on every link between nodes.
    Loss,
    /// `kill -9` of one node, the leader, a minority or every node, then a restart on the
    /// same data directory.
    Kill,
    /// SIGSTOP of one node (often the leader), SIGCONT later.
    Pause,
    /// A node restarted with its wall clock skewed (`faketime`), monotonic clock intact.
    Clock,
    /// A member removed with MemberRemove and added back as a new member, empty disk.
    Membership,
    /// A node restarted under `strace` that makes fsync and fdatasync fail with EIO.
    Disk,
    /// Delay and jitter on links between nodes, through a userspace proxy per link.
    Delay,
}

impl NemesisKind {
    /// Every nemesis.
    pub const ALL: [NemesisKind; 8] = [
        NemesisKind::Partition,
        NemesisKind::Loss,
        NemesisKind::Kill,
        NemesisKind::Pause,
        NemesisKind::Clock,
        NemesisKind::Membership,
        NemesisKind::Disk,
        NemesisKind::Delay,
    ];

    /// The name on the command line and in the history.
    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::Partition => "partition",
            NemesisKind::Loss => "loss",
            NemesisKind::Kill => "kill",
            NemesisKind::Pause => "pause",
            NemesisKind::Clock => "clock",
            NemesisKind::Membership => "membership",
            NemesisKind::Disk => "disk",
            NemesisKind::Delay => "delay",
        }
    }
}

impl fmt::Display for NemesisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NemesisKind {
    type Err = JepsenError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        NemesisKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                JepsenError::InvalidArguments(format!(
                    "unknown nemesis {text:?}; expected a comma list of partition, loss, kill, pause, clock, membership, disk, delay, or none"
                ))
            })
    }
}

/// Parses `--nemesis`: a comma list, `none`, or `all`. Duplicates collapse; the order is
/// fixed so that a seed picks the same faults whatever order the list was written in.
pub fn parse_nemeses(text: &str) -> Result<Vec<NemesisKind>, JepsenError> {
    let text = text.trim();
    if text.is_empty() || text == "none" {
        return Ok(Vec::new());
    }
    if text == "all" {
        return Ok(NemesisKind::ALL.to_vec());
    }
    let mut kinds = text
        .split(',')
        .map(|part| part.trim().parse())
        .collect::<Result<Vec<NemesisKind>, _>>()?;
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// Everything that defines one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    /// What the clients do.
    pub workload: WorkloadKind,
    /// Which faults the nemesis may inject; empty for none.
    pub nemeses: Vec<NemesisKind>,
    /// Cluster size: 3 or 5.
    pub nodes: usize,
    /// How long the workload runs under faults, in seconds (healing and final reads come
    /// after).
    pub time_s: u64,
    /// Seeds every random choice of the run.
    pub seed: u64,
    /// The run directory: history, verdicts, timeline, node logs.
    pub out: PathBuf,
    /// The `vaned` binary; found with `vane_cluster::locate_vaned` when absent.
    pub vaned: Option<PathBuf>,
    /// Passed to the binary as `--planted-bug NAME` (only `vaned-planted` accepts it).
    pub planted_bug: Option<String>,
    /// The run is expected to find a violation (a planted-bug run): it succeeds only if
    /// one is found.
    pub expect_violation: bool,
    /// vaned's `--election-timeout`, in milliseconds.
    pub election_timeout_ms: u64,
    /// Client processes per node.
    pub clients_per_node: usize,
    /// Keep the nodes' data directories even when the run went as expected (they are
    /// always kept when it did not, for diagnosis; logs are always kept).
    #[serde(default)]
    pub keep_data: bool,
}

impl RunConfig {
    /// Checks what clap cannot: cluster size, election timeout, a non-zero duration.
    pub fn validate(&self) -> Result<(), JepsenError> {
        if !(self.nodes == 3 || self.nodes == 5) {
            return Err(JepsenError::InvalidArguments(format!(
                "--nodes {} is not supported; use 3 or 5",
                self.nodes
            )));
        }
        if self.election_timeout_ms < ELECTION_TIMEOUT_MS_MIN {
            return Err(JepsenError::InvalidArguments(format!(
                "--election-timeout-ms {} is below {ELECTION_TIMEOUT_MS_MIN}",
                self.election_timeout_ms
            )));
        }
        if self.time_s == 0 {
            return Err(JepsenError::InvalidArguments(
                "--time must be at least 1 second".to_string(),
            ));
        }
        if self.clients_per_node == 0 || self.clients_per_node > 8 {
            return Err(JepsenError::InvalidArguments(format!(
                "--clients-per-node {} is outside 1..=8",
                self.clients_per_node
            )));
        }
        Ok(())
    }

    /// The nemesis list as written on the command line.
    pub fn nemesis_list(&self) -> String {
        if self.nemeses.is_empty() {
            return "none".to_string();
        }
        self.nemeses
            .iter()
            .map(|kind| kind.name())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The `vane-jepsen run` arguments that repeat this run.
    pub fn to_arguments(&self) -> Vec<String> {
        let mut arguments = vec![
            "run".to_string(),
            "--workload".to_string(),
            self.workload.name().to_string(),
            "--nemesis".to_string(),
            self.nemesis_list(),
            "--nodes".to_string(),
            self.nodes.to_string(),
            "--time".to_string(),
            self.time_s.to_string(),
            "--seed".to_string(),
            self.seed.to_string(),
            "--out".to_string(),
            self.out.display().to_string(),
            "--election-timeout-ms".to_string(),
            self.election_timeout_ms.to_string(),
            "--clients-per-node".to_string(),
            self.clients_per_node.to_string(),
        ];
        if let Some(vaned) = &self.vaned {
            arguments.extend(["--vaned".to_string(), vaned.display().to_string()]);
        }
        if let Some(bug) = &self.planted_bug {
            arguments.extend(["--planted-bug".to_string(), bug.clone()]);
        }
        if self.expect_violation {
            arguments.push("--expect-violation".to_string());
        }
        if self.keep_data {
            arguments.push("--keep-data".to_string());
        }
        arguments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_lists_parse_in_a_fixed_order_without_duplicates() {
        assert_eq!(parse_nemeses("none").unwrap(), Vec::new());
        assert_eq!(
            parse_nemeses("kill, partition,kill").unwrap(),
            vec![NemesisKind::Partition, NemesisKind::Kill]
        );
        assert_eq!(parse_nemeses("all").unwrap().len(), NemesisKind::ALL.len());
        let error = parse_nemeses("partition,flood").unwrap_err().to_string();
        assert!(error.contains("flood"), "{error}");
    }

    #[test]
    fn workloads_parse_by_name() {
        for kind in WorkloadKind::ALL {
            assert_eq!(kind.name().parse::<WorkloadKind>().unwrap(), kind);
        }
        assert!("bank".parse::<WorkloadKind>().is_err());
    }

    #[test]
    fn a_configuration_rejects_sizes_and_timeouts_the_runner_does_not_support() {
        let config = RunConfig {
            workload: WorkloadKind::Register,
            nemeses: vec![NemesisKind::Kill],
            nodes: 3,
            time_s: 10,
            seed: 1,
            out: PathBuf::from("/tmp/x"),
            vaned: None,
            planted_bug: None,
            expect_violation: false,
            election_timeout_ms: 1000,
            clients_per_node: 2,
            keep_data: false,
        };
        assert!(config.validate().is_ok());
        assert!(
            RunConfig {
                nodes: 4,
                ..config.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            RunConfig {
                election_timeout_ms: 300,
                ..config.clone()
            }
            .validate()
            .is_err()
        );
        let arguments = config.to_arguments();
        assert!(arguments.windows(2).any(|w| w == ["--nemesis", "kill"]));
    }
}
