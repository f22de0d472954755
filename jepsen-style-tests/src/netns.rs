//! The network namespace a run lives in.
//!
//! Every node gets its own loopback address (127.0.0.11, .12, …) and firewall rules cut
//! links between those addresses. Doing that in the machine's own network stack would
//! disturb everyone else on it, so each run creates a fresh namespace
//! (`vane-jepsen-<pid>`), brings its `lo` up, and re-executes itself inside it with
//! `ip netns exec`: the nodes, the clients and the firewall rules then exist only there.
//! The outer process owns the namespace: whatever happens to the inner one (a panic, a
//! Ctrl-C, a SIGKILL), it kills what is left inside and deletes the namespace.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::error::JepsenError;

/// Set in the inner process's environment to the namespace's name: the inner process
/// knows it is already inside and must not create another.
pub const INSIDE_NETNS_ENV: &str = "VANE_JEPSEN_NETNS";

/// How long the outer process lets the inner one shut down after forwarding a signal,
/// in milliseconds, before killing it.
const SHUTDOWN_GRACE_MS: u64 = 20_000;

/// The namespace this process runs in, if it was started inside one by [`run_inside`].
pub fn current_namespace() -> Option<String> {
    std::env::var(INSIDE_NETNS_ENV)
        .ok()
        .filter(|name| !name.is_empty())
}

/// Fails unless the process runs as root, which `ip netns` and `iptables` need.
pub fn require_root() -> Result<(), JepsenError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        Ok(())
    } else {
        Err(JepsenError::Environment {
            what: "vane-jepsen needs root".to_string(),
            detail: format!(
                "it creates a network namespace and firewall rules (effective uid is {euid}); run it with sudo or as root"
            ),
        })
    }
}

/// A network namespace created by this process, deleted (with everything still running
/// in it) when dropped.
#[derive(Debug)]
pub struct NetworkNamespace {
    name: String,
}

impl NetworkNamespace {
    /// Creates namespace `name` and brings its loopback interface up.
    pub fn create(name: &str) -> Result<Self, JepsenError> {
        run_ip(&["netns", "add", name])?;
        let namespace = Self {
            name: name.to_string(),
        };
        run_ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SIGKILLs every process still in the namespace. They are all this run's: nothing
    /// else can enter a namespace created a moment ago under this process's id.
    pub fn kill_remaining_processes(&self) {
        let Ok(output) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .stdin(Stdio::null())
            .output()
        else {
            return;
        };
        for pid in String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .filter_map(|pid| pid.parse::<i32>().ok())
        {
            // SAFETY: kill with a pid read from the namespace's own list; a process that
            // has exited in between makes it fail harmlessly with ESRCH.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for NetworkNamespace {
    fn drop(&mut self) {
        self.kill_remaining_processes();
        // A killed process releases the namespace a moment after the signal.
        for _ in 0..50 {
            if run_ip(&["netns", "del", &self.name]).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn run_ip(arguments: &[&str]) -> Result<(), JepsenError> {
    let output = Command::new("ip")
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| JepsenError::Environment {
            what: format!("cannot run `ip {}`", arguments.join(" ")),
            detail: format!("{error}; install iproute2"),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(JepsenError::Environment {
        what: format!("`ip {}` failed", arguments.join(" ")),
        detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

/// Runs this executable again with `arguments` inside a fresh namespace, forwards
/// SIGINT and SIGTERM to it, waits for it, and deletes the namespace whatever happened.
/// Returns the inner process's exit status.
pub async fn run_inside(arguments: &[String]) -> Result<ExitStatus, JepsenError> {
    require_root()?;
    let executable = std::env::current_exe().map_err(|source| JepsenError::Io {
        action: "find the running executable",
        path: Path::new("/proc/self/exe").to_path_buf(),
        source,
    })?;
    let namespace = NetworkNamespace::create(&format!("vane-jepsen-{}", std::process::id()))?;
    let mut child = tokio::process::Command::new("ip")
        .args(["netns", "exec", namespace.name()])
        .arg(&executable)
        .args(arguments)
        .env(INSIDE_NETNS_ENV, namespace.name())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|error| JepsenError::Environment {
            what: "cannot start the runner inside its network namespace".to_string(),
            detail: error.to_string(),
        })?;

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|error| JepsenError::Environment {
        what: "cannot listen for SIGTERM".to_string(),
        detail: error.to_string(),
    })?;
    let status = tokio::select! {
        status = child.wait() => status,
        _ = tokio::signal::ctrl_c() => shut_down(&mut child, libc::SIGINT).await,
        _ = terminate.recv() => shut_down(&mut child, libc::SIGTERM).await,
    };
    drop(namespace);
    status.map_err(|error| JepsenError::Environment {
        what: "lost track of the runner inside the namespace".to_string(),
        detail: error.to_string(),
    })
}

/// Passes `signal` on to the inner runner (a terminal's Ctrl-C already reached it, a
/// SIGTERM to this process did not), then waits for it to clean up, or kills it.
async fn shut_down(child: &mut tokio::process::Child, signal: i32) -> std::io::Result<ExitStatus> {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        // SAFETY: the pid is our own unreaped child, so it cannot have been recycled.
        unsafe {
            libc::kill(pid, signal);
        }
    }
    match tokio::time::timeout(Duration::from_millis(SHUTDOWN_GRACE_MS), child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            child.kill().await?;
            child.wait().await
        }
    }
}
