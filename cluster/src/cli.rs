//! The `vane-cluster` command line: argument types and one function per command that
//! calls the library and prints its result. Part of the binary only (see `main.rs`);
//! nothing here is logic the library's users would miss.
//!
//! Processes a command starts (`up`, `restart`, `add`) are left running when it exits,
//! also when the command fails, so that their logs and state can be inspected and
//! `down` can end them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vane_cluster::{ClusterSpec, LocalCluster, MemberStatus, ProcessEnd, Result, leader_of};

/// Start, stop and inspect a local cluster of real vaned processes.
#[derive(Debug, Parser)]
#[command(
    name = "vane-cluster",
    version,
    about = "Start, stop and inspect a local cluster of real vaned processes",
    long_about = "Start, stop and inspect a local cluster of real vaned processes on 127.0.0.1.\n\n\
                  The cluster lives in one directory: DIR/cluster.json records the members, \
                  DIR/nK holds member nK's data and DIR/nK.log its log.\n\n  \
                  vane-cluster up --nodes 3 --dir /tmp/vane\n  \
                  etcdctl --endpoints=$(vane-cluster endpoints --dir /tmp/vane) put k v\n  \
                  vane-cluster kill n1 --dir /tmp/vane && vane-cluster status --dir /tmp/vane\n  \
                  vane-cluster down --dir /tmp/vane"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The directory of the cluster a command acts on.
#[derive(Debug, Args)]
struct ClusterDir {
    /// The cluster directory (holds cluster.json, nK/ and nK.log).
    #[arg(long, env = "VANE_CLUSTER_DIR", value_name = "DIR")]
    dir: PathBuf,
}

/// A member of the cluster a command acts on.
#[derive(Debug, Args)]
struct MemberArgs {
    /// The member's name, e.g. n1.
    name: String,
    #[command(flatten)]
    cluster: ClusterDir,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Found a cluster of N members, wait for a leader and for every member to answer,
    /// print endpoints and members.
    Up(UpArgs),
    /// Show each member's process and Raft state (leader, term, indexes).
    Status {
        #[command(flatten)]
        cluster: ClusterDir,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the client endpoints, comma-separated, for `etcdctl --endpoints=`.
    Endpoints {
        #[command(flatten)]
        cluster: ClusterDir,
    },
    /// End a member with SIGKILL, as a crash would.
    Kill(MemberArgs),
    /// Stop a member with SIGTERM (it hands over leadership) and wait for it to exit.
    Stop(MemberArgs),
    /// Start a member again with its flags and data (stopping it first if it runs).
    Restart(MemberArgs),
    /// Add a member: MemberAdd as a learner, start it, let it catch up, promote it.
    Add {
        #[command(flatten)]
        cluster: ClusterDir,
    },
    /// Remove a member: MemberRemove, then stop its process (its data stays on disk).
    Remove(MemberArgs),
    /// Stop every member: SIGTERM, then SIGKILL after a timeout. Data stays on disk.
    Down {
        #[command(flatten)]
        cluster: ClusterDir,
    },
}

#[derive(Debug, Args)]
struct UpArgs {
    /// Number of members, named n1..nN.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    #[command(flatten)]
    cluster: ClusterDir,
    /// The vaned binary [default: $VANED, then the usual cargo target directories]
    #[arg(long, value_name = "PATH")]
    vaned: Option<PathBuf>,
    /// Member nK listens on P+10(K-1) (clients), +1 (peers), +2 (metrics) [default: free ports]
    #[arg(long, value_name = "P")]
    base_port: Option<u16>,
    /// vaned --election-timeout, in milliseconds (at least 1000).
    #[arg(long = "election-timeout", value_name = "MS", default_value_t = 1000)]
    election_timeout_ms: u64,
    /// vaned --heartbeat-interval, in milliseconds.
    #[arg(long = "heartbeat-interval", value_name = "MS", default_value_t = 100)]
    heartbeat_interval_ms: u64,
    /// vaned --log-level.
    #[arg(long, default_value = "info,openraft=warn")]
    log_level: String,
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up(args) => up(args).await,
        Command::Status { cluster, json } => status(cluster, json).await,
        Command::Endpoints { cluster } => {
            println!(
                "{}",
                etcdctl_endpoints(&LocalCluster::open(&cluster.dir)?.endpoints())
            );
            Ok(())
        }
        Command::Kill(member) => {
            let mut cluster = LocalCluster::open(&member.cluster.dir)?;
            let end = cluster.kill(&member.name).await?;
            println!("{}: {}", member.name, describe(end));
            Ok(())
        }
        Command::Stop(member) => {
            let mut cluster = LocalCluster::open(&member.cluster.dir)?;
            let end = cluster.stop(&member.name).await?;
            println!("{}: {}", member.name, describe(end));
            Ok(())
        }
        Command::Restart(member) => {
            let mut cluster = LocalCluster::open(&member.cluster.dir)?;
            let restarted = cluster.restart(&member.name).await;
            let pid = cluster
                .record()
                .member(&member.name)
                .ok()
                .and_then(|m| m.pid);
            cluster.leave_running();
            restarted?;
            println!("{}: running (pid {})", member.name, pid.unwrap_or_default());
            Ok(())
        }
        Command::Add { cluster } => {
            let mut cluster = LocalCluster::open(&cluster.dir)?;
            let added = cluster.add_member().await;
            let endpoints = etcdctl_endpoints(&cluster.endpoints());
            cluster.leave_running();
            let name = added?;
            println!("{name}: added and promoted to voter");
            println!("{endpoints}");
            Ok(())
        }
        Command::Remove(member) => {
            let mut cluster = LocalCluster::open(&member.cluster.dir)?;
            cluster.remove_member(&member.name).await?;
            println!("{}: removed and stopped", member.name);
            Ok(())
        }
        Command::Down { cluster } => {
            let mut cluster = LocalCluster::open(&cluster.dir)?;
            for (name, end) in cluster.down().await? {
                println!("{name}: {}", describe(end));
            }
            Ok(())
        }
    }
}

async fn up(args: UpArgs) -> Result<()> {
    let spec = ClusterSpec {
        vaned: args.vaned,
        base_port: args.base_port,
        heartbeat_interval_ms: args.heartbeat_interval_ms,
        election_timeout_ms: args.election_timeout_ms,
        log_level: args.log_level,
        ..ClusterSpec::new(args.nodes, args.cluster.dir)
    };
    let cluster = LocalCluster::start(spec).await?;
    let statuses = cluster.status().await;
    println!("{}", etcdctl_endpoints(&cluster.endpoints()));
    println!();
    let rows = cluster
        .record()
        .members
        .iter()
        .zip(&statuses)
        .map(|(member, status)| {
            vec![
                member.name.clone(),
                member.pid.map_or("-".to_string(), |p| p.to_string()),
                status.role().to_string(),
                member.client_url(),
                member.peer_url(),
                member.metrics_url(),
                member.data_dir.display().to_string(),
            ]
        })
        .collect();
    print_table(
        &["NAME", "PID", "ROLE", "CLIENT", "PEER", "METRICS", "DATA"],
        rows,
    );
    println!();
    println!("logs: {}/n*.log", cluster.dir().display());
    cluster.leave_running();
    Ok(())
}

async fn status(cluster: ClusterDir, json: bool) -> Result<()> {
    let cluster = LocalCluster::open(&cluster.dir)?;
    let statuses = cluster.status().await;
    if json {
        // Serialising plain structs of strings and integers cannot fail.
        println!(
            "{}",
            serde_json::to_string_pretty(&statuses).unwrap_or_default()
        );
        return Ok(());
    }
    let rows = statuses.iter().map(status_row).collect();
    print_table(
        &[
            "NAME", "PID", "ALIVE", "ROLE", "ID", "TERM", "INDEX", "APPLIED", "CLIENT", "ERROR",
        ],
        rows,
    );
    let leader = leader_of(&statuses);
    println!("leader: {}", leader.as_deref().unwrap_or("none"));
    Ok(())
}

fn status_row(status: &MemberStatus) -> Vec<String> {
    let raft = status.raft.as_ref();
    let number = |value: Option<u64>| value.map_or("-".to_string(), |v| v.to_string());
    vec![
        status.name.clone(),
        status.pid.map_or("-".to_string(), |p| p.to_string()),
        if status.alive { "yes" } else { "no" }.to_string(),
        status.role().to_string(),
        raft.map_or("-".to_string(), |r| format!("{:x}", r.member_id)),
        number(raft.map(|r| r.raft_term)),
        number(raft.map(|r| r.raft_index)),
        number(raft.map(|r| r.applied_index)),
        status.client_url.clone(),
        status.error.clone().unwrap_or_default(),
    ]
}

fn describe(end: ProcessEnd) -> &'static str {
    match end {
        ProcessEnd::NotRunning => "was not running",
        ProcessEnd::Terminated => "stopped (SIGTERM)",
        ProcessEnd::Killed => "killed (SIGKILL)",
    }
}

/// Prints rows under headers in columns as wide as their widest cell.
fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(headers.iter().map(|h| h.to_string()).collect()));
    for row in rows {
        println!("{}", line(row));
    }
}

/// Endpoints as `host:port`, comma-separated, the form to give `etcdctl --endpoints`:
/// etcdctl 3.4 sends a `scheme://` endpoint as the HTTP/2 authority for some calls
/// (`endpoint status`), which a strict HTTP/2 server refuses.
fn etcdctl_endpoints(urls: &[String]) -> String {
    urls.iter()
        .map(|u| {
            u.trim_start_matches("http://")
                .trim_start_matches("https://")
        })
        .collect::<Vec<_>>()
        .join(",")
}
