//! Who is asking, and whether they may: etcd's auth on every client path.
//!
//! * [`service`]: etcd's Auth gRPC service (users, roles, permissions, Authenticate).
//! * [`token`]: the tokens Authenticate mints and every request carries.
//! * [`password`]: hashing passwords before they are proposed.
//!
//! Every service resolves its request's token to a [`Caller`] with [`Node::caller`],
//! then calls [`Node::authorize`] with what the request needs ([`Access`]). Writes also
//! carry the caller inside the proposed command, and apply checks it again at the
//! command's place in the log: that check is the one that orders a write with the auth
//! changes around it, and the one here only refuses early. Reads are checked in the same
//! snapshot they are served from (`StateMachine::range_as`). While auth is off every
//! check passes and no token is looked at, so the default behaviour is etcd's without
//! auth.
//!
//! A member's applied state may lag the leader's by a few entries. So that lag never
//! refuses what the log already allows (a role just granted, a user just added), a
//! refusal that depends on the state is only given after a linearizable barrier and a
//! second look; the happy path costs no round trip.

pub mod password;
pub mod service;
pub mod token;

use std::time::{SystemTime, UNIX_EPOCH};

pub use service::AuthService;
use tonic::Status;
use tonic::metadata::MetadataMap;
pub use vane_raft_store::auth::{Access, Caller};

use crate::errors;
use crate::node::Node;
use token::TokenError;

/// The gRPC metadata key etcd clients send their token under.
pub const TOKEN_METADATA_KEY: &str = "token";

/// The verified client certificate's common name that the client port passed on with
/// `metadata` (see [`crate::tls::CertUserLayer`]), if any.
pub fn cert_user(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get(crate::tls::CERT_USER_METADATA_KEY)
        .and_then(|value| value.to_str().ok())
}

/// What one look at a token concluded.
enum Verdict {
    /// It names this caller.
    Valid(Caller),
    /// Refused for good (malformed, expired, or from before a password change).
    Invalid,
    /// Refused by this member's applied state, which may be behind the token.
    NotYet,
}

/// Wall-clock time on this member, for token expiry (never used by apply).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Node {
    /// The caller `metadata`'s token names, or an anonymous caller when it carries none.
    /// A token that does not verify is refused with etcd's "invalid auth token", on which
    /// etcd clients authenticate again.
    pub async fn caller(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        let token = match metadata.get(TOKEN_METADATA_KEY) {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| errors::invalid_auth_token())?),
        };
        self.caller_with(token, cert_user(metadata)).await
    }

    /// [`Node::caller_of_token`], except that a request without a token whose connection
    /// presented a verified client certificate is its common name's user (etcd's rule
    /// under `--client-cert-auth`). A token, when there is one, wins.
    pub async fn caller_with(
        &self,
        token: Option<&str>,
        cert_user: Option<&str>,
    ) -> Result<Caller, Status> {
        match (token, cert_user) {
            (None, Some(user)) if !user.is_empty() => Ok(Caller::User(user.to_string())),
            _ => self.caller_of_token(token).await,
        }
    }

    /// [`Node::caller`] for a token already taken out of its metadata (a watch stream's).
    pub async fn caller_of_token(&self, token: Option<&str>) -> Result<Caller, Status> {
        let Some(token) = token else {
            return Ok(Caller::anonymous());
        };
        match self.verify_token(token)? {
            Verdict::Valid(caller) => return Ok(caller),
            Verdict::Invalid => return Err(errors::invalid_auth_token()),
            Verdict::NotYet => {}
        }
        self.linearizable_barrier().await?;
        match self.verify_token(token)? {
            Verdict::Valid(caller) => Ok(caller),
            Verdict::Invalid | Verdict::NotYet => Err(errors::invalid_auth_token()),
        }
    }

    fn verify_token(&self, token: &str) -> Result<Verdict, Status> {
        let state = self
            .state_machine
            .auth_state()
            .map_err(errors::from_store)?;
        if !state.enabled {
            // A token minted at an auth revision this member has not reached may come from
            // an AuthEnable it has not applied yet (enabling raises the revision). Any
            // other token is left over from before auth was disabled, and ignored, as
            // etcd clients keep sending theirs.
            return Ok(match token::claimed_auth_revision(token) {
                Some(minted_at) if minted_at > state.revision => Verdict::NotYet,
                _ => Verdict::Valid(Caller::anonymous()),
            });
        }
        let claims = match token::verify(&state.token_key, self.cluster_id, token, now_ms()) {
            Ok(claims) => claims,
            Err(TokenError::Malformed | TokenError::Expired) => return Ok(Verdict::Invalid),
            Err(TokenError::BadSignature) => return Ok(Verdict::NotYet),
        };
        let user = self
            .state_machine
            .auth_user(&claims.user)
            .map_err(errors::from_store)?;
        Ok(match user {
            None => Verdict::NotYet,
            Some(user) if user.credential_revision > claims.auth_revision => Verdict::Invalid,
            Some(_) => Verdict::Valid(Caller::User(claims.user)),
        })
    }

    /// Refuses, with etcd's error, unless `caller` may do everything in `accesses`. A
    /// refusal is confirmed after a linearizable barrier, so a member that has not yet
    /// applied a grant never refuses what the log allows.
    pub async fn authorize(&self, caller: &Caller, accesses: &[Access]) -> Result<(), Status> {
        match self.state_machine.check_access(caller, accesses) {
            Ok(()) => Ok(()),
            Err(e) if e.is_request_error() => {
                self.linearizable_barrier().await?;
                self.state_machine
                    .check_access(caller, accesses)
                    .map_err(errors::from_store)
            }
            Err(e) => Err(errors::from_store(e)),
        }
    }

    /// [`Node::caller`] then [`Node::authorize`]: the caller of a request that needs
    /// `accesses`.
    pub async fn authorized_caller(
        &self,
        metadata: &MetadataMap,
        accesses: &[Access],
    ) -> Result<Caller, Status> {
        let caller = self.caller(metadata).await?;
        self.authorize(&caller, accesses).await?;
        Ok(caller)
    }
}
