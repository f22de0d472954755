//! `vane-cluster`: parse the command line, run the command, turn an error into one line
//! on stderr and a non-zero exit status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vane-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}
