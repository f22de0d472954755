//! What the vanectl integration tests share: running `vanectl` and `etcdctl` as
//! processes, founding clusters of real `vaned` processes with `vane-cluster`, and
//! masking what legitimately differs between two clusters.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vane_cluster::{ClusterSpec, LocalCluster};

/// What a command printed and how it exited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr, without etcdctl's JSON log lines.
    pub stderr: String,
}

impl Output {
    /// The `Error: ...` lines of stderr.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("Error:"))
            .collect()
    }
}

/// A cluster of `nodes` real vaned members in a temporary directory (removed, and the
/// members killed, when both are dropped).
pub async fn start_cluster(nodes: usize) -> (tempfile::TempDir, LocalCluster) {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = ClusterSpec::new(nodes, dir.path().join("cluster"));
    let cluster = LocalCluster::start(spec).await.unwrap_or_else(|e| {
        panic!("starting {nodes} vaned members failed ({e}); build vaned first: cargo build -p vane-node --bin vaned")
    });
    (dir, cluster)
}

/// `vanectl --endpoints=<endpoints> <args>`, with `stdin` as its input.
pub fn vanectl(endpoints: &str, args: &[&str], stdin: Option<&str>) -> Output {
    vanectl_in(None, endpoints, args, stdin)
}

/// [`vanectl`] run in the directory `dir`.
pub fn vanectl_in(
    dir: Option<&Path>,
    endpoints: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vanectl"));
    command
        .arg(format!("--endpoints={endpoints}"))
        .args(args)
        .env_remove("VANECTL_ENDPOINTS")
        .env_remove("VANECTL_WRITE_OUT");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    run(command, stdin)
}

/// `etcdctl` 3.4 (API v3) with the same flags.
pub fn etcdctl_in(
    dir: Option<&Path>,
    endpoints: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut command = Command::new("etcdctl");
    command
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    run(command, stdin)
}

fn run(mut command: Command, stdin: Option<&str>) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn (etcdctl 3.4 comes with `make setup`, vanectl with the test build)");
    if let Some(input) = stdin {
        child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("output");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: without_log_lines(&String::from_utf8_lossy(&output.stderr)),
    }
}

/// etcdctl's client library logs retries as JSON lines on stderr; they are noise here.
fn without_log_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("{\"level\""))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Runs a command that never ends by itself (`etcdctl watch`) until `enough` says its
/// stdout so far is complete, or `patience` has passed; then kills it and returns its
/// stdout. `patience` only bounds a broken run; the caller's comparison decides.
pub fn stdout_until(
    mut command: Command,
    enough: impl Fn(&str) -> bool,
    patience: Duration,
) -> String {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let (chunks, received) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 || chunks.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + patience;
    let mut collected = Vec::new();
    while !enough(&String::from_utf8_lossy(&collected)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(chunk) => collected.extend(chunk),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    String::from_utf8_lossy(&collected).into_owned()
}

/// `etcdctl watch ...` as a [`Command`] for [`stdout_until`].
pub fn etcdctl_command(endpoints: &str, args: &[&str]) -> Command {
    let mut command = Command::new("etcdctl");
    command
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .args(args);
    command
}

/// Replaces the digits (or hex digits) after every occurrence of each of `prefixes`
/// with `N`: ids, terms and lease ids differ between two clusters that are otherwise
/// in the same state.
pub fn mask_after(text: &str, prefixes: &[&str], hex: bool) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let next = prefixes
            .iter()
            .filter_map(|p| rest.find(p).map(|at| (at, p.len())))
            .min();
        let Some((at, len)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at + len]);
        rest = &rest[at + len..];
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '-' || (hex && c.is_ascii_hexdigit())))
            .unwrap_or(rest.len());
        if digits > 0 {
            out.push('N');
        }
        rest = &rest[digits..];
    }
}

/// The JSON and fields spellings of the header's cluster id, member id and term, which
/// differ between two clusters in the same state.
pub const HEADER_ID_PREFIXES: [&str; 6] = [
    "\"cluster_id\":",
    "\"member_id\":",
    "\"raft_term\":",
    "\"ClusterID\" : ",
    "\"MemberID\" : ",
    "\"RaftTerm\" : ",
];
