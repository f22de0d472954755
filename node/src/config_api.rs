//! `vane.v1.Config` on the client port: namespaces, the governance objects that make a
//! key prefix a configuration. Changes are Raft commands checked again at apply (see
//! `vane_raft_store::governance`); reads are linearizable, answered after a barrier,
//! like etcd's default Range.
//!
//! While auth is on, changing a namespace needs the root role; reading one needs only a
//! verified caller, since a policy is what every writer must know to write correctly.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vane_proto::api::change_request::State as ChangeState;
use vane_proto::api::config_server::Config;
use vane_proto::api::{
    ChangeActionRequest, ChangeResponse, CreateChangeRequest, CreateNamespaceRequest,
    DeleteNamespaceRequest, DiffEnvironmentsRequest, DiffEnvironmentsResponse, GetChangeRequest,
    GetNamespaceRequest, ImpactRequest, ImpactResponse, ListAuditRequest, ListAuditResponse,
    ListChangesRequest, ListChangesResponse, ListNamespacesRequest, ListNamespacesResponse,
    MemberUnanswered, NamespaceResponse, ResolveRequest, ResolveResponse, UpdateNamespaceRequest,
    ValidateValueRequest, ValidateValueResponse, VerifyAuditRequest, VerifyAuditResponse,
    WatchedEvent, WatcherImpact, WatchersRequest,
};
use vane_proto::raft::change_action::Kind;
use vane_proto::raft::command::Op;
use vane_proto::raft::command_result::Result as Outcome;
use vane_proto::raft::{ChangeAction, NamespaceChange, NamespaceDelete};
use vane_raft_store::auth::Access;
use vane_raft_store::{GovernanceError, StoreError};

use crate::errors;
use crate::node::Node;

/// Serves `vane.v1.Config` for one member.
pub struct ConfigService {
    node: Arc<Node>,
}

impl ConfigService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        ConfigService { node }
    }

    /// Proposes a namespace change for a caller with the root role (or any while auth is
    /// off) and answers with what was stored.
    async fn change<T>(&self, request: &Request<T>, op: Op) -> Result<NamespaceResponse, Status> {
        let caller = self
            .node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
        let result = self.node.propose_as(op, None, &caller).await?;
        match result.result {
            Some(Outcome::Namespace(response)) => Ok(*response),
            Some(Outcome::Error(e)) => Err(errors::from_command(&e)),
            other => Err(Status::internal(format!(
                "vane: unexpected result of a namespace change: {other:?}"
            ))),
        }
    }

    /// Proposes a change-request command for the request's caller; the state machine
    /// decides what the caller may do under the namespace's policy.
    async fn change_request<T>(
        &self,
        request: &Request<T>,
        op: Op,
    ) -> Result<ChangeResponse, Status> {
        let caller = self.node.caller(request.metadata()).await?;
        let result = self.node.propose_as(op, None, &caller).await?;
        match result.result {
            Some(Outcome::Change(response)) => Ok(*response),
            Some(Outcome::Error(e)) => Err(errors::from_command(&e)),
            other => Err(Status::internal(format!(
                "vane: unexpected result of a change request: {other:?}"
            ))),
        }
    }

    async fn act(
        &self,
        request: Request<ChangeActionRequest>,
        kind: Kind,
    ) -> Result<Response<ChangeResponse>, Status> {
        let op = Op::ChangeAction(ChangeAction {
            kind: kind as i32,
            id: request.get_ref().id,
            reason: request.get_ref().reason.clone(),
        });
        Ok(Response::new(self.change_request(&request, op).await?))
    }

    /// A caller that may read every key of namespace `name`, with this member caught up.
    async fn namespace_reader<T>(&self, request: &Request<T>, name: &str) -> Result<(), Status> {
        self.node.linearizable_barrier().await?;
        self.may_read_namespace(request, name).await
    }

    /// A caller that may read every key of namespace `name`, as this member knows it now.
    async fn may_read_namespace<T>(&self, request: &Request<T>, name: &str) -> Result<(), Status> {
        let namespace = self
            .node
            .state_machine
            .namespace(name)
            .map_err(errors::from_store)?
            .ok_or_else(|| {
                errors::from_store(StoreError::Governance(GovernanceError::NotFound(
                    name.to_string(),
                )))
            })?;
        let every_key = Access::read(
            &namespace.prefix,
            &vane_raft_store::prefix_range_end(&namespace.prefix),
        );
        self.node
            .authorized_caller(request.metadata(), &[every_key])
            .await?;
        Ok(())
    }

    /// A caller allowed to verify the audit (it reads every governed key's values, so
    /// the root role while auth is on), with this member caught up.
    async fn auditor<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
        self.node.linearizable_barrier().await
    }

    /// A verified caller, with this member caught up to every change acknowledged before
    /// the request.
    async fn read<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.node.caller(request.metadata()).await?;
        self.node.linearizable_barrier().await
    }
}

/// Direct writes one impact preview may name (etcd's default `--max-txn-ops`).
const IMPACT_WRITES_MAX: usize = 128;
/// Watchers a preview lists when the request sets no limit, and at most.
const IMPACT_WATCHERS_DEFAULT: u32 = 1_000;
const IMPACT_WATCHERS_MAX: u32 = 10_000;
/// Longest a member may take to list its watchers for a preview; past it the preview
/// names the member as unanswered instead of waiting.
const WATCHERS_TIMEOUT_MS: u64 = 2_000;

impl Node {
    /// The watchers on every member that would receive `events`: at most `limit`,
    /// ordered by member, with how many there are in all and the members that did not
    /// answer (down, or slower than [`WATCHERS_TIMEOUT_MS`]).
    async fn watchers_everywhere(
        &self,
        events: Vec<WatchedEvent>,
        limit: u32,
    ) -> (Vec<WatcherImpact>, u64, Vec<MemberUnanswered>) {
        let (members, _) = self.current_membership();
        let request = WatchersRequest { events, limit };
        let asks = members.into_iter().map(|(id, member)| {
            let request = request.clone();
            async move {
                let answer = if id == self.member_id {
                    Ok(self.watchers.receiving(&request.events, limit as usize))
                } else {
                    match self.channels.client(&member) {
                        Err(e) => Err(e),
                        Ok(mut client) => {
                            let call = client.watchers(request);
                            match tokio::time::timeout(
                                std::time::Duration::from_millis(WATCHERS_TIMEOUT_MS),
                                call,
                            )
                            .await
                            {
                                Ok(Ok(reply)) => {
                                    let reply = reply.into_inner();
                                    Ok((reply.watchers, reply.count))
                                }
                                Ok(Err(status)) => Err(status.message().to_string()),
                                Err(_) => Err(format!("no answer within {WATCHERS_TIMEOUT_MS} ms")),
                            }
                        }
                    }
                };
                (id, member.name, answer)
            }
        });
        let mut listed = Vec::new();
        let mut count = 0;
        let mut unanswered = Vec::new();
        for (member_id, member_name, answer) in futures::future::join_all(asks).await {
            match answer {
                Ok((watchers, counted)) => {
                    count += counted;
                    listed.extend(watchers.into_iter().map(|w| WatcherImpact {
                        member_id,
                        member_name: member_name.clone(),
                        ..w
                    }));
                }
                Err(error) => unanswered.push(MemberUnanswered {
                    member_id,
                    member_name,
                    error,
                }),
            }
        }
        listed.truncate(limit as usize);
        (listed, count, unanswered)
    }
}

/// How often the leader looks for approved change requests whose time has come.
const SCHEDULE_CHECK_INTERVAL_MS: u64 = 500;

/// Runs on every member; acts while this member leads: proposes the apply of every
/// approved change request whose `apply_at_ms` has passed on this member's clock. Apply
/// checks the time again against log time, so a proposal made early is refused, and a
/// new leader simply picks the schedule up from the state.
pub async fn apply_scheduled_changes(node: Arc<Node>) {
    let mut tick =
        tokio::time::interval(std::time::Duration::from_millis(SCHEDULE_CHECK_INTERVAL_MS));
    loop {
        tick.tick().await;
        if node.leader() != Some(node.member_id) || node.state_machine.applied().namespaces == 0 {
            continue;
        }
        let due = match node
            .state_machine
            .change_requests("", Some(ChangeState::Approved))
        {
            Ok(approved) => {
                let now = crate::auth::now_ms();
                approved
                    .into_iter()
                    .filter(|c| c.apply_at_ms <= now)
                    .map(|c| c.id)
                    .collect::<Vec<_>>()
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot list approved change requests");
                continue;
            }
        };
        for id in due {
            let op = Op::ChangeAction(ChangeAction {
                kind: Kind::ApplyScheduled as i32,
                id,
                reason: String::new(),
            });
            match node.propose_as_leader(op).await {
                Ok(result) => {
                    if let Some(Outcome::Error(e)) = result.result {
                        tracing::debug!(change = id, error = %e.message, "scheduled apply refused");
                    }
                }
                Err(status) => {
                    tracing::warn!(change = id, %status, "scheduled apply failed; retrying")
                }
            }
        }
    }
}

impl Node {
    /// Refuses a put of `value` at `key` that the key's namespace would refuse at apply,
    /// before it costs a proposal. A refusal by this member's applied state is confirmed
    /// after a barrier, so a member behind a schema change never refuses what it allows.
    pub async fn refuse_ungoverned(
        &self,
        key: &[u8],
        value: &[u8],
        lease: i64,
    ) -> Result<(), Status> {
        let check = || {
            self.state_machine
                .check_governed_write(key, Some(value), lease)
                .map_err(errors::from_store)
        };
        if check()?.is_none() {
            return Ok(());
        }
        self.linearizable_barrier().await?;
        match check()? {
            Some((_, refusal)) => Err(errors::from_store(refusal)),
            None => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl Config for ConfigService {
    async fn create_namespace(
        &self,
        request: Request<CreateNamespaceRequest>,
    ) -> Result<Response<NamespaceResponse>, Status> {
        let op = Op::NamespaceChange(Box::new(NamespaceChange {
            namespace: request.get_ref().namespace.clone(),
            create: true,
            force: false,
        }));
        Ok(Response::new(self.change(&request, op).await?))
    }

    async fn update_namespace(
        &self,
        request: Request<UpdateNamespaceRequest>,
    ) -> Result<Response<NamespaceResponse>, Status> {
        let op = Op::NamespaceChange(Box::new(NamespaceChange {
            namespace: request.get_ref().namespace.clone(),
            create: false,
            force: request.get_ref().force,
        }));
        Ok(Response::new(self.change(&request, op).await?))
    }

    async fn delete_namespace(
        &self,
        request: Request<DeleteNamespaceRequest>,
    ) -> Result<Response<NamespaceResponse>, Status> {
        let op = Op::NamespaceDelete(NamespaceDelete {
            name: request.get_ref().name.clone(),
        });
        Ok(Response::new(self.change(&request, op).await?))
    }

    async fn get_namespace(
        &self,
        request: Request<GetNamespaceRequest>,
    ) -> Result<Response<NamespaceResponse>, Status> {
        self.read(&request).await?;
        let name = &request.get_ref().name;
        let namespace = self
            .node
            .state_machine
            .namespace(name)
            .map_err(errors::from_store)?
            .ok_or_else(|| {
                errors::from_store(StoreError::Governance(GovernanceError::NotFound(
                    name.clone(),
                )))
            })?;
        Ok(Response::new(NamespaceResponse {
            namespace: Some(namespace),
            revision: self.node.state_machine.applied().revision,
            offending_keys: Vec::new(),
            offending_count: 0,
        }))
    }

    async fn list_namespaces(
        &self,
        request: Request<ListNamespacesRequest>,
    ) -> Result<Response<ListNamespacesResponse>, Status> {
        self.read(&request).await?;
        let (namespaces, revision) = self
            .node
            .state_machine
            .namespaces()
            .map_err(errors::from_store)?;
        Ok(Response::new(ListNamespacesResponse {
            namespaces,
            revision,
        }))
    }

    async fn create_change(
        &self,
        request: Request<CreateChangeRequest>,
    ) -> Result<Response<ChangeResponse>, Status> {
        let op = Op::ChangeCreate(Box::new(request.get_ref().clone()));
        Ok(Response::new(self.change_request(&request, op).await?))
    }

    async fn approve_change(
        &self,
        request: Request<ChangeActionRequest>,
    ) -> Result<Response<ChangeResponse>, Status> {
        self.act(request, Kind::Approve).await
    }

    async fn reject_change(
        &self,
        request: Request<ChangeActionRequest>,
    ) -> Result<Response<ChangeResponse>, Status> {
        self.act(request, Kind::Reject).await
    }

    async fn cancel_change(
        &self,
        request: Request<ChangeActionRequest>,
    ) -> Result<Response<ChangeResponse>, Status> {
        self.act(request, Kind::Cancel).await
    }

    async fn rebase_change(
        &self,
        request: Request<ChangeActionRequest>,
    ) -> Result<Response<ChangeResponse>, Status> {
        self.act(request, Kind::Rebase).await
    }

    async fn break_glass_change(
        &self,
        request: Request<ChangeActionRequest>,
    ) -> Result<Response<ChangeResponse>, Status> {
        self.act(request, Kind::BreakGlass).await
    }

    async fn get_change(
        &self,
        request: Request<GetChangeRequest>,
    ) -> Result<Response<ChangeResponse>, Status> {
        self.read(&request).await?;
        let id = request.get_ref().id;
        let change = self
            .node
            .state_machine
            .change_request(id)
            .map_err(errors::from_store)?
            .ok_or_else(|| {
                errors::from_store(StoreError::Governance(GovernanceError::ChangeNotFound(id)))
            })?;
        Ok(Response::new(ChangeResponse {
            change: Some(change),
            revision: self.node.state_machine.applied().revision,
        }))
    }

    async fn list_changes(
        &self,
        request: Request<ListChangesRequest>,
    ) -> Result<Response<ListChangesResponse>, Status> {
        self.read(&request).await?;
        let ListChangesRequest {
            namespace,
            filter_state,
            state,
        } = request.into_inner();
        let state = if filter_state {
            Some(ChangeState::try_from(state).map_err(|_| {
                Status::invalid_argument(format!("vane: unknown change request state {state}"))
            })?)
        } else {
            None
        };
        let changes = self
            .node
            .state_machine
            .change_requests(&namespace, state)
            .map_err(errors::from_store)?;
        Ok(Response::new(ListChangesResponse {
            changes,
            revision: self.node.state_machine.applied().revision,
        }))
    }

    async fn list_audit(
        &self,
        request: Request<ListAuditRequest>,
    ) -> Result<Response<ListAuditResponse>, Status> {
        // Records of a key or prefix need read permission on it; the whole trail needs
        // the root role (while auth is on).
        let filter = request.get_ref();
        let access = if filter.key.is_empty() {
            Access::Admin
        } else if filter.prefix {
            Access::read(&filter.key, &vane_raft_store::prefix_range_end(&filter.key))
        } else {
            Access::read(&filter.key, &[])
        };
        self.node
            .authorized_caller(request.metadata(), &[access])
            .await?;
        self.node.linearizable_barrier().await?;
        let records = self
            .node
            .state_machine
            .audit(request.get_ref())
            .map_err(errors::from_store)?;
        Ok(Response::new(ListAuditResponse {
            records,
            revision: self.node.state_machine.applied().revision,
        }))
    }

    async fn verify_audit(
        &self,
        request: Request<VerifyAuditRequest>,
    ) -> Result<Response<VerifyAuditResponse>, Status> {
        self.auditor(&request).await?;
        let verdict = self
            .node
            .state_machine
            .verify_audit()
            .map_err(errors::from_store)?;
        Ok(Response::new(verdict))
    }

    async fn resolve(
        &self,
        request: Request<ResolveRequest>,
    ) -> Result<Response<ResolveResponse>, Status> {
        self.namespace_reader(&request, &request.get_ref().namespace)
            .await?;
        let ResolveRequest {
            namespace,
            environment,
            key,
        } = request.into_inner();
        let (resolved, revision) = self
            .node
            .state_machine
            .resolve(&namespace, &environment, &key)
            .map_err(errors::from_store)?;
        Ok(Response::new(ResolveResponse {
            resolved: Some(resolved),
            revision,
        }))
    }

    async fn diff_environments(
        &self,
        request: Request<DiffEnvironmentsRequest>,
    ) -> Result<Response<DiffEnvironmentsResponse>, Status> {
        self.namespace_reader(&request, &request.get_ref().namespace)
            .await?;
        let DiffEnvironmentsRequest {
            namespace,
            from,
            to,
        } = request.into_inner();
        let (differences, revision) = self
            .node
            .state_machine
            .diff_environments(&namespace, &from, &to)
            .map_err(errors::from_store)?;
        Ok(Response::new(DiffEnvironmentsResponse {
            differences,
            revision,
        }))
    }

    async fn impact(
        &self,
        request: Request<ImpactRequest>,
    ) -> Result<Response<ImpactResponse>, Status> {
        // A preview shows the keys' revisions and who watches them: it needs read on
        // every key it touches (the whole namespace, for a change request).
        let ImpactRequest {
            change_id,
            writes,
            watcher_limit,
        } = request.get_ref();
        let limit = match *watcher_limit {
            0 => IMPACT_WATCHERS_DEFAULT,
            n => n.min(IMPACT_WATCHERS_MAX),
        };
        let (keys, revision) = if *change_id != 0 {
            // Caught up first: the change request names the namespace to check against.
            self.read(&request).await?;
            let change = self
                .node
                .state_machine
                .change_request(*change_id)
                .map_err(errors::from_store)?
                .ok_or_else(|| {
                    errors::from_store(StoreError::Governance(GovernanceError::ChangeNotFound(
                        *change_id,
                    )))
                })?;
            self.may_read_namespace(&request, &change.namespace).await?;
            self.node.state_machine.change_impact(*change_id)
        } else {
            if writes.is_empty() || writes.len() > IMPACT_WRITES_MAX {
                return Err(Status::invalid_argument(format!(
                    "vane: an impact preview names a change request or 1 to \
                     {IMPACT_WRITES_MAX} writes, not {}",
                    writes.len()
                )));
            }
            let accesses: Vec<Access> = writes
                .iter()
                .map(|w| {
                    let end: &[u8] = if w.delete { &w.range_end } else { &[] };
                    Access::read(&w.key, end)
                })
                .collect();
            self.node
                .authorized_caller(request.metadata(), &accesses)
                .await?;
            self.node.linearizable_barrier().await?;
            self.node.state_machine.writes_impact(writes)
        }
        .map_err(errors::from_store)?;
        let events = keys
            .keys
            .iter()
            .map(|k| WatchedEvent {
                key: k.key.clone(),
                delete: k.delete,
            })
            .collect();
        let (watchers, watcher_count, unanswered) =
            self.node.watchers_everywhere(events, limit).await;
        Ok(Response::new(ImpactResponse {
            keys: keys.keys,
            key_count: keys.count,
            accepted: keys.accepted,
            watchers,
            watcher_count,
            unanswered,
            revision,
        }))
    }

    async fn validate_value(
        &self,
        request: Request<ValidateValueRequest>,
    ) -> Result<Response<ValidateValueResponse>, Status> {
        self.read(&request).await?;
        let ValidateValueRequest { key, value } = request.into_inner();
        let (namespace, refusal) = self
            .node
            .state_machine
            .dry_run_write(&key, &value)
            .map_err(errors::from_store)?
            .unwrap_or_default();
        Ok(Response::new(ValidateValueResponse {
            valid: refusal.is_none(),
            namespace,
            reason: refusal.unwrap_or_default(),
        }))
    }
}
