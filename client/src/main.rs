//! `vanectl` entry point.

fn main() -> std::process::ExitCode {
    eprintln!("vanectl: not built yet; use etcdctl against vaned for now");
    std::process::ExitCode::from(2)
}
