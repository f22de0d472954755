//! How vanectl fails: one `Error: <what happened; what to do>` line on stderr and
//! etcdctl's exit codes, so scripts that branch on etcdctl's codes keep working.

use std::fmt;
use std::process::ExitCode;

/// etcdctl's exit codes (`etcdctl/ctlv3/command/error.go`), by meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The command ran and the cluster refused or failed it.
    Error = 1,
    /// A single member could not be used (etcdctl's code for `keep-alive --once`).
    BadConnection = 2,
    /// Input read from stdin or a file is malformed (a txn script).
    InvalidInput = 3,
    /// The output format or an option value is not supported by this command.
    BadFeature = 4,
    /// The command was interrupted: a watch canceled by the server, a snapshot cut off.
    Interrupted = 5,
    /// A local file could not be read or written.
    Io = 6,
    /// The arguments are wrong.
    BadArgs = 128,
    /// Stdout was closed by its reader; what a shell reports for a process killed by
    /// SIGPIPE, as etcdctl (a Go program) would be.
    OutputClosed = 141,
}

/// A failed command: what to print and how to exit. `message` is `None` when the
/// command already said everything it had to (e.g. a closed stdout).
#[derive(Debug, PartialEq, Eq)]
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// The line printed after `Error: `.
    pub message: Option<String>,
}

impl CliError {
    /// A failure with a message.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: Some(message.into()),
        }
    }

    /// A failure that has been reported already.
    pub fn quiet(exit: Exit) -> Self {
        CliError {
            exit,
            message: None,
        }
    }

    /// Wrong arguments (exit 128).
    pub fn bad_args(message: impl Into<String>) -> Self {
        CliError::new(Exit::BadArgs, message)
    }

    /// The cluster failed the command (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        CliError::new(Exit::Error, message)
    }

    /// Prints the one error line, if any.
    pub fn report(&self) {
        if let Some(message) = &self.message {
            eprintln!("Error: {message}");
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit as u8)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{message}"),
            None => write!(f, "exit {}", self.exit as u8),
        }
    }
}

/// A client error after the client connected: the server's message (what etcdctl
/// prints), with a hint where the next step is not obvious from it.
pub fn from_client(error: vane_client::Error) -> CliError {
    use vane_client::Error;
    let message = error.message().to_string();
    let hinted = match &error {
        Error::Compacted {
            compact_revision, ..
        } if *compact_revision > 0 => format!(
            "{message}; history before revision {compact_revision} is gone: use --rev \
             {compact_revision} or later"
        ),
        Error::Compacted { .. } => {
            format!("{message}; ask for a newer --rev, or none to read the latest revision")
        }
        Error::Timeout { .. } => format!(
            "{message}; the cluster did not answer in time: check that a majority of members \
             is up (vanectl endpoint status), or raise --command-timeout"
        ),
        Error::Unavailable { .. } if message == "etcdserver: no leader" => {
            format!("{message}; a majority of members may be down: check vanectl endpoint status")
        }
        Error::SessionExpired {
            outcome_unknown: true,
            ..
        } => format!(
            "{message}; the write may or may not have been applied: read the key before \
             retrying"
        ),
        Error::Other { .. } => error.to_string(),
        _ => message,
    };
    CliError::failed(hinted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacted_errors_say_where_history_starts() {
        let error = from_client(vane_client::Error::Compacted {
            compact_revision: 5,
            message: vane_client::COMPACTED_MESSAGE.to_string(),
        });
        assert_eq!(error.exit, Exit::Error);
        assert_eq!(
            error.message.as_deref(),
            Some(
                "etcdserver: mvcc: required revision has been compacted; history before \
                 revision 5 is gone: use --rev 5 or later"
            )
        );
    }

    #[test]
    fn server_messages_are_kept_first() {
        let error = from_client(vane_client::Error::NotFound {
            message: "etcdserver: member not found".to_string(),
        });
        assert_eq!(
            error.message.as_deref(),
            Some("etcdserver: member not found")
        );
        let no_leader = from_client(vane_client::Error::Unavailable {
            message: "etcdserver: no leader".to_string(),
        });
        assert!(
            no_leader
                .to_string()
                .starts_with("etcdserver: no leader; a majority")
        );
    }
}
