//! One run, start to finish, inside the run's network namespace: start the nodes, run
//! the workload while the nemesis injects faults, heal, let the workload finish, stop
//! the nodes, judge the history, write the run directory, print one summary line.
//!
//! The run directory holds `run.json` (the configuration, and the command that repeats
//! it), `history.jsonl`, `verdicts.json`, `timeline.html`, `leaders.jsonl`,
//! `recovery.json` (crashes, and whether the final heal brought every node back), for the
//! watch workload `watchers.jsonl` and `revisions.jsonl`, and `nodes/` with every
//! node's log and, unless the run went as expected, its data directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::JepsenError;
use crate::firewall;
use crate::history::write_jsonl;
use crate::history_sink::HistorySink;
use crate::leader_monitor::{leader_changes, monitor_leaders};
use crate::link_proxy::{self, LinkProxies};
use crate::nemesis::{heal_everything, plan_faults, run_nemesis};
use crate::nodes::{NodeSet, NodeSetSpec};
use crate::run_clock::RunClock;
use crate::run_config::{NemesisKind, RunConfig, WorkloadKind};
use crate::timeline::render_timeline;
use crate::verdicts::{Evidence, Outcome, Recovery, Verdicts, judge};
use crate::workload::{self, WorkloadContext, WorkloadOutput};

/// How long the founding nodes get to elect a leader, in milliseconds.
const START_WAIT_MS: u64 = 30_000;

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The verdicts.
    pub verdicts: Verdicts,
    /// Whether the outcome is the expected one (valid, or invalid for a planted bug).
    pub as_expected: bool,
    /// The one summary line.
    pub line: String,
}

/// `run.json`: what was run, with what, and how to repeat it.
#[derive(Debug, Serialize)]
struct RunRecord<'a> {
    config: &'a RunConfig,
    vaned: &'a Path,
    repeat_with: String,
}

/// The `vaned` binary for `config`: `--vaned`, else `vane_cluster::locate_vaned`, and for
/// a planted bug the `vaned-planted` beside it.
pub fn resolve_vaned(config: &RunConfig) -> Result<PathBuf, JepsenError> {
    if let Some(path) = &config.vaned {
        return if path.is_file() {
            Ok(path.clone())
        } else {
            Err(JepsenError::Environment {
                what: format!("no vaned binary at {}", path.display()),
                detail: "pass the path of a built binary to --vaned".to_string(),
            })
        };
    }
    let vaned = vane_cluster::locate_vaned(None).map_err(|error| JepsenError::Environment {
        what: "cannot find vaned".to_string(),
        detail: error.to_string(),
    })?;
    if config.planted_bug.is_none() {
        return Ok(vaned);
    }
    let planted = vaned.with_file_name("vaned-planted");
    if planted.is_file() {
        Ok(planted)
    } else {
        Err(JepsenError::Environment {
            what: format!("no vaned-planted binary at {}", planted.display()),
            detail: "build it with `cargo build -p vane-node --features planted-bugs --bin vaned-planted` (only that --bin, so the normal vaned is not rebuilt with the feature), or pass --vaned PATH".to_string(),
        })
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> JepsenError {
    let path = path.to_path_buf();
    move |source| JepsenError::Io {
        action,
        path,
        source,
    }
}

/// Carries out the run described by `config`. Must be called inside the run's own
/// network namespace (see `netns::run_inside`).
pub async fn run(config: &RunConfig) -> Result<RunSummary, JepsenError> {
    config.validate()?;
    firewall::check_available()?;
    let vaned = resolve_vaned(config)?;
    if config.out.join("history.jsonl").exists() {
        return Err(JepsenError::InvalidArguments(format!(
            "{} already holds a run; choose another --out",
            config.out.display()
        )));
    }
    std::fs::create_dir_all(&config.out)
        .map_err(io_error("create the run directory", &config.out))?;
    let out = std::fs::canonicalize(&config.out).map_err(io_error("resolve", &config.out))?;
    let mut repeat = config.clone();
    repeat.out = PathBuf::from(format!("{}-repeat", out.display()));
    let record = RunRecord {
        config,
        vaned: &vaned,
        repeat_with: format!("vane-jepsen {}", repeat.to_arguments().join(" ")),
    };
    write_json(&out.join("run.json"), &record)?;

    let mut nodes = NodeSet::new(NodeSetSpec {
        vaned,
        planted_bug: config.planted_bug.clone(),
        election_timeout_ms: config.election_timeout_ms,
        dir: out.join("nodes"),
        count: config.nodes,
        cluster_token: format!("vane-jepsen-{}-{}", config.seed, std::process::id()),
    })?;
    // Peer connections opened before the proxies exist would never pass through them.
    let proxies = if config.nemeses.contains(&NemesisKind::Delay) {
        Some(LinkProxies::start(config.nodes).await?)
    } else {
        None
    };
    nodes.start_all(START_WAIT_MS).await?;

    let clock = RunClock::start();
    let sink = HistorySink::new(clock);
    let (stop_monitor, monitor_stop) = tokio::sync::watch::channel(false);
    let monitor = tokio::spawn(monitor_leaders(clock, config.nodes, monitor_stop));

    let workload_start = Instant::now();
    let end = workload_start + Duration::from_secs(config.time_s);
    let (healed_sender, healed) = tokio::sync::watch::channel(None);
    let context = WorkloadContext {
        sink: sink.clone(),
        nodes: config.nodes,
        clients_per_node: config.clients_per_node,
        seed: config.seed,
        end,
        healed,
    };
    let workload = tokio::spawn(run_workload(config.workload, context));
    let plan = plan_faults(
        &config.nemeses,
        config.nodes,
        config.time_s * 1000,
        config.seed,
    );
    let nemesis = tokio::spawn(run_nemesis(
        nodes,
        proxies.clone(),
        plan,
        sink.clone(),
        workload_start,
        end,
        config.seed,
    ));
    let mut nodes = nemesis.await.map_err(|error| JepsenError::Environment {
        what: "the nemesis task failed".to_string(),
        detail: error.to_string(),
    })?;
    tokio::time::sleep_until(end.into()).await;

    let mut notes = Vec::new();
    let healed = heal_everything(&mut nodes, proxies.as_ref(), &sink).await;
    if let Err(error) = &healed.healthy {
        notes.push(format!("the final heal did not complete: {error}"));
    }
    let _ = healed_sender.send(Some(healed.healthy.is_ok()));
    let recovery = Recovery {
        crashed: healed.crashed,
        heal_failed_on_exits: matches!(healed.healthy, Err(JepsenError::NodesExited { .. })),
        heal_error: healed.healthy.err().map(|error| error.to_string()),
    };
    let output = match workload.await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => {
            notes.push(format!("the workload stopped with an error: {error}"));
            WorkloadOutput::default()
        }
        Err(error) => {
            notes.push(format!("the workload task failed: {error}"));
            WorkloadOutput::default()
        }
    };
    let _ = stop_monitor.send(true);
    let samples = monitor.await.unwrap_or_default();
    nodes.kill_all().await;
    if proxies.is_some()
        && let Err(error) = link_proxy::remove_rules()
    {
        notes.push(format!("removing the link proxies' rules: {error}"));
    }
    notes.extend(output.notes.iter().cloned());

    let records = sink.records();
    write_jsonl(&out.join("history.jsonl"), &records)?;
    write_jsonl(&out.join("leaders.jsonl"), &samples)?;
    if config.workload == WorkloadKind::Watch {
        write_jsonl(&out.join("watchers.jsonl"), &output.watchers)?;
        write_jsonl(&out.join("revisions.jsonl"), &output.revisions)?;
    }
    write_json(&out.join("recovery.json"), &recovery)?;
    let verdicts = judge(
        config.workload,
        Evidence {
            records: &records,
            watchers: &output.watchers,
            revisions: &output.revisions,
            recovery: Some(&recovery),
        },
        notes,
    )?;
    write_json(&out.join("verdicts.json"), &verdicts)?;
    let title = format!(
        "vane-jepsen {} / {} / {} nodes / seed {}",
        config.workload,
        config.nemesis_list(),
        config.nodes,
        config.seed
    );
    let page = render_timeline(&title, &records, &samples, config.nodes);
    let timeline = out.join("timeline.html");
    std::fs::write(&timeline, page).map_err(io_error("write", &timeline))?;

    let as_expected = if config.expect_violation {
        verdicts.outcome == Outcome::Invalid
    } else {
        verdicts.outcome == Outcome::Valid
    };
    if as_expected && !config.keep_data {
        remove_data_directories(&out.join("nodes"));
    }
    let line = summary_line(
        config,
        &verdicts,
        leader_changes(&samples),
        as_expected,
        &out,
    );
    Ok(RunSummary {
        verdicts,
        as_expected,
        line,
    })
}

async fn run_workload(
    kind: WorkloadKind,
    context: WorkloadContext,
) -> Result<WorkloadOutput, JepsenError> {
    match kind {
        WorkloadKind::Register => workload::register::run(context).await,
        WorkloadKind::Set => workload::set::run(context).await,
        WorkloadKind::Append => workload::append::run(context).await,
        WorkloadKind::Watch => workload::watch::run(context).await,
        WorkloadKind::Lease => workload::lease::run(context).await,
    }
}

/// Deletes the nodes' data directories (RocksDB, hundreds of megabytes per run) and keeps
/// their logs: a run that went as expected is fully described by its history and logs.
fn remove_data_directories(nodes_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(nodes_dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), JepsenError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|source| JepsenError::EncodeRecord { source })?;
    std::fs::write(path, text + "\n").map_err(io_error("write", path))
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Valid => "valid",
        Outcome::Invalid => "INVALID",
        Outcome::Unknown => "unknown",
    }
}

/// The one line a run prints.
pub fn summary_line(
    config: &RunConfig,
    verdicts: &Verdicts,
    leader_changes: usize,
    as_expected: bool,
    out: &Path,
) -> String {
    let operations = verdicts.operations;
    let checkers = verdicts
        .checkers
        .iter()
        .map(|checker| format!("{}={}", checker.checker, outcome_name(checker.outcome)))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "vane-jepsen: {} workload={} nemesis={} nodes={} time={}s seed={}{} ops={} ok={} fail={} info={} faults={} leader-changes={} verdict={} [{checkers}]{} out={}",
        if as_expected { "PASS" } else { "FAIL" },
        config.workload,
        config.nemesis_list(),
        config.nodes,
        config.time_s,
        config.seed,
        config
            .planted_bug
            .as_ref()
            .map_or(String::new(), |bug| format!(" planted-bug={bug}")),
        operations.invoked,
        operations.ok,
        operations.fail,
        operations.info,
        operations.faults,
        leader_changes,
        outcome_name(verdicts.outcome),
        if config.expect_violation {
            " (violation expected)"
        } else {
            ""
        },
        out.display()
    )
}
