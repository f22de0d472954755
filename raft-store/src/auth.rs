//! Users, roles and permissions as replicated state, and the one permission check that
//! every request path goes through.
//!
//! Auth changes are commands like any other, so every member holds the same users and
//! roles at the same log index and refuses the same requests. Apply never hashes a
//! password or draws a key: the proposing member does both (argon2 for passwords, a
//! random token signing key at AuthEnable) and the command carries only the results,
//! so the plaintext never enters the log or the store.
//!
//! Permissions are etcd's: a role holds key ranges it may read, write or both; a user
//! may do what the union of its roles' ranges covers, and a user with the `root` role may
//! do anything, including auth management and maintenance. Nothing is cached: each check
//! reads the user and its roles from the state it runs against (the batch being applied,
//! or the snapshot a read is served from), so a revoked role takes effect at exactly the
//! log index that revoked it.

use prost::Message;
use vane_proto::authpb::permission::Type as PermissionType;
use vane_proto::authpb::{Permission, Role};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{
    AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGrantPermissionRequest,
    AuthRoleRevokePermissionRequest, AuthUserDeleteRequest, AuthUserGrantRoleRequest,
    AuthUserRevokeRoleRequest, DeleteRangeRequest, PutRequest, RequestOp, TxnRequest,
};
use vane_proto::raft::command::Op;
use vane_proto::raft::{AuthChanged, AuthEnable, AuthUserAdd, AuthUserChangePassword, Command};
use vane_proto::storage::{AuthState, StoredUser};

use crate::db::{BatchView, Cf, Reader};
use crate::error::{AuthError, Result, StoreError};
use crate::mvcc::write::keys_of_lease;

/// The user that must exist, with the root role, before auth can be enabled.
pub const ROOT_USER: &str = "root";
/// The role that may do anything.
pub const ROOT_ROLE: &str = "root";

const STATE_KEY: &[u8] = b"state";

/// Whom a request acts for, as a permission check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The member itself (a lease's expiry, a quota alarm): no permission applies, as
    /// etcd's internal requests run as root.
    Member,
    /// A client, as the user its token named; an empty name when it sent no token.
    User(String),
}

impl Caller {
    /// A client that presented no credentials.
    pub fn anonymous() -> Caller {
        Caller::User(String::new())
    }

    /// Who proposed `command`.
    pub fn of_command(command: &Command) -> Caller {
        if command.from_member {
            Caller::Member
        } else {
            Caller::User(command.principal.clone())
        }
    }
}

/// What a request needs from its caller's permissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reading every key of etcd's `key`/`range_end` pair.
    Read {
        /// First key.
        key: Vec<u8>,
        /// etcd's range end: empty for `key` alone, `"\0"` for every key from `key` on.
        range_end: Vec<u8>,
    },
    /// Writing every key of etcd's `key`/`range_end` pair.
    Write {
        /// First key.
        key: Vec<u8>,
        /// As for [`Access::Read`].
        range_end: Vec<u8>,
    },
    /// Writing every key attached to a lease: revoking it deletes them, and attaching
    /// one more key to it would let the caller revoke them (etcd's rule).
    WriteLeaseKeys(i64),
    /// The root role: auth management, compaction, membership and maintenance.
    Admin,
}

impl Access {
    /// Reading `key` (and the range up to `range_end`).
    pub fn read(key: &[u8], range_end: &[u8]) -> Access {
        Access::Read {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
        }
    }

    /// Writing `key` (and the range up to `range_end`).
    pub fn write(key: &[u8], range_end: &[u8]) -> Access {
        Access::Write {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
        }
    }
}

/// Everything `op` needs, as etcd's auth applier checks it: a Put writes its key (and
/// reads it with `prev_kv`, and writes its lease's keys); a DeleteRange writes its range;
/// a Txn reads every compare's range and needs what every operation of *both* branches
/// needs, at every depth, whichever branch runs; compaction, alarms and auth changes
/// need the root role. Lease grants and sessions need nothing.
pub fn accesses_of(op: &Op) -> Vec<Access> {
    let mut accesses = Vec::new();
    match op {
        Op::Put(put) => put_accesses(put, &mut accesses),
        Op::DeleteRange(delete) => delete_accesses(delete, &mut accesses),
        Op::Txn(txn) => txn_accesses(txn, &mut accesses),
        Op::LeaseRevoke(revoke) => accesses.push(Access::WriteLeaseKeys(revoke.id)),
        // Opening a change request needs what writing its keys would; approving one
        // is decided by the namespace's policy, not by key permissions.
        Op::ChangeCreate(create) => {
            for op in &create.ops {
                accesses.push(Access::write(&op.key, &[]));
            }
        }
        Op::ChangeAction(_) => {}
        Op::Compaction(_)
        | Op::Alarm(_)
        | Op::AuthEnable(_)
        | Op::AuthDisable(_)
        | Op::AuthUserAdd(_)
        | Op::AuthUserDelete(_)
        | Op::AuthUserChangePassword(_)
        | Op::AuthUserGrantRole(_)
        | Op::AuthUserRevokeRole(_)
        | Op::AuthRoleAdd(_)
        | Op::AuthRoleDelete(_)
        | Op::AuthRoleGrantPermission(_)
        | Op::AuthRoleRevokePermission(_)
        | Op::NamespaceChange(_)
        | Op::NamespaceDelete(_) => accesses.push(Access::Admin),
        Op::LeaseGrant(_) | Op::OpenSession(_) | Op::CloseSession(_) => {}
    }
    accesses
}

fn put_accesses(put: &PutRequest, accesses: &mut Vec<Access>) {
    accesses.push(Access::write(&put.key, &[]));
    if put.prev_kv {
        accesses.push(Access::read(&put.key, &[]));
    }
    if put.lease != 0 {
        accesses.push(Access::WriteLeaseKeys(put.lease));
    }
}

fn delete_accesses(delete: &DeleteRangeRequest, accesses: &mut Vec<Access>) {
    accesses.push(Access::write(&delete.key, &delete.range_end));
    if delete.prev_kv {
        accesses.push(Access::read(&delete.key, &delete.range_end));
    }
}

/// What a txn needs ([`accesses_of`] for a Txn), without wrapping it in an [`Op`].
pub(crate) fn txn_accesses_of(txn: &TxnRequest) -> Vec<Access> {
    let mut accesses = Vec::new();
    txn_accesses(txn, &mut accesses);
    accesses
}

fn txn_accesses(txn: &TxnRequest, accesses: &mut Vec<Access>) {
    for compare in &txn.compare {
        accesses.push(Access::read(&compare.key, &compare.range_end));
    }
    for op in txn.success.iter().chain(&txn.failure) {
        request_op_accesses(op, accesses);
    }
}

fn request_op_accesses(op: &RequestOp, accesses: &mut Vec<Access>) {
    match &op.request {
        Some(Request::RequestRange(range)) => {
            accesses.push(Access::read(&range.key, &range.range_end))
        }
        Some(Request::RequestPut(put)) => put_accesses(put, accesses),
        Some(Request::RequestDeleteRange(delete)) => delete_accesses(delete, accesses),
        Some(Request::RequestTxn(nested)) => txn_accesses(nested, accesses),
        None => {}
    }
}

/// The auth state: off, revision 1, until the first auth change.
pub(crate) fn state(reader: &dyn Reader) -> Result<AuthState> {
    match reader.get(Cf::Auth, STATE_KEY)? {
        Some(bytes) => {
            AuthState::decode(bytes.as_slice()).map_err(|e| StoreError::decode("auth state", e))
        }
        None => Ok(AuthState {
            enabled: false,
            revision: 1,
            token_key: Vec::new(),
        }),
    }
}

/// Whether auth is on.
pub(crate) fn enabled(reader: &dyn Reader) -> Result<bool> {
    Ok(state(reader)?.enabled)
}

/// The user named `name`, if any.
pub(crate) fn user(reader: &dyn Reader, name: &str) -> Result<Option<StoredUser>> {
    reader
        .get(Cf::AuthUsers, name.as_bytes())?
        .map(|b| StoredUser::decode(b.as_slice()).map_err(|e| StoreError::decode("user", e)))
        .transpose()
}

/// Every user, by name in byte order (etcd's listing order).
pub(crate) fn users(reader: &dyn Reader) -> Result<Vec<StoredUser>> {
    let mut users = Vec::new();
    reader.scan(Cf::AuthUsers, &[], None, &mut |_, value| {
        users.push(StoredUser::decode(value).map_err(|e| StoreError::decode("user", e))?);
        Ok(true)
    })?;
    Ok(users)
}

/// The role named `name`, if any.
pub(crate) fn role(reader: &dyn Reader, name: &str) -> Result<Option<Role>> {
    reader
        .get(Cf::AuthRoles, name.as_bytes())?
        .map(|b| Role::decode(b.as_slice()).map_err(|e| StoreError::decode("role", e)))
        .transpose()
}

/// Every role, by name in byte order.
pub(crate) fn roles(reader: &dyn Reader) -> Result<Vec<Role>> {
    let mut roles = Vec::new();
    reader.scan(Cf::AuthRoles, &[], None, &mut |_, value| {
        roles.push(Role::decode(value).map_err(|e| StoreError::decode("role", e))?);
        Ok(true)
    })?;
    Ok(roles)
}

fn has_root_role(user: &StoredUser) -> bool {
    user.roles.iter().any(|r| r == ROOT_ROLE)
}

/// Refuses unless `caller` may do everything in `accesses`. Anything goes while auth is
/// off, and for the member itself; a client without a user is refused with etcd's
/// "user name is empty", a user without the permission with "permission denied".
pub(crate) fn check(reader: &dyn Reader, caller: &Caller, accesses: &[Access]) -> Result<()> {
    if accesses.is_empty() || !state(reader)?.enabled {
        return Ok(());
    }
    let name = match caller {
        Caller::Member => return Ok(()),
        Caller::User(name) => name,
    };
    if name.is_empty() {
        return Err(AuthError::UserEmpty.into());
    }
    let Some(user) = user(reader, name)? else {
        return Err(AuthError::PermissionDenied.into());
    };
    if has_root_role(&user) {
        return Ok(());
    }
    let grants = Grants::of(reader, &user)?;
    for access in accesses {
        let allowed = match access {
            Access::Admin => false,
            Access::Read { key, range_end } => grants.read.covers(key, range_end),
            Access::Write { key, range_end } => grants.write.covers(key, range_end),
            Access::WriteLeaseKeys(lease) => keys_of_lease(reader, *lease)?
                .iter()
                .all(|key| grants.write.covers(key, &[])),
        };
        if !allowed {
            return Err(AuthError::PermissionDenied.into());
        }
    }
    Ok(())
}

/// Refuses, while auth is on, a command that uses or closes a client session another
/// user opened: the session's remembered results are that user's answers, and a
/// duplicate is answered from them without any other check.
pub(crate) fn check_session_owner(
    reader: &dyn Reader,
    owner: &str,
    command: &Command,
) -> Result<()> {
    if command.from_member || owner == command.principal || !state(reader)?.enabled {
        return Ok(());
    }
    Err(AuthError::PermissionDenied.into())
}

/// Whether `user_name` holds `role_name` (what lets a non-root user read its own role).
pub(crate) fn has_role(reader: &dyn Reader, user_name: &str, role_name: &str) -> Result<bool> {
    Ok(user(reader, user_name)?.is_some_and(|u| u.roles.iter().any(|r| r == role_name)))
}

/// One end of a key interval: a key (excluded), or past every key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum End {
    Key(Vec<u8>),
    Unbounded,
}

/// `key` alone, as the interval `[key, key ++ "\0")`.
fn point(key: &[u8]) -> (Vec<u8>, End) {
    let mut next = key.to_vec();
    next.push(0);
    (key.to_vec(), End::Key(next))
}

/// The keys etcd's `key`/`range_end` pair names, as `[begin, end)`; `None` when empty.
fn interval(key: &[u8], range_end: &[u8]) -> Option<(Vec<u8>, End)> {
    if range_end.is_empty() {
        Some(point(key))
    } else if range_end == [0] {
        Some((key.to_vec(), End::Unbounded))
    } else if range_end > key {
        Some((key.to_vec(), End::Key(range_end.to_vec())))
    } else {
        None
    }
}

/// The key intervals one user may read, or write: the union of its roles' ranges.
#[derive(Debug, Default)]
struct Intervals(Vec<(Vec<u8>, End)>);

impl Intervals {
    fn add(&mut self, permission: &Permission) {
        if let Some(interval) = interval(&permission.key, &permission.range_end) {
            self.0.push(interval);
        }
    }

    fn sort(&mut self) {
        self.0.sort();
    }

    /// Whether the union covers every key of the request's `key`/`range_end`. A
    /// request whose range is empty (an end at or before its start) needs its first key,
    /// so that a malformed range never passes for nothing.
    fn covers(&self, key: &[u8], range_end: &[u8]) -> bool {
        let (begin, end) = interval(key, range_end).unwrap_or_else(|| point(key));
        // Everything in [begin, reached) is covered; the intervals are sorted by start.
        let mut reached = End::Key(begin);
        for (from, to) in &self.0 {
            if reached >= end {
                break;
            }
            if End::Key(from.clone()) > reached {
                break;
            }
            if *to > reached {
                reached = to.clone();
            }
        }
        reached >= end
    }
}

/// What one user may read and write.
struct Grants {
    read: Intervals,
    write: Intervals,
}

impl Grants {
    fn of(reader: &dyn Reader, user: &StoredUser) -> Result<Grants> {
        let mut grants = Grants {
            read: Intervals::default(),
            write: Intervals::default(),
        };
        for role_name in &user.roles {
            // A role deleted since it was granted grants nothing.
            let Some(role) = role(reader, role_name)? else {
                continue;
            };
            for permission in &role.key_permission {
                match PermissionType::try_from(permission.perm_type) {
                    Ok(PermissionType::Read) => grants.read.add(permission),
                    Ok(PermissionType::Write) => grants.write.add(permission),
                    Ok(PermissionType::Readwrite) => {
                        grants.read.add(permission);
                        grants.write.add(permission);
                    }
                    Err(_) => {}
                }
            }
        }
        grants.read.sort();
        grants.write.sort();
        Ok(grants)
    }
}

// ---- Changes, applied in the log's order. Each one that changes anything raises the
// ---- auth revision by one, as etcd's `commitRevision` does.

fn save_state(view: &mut BatchView<'_>, state: &AuthState) {
    view.put(Cf::Auth, STATE_KEY, state.encode_to_vec());
}

/// Raises the auth revision and returns it.
fn bump(view: &mut BatchView<'_>, mut state: AuthState) -> u64 {
    state.revision += 1;
    save_state(view, &state);
    state.revision
}

fn unchanged(view: &BatchView<'_>) -> Result<AuthChanged> {
    Ok(AuthChanged {
        auth_revision: state(view)?.revision,
    })
}

fn changed(auth_revision: u64) -> Result<AuthChanged> {
    Ok(AuthChanged { auth_revision })
}

fn save_user(view: &mut BatchView<'_>, user: &StoredUser) {
    view.put(Cf::AuthUsers, user.name.as_bytes(), user.encode_to_vec());
}

fn save_role(view: &mut BatchView<'_>, role: &Role) {
    view.put(Cf::AuthRoles, &role.name, role.encode_to_vec());
}

/// AuthEnable: needs a `root` user with the `root` role; a no-op when already on (as etcd).
pub(crate) fn enable(view: &mut BatchView<'_>, request: &AuthEnable) -> Result<AuthChanged> {
    let mut current = state(view)?;
    if current.enabled {
        return unchanged(view);
    }
    let root = user(view, ROOT_USER)?.ok_or(AuthError::RootUserNotExist)?;
    if !has_root_role(&root) {
        return Err(AuthError::RootRoleNotExist.into());
    }
    if request.token_key.is_empty() {
        return Err(StoreError::InvalidArgument(
            "vane: auth enable carries no token signing key".into(),
        ));
    }
    current.enabled = true;
    current.token_key = request.token_key.clone();
    // Raised (etcd does not) so that a member still behind this entry can tell, from a
    // token's revision, that the token comes from a state it has not reached.
    changed(bump(view, current))
}

/// AuthDisable: forgets the signing key, so every token minted so far is dead.
pub(crate) fn disable(view: &mut BatchView<'_>) -> Result<AuthChanged> {
    let mut current = state(view)?;
    if !current.enabled {
        return unchanged(view);
    }
    current.enabled = false;
    current.token_key.clear();
    changed(bump(view, current))
}

/// UserAdd, with the hash the proposer computed.
pub(crate) fn user_add(view: &mut BatchView<'_>, request: &AuthUserAdd) -> Result<AuthChanged> {
    if request.name.is_empty() {
        return Err(AuthError::UserEmpty.into());
    }
    if !request.no_password && request.password_hash.is_empty() {
        return Err(StoreError::InvalidArgument(
            "vane: a user with a password needs the password's hash".into(),
        ));
    }
    if user(view, &request.name)?.is_some() {
        return Err(AuthError::UserAlreadyExist.into());
    }
    let revision = bump(view, state(view)?);
    save_user(
        view,
        &StoredUser {
            name: request.name.clone(),
            password_hash: if request.no_password {
                String::new()
            } else {
                request.password_hash.clone()
            },
            roles: Vec::new(),
            no_password: request.no_password,
            credential_revision: revision,
        },
    );
    changed(revision)
}

/// UserDelete; `root` cannot go while auth is on.
pub(crate) fn user_delete(
    view: &mut BatchView<'_>,
    request: &AuthUserDeleteRequest,
) -> Result<AuthChanged> {
    let current = state(view)?;
    if current.enabled && request.name == ROOT_USER {
        return Err(AuthError::InvalidAuthMgmt.into());
    }
    if user(view, &request.name)?.is_none() {
        return Err(AuthError::UserNotFound.into());
    }
    view.delete(Cf::AuthUsers, request.name.as_bytes());
    changed(bump(view, current))
}

/// UserChangePassword, with the hash the proposer computed. Tokens minted before it are
/// refused from now on.
pub(crate) fn user_change_password(
    view: &mut BatchView<'_>,
    request: &AuthUserChangePassword,
) -> Result<AuthChanged> {
    let Some(mut existing) = user(view, &request.name)? else {
        return Err(AuthError::UserNotFound.into());
    };
    if request.password_hash.is_empty() {
        return Err(StoreError::InvalidArgument(
            "vane: a password change needs the new password's hash".into(),
        ));
    }
    let revision = bump(view, state(view)?);
    existing.password_hash = request.password_hash.clone();
    existing.credential_revision = revision;
    save_user(view, &existing);
    changed(revision)
}

/// UserGrantRole; granting a role the user has is a no-op, and `root` may be granted
/// before a `root` role record exists (as etcd).
pub(crate) fn user_grant_role(
    view: &mut BatchView<'_>,
    request: &AuthUserGrantRoleRequest,
) -> Result<AuthChanged> {
    let Some(mut existing) = user(view, &request.user)? else {
        return Err(AuthError::UserNotFound.into());
    };
    if request.role != ROOT_ROLE && role(view, &request.role)?.is_none() {
        return Err(AuthError::RoleNotFound.into());
    }
    match existing.roles.binary_search(&request.role) {
        Ok(_) => unchanged(view),
        Err(at) => {
            existing.roles.insert(at, request.role.clone());
            save_user(view, &existing);
            changed(bump(view, state(view)?))
        }
    }
}

/// UserRevokeRole; `root` keeps the `root` role while auth is on.
pub(crate) fn user_revoke_role(
    view: &mut BatchView<'_>,
    request: &AuthUserRevokeRoleRequest,
) -> Result<AuthChanged> {
    let current = state(view)?;
    if current.enabled && request.name == ROOT_USER && request.role == ROOT_ROLE {
        return Err(AuthError::InvalidAuthMgmt.into());
    }
    let Some(mut existing) = user(view, &request.name)? else {
        return Err(AuthError::UserNotFound.into());
    };
    let before = existing.roles.len();
    existing.roles.retain(|r| *r != request.role);
    if existing.roles.len() == before {
        return Err(AuthError::RoleNotGranted.into());
    }
    save_user(view, &existing);
    changed(bump(view, current))
}

/// RoleAdd.
pub(crate) fn role_add(
    view: &mut BatchView<'_>,
    request: &AuthRoleAddRequest,
) -> Result<AuthChanged> {
    if request.name.is_empty() {
        return Err(AuthError::RoleEmpty.into());
    }
    if role(view, &request.name)?.is_some() {
        return Err(AuthError::RoleAlreadyExist.into());
    }
    save_role(
        view,
        &Role {
            name: request.name.clone().into_bytes(),
            key_permission: Vec::new(),
        },
    );
    changed(bump(view, state(view)?))
}

/// RoleDelete: the role also leaves every user that had it. The `root` role stays while
/// auth is on.
pub(crate) fn role_delete(
    view: &mut BatchView<'_>,
    request: &AuthRoleDeleteRequest,
) -> Result<AuthChanged> {
    let current = state(view)?;
    if current.enabled && request.role == ROOT_ROLE {
        return Err(AuthError::InvalidAuthMgmt.into());
    }
    if role(view, &request.role)?.is_none() {
        return Err(AuthError::RoleNotFound.into());
    }
    view.delete(Cf::AuthRoles, request.role.as_bytes());
    for mut holder in users(view)? {
        let before = holder.roles.len();
        holder.roles.retain(|r| *r != request.role);
        if holder.roles.len() != before {
            save_user(view, &holder);
        }
    }
    changed(bump(view, current))
}

/// RoleGrantPermission: a range the role already names gets the new type; a new range
/// is added, the list kept sorted by key.
pub(crate) fn role_grant_permission(
    view: &mut BatchView<'_>,
    request: &AuthRoleGrantPermissionRequest,
) -> Result<AuthChanged> {
    let Some(mut existing) = role(view, &request.name)? else {
        return Err(AuthError::RoleNotFound.into());
    };
    let Some(permission) = &request.perm else {
        return Err(StoreError::InvalidArgument(
            "etcdserver: permission is not given".into(),
        ));
    };
    if PermissionType::try_from(permission.perm_type).is_err() {
        return Err(StoreError::InvalidArgument(format!(
            "vane: unknown permission type {}; use READ, WRITE or READWRITE",
            permission.perm_type
        )));
    }
    match existing
        .key_permission
        .iter_mut()
        .find(|p| p.key == permission.key && p.range_end == permission.range_end)
    {
        Some(held) => held.perm_type = permission.perm_type,
        None => {
            existing.key_permission.push(permission.clone());
            existing
                .key_permission
                .sort_by(|a, b| (&a.key, &a.range_end).cmp(&(&b.key, &b.range_end)));
        }
    }
    save_role(view, &existing);
    changed(bump(view, state(view)?))
}

/// RoleRevokePermission of exactly the range `key`/`range_end`.
pub(crate) fn role_revoke_permission(
    view: &mut BatchView<'_>,
    request: &AuthRoleRevokePermissionRequest,
) -> Result<AuthChanged> {
    let Some(mut existing) = role(view, &request.role)? else {
        return Err(AuthError::RoleNotFound.into());
    };
    let before = existing.key_permission.len();
    existing
        .key_permission
        .retain(|p| !(p.key == request.key && p.range_end == request.range_end));
    if existing.key_permission.len() == before {
        return Err(AuthError::PermissionNotGranted.into());
    }
    save_role(view, &existing);
    changed(bump(view, state(view)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intervals(ranges: &[(&str, &str)]) -> Intervals {
        let mut intervals = Intervals::default();
        for (key, range_end) in ranges {
            intervals.add(&Permission {
                perm_type: PermissionType::Read as i32,
                key: key.as_bytes().to_vec(),
                range_end: range_end.as_bytes().to_vec(),
            });
        }
        intervals.sort();
        intervals
    }

    #[test]
    fn a_prefix_covers_its_keys_and_nothing_outside() {
        let granted = intervals(&[("/app/", "/app0")]);
        assert!(granted.covers(b"/app/x", b""));
        assert!(granted.covers(b"/app/", b"/app0"));
        assert!(granted.covers(b"/app/a", b"/app/z"));
        assert!(!granted.covers(b"/app", b""));
        assert!(
            !granted.covers(b"/ap", b"/ap0"),
            "a wider prefix is not covered"
        );
        assert!(!granted.covers(b"/other", b""));
        assert!(!granted.covers(b"/app/", b"\0"), "open-ended is wider");
    }

    #[test]
    fn a_single_key_grant_covers_that_key_only() {
        let granted = intervals(&[("/app/x", "")]);
        assert!(granted.covers(b"/app/x", b""));
        assert!(granted.covers(b"/app/x", b"/app/x\0"));
        assert!(!granted.covers(b"/app/x", b"/app/y"));
        assert!(!granted.covers(b"/app/x0", b""));
    }

    #[test]
    fn adjacent_and_overlapping_grants_cover_their_union_but_not_a_gap() {
        let granted = intervals(&[("a", "c"), ("c", "e"), ("d", "g")]);
        assert!(granted.covers(b"a", b"g"));
        assert!(granted.covers(b"b", b"f"));
        assert!(!granted.covers(b"a", b"h"));
        let gapped = intervals(&[("a", "c"), ("d", "g")]);
        assert!(!gapped.covers(b"a", b"e"));
        assert!(gapped.covers(b"d", b"e"));
    }

    #[test]
    fn open_ended_grants_cover_everything_after_their_key() {
        let granted = intervals(&[("m", "\0")]);
        assert!(granted.covers(b"m", b"\0"));
        assert!(granted.covers(b"zzz", b""));
        assert!(!granted.covers(b"a", b"\0"));
        let everything = intervals(&[("", "\0")]);
        assert!(everything.covers(b"\0", b"\0"));
    }

    #[test]
    fn an_inverted_request_range_needs_its_first_key() {
        let granted = intervals(&[("b", "")]);
        assert!(granted.covers(b"b", b"a"));
        assert!(!intervals(&[]).covers(b"b", b"a"));
    }

    #[test]
    fn both_txn_branches_and_every_compare_are_required() {
        use vane_proto::etcdserverpb::{Compare, RangeRequest};
        let txn = TxnRequest {
            compare: vec![Compare {
                key: b"/app/x".to_vec(),
                ..Default::default()
            }],
            success: vec![RequestOp {
                request: Some(Request::RequestRange(RangeRequest {
                    key: b"/app/x".to_vec(),
                    ..Default::default()
                })),
            }],
            failure: vec![RequestOp {
                request: Some(Request::RequestTxn(TxnRequest {
                    success: vec![RequestOp {
                        request: Some(Request::RequestPut(PutRequest {
                            key: b"/app/y".to_vec(),
                            prev_kv: true,
                            ..Default::default()
                        })),
                    }],
                    ..Default::default()
                })),
            }],
        };
        let accesses = accesses_of(&Op::Txn(txn));
        assert_eq!(
            accesses,
            vec![
                Access::read(b"/app/x", b""),
                Access::read(b"/app/x", b""),
                Access::write(b"/app/y", b""),
                Access::read(b"/app/y", b""),
            ]
        );
    }
}
