//! Building a history in memory, in the order events happen.
//!
//! Workload runners and hand-written test histories both need the same bookkeeping:
//! every record gets the next index, and an invocation and its completion share the
//! process id. Keeping that in one place means a test history is recorded exactly the
//! way a real run is.

use crate::history::{Call, Operation, RecordType};

/// An append-only history under construction.
///
/// Not synchronised: a runner with concurrent clients wraps it in a mutex, so that the
/// record order is the order in which records were taken.
#[derive(Debug, Default, Clone)]
pub struct HistoryRecorder {
    records: Vec<Operation>,
}

impl HistoryRecorder {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `process` is about to call `call` on `key`; returns the record index.
    pub fn invoke(&mut self, process: u64, key: Option<&str>, call: Call, time_ns: u64) -> u64 {
        self.record(process, RecordType::Invoke, key, call, time_ns)
    }

    /// Records the completion of `process`'s pending operation; returns the record index.
    /// For `ok`, `call` carries the results (the value read, the TTL granted).
    pub fn complete(
        &mut self,
        process: u64,
        record_type: RecordType,
        key: Option<&str>,
        call: Call,
        time_ns: u64,
    ) -> u64 {
        self.record(process, record_type, key, call, time_ns)
    }

    /// Appends a fully built record (with node, revision or error set), giving it the
    /// next index; returns that index.
    pub fn push(&mut self, mut operation: Operation) -> u64 {
        let index = self.records.len() as u64;
        operation.index = index;
        self.records.push(operation);
        index
    }

    /// The records so far, in order.
    pub fn records(&self) -> &[Operation] {
        &self.records
    }

    /// Hands the finished history over.
    pub fn into_records(self) -> Vec<Operation> {
        self.records
    }

    fn record(
        &mut self,
        process: u64,
        record_type: RecordType,
        key: Option<&str>,
        call: Call,
        time_ns: u64,
    ) -> u64 {
        self.push(Operation {
            process,
            index: 0,
            record_type,
            key: key.map(str::to_string),
            call,
            time_ns,
            node: None,
            revision: None,
            error: None,
        })
    }
}
