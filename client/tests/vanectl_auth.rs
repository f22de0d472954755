//! vanectl's `auth`, `user` and `role` verbs and its `--user`/`--password` flags print
//! and exit as etcdctl 3.4's do.
//!
//! Two single-member Vane clusters, A and B, receive the same script: etcdctl drives A,
//! vanectl drives B. Each step's exit code and stdout must be equal once cluster and
//! member ids and terms are masked (auth changes do not move the revision, so headers
//! compare otherwise as printed), and an `Error:` line of vanectl must begin with
//! etcdctl's. The script covers every verb in the formats etcdctl supports for it, the
//! refusals it prints, `--user name:password`, `--user` with `--password`, a wrong
//! password (exit 2, as etcdctl's failed dial), permission denied through a role, and a
//! password change that locks out the old password.

mod vanectl_support;

use vanectl_support::{HEADER_ID_PREFIXES, Output, etcdctl_in, mask_after, start_cluster, vanectl};

struct Step {
    args: Vec<&'static str>,
    stdin: Option<&'static str>,
}

fn step(args: &[&'static str]) -> Step {
    Step {
        args: args.to_vec(),
        stdin: None,
    }
}

fn with_stdin(args: &[&'static str], stdin: &'static str) -> Step {
    Step {
        args: args.to_vec(),
        stdin: Some(stdin),
    }
}

const ROOT: &str = "--user=root:rootpw";

fn script() -> Vec<Step> {
    vec![
        step(&["user", "add", "root:rootpw"]),
        step(&["user", "add", "alice:alicepw", "-w", "json"]),
        step(&["user", "add", "bob", "--no-password"]),
        with_stdin(
            &["user", "add", "carol", "--interactive=false"],
            "carolpw\n",
        ),
        step(&[
            "user",
            "add",
            "dave",
            "--new-user-password=davepw",
            "-w",
            "fields",
        ]),
        step(&["user", "add", "alice:again"]),
        step(&["user", "add", ":nameless"]),
        // etcdctl adds eve and then fails to print; vanectl refuses before adding.
        step(&["user", "get", "alice", "-w", "table"]),
        step(&["role", "add", "reader"]),
        step(&["role", "add", "reader"]),
        step(&["role", "add", "spare", "-w", "json"]),
        step(&[
            "role",
            "grant-permission",
            "reader",
            "read",
            "/app/",
            "--prefix",
        ]),
        step(&["role", "grant-permission", "reader", "readwrite", "a", "z"]),
        step(&[
            "role",
            "grant-permission",
            "reader",
            "write",
            "/x",
            "--from-key",
            "-w",
            "json",
        ]),
        step(&["role", "grant-permission", "reader", "READ", "k1"]),
        step(&["role", "grant-permission", "reader", "bad", "q"]),
        step(&[
            "role",
            "grant-permission",
            "reader",
            "read",
            "a",
            "b",
            "--prefix",
        ]),
        step(&["role", "grant-permission", "nosuch", "read", "k"]),
        step(&["role", "get", "reader"]),
        step(&["role", "get", "reader", "-w", "json"]),
        step(&["role", "get", "reader", "-w", "fields"]),
        step(&["role", "get", "reader", "-w", "table"]),
        step(&["role", "get", "nosuch"]),
        step(&["role", "list"]),
        step(&["role", "list", "-w", "json"]),
        step(&["role", "list", "-w", "fields"]),
        step(&["user", "grant-role", "alice", "reader"]),
        step(&["user", "grant-role", "alice", "spare", "-w", "json"]),
        step(&["user", "grant-role", "alice", "nosuch"]),
        step(&["user", "get", "alice"]),
        step(&["user", "get", "alice", "-w", "json"]),
        step(&["user", "get", "alice", "--detail"]),
        step(&["user", "get", "alice", "--detail", "-w", "json"]),
        step(&["user", "get", "alice", "-w", "fields"]),
        step(&["user", "get", "nosuch"]),
        step(&["user", "list"]),
        step(&["user", "list", "-w", "json"]),
        step(&["user", "list", "-w", "fields"]),
        step(&["role", "revoke-permission", "reader", "k1"]),
        step(&["role", "revoke-permission", "reader", "/x", "--from-key"]),
        step(&["role", "revoke-permission", "reader", "nothere"]),
        step(&["user", "revoke-role", "alice", "spare"]),
        step(&["user", "revoke-role", "alice", "spare"]),
        step(&["role", "delete", "spare"]),
        step(&["role", "delete", "spare"]),
        step(&["user", "delete", "dave", "-w", "json"]),
        step(&["user", "delete", "dave"]),
        step(&["put", "/app/config", "v1"]),
        step(&["auth", "enable"]),
        step(&["user", "grant-role", "root", "root"]),
        step(&["auth", "enable", "-w", "json"]),
        step(&["user", "list"]),
        step(&["get", "/app/config"]),
        step(&[ROOT, "user", "list"]),
        step(&["--user=root:wrong", "user", "list"]),
        step(&["--user=nobody:pw", "get", "/app/config"]),
        step(&[ROOT, "role", "get", "root"]),
        step(&[
            "--user=alice:alicepw",
            "get",
            "/app/config",
            "--print-value-only",
        ]),
        step(&["--user=alice:alicepw", "put", "/app/config", "v2"]),
        step(&["--user=alice:alicepw", "get", "/other"]),
        step(&["--user=alice", "--password=alicepw", "put", "b", "in-range"]),
        step(&["--user=alice:alicepw", "user", "list"]),
        step(&["--user=bob:anything", "get", "b"]),
        with_stdin(
            &[ROOT, "user", "passwd", "alice", "--interactive=false"],
            "newpw\n",
        ),
        step(&["--user=alice:alicepw", "get", "b"]),
        step(&["--user=alice:newpw", "get", "b", "--print-value-only"]),
        step(&[ROOT, "user", "revoke-role", "alice", "reader"]),
        step(&["--user=alice:newpw", "get", "b"]),
        step(&[ROOT, "auth", "disable"]),
        step(&["get", "/app/config", "--print-value-only"]),
        step(&["user", "delete", "carol"]),
        step(&["role", "delete", "reader"]),
        step(&["user", "list"]),
    ]
}

/// Ids and terms, which differ between clusters A and B.
fn masked(text: &str) -> String {
    mask_after(text, &HEADER_ID_PREFIXES, false)
}

/// What must be equal between the two tools for one step; `None` when it is.
fn difference(args: &[&str], etcdctl: &Output, vanectl: &Output) -> Option<String> {
    let mut problems = Vec::new();
    if etcdctl.code != vanectl.code {
        problems.push(format!(
            "exit code: etcdctl {} vanectl {}",
            etcdctl.code, vanectl.code
        ));
    }
    if masked(&etcdctl.stdout) != masked(&vanectl.stdout) {
        problems.push(format!(
            "stdout:\n--- etcdctl\n{}--- vanectl\n{}",
            etcdctl.stdout, vanectl.stdout
        ));
    }
    let theirs = etcdctl.error_lines();
    let ours = vanectl.error_lines();
    let errors_match =
        theirs.len() == ours.len() && theirs.iter().zip(&ours).all(|(t, o)| o.starts_with(*t));
    if !errors_match {
        problems.push(format!(
            "errors: etcdctl {theirs:?} vanectl {ours:?} (stderr: {})",
            vanectl.stderr
        ));
    }
    (!problems.is_empty()).then(|| format!("`{}`: {}", args.join(" "), problems.join("; ")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanectl_manages_users_roles_and_auth_as_etcdctl_does() {
    let (_dir_a, cluster_a) = start_cluster(1).await;
    let (_dir_b, cluster_b) = start_cluster(1).await;
    let a = cluster_a.endpoints().join(",");
    let b = cluster_b.endpoints().join(",");
    let mut differences = Vec::new();
    let steps = script();
    for step in &steps {
        let (etcdctl, ours) = tokio::task::block_in_place(|| {
            (
                etcdctl_in(None, &a, &step.args, step.stdin),
                vanectl(&b, &step.args, step.stdin),
            )
        });
        if let Some(difference) = difference(&step.args, &etcdctl, &ours) {
            differences.push(difference);
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} steps differ:\n{}",
        differences.len(),
        steps.len(),
        differences.join("\n\n")
    );
}

/// The plaintext of a password never reaches vanectl's output, and the prompt-free
/// paths (`name:password`, `--password`, stdin) are the only ones a script needs: with
/// no terminal, asking fails with a clear error instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_prompt_without_a_terminal_fails_clearly() {
    let (_dir, cluster) = start_cluster(1).await;
    let endpoints = cluster.endpoints().join(",");
    // `setsid` runs vanectl without a controlling terminal, as under cron or CI.
    let asked = tokio::task::block_in_place(|| {
        std::process::Command::new("setsid")
            .arg("--wait")
            .arg(env!("CARGO_BIN_EXE_vanectl"))
            .arg(format!("--endpoints={endpoints}"))
            .args(["--user=root", "user", "list"])
            .stdin(std::process::Stdio::null())
            .env_remove("VANECTL_PASSWORD")
            .output()
            .expect("run vanectl under setsid")
    });
    assert_eq!(asked.status.code(), Some(128), "{asked:?}");
    let stderr = String::from_utf8_lossy(&asked.stderr);
    assert!(stderr.contains("Error: failed to ask password"), "{stderr}");
    let added = tokio::task::block_in_place(|| {
        vanectl(&endpoints, &["user", "add", "svc:plain-secret-1"], None)
    });
    assert_eq!(added.code, 0, "{added:?}");
    assert!(!added.stdout.contains("plain-secret-1"), "{added:?}");
    assert!(!added.stderr.contains("plain-secret-1"), "{added:?}");
}
