//! How MVCC records are laid out as RocksDB keys.
//!
//! * `kv`: the user key as is, mapped to its current `KeyValue`. Reads at the current
//!   revision, the common case, touch only this family.
//! * `kv_history`: `escape(user key) ++ !revision` (big-endian, inverted so the newest
//!   version of a key sorts first), mapped to the `KeyValue` written at that revision, or
//!   a tombstone (`version == 0`) for a delete. A read at revision R seeks to
//!   `escape(key) ++ !R` and finds the version in force at R with one seek.
//! * `revisions`: `revision ++ sub`, mapped to the key changed there: what a watch
//!   replays, in order.
//!
//! User keys may hold any byte, so the history key escapes them order-preservingly:
//! `0x00` becomes `0x00 0xFF` and the key ends with `0x00 0x01`.

/// Encoded `escape(key)` followed by the terminator: the prefix shared by every version.
pub(crate) fn history_prefix(user_key: &[u8]) -> Vec<u8> {
    let mut out = escape(user_key);
    out.extend_from_slice(&[0x00, 0x01]);
    out
}

/// Escapes a key without terminating it: the bound to start or stop a scan at.
pub(crate) fn escape(user_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + 10);
    for &b in user_key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out
}

/// The history key of `user_key` at `revision`.
pub(crate) fn history_key(user_key: &[u8], revision: i64) -> Vec<u8> {
    let mut out = history_prefix(user_key);
    out.extend_from_slice(&(!(revision as u64)).to_be_bytes());
    out
}

/// The first history key after every version of `user_key`: where the next key begins.
pub(crate) fn history_key_after(user_key: &[u8]) -> Vec<u8> {
    let mut out = history_prefix(user_key);
    out.extend_from_slice(&[0xFF; 9]);
    out
}

/// Splits a history key into the user key and the revision.
pub(crate) fn decode_history_key(encoded: &[u8]) -> Option<(Vec<u8>, i64)> {
    if encoded.len() < 10 {
        return None;
    }
    let (body, rev) = encoded.split_at(encoded.len() - 8);
    let revision = !u64::from_be_bytes(rev.try_into().ok()?) as i64;
    let body = body.strip_suffix(&[0x00, 0x01])?;
    let mut key = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        key.push(body[i]);
        if body[i] == 0 {
            if body.get(i + 1) != Some(&0xFF) {
                return None;
            }
            i += 1;
        }
        i += 1;
    }
    Some((key, revision))
}

/// Key of the `sub`-th change at `revision` in the `revisions` family.
pub(crate) fn revision_key(revision: i64, sub: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&(revision as u64).to_be_bytes());
    out[8..].copy_from_slice(&sub.to_be_bytes());
    out
}

/// Start of `revision` in the `revisions` family.
pub(crate) fn revision_prefix(revision: i64) -> [u8; 8] {
    (revision as u64).to_be_bytes()
}

/// Splits a `revisions` key.
pub(crate) fn decode_revision_key(encoded: &[u8]) -> Option<(i64, u32)> {
    let rev = u64::from_be_bytes(encoded.get(..8)?.try_into().ok()?) as i64;
    let sub = u32::from_be_bytes(encoded.get(8..12)?.try_into().ok()?);
    Some((rev, sub))
}

/// Big-endian id keys, for leases and sessions: numeric order is key order.
pub(crate) fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// `id ++ suffix`: lease attachments and session results.
pub(crate) fn id_suffix_key(id: u64, suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + suffix.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(suffix);
    out
}

/// The exclusive end of every `id ++ …` key.
pub(crate) fn id_end(id: u64) -> Vec<u8> {
    match id.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xFF; 9],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keys_sort_by_user_key_then_newest_first() {
        let keys: Vec<&[u8]> = vec![
            b"", b"\0", b"\0\0", b"\0a", b"a", b"a\0", b"a\x01", b"ab", b"b",
        ];
        let mut encoded = Vec::new();
        for k in &keys {
            for rev in [9, 3, 1] {
                encoded.push((history_key(k, rev), k.to_vec(), rev));
            }
        }
        let mut sorted = encoded.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            sorted, encoded,
            "encoding must preserve (key asc, revision desc)"
        );
        for (enc, key, rev) in &encoded {
            assert_eq!(decode_history_key(enc), Some((key.clone(), *rev)));
            assert!(enc.as_slice() < history_key_after(key).as_slice());
            assert!(enc.as_slice() >= escape(key).as_slice());
        }
    }

    #[test]
    fn escaped_range_end_bounds_exactly_the_keys_below_it() {
        let keys: Vec<&[u8]> = vec![b"a", b"a\0", b"a\0\0", b"a\x01", b"b", b"b\0"];
        for end in &keys {
            for k in &keys {
                let inside = history_key(k, 5).as_slice() < escape(end).as_slice();
                assert_eq!(inside, k < end, "key {k:?} end {end:?}");
            }
        }
    }
}
