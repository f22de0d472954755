//! Who the client is to a cluster with auth on: the user and password it authenticates
//! with, the token that every request then carries in its `token` metadata, and getting
//! a new token when the cluster refuses the old one (it expired, its user's password
//! changed, auth was enabled after the client connected). Also etcd's Auth service as
//! client methods: enabling auth, users, roles and permissions.
//!
//! The token is added to each request by [`TokenSlot`], a tonic interceptor on every
//! member's channel, so no call site builds metadata itself and a refreshed token
//! reaches every later request, unary or stream, at once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Code, Request, Status};
use vane_proto::etcdserverpb::auth_client::AuthClient;
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
    AuthUserRevokeRoleResponse, AuthenticateRequest,
};

use crate::client::{Attempts, Client, Inner};
use crate::error::{Error, Failure};
use crate::members::Route;
use crate::retry::Retry;

/// The gRPC metadata key etcd servers read the token from.
pub const TOKEN_METADATA_KEY: &str = "token";

/// etcd's answer to a request whose token does not verify.
const INVALID_TOKEN_MESSAGE: &str = "etcdserver: invalid auth token";
/// etcd's answer to a request without a token while auth is on.
const USER_EMPTY_MESSAGE: &str = "etcdserver: user name is empty";
/// etcd's answer to Authenticate while auth is off.
const AUTH_NOT_ENABLED_MESSAGE: &str = "etcdserver: authentication is not enabled";

/// A user name and password to authenticate with (etcdctl's `--user`, `--password`).
/// `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// Its password, sent only in Authenticate requests.
    pub password: String,
}

impl Credentials {
    /// Credentials of `user` with `password`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The token requests carry now, shared by every member's channel; also the interceptor
/// that adds it. The generation counts refreshes, so that of many requests refused with
/// the same old token only the first authenticates again.
#[derive(Clone, Default)]
pub(crate) struct TokenSlot {
    current: Arc<RwLock<Current>>,
    /// Held while authenticating, so concurrent refusals wait for one new token.
    refreshing: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct Current {
    token: Option<MetadataValue<Ascii>>,
    generation: u64,
}

impl TokenSlot {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        // Only a token and a counter live here; a panicking writer cannot leave them
        // inconsistent, so a poisoned lock is reused.
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    /// How many times the token was replaced; read before an attempt, so a refusal can
    /// tell whether someone already replaced the token it was sent with.
    pub(crate) fn generation(&self) -> u64 {
        self.read().generation
    }

    /// Whether requests carry a token now (else they are anonymous, or the client
    /// certificate's user).
    pub(crate) fn has_token(&self) -> bool {
        self.read().token.is_some()
    }

    fn install(&self, token: Option<MetadataValue<Ascii>>) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        current.token = token;
        current.generation += 1;
    }
}

impl Interceptor for TokenSlot {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.read().token {
            request
                .metadata_mut()
                .insert(TOKEN_METADATA_KEY, token.clone());
        }
        Ok(request)
    }
}

/// Whether `status` is the cluster refusing the token (or its absence), which a new
/// Authenticate may cure.
pub(crate) fn is_token_refusal(status: &Status) -> bool {
    match status.code() {
        Code::Unauthenticated => status.message() == INVALID_TOKEN_MESSAGE,
        Code::InvalidArgument => status.message() == USER_EMPTY_MESSAGE,
        _ => false,
    }
}

/// The token refusal a watch cancellation reports, as the status it stands for: etcd
/// cancels a watch whose creation its auth check refused, with the status in words
/// (`rpc error: code = Unauthenticated desc = etcdserver: invalid auth token`).
pub(crate) fn token_refusal_in_cancel_reason(reason: &str) -> Option<Status> {
    if reason.ends_with(INVALID_TOKEN_MESSAGE) {
        Some(Status::unauthenticated(INVALID_TOKEN_MESSAGE))
    } else if reason.ends_with(USER_EMPTY_MESSAGE) {
        Some(Status::invalid_argument(USER_EMPTY_MESSAGE))
    } else {
        None
    }
}

impl Inner {
    /// Authenticates with the configured credentials, if any, and installs the token.
    /// A cluster with auth off answers that it is not enabled: then requests go without
    /// a token, as etcd's clients do, and a refusal after auth is enabled authenticates.
    pub(crate) async fn authenticate(&self, deadline: Instant) -> Result<(), Error> {
        let Some(credentials) = self.config.credentials.clone() else {
            return Ok(());
        };
        let request = AuthenticateRequest {
            name: credentials.user,
            password: credentials.password,
        };
        let answer = self
            .call(
                "authenticate",
                Route::Read,
                Retry::Always,
                deadline,
                &mut Attempts::default(),
                |channel| {
                    let request = request.clone();
                    async move {
                        AuthClient::new(channel)
                            .authenticate(request)
                            .await
                            .map(|r| r.into_inner())
                    }
                },
            )
            .await;
        match answer {
            Ok(answer) => {
                let token = MetadataValue::try_from(answer.token.as_str()).map_err(|_| {
                    Error::Authentication {
                        message: "the cluster returned a token that is not valid metadata"
                            .to_string(),
                    }
                })?;
                if !self.token.has_token() {
                    // Sessions opened anonymously (before auth was enabled) belong to
                    // nobody this user may act for: forget them, they expire, and the
                    // next write opens one as this user.
                    self.sessions.take_all();
                }
                self.token.install(Some(token));
                self.counters
                    .tokens_obtained
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            Err(Error::Conflict { message }) if message == AUTH_NOT_ENABLED_MESSAGE => {
                self.token.install(None);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// After a refusal of the token sent at `generation`: authenticates again, unless
    /// another request already did since. Returns whether the request is worth sending
    /// again (there are credentials and a token was obtained). Boxed because
    /// authenticating is itself a call.
    pub(crate) fn refresh_token(
        &self,
        generation: u64,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Result<bool, Error>> + Send + '_>> {
        Box::pin(async move {
            if self.config.credentials.is_none() {
                return Ok(false);
            }
            let _refreshing = self.token.refreshing.lock().await;
            if self.token.generation() != generation {
                return Ok(true);
            }
            tracing::debug!("the cluster refused the token; authenticating again");
            self.authenticate(deadline).await?;
            Ok(true)
        })
    }
}

impl Inner {
    /// What a stream's failed opening means for retrying it, after replacing a refused
    /// token: a refusal that a new token may cure is retried like a request that never
    /// reached the member. `generation` is the token generation read before opening.
    pub(crate) async fn stream_failure(&self, status: &Status, generation: u64) -> Failure {
        if is_token_refusal(status) {
            match self.refresh_token(generation, self.deadline()).await {
                Ok(true) => return Failure::NotApplied(Error::from_status(status)),
                Ok(false) => {}
                Err(e) => return Failure::Final(e),
            }
        }
        Failure::of(status)
    }
}

/// Declares Auth service methods of [`Client`], each one call through the retry loop.
/// Changes go to the leader and are retried only when certainly not applied, since a
/// repeated `user add` would fail against its own success; reads go anywhere.
macro_rules! auth_methods {
    ($($(#[$doc:meta])* $method:ident($request:ty) -> $response:ty, $what:literal, $route:ident, $retry:ident;)*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub async fn $method(&self, request: $request) -> Result<$response, Error> {
                    self.inner
                        .call(
                            $what,
                            Route::$route,
                            Retry::$retry,
                            self.inner.deadline(),
                            &mut Attempts::default(),
                            |channel| {
                                let request = request.clone();
                                async move {
                                    AuthClient::new(channel)
                                        .$method(request)
                                        .await
                                        .map(|r| r.into_inner())
                                }
                            },
                        )
                        .await
                }
            )*
        }
    };
}

auth_methods! {
    /// etcd's AuthEnable: from now on every request needs a user with permission; needs
    /// a `root` user with the `root` role.
    auth_enable(AuthEnableRequest) -> AuthEnableResponse, "auth enable", Write, OnlyUnapplied;
    /// etcd's AuthDisable (root only).
    auth_disable(AuthDisableRequest) -> AuthDisableResponse, "auth disable", Write, OnlyUnapplied;
    /// etcd's AuthStatus: whether auth is on, and the auth revision.
    auth_status(AuthStatusRequest) -> AuthStatusResponse, "auth status", Read, Always;
    /// etcd's UserAdd; the password is hashed by the cluster and never stored.
    user_add(AuthUserAddRequest) -> AuthUserAddResponse, "user add", Write, OnlyUnapplied;
    /// etcd's UserGet: a user's roles.
    user_get(AuthUserGetRequest) -> AuthUserGetResponse, "user get", Read, Always;
    /// etcd's UserList.
    user_list(AuthUserListRequest) -> AuthUserListResponse, "user list", Read, Always;
    /// etcd's UserDelete.
    user_delete(AuthUserDeleteRequest) -> AuthUserDeleteResponse, "user delete", Write, OnlyUnapplied;
    /// etcd's UserChangePassword; the user's existing tokens stop verifying.
    user_change_password(AuthUserChangePasswordRequest) -> AuthUserChangePasswordResponse, "user passwd", Write, OnlyUnapplied;
    /// etcd's UserGrantRole.
    user_grant_role(AuthUserGrantRoleRequest) -> AuthUserGrantRoleResponse, "user grant-role", Write, OnlyUnapplied;
    /// etcd's UserRevokeRole.
    user_revoke_role(AuthUserRevokeRoleRequest) -> AuthUserRevokeRoleResponse, "user revoke-role", Write, OnlyUnapplied;
    /// etcd's RoleAdd.
    role_add(AuthRoleAddRequest) -> AuthRoleAddResponse, "role add", Write, OnlyUnapplied;
    /// etcd's RoleGet: a role's permissions.
    role_get(AuthRoleGetRequest) -> AuthRoleGetResponse, "role get", Read, Always;
    /// etcd's RoleList.
    role_list(AuthRoleListRequest) -> AuthRoleListResponse, "role list", Read, Always;
    /// etcd's RoleDelete.
    role_delete(AuthRoleDeleteRequest) -> AuthRoleDeleteResponse, "role delete", Write, OnlyUnapplied;
    /// etcd's RoleGrantPermission: read, write or readwrite on a key or range.
    role_grant_permission(AuthRoleGrantPermissionRequest) -> AuthRoleGrantPermissionResponse, "role grant-permission", Write, OnlyUnapplied;
    /// etcd's RoleRevokePermission.
    role_revoke_permission(AuthRoleRevokePermissionRequest) -> AuthRoleRevokePermissionResponse, "role revoke-permission", Write, OnlyUnapplied;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let credentials = Credentials::new("alice", "s3cret-pw");
        let shown = format!("{credentials:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
    }

    #[test]
    fn only_token_refusals_trigger_authentication() {
        assert!(is_token_refusal(&Status::unauthenticated(
            INVALID_TOKEN_MESSAGE
        )));
        assert!(is_token_refusal(&Status::invalid_argument(
            USER_EMPTY_MESSAGE
        )));
        assert!(!is_token_refusal(&Status::permission_denied(
            "etcdserver: permission denied"
        )));
        assert!(!is_token_refusal(&Status::invalid_argument(
            "etcdserver: authentication failed, invalid user ID or password"
        )));
    }

    #[test]
    fn the_slot_adds_the_current_token_to_every_request() {
        let mut slot = TokenSlot::default();
        let bare = slot.call(Request::new(())).unwrap();
        assert!(bare.metadata().get(TOKEN_METADATA_KEY).is_none());
        let before = slot.generation();
        slot.install(Some(MetadataValue::from_static("tok.1")));
        assert_eq!(slot.generation(), before + 1);
        let sent = slot.call(Request::new(())).unwrap();
        assert_eq!(sent.metadata().get(TOKEN_METADATA_KEY).unwrap(), "tok.1");
    }
}
