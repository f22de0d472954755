//! Applying committed entries: one batch of entries, one RocksDB write.
//!
//! Every input comes from the entry: the command, its proposer's clock, the caller. No
//! clock is read and nothing random is drawn here, so every node that applies the same
//! log reaches the same state and the same results. A command refused by etcd's rules
//! is rolled back to its savepoint and recorded as an error result: it changes nothing
//! but its session's memory, so a retry gets the same refusal.
//!
//! Permissions are checked here, against the auth state at this point of the log, before
//! anything else: the member that received a request checks it too, but only this check
//! is ordered with the auth changes around it.

use vane_proto::api::audit_record::Path as AuditPath;
use vane_proto::etcdserverpb::ResponseHeader;
use vane_proto::etcdserverpb::alarm_request::AlarmAction;
use vane_proto::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, CompactionResponse,
};
use vane_proto::raft::command::Op;
use vane_proto::raft::command_result::Result as Outcome;
use vane_proto::raft::{Command, CommandError, CommandResult, LogId, SessionOpened};
use vane_proto::storage::StateMachineMeta;

use crate::audit::{self, Origin};
use crate::auth::{self, Caller};
use crate::change;
use crate::db::BatchView;
use crate::error::{Result, StoreError};
use crate::governance::{self, SchemaCache};
use crate::lease;
use crate::mvcc::range::Revisions;
use crate::mvcc::write::WriteTxn;
use crate::mvcc::{Limits, compaction, txn};
use crate::session::{self, Admission};

/// Who made the changes of `command`, and through which door, for the audit: a change
/// request's own record says whether it was a rollback or applied by break-glass.
fn audit_origin<'c>(command: &'c Command, outcome: &Outcome, now_ms: i64) -> Origin<'c> {
    let (path, change_id) = match outcome {
        Outcome::Change(response) => {
            let change = response.change.clone().unwrap_or_default();
            let path = if change.break_glass {
                AuditPath::BreakGlass
            } else if change.rollback {
                AuditPath::Rollback
            } else {
                AuditPath::ChangeRequest
            };
            (path, change.id)
        }
        _ => (AuditPath::EtcdApi, 0),
    };
    Origin {
        principal: if command.from_member {
            MEMBER_PRINCIPAL
        } else {
            &command.principal
        },
        path,
        change_id,
        at_ms: now_ms,
    }
}

/// The principal the audit names for a member's own changes (a lease's expiry).
const MEMBER_PRINCIPAL: &str = "vane:member";

/// The writes and counters of one batch in progress.
pub(crate) struct ApplyBatch<'db> {
    pub(crate) view: BatchView<'db>,
    pub(crate) meta: StateMachineMeta,
    limits: Limits,
    schemas: &'db SchemaCache,
}

impl<'db> ApplyBatch<'db> {
    pub(crate) fn new(
        view: BatchView<'db>,
        meta: StateMachineMeta,
        limits: Limits,
        schemas: &'db SchemaCache,
    ) -> Self {
        ApplyBatch {
            view,
            meta,
            limits,
            schemas,
        }
    }

    fn revisions(&self) -> Revisions {
        Revisions {
            current: self.meta.revision,
            compacted: self.meta.compact_revision,
        }
    }

    /// Records that the entry at `log_id` has been applied.
    pub(crate) fn advance(&mut self, log_id: &LogId) {
        if let Some(previous) = &self.meta.last_applied {
            assert!(
                log_id.index > previous.index,
                "applied log index must only grow: {} after {}",
                log_id.index,
                previous.index
            );
        }
        self.meta.last_applied = Some(*log_id);
    }

    /// Applies one command of the entry at `log_index` and returns its result. Only a
    /// storage failure is an `Err`; etcd-rule refusals are results.
    pub(crate) fn apply_command(
        &mut self,
        log_index: u64,
        command: &Command,
    ) -> Result<CommandResult> {
        let now_ms = self.meta.log_time_ms.max(command.proposed_at_ms);
        self.meta.log_time_ms = now_ms;

        let mut session = None;
        if command.session_id != 0 {
            if let Some(existing) = session::get(&self.view, command.session_id)?
                && let Err(e) = auth::check_session_owner(&self.view, &existing.principal, command)
            {
                return self.refused(e);
            }
            match session::admit(&mut self.view, command, now_ms) {
                Ok(Admission::Fresh(after)) => session = Some(after),
                Ok(Admission::Duplicate(result)) => return Ok(result),
                Err(e) if e.is_request_error() => return self.refused(e),
                Err(e) => return Err(e),
            }
        }

        let savepoint = self.view.savepoint();
        let revisions_before = self.revisions();
        let result = match self.execute(log_index, command, now_ms) {
            Ok(result) => result,
            Err(e) if e.is_request_error() => {
                self.view.rollback_to(savepoint);
                self.meta.revision = revisions_before.current;
                self.meta.compact_revision = revisions_before.compacted;
                self.refused(e)?
            }
            Err(e) => return Err(e),
        };
        assert!(
            self.meta.revision >= revisions_before.current,
            "the revision must never go backwards"
        );

        if let Some(after) = session {
            let before = session::get(&self.view, command.session_id)?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "session {} vanished while applying",
                    command.session_id
                ))
            })?;
            session::remember(&mut self.view, &before, &after, command.sequence, &result);
        }
        Ok(result)
    }

    fn alarm(&mut self, request: &AlarmRequest) -> Result<AlarmResponse> {
        let member = AlarmMember {
            member_id: request.member_id,
            alarm: request.alarm,
        };
        match AlarmAction::try_from(request.action) {
            Ok(AlarmAction::Activate) => {
                if request.alarm == AlarmType::None as i32 {
                    return Err(StoreError::InvalidArgument(
                        "etcdserver: alarm type NONE cannot be raised".into(),
                    ));
                }
                if !self.meta.alarms.contains(&member) {
                    self.meta.alarms.push(member);
                    self.meta.alarms.sort_by_key(|a| (a.member_id, a.alarm));
                }
            }
            Ok(AlarmAction::Deactivate) => {
                self.meta.alarms.retain(|a| {
                    !(a.member_id == member.member_id
                        && (member.alarm == AlarmType::None as i32 || a.alarm == member.alarm))
                });
            }
            Ok(AlarmAction::Get) | Err(_) => {}
        }
        Ok(AlarmResponse {
            header: None,
            alarms: self.meta.alarms.clone(),
        })
    }

    fn refused(&self, error: StoreError) -> Result<CommandResult> {
        let code = error.command_code().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "a storage failure is not a request outcome: {error}"
            ))
        })?;
        Ok(CommandResult {
            revision: self.meta.revision,
            result: Some(Outcome::Error(CommandError {
                code: code as i32,
                message: error.to_string(),
            })),
        })
    }

    fn out_of_space(&self) -> bool {
        self.meta
            .alarms
            .iter()
            .any(|a| a.alarm == AlarmType::Nospace as i32)
    }

    fn execute(&mut self, log_index: u64, command: &Command, now_ms: i64) -> Result<CommandResult> {
        let revisions = self.revisions();
        // The flag first: with auth off (the default) no access list is built at all.
        if let Some(op) = &command.op
            && auth::enabled(&self.view)?
        {
            auth::check(
                &self.view,
                &Caller::of_command(command),
                &auth::accesses_of(op),
            )?;
        }
        // With a NOSPACE alarm raised only what frees space goes through (etcd's capped
        // applier): deletes, compaction, revokes, and txns that put nothing.
        if self.out_of_space() {
            let grows = match &command.op {
                Some(Op::Put(_)) | Some(Op::LeaseGrant(_)) => true,
                Some(Op::Txn(t)) => txn::puts_anything(t),
                _ => false,
            };
            if grows {
                return Err(StoreError::NoSpace);
            }
        }
        let outcome = self.execute_op(log_index, command, now_ms, revisions)?;
        // Every key a direct write changed meets its namespace's policy, or nothing of the
        // request stays (the caller rolls back); the member's own deletes (lease expiry)
        // are exempt, as governed values cannot carry a lease. Then every governed change
        // is audited. Both read the request's changes once.
        if self.meta.namespaces > 0 && self.meta.revision > revisions.current {
            let revision = self.meta.revision;
            let changed = governance::changes_at(&self.view, revision)?;
            let direct_write = matches!(
                command.op,
                Some(Op::Put(_) | Op::DeleteRange(_) | Op::Txn(_) | Op::LeaseRevoke(_))
            );
            if direct_write && !command.from_member {
                governance::check_request(&self.view, self.schemas, &changed)?;
            }
            let origin = audit_origin(command, &outcome, now_ms);
            audit::record_revision(&mut self.view, &mut self.meta, revision, changed, &origin)?;
        }
        Ok(CommandResult {
            revision: self.meta.revision,
            result: Some(outcome),
        })
    }

    fn execute_op(
        &mut self,
        log_index: u64,
        command: &Command,
        now_ms: i64,
        revisions: Revisions,
    ) -> Result<Outcome> {
        Ok(match &command.op {
            None => {
                return Err(StoreError::InvalidArgument(
                    "vane: command carries no operation".into(),
                ));
            }
            Some(Op::Put(request)) => {
                txn::check_put_request(request)?;
                let mut write = WriteTxn::new(&mut self.view, revisions);
                let response = txn::put(&mut write, request)?;
                self.meta.revision = write.finish().current;
                Outcome::Put(response)
            }
            Some(Op::DeleteRange(request)) => {
                txn::check_delete_request(request)?;
                let mut write = WriteTxn::new(&mut self.view, revisions);
                let response = txn::delete_range(&mut write, request)?;
                self.meta.revision = write.finish().current;
                Outcome::DeleteRange(response)
            }
            Some(Op::Txn(request)) => {
                txn::check_txn_request(request, self.limits)?;
                let mut write = WriteTxn::new(&mut self.view, revisions);
                let response = txn::txn(&mut write, request)?;
                self.meta.revision = write.finish().current;
                Outcome::Txn(response)
            }
            Some(Op::Compaction(request)) => {
                compaction::compact(&mut self.view, revisions, request.revision)?;
                self.meta.compact_revision = request.revision;
                Outcome::Compaction(CompactionResponse {
                    header: Some(ResponseHeader {
                        revision: revisions.current,
                        ..Default::default()
                    }),
                })
            }
            Some(Op::LeaseGrant(request)) => Outcome::LeaseGrant(lease::grant(
                &mut self.view,
                request,
                log_index,
                now_ms,
                revisions.current,
            )?),
            Some(Op::LeaseRevoke(request)) => {
                let mut write = WriteTxn::new(&mut self.view, revisions);
                let response = lease::revoke(&mut write, request.id)?;
                self.meta.revision = write.finish().current;
                Outcome::LeaseRevoke(response)
            }
            Some(Op::OpenSession(request)) => Outcome::SessionOpened(SessionOpened {
                session_id: session::open(
                    &mut self.view,
                    log_index,
                    request.ttl_ms,
                    now_ms,
                    &command.principal,
                )?,
            }),
            Some(Op::CloseSession(request)) => {
                if let Some(existing) = session::get(&self.view, request.session_id)? {
                    auth::check_session_owner(&self.view, &existing.principal, command)?;
                }
                session::close(&mut self.view, request.session_id)?;
                Outcome::SessionClosed(Default::default())
            }
            Some(Op::Alarm(request)) => Outcome::Alarm(self.alarm(request)?),
            Some(Op::AuthEnable(request)) => {
                Outcome::AuthChanged(auth::enable(&mut self.view, request)?)
            }
            Some(Op::AuthDisable(_)) => Outcome::AuthChanged(auth::disable(&mut self.view)?),
            Some(Op::AuthUserAdd(request)) => {
                Outcome::AuthChanged(auth::user_add(&mut self.view, request)?)
            }
            Some(Op::AuthUserDelete(request)) => {
                Outcome::AuthChanged(auth::user_delete(&mut self.view, request)?)
            }
            Some(Op::AuthUserChangePassword(request)) => {
                Outcome::AuthChanged(auth::user_change_password(&mut self.view, request)?)
            }
            Some(Op::AuthUserGrantRole(request)) => {
                Outcome::AuthChanged(auth::user_grant_role(&mut self.view, request)?)
            }
            Some(Op::AuthUserRevokeRole(request)) => {
                Outcome::AuthChanged(auth::user_revoke_role(&mut self.view, request)?)
            }
            Some(Op::AuthRoleAdd(request)) => {
                Outcome::AuthChanged(auth::role_add(&mut self.view, request)?)
            }
            Some(Op::AuthRoleDelete(request)) => {
                Outcome::AuthChanged(auth::role_delete(&mut self.view, request)?)
            }
            Some(Op::AuthRoleGrantPermission(request)) => {
                Outcome::AuthChanged(auth::role_grant_permission(&mut self.view, request)?)
            }
            Some(Op::AuthRoleRevokePermission(request)) => {
                Outcome::AuthChanged(auth::role_revoke_permission(&mut self.view, request)?)
            }
            Some(Op::NamespaceChange(request)) => {
                let (response, created) =
                    governance::change(&mut self.view, self.schemas, request, revisions.current)?;
                if created {
                    self.meta.namespaces += 1;
                }
                Outcome::Namespace(Box::new(response))
            }
            Some(Op::ChangeCreate(request)) => {
                let (response, after) = change::create(
                    &mut self.view,
                    self.schemas,
                    request,
                    log_index,
                    &command.principal,
                    now_ms,
                    revisions,
                )?;
                self.meta.revision = after.current;
                Outcome::Change(Box::new(response))
            }
            Some(Op::ChangeAction(action)) => {
                let (response, after) = change::act(
                    &mut self.view,
                    self.schemas,
                    action,
                    &command.principal,
                    now_ms,
                    revisions,
                )?;
                self.meta.revision = after.current;
                Outcome::Change(Box::new(response))
            }
            Some(Op::NamespaceDelete(request)) => {
                let response = governance::delete(&mut self.view, request, revisions.current)?;
                self.meta.namespaces = self.meta.namespaces.saturating_sub(1);
                Outcome::Namespace(Box::new(response))
            }
        })
    }
}
