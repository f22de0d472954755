//! One `vaned` process, possibly under a wrapper that changes its world: `faketime` for
//! a skewed wall clock, `strace` for failing fsync.
//!
//! With a wrapper, the process we spawn is the wrapper and `vaned` is its child; signals
//! meant for the node (SIGSTOP, SIGKILL) go to `vaned` itself, found through
//! `/proc/<wrapper>/task/<wrapper>/children`.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long to look for `vaned` under its wrapper, in milliseconds.
const WRAPPED_CHILD_WAIT_MS: u64 = 5000;
/// How long a killed `vaned` may take to disappear, in milliseconds.
const KILL_WAIT_MS: u64 = 10_000;

/// The fsync (and fdatasync) call, counted per thread, from which the disk nemesis makes
/// every call fail with EIO: late enough that the node starts and joins first.
pub const FAILING_FSYNC_FROM_CALL: u32 = 50;

/// How a node's process is started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "launch", rename_all = "kebab-case")]
pub enum Launch {
    /// `vaned` itself.
    Plain,
    /// Under `faketime -f OFFSET`, with the monotonic clock left alone
    /// (`FAKETIME_DONT_FAKE_MONOTONIC=1`): only the wall clock is skewed.
    SkewedClock {
        /// faketime's offset, such as `+30s` or `-15s`.
        offset: String,
    },
    /// Under `strace`, which makes every fsync and fdatasync from the
    /// [`FAILING_FSYNC_FROM_CALL`]th call on (per thread) fail with EIO.
    FailingFsync,
}

/// A running (or exited, not yet reaped) node process.
#[derive(Debug)]
pub struct NodeProcess {
    child: tokio::process::Child,
    /// `vaned`'s own pid: the child's, or the wrapper's child's.
    vaned_pid: Option<i32>,
    exit: Option<ExitStatus>,
}

impl NodeProcess {
    /// Starts `vaned arguments` under `launch`, appending its output to `log`.
    pub fn spawn(
        vaned: &Path,
        arguments: &[String],
        launch: &Launch,
        log: &Path,
        strace_log: &Path,
    ) -> Result<Self, String> {
        let open_log = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|error| format!("cannot open the log {}: {error}", log.display()))
        };
        let mut command = match launch {
            Launch::Plain => tokio::process::Command::new(vaned),
            Launch::SkewedClock { offset } => {
                let mut command = tokio::process::Command::new("faketime");
                command
                    .args(["-f", offset])
                    .arg(vaned)
                    .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
                command
            }
            Launch::FailingFsync => {
                let mut command = tokio::process::Command::new("strace");
                let from = FAILING_FSYNC_FROM_CALL;
                command
                    .args(["-f", "-qq", "--seccomp-bpf", "-e", "signal=none"])
                    .arg("-o")
                    .arg(strace_log)
                    .args(["-e", "trace=fsync,fdatasync"])
                    .arg("-e")
                    .arg(format!("inject=fdatasync:error=EIO:when={from}+"))
                    .arg("-e")
                    .arg(format!("inject=fsync:error=EIO:when={from}+"))
                    .arg("--")
                    .arg(vaned);
                command
            }
        };
        command
            .args(arguments)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(open_log()?)
            .stderr(open_log()?)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start {} ({launch:?}): {error}", vaned.display()))?;
        let own_pid = child.id().and_then(|pid| i32::try_from(pid).ok());
        let vaned_pid = match launch {
            Launch::Plain => own_pid,
            _ => own_pid.and_then(|wrapper| wrapped_child(wrapper, vaned)),
        };
        if vaned_pid.is_none() {
            // Without vaned's pid its wrapper could be killed while vaned lived on,
            // holding the data directory.
            let _ = child.start_kill();
            return Err(format!(
                "started {launch:?} but found no {} process under it within {WRAPPED_CHILD_WAIT_MS} ms",
                vaned.display()
            ));
        }
        Ok(Self {
            child,
            vaned_pid,
            exit: None,
        })
    }

    /// Sends `signal` to `vaned`.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.vaned_pid
            && self.exit.is_none()
        {
            // SAFETY: the pid is our child (or our wrapper's child, which it has not
            // reaped while it runs), so it has not been recycled.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    /// How the process exited, if it has.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// SIGKILL to `vaned` and its wrapper; waits until both are gone, so that the data
    /// directory's lock is free for the next start.
    pub async fn kill(&mut self) {
        self.kill_now();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
        }
        // Under a wrapper, vaned is not our child: wait until the kernel has torn it down
        // (gone, or a zombie, which holds no locks).
        if let Some(pid) = self.vaned_pid {
            let deadline = Instant::now() + Duration::from_millis(KILL_WAIT_MS);
            while process_holds_resources(pid) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// SIGKILL to `vaned` and its wrapper, without waiting (for `Drop`).
    pub fn kill_now(&mut self) {
        if self.exit_status().is_some() {
            return;
        }
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGKILL);
        let _ = self.child.start_kill();
    }
}

/// Whether any thread of `pid` is still alive. A thread-group leader turns zombie while
/// its other threads are still exiting, and those still hold the process's files (the
/// data directory's lock among them), so every thread is looked at.
fn process_holds_resources(pid: i32) -> bool {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.filter_map(Result::ok).any(|thread| {
        let Ok(stat) = std::fs::read_to_string(thread.path().join("stat")) else {
            return false;
        };
        // The state follows the parenthesised command name, which may hold spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        !matches!(state, Some("Z" | "X") | None)
    })
}

/// The child of `wrapper` that runs `vaned`, polled for until it appears. Wrappers may
/// fork short-lived helpers first (strace probes the kernel's ptrace and seccomp support
/// that way), and faketime's child runs faketime until it execs, so a child counts only
/// once its command line starts with the `vaned` binary.
fn wrapped_child(wrapper: i32, vaned: &Path) -> Option<i32> {
    let children = format!("/proc/{wrapper}/task/{wrapper}/children");
    let wanted = vaned.as_os_str().as_encoded_bytes();
    let deadline = Instant::now() + Duration::from_millis(WRAPPED_CHILD_WAIT_MS);
    loop {
        if let Ok(text) = std::fs::read_to_string(&children) {
            for pid in text
                .split_whitespace()
                .filter_map(|pid| pid.parse::<i32>().ok())
            {
                let runs_vaned = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| cmdline.split(|byte| *byte == 0).next() == Some(wanted));
                if runs_vaned {
                    return Some(pid);
                }
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
