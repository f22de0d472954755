//! `vaned` entry point.

fn main() -> std::process::ExitCode {
    eprintln!(
        "vaned: this build has the storage core only; the server arrives with the cluster issue"
    );
    std::process::ExitCode::from(2)
}
