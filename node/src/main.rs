//! `vaned`: a Vane cluster member.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    vane_node::entry::main_with(std::env::args_os().collect()).await
}
