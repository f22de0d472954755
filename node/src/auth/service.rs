//! etcd's Auth service: enabling auth, Authenticate, and managing users and roles, with
//! etcd's rules and error strings (etcdctl's `auth`, `user` and `role` commands).
//!
//! Changes are commands: the member checks that the caller has the root role (once
//! auth is on), hashes a password or draws the signing key itself, and proposes; apply
//! checks the root role again and enforces etcd's rules (no `root`, no enable). Reads
//! (UserGet, RoleList, AuthStatus, ...) are linearizable, as etcd serves them through
//! its log, and need the root role too, except that a user may read itself and the
//! roles it holds. Authenticate is served by any member from its applied state after a
//! read barrier, so a user added through another member can log in at once.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vane_proto::etcdserverpb::auth_server::Auth;
use vane_proto::etcdserverpb::{
    AuthDisableRequest, AuthDisableResponse, AuthEnableRequest, AuthEnableResponse,
    AuthRoleAddRequest, AuthRoleAddResponse, AuthRoleDeleteRequest, AuthRoleDeleteResponse,
    AuthRoleGetRequest, AuthRoleGetResponse, AuthRoleGrantPermissionRequest,
    AuthRoleGrantPermissionResponse, AuthRoleListRequest, AuthRoleListResponse,
    AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse, AuthStatusRequest,
    AuthStatusResponse, AuthUserAddRequest, AuthUserAddResponse, AuthUserChangePasswordRequest,
    AuthUserChangePasswordResponse, AuthUserDeleteRequest, AuthUserDeleteResponse,
    AuthUserGetRequest, AuthUserGetResponse, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse,
    AuthUserListRequest, AuthUserListResponse, AuthUserRevokeRoleRequest,
    AuthUserRevokeRoleResponse, AuthenticateRequest, AuthenticateResponse, ResponseHeader,
};
use vane_proto::raft::command::Op;
use vane_proto::raft::command_result::Result as Outcome;
use vane_proto::raft::{AuthEnable, AuthUserAdd, AuthUserChangePassword};
use vane_raft_store::{AuthError, StoreError};

use super::{Access, Caller, now_ms, password, token};
use crate::errors;
use crate::node::Node;

/// Bytes of the token signing key drawn at AuthEnable.
const TOKEN_KEY_BYTES: usize = 32;

/// Serves the Auth API of one member.
pub struct AuthService {
    node: Arc<Node>,
}

impl AuthService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        AuthService { node }
    }

    fn header(&self) -> Option<ResponseHeader> {
        self.node.header(self.node.state_machine.applied().revision)
    }

    /// Proposes the auth change `op` for `caller` and answers with the response header.
    async fn commit(&self, op: Op, caller: &Caller) -> Result<Option<ResponseHeader>, Status> {
        let result = self.node.propose_as(op, None, caller).await?;
        match result.result {
            Some(Outcome::AuthChanged(_)) => Ok(self.node.header(result.revision)),
            Some(Outcome::Error(e)) => Err(errors::from_command(&e)),
            other => Err(Status::internal(format!(
                "vane: unexpected result of an auth change: {other:?}"
            ))),
        }
    }

    /// The caller of an auth change, once it is known to hold the root role (or auth is
    /// off).
    async fn admin<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await
    }

    /// The caller of an auth read, with the state caught up to every change acknowledged
    /// before the request (etcd answers these through its log).
    async fn reader<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let caller = self.node.caller(request.metadata()).await?;
        self.node.linearizable_barrier().await?;
        Ok(caller)
    }

    /// Whether `caller` is the user `name` (auth on, token verified).
    fn is_user(caller: &Caller, name: &str) -> bool {
        matches!(caller, Caller::User(user) if !user.is_empty() && user == name)
    }
}

/// Runs a password hash on the blocking pool: it costs tens of milliseconds of CPU.
async fn hash_password(plaintext: String) -> Result<String, Status> {
    tokio::task::spawn_blocking(move || password::hash(&plaintext))
        .await
        .map_err(|e| Status::internal(format!("vane: password hashing failed: {e}")))?
        .map_err(|e| Status::internal(format!("vane: password hashing failed: {e}")))
}

fn store_error(error: AuthError) -> Status {
    errors::from_store(StoreError::Auth(error))
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(
        &self,
        request: Request<AuthEnableRequest>,
    ) -> Result<Response<AuthEnableResponse>, Status> {
        let caller = self.admin(&request).await?;
        let token_key: [u8; TOKEN_KEY_BYTES] = rand::random();
        let op = Op::AuthEnable(AuthEnable {
            token_key: token_key.to_vec(),
        });
        let header = self.commit(op, &caller).await?;
        Ok(Response::new(AuthEnableResponse { header }))
    }

    async fn auth_disable(
        &self,
        request: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        let caller = self.admin(&request).await?;
        let header = self
            .commit(Op::AuthDisable(request.into_inner()), &caller)
            .await?;
        Ok(Response::new(AuthDisableResponse { header }))
    }

    async fn auth_status(
        &self,
        request: Request<AuthStatusRequest>,
    ) -> Result<Response<AuthStatusResponse>, Status> {
        let caller = self.reader(&request).await?;
        self.node.authorize(&caller, &[Access::Admin]).await?;
        let state = self
            .node
            .state_machine
            .auth_state()
            .map_err(errors::from_store)?;
        Ok(Response::new(AuthStatusResponse {
            header: self.header(),
            enabled: state.enabled,
            auth_revision: state.revision,
        }))
    }

    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let request = request.into_inner();
        self.node.linearizable_barrier().await?;
        let state = self
            .node
            .state_machine
            .auth_state()
            .map_err(errors::from_store)?;
        if !state.enabled {
            return Err(errors::auth_not_enabled());
        }
        let user = self
            .node
            .state_machine
            .auth_user(&request.name)
            .map_err(errors::from_store)?;
        let Some(user) = user.filter(|u| !u.no_password) else {
            return Err(errors::auth_failed());
        };
        let plaintext = request.password;
        let hash = user.password_hash.clone();
        let matches = tokio::task::spawn_blocking(move || password::verify(&plaintext, &hash))
            .await
            .map_err(|e| Status::internal(format!("vane: password check failed: {e}")))?;
        if !matches {
            return Err(errors::auth_failed());
        }
        let ttl_ms = self
            .node
            .config
            .auth_token_ttl_seconds
            .saturating_mul(1000)
            .min(i64::MAX as u64) as i64;
        let claims = token::Claims {
            user: user.name,
            auth_revision: state.revision,
            expires_at_ms: now_ms().saturating_add(ttl_ms),
        };
        let token = token::mint(&state.token_key, self.node.cluster_id, &claims)
            .ok_or_else(|| Status::internal("vane: the token signing key is unusable"))?;
        Ok(Response::new(AuthenticateResponse {
            header: self.header(),
            token,
        }))
    }

    async fn user_add(
        &self,
        request: Request<AuthUserAddRequest>,
    ) -> Result<Response<AuthUserAddResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        if request.name.is_empty() {
            return Err(store_error(AuthError::UserEmpty));
        }
        let no_password = request.options.is_some_and(|o| o.no_password);
        let password_hash = if no_password {
            String::new()
        } else {
            hash_password(request.password).await?
        };
        let op = Op::AuthUserAdd(AuthUserAdd {
            name: request.name,
            password_hash,
            no_password,
        });
        let header = self.commit(op, &caller).await?;
        Ok(Response::new(AuthUserAddResponse { header }))
    }

    async fn user_get(
        &self,
        request: Request<AuthUserGetRequest>,
    ) -> Result<Response<AuthUserGetResponse>, Status> {
        let caller = self.reader(&request).await?;
        let request = request.into_inner();
        if !Self::is_user(&caller, &request.name) {
            self.node.authorize(&caller, &[Access::Admin]).await?;
        }
        let user = self
            .node
            .state_machine
            .auth_user(&request.name)
            .map_err(errors::from_store)?
            .ok_or_else(|| store_error(AuthError::UserNotFound))?;
        Ok(Response::new(AuthUserGetResponse {
            header: self.header(),
            roles: user.roles,
        }))
    }

    async fn user_list(
        &self,
        request: Request<AuthUserListRequest>,
    ) -> Result<Response<AuthUserListResponse>, Status> {
        let caller = self.reader(&request).await?;
        self.node.authorize(&caller, &[Access::Admin]).await?;
        let users = self
            .node
            .state_machine
            .auth_users()
            .map_err(errors::from_store)?;
        Ok(Response::new(AuthUserListResponse {
            header: self.header(),
            users: users.into_iter().map(|u| u.name).collect(),
        }))
    }

    async fn user_delete(
        &self,
        request: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        let caller = self.admin(&request).await?;
        let header = self
            .commit(Op::AuthUserDelete(request.into_inner()), &caller)
            .await?;
        Ok(Response::new(AuthUserDeleteResponse { header }))
    }

    async fn user_change_password(
        &self,
        request: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        let password_hash = hash_password(request.password).await?;
        let op = Op::AuthUserChangePassword(AuthUserChangePassword {
            name: request.name,
            password_hash,
        });
        let header = self.commit(op, &caller).await?;
        Ok(Response::new(AuthUserChangePasswordResponse { header }))
    }

    async fn user_grant_role(
        &self,
        request: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        let caller = self.admin(&request).await?;
        let header = self
            .commit(Op::AuthUserGrantRole(request.into_inner()), &caller)
            .await?;
        Ok(Response::new(AuthUserGrantRoleResponse { header }))
    }

    async fn user_revoke_role(
        &self,
        request: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        let caller = self.admin(&request).await?;
        let header = self
            .commit(Op::AuthUserRevokeRole(request.into_inner()), &caller)
            .await?;
        Ok(Response::new(AuthUserRevokeRoleResponse { header }))
    }

    async fn role_add(
        &self,
        request: Request<AuthRoleAddRequest>,
    ) -> Result<Response<AuthRoleAddResponse>, Status> {
        let caller = self.admin(&request).await?;
        let header = self
            .commit(Op::AuthRoleAdd(request.into_inner()), &caller)
            .await?;
        Ok(Response::new(AuthRoleAddResponse { header }))
    }

    async fn role_get(
        &self,
        request: Request<AuthRoleGetRequest>,
    ) -> Result<Response<AuthRoleGetResponse>, Status> {
        let caller = self.reader(&request).await?;
        let request = request.into_inner();
        let holds_role = match &caller {
            Caller::User(user) if !user.is_empty() => self
                .node
                .state_machine
                .auth_user_has_role(user, &request.role)
                .map_err(errors::from_store)?,
            _ => false,
        };
        if !holds_role {
            self.node.authorize(&caller, &[Access::Admin]).await?;
        }
        let role = self
            .node
            .state_machine
            .auth_role(&request.role)
            .map_err(errors::from_store)?
            .ok_or_else(|| store_error(AuthError::RoleNotFound))?;
        Ok(Response::new(AuthRoleGetResponse {
            header: self.header(),
            perm: role.key_permission,
        }))
    }

    async fn role_list(
        &self,
        request: Request<AuthRoleListRequest>,
    ) -> Result<Response<AuthRoleListResponse>, Status> {
        let caller = self.reader(&request).await?;
        self.node.authorize(&caller, &[Access::Admin]).await?;
        let roles = self
            .node
            .state_machine
            .auth_roles()
            .map_err(errors::from_store)?;
        Ok(Response::new(AuthRoleListResponse {
            header: self.header(),
            roles: roles
                .into_iter()
                .map(|r| String::from_utf8_lossy(&r.name).into_owned())
                .collect(),
        }))
    }

    async fn role_delete(
        &self,
        request: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        let caller = self.admin(&request).await?;
        let header = self
            .commit(Op::AuthRoleDelete(request.into_inner()), &caller)
            .await?;
        Ok(Response::new(AuthRoleDeleteResponse { header }))
    }

    async fn role_grant_permission(
        &self,
        request: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        let caller = self.admin(&request).await?;
        let header = self
            .commit(Op::AuthRoleGrantPermission(request.into_inner()), &caller)
            .await?;
        Ok(Response::new(AuthRoleGrantPermissionResponse { header }))
    }

    async fn role_revoke_permission(
        &self,
        request: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        let caller = self.admin(&request).await?;
        let header = self
            .commit(Op::AuthRoleRevokePermission(request.into_inner()), &caller)
            .await?;
        Ok(Response::new(AuthRoleRevokePermissionResponse { header }))
    }
}
