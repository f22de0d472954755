//! Change requests: the way into a namespace whose policy requires approvals.
//!
//! A change request holds puts and deletes under one namespace and the mod revision each
//! key had when it was opened. Approvals are commands carrying their principal, so every
//! member counts the same approvals in the same order; the approval that meets the policy
//! applies the request in the same command, at one revision, unless a key moved since its
//! base: then the request becomes `CONFLICTED` and nothing else changes. Values are
//! checked against the schema in force when the request opens and again when it applies.
//!
//! Who may do what: anyone who may write the keys opens a request; an approver is a
//! holder of one of the namespace's approver roles (any user when none are named, and a
//! root-role holder always), never the author unless the policy allows it, and once per
//! request. Approvals need auth to mean anything: with auth off every caller is the same
//! anonymous principal, the author, so a request that needs approvals waits.

use prost::Message;
use vane_proto::api::change_request::State;
use vane_proto::api::{
    Approval, ChangeOp, ChangeRequest, ChangeResponse, CreateChangeRequest, Namespace,
};
use vane_proto::raft::ChangeAction;
use vane_proto::raft::change_action::Kind;

use crate::auth::{self, ROOT_ROLE};
use crate::db::{BatchView, Cf, Reader};
use crate::error::{GovernanceError, Result, StoreError};
use crate::governance::{self, SchemaCache};
use crate::mvcc::range::{Revisions, get_current};
use crate::mvcc::write::WriteTxn;

/// Operations one change request may hold.
pub const CHANGE_OPS_MAX: usize = 128;

fn key_of(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

fn decode(bytes: &[u8]) -> Result<ChangeRequest> {
    ChangeRequest::decode(bytes).map_err(|e| StoreError::decode("a change request", e))
}

/// The change request `id`, if it exists.
pub(crate) fn get(reader: &dyn Reader, id: u64) -> Result<Option<ChangeRequest>> {
    reader
        .get(Cf::Changes, &key_of(id))?
        .map(|bytes| decode(&bytes))
        .transpose()
}

/// Change requests, newest first, of `namespace` (all when empty) and in `state`.
pub(crate) fn list(
    reader: &dyn Reader,
    namespace: &str,
    state: Option<State>,
) -> Result<Vec<ChangeRequest>> {
    let mut all = Vec::new();
    reader.scan(Cf::Changes, b"", None, &mut |_, value| {
        let change = decode(value)?;
        let wanted = (namespace.is_empty() || change.namespace == namespace)
            && state.is_none_or(|s| change.state == s as i32);
        if wanted {
            all.push(change);
        }
        Ok(true)
    })?;
    all.reverse();
    Ok(all)
}

fn store(view: &mut BatchView<'_>, change: &ChangeRequest) {
    view.put(Cf::Changes, &key_of(change.id), change.encode_to_vec());
}

fn namespace_of(reader: &dyn Reader, name: &str) -> Result<Namespace> {
    governance::get(reader, name)?.ok_or_else(|| GovernanceError::NotFound(name.to_string()).into())
}

fn shown(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// The keys' current mod revisions, as bases.
fn refresh_bases(reader: &dyn Reader, ops: &mut [ChangeOp]) -> Result<()> {
    for op in ops {
        op.base_mod_revision = get_current(reader, &op.key)?.map_or(0, |kv| kv.mod_revision);
    }
    Ok(())
}

/// Every value of `ops` meets `namespace`'s schema now.
fn check_values(cache: &SchemaCache, namespace: &Namespace, ops: &[ChangeOp]) -> Result<()> {
    for op in ops.iter().filter(|op| !op.delete) {
        if let Some(refusal) = governance::schema_verdict(cache, namespace, &op.key, &op.value)? {
            return Err(StoreError::InvalidArgument(refusal));
        }
    }
    Ok(())
}

/// Opens a change request numbered `id` (the log index) for `author`.
pub(crate) fn create(
    view: &mut BatchView<'_>,
    cache: &SchemaCache,
    request: &CreateChangeRequest,
    id: u64,
    author: &str,
    now_ms: i64,
    revisions: Revisions,
) -> Result<(ChangeResponse, Revisions)> {
    let namespace = namespace_of(view, &request.namespace)?;
    if request.ops.is_empty() || request.ops.len() > CHANGE_OPS_MAX {
        return Err(StoreError::InvalidArgument(format!(
            "vane: a change request holds 1 to {CHANGE_OPS_MAX} operations, not {}",
            request.ops.len()
        )));
    }
    let mut ops = request.ops.clone();
    for (i, op) in ops.iter().enumerate() {
        if !op.key.starts_with(&namespace.prefix) {
            return Err(StoreError::InvalidArgument(format!(
                "vane: {} is outside namespace {} (prefix {})",
                shown(&op.key),
                namespace.name,
                shown(&namespace.prefix)
            )));
        }
        if ops[..i].iter().any(|earlier| earlier.key == op.key) {
            return Err(StoreError::InvalidArgument(format!(
                "vane: {} appears twice in the change request",
                shown(&op.key)
            )));
        }
    }
    check_values(cache, &namespace, &ops)?;
    refresh_bases(view, &mut ops)?;
    let mut change = ChangeRequest {
        id,
        namespace: namespace.name.clone(),
        author: author.to_string(),
        description: request.description.clone(),
        rollback: request.rollback,
        apply_at_ms: request.apply_at_ms.max(0),
        ops,
        state: State::Open as i32,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
        ..Default::default()
    };
    let revisions = if approvals_required(&namespace) == 0 {
        approved(view, cache, &namespace, &mut change, revisions, now_ms)?
    } else {
        revisions
    };
    store(view, &change);
    Ok((
        ChangeResponse {
            change: Some(change),
            revision: revisions.current,
        },
        revisions,
    ))
}

fn approvals_required(namespace: &Namespace) -> u32 {
    namespace
        .approval
        .as_ref()
        .map_or(0, |a| a.approvals_required)
}

/// Whether `principal` may approve or reject under `namespace`'s policy.
fn is_approver(reader: &dyn Reader, namespace: &Namespace, principal: &str) -> Result<bool> {
    if auth::has_role(reader, principal, ROOT_ROLE)? {
        return Ok(true);
    }
    let roles = namespace
        .approval
        .as_ref()
        .map(|a| a.approver_roles.clone())
        .unwrap_or_default();
    if roles.is_empty() {
        return Ok(true);
    }
    for role in &roles {
        if auth::has_role(reader, principal, role)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn not_allowed(message: String) -> StoreError {
    GovernanceError::NotAllowed(message).into()
}

fn state_name(state: i32) -> &'static str {
    State::try_from(state).map_or("unknown", |s| s.as_str_name())
}

fn require_state(change: &ChangeRequest, allowed: &[State], action: &str) -> Result<()> {
    if allowed.iter().any(|s| *s as i32 == change.state) {
        return Ok(());
    }
    Err(GovernanceError::Conflict(format!(
        "change request {} is {}; it cannot be {action}",
        change.id,
        state_name(change.state)
    ))
    .into())
}

/// The policy is met: apply now, or wait for the request's time.
fn approved(
    view: &mut BatchView<'_>,
    cache: &SchemaCache,
    namespace: &Namespace,
    change: &mut ChangeRequest,
    revisions: Revisions,
    now_ms: i64,
) -> Result<Revisions> {
    if change.apply_at_ms > now_ms {
        change.state = State::Approved as i32;
        return Ok(revisions);
    }
    try_apply(view, cache, namespace, change, revisions)
}

/// Applies `change` if no key moved since its base, else marks it conflicted. Returns the
/// revisions after it.
fn try_apply(
    view: &mut BatchView<'_>,
    cache: &SchemaCache,
    namespace: &Namespace,
    change: &mut ChangeRequest,
    revisions: Revisions,
) -> Result<Revisions> {
    let mut moved = Vec::new();
    for op in &change.ops {
        let now = get_current(view, &op.key)?.map_or(0, |kv| kv.mod_revision);
        if now != op.base_mod_revision {
            moved.push(op.key.clone());
        }
    }
    if !moved.is_empty() {
        change.state = State::Conflicted as i32;
        change.conflicting_keys = moved;
        return Ok(revisions);
    }
    check_values(cache, namespace, &change.ops)?;
    let mut write = WriteTxn::new(view, revisions);
    for op in &change.ops {
        if op.delete {
            write.delete_range(&crate::mvcc::KeyRange::new(&op.key, &[]))?;
        } else {
            write.put(&op.key, op.value.clone(), 0)?;
        }
    }
    let after = write.finish();
    change.state = State::Applied as i32;
    change.applied_revision = after.current;
    change.conflicting_keys.clear();
    Ok(after)
}

/// Carries out `action` by `principal` at log time `now_ms`. Returns the request as it
/// stands after and the store revisions (moved only when it applied).
pub(crate) fn act(
    view: &mut BatchView<'_>,
    cache: &SchemaCache,
    action: &ChangeAction,
    principal: &str,
    now_ms: i64,
    revisions: Revisions,
) -> Result<(ChangeResponse, Revisions)> {
    let mut change = get(view, action.id)?.ok_or(GovernanceError::ChangeNotFound(action.id))?;
    let namespace = namespace_of(view, &change.namespace)?;
    let policy = namespace.approval.clone().unwrap_or_default();
    let kind = Kind::try_from(action.kind).map_err(|_| {
        StoreError::InvalidArgument(format!("vane: unknown change action {}", action.kind))
    })?;
    let mut after = revisions;
    match kind {
        Kind::Approve => {
            require_state(&change, &[State::Open], "approved")?;
            if principal == change.author && !policy.allow_self_approval {
                return Err(not_allowed(format!(
                    "the author of change request {} cannot approve it",
                    change.id
                )));
            }
            if !is_approver(view, &namespace, principal)? {
                return Err(not_allowed(format!(
                    "{principal:?} holds none of the approver roles of namespace {} ({})",
                    namespace.name,
                    policy.approver_roles.join(", ")
                )));
            }
            if change.approvals.iter().any(|a| a.principal == principal) {
                return Err(GovernanceError::Conflict(format!(
                    "{principal:?} already approved change request {}",
                    change.id
                ))
                .into());
            }
            change.approvals.push(Approval {
                principal: principal.to_string(),
                at_ms: now_ms,
            });
            if change.approvals.len() as u64 >= u64::from(policy.approvals_required) {
                after = approved(view, cache, &namespace, &mut change, revisions, now_ms)?;
            }
        }
        Kind::Reject => {
            require_state(
                &change,
                &[State::Open, State::Conflicted, State::Approved],
                "rejected",
            )?;
            if !is_approver(view, &namespace, principal)? {
                return Err(not_allowed(format!(
                    "only approvers of namespace {} may reject its change requests",
                    namespace.name
                )));
            }
            change.state = State::Rejected as i32;
            change.decided_by = principal.to_string();
            change.reason = action.reason.clone();
        }
        Kind::Cancel => {
            require_state(
                &change,
                &[State::Open, State::Conflicted, State::Approved],
                "cancelled",
            )?;
            if principal != change.author && !auth::has_role(view, principal, ROOT_ROLE)? {
                return Err(not_allowed(format!(
                    "only the author of change request {} may cancel it",
                    change.id
                )));
            }
            change.state = State::Cancelled as i32;
            change.decided_by = principal.to_string();
            change.reason = action.reason.clone();
        }
        Kind::Rebase => {
            require_state(
                &change,
                &[State::Open, State::Conflicted, State::Approved],
                "rebased",
            )?;
            if principal != change.author && !auth::has_role(view, principal, ROOT_ROLE)? {
                return Err(not_allowed(format!(
                    "only the author of change request {} may rebase it",
                    change.id
                )));
            }
            refresh_bases(view, &mut change.ops)?;
            change.approvals.clear();
            change.conflicting_keys.clear();
            change.state = State::Open as i32;
        }
        Kind::BreakGlass => {
            require_state(
                &change,
                &[State::Open, State::Approved],
                "applied by break-glass",
            )?;
            let allowed = !policy.break_glass_role.is_empty()
                && auth::has_role(view, principal, &policy.break_glass_role)?;
            if !allowed {
                return Err(not_allowed(format!(
                    "break-glass in namespace {} needs its break-glass role{}",
                    namespace.name,
                    if policy.break_glass_role.is_empty() {
                        " (it names none)".to_string()
                    } else {
                        format!(" {}", policy.break_glass_role)
                    }
                )));
            }
            if action.reason.trim().is_empty() {
                return Err(StoreError::InvalidArgument(
                    "vane: break-glass needs a reason".into(),
                ));
            }
            change.break_glass = true;
            change.decided_by = principal.to_string();
            change.reason = action.reason.clone();
            after = try_apply(view, cache, &namespace, &mut change, revisions)?;
        }
        Kind::ApplyScheduled => {
            require_state(&change, &[State::Approved], "applied on schedule")?;
            if change.apply_at_ms > now_ms {
                return Err(GovernanceError::Conflict(format!(
                    "change request {} is due at {} ms, not yet",
                    change.id, change.apply_at_ms
                ))
                .into());
            }
            after = try_apply(view, cache, &namespace, &mut change, revisions)?;
        }
    }
    change.updated_at_ms = now_ms;
    store(view, &change);
    Ok((
        ChangeResponse {
            change: Some(change),
            revision: after.current,
        },
        after,
    ))
}
