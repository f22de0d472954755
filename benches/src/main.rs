//! `vane-bench`: parses the command line and hands off to [`vane_bench::cli::execute`].

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = vane_bench::cli::Cli::parse();
    match vane_bench::cli::execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vane-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
