//! What each verb sends and prints, one file per etcd service (`kv.rs` for get, put, del
//! and compaction; `txn.rs`; `watch.rs`; `lease.rs`; `member.rs`; `endpoint.rs`;
//! `snapshot.rs`; `auth.rs` for auth, user and role) and `local.rs` for the verbs that never contact the cluster. Every
//! verb checks its arguments and output format first, connects second, so a typo never
//! costs a round trip or leaves a change half-reported.

mod auth;
mod endpoint;
mod impact;
mod kv;
mod lease;
mod local;
mod member;
mod ns;
mod snapshot;
mod txn;
mod watch;

use std::io::Write as _;

use vane_client::Client;

use super::cli::{Cli, Command, GlobalArgs};
use super::connect;
use super::exit::{CliError, Exit};
use super::output::{Printer, Report};

/// What every verb gets: the global flags and the printer they configure.
pub struct Context {
    /// `--endpoints`, timeouts, `-w`, `--hex`.
    pub global: GlobalArgs,
    /// The output settings.
    pub printer: Printer,
}

impl Context {
    /// A client for `--endpoints`.
    pub async fn connect(&self) -> Result<Client, CliError> {
        connect::connect(&self.global).await
    }

    /// Prints `report` on stdout in the chosen format.
    pub fn emit(&self, report: &Report<'_>) -> Result<(), CliError> {
        let bytes = self.printer.render(report)?;
        write_stdout(&bytes)
    }
}

/// Writes to stdout and flushes; a closed stdout (`vanectl watch ... | head`) ends the
/// command quietly with the status a shell expects from a process killed by SIGPIPE.
pub fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|error| {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                CliError::quiet(Exit::OutputClosed)
            } else {
                CliError::new(Exit::Io, format!("cannot write to stdout: {error}"))
            }
        })
}

/// Runs the verb `cli` names.
pub async fn run(mut cli: Cli) -> Result<(), CliError> {
    if !matches!(cli.command, Command::Version | Command::Completion(_)) {
        cli.global.credentials =
            auth::credentials(cli.global.user.as_deref(), cli.global.password.as_deref())?;
    }
    let context = Context {
        printer: Printer {
            format: cli.global.write_out,
            hex: cli.global.hex,
        },
        global: cli.global,
    };
    let c = &context;
    match cli.command {
        Command::Get(args) => kv::get(c, args).await,
        Command::Put(args) => kv::put(c, args).await,
        Command::Del(args) => kv::delete(c, args).await,
        Command::Compaction(args) => kv::compaction(c, args).await,
        Command::Txn(args) => txn::txn(c, args).await,
        Command::Watch(args) => watch::watch(c, args).await,
        Command::Lease(command) => lease::lease(c, command).await,
        Command::Member(command) => member::member(c, command).await,
        Command::Endpoint(command) => endpoint::endpoint(c, command).await,
        Command::Snapshot(command) => snapshot::snapshot(c, command).await,
        Command::Auth(command) => auth::auth(c, command).await,
        Command::User(command) => auth::user(c, command).await,
        Command::Role(command) => auth::role(c, command).await,
        Command::Namespace(command) => ns::namespace(c, command).await,
        Command::Schema(command) => ns::schema(c, command).await,
        Command::Change(command) => ns::change(c, command).await,
        Command::Audit(command) => ns::audit(c, command).await,
        Command::History { key } => ns::history(c, key).await,
        Command::Diff { key, from, to } => ns::diff(c, key, from, to).await,
        Command::Resolve {
            namespace,
            key,
            env,
        } => ns::resolve(c, namespace, key, env).await,
        Command::DiffEnv {
            namespace,
            from,
            to,
        } => ns::diff_env(c, namespace, from, to).await,
        Command::Rollback {
            key,
            to,
            description,
        } => ns::rollback(c, key, to, description).await,
        Command::Impact(command) => impact::impact(c, command).await,
        Command::Version => local::version(),
        Command::Completion(args) => local::completion(args),
    }
}

/// Closes the client's exactly-once session after a write, so the cluster forgets it
/// now instead of after its TTL; a failure here changes nothing the user asked for.
async fn close_quietly(client: &Client) {
    let _ = client.close().await;
}
