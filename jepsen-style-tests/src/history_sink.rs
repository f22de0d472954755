//! The history of a run as it is being recorded by many tasks at once.
//!
//! One mutex around one [`HistoryRecorder`], and the timestamp is read while it is held,
//! so record order and time order agree: a completion recorded after an invocation never
//! carries an earlier time. The lock is a std mutex because no one holds it across an
//! await; it guards only pushing one record.

use std::sync::{Arc, Mutex, PoisonError};

use crate::history::{Call, Operation, RecordType};
use crate::recorder::HistoryRecorder;
use crate::run_clock::RunClock;

/// A shared, append-only history with the run's clock.
#[derive(Debug, Clone)]
pub struct HistorySink {
    recorder: Arc<Mutex<HistoryRecorder>>,
    clock: RunClock,
}

/// Extra fields of a completion record.
#[derive(Debug, Clone, Default)]
pub struct CompletionDetail {
    /// The node that answered (or was asked).
    pub node: Option<String>,
    /// The header revision of the answer.
    pub revision: Option<i64>,
    /// Why it failed or is unknown.
    pub error: Option<String>,
}

impl HistorySink {
    /// An empty history timed by `clock`.
    pub fn new(clock: RunClock) -> Self {
        Self {
            recorder: Arc::new(Mutex::new(HistoryRecorder::new())),
            clock,
        }
    }

    /// The run's clock.
    pub fn clock(&self) -> RunClock {
        self.clock
    }

    /// Records that `process` invokes `call` (on `key`, sent to `node`).
    pub fn invoke(&self, process: u64, key: Option<&str>, call: Call, node: Option<&str>) {
        self.push(
            process,
            RecordType::Invoke,
            key,
            call,
            CompletionDetail {
                node: node.map(str::to_string),
                ..CompletionDetail::default()
            },
        );
    }

    /// Records the completion of `process`'s pending operation.
    pub fn complete(
        &self,
        process: u64,
        record_type: RecordType,
        key: Option<&str>,
        call: Call,
        detail: CompletionDetail,
    ) {
        self.push(process, record_type, key, call, detail);
    }

    fn push(
        &self,
        process: u64,
        record_type: RecordType,
        key: Option<&str>,
        call: Call,
        detail: CompletionDetail,
    ) {
        let mut recorder = self.recorder.lock().unwrap_or_else(PoisonError::into_inner);
        let time_ns = self.clock.now_ns();
        recorder.push(Operation {
            process,
            index: 0,
            record_type,
            key: key.map(str::to_string),
            call,
            time_ns,
            node: detail.node,
            revision: detail.revision,
            error: detail.error,
        });
    }

    /// A copy of every record so far.
    pub fn records(&self) -> Vec<Operation> {
        self.recorder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .records()
            .to_vec()
    }
}

/// A client's current process id. After an `info` completion the old request may still
/// be in flight, so the client continues under a fresh id (Jepsen's rule): ids of client
/// `c` among `clients` are `c`, `c + clients`, `c + 2·clients`, … so they never collide.
#[derive(Debug, Clone, Copy)]
pub struct ClientProcess {
    id: u64,
    stride: u64,
}

impl ClientProcess {
    /// The first id of client `client` among `clients`.
    pub fn new(client: usize, clients: usize) -> Self {
        Self {
            id: client as u64,
            stride: clients.max(1) as u64,
        }
    }

    /// The id to record under now.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Moves on to the next id, after an `info` completion.
    pub fn retire(&mut self) {
        self.id += self.stride;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_non_decreasing_times_in_record_order() {
        let sink = HistorySink::new(RunClock::start());
        sink.invoke(1, Some("k"), Call::Read(None), Some("n1"));
        sink.complete(
            1,
            RecordType::Ok,
            Some("k"),
            Call::Read(Some(3)),
            CompletionDetail::default(),
        );
        let records = sink.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].index, 1);
        assert!(records[0].time_ns <= records[1].time_ns);
        assert_eq!(records[0].node.as_deref(), Some("n1"));
    }

    #[test]
    fn retired_process_ids_never_collide_between_clients() {
        let mut first = ClientProcess::new(0, 3);
        let second = ClientProcess::new(1, 3);
        first.retire();
        assert_eq!(first.id(), 3);
        assert_ne!(first.id(), second.id());
    }
}
