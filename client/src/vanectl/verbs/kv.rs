//! `get`, `put`, `del` and `compaction`: the KV service.

use std::io::Read as _;

use vane_proto::etcdserverpb::CompactionRequest;

use super::super::cli::{CompactionArgs, DelArgs, GetArgs, PutArgs};
use super::super::exit::{self, CliError, Exit};
use super::super::output::{OutputFormat, Report, ReportKind};
use super::super::requests;
use super::{Context, close_quietly, write_stdout};

/// `get`.
pub async fn get(context: &Context, args: GetArgs) -> Result<(), CliError> {
    if args.print_value_only && context.printer.format != OutputFormat::Simple {
        return Err(CliError::bad_args(
            "print-value-only is only for `--write-out=simple`",
        ));
    }
    context.printer.check_supported(ReportKind::Get)?;
    let request = requests::range_request(&args)?;
    let client = context.connect().await?;
    let response = client.range(request).await.map_err(exit::from_client)?;
    if args.count_only && context.printer.format == OutputFormat::Simple {
        // etcdctl 3.4 has no --count-only; the simple format would print nothing.
        return write_stdout(format!("{}\n", response.count).as_bytes());
    }
    context.emit(&Report::Get {
        response: &response,
        value_only: args.print_value_only,
    })
}

/// `put`; the value comes from stdin when it is not an argument.
pub async fn put(context: &Context, args: PutArgs) -> Result<(), CliError> {
    context.printer.check_supported(ReportKind::Put)?;
    let value = match &args.value {
        Some(value) => requests::bytes_of(value),
        None if args.ignore_value => Vec::new(),
        None => read_value_from_stdin()?,
    };
    let value = if args.yaml {
        super::ns::yaml_to_json(&value)?
    } else {
        value
    };
    let request = requests::put_request(&args, value)?;
    let client = context.connect().await?;
    let result = client.put(request).await;
    close_quietly(&client).await;
    let response = result.map_err(exit::from_client)?;
    context.emit(&Report::Put(&response))
}

fn read_value_from_stdin() -> Result<Vec<u8>, CliError> {
    let needs = "put command needs 1 argument and input from stdin or 2 arguments";
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(CliError::bad_args(needs));
    }
    let mut value = Vec::new();
    std::io::stdin()
        .read_to_end(&mut value)
        .map_err(|e| CliError::new(Exit::Io, format!("cannot read the value from stdin: {e}")))?;
    if value.is_empty() {
        return Err(CliError::bad_args(needs));
    }
    Ok(value)
}

/// `del`.
pub async fn delete(context: &Context, args: DelArgs) -> Result<(), CliError> {
    context.printer.check_supported(ReportKind::Delete)?;
    let request = requests::delete_request(&args)?;
    let client = context.connect().await?;
    let result = client.delete_range(request).await;
    close_quietly(&client).await;
    let response = result.map_err(exit::from_client)?;
    context.emit(&Report::Delete(&response))
}

/// `compaction`.
pub async fn compaction(context: &Context, args: CompactionArgs) -> Result<(), CliError> {
    let client = context.connect().await?;
    let result = client
        .compact(CompactionRequest {
            revision: args.revision,
            physical: args.physical,
        })
        .await;
    close_quietly(&client).await;
    result.map_err(|error| match error {
        vane_client::Error::Compacted { message, .. } => CliError::failed(format!(
            "{message}; the cluster is already compacted past revision {}",
            args.revision
        )),
        other => exit::from_client(other),
    })?;
    context.emit(&Report::Compaction {
        revision: args.revision,
    })
}
