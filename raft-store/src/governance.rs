//! Namespaces: the governance objects that make a key prefix a configuration, with the
//! policy every write under it must meet. They live in the state machine beside the keys,
//! so the check that matters runs at apply, against the policy in force at that point of
//! the log, whichever API the write came through.
//!
//! Two column families hold them: `namespaces` (name → `vane.v1.Namespace`) and
//! `namespace_prefixes` (prefix → name). Prefixes never overlap, so the greatest prefix
//! not above a key is the only one that can be a prefix of it (any other prefix between
//! the two would overlap it).
//!
//! Schemas are compiled once per (namespace, schema version) and kept in a
//! [`SchemaCache`]; compiling and validating are pure functions of the schema text and
//! the value, and remote or file references are not resolvable in this build, so every
//! member reaches the same verdict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prost::Message;
use vane_proto::api::{EnvironmentDifference, Namespace, NamespaceResponse, Resolved};
use vane_proto::raft::{NamespaceChange, NamespaceDelete};
use vane_proto::storage::RevisionEvent;

use crate::db::{BatchView, Cf, Reader};
use crate::error::{GovernanceError, Result, StoreError};
use crate::mvcc::keys::{revision_key, revision_prefix};
use crate::mvcc::range::get_current;

/// Offending keys a refused or forced schema change names, at most.
pub const OFFENDING_KEYS_LISTED: usize = 20;
/// Longest namespace name.
const NAME_BYTES_MAX: usize = 128;
/// Largest schema text, so a schema cannot bloat every snapshot.
const SCHEMA_BYTES_MAX: usize = 256 * 1024;

/// Compiled schemas count at most this many; past it the cache starts over.
const SCHEMAS_CACHED_MAX: usize = 1024;

/// Compiled schemas by their text (a namespace deleted and created again under the same
/// name may bring another schema, so names and versions are not keys). Shared by apply
/// and by the member's early checks; schemas no longer in force are never asked for
/// again and go when the cache starts over.
#[derive(Default)]
pub struct SchemaCache {
    compiled: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl SchemaCache {
    /// The compiled schema of `namespace`, `None` when it has none.
    fn validator(&self, namespace: &Namespace) -> Result<Option<Arc<jsonschema::Validator>>> {
        if namespace.schema.is_empty() {
            return Ok(None);
        }
        let mut compiled = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(validator) = compiled.get(&namespace.schema) {
            return Ok(Some(Arc::clone(validator)));
        }
        if compiled.len() >= SCHEMAS_CACHED_MAX {
            compiled.clear();
        }
        // A stored schema compiled when it was accepted; failing now means damage.
        let validator = Arc::new(compile(&namespace.schema).map_err(|e| {
            StoreError::Corrupt(format!(
                "namespace {} has an unusable schema: {e}",
                namespace.name
            ))
        })?);
        compiled.insert(namespace.schema.clone(), Arc::clone(&validator));
        Ok(Some(validator))
    }
}

/// Compiles a schema text as JSON Schema draft 2020-12.
fn compile(schema: &str) -> std::result::Result<jsonschema::Validator, String> {
    let value: serde_json::Value =
        serde_json::from_str(schema).map_err(|e| format!("the schema is not JSON: {e}"))?;
    jsonschema::draft202012::new(&value).map_err(|e| format!("the schema is invalid: {e}"))
}

/// Why `value` may not be stored at `key` under `namespace`'s schema, in the words a
/// refused write gets: the key, the JSON pointer of the offending part, the rule.
pub(crate) fn schema_verdict(
    cache: &SchemaCache,
    namespace: &Namespace,
    key: &[u8],
    value: &[u8],
) -> Result<Option<String>> {
    let Some(validator) = cache.validator(namespace)? else {
        return Ok(None);
    };
    let shown_key = String::from_utf8_lossy(key);
    let instance: serde_json::Value = match serde_json::from_slice(value) {
        Ok(instance) => instance,
        Err(e) => {
            return Ok(Some(format!(
                "vane: value of {shown_key} is not JSON ({e}); namespace {} takes JSON values",
                namespace.name
            )));
        }
    };
    let Some(error) = validator.iter_errors(&instance).next() else {
        return Ok(None);
    };
    let at = error.instance_path().to_string();
    let at = if at.is_empty() { "/".to_string() } else { at };
    let rule = if namespace.sensitive {
        error.masked().to_string()
    } else {
        error.to_string()
    };
    Ok(Some(format!(
        "vane: value of {shown_key} is invalid at {at}: {rule} (schema of namespace {})",
        namespace.name
    )))
}

fn decode(bytes: &[u8]) -> Result<Namespace> {
    Namespace::decode(bytes).map_err(|e| StoreError::decode("a namespace", e))
}

/// The namespace called `name`.
pub(crate) fn get(reader: &dyn Reader, name: &str) -> Result<Option<Namespace>> {
    reader
        .get(Cf::Namespaces, name.as_bytes())?
        .map(|bytes| decode(&bytes))
        .transpose()
}

/// Every namespace, by name.
pub(crate) fn list(reader: &dyn Reader) -> Result<Vec<Namespace>> {
    let mut all = Vec::new();
    reader.scan(Cf::Namespaces, b"", None, &mut |_, value| {
        all.push(decode(value)?);
        Ok(true)
    })?;
    Ok(all)
}

/// The namespace whose prefix `key` starts with, if any.
pub(crate) fn governing(reader: &dyn Reader, key: &[u8]) -> Result<Option<Namespace>> {
    // The greatest prefix not above the key (a scan: namespaces are few).
    let mut upper = key.to_vec();
    upper.push(0);
    let mut last = None;
    reader.scan(
        Cf::NamespacePrefixes,
        b"",
        Some(&upper),
        &mut |prefix, name| {
            last = Some((prefix.to_vec(), name.to_vec()));
            Ok(true)
        },
    )?;
    let Some((prefix, name)) = last else {
        return Ok(None);
    };
    if !key.starts_with(&prefix) {
        return Ok(None);
    }
    let name = String::from_utf8(name)
        .map_err(|_| StoreError::Corrupt("a namespace prefix names a non-UTF-8 name".into()))?;
    get(reader, &name)?
        .map(Some)
        .ok_or_else(|| StoreError::Corrupt(format!("prefix index names missing namespace {name}")))
}

/// Why a direct write of `value` at `key` (a deletion when `None`) would be refused by the
/// namespace governing it; `Ok(None)` when it is allowed or no namespace governs it.
pub(crate) fn check_write(
    reader: &dyn Reader,
    cache: &SchemaCache,
    key: &[u8],
    value: Option<&[u8]>,
    lease: i64,
) -> Result<Option<(Namespace, StoreError)>> {
    let Some(namespace) = governing(reader, key)? else {
        return Ok(None);
    };
    let refusal = verdict(cache, &namespace, key, value, lease)?;
    Ok(refusal.map(|e| (namespace, e)))
}

/// Why `namespace` would refuse a direct write of `value` at `key` (a deletion when
/// `None`), for a dry run (a validation, an impact preview): where approvals are
/// required, a value the schema refuses is named too, before the approval, so that one
/// answer says everything that stands in the way. The refusal is given as text.
pub(crate) fn dry_run_verdict(
    cache: &SchemaCache,
    namespace: &Namespace,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<Option<String>> {
    let Some(refusal) = verdict(cache, namespace, key, value, 0)? else {
        return Ok(None);
    };
    if let (StoreError::Governance(GovernanceError::ApprovalRequired(_)), Some(value)) =
        (&refusal, value)
        && let Some(invalid) = schema_verdict(cache, namespace, key, value)?
    {
        return Ok(Some(format!("{invalid}; and {refusal}")));
    }
    Ok(Some(refusal.to_string()))
}

fn verdict(
    cache: &SchemaCache,
    namespace: &Namespace,
    key: &[u8],
    value: Option<&[u8]>,
    lease: i64,
) -> Result<Option<StoreError>> {
    let shown_key = String::from_utf8_lossy(key);
    let approvals = namespace
        .approval
        .as_ref()
        .map_or(0, |a| a.approvals_required);
    if approvals > 0 {
        let what = if value.is_some() {
            "write to"
        } else {
            "delete of"
        };
        return Ok(Some(StoreError::Governance(
            GovernanceError::ApprovalRequired(format!(
                "{what} {shown_key} needs {approvals} approval(s) in namespace {}; open a change \
                 request instead of writing directly",
                namespace.name
            )),
        )));
    }
    let Some(value) = value else {
        return Ok(None);
    };
    if lease != 0 && !namespace.schema.is_empty() {
        // A value that vanishes when a lease expires is not governed configuration.
        return Ok(Some(StoreError::InvalidArgument(format!(
            "vane: {shown_key} is in namespace {}, whose values cannot be attached to a lease",
            namespace.name
        ))));
    }
    Ok(schema_verdict(cache, namespace, key, value)?.map(StoreError::InvalidArgument))
}

/// Checks every change the request being applied made (its puts and deletes at one
/// revision, in order, from [`changes_at`]) against the namespaces; the first refusal is returned and the
/// caller rolls the request back. Changes by the member itself (lease expiry) are only
/// refused by nothing: their keys could not have been attached under a schema.
pub(crate) fn check_request(
    view: &BatchView<'_>,
    cache: &SchemaCache,
    changed: &[RevisionEvent],
) -> Result<()> {
    for event in changed {
        let current = if event.deleted {
            None
        } else {
            get_current(view, &event.key)?
        };
        let value = current.as_ref().map(|kv| kv.value.as_slice());
        let lease = current.as_ref().map_or(0, |kv| kv.lease);
        if let Some((_, refusal)) = check_write(view, cache, &event.key, value, lease)? {
            return Err(refusal);
        }
    }
    Ok(())
}

/// The changes one request made at `revision`, in order: what the governance check and
/// the audit look at.
pub(crate) fn changes_at(view: &BatchView<'_>, revision: i64) -> Result<Vec<RevisionEvent>> {
    let mut changed = Vec::new();
    let from = revision_key(revision, 0);
    let to = revision_prefix(revision + 1);
    view.scan(Cf::Revisions, &from, Some(&to), &mut |_, value| {
        changed.push(RevisionEvent::decode(value).map_err(|e| StoreError::decode("an event", e))?);
        Ok(true)
    })?;
    Ok(changed)
}

fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument(format!(
            "vane: namespace name {name:?} must be 1 to {NAME_BYTES_MAX} letters, digits, '-', '_' or '.'"
        )))
    }
}

/// Whether a namespace's own fields hold together (everything but the existing keys).
fn check_policy(namespace: &Namespace) -> Result<()> {
    check_name(&namespace.name)?;
    if namespace.prefix.is_empty() {
        return Err(StoreError::InvalidArgument(
            "vane: a namespace needs a non-empty key prefix".into(),
        ));
    }
    if namespace.schema.len() > SCHEMA_BYTES_MAX {
        return Err(StoreError::InvalidArgument(format!(
            "vane: the schema of namespace {} is {} bytes; at most {SCHEMA_BYTES_MAX}",
            namespace.name,
            namespace.schema.len()
        )));
    }
    if !namespace.schema.is_empty() {
        compile(&namespace.schema).map_err(|e| {
            StoreError::InvalidArgument(format!("vane: namespace {}: {e}", namespace.name))
        })?;
    }
    let mut seen: Vec<&str> = Vec::new();
    for environment in &namespace.environments {
        check_name(&environment.name)?;
        if seen.contains(&environment.name.as_str()) {
            return Err(StoreError::InvalidArgument(format!(
                "vane: environment {} is declared twice",
                environment.name
            )));
        }
        seen.push(&environment.name);
    }
    for environment in &namespace.environments {
        if !environment.inherits.is_empty() && !seen.contains(&environment.inherits.as_str()) {
            return Err(StoreError::InvalidArgument(format!(
                "vane: environment {} inherits {}, which is not declared",
                environment.name, environment.inherits
            )));
        }
        // Follow the chain: it must end, not loop.
        let mut at = environment.inherits.as_str();
        for _ in 0..=namespace.environments.len() {
            if at.is_empty() {
                break;
            }
            if at == environment.name {
                return Err(StoreError::InvalidArgument(format!(
                    "vane: environment {} inherits from itself",
                    environment.name
                )));
            }
            at = namespace
                .environments
                .iter()
                .find(|e| e.name == at)
                .map_or("", |e| e.inherits.as_str());
        }
    }
    Ok(())
}

/// The live keys under `prefix` whose values `namespace`'s schema rejects: the first
/// [`OFFENDING_KEYS_LISTED`] and the count.
fn offending_keys(
    reader: &dyn Reader,
    cache: &SchemaCache,
    namespace: &Namespace,
) -> Result<(Vec<Vec<u8>>, u64)> {
    let mut listed = Vec::new();
    let mut count = 0u64;
    if namespace.schema.is_empty() {
        return Ok((listed, count));
    }
    let end = prefix_end(&namespace.prefix);
    let mut failure = None;
    reader.scan(
        Cf::Kv,
        &namespace.prefix,
        end.as_deref(),
        &mut |key, value| {
            let kv = match vane_proto::mvccpb::KeyValue::decode(value) {
                Ok(kv) => kv,
                Err(e) => {
                    failure = Some(StoreError::decode("a key-value", e));
                    return Ok(false);
                }
            };
            match schema_verdict(cache, namespace, key, &kv.value) {
                Ok(None) => {}
                Ok(Some(_)) => {
                    count += 1;
                    if listed.len() < OFFENDING_KEYS_LISTED {
                        listed.push(key.to_vec());
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )?;
    match failure {
        Some(e) => Err(e),
        None => Ok((listed, count)),
    }
}

/// The first key after every key starting with `prefix`; `None` when there is none.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// etcd's range end for every key starting with `prefix` (`"\0"`, every key from it on,
/// when no key is above them all).
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    prefix_end(prefix).unwrap_or_else(|| vec![0])
}

/// Whether any live key starts with `prefix`.
fn has_keys(reader: &dyn Reader, prefix: &[u8]) -> Result<bool> {
    let mut any = false;
    reader.scan(
        Cf::Kv,
        prefix,
        prefix_end(prefix).as_deref(),
        &mut |_, _| {
            any = true;
            Ok(false)
        },
    )?;
    Ok(any)
}

fn shown(keys: &[Vec<u8>]) -> String {
    keys.iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies a namespace creation or update at store revision `revision` (namespace
/// changes do not move the revision; they are stamped with the one they saw). Returns
/// the stored namespace and, when forced, the keys its schema rejects.
pub(crate) fn change(
    view: &mut BatchView<'_>,
    cache: &SchemaCache,
    request: &NamespaceChange,
    revision: i64,
) -> Result<(NamespaceResponse, bool)> {
    let mut namespace = request.namespace.clone().ok_or_else(|| {
        StoreError::InvalidArgument("vane: the request carries no namespace".into())
    })?;
    check_policy(&namespace)?;
    let existing = get(view, &namespace.name)?;
    let created = match (&existing, request.create) {
        (Some(_), true) => {
            return Err(GovernanceError::Exists(namespace.name.clone()).into());
        }
        (None, false) => {
            return Err(GovernanceError::NotFound(namespace.name.clone()).into());
        }
        (Some(old), false) => {
            if old.prefix != namespace.prefix {
                return Err(GovernanceError::Conflict(format!(
                    "the prefix of namespace {} cannot change (it is {:?}); create another namespace",
                    namespace.name,
                    String::from_utf8_lossy(&old.prefix)
                ))
                .into());
            }
            namespace.create_revision = old.create_revision;
            namespace.schema_version = if old.schema == namespace.schema {
                old.schema_version
            } else {
                old.schema_version + 1
            };
            false
        }
        (None, true) => {
            if let Some(other) = overlapping(view, &namespace.prefix)? {
                return Err(GovernanceError::Conflict(format!(
                    "prefix {:?} overlaps namespace {} (prefix {:?}); namespace prefixes must \
                     not contain each other",
                    String::from_utf8_lossy(&namespace.prefix),
                    other.name,
                    String::from_utf8_lossy(&other.prefix)
                ))
                .into());
            }
            namespace.create_revision = revision;
            namespace.schema_version = 1;
            true
        }
    };
    namespace.mod_revision = revision;
    let (offending, count) = offending_keys(view, cache, &namespace)?;
    if count > 0 && !request.force {
        return Err(GovernanceError::Conflict(format!(
            "{count} existing value(s) under {:?} do not satisfy the schema of namespace {}: {}{}; \
             fix them first, or force the change",
            String::from_utf8_lossy(&namespace.prefix),
            namespace.name,
            shown(&offending),
            if count as usize > offending.len() {
                ", …"
            } else {
                ""
            }
        ))
        .into());
    }
    view.put(
        Cf::Namespaces,
        namespace.name.as_bytes(),
        namespace.encode_to_vec(),
    );
    view.put(
        Cf::NamespacePrefixes,
        &namespace.prefix,
        namespace.name.clone().into_bytes(),
    );
    Ok((
        NamespaceResponse {
            namespace: Some(namespace),
            revision,
            offending_keys: offending,
            offending_count: count,
        },
        created,
    ))
}

/// The namespace whose prefix contains `prefix` or is contained by it.
fn overlapping(reader: &dyn Reader, prefix: &[u8]) -> Result<Option<Namespace>> {
    if let Some(outer) = governing(reader, prefix)? {
        return Ok(Some(outer));
    }
    let mut inner = None;
    reader.scan(
        Cf::NamespacePrefixes,
        prefix,
        prefix_end(prefix).as_deref(),
        &mut |_, name| {
            inner = Some(String::from_utf8_lossy(name).into_owned());
            Ok(false)
        },
    )?;
    match inner {
        Some(name) => get(reader, &name),
        None => Ok(None),
    }
}

/// Deletes a namespace; refused while a live key remains under its prefix.
pub(crate) fn delete(
    view: &mut BatchView<'_>,
    request: &NamespaceDelete,
    revision: i64,
) -> Result<NamespaceResponse> {
    let namespace =
        get(view, &request.name)?.ok_or_else(|| GovernanceError::NotFound(request.name.clone()))?;
    if has_keys(view, &namespace.prefix)? {
        return Err(GovernanceError::Conflict(format!(
            "namespace {} still has keys under {:?}; delete them first",
            namespace.name,
            String::from_utf8_lossy(&namespace.prefix)
        ))
        .into());
    }
    view.delete(Cf::Namespaces, namespace.name.as_bytes());
    view.delete(Cf::NamespacePrefixes, &namespace.prefix);
    Ok(NamespaceResponse {
        namespace: Some(namespace),
        revision,
        offending_keys: Vec::new(),
        offending_count: 0,
    })
}

/// A CRC of every namespace in name order: two members that applied the same log agree.
pub(crate) fn hash(reader: &dyn Reader) -> Result<u32> {
    let mut hasher = crc32fast::Hasher::new();
    reader.scan(Cf::Namespaces, b"", None, &mut |key, value| {
        hasher.update(key);
        hasher.update(value);
        Ok(true)
    })?;
    Ok(hasher.finalize())
}

/// The layers `environment` resolves through, most specific first.
fn layers(namespace: &Namespace, environment: &str) -> Result<Vec<String>> {
    let mut chain = Vec::new();
    let mut at = environment.to_string();
    while !at.is_empty() {
        let Some(declared) = namespace.environments.iter().find(|e| e.name == at) else {
            return Err(StoreError::InvalidArgument(format!(
                "vane: namespace {} has no environment {at} (it has: {})",
                namespace.name,
                namespace
                    .environments
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if chain.contains(&declared.name) || chain.len() > namespace.environments.len() {
            break;
        }
        chain.push(declared.name.clone());
        at = declared.inherits.clone();
    }
    Ok(chain)
}

/// Where environment `layer` of `namespace` keeps `key`.
fn layer_key(namespace: &Namespace, layer: &str, key: &[u8]) -> Vec<u8> {
    let mut full = namespace.prefix.clone();
    full.extend_from_slice(layer.as_bytes());
    full.push(b'/');
    full.extend_from_slice(key);
    full
}

/// The schema's top-level `default`, as JSON text.
fn schema_default(namespace: &Namespace) -> Option<Vec<u8>> {
    let schema: serde_json::Value = serde_json::from_str(&namespace.schema).ok()?;
    schema.get("default").map(|d| d.to_string().into_bytes())
}

/// `key` as seen from `environment`: the most specific layer that has it, else the
/// schema's default.
pub(crate) fn resolve(
    reader: &dyn Reader,
    namespace: &Namespace,
    environment: &str,
    key: &[u8],
) -> Result<Resolved> {
    for layer in layers(namespace, environment)? {
        let full_key = layer_key(namespace, &layer, key);
        if let Some(kv) = get_current(reader, &full_key)? {
            return Ok(Resolved {
                found: true,
                value: kv.value,
                layer,
                full_key,
            });
        }
    }
    Ok(match schema_default(namespace) {
        Some(value) => Resolved {
            found: true,
            value,
            layer: "default".to_string(),
            full_key: Vec::new(),
        },
        None => Resolved::default(),
    })
}

/// The keys whose resolved values differ between environments `from` and `to`, in key
/// order, over every key any layer of either holds.
pub(crate) fn diff_environments(
    reader: &dyn Reader,
    namespace: &Namespace,
    from: &str,
    to: &str,
) -> Result<Vec<EnvironmentDifference>> {
    let mut keys = std::collections::BTreeSet::new();
    let mut all_layers = layers(namespace, from)?;
    all_layers.extend(layers(namespace, to)?);
    for layer in &all_layers {
        let start = layer_key(namespace, layer, b"");
        let end = prefix_end(&start);
        reader.scan(Cf::Kv, &start, end.as_deref(), &mut |full, _| {
            keys.insert(full[start.len()..].to_vec());
            Ok(true)
        })?;
    }
    let mut differences = Vec::new();
    for key in keys {
        let a = resolve(reader, namespace, from, &key)?;
        let b = resolve(reader, namespace, to, &key)?;
        if (a.found, &a.value) != (b.found, &b.value) {
            differences.push(EnvironmentDifference {
                key,
                from: Some(a),
                to: Some(b),
            });
        }
    }
    Ok(differences)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_follow_etcd() {
        assert_eq!(prefix_end(b"/app/"), Some(b"/app0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }

    #[test]
    fn environments_must_be_declared_and_acyclic() {
        let env = |name: &str, inherits: &str| vane_proto::api::Environment {
            name: name.into(),
            inherits: inherits.into(),
        };
        let mut namespace = Namespace {
            name: "app".into(),
            prefix: b"/app/".to_vec(),
            environments: vec![
                env("base", ""),
                env("staging", "base"),
                env("prod", "staging"),
            ],
            ..Default::default()
        };
        assert!(check_policy(&namespace).is_ok());
        namespace.environments.push(env("qa", "nowhere"));
        assert!(check_policy(&namespace).is_err());
        namespace.environments = vec![env("a", "b"), env("b", "a")];
        let error = check_policy(&namespace).unwrap_err().to_string();
        assert!(error.contains("inherits from itself"), "{error}");
    }

    #[test]
    fn names_and_schemas_are_checked() {
        let mut namespace = Namespace {
            name: "bad name".into(),
            prefix: b"/x/".to_vec(),
            ..Default::default()
        };
        assert!(check_policy(&namespace).is_err());
        namespace.name = "ok".into();
        namespace.schema = "{\"type\": 12}".into();
        let error = check_policy(&namespace).unwrap_err().to_string();
        assert!(error.contains("the schema is invalid"), "{error}");
        namespace.schema = "{\"$ref\": \"https://example.com/s.json\"}".into();
        assert!(
            check_policy(&namespace).is_err(),
            "a remote $ref must not resolve"
        );
    }

    #[test]
    fn refusals_name_the_key_the_pointer_and_the_rule() {
        let cache = SchemaCache::default();
        let namespace = Namespace {
            name: "db".into(),
            prefix: b"/db/".to_vec(),
            schema: r#"{"type":"object","properties":{"max_connections":{"type":"integer","maximum":1000}}}"#.into(),
            schema_version: 1,
            ..Default::default()
        };
        let refusal = schema_verdict(
            &cache,
            &namespace,
            b"/db/pool",
            br#"{"max_connections":5000}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            refusal,
            "vane: value of /db/pool is invalid at /max_connections: 5000 is greater than the \
             maximum of 1000 (schema of namespace db)"
        );
        assert!(
            schema_verdict(
                &cache,
                &namespace,
                b"/db/pool",
                br#"{"max_connections":50}"#
            )
            .unwrap()
            .is_none()
        );
        let not_json = schema_verdict(&cache, &namespace, b"/db/pool", b"max=5")
            .unwrap()
            .unwrap();
        assert!(not_json.contains("is not JSON"), "{not_json}");
    }
}
