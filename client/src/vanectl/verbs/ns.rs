//! `ns create|update|get|list|delete` and `schema validate`: Vane's configuration API.

use std::io::Read as _;

use vane_proto::api::{ApprovalPolicy, Environment, Namespace};

use super::super::cli::{NamespaceCommand, NamespacePolicyArgs, SchemaCommand};
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
        SchemaCommand::Validate { key, value } => {
            context.printer.check_supported(ReportKind::Validated)?;
            let key = key.into_encoded_bytes();
            let value = match value {
                Some(value) => value.into_encoded_bytes(),
                None => {
                    let mut bytes = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut bytes)
                        .map_err(|e| CliError::new(Exit::Io, format!("cannot read stdin: {e}")))?;
                    bytes
                }
            };
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
        // Check it is JSON here, so a typo is named with its line before any round trip.
        serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
            CliError::new(
                Exit::InvalidInput,
                format!("schema {} is not JSON: {e}", path.display()),
            )
        })?;
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
