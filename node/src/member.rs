//! Member and cluster identities.
//!
//! A founding member's id is derived from the cluster token, its name and its peer URLs,
//! so every founding node computes the same ids without talking. A member added later
//! gets its id from the leader at MemberAdd (derived from the same inputs plus the
//! log time, so a re-added member is a new member) and learns it when it joins.

use sha2::{Digest, Sha256};

fn digest_u64(parts: &[&[u8]]) -> u64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    // Zero means "no member" in etcd's API.
    u64::from_be_bytes(bytes).max(1)
}

/// The id of a founding member.
pub fn founding_member_id(token: &str, name: &str, peer_urls: &[String]) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    digest_u64(&[token.as_bytes(), name.as_bytes(), urls.join(",").as_bytes()])
}

/// The id given to a member added at `at_ms` (leader's clock) with `peer_urls`.
pub fn added_member_id(token: &str, peer_urls: &[String], at_ms: i64) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    digest_u64(&[
        token.as_bytes(),
        urls.join(",").as_bytes(),
        &at_ms.to_be_bytes(),
    ])
}

/// The cluster id: from the token and the founding members, as etcd derives it.
pub fn cluster_id(token: &str, founding_ids: &[u64]) -> u64 {
    let mut ids = founding_ids.to_vec();
    ids.sort_unstable();
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_be_bytes()).collect();
    digest_u64(&[token.as_bytes(), &bytes])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn founding_ids_agree_whatever_the_url_order_and_differ_by_token() {
        let a = founding_member_id("t", "n1", &["http://b:1".into(), "http://a:1".into()]);
        let b = founding_member_id("t", "n1", &["http://a:1".into(), "http://b:1".into()]);
        assert_eq!(a, b);
        assert_ne!(a, founding_member_id("other", "n1", &["http://a:1".into()]));
        assert_ne!(
            added_member_id("t", &["http://a:1".into()], 1),
            added_member_id("t", &["http://a:1".into()], 2)
        );
    }
}
