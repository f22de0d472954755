//! `vanectl`: etcdctl 3.4's verbs, flags, output formats and exit codes, so scripts
//! written for etcdctl keep working, on top of `vane-client`'s failover and
//! exactly-once writes.
//!
//! Which file owns what: `cli.rs` the command tree (flags, help, examples); `verbs/`
//! what each verb sends and prints; `requests.rs` flags to etcd requests; `output/` the
//! output formats, one file each; `txn_script.rs` etcdctl's transaction language;
//! `connect.rs` the client and the "cannot reach" diagnosis; `exit.rs` error lines and
//! exit codes; `go_text.rs` the Go formatting etcdctl's output is made of.

mod cli;
mod connect;
mod exit;
mod go_text;
mod output;
mod requests;
mod txn_script;
mod verbs;

use std::process::ExitCode;

/// Parses the command line, runs the verb, prints at most one `Error:` line and returns
/// etcdctl's exit code.
pub fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("Error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(verbs::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error.report();
            error.exit_code()
        }
    }
}
