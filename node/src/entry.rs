//! The `vaned` process: parse the configuration, set up logging, run the member. Shared
//! by `vaned` and the test-only `vaned-planted`.

use std::ffi::OsString;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use crate::config::Config;

/// Runs `vaned` with `args` (the program name first) until it is told to stop.
pub async fn main_with(args: Vec<OsString>) -> ExitCode {
    let config = match Config::load_from(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("vaned: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match crate::server::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vaned: {e}");
            ExitCode::FAILURE
        }
    }
}
