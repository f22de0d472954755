//! `impact`: what a put, a delete or a change request would do, before it is made.

use vane_proto::api::ProposedWrite;

use super::super::cli::{DelArgs, ImpactCommand};
use super::super::exit::{self, CliError, Exit};
use super::super::output::{Report, ReportKind};
use super::super::requests;
use super::Context;
use super::ns::value_argument;

/// `impact put|del|cr`: prints the preview; exits 1 when any operation would be refused.
pub async fn impact(context: &Context, command: ImpactCommand) -> Result<(), CliError> {
    context.printer.check_supported(ReportKind::Impact)?;
    let response = match command {
        ImpactCommand::Put {
            key,
            value,
            yaml,
            limit,
        } => {
            let write = ProposedWrite {
                key: key.into_encoded_bytes(),
                value: value_argument(value, yaml)?,
                ..Default::default()
            };
            let client = context.connect().await?;
            client.writes_impact(vec![write], limit).await
        }
        ImpactCommand::Del {
            key,
            range_end,
            prefix,
            from_key,
            limit,
        } => {
            let request = requests::delete_request(&DelArgs {
                key,
                range_end,
                prefix,
                prev_kv: false,
                from_key,
            })?;
            let write = ProposedWrite {
                key: request.key,
                range_end: request.range_end,
                delete: true,
                ..Default::default()
            };
            let client = context.connect().await?;
            client.writes_impact(vec![write], limit).await
        }
        ImpactCommand::Cr { id, limit } => {
            let client = context.connect().await?;
            client.change_impact(id, limit).await
        }
    }
    .map_err(exit::from_client)?;
    context.emit(&Report::Impact(&response))?;
    if response.accepted {
        Ok(())
    } else {
        Err(CliError::quiet(Exit::Error))
    }
}
