//! Helpers shared by the raft-store integration tests: a real state machine on RocksDB
//! in a temporary directory, driven with log entries numbered as Raft would number them.

#![allow(dead_code)]

use std::sync::Arc;

use vane_proto::etcdserverpb::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    TxnRequest, TxnResponse,
};
use vane_proto::raft::command::Op;
use vane_proto::raft::command_result::Result as Outcome;
use vane_proto::raft::{Command, CommandError, CommandResult, LogId};
use vane_raft_store::{ApplyItem, ApplyPayload, DataDir, Limits, StateMachine, StoreError};

pub struct Store {
    pub dir: tempfile::TempDir,
    pub sm: Arc<StateMachine>,
    pub next_index: u64,
}

impl Store {
    pub fn new() -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = Arc::new(DataDir::open(dir.path()).expect("open data dir"));
        let sm = Arc::new(StateMachine::open(data, Limits::default()).expect("open state machine"));
        Store {
            dir,
            sm,
            next_index: 1,
        }
    }

    /// Closes the state machine and opens it again from its directory, as a restart
    /// would: what was flushed is in table files, and no cache holds any of it.
    pub fn reopen(self) -> Store {
        let Store {
            dir,
            sm,
            next_index,
        } = self;
        drop(sm);
        let data = Arc::new(DataDir::open(dir.path()).expect("reopen data dir"));
        let sm =
            Arc::new(StateMachine::open(data, Limits::default()).expect("reopen state machine"));
        Store {
            dir,
            sm,
            next_index,
        }
    }

    pub fn item(&mut self, op: Op) -> ApplyItem {
        let index = self.next_index;
        self.next_index += 1;
        ApplyItem {
            log_id: LogId {
                term: 1,
                node_id: 1,
                index,
            },
            payload: ApplyPayload::Command(Command {
                proposed_at_ms: 1_000 + index as i64,
                op: Some(op),
                ..Default::default()
            }),
        }
    }

    pub fn apply(&mut self, op: Op) -> CommandResult {
        let item = self.item(op);
        self.sm.apply(&[item]).expect("apply").remove(0)
    }

    pub fn apply_command(&mut self, command: Command) -> CommandResult {
        let index = self.next_index;
        self.next_index += 1;
        let item = ApplyItem {
            log_id: LogId {
                term: 1,
                node_id: 1,
                index,
            },
            payload: ApplyPayload::Command(command),
        };
        self.sm.apply(&[item]).expect("apply").remove(0)
    }

    pub fn put(&mut self, key: &str, value: &str) -> PutResponse {
        self.put_request(PutRequest {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        })
        .expect("put")
    }

    pub fn put_request(&mut self, request: PutRequest) -> Result<PutResponse, CommandError> {
        match self.apply(Op::Put(request)).result {
            Some(Outcome::Put(r)) => Ok(r),
            Some(Outcome::Error(e)) => Err(e),
            other => panic!("unexpected result {other:?}"),
        }
    }

    pub fn delete(
        &mut self,
        key: &str,
        range_end: &str,
        prev_kv: bool,
    ) -> Result<DeleteRangeResponse, CommandError> {
        match self
            .apply(Op::DeleteRange(DeleteRangeRequest {
                key: key.into(),
                range_end: range_end.into(),
                prev_kv,
            }))
            .result
        {
            Some(Outcome::DeleteRange(r)) => Ok(r),
            Some(Outcome::Error(e)) => Err(e),
            other => panic!("unexpected result {other:?}"),
        }
    }

    pub fn txn(&mut self, request: TxnRequest) -> Result<TxnResponse, CommandError> {
        match self.apply(Op::Txn(request)).result {
            Some(Outcome::Txn(r)) => Ok(r),
            Some(Outcome::Error(e)) => Err(e),
            other => panic!("unexpected result {other:?}"),
        }
    }

    pub fn range(&self, request: RangeRequest) -> Result<RangeResponse, StoreError> {
        self.sm.range(&request)
    }

    pub fn get(&self, key: &str) -> RangeResponse {
        self.range(RangeRequest {
            key: key.into(),
            ..Default::default()
        })
        .expect("range")
    }

    pub fn revision(&self) -> i64 {
        self.sm.revisions().expect("revisions").current
    }
}

pub fn keys(response: &RangeResponse) -> Vec<String> {
    response
        .kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

/// `snapshot` written out as a snapshot file (what a member sends), in a directory
/// removed with the first element.
pub fn written_out(
    snapshot: &vane_raft_store::SnapshotFile,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("snapshot.snap");
    snapshot.write_to(&path).expect("write the snapshot out");
    (dir, path)
}
