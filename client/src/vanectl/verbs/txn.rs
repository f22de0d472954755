//! `txn`: a transaction read from stdin, a file, or typed at prompts (`-i`).

use std::io::BufRead as _;

use vane_proto::etcdserverpb::TxnRequest;

use super::super::cli::TxnArgs;
use super::super::exit::{self, CliError, Exit};
use super::super::output::{Report, ReportKind};
use super::super::txn_script::{self, Section, TxnParser};
use super::{Context, close_quietly, write_stdout};

/// `txn`.
pub async fn txn(context: &Context, args: TxnArgs) -> Result<(), CliError> {
    context.printer.check_supported(ReportKind::Txn)?;
    let request = if args.interactive {
        read_interactively()?
    } else if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::new(Exit::Io, format!("cannot read {}: {e}", path.display())))?;
        txn_script::parse(&text)?
    } else {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| {
            CliError::new(
                Exit::InvalidInput,
                format!("cannot read the txn from stdin: {e}"),
            )
        })?;
        txn_script::parse(&text)?
    };
    let client = context.connect().await?;
    let result = client.txn(request).await;
    close_quietly(&client).await;
    let response = result.map_err(exit::from_client)?;
    context.emit(&Report::Txn(&response))
}

/// Prompts for each section as etcdctl does and stops reading at the blank line that
/// ends the failure requests (or at the end of input).
fn read_interactively() -> Result<TxnRequest, CliError> {
    let mut parser = TxnParser::default();
    let mut prompted = None;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        let section = parser.section();
        if section == Section::Done {
            break;
        }
        if prompted != Some(section) {
            if let Some(prompt) = section.prompt() {
                write_stdout(format!("{prompt}\n").as_bytes())?;
            }
            prompted = Some(section);
        }
        match lines.next() {
            Some(Ok(line)) => parser.feed(&line)?,
            Some(Err(e)) => {
                return Err(CliError::new(
                    Exit::InvalidInput,
                    format!("cannot read the txn from stdin: {e}"),
                ));
            }
            None => break,
        }
    }
    Ok(parser.finish()?)
}
