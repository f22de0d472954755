//! The README's governance walkthrough, run exactly as written (the block between its
//! `walkthrough:begin` and `walkthrough:end` markers) with `bash -e` against three real
//! members, with etcdctl 3.4 and this build's vanectl: users and auth, a namespace with a
//! YAML schema and a two-approver policy, an invalid value refused, a change request
//! previewed and approved by two reviewers, a watcher seeing it arrive, a rollback,
//! environments resolved, and the audit verified.

mod client_common;

use std::process::Command;

use client_common::TestCluster;

/// The walkthrough's shell text, from the README.
fn walkthrough() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let begin = readme
        .find("<!-- walkthrough:begin -->")
        .expect("the README marks the walkthrough's start");
    let end = readme
        .find("<!-- walkthrough:end -->")
        .expect("the README marks the walkthrough's end");
    let block = &readme[begin..end];
    let start = block.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let stop = block.rfind("```").expect("the block's end");
    block[start..stop].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_runs_as_written() {
    let cluster = TestCluster::start(3).await;
    let endpoints = cluster.cluster.endpoints().join(",");
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("walkthrough.sh");
    std::fs::write(&script, walkthrough()).expect("write the script");
    let vanectl_dir = std::path::Path::new(env!("CARGO_BIN_EXE_vanectl"))
        .parent()
        .expect("vanectl's directory")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        vanectl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::task::block_in_place(|| {
        Command::new("timeout")
            .args(["300", "bash", "-e"])
            .arg(&script)
            .current_dir(dir.path())
            .env("PATH", path)
            .env("ETCDCTL_API", "3")
            .env("VANECTL_ENDPOINTS", &endpoints)
            .env("ETCDCTL_ENDPOINTS", &endpoints)
            .env("VANECTL_COMMAND_TIMEOUT", "20s")
            .output()
            .expect("run bash")
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = format!(
        "--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n{}",
        cluster.logs_tail()
    );
    assert!(output.status.success(), "the walkthrough failed:\n{shown}");
    for expected in [
        "Namespace app created",
        "refused: invalid",
        "refused: needs approvals",
        "put /app/base/db (namespace app, mod revision 0): accepted",
        "watchers: 1 would receive this change",
        "refused: authors do not approve their own",
        "approved by bob",
        "APPLIED at revision",
        "PUT\n/app/base/db\n{\"max_connections\": 50}",
        "~ /max_connections: 50 -> 80",
        "{\"max_connections\": 200}\nlayer: prod",
        "{\"max_connections\": 50}\nlayer: base",
        "audit intact",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{shown}");
    }
    // The rollback brought the first value back, and history lists all three versions.
    assert!(
        stdout.contains("{\"max_connections\": 50}\n"),
        "the rollback's value is missing:\n{shown}"
    );
    assert!(
        stdout.contains("invalid: vane: value of /app/base/db is invalid at /max_connections")
            && stdout
                .contains("(schema of namespace app); and vane: write to /app/base/db needs 2"),
        "the schema refusal names the pointer:\n{shown}"
    );
    assert!(
        stderr.contains("needs 2 approval(s) in namespace app"),
        "the direct write's refusal names the policy:\n{shown}"
    );
}
