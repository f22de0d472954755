//! The operating-system side of a member: starting `vaned`, sending it signals, and
//! telling whether a recorded process id is still that member.
//!
//! A process started by this launcher is a [`Child`] and is reaped through it. A process
//! started by an earlier `vane-cluster` invocation is known only by its pid, so signals
//! go through `kill(1)` and liveness comes from `/proc`: a pid counts as the member only
//! while the process is not a zombie and its command line names the member's data
//! directory, so a recycled pid is never signalled.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::error::{ClusterError, Result};

/// A signal the launcher sends to members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Graceful stop: the member hands over leadership and exits.
    Term,
    /// Immediate death, as a crash or `kill -9`.
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
        }
    }
}

/// Starts `vaned` with `arguments`, appending its stdout and stderr to `log`.
///
/// The process stays in the launcher's process group, so that Ctrl-C on a test run
/// reaches the members too even when the test has no chance to drop its cluster.
pub fn spawn_vaned(name: &str, vaned: &Path, arguments: &[String], log: &Path) -> Result<Child> {
    let open_log = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| ClusterError::Io {
                action: "open the member log",
                path: log.to_path_buf(),
                source,
            })
    };
    let stdout = open_log()?;
    let stderr = open_log()?;
    Command::new(vaned)
        .args(arguments)
        // Logs are files read by people and greps, not terminals.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|source| ClusterError::Spawn {
            name: name.to_string(),
            vaned: vaned.to_path_buf(),
            source,
        })
}

/// Sends `signal` to `pid` through `kill(1)`; a process that is already gone is not an
/// error, because every caller wants it gone.
pub fn send_signal(pid: u32, signal: Signal) -> Result<()> {
    let output = Command::new("kill")
        .args(["-s", signal.name(), &pid.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ClusterError::Signal {
            signal: signal.name(),
            pid,
            detail: format!("cannot run kill(1): {e}"),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let detail = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if detail.contains("No such process") {
        return Ok(());
    }
    Err(ClusterError::Signal {
        signal: signal.name(),
        pid,
        detail,
    })
}

/// Whether `pid` is a live (not zombie) process whose command line names `data_dir`:
/// the member we started, not whatever later got its pid.
///
/// Right after a spawn the kernel may not have published the new command line yet, so
/// the launcher asks [`pid_is_live`] about processes it holds a handle for.
pub fn pid_runs_member(pid: u32, data_dir: &Path) -> bool {
    if !pid_is_live(pid) {
        return false;
    }
    if !Path::new("/proc/self").exists() {
        // Without /proc, liveness is all we can tell.
        return true;
    }
    let Ok(cmdline) = std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline"))
    else {
        return false;
    };
    let wanted = data_dir.display().to_string();
    cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == wanted.as_bytes())
}

/// Whether `pid` exists and has not exited (a zombie has exited, it only awaits its
/// parent). Safe for a pid the launcher holds an unreaped handle for: it cannot be
/// recycled.
pub fn pid_is_live(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        let Ok(stat) =
            std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))
        else {
            return false;
        };
        // The state follows the parenthesised command name, which may itself hold spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        return !matches!(state, Some("Z" | "X") | None);
    }
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The last non-empty line of a member's log: usually why `vaned` refused to start.
pub fn last_log_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|text| {
            text.lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .map(|line| line.trim().to_string())
        })
        .unwrap_or_else(|| "(log is empty)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleeping_child_is_recognised_by_its_arguments_and_gone_after_kill() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("member-data");
        // The marker is the shell's `$0`, an argument like vaned's `--data-dir` value; the
        // second command keeps the shell from replacing itself with `sleep`.
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30; exit 0", marker.to_str().unwrap()])
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(pid_is_live(pid));
        // The new command line appears a moment after the spawn returns.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !pid_runs_member(pid, &marker) {
            assert!(std::time::Instant::now() < deadline, "never recognised");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!pid_runs_member(pid, &dir.path().join("other")));
        send_signal(pid, Signal::Kill).unwrap();
        child.wait().unwrap();
        assert!(!pid_is_live(pid));
        assert!(!pid_runs_member(pid, &marker));
        // Above Linux's largest possible pid (2^22), so no process can have it.
        send_signal(4_194_305, Signal::Term).expect("a missing process is not an error");
    }

    #[test]
    fn last_log_line_skips_trailing_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("n1.log");
        std::fs::write(&log, "starting\nvaned: address in use\n\n").unwrap();
        assert_eq!(last_log_line(&log), "vaned: address in use");
        assert_eq!(last_log_line(&dir.path().join("none")), "(log is empty)");
    }
}
