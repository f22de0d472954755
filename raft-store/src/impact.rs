//! Impact previews: what a change would do before it is made. For a change request or a
//! set of direct writes, the keys it touches and, for each, whether it would be accepted
//! now and why not, in the words the refusal itself would carry. Read from one snapshot;
//! nothing is written. (The watchers that would receive the change are the serving
//! member's to find: they live in its memory, not in the state machine.)

use vane_proto::api::change_request::State;
use vane_proto::api::{ChangeRequest, KeyImpact, ProposedWrite};

use crate::db::{Cf, Reader};
use crate::error::{GovernanceError, Result, StoreError};
use crate::governance::{self, SchemaCache};
use crate::mvcc::decode_kv;
use crate::mvcc::range::get_current;

/// Affected keys a preview lists at most; it counts them all.
pub const IMPACT_KEYS_LISTED: usize = 1000;

/// The keys a previewed change touches (at most [`IMPACT_KEYS_LISTED`]), how many there
/// are in all, and whether every operation would be accepted.
#[derive(Debug, Default)]
pub struct KeysImpact {
    /// The listed keys, in the order the change names them.
    pub keys: Vec<KeyImpact>,
    /// Every affected key, listed or not.
    pub count: u64,
    /// Whether every operation, listed or not, would be accepted now.
    pub accepted: bool,
}

impl KeysImpact {
    fn add(&mut self, key: KeyImpact) {
        self.count += 1;
        self.accepted &= key.accepted;
        if self.keys.len() < IMPACT_KEYS_LISTED {
            self.keys.push(key);
        }
    }
}

fn shown(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// What applying change request `change` now would do: each operation checked against
/// its namespace's schema and its base revision, as the apply would check it.
pub(crate) fn of_change(
    reader: &dyn Reader,
    cache: &SchemaCache,
    change: &ChangeRequest,
) -> Result<KeysImpact> {
    let namespace = governance::get(reader, &change.namespace)?
        .ok_or_else(|| GovernanceError::NotFound(change.namespace.clone()))?;
    let state = State::try_from(change.state).unwrap_or(State::Open);
    let pending = matches!(state, State::Open | State::Approved | State::Conflicted);
    let mut impact = KeysImpact {
        accepted: true,
        ..KeysImpact::default()
    };
    for op in &change.ops {
        let current = get_current(reader, &op.key)?;
        let mod_revision = current.as_ref().map_or(0, |kv| kv.mod_revision);
        let reason = if !pending {
            Some(format!(
                "vane: change request {} is {}; it will not apply",
                change.id,
                state.as_str_name()
            ))
        } else if mod_revision != op.base_mod_revision {
            Some(format!(
                "vane: {} moved since the change request was drafted (mod revision {} then, {} \
                 now): applying would mark it CONFLICTED; rebase it",
                shown(&op.key),
                op.base_mod_revision,
                mod_revision
            ))
        } else if op.delete {
            None
        } else {
            governance::schema_verdict(cache, &namespace, &op.key, &op.value)?
        };
        let changes_value = match (&current, op.delete) {
            (None, true) => false,
            (Some(_), true) | (None, false) => true,
            (Some(kv), false) => kv.value != op.value,
        };
        impact.add(KeyImpact {
            key: op.key.clone(),
            delete: op.delete,
            namespace: namespace.name.clone(),
            mod_revision,
            accepted: reason.is_none(),
            reason: reason.unwrap_or_default(),
            changes_value,
        });
    }
    Ok(impact)
}

/// What the direct writes `writes` would do now: each put or deleted key checked as a
/// direct write is checked at apply (schema, approval policy, lease). A delete of a range
/// touches the keys that exist in it.
pub(crate) fn of_writes(
    reader: &dyn Reader,
    cache: &SchemaCache,
    writes: &[ProposedWrite],
) -> Result<KeysImpact> {
    let mut impact = KeysImpact {
        accepted: true,
        ..KeysImpact::default()
    };
    for write in writes {
        if write.key.is_empty() {
            return Err(StoreError::InvalidArgument(
                "etcdserver: key is not provided".into(),
            ));
        }
        if !write.delete {
            let current = get_current(reader, &write.key)?;
            impact.add(key_impact(
                reader,
                cache,
                &write.key,
                Some(&write.value),
                current.as_ref().map_or(0, |kv| kv.mod_revision),
                current.as_ref().is_none_or(|kv| kv.value != write.value),
            )?);
            continue;
        }
        if write.range_end.is_empty() {
            if let Some(kv) = get_current(reader, &write.key)? {
                impact.add(key_impact(
                    reader,
                    cache,
                    &write.key,
                    None,
                    kv.mod_revision,
                    true,
                )?);
            }
            continue;
        }
        let to = (write.range_end != [0]).then_some(write.range_end.as_slice());
        reader.scan(Cf::Kv, &write.key, to, &mut |key, value| {
            let mod_revision = decode_kv(value)?.mod_revision;
            impact.add(key_impact(reader, cache, key, None, mod_revision, true)?);
            Ok(true)
        })?;
    }
    Ok(impact)
}

/// One key a direct write touches: a put of `value`, or a delete when `None`, checked
/// against the namespace governing the key (looked up once) as a dry run.
fn key_impact(
    reader: &dyn Reader,
    cache: &SchemaCache,
    key: &[u8],
    value: Option<&[u8]>,
    mod_revision: i64,
    changes_value: bool,
) -> Result<KeyImpact> {
    let namespace = governance::governing(reader, key)?;
    let refusal = match &namespace {
        Some(namespace) => governance::dry_run_verdict(cache, namespace, key, value)?,
        None => None,
    };
    Ok(KeyImpact {
        key: key.to_vec(),
        delete: value.is_none(),
        namespace: namespace.map(|n| n.name).unwrap_or_default(),
        mod_revision,
        accepted: refusal.is_none(),
        reason: refusal.unwrap_or_default(),
        changes_value,
    })
}
