//! `lease grant|revoke|timetolive|list|keep-alive`: the Lease service.

use super::super::cli::LeaseCommand;
use super::super::exit::{self, CliError, Exit};
use super::super::output::{OutputFormat, Report, ReportKind};
use super::{Context, close_quietly, write_stdout};

/// `lease ...`.
pub async fn lease(context: &Context, command: LeaseCommand) -> Result<(), CliError> {
    match command {
        LeaseCommand::Grant { ttl } => {
            context.printer.check_supported(ReportKind::LeaseGrant)?;
            let client = context.connect().await?;
            let result = client.lease_grant(ttl, 0).await;
            close_quietly(&client).await;
            let response = result.map_err(|e| prefixed("failed to grant lease", e))?;
            context.emit(&Report::LeaseGrant(&response))
        }
        LeaseCommand::Revoke { id } => {
            context.printer.check_supported(ReportKind::LeaseRevoke)?;
            let client = context.connect().await?;
            let result = client.lease_revoke(id).await;
            close_quietly(&client).await;
            let response = result.map_err(|e| prefixed("failed to revoke lease", e))?;
            context.emit(&Report::LeaseRevoke {
                id,
                response: &response,
            })
        }
        LeaseCommand::Timetolive { id, keys } => {
            context
                .printer
                .check_supported(ReportKind::LeaseTimeToLive)?;
            let client = context.connect().await?;
            let response = client
                .lease_time_to_live(id, keys)
                .await
                .map_err(exit::from_client)?;
            context.emit(&Report::LeaseTimeToLive {
                response: &response,
                keys,
            })
        }
        LeaseCommand::List => {
            context.printer.check_supported(ReportKind::LeaseList)?;
            let client = context.connect().await?;
            let response = client.lease_leases().await.map_err(exit::from_client)?;
            context.emit(&Report::LeaseList(&response))
        }
        LeaseCommand::KeepAlive { id, once: true } => {
            context
                .printer
                .check_supported(ReportKind::LeaseKeepAlive)?;
            let client = context.connect().await?;
            let response = client.lease_keep_alive_once(id).await.map_err(|e| {
                // etcdctl's code for a failed single keep-alive.
                CliError::new(Exit::BadConnection, exit::from_client(e).to_string())
            })?;
            context.emit(&Report::LeaseKeepAlive(&response))
        }
        LeaseCommand::KeepAlive { id, once: false } => {
            context
                .printer
                .check_supported(ReportKind::LeaseKeepAlive)?;
            let client = context.connect().await?;
            let mut keeper = client.lease_keeper(id);
            while let Some(answer) = keeper.next().await {
                match answer {
                    Ok(response) => context.emit(&Report::LeaseKeepAlive(&response))?,
                    Err(vane_client::Error::NotFound { .. }) => break,
                    // The keeper goes on trying other members; say so once per outage.
                    Err(error) => eprintln!("vanectl: {error}"),
                }
            }
            if context.printer.format == OutputFormat::Simple {
                write_stdout(format!("lease {id:016x} expired or revoked.\n").as_bytes())?;
            }
            Ok(())
        }
    }
}

/// etcdctl's wording for lease failures: `failed to revoke lease (<server message>)`.
fn prefixed(what: &str, error: vane_client::Error) -> CliError {
    let inner = exit::from_client(error);
    CliError::new(inner.exit, format!("{what} ({inner})"))
}
