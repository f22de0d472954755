//! The `vane-jepsen` command line: `run` (one run), `smoke` (what CI runs) and `check`
//! (judge a finished run's files again, after a checker changed).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::checker::watch::{RevisionRecord, WatcherLog};
use crate::error::JepsenError;
use crate::history::{load_history, read_jsonl};
use crate::run_config::{RunConfig, WorkloadKind, parse_nemeses};
use crate::smoke::{SmokeOptions, run_smoke};
use crate::verdicts::{Evidence, Outcome, Recovery, judge};
use crate::{netns, run};

/// Exit status when a run's outcome is not the expected one.
const EXIT_UNEXPECTED: u8 = 1;
/// Exit status when a run could not be carried out or judged.
const EXIT_ERROR: u8 = 2;

/// Jepsen-style tests of Vane: real vaned processes, real faults, checked histories.
#[derive(Debug, Parser)]
#[command(name = "vane-jepsen", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One run: start a cluster in a fresh network namespace, run a workload under
    /// faults, heal, check, write the run directory. Needs root.
    Run(RunArgs),
    /// What CI runs: each workload on three nodes with mixed faults (expecting no
    /// violation), then vaned-planted with each planted bug (expecting one). Needs root.
    Smoke(SmokeArgs),
    /// Judges a finished run directory again from its files.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// register, set, append, watch or lease.
    #[arg(long)]
    workload: String,
    /// Comma list of partition, loss, kill, pause, clock, membership, disk; `none`; `all`.
    #[arg(long, default_value = "partition,kill")]
    nemesis: String,
    /// Cluster size: 3 or 5.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Seconds the workload runs under faults (healing and final reads come after).
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Seed of every random choice; a random one is chosen and printed when absent.
    #[arg(long)]
    seed: Option<u64>,
    /// The run directory [default: jepsen-runs/WORKLOAD-seedSEED].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The vaned binary [default: as vane-cluster finds it; vaned-planted beside it with
    /// --planted-bug].
    #[arg(long)]
    vaned: Option<PathBuf>,
    /// Passed to vaned-planted as `--planted-bug NAME` (stale-reads, ack-before-fsync).
    #[arg(long)]
    planted_bug: Option<String>,
    /// The run passes only if a checker finds a violation (for planted bugs).
    #[arg(long)]
    expect_violation: bool,
    /// vaned's --election-timeout in milliseconds (at least 1000).
    #[arg(long, default_value_t = 1000)]
    election_timeout_ms: u64,
    /// Client processes per node.
    #[arg(long, default_value_t = 2)]
    clients_per_node: usize,
    /// Keep the nodes' data directories after a run that went as expected (they are
    /// always kept after one that did not).
    #[arg(long)]
    keep_data: bool,
}

#[derive(Debug, Args)]
struct SmokeArgs {
    /// Where the runs' directories go [default: jepsen-runs/smoke-UNIXTIME].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seconds each workload run lasts (the planted-bug runs last 30).
    #[arg(long, default_value_t = 40)]
    time_per_run: u64,
    /// The vaned binary [default: as vane-cluster finds it].
    #[arg(long)]
    vaned: Option<PathBuf>,
    /// The vaned-planted binary [default: beside vaned].
    #[arg(long)]
    vaned_planted: Option<PathBuf>,
    /// Base seed of the runs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// A run directory written by `vane-jepsen run`.
    dir: PathBuf,
}

impl Cli {
    /// Carries out the command; the process's exit status.
    pub async fn execute(self) -> ExitCode {
        let result = match self.command {
            Command::Run(arguments) => execute_run(arguments).await,
            Command::Smoke(arguments) => execute_smoke(arguments).await,
            Command::Check(arguments) => execute_check(&arguments.dir),
        };
        match result {
            Ok(code) => code,
            Err(error) => {
                eprintln!("vane-jepsen: {error}");
                ExitCode::from(EXIT_ERROR)
            }
        }
    }
}

fn unix_time_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn absolute(path: PathBuf) -> Result<PathBuf, JepsenError> {
    if path.is_absolute() {
        return Ok(path);
    }
    let here = std::env::current_dir().map_err(|source| JepsenError::Io {
        action: "read the current directory",
        path: PathBuf::from("."),
        source,
    })?;
    Ok(here.join(path))
}

fn run_config(arguments: RunArgs) -> Result<RunConfig, JepsenError> {
    let workload: WorkloadKind = arguments.workload.parse()?;
    let seed = arguments
        .seed
        .unwrap_or_else(|| unix_time_s() ^ u64::from(std::process::id()));
    let out = arguments
        .out
        .unwrap_or_else(|| PathBuf::from(format!("jepsen-runs/{workload}-seed{seed}")));
    let config = RunConfig {
        workload,
        nemeses: parse_nemeses(&arguments.nemesis)?,
        nodes: arguments.nodes,
        time_s: arguments.time,
        seed,
        out: absolute(out)?,
        vaned: arguments.vaned.map(absolute).transpose()?,
        planted_bug: arguments.planted_bug,
        expect_violation: arguments.expect_violation,
        election_timeout_ms: arguments.election_timeout_ms,
        clients_per_node: arguments.clients_per_node,
        keep_data: arguments.keep_data,
    };
    config.validate()?;
    Ok(config)
}

async fn execute_run(arguments: RunArgs) -> Result<ExitCode, JepsenError> {
    let config = run_config(arguments)?;
    if netns::current_namespace().is_none() {
        // Outside: create the namespace and run again inside it, with every choice
        // (seed, directory) fixed so both processes agree.
        let status = netns::run_inside(&config.to_arguments()).await?;
        return Ok(match status.code() {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(EXIT_ERROR)),
            None => {
                eprintln!("vane-jepsen: the run was ended by a signal ({status})");
                ExitCode::from(EXIT_ERROR)
            }
        });
    }
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        summary = run::run(&config) => {
            let summary = summary?;
            println!("{}", summary.line);
            Ok(if summary.as_expected {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_UNEXPECTED)
            })
        }
        _ = tokio::signal::ctrl_c() => interrupted(),
        _ = terminate => interrupted(),
    }
}

fn interrupted() -> Result<ExitCode, JepsenError> {
    // Returning drops the run: the runtime's shutdown drops the task that owns the nodes,
    // which kills them; the outer process then deletes the namespace.
    eprintln!("vane-jepsen: interrupted; stopping the nodes");
    Ok(ExitCode::from(130))
}

async fn execute_smoke(arguments: SmokeArgs) -> Result<ExitCode, JepsenError> {
    let out = arguments
        .out
        .unwrap_or_else(|| PathBuf::from(format!("jepsen-runs/smoke-{}", unix_time_s())));
    let options = SmokeOptions {
        out: absolute(out)?,
        time_per_run_s: arguments.time_per_run,
        vaned: arguments.vaned.map(absolute).transpose()?,
        vaned_planted: arguments.vaned_planted.map(absolute).transpose()?,
        seed: arguments.seed,
    };
    let (lines, all_as_expected) = run_smoke(&options).await?;
    let failed = lines.iter().filter(|line| line.contains(": FAIL ")).count();
    println!(
        "vane-jepsen smoke: {} runs, {} as expected, {failed} not; runs in {}",
        lines.len(),
        lines.len() - failed,
        options.out.display()
    );
    Ok(if all_as_expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNEXPECTED)
    })
}

fn execute_check(dir: &Path) -> Result<ExitCode, JepsenError> {
    let run_file = dir.join("run.json");
    let text = std::fs::read_to_string(&run_file).map_err(|source| JepsenError::ReadHistory {
        path: run_file.clone(),
        source,
    })?;
    let record: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| JepsenError::MalformedRecord {
            path: run_file.clone(),
            line_number: 1,
            source,
        })?;
    let config: RunConfig = serde_json::from_value(record["config"].clone()).map_err(|source| {
        JepsenError::MalformedRecord {
            path: run_file,
            line_number: 1,
            source,
        }
    })?;
    let records = load_history(&dir.join("history.jsonl"))?;
    let (watchers, revisions): (Vec<WatcherLog>, Vec<RevisionRecord>) =
        if config.workload == WorkloadKind::Watch {
            (
                read_jsonl(&dir.join("watchers.jsonl"))?,
                read_jsonl(&dir.join("revisions.jsonl"))?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
    let recovery_file = dir.join("recovery.json");
    let recovery: Option<Recovery> = std::fs::read_to_string(&recovery_file)
        .ok()
        .map(|text| {
            serde_json::from_str(&text).map_err(|source| JepsenError::MalformedRecord {
                path: recovery_file.clone(),
                line_number: 1,
                source,
            })
        })
        .transpose()?;
    let verdicts = judge(
        config.workload,
        Evidence {
            records: &records,
            watchers: &watchers,
            revisions: &revisions,
            recovery: recovery.as_ref(),
        },
        Vec::new(),
    )?;
    let text = serde_json::to_string_pretty(&verdicts)
        .map_err(|source| JepsenError::EncodeRecord { source })?;
    println!("{text}");
    let as_expected = if config.expect_violation {
        verdicts.outcome == Outcome::Invalid
    } else {
        verdicts.outcome == Outcome::Valid
    };
    Ok(if as_expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNEXPECTED)
    })
}
