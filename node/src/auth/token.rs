//! Auth tokens: what Authenticate hands out and every request carries (gRPC metadata
//! `token`, as etcd clients send it).
//!
//! A token names a user, the auth revision it was minted at and when it expires, and
//! carries an HMAC-SHA256 of those under the cluster's signing key. The key is drawn by
//! the member that proposed AuthEnable and lives in the replicated state, so any member
//! can verify a token another minted, a token from another cluster (another key) fails,
//! and disabling auth (which drops the key) kills every token at once.
//!
//! ```text
//! vane1.<user, hex>.<auth revision>.<expiry, ms since the epoch>.<HMAC, hex>
//! ```
//!
//! Expiry is judged by the verifying member's wall clock: members' clocks are assumed to
//! agree to well within a token's TTL. Permissions are never in the token; they are read
//! from the applied state on every request.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "vane1";
/// Separates what the MAC covers from any other use of the same key.
const MAC_DOMAIN: &[u8] = b"vane auth token v1\0";
/// Longest token accepted: a bound on what a client can make a member parse.
const TOKEN_BYTES_MAX: usize = 4096;

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// The authenticated user.
    pub user: String,
    /// The auth revision when it was minted: a user whose password changed later (or who
    /// was deleted and added again) no longer accepts it.
    pub auth_revision: u64,
    /// When it stops being valid, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not a Vane token at all.
    Malformed,
    /// Not signed with this key: forged, from another cluster, or from an AuthEnable this
    /// member has not applied yet.
    BadSignature,
    /// Past its expiry.
    Expired,
}

/// The MAC of `claims`; `None` only if the HMAC refused the key, which it does for no
/// length (an empty key, auth off, verifies nothing a member minted: members mint with
/// the state's key only while auth is on).
fn mac(key: &[u8], cluster_id: u64, claims: &Claims) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    mac.update(MAC_DOMAIN);
    mac.update(&cluster_id.to_be_bytes());
    mac.update(&(claims.user.len() as u64).to_be_bytes());
    mac.update(claims.user.as_bytes());
    mac.update(&claims.auth_revision.to_be_bytes());
    mac.update(&claims.expires_at_ms.to_be_bytes());
    Some(mac)
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A token for `claims` under `key`, valid in cluster `cluster_id` only; `None` if the
/// key is unusable.
pub fn mint(key: &[u8], cluster_id: u64, claims: &Claims) -> Option<String> {
    let tag = mac(key, cluster_id, claims)?.finalize().into_bytes();
    Some(format!(
        "{PREFIX}.{}.{}.{}.{}",
        to_hex(claims.user.as_bytes()),
        claims.auth_revision,
        claims.expires_at_ms,
        to_hex(&tag)
    ))
}

/// What `token` claims and its MAC, unverified.
fn parse(token: &str) -> Result<(Claims, Vec<u8>), TokenError> {
    if token.len() > TOKEN_BYTES_MAX {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(PREFIX), Some(user), Some(revision), Some(expiry), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    let claims = Claims {
        user: from_hex(user)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(TokenError::Malformed)?,
        auth_revision: revision.parse().map_err(|_| TokenError::Malformed)?,
        expires_at_ms: expiry.parse().map_err(|_| TokenError::Malformed)?,
    };
    let tag = from_hex(tag).ok_or(TokenError::Malformed)?;
    Ok((claims, tag))
}

/// The auth revision `token` claims to have been minted at, unverified: all a member
/// whose auth is off can learn from it (is it from a state this member has not reached?).
pub fn claimed_auth_revision(token: &str) -> Option<u64> {
    parse(token).ok().map(|(claims, _)| claims.auth_revision)
}

/// What `token` says, if `key` signed it for `cluster_id` and it has not expired at
/// `now_ms`. The MAC is compared in constant time.
pub fn verify(key: &[u8], cluster_id: u64, token: &str, now_ms: i64) -> Result<Claims, TokenError> {
    let (claims, tag) = parse(token)?;
    mac(key, cluster_id, &claims)
        .ok_or(TokenError::BadSignature)?
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    if now_ms >= claims.expires_at_ms {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims() -> Claims {
        Claims {
            user: "alice.example".into(),
            auth_revision: 7,
            expires_at_ms: 10_000,
        }
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let token = mint(KEY, 42, &claims()).unwrap();
        assert_eq!(verify(KEY, 42, &token, 9_999), Ok(claims()));
        assert_eq!(verify(KEY, 42, &token, 10_000), Err(TokenError::Expired));
    }

    #[test]
    fn another_key_or_cluster_does_not_verify() {
        let token = mint(KEY, 42, &claims()).unwrap();
        let other_key = b"fedcba9876543210fedcba9876543210";
        assert_eq!(
            verify(other_key, 42, &token, 0),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify(KEY, 43, &token, 0), Err(TokenError::BadSignature));
    }

    #[test]
    fn changing_any_claim_breaks_the_signature() {
        let token = mint(KEY, 42, &claims()).unwrap();
        let root = to_hex(b"root");
        let forged_user = {
            let mut parts: Vec<&str> = token.split('.').collect();
            parts[1] = &root;
            parts.join(".")
        };
        assert_eq!(
            verify(KEY, 42, &forged_user, 0),
            Err(TokenError::BadSignature)
        );
        let longer = token.replace(".10000.", ".99999999.");
        assert_eq!(verify(KEY, 42, &longer, 0), Err(TokenError::BadSignature));
    }

    #[test]
    fn garbage_is_malformed() {
        for token in [
            "",
            "abc",
            "vane1.zz.1.2.00",
            "vane1.61.x.2.00",
            "vane2.61.1.2.00",
        ] {
            assert_eq!(
                verify(KEY, 42, token, 0),
                Err(TokenError::Malformed),
                "{token}"
            );
        }
        assert_eq!(
            verify(KEY, 42, &"a".repeat(TOKEN_BYTES_MAX + 1), 0),
            Err(TokenError::Malformed)
        );
    }
}
