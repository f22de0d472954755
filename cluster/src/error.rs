//! The one error type of `vane-cluster`. Every message names the member or file it is
//! about and says what to do next, because the CLI prints it as its only line of output.

use std::path::PathBuf;

/// Everything that can go wrong while starting, stopping or inspecting a local cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No `vaned` binary where we looked.
    #[error(
        "cannot find the vaned binary (looked at {searched}); build it with \
         `cargo build -p vane-node --bin vaned` (`make test` builds the workspace first), \
         or pass --vaned PATH, or set VANED=PATH"
    )]
    VanedNotFound {
        /// The candidate paths, comma-separated.
        searched: String,
    },

    /// The cluster specification cannot be started as given.
    #[error("invalid cluster specification: {0}")]
    InvalidSpec(String),

    /// `up` was pointed at a directory that already holds a cluster (its record or a
    /// member's data directory).
    #[error(
        "{dir} already holds a cluster (cluster.json or nK/ data); run `vane-cluster down --dir {dir}` \
         and remove the directory, or choose another --dir"
    )]
    ClusterExists {
        /// The cluster directory.
        dir: PathBuf,
    },

    /// A command other than `up` was pointed at a directory without a cluster.
    #[error(
        "no cluster record at {path}; start a cluster with `vane-cluster up --dir <DIR>` first"
    )]
    NoCluster {
        /// The missing `cluster.json`.
        path: PathBuf,
    },

    /// `cluster.json` exists but is not what `vane-cluster` writes.
    #[error(
        "{path} is not a cluster record written by vane-cluster ({source}); remove it or choose another --dir"
    )]
    RecordCorrupt {
        /// The unreadable `cluster.json`.
        path: PathBuf,
        /// Why it did not parse.
        source: serde_json::Error,
    },

    /// A file or directory operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What we tried, e.g. "create the data directory".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's answer.
        source: std::io::Error,
    },

    /// A port chosen from `--base-port` is taken.
    #[error(
        "port {port} on 127.0.0.1 is in use; choose another --base-port, or omit it to pick free ports"
    )]
    PortInUse {
        /// The taken port.
        port: u16,
    },

    /// The operating system gave us no free loopback port.
    #[error("cannot find a free port on 127.0.0.1 ({source}); free some ports or pass --base-port")]
    NoFreePort {
        /// Why binding failed.
        source: std::io::Error,
    },

    /// A command named a member the cluster record does not know.
    #[error("no member named {name:?} in this cluster; its members are {known}")]
    UnknownMember {
        /// The name given.
        name: String,
        /// The names in the record, comma-separated.
        known: String,
    },

    /// `vaned` could not be executed at all.
    #[error("cannot start {vaned} for {name} ({source}); check that it is an executable vaned")]
    Spawn {
        /// The member being started.
        name: String,
        /// The binary.
        vaned: PathBuf,
        /// The operating system's answer.
        source: std::io::Error,
    },

    /// `vaned` started and exited while we waited for it.
    #[error("{name} exited ({status}) while starting: {last_log_line} (full log: {log})")]
    ExitedEarly {
        /// The member.
        name: String,
        /// Its exit status.
        status: String,
        /// The last non-empty line of its log, usually vaned's own error.
        last_log_line: String,
        /// Its log file.
        log: PathBuf,
    },

    /// The members never agreed on a leader.
    #[error("no leader elected within {waited_ms} ms; read the member logs {dir}/n*.log")]
    NoLeader {
        /// How long we waited.
        waited_ms: u64,
        /// The cluster directory.
        dir: PathBuf,
    },

    /// A started member never answered on its client port.
    #[error("{name} did not answer on {url} within {waited_ms} ms; read {log}")]
    MemberNotReady {
        /// The member.
        name: String,
        /// Its client URL.
        url: String,
        /// How long we waited.
        waited_ms: u64,
        /// Its log file.
        log: PathBuf,
    },

    /// A member ignored SIGTERM for too long.
    #[error(
        "{name} (pid {pid}) did not exit within {waited_ms} ms of SIGTERM; read {log}, \
         or end it with `vane-cluster kill {name}`"
    )]
    StopTimedOut {
        /// The member.
        name: String,
        /// Its process id.
        pid: u32,
        /// How long we waited.
        waited_ms: u64,
        /// Its log file.
        log: PathBuf,
    },

    /// `kill(1)` refused to deliver a signal.
    #[error("cannot send SIG{signal} to pid {pid}: {detail}")]
    Signal {
        /// TERM or KILL.
        signal: &'static str,
        /// The process.
        pid: u32,
        /// What `kill` said.
        detail: String,
    },

    /// A member survived SIGKILL: it is stuck in the kernel (a hung disk, say).
    #[error(
        "{name} (pid {pid}) is still running {waited_ms} ms after SIGKILL; check it with \
         `ps -o pid,stat,wchan -p {pid}`"
    )]
    StillRunningAfterKill {
        /// The member.
        name: String,
        /// Its process id.
        pid: u32,
        /// How long we waited.
        waited_ms: u64,
    },

    /// An etcd API call failed.
    #[error("{operation} through {url} failed: {message}")]
    Rpc {
        /// The RPC, e.g. "MemberAdd".
        operation: &'static str,
        /// The member it was sent to.
        url: String,
        /// The gRPC status or connection error.
        message: String,
    },

    /// The running `vaned` does not implement a membership RPC yet.
    #[error(
        "{operation} is not implemented by this vaned ({message}); membership changes need a \
         vaned built with MemberAdd, MemberRemove and MemberPromote"
    )]
    Unimplemented {
        /// The RPC.
        operation: &'static str,
        /// The server's message.
        message: String,
    },

    /// A new learner did not reach the leader's applied index in time.
    #[error(
        "learner {name} applied up to {applied} but the leader is at {leader_applied} after \
         {waited_ms} ms; it is still a learner: read {log}, then promote it with \
         `etcdctl member promote` or remove it with `vane-cluster remove {name}`"
    )]
    CatchUpTimedOut {
        /// The learner.
        name: String,
        /// Its applied index when we gave up.
        applied: u64,
        /// The leader's applied index when we gave up.
        leader_applied: u64,
        /// How long we waited.
        waited_ms: u64,
        /// Its log file.
        log: PathBuf,
    },

    /// MemberPromote kept refusing.
    #[error(
        "learner {name} was not promoted within {waited_ms} ms ({last_error}); it is still a \
         learner: retry with `etcdctl member promote` or remove it with `vane-cluster remove {name}`"
    )]
    PromoteTimedOut {
        /// The learner.
        name: String,
        /// How long we retried.
        waited_ms: u64,
        /// The last refusal.
        last_error: String,
    },

    /// Removing the member would leave nothing to remove it from.
    #[error("{name} is the only member left; end the cluster with `vane-cluster down` instead")]
    LastMember {
        /// The member.
        name: String,
    },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, ClusterError>;
