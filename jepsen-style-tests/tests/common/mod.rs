//! Hand-written histories, recorded the way a workload records them: an `invoke`
//! record carrying only the arguments, then a completion carrying the results, paired
//! by `pair_operations`. Each operation runs on its own process, so the script can list
//! operations in any order without breaking the one-pending-operation-per-process rule.

#![allow(dead_code)] // each test binary uses a different subset

use vane_jepsen::{Call, HistoryRecorder, MicroOp, PairedOperation, RecordType, pair_operations};

/// A history under construction.
#[derive(Default)]
pub struct HistoryScript {
    recorder: HistoryRecorder,
    next_process: u64,
}

/// What the client sends: results stripped, as an invocation record carries them.
fn invocation_form(call: &Call) -> Call {
    match call {
        Call::Read(_) => Call::Read(None),
        Call::ReadSet(_) => Call::ReadSet(None),
        Call::Txn(micro_ops) => Call::Txn(
            micro_ops
                .iter()
                .map(|micro_op| match micro_op {
                    MicroOp::Read { key, .. } => MicroOp::Read {
                        key: key.clone(),
                        value: None,
                    },
                    append => append.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

impl HistoryScript {
    pub fn new() -> Self {
        Self::default()
    }

    fn invoke(&mut self, key: Option<&str>, call: &Call, invoke_ns: u64) -> u64 {
        let process = self.next_process;
        self.next_process += 1;
        self.recorder
            .invoke(process, key, invocation_form(call), invoke_ns);
        process
    }

    /// An operation that took effect; `call` carries its results.
    pub fn ok(
        &mut self,
        key: Option<&str>,
        call: Call,
        invoke_ns: u64,
        complete_ns: u64,
    ) -> &mut Self {
        let process = self.invoke(key, &call, invoke_ns);
        self.recorder
            .complete(process, RecordType::Ok, key, call, complete_ns);
        self
    }

    /// An operation that certainly did not take effect.
    pub fn fail(
        &mut self,
        key: Option<&str>,
        call: Call,
        invoke_ns: u64,
        complete_ns: u64,
    ) -> &mut Self {
        let process = self.invoke(key, &call, invoke_ns);
        let invocation = invocation_form(&call);
        self.recorder
            .complete(process, RecordType::Fail, key, invocation, complete_ns);
        self
    }

    /// An operation whose client gave up (an `info` completion at `gave_up_ns`).
    pub fn timed_out(
        &mut self,
        key: Option<&str>,
        call: Call,
        invoke_ns: u64,
        gave_up_ns: u64,
    ) -> &mut Self {
        let process = self.invoke(key, &call, invoke_ns);
        let invocation = invocation_form(&call);
        self.recorder
            .complete(process, RecordType::Info, key, invocation, gave_up_ns);
        self
    }

    /// An operation with no completion at all (the run ended first).
    pub fn pending(&mut self, key: Option<&str>, call: Call, invoke_ns: u64) -> &mut Self {
        self.invoke(key, &call, invoke_ns);
        self
    }

    pub fn recorder(&self) -> &HistoryRecorder {
        &self.recorder
    }

    pub fn paired(&self) -> Vec<PairedOperation> {
        pair_operations(self.recorder.records())
            .expect("a scripted history follows the recording rules")
    }
}

pub fn append(key: &str, value: i64) -> MicroOp {
    MicroOp::Append {
        key: key.to_string(),
        value,
    }
}

pub fn read(key: &str, values: &[i64]) -> MicroOp {
    MicroOp::Read {
        key: key.to_string(),
        value: Some(values.to_vec()),
    }
}
