//! `vaned-planted`: `vaned` with one deliberate bug switched on by `--planted-bug NAME`
//! (`stale-reads` or `ack-before-fsync`), for the jepsen-style suite's proof that its
//! checkers catch violations. Built only with `--features planted-bugs`; never shipped.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::ValueEnum;
use vane_node::planted::{PlantedBug, enable};

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let Some(at) = args.iter().position(|a| a == "--planted-bug") else {
        eprintln!("vaned-planted: --planted-bug stale-reads|ack-before-fsync is required");
        return ExitCode::from(2);
    };
    let name = args.get(at + 1).and_then(|n| n.to_str()).unwrap_or("");
    let Ok(bug) = PlantedBug::from_str(name, true) else {
        eprintln!("vaned-planted: unknown bug {name:?}; expected stale-reads or ack-before-fsync");
        return ExitCode::from(2);
    };
    args.drain(at..(at + 2).min(args.len()));
    enable(bug);
    vane_node::entry::run(args)
}
