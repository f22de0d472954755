//! Finding short cycles in the dependency graph.
//!
//! A cycle is a serializability violation; a *short* one is what a person can read. So:
//! Tarjan's algorithm finds the strongly connected components (every cycle lies inside
//! one), then breadth-first search from a bounded number of nodes of a component finds
//! its shortest cycle through them. Searching with only some edge kinds allowed is how
//! the caller tells a G0 cycle (write-write only) from a G2 one.

use std::collections::VecDeque;

use super::dependency_graph::{DependencyGraph, DependencyKind, KindSet};

/// How many start nodes per component the shortest-cycle search tries; bounds the cost
/// on a huge component, at the price of a cycle that may not be the very shortest.
const CYCLE_SEARCH_SOURCES_MAX: usize = 64;

/// How many anti-dependency edges per component the one-anti-dependency search tries.
const ANTI_DEPENDENCY_EDGES_TRIED_MAX: usize = 1024;

/// One edge of a reported cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CycleStep {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) kind: DependencyKind,
}

/// The strongly connected components with at least two nodes, using only edges with a
/// kind in `allowed` between nodes marked in `within`.
pub(crate) fn strongly_connected_components(
    graph: &DependencyGraph,
    allowed: KindSet,
    within: &[bool],
) -> Vec<Vec<usize>> {
    const UNVISITED: usize = usize::MAX;
    let node_count = graph.node_count();
    let mut visit_order = vec![UNVISITED; node_count];
    let mut lowest_reachable = vec![0; node_count];
    let mut on_stack = vec![false; node_count];
    let mut stack: Vec<usize> = Vec::new();
    let mut components = Vec::new();
    let mut next_visit = 0;
    let successors_within = |node: usize| -> Vec<usize> {
        graph
            .successors(node, allowed)
            .map(|(successor, _)| successor)
            .filter(|&successor| within[successor])
            .collect()
    };

    for root in (0..node_count).filter(|&node| within[node]) {
        if visit_order[root] != UNVISITED {
            continue;
        }
        // Explicit recursion stack, so a long dependency chain cannot overflow the
        // thread's stack: (node, its successors, how many were handled).
        let mut frames: Vec<(usize, Vec<usize>, usize)> = Vec::new();
        let mut discovered = Some(root);
        loop {
            if let Some(node) = discovered.take() {
                visit_order[node] = next_visit;
                lowest_reachable[node] = next_visit;
                next_visit += 1;
                stack.push(node);
                on_stack[node] = true;
                frames.push((node, successors_within(node), 0));
            }
            let Some((node, successors, handled)) = frames.last_mut() else {
                break;
            };
            let node = *node;
            if let Some(&successor) = successors.get(*handled) {
                *handled += 1;
                if visit_order[successor] == UNVISITED {
                    discovered = Some(successor);
                } else if on_stack[successor] {
                    lowest_reachable[node] = lowest_reachable[node].min(visit_order[successor]);
                }
                continue;
            }
            frames.pop();
            if let Some((parent, _, _)) = frames.last() {
                lowest_reachable[*parent] = lowest_reachable[*parent].min(lowest_reachable[node]);
            }
            if lowest_reachable[node] == visit_order[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort_unstable();
                    components.push(component);
                }
            }
        }
    }
    components
}

/// The shortest path from `source` to `target` along `allowed` edges inside `within`,
/// as steps, or `None`. With `source == target` it is the shortest cycle through it.
fn shortest_path(
    graph: &DependencyGraph,
    source: usize,
    target: usize,
    allowed: KindSet,
    within: &[bool],
) -> Option<Vec<CycleStep>> {
    let mut reached_from: Vec<Option<(usize, DependencyKind)>> = vec![None; graph.node_count()];
    let mut visited = vec![false; graph.node_count()];
    visited[source] = true;
    let mut queue = VecDeque::from([source]);
    // The edge into `target`; breadth-first order makes the first one found shortest.
    let mut arrival: Option<(usize, DependencyKind)> = None;
    'search: while let Some(node) = queue.pop_front() {
        for (successor, kinds) in graph.successors(node, allowed) {
            let Some(kind) = kinds.preferred() else {
                continue;
            };
            if !within[successor] {
                continue;
            }
            if successor == target {
                arrival = Some((node, kind));
                break 'search;
            }
            if !visited[successor] {
                visited[successor] = true;
                reached_from[successor] = Some((node, kind));
                queue.push_back(successor);
            }
        }
    }
    let (mut node, kind) = arrival?;
    let mut steps = vec![CycleStep {
        from: node,
        to: target,
        kind,
    }];
    while node != source {
        let (previous, kind) = reached_from[node]?;
        steps.push(CycleStep {
            from: previous,
            to: node,
            kind,
        });
        node = previous;
    }
    steps.reverse();
    Some(steps)
}

/// The shortest cycle found among `component`'s nodes using only `allowed` edges.
pub(crate) fn shortest_cycle(
    graph: &DependencyGraph,
    component: &[usize],
    allowed: KindSet,
) -> Option<Vec<CycleStep>> {
    let mut within = vec![false; graph.node_count()];
    for &node in component {
        within[node] = true;
    }
    let mut shortest: Option<Vec<CycleStep>> = None;
    for inner in strongly_connected_components(graph, allowed, &within) {
        let mut inner_within = vec![false; graph.node_count()];
        for &node in &inner {
            inner_within[node] = true;
        }
        for &source in inner.iter().take(CYCLE_SEARCH_SOURCES_MAX) {
            let cycle = shortest_path(graph, source, source, allowed, &inner_within);
            if let Some(cycle) = cycle
                && shortest
                    .as_ref()
                    .is_none_or(|best| cycle.len() < best.len())
            {
                shortest = Some(cycle);
            }
        }
    }
    shortest
}

/// The shortest cycle found among `component`'s nodes that uses exactly one edge of
/// kind `required` and otherwise only `others` edges.
pub(crate) fn shortest_cycle_with_one(
    graph: &DependencyGraph,
    component: &[usize],
    required: DependencyKind,
    others: KindSet,
) -> Option<Vec<CycleStep>> {
    let mut within = vec![false; graph.node_count()];
    for &node in component {
        within[node] = true;
    }
    let required_only = KindSet::of(&[required]);
    let mut shortest: Option<Vec<CycleStep>> = None;
    let required_edges = component.iter().flat_map(|&from| {
        graph
            .successors(from, required_only)
            .filter(|(to, _)| within[*to])
            .map(move |(to, _)| (from, to))
    });
    for (from, to) in required_edges.take(ANTI_DEPENDENCY_EDGES_TRIED_MAX) {
        let Some(path_back) = shortest_path(graph, to, from, others, &within) else {
            continue;
        };
        if shortest
            .as_ref()
            .is_none_or(|best| path_back.len() + 1 < best.len())
        {
            let mut cycle = vec![CycleStep {
                from,
                to,
                kind: required,
            }];
            cycle.extend(path_back);
            shortest = Some(cycle);
        }
    }
    shortest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds() -> KindSet {
        KindSet::of(&DependencyKind::BY_PREFERENCE)
    }

    fn graph(node_count: usize, edges: &[(usize, usize, DependencyKind)]) -> DependencyGraph {
        let mut graph = DependencyGraph::with_nodes(node_count);
        for &(from, to, kind) in edges {
            graph.add_edge(from, to, kind, None);
        }
        graph
    }

    #[test]
    fn components_hold_exactly_the_nodes_on_cycles() {
        use DependencyKind::WriteWrite as Ww;
        let graph = graph(
            5,
            &[(0, 1, Ww), (1, 2, Ww), (2, 0, Ww), (2, 3, Ww), (3, 4, Ww)],
        );
        let components = strongly_connected_components(&graph, all_kinds(), &[true; 5]);
        assert_eq!(components, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn the_shortest_cycle_is_preferred_to_a_longer_one() {
        use DependencyKind::WriteWrite as Ww;
        let graph = graph(
            4,
            &[(0, 1, Ww), (1, 2, Ww), (2, 3, Ww), (3, 0, Ww), (2, 1, Ww)],
        );
        let cycle = shortest_cycle(&graph, &[0, 1, 2, 3], all_kinds()).unwrap();
        assert_eq!(cycle.len(), 2);
    }

    #[test]
    fn a_cycle_needing_a_forbidden_kind_is_not_found() {
        use DependencyKind::{ReadWrite as Rw, WriteRead as Wr};
        let graph = graph(2, &[(0, 1, Wr), (1, 0, Rw)]);
        let without_anti_dependencies = KindSet::of(&[DependencyKind::WriteWrite, Wr]);
        assert_eq!(
            shortest_cycle(&graph, &[0, 1], without_anti_dependencies),
            None
        );
        let cycle =
            shortest_cycle_with_one(&graph, &[0, 1], Rw, without_anti_dependencies).unwrap();
        assert_eq!(cycle[0].kind, Rw);
        assert_eq!(cycle.len(), 2);
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let node_count = 200_000;
        let mut edges: Vec<(usize, usize, DependencyKind)> = (0..node_count - 1)
            .map(|node| (node, node + 1, DependencyKind::RealTime))
            .collect();
        edges.push((node_count - 1, 0, DependencyKind::WriteWrite));
        let graph = graph(node_count, &edges);
        let components =
            strongly_connected_components(&graph, all_kinds(), &vec![true; node_count]);
        assert_eq!(components.len(), 1);
        assert_eq!(components[0].len(), node_count);
    }
}
