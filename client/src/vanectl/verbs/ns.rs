//! `ns create|update|get|list|delete`, `schema validate`, `cr ...` (change requests),
//! `audit list|verify`, `history`, `diff` and `rollback`: Vane's configuration API.

use std::ffi::OsString;
use std::io::Read as _;

use vane_client::ChangeDecision;
use vane_proto::api::change_request::State as ChangeState;
use vane_proto::api::{ApprovalPolicy, ChangeOp, Environment, ListAuditRequest, Namespace};

use super::super::cli::{
    AuditCommand, ChangeCommand, ChangeStateArg, NamespaceCommand, NamespacePolicyArgs,
    SchemaCommand,
};
use super::super::exit::{self, CliError, Exit};
use super::super::output::{Report, ReportKind};
use super::{Context, write_stdout};

/// `ns ...`.
pub async fn namespace(context: &Context, command: NamespaceCommand) -> Result<(), CliError> {
    match command {
        NamespaceCommand::Create {
            name,
            prefix,
            policy,
        } => {
            context.printer.check_supported(ReportKind::Namespace)?;
            let mut namespace = Namespace {
                name,
                prefix: prefix.into_bytes(),
                ..Default::default()
            };
            apply_policy(&mut namespace, &policy, false)?;
            let client = context.connect().await?;
            let response = client
                .create_namespace(namespace)
                .await
                .map_err(exit::from_client)?;
            context.emit(&Report::Namespace {
                done: Some("created"),
                response: &response,
            })
        }
        NamespaceCommand::Update {
            name,
            policy,
            no_schema,
            force,
        } => {
            context.printer.check_supported(ReportKind::Namespace)?;
            let client = context.connect().await?;
            let current = client
                .get_namespace(&name)
                .await
                .map_err(exit::from_client)?;
            let mut namespace = current.namespace.unwrap_or_default();
            apply_policy(&mut namespace, &policy, no_schema)?;
            let response = client
                .update_namespace(namespace, force)
                .await
                .map_err(exit::from_client)?;
            context.emit(&Report::Namespace {
                done: Some("updated"),
                response: &response,
            })
        }
        NamespaceCommand::Get { name, schema } => {
            context.printer.check_supported(ReportKind::Namespace)?;
            let client = context.connect().await?;
            let response = client
                .get_namespace(&name)
                .await
                .map_err(exit::from_client)?;
            if schema {
                let text = response.namespace.map(|n| n.schema).unwrap_or_default();
                return write_stdout(format!("{text}\n").as_bytes());
            }
            context.emit(&Report::Namespace {
                done: None,
                response: &response,
            })
        }
        NamespaceCommand::List => {
            context.printer.check_supported(ReportKind::NamespaceList)?;
            let client = context.connect().await?;
            let response = client.list_namespaces().await.map_err(exit::from_client)?;
            context.emit(&Report::NamespaceList(&response))
        }
        NamespaceCommand::Delete { name } => {
            context.printer.check_supported(ReportKind::Namespace)?;
            let client = context.connect().await?;
            let response = client
                .delete_namespace(&name)
                .await
                .map_err(exit::from_client)?;
            context.emit(&Report::Namespace {
                done: Some("deleted"),
                response: &response,
            })
        }
    }
}

/// `schema validate`: exits 1 when the value would be refused.
pub async fn schema(context: &Context, command: SchemaCommand) -> Result<(), CliError> {
    match command {
        SchemaCommand::Validate { key, value, yaml } => {
            context.printer.check_supported(ReportKind::Validated)?;
            let key = key.into_encoded_bytes();
            let value = value_argument(value, yaml)?;
            let client = context.connect().await?;
            let response = client
                .validate_value(key.clone(), value)
                .await
                .map_err(exit::from_client)?;
            context.emit(&Report::Validated {
                key: &key,
                response: &response,
            })?;
            if response.valid {
                Ok(())
            } else {
                Err(CliError::quiet(Exit::Error))
            }
        }
    }
}

/// A value given as an argument, else read from stdin; with `yaml`, YAML turned into the
/// JSON it stands for (values under a namespace are JSON; YAML is how people like to
/// write them).
pub(super) fn value_argument(value: Option<OsString>, yaml: bool) -> Result<Vec<u8>, CliError> {
    let bytes = match value {
        Some(value) => value.into_encoded_bytes(),
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| CliError::new(Exit::Io, format!("cannot read stdin: {e}")))?;
            bytes
        }
    };
    if yaml {
        yaml_to_json(&bytes)
    } else {
        Ok(bytes)
    }
}

/// The compact JSON a YAML document stands for.
pub(super) fn yaml_to_json(yaml: &[u8]) -> Result<Vec<u8>, CliError> {
    let value: serde_json::Value = yaml_serde::from_slice(yaml)
        .map_err(|e| CliError::bad_args(format!("the value is not YAML: {e}")))?;
    serde_json::to_vec(&value)
        .map_err(|e| CliError::bad_args(format!("the YAML value has no JSON form: {e}")))
}

/// Sets what the flags name on `namespace`, keeping the rest (for `update`).
fn apply_policy(
    namespace: &mut Namespace,
    policy: &NamespacePolicyArgs,
    no_schema: bool,
) -> Result<(), CliError> {
    if let Some(path) = &policy.schema {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::new(
                Exit::Io,
                format!("cannot read schema {}: {e}", path.display()),
            )
        })?;
        let yaml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
        let text = if yaml {
            // A schema written in YAML is stored as the JSON it stands for.
            let json = yaml_to_json(text.as_bytes()).map_err(|e| {
                CliError::new(
                    Exit::InvalidInput,
                    format!(
                        "schema {}: {}",
                        path.display(),
                        e.message.unwrap_or_default()
                    ),
                )
            })?;
            String::from_utf8_lossy(&json).into_owned()
        } else {
            // Check it is JSON here, so a typo is named with its line before any round trip.
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
                CliError::new(
                    Exit::InvalidInput,
                    format!("schema {} is not JSON: {e}", path.display()),
                )
            })?;
            text
        };
        namespace.schema = text;
    }
    if no_schema {
        namespace.schema.clear();
    }
    let approval = namespace
        .approval
        .get_or_insert_with(ApprovalPolicy::default);
    if let Some(approvals) = policy.approvals {
        approval.approvals_required = approvals;
    }
    if !policy.approver_roles.is_empty() {
        approval.approver_roles = policy.approver_roles.clone();
    }
    if let Some(allow) = policy.allow_self_approval {
        approval.allow_self_approval = allow;
    }
    if let Some(role) = &policy.break_glass_role {
        approval.break_glass_role = role.clone();
    }
    if !policy.environments.is_empty() {
        namespace.environments = policy
            .environments
            .iter()
            .map(|spec| {
                let (name, inherits) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
                Environment {
                    name: name.to_string(),
                    inherits: inherits.to_string(),
                }
            })
            .collect();
    }
    if !policy.owners.is_empty() {
        namespace.owners = policy.owners.clone();
    }
    if let Some(description) = &policy.description {
        namespace.description = description.clone();
    }
    if let Some(sensitive) = policy.sensitive {
        namespace.sensitive = sensitive;
    }
    Ok(())
}

/// `cr ...`.
pub async fn change(context: &Context, command: ChangeCommand) -> Result<(), CliError> {
    let decision = |id: u64, decision: ChangeDecision, reason: String| (id, decision, reason);
    let (id, decision, reason) = match command {
        ChangeCommand::Create {
            namespace,
            puts,
            deletes,
            yaml,
            description,
            apply_in,
        } => {
            context.printer.check_supported(ReportKind::Change)?;
            let mut ops = Vec::with_capacity(puts.len() + deletes.len());
            for put in &puts {
                let Some((key, value)) = put.split_once('=') else {
                    return Err(CliError::bad_args(format!("--put {put:?}: give KEY=VALUE")));
                };
                let value = if yaml {
                    yaml_to_json(value.as_bytes())?
                } else {
                    value.as_bytes().to_vec()
                };
                ops.push(ChangeOp {
                    key: key.as_bytes().to_vec(),
                    value,
                    ..Default::default()
                });
            }
            for key in &deletes {
                ops.push(ChangeOp {
                    key: key.as_bytes().to_vec(),
                    delete: true,
                    ..Default::default()
                });
            }
            if ops.is_empty() {
                return Err(CliError::bad_args(
                    "a change request needs at least one --put or --delete",
                ));
            }
            let client = context.connect().await?;
            let apply_at_ms = match apply_in {
                None => 0,
                Some(delay) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                    i64::try_from((now + delay).as_millis()).unwrap_or(i64::MAX)
                }
            };
            let response = client
                .create_change_at(&namespace, &description, ops, apply_at_ms)
                .await
                .map_err(exit::from_client)?;
            return context.emit(&Report::Change {
                response: &response,
                detail: false,
            });
        }
        ChangeCommand::Get { id } => {
            context.printer.check_supported(ReportKind::Change)?;
            let client = context.connect().await?;
            let response = client.get_change(id).await.map_err(exit::from_client)?;
            return context.emit(&Report::Change {
                response: &response,
                detail: true,
            });
        }
        ChangeCommand::List { namespace, state } => {
            context.printer.check_supported(ReportKind::ChangeList)?;
            let state = state.map(|s| match s {
                ChangeStateArg::Open => ChangeState::Open,
                ChangeStateArg::Applied => ChangeState::Applied,
                ChangeStateArg::Rejected => ChangeState::Rejected,
                ChangeStateArg::Cancelled => ChangeState::Cancelled,
                ChangeStateArg::Conflicted => ChangeState::Conflicted,
                ChangeStateArg::Approved => ChangeState::Approved,
            });
            let client = context.connect().await?;
            let response = client
                .list_changes(namespace.as_deref().unwrap_or_default(), state)
                .await
                .map_err(exit::from_client)?;
            return context.emit(&Report::ChangeList(&response));
        }
        ChangeCommand::Approve { id } => decision(id, ChangeDecision::Approve, String::new()),
        ChangeCommand::Reject { id, reason } => decision(id, ChangeDecision::Reject, reason),
        ChangeCommand::Cancel { id } => decision(id, ChangeDecision::Cancel, String::new()),
        ChangeCommand::Rebase { id } => decision(id, ChangeDecision::Rebase, String::new()),
        ChangeCommand::BreakGlass { id, reason } => {
            decision(id, ChangeDecision::BreakGlass, reason)
        }
    };
    context.printer.check_supported(ReportKind::Change)?;
    let client = context.connect().await?;
    let response = client
        .decide_change(id, decision, &reason)
        .await
        .map_err(exit::from_client)?;
    context.emit(&Report::Change {
        response: &response,
        detail: false,
    })
}

/// `audit list|verify`.
pub async fn audit(context: &Context, command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::List {
            namespace,
            key,
            prefix,
            principal,
            since_ms,
            until_ms,
            limit,
        } => {
            context.printer.check_supported(ReportKind::AuditList)?;
            let client = context.connect().await?;
            let filter = ListAuditRequest {
                namespace: namespace.unwrap_or_default(),
                key: key.unwrap_or_default().into_bytes(),
                prefix,
                principal: principal.unwrap_or_default(),
                from_ms: since_ms.unwrap_or_default(),
                to_ms: until_ms.unwrap_or_default(),
                limit,
            };
            let response = client.list_audit(filter).await.map_err(exit::from_client)?;
            context.emit(&Report::AuditList(&response))
        }
        AuditCommand::Verify => {
            context.printer.check_supported(ReportKind::AuditVerified)?;
            let client = context.connect().await?;
            let verdict = client.verify_audit().await.map_err(exit::from_client)?;
            context.emit(&Report::AuditVerified(&verdict))?;
            if verdict.intact {
                Ok(())
            } else {
                Err(CliError::quiet(Exit::Error))
            }
        }
    }
}

/// `history KEY`: the key's audit records.
pub async fn history(context: &Context, key: String) -> Result<(), CliError> {
    context.printer.check_supported(ReportKind::AuditList)?;
    let client = context.connect().await?;
    let filter = ListAuditRequest {
        key: key.into_bytes(),
        ..Default::default()
    };
    let response = client.list_audit(filter).await.map_err(exit::from_client)?;
    context.emit(&Report::AuditList(&response))
}

/// `diff KEY FROM TO`: what changed in the key's JSON value between two revisions, one
/// `-`, `+` or `~` line per JSON pointer.
pub async fn diff(context: &Context, key: String, from: i64, to: i64) -> Result<(), CliError> {
    let client = context.connect().await?;
    let filter = ListAuditRequest {
        key: key.clone().into_bytes(),
        ..Default::default()
    };
    let records = client
        .list_audit(filter)
        .await
        .map_err(exit::from_client)?
        .records;
    let value_at = |revision: i64| -> Result<Option<serde_json::Value>, CliError> {
        let Some(record) = records.iter().rev().find(|r| r.revision <= revision) else {
            return Ok(None);
        };
        if record.redacted {
            return Err(CliError::failed(format!(
                "{key} is in a sensitive namespace: its values are not kept in the audit"
            )));
        }
        if record.deleted {
            return Ok(None);
        }
        serde_json::from_slice(&record.after)
            .map(Some)
            .map_err(|e| {
                CliError::failed(format!(
                    "{key} at revision {}: not JSON ({e})",
                    record.revision
                ))
            })
    };
    let (old, new) = (value_at(from)?, value_at(to)?);
    let mut lines = Vec::new();
    json_diff("", old.as_ref(), new.as_ref(), &mut lines);
    let mut out = String::new();
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    write_stdout(out.as_bytes())
}

/// The differences between two JSON values, by JSON pointer.
fn json_diff(
    at: &str,
    old: Option<&serde_json::Value>,
    new: Option<&serde_json::Value>,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    let shown = if at.is_empty() { "/" } else { at };
    match (old, new) {
        (None, None) => {}
        (None, Some(added)) => out.push(format!("+ {shown}: {added}")),
        (Some(removed), None) => out.push(format!("- {shown}: {removed}")),
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let child = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                json_diff(&child, a.get(k), b.get(k), out);
            }
        }
        (Some(a), Some(b)) if a != b => out.push(format!("~ {shown}: {a} -> {b}")),
        _ => {}
    }
}

/// How a resolved value reads on one line: the value and the layer that answered.
fn resolved_text(resolved: Option<&vane_proto::api::Resolved>) -> String {
    match resolved {
        Some(r) if r.found => format!("{} (from {})", String::from_utf8_lossy(&r.value), r.layer),
        _ => "(unset)".to_string(),
    }
}

/// `resolve NS KEY --env E`: the value on the first line, the layer on the second; exit 1
/// when no layer and no default has it.
pub async fn resolve(
    context: &Context,
    namespace: String,
    key: String,
    env: String,
) -> Result<(), CliError> {
    let client = context.connect().await?;
    let response = client
        .resolve(&namespace, &env, key.as_bytes())
        .await
        .map_err(exit::from_client)?;
    let resolved = response.resolved.unwrap_or_default();
    if !resolved.found {
        return Err(CliError::failed(format!(
            "{key} is set in no layer of environment {env} and the schema has no default"
        )));
    }
    let mut out = resolved.value.clone();
    out.extend_from_slice(format!("\nlayer: {}\n", resolved.layer).as_bytes());
    write_stdout(&out)
}

/// `diff-env NS A B`: one line per key whose resolved values differ.
pub async fn diff_env(
    context: &Context,
    namespace: String,
    from: String,
    to: String,
) -> Result<(), CliError> {
    let client = context.connect().await?;
    let response = client
        .diff_environments(&namespace, &from, &to)
        .await
        .map_err(exit::from_client)?;
    let mut out = String::new();
    for d in &response.differences {
        out.push_str(&format!(
            "{}: {from}={} {to}={}\n",
            String::from_utf8_lossy(&d.key),
            resolved_text(d.from.as_ref()),
            resolved_text(d.to.as_ref()),
        ));
    }
    write_stdout(out.as_bytes())
}

/// `rollback KEY --to REV`.
pub async fn rollback(
    context: &Context,
    key: String,
    to: i64,
    description: String,
) -> Result<(), CliError> {
    context.printer.check_supported(ReportKind::Change)?;
    let client = context.connect().await?;
    let description = if description.is_empty() {
        format!("rollback of {key} to revision {to}")
    } else {
        description
    };
    let response = client
        .rollback(key.as_bytes(), to, &description)
        .await
        .map_err(exit::from_client)?;
    context.emit(&Report::Change {
        response: &response,
        detail: false,
    })
}

#[cfg(test)]
mod tests {
    use super::json_diff;

    #[test]
    fn json_diffs_name_each_changed_pointer() {
        let old = serde_json::json!({"a": 1, "b": {"c": "x", "d": true}, "gone": 0});
        let new = serde_json::json!({"a": 2, "b": {"c": "x", "e/f": null}});
        let mut lines = Vec::new();
        json_diff("", Some(&old), Some(&new), &mut lines);
        assert_eq!(
            lines,
            [
                "~ /a: 1 -> 2",
                "- /b/d: true",
                "+ /b/e~1f: null",
                "- /gone: 0"
            ]
        );
    }
}
