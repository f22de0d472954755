//! `vaned-planted`: `vaned` with deliberate bugs switched on by `--planted-bug NAME[,NAME…]`
//! or, when the flag is absent, by `VANED_PLANTED_BUG` (for launchers that pass their own
//! arguments, such as `vane-bench compare`). The jepsen-style suite uses it to prove that
//! its checkers catch violations, the benchmarks to measure floors. Built only with
//! `--features planted-bugs`; never shipped.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::ValueEnum;
use vane_node::planted::{PlantedBug, enable};

/// The allocator `vaned` uses (see `src/main.rs`), so that a floor measured with this
/// binary differs from `vaned` only by its bugs: with glibc's malloc it did about 10%
/// fewer puts per second with none of them doing anything to puts.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NAMES: &str = "stale-reads, ack-before-fsync, mvcc-unpersisted or value-once-layout";

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let names = match args.iter().position(|a| a == "--planted-bug") {
        Some(at) => {
            let names = args.get(at + 1).and_then(|n| n.to_str()).map(str::to_owned);
            args.drain(at..(at + 2).min(args.len()));
            names
        }
        None => std::env::var("VANED_PLANTED_BUG").ok(),
    };
    let Some(names) = names.filter(|n| !n.is_empty()) else {
        eprintln!("vaned-planted: --planted-bug NAME[,NAME…] is required; NAME is one of {NAMES}");
        return ExitCode::from(2);
    };
    let mut bugs = Vec::new();
    for name in names.split(',') {
        let Ok(bug) = PlantedBug::from_str(name.trim(), true) else {
            eprintln!("vaned-planted: unknown bug {name:?}; expected {NAMES}");
            return ExitCode::from(2);
        };
        bugs.push(bug);
    }
    bugs.into_iter().for_each(enable);
    vane_node::entry::run(args)
}
