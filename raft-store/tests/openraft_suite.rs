//! openraft's own storage test suite, run against the RocksDB log store and state
//! machine in a fresh temporary data directory per case.

use std::sync::Arc;

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use vane_raft_store::raft::log_store::LogStore;
use vane_raft_store::raft::state_machine::RaftStateMachineAdapter;
use vane_raft_store::raft::types::TypeConfig;
use vane_raft_store::{DataDir, Limits, StateMachine};

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, RaftStateMachineAdapter, tempfile::TempDir>
    for RocksBuilder
{
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, RaftStateMachineAdapter), StorageError<TypeConfig>>
    {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = Arc::new(DataDir::open(tmp.path()).expect("data dir"));
        let log = LogStore::open(&dir.raft_log_path()).expect("log store");
        let sm = StateMachine::open(dir, Limits::default()).expect("state machine");
        Ok((tmp, log, RaftStateMachineAdapter::new(Arc::new(sm))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_passes_on_rocksdb() {
    Suite::test_all(RocksBuilder)
        .await
        .expect("openraft storage suite");
}
