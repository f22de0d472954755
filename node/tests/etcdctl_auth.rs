//! etcdctl 3.4's `user`, `role` and `auth` commands and `--user`, against a real etcd 3.4
//! and against a three-node Vane: the same script must print the same thing and exit the
//! same way (cluster ids, member ids and terms masked). The harness is `etcdctl.rs`'s.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Cluster, start_etcd};

/// Runs etcdctl (bounded by `timeout`, for `watch`) and returns (exit code, stdout, the
/// `Error:` lines of stderr and the reason a watch was canceled with).
fn etcdctl(endpoints: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new("timeout")
        .arg("30")
        .arg("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg("--command-timeout=10s")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl 3.4 is installed by `make setup` (Debian package etcd-client)");
    if let Some(input) = stdin {
        child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("etcdctl output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr
        .lines()
        .filter(|l| l.starts_with("Error:") || l.starts_with("watch was canceled"))
        .collect::<Vec<_>>()
        .join("\n");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        error,
    )
}

/// Masks what legitimately differs between two clusters: ids and terms.
fn mask(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(pos) = ["\"cluster_id\":", "\"member_id\":", "\"raft_term\":"]
        .iter()
        .filter_map(|k| rest.find(k).map(|p| (p, k.len())))
        .min()
    {
        let (at, len) = pos;
        out.push_str(&rest[..at + len]);
        rest = &rest[at + len..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        out.push('N');
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// A put smuggled into the branch that does not run.
const SMUGGLING_TXN: &str = "value(\"/app/x\") = \"1\"\n\nget /app/x\n\nput /app/x smuggled\n\n";

fn script() -> Vec<(Vec<&'static str>, Option<&'static str>)> {
    let c = |args: &[&'static str]| (args.to_vec(), None);
    vec![
        c(&["auth", "enable"]),
        c(&["user", "add", "root:pw"]),
        c(&["role", "add", "r"]),
        c(&["role", "grant-permission", "r", "read", "/app/", "--prefix"]),
        c(&["user", "add", "u:pw"]),
        c(&["user", "grant-role", "u", "r"]),
        c(&["user", "list"]),
        c(&["auth", "enable"]),
        c(&["--user", "root:pw", "put", "/app/x", "1"]),
        c(&["--user", "root:pw", "put", "/other/y", "2"]),
        c(&["--user", "u:pw", "get", "/app/x"]),
        c(&["--user", "u:pw", "get", "/app/x", "-w", "json"]),
        c(&["--user", "u:pw", "put", "/app/x", "2"]),
        c(&["--user", "u:pw", "get", "/other/y"]),
        c(&["--user", "u:pw", "get", "/app/", "--prefix"]),
        c(&["--user", "u:pw", "get", "/", "--prefix"]),
        c(&["--user", "u:pw", "del", "/app/x"]),
        (vec!["--user", "u:pw", "txn"], Some(SMUGGLING_TXN)),
        c(&["--user", "u:pw", "watch", "/other/", "--prefix"]),
        c(&["get", "/app/x"]),
        c(&["put", "/app/x", "anonymous"]),
        c(&["--user", "u:wrong", "get", "/app/x"]),
        c(&["--user", "nobody:pw", "get", "/app/x"]),
        c(&["--user", "root:pw", "get", "/", "--prefix"]),
        c(&["--user", "root:pw", "user", "list"]),
        c(&["--user", "root:pw", "user", "list", "-w", "json"]),
        c(&["--user", "root:pw", "role", "list"]),
        c(&["--user", "root:pw", "role", "get", "r"]),
        c(&["--user", "root:pw", "role", "get", "r", "-w", "json"]),
        c(&["--user", "root:pw", "role", "get", "root"]),
        c(&["--user", "root:pw", "user", "get", "u"]),
        c(&["--user", "u:pw", "user", "get", "u"]),
        c(&["--user", "u:pw", "role", "get", "r"]),
        c(&["--user", "u:pw", "user", "get", "root"]),
        c(&["--user", "u:pw", "user", "list"]),
        c(&["--user", "u:pw", "role", "add", "mine"]),
        c(&["--user", "u:pw", "auth", "disable"]),
        c(&["--user", "root:pw", "user", "add", "u:again"]),
        c(&["--user", "root:pw", "role", "add", "r"]),
        c(&["--user", "root:pw", "user", "grant-role", "u", "nosuch"]),
        c(&["--user", "root:pw", "user", "grant-role", "nosuch", "r"]),
        c(&["--user", "root:pw", "user", "delete", "root"]),
        c(&["--user", "root:pw", "user", "revoke-role", "root", "root"]),
        c(&["--user", "root:pw", "role", "delete", "root"]),
        c(&["--user", "root:pw", "user", "revoke-role", "u", "r"]),
        c(&["--user", "root:pw", "user", "revoke-role", "u", "r"]),
        c(&["--user", "u:pw", "get", "/app/x"]),
        c(&["--user", "root:pw", "user", "grant-role", "u", "r"]),
        c(&["--user", "root:pw", "user", "grant-role", "u", "r"]),
        c(&["--user", "u:pw", "get", "/app/x"]),
        c(&[
            "--user",
            "root:pw",
            "role",
            "grant-permission",
            "r",
            "readwrite",
            "/app/x",
        ]),
        c(&["--user", "u:pw", "put", "/app/x", "by-u"]),
        c(&[
            "--user",
            "root:pw",
            "role",
            "revoke-permission",
            "r",
            "/app/",
            "--prefix",
        ]),
        c(&[
            "--user",
            "root:pw",
            "role",
            "revoke-permission",
            "r",
            "/app/",
            "--prefix",
        ]),
        c(&["--user", "root:pw", "role", "get", "r"]),
        c(&["--user", "root:pw", "role", "delete", "r"]),
        c(&["--user", "root:pw", "user", "get", "u"]),
        c(&["--user", "root:pw", "user", "delete", "u"]),
        c(&["--user", "root:pw", "user", "delete", "u"]),
        c(&["--user", "root:pw", "auth", "disable"]),
        c(&["get", "/", "--prefix", "-w", "json"]),
        c(&["user", "list"]),
        c(&["role", "list"]),
        c(&["auth", "disable"]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_user_role_and_auth_commands_print_the_same_against_vane_as_against_etcd() {
    let etcd = start_etcd();
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let vane = cluster.endpoints().join(",");
    let etcd_endpoint = etcd.endpoint.clone();

    let mut mismatches = Vec::new();
    for (args, stdin) in script() {
        let etcd_endpoint = etcd_endpoint.clone();
        let vane = vane.clone();
        let args_owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (want, got) = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args_owned.iter().map(String::as_str).collect();
            (
                etcdctl(&etcd_endpoint, &args, stdin),
                etcdctl(&vane, &args, stdin),
            )
        })
        .await
        .expect("etcdctl");
        let want = (want.0, mask(&want.1), want.2);
        let got = (got.0, mask(&got.1), got.2);
        if want != got {
            mismatches.push(format!(
                "etcdctl {}\n  etcd: {want:?}\n  vane: {got:?}",
                args.join(" ")
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} differences:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
