//! The verbs that never contact the cluster: `version` and `completion`.

use clap_complete::generate;

use super::super::cli::{CompletionArgs, command};
use super::super::exit::CliError;
use super::write_stdout;

/// The etcd API version vanectl speaks, as etcdctl reports its own.
const API_VERSION: &str = "3.4";

/// `version`: like etcdctl's, it describes the tool, not the cluster (`endpoint status`
/// shows each member's version).
pub fn version() -> Result<(), CliError> {
    write_stdout(
        format!(
            "vanectl version: {}\nAPI version: {API_VERSION}\n",
            env!("CARGO_PKG_VERSION")
        )
        .as_bytes(),
    )
}

/// `completion <shell>`: the completion script for `shell`, generated from the command
/// tree so it never falls behind it.
pub fn completion(args: CompletionArgs) -> Result<(), CliError> {
    let mut script = Vec::new();
    generate(args.shell, &mut command(), "vanectl", &mut script);
    write_stdout(&script)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_cover_every_verb() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut script = Vec::new();
            generate(shell, &mut command(), "vanectl", &mut script);
            let script = String::from_utf8(script).expect("utf-8");
            for word in [
                "keep-alive",
                "timetolive",
                "compaction",
                "write-out",
                "prefix",
            ] {
                assert!(script.contains(word), "{shell:?} completion lacks {word}");
            }
        }
    }
}
