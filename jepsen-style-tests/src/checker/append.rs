//! The list-append checker, after Elle (Kingsbury and Alvaro, "Elle: Inferring Isolation
//! Anomalies from Experimental Observations", 2020).
//!
//! Transactions append unique elements to lists and read whole lists. Because a list
//! keeps every element in order, one read reveals the key's entire version order up to
//! that point, and which transaction wrote each version. From that the checker infers
//! the dependencies between committed transactions — write-write, write-read,
//! read-write (anti-dependency) and real-time — and any cycle among them is a
//! transaction that cannot be placed in a serial (or, with real-time edges, a strictly
//! serial) order. Cycles are named by Adya's classes: G0 (write-write only), G1c (with
//! write-read), G-single (exactly one anti-dependency), G2 (several), each with a
//! `-realtime` suffix when it needs a real-time edge.
//!
//! Reads are also checked on their own: a value nobody appended (garbage), a value only
//! a failed transaction appended (aborted read, G1a), a value a transaction appended
//! and then appended after (intermediate read, G1b), an element twice, and two reads
//! of one key that are not prefixes of each other (no version order can explain both).

mod cycle_search;
mod dependency_graph;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::error::JepsenError;
use crate::history::{Call, MicroOp, Outcome, PairedOperation};

use cycle_search::{
    CycleStep, shortest_cycle, shortest_cycle_with_one, strongly_connected_components,
};
pub use dependency_graph::DependencyKind;
use dependency_graph::{DependencyGraph, Evidence, KindSet};

/// Adya's cycle classes, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CycleClass {
    /// Write cycle: only write-write dependencies (dirty write).
    G0,
    /// Circular information flow: write-write and write-read dependencies.
    G1c,
    /// Read skew: exactly one anti-dependency.
    #[serde(rename = "G-single")]
    GSingle,
    /// Anti-dependency cycle with more than one read-write edge (write skew).
    G2,
}

/// One edge of a reported cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependencyStep {
    /// The transaction that must come first (its invocation index).
    pub from: u64,
    /// The transaction that must come after it.
    pub to: u64,
    /// Why.
    pub kind: DependencyKind,
    /// The key that shows it, for data dependencies.
    pub key: Option<String>,
    /// The element that shows it: the version written, read, or overwritten.
    pub value: Option<i64>,
}

/// A dependency cycle: transactions that no serial order can satisfy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleAnomaly {
    /// Adya's class of the cycle.
    pub class: CycleClass,
    /// True when the cycle needs a real-time edge: serializable, but not strictly.
    pub realtime: bool,
    /// The edges, each starting where the previous ended, the last closing the cycle.
    pub steps: Vec<DependencyStep>,
}

impl CycleAnomaly {
    /// Elle's name for the anomaly, such as `G-single-realtime`.
    pub fn name(&self) -> String {
        let class = match self.class {
            CycleClass::G0 => "G0",
            CycleClass::G1c => "G1c",
            CycleClass::GSingle => "G-single",
            CycleClass::G2 => "G2",
        };
        if self.realtime {
            format!("{class}-realtime")
        } else {
            class.to_string()
        }
    }
}

/// Something no serializable execution could have produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "anomaly", rename_all = "kebab-case")]
pub enum AppendAnomaly {
    /// A dependency cycle.
    Cycle(CycleAnomaly),
    /// A read contains an element no transaction ever tried to append.
    GarbageRead {
        /// The reading transaction.
        reader: u64,
        /// The key read.
        key: String,
        /// The element from nowhere.
        value: i64,
    },
    /// G1a: a read contains an element only a failed transaction appended.
    AbortedRead {
        /// The reading transaction.
        reader: u64,
        /// The failed transaction that appended it.
        writer: u64,
        /// The key read.
        key: String,
        /// The aborted element.
        value: i64,
    },
    /// G1b: a read ends at an element its writer appended to before committing more to
    /// the same key, so the reader saw that writer's intermediate state.
    IntermediateRead {
        /// The reading transaction.
        reader: u64,
        /// The transaction caught in the middle.
        writer: u64,
        /// The key read.
        key: String,
        /// The intermediate element the read ended at.
        value: i64,
    },
    /// A read contains the same element more than once.
    DuplicateElements {
        /// The reading transaction.
        reader: u64,
        /// The key read.
        key: String,
        /// The elements that appear more than once.
        values: Vec<i64>,
    },
    /// Two reads of a key are not prefixes of one another: no single version order
    /// explains both. Dependencies through this key are not inferred.
    IncompatibleOrder {
        /// The key.
        key: String,
        /// The transaction whose read is the longest.
        reader: u64,
        /// What it read.
        values: Vec<i64>,
        /// A transaction whose read disagrees with it.
        other_reader: u64,
        /// What that one read.
        other_values: Vec<i64>,
    },
}

/// What the list-append checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppendReport {
    /// Transactions known to have committed: acknowledged ones, and ones with unknown
    /// outcomes whose appends some read observed.
    pub committed_transaction_count: usize,
    /// Everything found, reads first, then cycles.
    pub anomalies: Vec<AppendAnomaly>,
}

impl AppendReport {
    /// True when no anomaly was found.
    pub fn is_valid(&self) -> bool {
        self.anomalies.is_empty()
    }
}

/// One read micro-op of a committed transaction, with the result it returned.
struct ObservedRead<'a> {
    reader: usize,
    key: &'a str,
    values: &'a [i64],
}

/// Everything inferred from a history's transactions before the graph is built.
struct Observations<'a> {
    transactions: Vec<&'a PairedOperation>,
    /// Who appended each element of each key, by position in `transactions`.
    writer_of: HashMap<(&'a str, i64), usize>,
    /// What each transaction appended to each key, in order.
    appends_of: HashMap<(usize, &'a str), Vec<i64>>,
    reads: Vec<ObservedRead<'a>>,
    committed: Vec<bool>,
}

/// Checks the `txn` operations of `history` for Elle's list-append anomalies.
pub fn check_append(history: &[PairedOperation]) -> Result<AppendReport, JepsenError> {
    let observations = observe(history)?;
    let mut anomalies = read_anomalies(&observations);
    let (version_orders, order_anomalies) = infer_version_orders(&observations);
    anomalies.extend(order_anomalies);

    let nodes: Vec<usize> = (0..observations.transactions.len())
        .filter(|&transaction| observations.committed[transaction])
        .collect();
    let graph = build_dependency_graph(&observations, &version_orders, &nodes);
    let transaction_id = |node: usize| observations.transactions[nodes[node]].invoke_index;
    anomalies.extend(find_cycles(&graph).into_iter().map(|(class, steps)| {
        AppendAnomaly::Cycle(describe_cycle(&graph, class, &steps, transaction_id))
    }));
    Ok(AppendReport {
        committed_transaction_count: nodes.len(),
        anomalies,
    })
}

fn observe(history: &[PairedOperation]) -> Result<Observations<'_>, JepsenError> {
    let transactions: Vec<&PairedOperation> = history
        .iter()
        .filter(|operation| matches!(operation.call, Call::Txn(_)))
        .collect();
    let mut writer_of: HashMap<(&str, i64), usize> = HashMap::new();
    let mut appends_of: HashMap<(usize, &str), Vec<i64>> = HashMap::new();
    let mut reads = Vec::new();
    let mut committed: Vec<bool> = transactions
        .iter()
        .map(|transaction| transaction.is_ok())
        .collect();

    for (position, transaction) in transactions.iter().enumerate() {
        let Call::Txn(micro_ops) = &transaction.call else {
            continue;
        };
        for micro_op in micro_ops {
            match micro_op {
                MicroOp::Append { key, value } => {
                    if let Some(&first) = writer_of.get(&(key.as_str(), *value)) {
                        return Err(JepsenError::DuplicateAppend {
                            key: key.clone(),
                            value: *value,
                            first_index: transactions[first].invoke_index,
                            second_index: transaction.invoke_index,
                        });
                    }
                    writer_of.insert((key, *value), position);
                    appends_of.entry((position, key)).or_default().push(*value);
                }
                MicroOp::Read {
                    key,
                    value: Some(values),
                } if transaction.is_ok() => reads.push(ObservedRead {
                    reader: position,
                    key,
                    values,
                }),
                MicroOp::Read { .. } => {}
            }
        }
    }
    // A transaction with an unknown outcome committed if anyone read what it appended.
    for read in &reads {
        for value in read.values {
            if let Some(&writer) = writer_of.get(&(read.key, *value))
                && transactions[writer].outcome == Outcome::Info
            {
                committed[writer] = true;
            }
        }
    }
    Ok(Observations {
        transactions,
        writer_of,
        appends_of,
        reads,
        committed,
    })
}

impl Observations<'_> {
    /// The last element of `read` that the reader did not append itself: the version it
    /// observed from other transactions.
    fn last_external_value(&self, read: &ObservedRead<'_>) -> Option<i64> {
        let own_appends = self.appends_of.get(&(read.reader, read.key));
        read.values
            .iter()
            .rev()
            .find(|value| own_appends.is_none_or(|appended| !appended.contains(value)))
            .copied()
    }

    fn writer(&self, key: &str, value: i64) -> Option<usize> {
        self.writer_of.get(&(key, value)).copied()
    }
}

fn read_anomalies(observations: &Observations<'_>) -> Vec<AppendAnomaly> {
    let mut anomalies = Vec::new();
    let id = |position: usize| observations.transactions[position].invoke_index;
    for read in &observations.reads {
        let mut occurrences: BTreeMap<i64, usize> = BTreeMap::new();
        for value in read.values {
            *occurrences.entry(*value).or_default() += 1;
        }
        let duplicated: Vec<i64> = occurrences
            .iter()
            .filter(|(_, count)| **count > 1)
            .map(|(value, _)| *value)
            .collect();
        if !duplicated.is_empty() {
            anomalies.push(AppendAnomaly::DuplicateElements {
                reader: id(read.reader),
                key: read.key.to_string(),
                values: duplicated,
            });
        }
        for &value in occurrences.keys() {
            match observations.writer(read.key, value) {
                None => anomalies.push(AppendAnomaly::GarbageRead {
                    reader: id(read.reader),
                    key: read.key.to_string(),
                    value,
                }),
                Some(writer) if observations.transactions[writer].outcome == Outcome::Fail => {
                    anomalies.push(AppendAnomaly::AbortedRead {
                        reader: id(read.reader),
                        writer: id(writer),
                        key: read.key.to_string(),
                        value,
                    });
                }
                Some(_) => {}
            }
        }
        if let Some(value) = observations.last_external_value(read)
            && let Some(writer) = observations.writer(read.key, value)
            && observations
                .appends_of
                .get(&(writer, read.key))
                .and_then(|appended| appended.last())
                .is_some_and(|final_value| *final_value != value)
        {
            anomalies.push(AppendAnomaly::IntermediateRead {
                reader: id(read.reader),
                writer: id(writer),
                key: read.key.to_string(),
                value,
            });
        }
    }
    anomalies
}

/// Each key's version order: its longest read, provided every other read of it is a
/// prefix of that one. Keys whose reads disagree get no order and an anomaly.
fn infer_version_orders<'a>(
    observations: &Observations<'a>,
) -> (BTreeMap<&'a str, &'a [i64]>, Vec<AppendAnomaly>) {
    let mut reads_by_key: BTreeMap<&str, Vec<&ObservedRead<'a>>> = BTreeMap::new();
    for read in &observations.reads {
        reads_by_key.entry(read.key).or_default().push(read);
    }
    let mut orders = BTreeMap::new();
    let mut anomalies = Vec::new();
    for (key, reads) in reads_by_key {
        let Some(longest) = reads.iter().copied().max_by_key(|read| read.values.len()) else {
            continue;
        };
        let disagreeing = reads
            .iter()
            .find(|read| !longest.values.starts_with(read.values));
        match disagreeing {
            Some(other) => anomalies.push(AppendAnomaly::IncompatibleOrder {
                key: key.to_string(),
                reader: observations.transactions[longest.reader].invoke_index,
                values: longest.values.to_vec(),
                other_reader: observations.transactions[other.reader].invoke_index,
                other_values: other.values.to_vec(),
            }),
            None => {
                orders.insert(key, longest.values);
            }
        }
    }
    (orders, anomalies)
}

fn build_dependency_graph(
    observations: &Observations<'_>,
    version_orders: &BTreeMap<&str, &[i64]>,
    nodes: &[usize],
) -> DependencyGraph {
    let mut node_of: Vec<Option<usize>> = vec![None; observations.transactions.len()];
    for (node, &transaction) in nodes.iter().enumerate() {
        node_of[transaction] = Some(node);
    }
    let node_writing = |key: &str, value: i64| {
        observations
            .writer(key, value)
            .and_then(|writer| node_of[writer])
    };
    let evidence = |key: &str, value: i64| {
        Some(Evidence {
            key: key.to_string(),
            value: Some(value),
        })
    };
    let mut graph = DependencyGraph::with_nodes(nodes.len());

    for (key, order) in version_orders {
        for versions in order.windows(2) {
            if let (Some(earlier), Some(later)) = (
                node_writing(key, versions[0]),
                node_writing(key, versions[1]),
            ) {
                graph.add_edge(
                    earlier,
                    later,
                    DependencyKind::WriteWrite,
                    evidence(key, versions[1]),
                );
            }
        }
    }

    for read in &observations.reads {
        let Some(reader) = node_of[read.reader] else {
            continue;
        };
        let observed = observations.last_external_value(read);
        if let Some(value) = observed
            && let Some(writer) = node_writing(read.key, value)
        {
            graph.add_edge(
                writer,
                reader,
                DependencyKind::WriteRead,
                evidence(read.key, value),
            );
        }
        let Some(order) = version_orders.get(read.key) else {
            continue;
        };
        let next_position = match observed {
            None => Some(0),
            Some(value) => order
                .iter()
                .position(|version| *version == value)
                .map(|position| position + 1),
        };
        if let Some(&next_value) = next_position.and_then(|position| order.get(position))
            && let Some(overwriter) = node_writing(read.key, next_value)
        {
            graph.add_edge(
                reader,
                overwriter,
                DependencyKind::ReadWrite,
                evidence(read.key, next_value),
            );
        }
    }

    let times: Vec<(u64, Option<u64>)> = nodes
        .iter()
        .map(|&transaction| {
            let operation = observations.transactions[transaction];
            let completed = operation
                .is_ok()
                .then_some(operation.complete_time_ns)
                .flatten();
            (operation.invoke_time_ns, completed)
        })
        .collect();
    graph.add_real_time_edges(&times);
    graph
}

/// One cycle per strongly connected component, of the most severe class found in it,
/// preferring cycles that need no real-time edge.
fn find_cycles(graph: &DependencyGraph) -> Vec<(CycleClass, Vec<CycleStep>)> {
    use DependencyKind::{ReadWrite, RealTime, WriteRead, WriteWrite};
    let everywhere = vec![true; graph.node_count()];
    let all_kinds = KindSet::of(&DependencyKind::BY_PREFERENCE);
    let mut cycles = Vec::new();
    for component in strongly_connected_components(graph, all_kinds, &everywhere) {
        let found = [&[][..], &[RealTime][..]]
            .into_iter()
            .find_map(|real_time| {
                let with = |kinds: &[DependencyKind]| KindSet::of(&[kinds, real_time].concat());
                shortest_cycle(graph, &component, with(&[WriteWrite]))
                    .map(|cycle| (CycleClass::G0, cycle))
                    .or_else(|| {
                        shortest_cycle(graph, &component, with(&[WriteWrite, WriteRead]))
                            .map(|cycle| (CycleClass::G1c, cycle))
                    })
                    .or_else(|| {
                        shortest_cycle_with_one(
                            graph,
                            &component,
                            ReadWrite,
                            with(&[WriteWrite, WriteRead]),
                        )
                        .map(|cycle| (CycleClass::GSingle, cycle))
                    })
                    .or_else(|| {
                        shortest_cycle(graph, &component, with(&[WriteWrite, WriteRead, ReadWrite]))
                            .map(|cycle| (CycleClass::G2, cycle))
                    })
            });
        cycles.extend(found);
    }
    cycles
}

fn describe_cycle(
    graph: &DependencyGraph,
    class: CycleClass,
    steps: &[CycleStep],
    transaction_id: impl Fn(usize) -> u64,
) -> CycleAnomaly {
    let steps: Vec<DependencyStep> = steps
        .iter()
        .map(|step| {
            let evidence = graph.evidence(step.from, step.to, step.kind);
            DependencyStep {
                from: transaction_id(step.from),
                to: transaction_id(step.to),
                kind: step.kind,
                key: evidence.map(|evidence| evidence.key.clone()),
                value: evidence.and_then(|evidence| evidence.value),
            }
        })
        .collect();
    CycleAnomaly {
        class,
        realtime: steps
            .iter()
            .any(|step| step.kind == DependencyKind::RealTime),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(key: &str, value: i64) -> MicroOp {
        MicroOp::Append {
            key: key.to_string(),
            value,
        }
    }

    fn read(key: &str, values: &[i64]) -> MicroOp {
        MicroOp::Read {
            key: key.to_string(),
            value: Some(values.to_vec()),
        }
    }

    fn transaction(
        invoke_index: u64,
        outcome: Outcome,
        invoke_time_ns: u64,
        complete_time_ns: u64,
        micro_ops: Vec<MicroOp>,
    ) -> PairedOperation {
        PairedOperation {
            process: invoke_index,
            invoke_index,
            complete_index: None,
            outcome,
            key: None,
            call: Call::Txn(micro_ops),
            invoke_time_ns,
            complete_time_ns: (outcome != Outcome::Info).then_some(complete_time_ns),
            node: None,
            revision: None,
        }
    }

    #[test]
    fn a_serial_history_has_no_anomalies() {
        let history = [
            transaction(0, Outcome::Ok, 0, 10, vec![append("x", 1), append("y", 1)]),
            transaction(
                1,
                Outcome::Ok,
                20,
                30,
                vec![read("x", &[1]), append("x", 2)],
            ),
            transaction(
                2,
                Outcome::Ok,
                40,
                50,
                vec![read("x", &[1, 2]), read("y", &[1])],
            ),
        ];
        let report = check_append(&history).unwrap();
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.committed_transaction_count, 3);
    }

    #[test]
    fn a_transaction_reading_its_own_append_is_not_its_own_dependency() {
        let history = [
            transaction(0, Outcome::Ok, 0, 10, vec![append("x", 1), read("x", &[1])]),
            transaction(1, Outcome::Ok, 20, 30, vec![read("x", &[1])]),
        ];
        assert!(check_append(&history).unwrap().is_valid());
    }

    #[test]
    fn reads_of_aborted_intermediate_and_unknown_elements_are_caught() {
        let history = [
            transaction(0, Outcome::Fail, 0, 10, vec![append("x", 1)]),
            transaction(1, Outcome::Ok, 0, 10, vec![append("y", 1), append("y", 2)]),
            transaction(
                2,
                Outcome::Ok,
                20,
                30,
                vec![read("x", &[1, 7]), read("y", &[1])],
            ),
        ];
        let anomalies = check_append(&history).unwrap().anomalies;
        assert!(
            anomalies
                .iter()
                .any(|anomaly| matches!(anomaly, AppendAnomaly::AbortedRead { value: 1, .. }))
        );
        assert!(
            anomalies
                .iter()
                .any(|anomaly| matches!(anomaly, AppendAnomaly::GarbageRead { value: 7, .. }))
        );
        assert!(
            anomalies
                .iter()
                .any(|anomaly| matches!(anomaly, AppendAnomaly::IntermediateRead { value: 1, .. }))
        );
    }

    #[test]
    fn reads_that_disagree_on_the_order_are_incompatible() {
        let history = [
            transaction(0, Outcome::Ok, 0, 10, vec![append("x", 1)]),
            transaction(1, Outcome::Ok, 0, 10, vec![append("x", 2)]),
            transaction(2, Outcome::Ok, 20, 30, vec![read("x", &[1, 2])]),
            transaction(3, Outcome::Ok, 20, 30, vec![read("x", &[2])]),
        ];
        let anomalies = check_append(&history).unwrap().anomalies;
        assert!(matches!(
            anomalies.as_slice(),
            [AppendAnomaly::IncompatibleOrder {
                reader: 2,
                other_reader: 3,
                ..
            }]
        ));
    }

    #[test]
    fn an_unknown_transaction_whose_append_was_read_committed() {
        let history = [
            transaction(0, Outcome::Info, 0, 0, vec![append("x", 1)]),
            transaction(1, Outcome::Info, 0, 0, vec![append("x", 2)]),
            transaction(2, Outcome::Ok, 20, 30, vec![read("x", &[1])]),
        ];
        let report = check_append(&history).unwrap();
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.committed_transaction_count, 2);
    }

    #[test]
    fn the_same_element_appended_twice_is_a_recording_error() {
        let history = [
            transaction(0, Outcome::Ok, 0, 10, vec![append("x", 1)]),
            transaction(1, Outcome::Ok, 0, 10, vec![append("x", 1)]),
        ];
        assert!(matches!(
            check_append(&history),
            Err(JepsenError::DuplicateAppend { .. })
        ));
    }
}
