//! The dependency graph between committed transactions, in Adya's terms as Elle uses
//! them, with the evidence for every edge.
//!
//! Nodes are committed transactions (by position in the checker's list). An edge
//! carries a set of kinds, because one pair of transactions can depend on each other in
//! several ways at once, and the cycle search chooses which kinds it may follow.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

/// Why one transaction must come before another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DependencyKind {
    /// Write-write: the later transaction appended the element right after the earlier
    /// one's in the key's version order.
    WriteWrite,
    /// Write-read: the later transaction read the version the earlier one wrote.
    WriteRead,
    /// Read-write anti-dependency: the earlier transaction read a version the later one
    /// overwrote (appended after).
    ReadWrite,
    /// Real time: the earlier transaction completed before the later one was invoked.
    RealTime,
}

impl DependencyKind {
    /// Every kind, strongest evidence first: when one pair is linked by several kinds, a
    /// cycle is reported with the first one allowed.
    pub(crate) const BY_PREFERENCE: [DependencyKind; 4] = [
        DependencyKind::WriteWrite,
        DependencyKind::WriteRead,
        DependencyKind::RealTime,
        DependencyKind::ReadWrite,
    ];

    fn bit(self) -> u8 {
        match self {
            DependencyKind::WriteWrite => 1,
            DependencyKind::WriteRead => 2,
            DependencyKind::ReadWrite => 4,
            DependencyKind::RealTime => 8,
        }
    }
}

/// A set of dependency kinds, as a bitmask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct KindSet(u8);

impl KindSet {
    /// The set holding exactly `kinds`.
    pub(crate) fn of(kinds: &[DependencyKind]) -> Self {
        KindSet(kinds.iter().fold(0, |bits, kind| bits | kind.bit()))
    }

    pub(crate) fn contains(self, kind: DependencyKind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub(crate) fn intersects(self, other: KindSet) -> bool {
        self.0 & other.0 != 0
    }

    pub(crate) fn intersection(self, other: KindSet) -> KindSet {
        KindSet(self.0 & other.0)
    }

    fn insert(&mut self, kind: DependencyKind) {
        self.0 |= kind.bit();
    }

    /// The preferred kind in this set, for labelling a reported edge.
    pub(crate) fn preferred(self) -> Option<DependencyKind> {
        DependencyKind::BY_PREFERENCE
            .into_iter()
            .find(|kind| self.contains(*kind))
    }
}

/// The key and element that justify a data dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Evidence {
    pub(crate) key: String,
    pub(crate) value: Option<i64>,
}

/// Committed transactions and the dependencies between them.
#[derive(Debug, Default)]
pub(crate) struct DependencyGraph {
    successors: Vec<Vec<(usize, KindSet)>>,
    evidence: HashMap<(usize, usize, DependencyKind), Evidence>,
}

impl DependencyGraph {
    /// A graph of `node_count` transactions and no edges yet.
    pub(crate) fn with_nodes(node_count: usize) -> Self {
        Self {
            successors: vec![Vec::new(); node_count],
            evidence: HashMap::new(),
        }
    }

    pub(crate) fn node_count(&self) -> usize {
        self.successors.len()
    }

    /// Records that `from` must precede `to`. Self-edges carry no ordering and are
    /// ignored. The first evidence for an edge of a kind is kept.
    pub(crate) fn add_edge(
        &mut self,
        from: usize,
        to: usize,
        kind: DependencyKind,
        evidence: Option<Evidence>,
    ) {
        if from == to {
            return;
        }
        let successors = &mut self.successors[from];
        match successors
            .iter_mut()
            .find(|(successor, _)| *successor == to)
        {
            Some((_, kinds)) => kinds.insert(kind),
            None => {
                let mut kinds = KindSet::default();
                kinds.insert(kind);
                successors.push((to, kinds));
            }
        }
        if let Some(evidence) = evidence {
            self.evidence.entry((from, to, kind)).or_insert(evidence);
        }
    }

    /// The successors of `node` along edges with a kind in `allowed`, with the allowed
    /// kinds of each edge.
    pub(crate) fn successors(
        &self,
        node: usize,
        allowed: KindSet,
    ) -> impl Iterator<Item = (usize, KindSet)> + '_ {
        self.successors[node]
            .iter()
            .filter(move |(_, kinds)| kinds.intersects(allowed))
            .map(move |(successor, kinds)| (*successor, kinds.intersection(allowed)))
    }

    /// The evidence recorded for one edge of one kind.
    pub(crate) fn evidence(
        &self,
        from: usize,
        to: usize,
        kind: DependencyKind,
    ) -> Option<&Evidence> {
        self.evidence.get(&(from, to, kind))
    }

    /// Adds real-time edges from completion and invocation times, as a transitive
    /// reduction: every "completed before invoked" pair is connected by a path, but only
    /// a frontier of recent completions gets a direct edge, so a long history does not
    /// grow a quadratic number of edges.
    ///
    /// `times[node]` is `(invoke_time_ns, complete_time_ns)`; `None` for transactions
    /// with unknown outcomes, which never precede anything.
    pub(crate) fn add_real_time_edges(&mut self, times: &[(u64, Option<u64>)]) {
        // (time, invocations before completions at one instant, node)
        let mut events: Vec<(u64, u8, usize)> = Vec::new();
        for (node, &(invoke_time_ns, complete_time_ns)) in times.iter().enumerate() {
            events.push((invoke_time_ns, 0, node));
            if let Some(complete_time_ns) = complete_time_ns {
                events.push((complete_time_ns, 1, node));
            }
        }
        events.sort_unstable();

        let mut frontier: BTreeSet<usize> = BTreeSet::new();
        let mut predecessors: Vec<Vec<usize>> = vec![Vec::new(); times.len()];
        for (_, rank, node) in events {
            if rank == 0 {
                predecessors[node] = frontier.iter().copied().collect();
            } else {
                for predecessor in &predecessors[node] {
                    frontier.remove(predecessor);
                }
                frontier.insert(node);
            }
        }
        for (node, node_predecessors) in predecessors.into_iter().enumerate() {
            for predecessor in node_predecessors {
                self.add_edge(predecessor, node, DependencyKind::RealTime, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real_time_successors(graph: &DependencyGraph, node: usize) -> Vec<usize> {
        let mut successors: Vec<usize> = graph
            .successors(node, KindSet::of(&[DependencyKind::RealTime]))
            .map(|(successor, _)| successor)
            .collect();
        successors.sort_unstable();
        successors
    }

    #[test]
    fn real_time_edges_link_only_the_frontier_but_keep_every_order() {
        // 0 and 1 run together; 2 starts after both; 3 starts after 2.
        let times = [(0, Some(10)), (1, Some(12)), (20, Some(30)), (40, Some(50))];
        let mut graph = DependencyGraph::with_nodes(times.len());
        graph.add_real_time_edges(&times);
        assert_eq!(real_time_successors(&graph, 0), vec![2]);
        assert_eq!(real_time_successors(&graph, 1), vec![2]);
        assert_eq!(real_time_successors(&graph, 2), vec![3]);
    }

    #[test]
    fn overlapping_and_unfinished_transactions_get_no_real_time_edge() {
        let times = [(0, Some(10)), (10, Some(20)), (5, None), (30, Some(40))];
        let mut graph = DependencyGraph::with_nodes(times.len());
        graph.add_real_time_edges(&times);
        assert_eq!(real_time_successors(&graph, 0), vec![3]);
        assert_eq!(real_time_successors(&graph, 1), vec![3]);
        assert_eq!(real_time_successors(&graph, 2), Vec::<usize>::new());
    }

    #[test]
    fn one_pair_can_depend_in_several_ways() {
        let mut graph = DependencyGraph::with_nodes(2);
        graph.add_edge(0, 1, DependencyKind::ReadWrite, None);
        graph.add_edge(0, 1, DependencyKind::WriteWrite, None);
        graph.add_edge(1, 1, DependencyKind::WriteRead, None);
        let all = KindSet::of(&DependencyKind::BY_PREFERENCE);
        let edges: Vec<_> = graph.successors(0, all).collect();
        assert_eq!(edges.len(), 1);
        assert_eq!(edges[0].1.preferred(), Some(DependencyKind::WriteWrite));
        assert_eq!(graph.successors(1, all).count(), 0);
    }
}
