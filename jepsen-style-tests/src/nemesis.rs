//! The nemesis: which faults a run injects, when, and how each is healed.
//!
//! `schedule.rs` turns the seed into a timeline of faults, one at a time with quiet
//! gaps between them so the cluster can recover and the history shows both faulty and
//! healthy stretches. `executor.rs` carries the timeline out against the real nodes,
//! records every start and stop in the history, and heals everything at the end
//! whatever happened on the way.

mod executor;
mod schedule;

use serde::Serialize;

pub use executor::{HealOutcome, NEMESIS_PROCESS, heal_everything, run_nemesis};
pub use schedule::{PlannedFault, plan_faults};

/// A node chosen when the fault starts: the leader at that moment, or a fixed slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeTarget {
    /// Whoever leads when the fault starts (a random node if nobody does).
    Leader,
    /// A fixed slot, 1-based.
    Slot(usize),
}

/// The shape of a network partition between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "shape", rename_all = "kebab-case")]
pub enum PartitionShape {
    /// One node cut off from all others, both directions.
    IsolateOne {
        /// The node.
        target: NodeTarget,
    },
    /// A minority and a majority that cannot reach each other.
    MajorityMinority {
        /// The minority's slots.
        minority: Vec<usize>,
    },
    /// Two halves that cannot reach each other, and one node that reaches both.
    Bridge {
        /// One half.
        left: Vec<usize>,
        /// The node in the middle.
        bridge: usize,
        /// The other half.
        right: Vec<usize>,
    },
    /// Packets from one group to the other are dropped; the reverse direction flows.
    OneWay {
        /// Senders whose packets are dropped.
        from: Vec<usize>,
        /// Receivers that never get them.
        to: Vec<usize>,
    },
}

/// Which nodes a kill takes down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "targets", rename_all = "kebab-case")]
pub enum KillTargets {
    /// One node.
    One {
        /// The node.
        target: NodeTarget,
    },
    /// A minority of the nodes.
    Minority {
        /// Their slots.
        slots: Vec<usize>,
    },
    /// Every node at once: what must survive is only what was on disk.
    All,
}

/// One fault, with its targets as far as they are known in advance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// Links between nodes cut.
    Partition {
        /// Which links.
        shape: PartitionShape,
    },
    /// Random packet loss on every link between nodes.
    Loss {
        /// Share of packets dropped per direction, per mille.
        per_mille: u32,
    },
    /// `kill -9`, restart after the fault's duration on the same data directory.
    Kill {
        /// Who.
        targets: KillTargets,
    },
    /// SIGSTOP, SIGCONT after the fault's duration.
    Pause {
        /// Who.
        target: NodeTarget,
    },
    /// Restart with a skewed wall clock; restart normally after the fault's duration.
    Clock {
        /// Who.
        target: NodeTarget,
        /// faketime's offset.
        offset: String,
    },
    /// MemberRemove; after the fault's duration MemberAdd of a fresh member in its place.
    Membership {
        /// Who.
        target: NodeTarget,
    },
    /// Restart with fsync failing; restart normally after the fault's duration.
    Disk {
        /// Who.
        target: NodeTarget,
    },
    /// Slow links: every byte between nodes waits `base_ms` plus up to `jitter_ms`.
    Delay {
        /// Whose links (both directions); every link when `None`.
        target: Option<NodeTarget>,
        /// Least delay per direction, in milliseconds.
        base_ms: u64,
        /// Largest extra delay, drawn per chunk of bytes, in milliseconds.
        jitter_ms: u64,
    },
}

impl Fault {
    /// The nemesis family, as named on the command line.
    pub fn family(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Loss { .. } => "loss",
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::Clock { .. } => "clock",
            Fault::Membership { .. } => "membership",
            Fault::Disk { .. } => "disk",
            Fault::Delay { .. } => "delay",
        }
    }
}
