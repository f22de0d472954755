//! Carrying out the fault timeline against the real nodes.
//!
//! Each fault is recorded in the history as two operations of the nemesis process: a
//! `start` (invoked when the runner begins injecting it, `ok` once it is in place) and a
//! `stop` (the heal). A step that fails is recorded as `info` with the error and the run
//! goes on: the final heal repairs whatever is left, and a fault that could not be
//! injected cannot make a correct system look wrong.

use std::time::{Duration, Instant};

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{Fault, KillTargets, NodeTarget, PartitionShape, PlannedFault};
use crate::error::JepsenError;
use crate::firewall::{self, DropRule};
use crate::history::{Call, NemesisAction, RecordType};
use crate::history_sink::{CompletionDetail, HistorySink};
use crate::link_proxy::{LinkDelay, LinkProxies};
use crate::nodes::{self, Launch, NodeSet, leader_among, node_ip};

/// The process id under which the nemesis records its operations; far above any client's.
pub const NEMESIS_PROCESS: u64 = 1_000_000_000;

/// How often the disk nemesis looks at the node it is starving of fsync, in milliseconds.
const DISK_SAMPLE_MS: u64 = 500;
/// How long the final heal waits for the whole cluster to be healthy, in milliseconds.
const FINAL_HEAL_WAIT_MS: u64 = 60_000;

/// A fault in place, with its targets resolved: what the heal must undo.
#[derive(Debug)]
enum ActiveFault {
    Links,
    Delayed,
    Killed(Vec<usize>),
    Paused(usize),
    SkewedClock(usize),
    Removed(usize),
    FailingDisk(usize, DiskObservation),
}

/// What the disk nemesis saw of a node whose fsync fails.
#[derive(Debug, Default)]
struct DiskObservation {
    started: Option<Instant>,
    exited_after_ms: Option<(u64, String)>,
    samples: u32,
    answered: u32,
    first_applied: Option<u64>,
    last_applied: Option<u64>,
    leader_applied: Option<u64>,
    /// Completions of client requests sent to the node during the fault: ok, fail, info.
    client_completions: (usize, usize, usize),
}

/// Runs `plan` (offsets from `workload_start`) until it is done or `end` is reached;
/// returns the nodes for the final heal.
pub async fn run_nemesis(
    mut nodes: NodeSet,
    proxies: Option<LinkProxies>,
    plan: Vec<PlannedFault>,
    sink: HistorySink,
    workload_start: Instant,
    end: Instant,
    seed: u64,
) -> NodeSet {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7461_7267_6574_7300);
    for planned in plan {
        let starts_at = workload_start + Duration::from_millis(planned.start_ms);
        if starts_at >= end {
            break;
        }
        tokio::time::sleep_until(starts_at.into()).await;
        let family = planned.fault.family();
        let started = record_step(&sink, "start", family, describe_plan(&planned), async {
            start_fault(&mut nodes, proxies.as_ref(), &planned.fault, &mut rng).await
        })
        .await;
        let Some(Started { mut active, .. }) = started else {
            continue;
        };
        let heal_at = (Instant::now() + Duration::from_millis(planned.duration_ms)).min(end);
        if let ActiveFault::FailingDisk(slot, observation) = &mut active {
            let since_ns = sink.clock().now_ns();
            watch_failing_disk(&mut nodes, *slot, observation, heal_at).await;
            observation.client_completions = client_completions(&sink, *slot, since_ns);
        } else {
            tokio::time::sleep_until(heal_at.into()).await;
        }
        record_step(&sink, "stop", family, String::new(), async {
            stop_fault(&mut nodes, proxies.as_ref(), active).await
        })
        .await;
    }
    nodes
}

/// What the final heal found and achieved.
#[derive(Debug)]
pub struct HealOutcome {
    /// Nodes whose process had exited on its own before the heal (the nemesis kills and
    /// restarts nodes itself, so an exit it did not cause is a crash), with their last
    /// log lines.
    pub crashed: Vec<String>,
    /// Whether every node then ran and followed one leader.
    pub healthy: Result<(), JepsenError>,
}

/// Undoes everything a run may have left: links, pauses, stopped nodes, wrapped
/// launches, missing members; then waits until every node follows one leader. Recorded
/// as one nemesis operation.
pub async fn heal_everything(
    nodes: &mut NodeSet,
    proxies: Option<&LinkProxies>,
    sink: &HistorySink,
) -> HealOutcome {
    let mut crashed = Vec::new();
    let mut healthy = Ok(());
    let recorded = record_step(sink, "heal-all", "all", String::new(), async {
        let mut notes = Vec::new();
        firewall::heal()?;
        if let Some(proxies) = proxies {
            proxies.heal();
        }
        for slot in nodes.slots() {
            if nodes.node(slot)?.paused {
                nodes.resume(slot)?;
                notes.push(format!("resumed {}", nodes.name(slot)));
            }
            if nodes.node(slot)?.launch != Launch::Plain {
                nodes.kill(slot).await?;
                nodes.set_launch(slot, Launch::Plain)?;
                notes.push(format!("{} back to a plain launch", nodes.name(slot)));
            }
            if let Some(exit) = nodes.exit_of(slot) {
                let crash = format!(
                    "{} had exited ({exit}): {}",
                    nodes.name(slot),
                    nodes.last_log_line(slot)
                );
                notes.push(crash.clone());
                crashed.push(crash);
                nodes.kill(slot).await?;
            }
            if !nodes.node(slot)?.removed {
                nodes.start(slot)?;
            }
        }
        for slot in nodes.slots() {
            if nodes.node(slot)?.removed {
                notes.push(nodes.add_member(slot).await?);
            }
        }
        let waited = nodes.wait_until_healthy(FINAL_HEAL_WAIT_MS).await;
        if let Err(error) = &waited {
            notes.push(error.to_string());
        }
        healthy = waited;
        Ok(if notes.is_empty() {
            "all links whole, every node running".to_string()
        } else {
            notes.join("; ")
        })
    })
    .await;
    if recorded.is_none() && healthy.is_ok() {
        healthy = Err(JepsenError::ClusterNotReady {
            waited_ms: 0,
            detail: "the heal itself failed; see its record in the history".to_string(),
        });
    }
    HealOutcome { crashed, healthy }
}

/// Records an invocation, runs `step`, records `ok` with the step's description or
/// `info` with its error. Returns the step's value when it succeeded.
async fn record_step<T: Describe>(
    sink: &HistorySink,
    action: &str,
    family: &str,
    planned: String,
    step: impl Future<Output = Result<T, JepsenError>>,
) -> Option<T> {
    let call = |detail: String| {
        Call::Nemesis(NemesisAction {
            action: action.to_string(),
            fault: family.to_string(),
            detail,
        })
    };
    sink.invoke(NEMESIS_PROCESS, None, call(planned), None);
    match step.await {
        Ok(value) => {
            sink.complete(
                NEMESIS_PROCESS,
                RecordType::Ok,
                None,
                call(value.describe()),
                CompletionDetail::default(),
            );
            Some(value)
        }
        Err(error) => {
            sink.complete(
                NEMESIS_PROCESS,
                RecordType::Info,
                None,
                call(String::new()),
                CompletionDetail {
                    error: Some(error.to_string()),
                    ..CompletionDetail::default()
                },
            );
            None
        }
    }
}

/// A human description of what a step did, for the history.
trait Describe {
    fn describe(&self) -> String;
}

impl Describe for String {
    fn describe(&self) -> String {
        self.clone()
    }
}

/// A started fault and what was done to start it.
struct Started {
    active: ActiveFault,
    detail: String,
}

impl Describe for Started {
    fn describe(&self) -> String {
        self.detail.clone()
    }
}

fn describe_plan(planned: &PlannedFault) -> String {
    match serde_json::to_string(&planned.fault) {
        Ok(text) => format!("{text} for {} ms", planned.duration_ms),
        Err(_) => planned.fault.family().to_string(),
    }
}

async fn resolve(nodes: &NodeSet, target: NodeTarget, rng: &mut StdRng) -> (usize, bool) {
    match target {
        NodeTarget::Slot(slot) => (slot, false),
        NodeTarget::Leader => match leader_among(&nodes.statuses().await) {
            Some(leader) => (leader.slot, true),
            None => (rng.random_range(1..=nodes.len()), false),
        },
    }
}

fn names(nodes: &NodeSet, slots: &[usize]) -> String {
    slots
        .iter()
        .map(|&slot| nodes.name(slot))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Rules dropping every packet between the two groups, both directions.
fn cut_between(left: &[usize], right: &[usize]) -> Vec<DropRule> {
    let mut rules = one_way(left, right, 1000);
    rules.extend(one_way(right, left, 1000));
    rules
}

fn one_way(from: &[usize], to: &[usize], per_mille: u32) -> Vec<DropRule> {
    from.iter()
        .flat_map(|&sender| {
            to.iter().map(move |&receiver| DropRule {
                from: node_ip(sender),
                to: node_ip(receiver),
                per_mille,
            })
        })
        .collect()
}

async fn start_fault(
    nodes: &mut NodeSet,
    proxies: Option<&LinkProxies>,
    fault: &Fault,
    rng: &mut StdRng,
) -> Result<Started, JepsenError> {
    let leader_note = |is_leader: bool| if is_leader { " (leader)" } else { "" };
    match fault {
        Fault::Partition { shape } => {
            let (rules, detail) = match shape {
                PartitionShape::IsolateOne { target } => {
                    let (slot, is_leader) = resolve(nodes, *target, rng).await;
                    let others: Vec<usize> =
                        nodes.slots().into_iter().filter(|&s| s != slot).collect();
                    (
                        cut_between(&[slot], &others),
                        format!(
                            "isolated {}{} from {}",
                            nodes.name(slot),
                            leader_note(is_leader),
                            names(nodes, &others)
                        ),
                    )
                }
                PartitionShape::MajorityMinority { minority } => {
                    let majority: Vec<usize> = nodes
                        .slots()
                        .into_iter()
                        .filter(|slot| !minority.contains(slot))
                        .collect();
                    (
                        cut_between(minority, &majority),
                        format!(
                            "minority {} | majority {}",
                            names(nodes, minority),
                            names(nodes, &majority)
                        ),
                    )
                }
                PartitionShape::Bridge {
                    left,
                    bridge,
                    right,
                } => (
                    cut_between(left, right),
                    format!(
                        "bridge: {} | {} | {}, only {} reaches both sides",
                        names(nodes, left),
                        nodes.name(*bridge),
                        names(nodes, right),
                        nodes.name(*bridge)
                    ),
                ),
                PartitionShape::OneWay { from, to } => (
                    one_way(from, to, 1000),
                    format!(
                        "one-way: packets from {} to {} dropped",
                        names(nodes, from),
                        names(nodes, to)
                    ),
                ),
            };
            firewall::apply(&rules)?;
            Ok(Started {
                active: ActiveFault::Links,
                detail,
            })
        }
        Fault::Loss { per_mille } => {
            let slots = nodes.slots();
            let mut rules = Vec::new();
            for &slot in &slots {
                let others: Vec<usize> = slots.iter().copied().filter(|&s| s != slot).collect();
                rules.extend(one_way(&[slot], &others, *per_mille));
            }
            firewall::apply(&rules)?;
            Ok(Started {
                active: ActiveFault::Links,
                detail: format!(
                    "dropping {}.{}% of packets on every link between nodes",
                    per_mille / 10,
                    per_mille % 10
                ),
            })
        }
        Fault::Kill { targets } => {
            let (slots, note) = match targets {
                KillTargets::One { target } => {
                    let (slot, is_leader) = resolve(nodes, *target, rng).await;
                    (vec![slot], leader_note(is_leader))
                }
                KillTargets::Minority { slots } => (slots.clone(), ""),
                KillTargets::All => (nodes.slots(), " (all nodes)"),
            };
            for &slot in &slots {
                nodes.kill(slot).await?;
            }
            Ok(Started {
                detail: format!("kill -9 {}{note}", names(nodes, &slots)),
                active: ActiveFault::Killed(slots),
            })
        }
        Fault::Pause { target } => {
            let (slot, is_leader) = resolve(nodes, *target, rng).await;
            nodes.pause(slot)?;
            Ok(Started {
                detail: format!("SIGSTOP {}{}", nodes.name(slot), leader_note(is_leader)),
                active: ActiveFault::Paused(slot),
            })
        }
        Fault::Clock { target, offset } => {
            let (slot, is_leader) = resolve(nodes, *target, rng).await;
            nodes.kill(slot).await?;
            nodes.set_launch(
                slot,
                Launch::SkewedClock {
                    offset: offset.clone(),
                },
            )?;
            nodes.start_checked(slot).await?;
            Ok(Started {
                detail: format!(
                    "restarted {}{} under faketime {offset} (monotonic clock untouched)",
                    nodes.name(slot),
                    leader_note(is_leader)
                ),
                active: ActiveFault::SkewedClock(slot),
            })
        }
        Fault::Membership { target } => {
            let (slot, _) = resolve(nodes, *target, rng).await;
            let detail = nodes.remove_member(slot).await?;
            Ok(Started {
                detail,
                active: ActiveFault::Removed(slot),
            })
        }
        Fault::Delay {
            target,
            base_ms,
            jitter_ms,
        } => {
            let proxies = proxies.ok_or_else(|| JepsenError::Environment {
                what: "no link proxies in this run".to_string(),
                detail: "the delay nemesis needs them started before the nodes".to_string(),
            })?;
            let delay = LinkDelay {
                base_ms: *base_ms,
                jitter_ms: *jitter_ms,
            };
            let slots = nodes.slots();
            let (slow, detail) = match target {
                Some(target) => {
                    let (slot, is_leader) = resolve(nodes, *target, rng).await;
                    (
                        vec![slot],
                        format!("links of {}{}", nodes.name(slot), leader_note(is_leader)),
                    )
                }
                None => (slots.clone(), "every link".to_string()),
            };
            for &from in &slots {
                for &to in slots.iter().filter(|&&to| to != from) {
                    if slow.contains(&from) || slow.contains(&to) {
                        proxies.set(from, to, delay);
                    }
                }
            }
            Ok(Started {
                active: ActiveFault::Delayed,
                detail: format!(
                    "{detail} delayed {base_ms} ms + up to {jitter_ms} ms per direction"
                ),
            })
        }
        Fault::Disk { target } => {
            let (slot, is_leader) = resolve(nodes, *target, rng).await;
            nodes.kill(slot).await?;
            nodes.set_launch(slot, Launch::FailingFsync)?;
            nodes.start_checked(slot).await?;
            Ok(Started {
                detail: format!(
                    "restarted {}{} under strace: fsync and fdatasync fail with EIO from call {} on (per thread)",
                    nodes.name(slot),
                    leader_note(is_leader),
                    nodes::FAILING_FSYNC_FROM_CALL
                ),
                active: ActiveFault::FailingDisk(
                    slot,
                    DiskObservation {
                        started: Some(Instant::now()),
                        ..DiskObservation::default()
                    },
                ),
            })
        }
    }
}

async fn stop_fault(
    nodes: &mut NodeSet,
    proxies: Option<&LinkProxies>,
    active: ActiveFault,
) -> Result<String, JepsenError> {
    match active {
        ActiveFault::Links => {
            firewall::heal()?;
            Ok("all links whole".to_string())
        }
        ActiveFault::Delayed => {
            if let Some(proxies) = proxies {
                proxies.heal();
            }
            Ok("no delay on any link".to_string())
        }
        ActiveFault::Killed(slots) => {
            // Start every node before reporting any that would not come back.
            let mut failures = Vec::new();
            for &slot in &slots {
                if let Err(error) = nodes.start_checked(slot).await {
                    failures.push(error.to_string());
                }
            }
            if failures.is_empty() {
                Ok(format!("restarted {}", names(nodes, &slots)))
            } else {
                Err(JepsenError::ClusterNotReady {
                    waited_ms: 0,
                    detail: failures.join("; "),
                })
            }
        }
        ActiveFault::Paused(slot) => {
            nodes.resume(slot)?;
            Ok(format!("SIGCONT {}", nodes.name(slot)))
        }
        ActiveFault::SkewedClock(slot) => {
            nodes.kill(slot).await?;
            nodes.set_launch(slot, Launch::Plain)?;
            nodes.start_checked(slot).await?;
            Ok(format!(
                "restarted {} with the true clock",
                nodes.name(slot)
            ))
        }
        ActiveFault::Removed(slot) => nodes.add_member(slot).await,
        ActiveFault::FailingDisk(slot, observation) => {
            let seen = describe_disk_observation(nodes, slot, &observation);
            nodes.kill(slot).await?;
            nodes.set_launch(slot, Launch::Plain)?;
            nodes.start_checked(slot).await?;
            Ok(format!(
                "{seen}; restarted {} with a working disk",
                nodes.name(slot)
            ))
        }
    }
}

/// How client requests sent to `slot` since `since_ns` ended: ok, fail, info.
fn client_completions(sink: &HistorySink, slot: usize, since_ns: u64) -> (usize, usize, usize) {
    let node = format!("n{slot}");
    let mut counts = (0, 0, 0);
    for record in sink.records() {
        if record.time_ns < since_ns || record.node.as_deref() != Some(node.as_str()) {
            continue;
        }
        match record.record_type {
            RecordType::Ok => counts.0 += 1,
            RecordType::Fail => counts.1 += 1,
            RecordType::Info => counts.2 += 1,
            RecordType::Invoke => {}
        }
    }
    counts
}

/// Samples the node under failing fsync until `until`: whether it exits, whether it
/// answers, whether its applied index moves while the leader's does.
async fn watch_failing_disk(
    nodes: &mut NodeSet,
    slot: usize,
    observation: &mut DiskObservation,
    until: Instant,
) {
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(DISK_SAMPLE_MS)).await;
        if observation.exited_after_ms.is_none()
            && let Some(exit) = nodes.exit_of(slot)
        {
            let after_ms = observation
                .started
                .map_or(0, |started| started.elapsed().as_millis() as u64);
            observation.exited_after_ms = Some((after_ms, exit));
        }
        observation.samples += 1;
        let statuses = nodes.statuses().await;
        if let Some(status) = statuses.iter().find(|status| status.slot == slot) {
            observation.answered += 1;
            observation
                .first_applied
                .get_or_insert(status.applied_index);
            observation.last_applied = Some(status.applied_index);
        }
        if let Some(leader) = leader_among(&statuses).filter(|leader| leader.slot != slot) {
            observation.leader_applied = Some(leader.applied_index);
        }
    }
}

fn describe_disk_observation(
    nodes: &NodeSet,
    slot: usize,
    observation: &DiskObservation,
) -> String {
    let name = nodes.name(slot);
    let injected = nodes
        .node(slot)
        .ok()
        .map(|node| nodes.dir().join(format!("{}.strace.log", node.name)))
        .and_then(|path| std::fs::read_to_string(path).ok())
        .map_or(0, |text| text.matches("INJECTED").count());
    let (ok, fail, info) = observation.client_completions;
    let served = format!("client requests to it: {ok} ok, {fail} fail, {info} info");
    let fate = match &observation.exited_after_ms {
        Some((after_ms, exit)) => format!("{name} exited {after_ms} ms after the restart ({exit})"),
        None => format!(
            "{name} kept running: answered Status {} of {} times, applied index {:?} -> {:?} while the leader reached {:?}",
            observation.answered,
            observation.samples,
            observation.first_applied,
            observation.last_applied,
            observation.leader_applied
        ),
    };
    let last_error_line = nodes
        .node(slot)
        .ok()
        .and_then(|node| std::fs::read_to_string(&node.log).ok())
        .and_then(|log| {
            log.lines()
                .rev()
                .find(|line| {
                    let lower = line.to_ascii_lowercase();
                    lower.contains("error") || lower.contains("panic") || lower.contains("fsync")
                })
                .map(|line| line.chars().take(300).collect::<String>())
        });
    match last_error_line {
        Some(line) => {
            format!("{fate}; {served}; {injected} fsync calls failed; last error logged: {line}")
        }
        None => format!("{fate}; {served}; {injected} fsync calls failed; no error logged"),
    }
}
