//! openraft's `RaftStateMachine` over Vane's [`StateMachine`].
//!
//! The adapter only translates: entries become [`ApplyItem`]s, results go back to the
//! waiting client through openraft's responders, and snapshots are [`SnapshotFile`]s.

use std::io;
use std::sync::Arc;

use futures::StreamExt;
use openraft::alias::{SnapshotMetaOf, SnapshotOf};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};

use super::convert::{log_id_from_pb, log_id_to_pb, membership_to_pb, stored_membership_from_pb};
use super::types::{RaftLogId, RaftStoredMembership, TypeConfig};
use crate::error::StoreError;
use crate::state_machine::snapshot::SnapshotFile;
use crate::state_machine::{ApplyItem, ApplyPayload, StateMachine};

/// Told how long each applied batch took and how many entries it held, for metrics. The
/// clock is read here, around apply, never inside it.
pub type ApplyObserver = Arc<dyn Fn(std::time::Duration, usize) + Send + Sync>;

/// Hands Vane's state machine to openraft.
#[derive(Clone)]
pub struct RaftStateMachineAdapter {
    state_machine: Arc<StateMachine>,
    observer: Option<ApplyObserver>,
}

impl RaftStateMachineAdapter {
    /// Wraps `state_machine`; the node keeps its own `Arc` to serve reads.
    pub fn new(state_machine: Arc<StateMachine>) -> Self {
        RaftStateMachineAdapter {
            state_machine,
            observer: None,
        }
    }

    /// Reports every applied batch to `observer`.
    pub fn with_observer(mut self, observer: ApplyObserver) -> Self {
        self.observer = Some(observer);
        self
    }
}

/// Builds snapshots off the Raft core's task, from one RocksDB snapshot.
pub struct SnapshotBuilder {
    state_machine: Arc<StateMachine>,
}

fn snapshot_of(file: SnapshotFile) -> Result<SnapshotOf<TypeConfig, SnapshotFile>, io::Error> {
    let meta = file
        .header
        .meta
        .as_ref()
        .ok_or_else(|| io::Error::other("snapshot header has no meta"))?;
    let snapshot_meta = SnapshotMetaOf::<TypeConfig> {
        last_log_id: meta.last_applied.as_ref().map(log_id_from_pb),
        last_membership: stored_membership_from_pb(meta.membership.as_ref())?,
    };
    Ok(openraft::Snapshot {
        meta: snapshot_meta,
        snapshot: file,
    })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, io::Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io::Error::other(format!("storage task failed: {e}")))?
        .map_err(io::Error::from)
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, SnapshotFile>, io::Error> {
        let state_machine = self.state_machine.clone();
        let file = blocking(move || state_machine.build_snapshot()).await?;
        snapshot_of(file)
    }
}

impl RaftStateMachine<TypeConfig> for RaftStateMachineAdapter {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<RaftLogId>, RaftStoredMembership), io::Error> {
        let meta = self.state_machine.meta()?;
        Ok((
            meta.last_applied.as_ref().map(log_id_from_pb),
            stored_membership_from_pb(meta.membership.as_ref())?,
        ))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        let mut items = Vec::new();
        let mut responders = Vec::new();
        while let Some(next) = entries.next().await {
            let (entry, responder) = next?;
            let payload = match entry.payload {
                EntryPayload::Blank => ApplyPayload::Blank,
                EntryPayload::Normal(command) => ApplyPayload::Command(command),
                EntryPayload::Membership(membership) => {
                    ApplyPayload::Membership(membership_to_pb(&membership))
                }
            };
            items.push(ApplyItem {
                log_id: log_id_to_pb(&entry.log_id),
                payload,
            });
            responders.push(responder);
        }
        let started = std::time::Instant::now();
        let results = self.state_machine.apply(&items)?;
        if let Some(observer) = &self.observer {
            observer(started.elapsed(), items.len());
        }
        for (result, responder) in results.into_iter().zip(responders) {
            if let Some(responder) = responder {
                responder.send(result);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            state_machine: self.state_machine.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        let expected = meta.last_log_id.as_ref().map(log_id_to_pb);
        let declared = snapshot.header.meta.as_ref().and_then(|m| m.last_applied);
        if declared != expected {
            return Err(io::Error::other(format!(
                "snapshot file ends at {declared:?}, but openraft expected {expected:?}"
            )));
        }
        let state_machine = self.state_machine.clone();
        blocking(move || state_machine.install_snapshot(&snapshot.path)).await?;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, SnapshotFile>>, io::Error> {
        match self.state_machine.current_snapshot()? {
            Some(file) => Ok(Some(snapshot_of(file)?)),
            None => Ok(None),
        }
    }
}
