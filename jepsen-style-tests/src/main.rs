//! `vane-jepsen`: parses the command line and hands off to the library (`cli.rs`).

use std::process::ExitCode;

use clap::Parser;
use vane_jepsen::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    Cli::parse().execute().await
}
