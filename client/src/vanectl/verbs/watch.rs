//! `watch`: prints events as they happen (resuming on another member when one fails,
//! through the client's [`vane_client::Watcher`]), optionally runs a command per event
//! with etcdctl's `ETCD_WATCH_*` variables, and in `-i` mode reads `watch ...` lines
//! from stdin.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;
use std::sync::Arc;

use clap::Parser;
use tokio::io::AsyncBufReadExt as _;
use vane_client::Client;
use vane_proto::etcdserverpb::{WatchCreateRequest, WatchResponse};
use vane_proto::mvccpb::event::EventType;

use super::super::cli::{WatchArgs, one_line};
use super::super::exit::{self, CliError, Exit};
use super::super::go_text::quote;
use super::super::output::{Printer, Report, ReportKind};
use super::super::requests;
use super::super::txn_script::split_words;
use super::{Context, write_stdout};

/// `watch`.
pub async fn watch(context: &Context, args: WatchArgs) -> Result<(), CliError> {
    context.printer.check_supported(ReportKind::Watch)?;
    if args.interactive {
        if args.key.is_some() || !args.exec.is_empty() {
            return Err(CliError::bad_args(
                "watch -i reads its watches from stdin: give no key or command",
            ));
        }
        let client = context.connect().await?;
        return interactive(client, context.printer).await;
    }
    let request = create_request(&args)?;
    let client = context.connect().await?;
    run_watch(&client, context.printer, request, &args).await
}

/// The Watch request of `args`.
fn create_request(args: &WatchArgs) -> Result<WatchCreateRequest, CliError> {
    let key = args.key.as_deref().ok_or_else(|| {
        CliError::bad_args("watch needs a key or prefix (or -i to read watches from stdin)")
    })?;
    let (key, range_end) = requests::watch_range(key, args.range_end.as_deref(), args.prefix)?;
    Ok(WatchCreateRequest {
        key,
        range_end,
        start_revision: args.rev,
        progress_notify: args.progress_notify,
        prev_kv: args.prev_kv,
        ..Default::default()
    })
}

/// Prints one watch until it ends, fails or has printed `--max-events` events.
async fn run_watch(
    client: &Client,
    printer: Printer,
    request: WatchCreateRequest,
    args: &WatchArgs,
) -> Result<(), CliError> {
    let start_revision = request.start_revision;
    let mut watcher = client.watch(request).await.map_err(exit::from_client)?;
    let mut events_left = (args.max_events > 0).then_some(args.max_events);
    let mut resuming = false;
    loop {
        let response = match watcher.next().await {
            Some(Ok(response)) => response,
            Some(Err(vane_client::Error::Compacted {
                compact_revision, ..
            })) => {
                return Err(CliError::new(
                    Exit::Interrupted,
                    format!(
                        "watch canceled: revision {start_revision} has been compacted (the \
                         oldest revision kept is {compact_revision}); watch again with --rev \
                         {compact_revision} or later"
                    ),
                ));
            }
            Some(Err(error @ vane_client::Error::Unavailable { .. })) => {
                // Not final: the watcher keeps trying other members from where it was.
                if !resuming {
                    eprintln!("vanectl: watch interrupted ({error}); resuming");
                    resuming = true;
                }
                continue;
            }
            Some(Err(error)) => return Err(exit::from_client(error)),
            None => {
                return Err(CliError::new(
                    Exit::Interrupted,
                    "watch is canceled by the server",
                ));
            }
        };
        resuming = false;
        let mut response = response;
        if response.events.is_empty() {
            if args.progress_notify && !response.created && !response.canceled {
                let revision = response.header.as_ref().map_or(0, |h| h.revision);
                write_stdout(format!("progress notify: {revision}\n").as_bytes())?;
            }
            continue;
        }
        if let Some(left) = events_left {
            response
                .events
                .truncate(usize::try_from(left).unwrap_or(usize::MAX));
        }
        let printed = printer.render(&Report::Watch(&response))?;
        write_stdout(&printed)?;
        run_command(&args.exec, &response).await?;
        if let Some(left) = events_left.as_mut() {
            *left = left.saturating_sub(response.events.len() as u64);
            if *left == 0 {
                watcher.cancel().await;
                return Ok(());
            }
        }
    }
}

/// Runs `exec` once per event of `response`, with etcdctl's variables (values Go-quoted,
/// as etcdctl sets them).
async fn run_command(exec: &[OsString], response: &WatchResponse) -> Result<(), CliError> {
    let Some((program, arguments)) = exec.split_first() else {
        return Ok(());
    };
    let revision = response.header.as_ref().map_or(0, |h| h.revision);
    for event in &response.events {
        let kind = EventType::try_from(event.r#type).unwrap_or(EventType::Put);
        let kv = event.kv.clone().unwrap_or_default();
        let status = tokio::process::Command::new(program)
            .args(arguments)
            .env("ETCD_WATCH_REVISION", revision.to_string())
            .env(
                "ETCD_WATCH_EVENT_TYPE",
                quote(kind.as_str_name().as_bytes()),
            )
            .env("ETCD_WATCH_KEY", quote(&kv.key))
            .env("ETCD_WATCH_VALUE", quote(&kv.value))
            .status()
            .await
            .map_err(|e| {
                CliError::failed(format!("cannot run {}: {e}", program.to_string_lossy()))
            })?;
        if !status.success() {
            let shown: Vec<String> = exec
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            return Err(CliError::failed(format!(
                "command {shown:?} failed ({status}); the watch stops"
            )));
        }
    }
    Ok(())
}

/// A `watch ...` line of interactive mode.
#[derive(Debug, Parser)]
#[command(no_binary_name = true, name = "watch")]
struct InteractiveLine {
    #[command(flatten)]
    args: WatchArgs,
}

/// `watch -i`: every `watch [options] <key> [range_end] [-- command]` line read from
/// stdin starts a watch printing beside the others; the watches go on after stdin ends.
async fn interactive(client: Client, printer: Printer) -> Result<(), CliError> {
    let client = Arc::new(client);
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut watches: tokio::task::JoinSet<Result<(), CliError>> = tokio::task::JoinSet::new();
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            Some(finished) = watches.join_next() => {
                if let Ok(Err(error)) = finished {
                    error.report();
                }
                continue;
            }
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                return Err(CliError::new(
                    Exit::InvalidInput,
                    format!("cannot read a watch request from stdin: {e}"),
                ));
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match parse_interactive_line(&line) {
            Ok((request, args)) => {
                let client = client.clone();
                watches.spawn(async move { run_watch(&client, printer, request, &args).await });
            }
            Err(error) => eprintln!("Invalid command {line:?} ({error})"),
        }
    }
    while let Some(finished) = watches.join_next().await {
        if let Ok(Err(error)) = finished {
            error.report();
        }
    }
    Ok(())
}

fn parse_interactive_line(line: &str) -> Result<(WatchCreateRequest, WatchArgs), String> {
    let words = split_words(line)?;
    let (first, rest) = words.split_first().ok_or("empty line")?;
    if first.as_slice() != b"watch" {
        return Err("only `watch [options] <key or prefix> [range_end]` is understood".into());
    }
    let rest: Vec<OsString> = rest.iter().cloned().map(OsString::from_vec).collect();
    let parsed = InteractiveLine::try_parse_from(rest).map_err(|e| one_line(&e))?;
    if parsed.args.interactive {
        return Err("-i is not allowed inside interactive mode".into());
    }
    let request = create_request(&parsed.args).map_err(|e| e.to_string())?;
    Ok((request, parsed.args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interactive_lines_parse_like_the_verb() {
        let (request, args) =
            parse_interactive_line("watch /app --prefix --rev=4 --prev-kv -- echo hi").unwrap();
        assert_eq!(request.key, b"/app");
        assert_eq!(request.range_end, b"/apq");
        assert_eq!(request.start_revision, 4);
        assert!(request.prev_kv);
        assert_eq!(args.exec.len(), 2);
        assert!(parse_interactive_line("get foo").is_err());
        assert!(parse_interactive_line("watch").is_err());
    }
}
