//! The smoke suite CI runs: every workload for under a minute on three nodes with mixed
//! faults against the real `vaned` (expecting no violation), then two planted-bug runs
//! against `vaned-planted` (expecting a violation each): stale reads under partitions
//! (the register checker must find a non-linearizable read), and acknowledgements
//! before fsync under whole-cluster kills (nodes must come back on their own data). Each run is a separate `vane-jepsen run`
//! process in its own network namespace, so one run's leftovers cannot touch the next.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::error::JepsenError;
use crate::run_config::{NemesisKind, RunConfig, WorkloadKind};

/// Options of `vane-jepsen smoke`.
#[derive(Debug, Clone)]
pub struct SmokeOptions {
    /// Where the runs' directories go (one subdirectory per run).
    pub out: PathBuf,
    /// Seconds each run's workload lasts.
    pub time_per_run_s: u64,
    /// The real `vaned`; found like `vane-jepsen run` finds it when absent.
    pub vaned: Option<PathBuf>,
    /// `vaned-planted`; beside the real `vaned` when absent.
    pub vaned_planted: Option<PathBuf>,
    /// The base seed; each run adds its position.
    pub seed: u64,
}

/// The seed of the planted stale-reads run, offset from the base seed: with the default
/// base seed every partition of its timeline cuts one node off from the others while
/// clients keep reading from it, which is what serves a stale read.
const PLANTED_STALE_READS_SEED_OFFSET: u64 = 106;
/// The seed of the planted ack-before-fsync run, offset from the base seed: with the
/// default base seed most kills of its timeline take down every node at once, so only
/// what reached the disk survives.
const PLANTED_ACK_BEFORE_FSYNC_SEED_OFFSET: u64 = 2;
/// Seconds each planted-bug run lasts: both bugs show within seconds.
const PLANTED_RUN_S: u64 = 30;

/// The runs of the smoke, in order.
pub fn smoke_plan(options: &SmokeOptions) -> Vec<RunConfig> {
    use NemesisKind::{Clock, Delay, Disk, Kill, Loss, Membership, Partition, Pause};
    let mixes: [(WorkloadKind, Vec<NemesisKind>); 5] = [
        (WorkloadKind::Register, vec![Partition, Kill, Pause, Delay]),
        (WorkloadKind::Set, vec![Kill, Partition, Disk]),
        (
            WorkloadKind::Append,
            vec![Partition, Pause, Membership, Loss],
        ),
        (WorkloadKind::Watch, vec![Kill, Partition, Clock]),
        (WorkloadKind::Lease, vec![Pause, Partition, Clock, Delay]),
    ];
    let base = |workload: WorkloadKind, nemeses: Vec<NemesisKind>, seed: u64| RunConfig {
        workload,
        nemeses,
        nodes: 3,
        time_s: options.time_per_run_s,
        seed,
        out: options.out.join(format!("{workload}-seed{seed}")),
        vaned: options.vaned.clone(),
        planted_bug: None,
        expect_violation: false,
        election_timeout_ms: 1000,
        clients_per_node: 2,
        keep_data: false,
    };
    let mut plan: Vec<RunConfig> = mixes
        .into_iter()
        .enumerate()
        .map(|(position, (workload, nemeses))| {
            base(workload, nemeses, options.seed + position as u64)
        })
        .collect();
    for (bug, workload, nemesis, offset) in [
        (
            "stale-reads",
            WorkloadKind::Register,
            Partition,
            PLANTED_STALE_READS_SEED_OFFSET,
        ),
        (
            "ack-before-fsync",
            WorkloadKind::Set,
            Kill,
            PLANTED_ACK_BEFORE_FSYNC_SEED_OFFSET,
        ),
    ] {
        let seed = options.seed + offset;
        plan.push(RunConfig {
            out: options.out.join(format!("planted-{bug}-seed{seed}")),
            vaned: options.vaned_planted.clone(),
            planted_bug: Some(bug.to_string()),
            expect_violation: true,
            time_s: PLANTED_RUN_S.min(options.time_per_run_s.max(10)),
            ..base(workload, vec![nemesis], seed)
        });
    }
    plan
}

/// Runs the smoke; returns the summary lines and whether every run went as expected.
pub async fn run_smoke(options: &SmokeOptions) -> Result<(Vec<String>, bool), JepsenError> {
    crate::netns::require_root()?;
    std::fs::create_dir_all(&options.out).map_err(|source| JepsenError::Io {
        action: "create the smoke directory",
        path: options.out.clone(),
        source,
    })?;
    let plan = smoke_plan(options);
    for config in &plan {
        // Fail before spending minutes when a binary is missing.
        crate::run::resolve_vaned(config)?;
    }
    let mut lines = Vec::new();
    let mut all_as_expected = true;
    for config in &plan {
        let (line, as_expected) = run_child(config).await?;
        println!("{line}");
        all_as_expected &= as_expected;
        lines.push(line);
    }
    Ok((lines, all_as_expected))
}

/// Runs `config` as a `vane-jepsen run` child; its summary line and whether it passed.
async fn run_child(config: &RunConfig) -> Result<(String, bool), JepsenError> {
    let executable = std::env::current_exe().map_err(|source| JepsenError::Io {
        action: "find the running executable",
        path: Path::new("/proc/self/exe").to_path_buf(),
        source,
    })?;
    let mut child = tokio::process::Command::new(executable)
        .args(config.to_arguments())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| JepsenError::Environment {
            what: "cannot start a smoke run".to_string(),
            detail: error.to_string(),
        })?;
    let mut summary = None;
    if let Some(stdout) = child.stdout.take() {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("vane-jepsen: ") {
                summary = Some(line);
            } else {
                println!("{line}");
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|error| JepsenError::Environment {
            what: "lost track of a smoke run".to_string(),
            detail: error.to_string(),
        })?;
    let line = summary.unwrap_or_else(|| {
        format!(
            "vane-jepsen: FAIL workload={} nemesis={} seed={} ended without a verdict ({status}); see {}",
            config.workload,
            config.nemesis_list(),
            config.seed,
            config.out.display()
        )
    });
    Ok((line, status.success()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::{Fault, PartitionShape, plan_faults};

    fn options() -> SmokeOptions {
        SmokeOptions {
            out: PathBuf::from("/tmp/smoke"),
            time_per_run_s: 45,
            vaned: None,
            vaned_planted: None,
            seed: 1,
        }
    }

    #[test]
    fn every_workload_runs_once_and_each_planted_run_expects_a_violation() {
        let plan = smoke_plan(&options());
        for workload in WorkloadKind::ALL {
            assert_eq!(
                plan.iter()
                    .filter(|config| config.workload == workload && !config.expect_violation)
                    .count(),
                1
            );
        }
        let planted: Vec<_> = plan
            .iter()
            .filter(|config| config.expect_violation)
            .collect();
        assert_eq!(planted.len(), 2);
        assert_eq!(planted[0].planted_bug.as_deref(), Some("stale-reads"));
        assert_eq!(planted[1].planted_bug.as_deref(), Some("ack-before-fsync"));
        for config in &plan {
            config.validate().unwrap();
        }
        let total_s: u64 = plan.iter().map(|config| config.time_s).sum();
        assert!(total_s <= 5 * 60, "{total_s}");
    }

    #[test]
    fn the_planted_fsync_run_kills_the_whole_cluster_more_than_once() {
        let planted = smoke_plan(&options())
            .into_iter()
            .find(|config| config.planted_bug.as_deref() == Some("ack-before-fsync"))
            .unwrap();
        let faults = plan_faults(&planted.nemeses, 3, planted.time_s * 1000, planted.seed);
        let kill_alls = faults
            .iter()
            .filter(|planned| {
                matches!(
                    planned.fault,
                    Fault::Kill {
                        targets: crate::nemesis::KillTargets::All
                    }
                )
            })
            .count();
        assert!(kill_alls >= 2, "{faults:?}");
    }

    #[test]
    fn the_planted_run_cuts_one_node_off_early() {
        let options = options();
        let planted = smoke_plan(&options)
            .into_iter()
            .find(|config| config.expect_violation)
            .unwrap();
        let faults = plan_faults(&planted.nemeses, 3, planted.time_s * 1000, planted.seed);
        let cuts_a_node_off = |fault: &Fault| {
            matches!(
                fault,
                Fault::Partition {
                    shape: PartitionShape::IsolateOne { .. }
                        | PartitionShape::MajorityMinority { .. }
                }
            )
        };
        assert!(
            faults
                .iter()
                .take(2)
                .any(|planned| cuts_a_node_off(&planned.fault)),
            "{faults:?}"
        );
    }
}
