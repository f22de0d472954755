//! The smoke suite, as CI runs it: `vane-jepsen smoke` against the `vaned` and
//! `vaned-planted` the last build left (this test builds nothing). Every workload must
//! come out valid under faults on the real binary, and both planted bugs (stale reads,
//! acknowledgement before fsync) must be caught. Takes about six minutes.
//!
//! It needs root and network namespaces; without them it says so and skips, because
//! there is no honest way to run it in part.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why the smoke cannot run here, if it cannot.
fn missing_privileges() -> Option<String> {
    if let Err(error) = vane_jepsen::netns::require_root() {
        return Some(error.to_string());
    }
    let probe = format!("vane-jepsen-probe-{}", std::process::id());
    let added = Command::new("ip")
        .args(["netns", "add", &probe])
        .stdin(Stdio::null())
        .output();
    match added {
        Ok(output) if output.status.success() => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).status();
            None
        }
        Ok(output) => Some(format!(
            "`ip netns add` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Some(format!("cannot run `ip`: {error}")),
    }
}

fn binaries() -> (PathBuf, PathBuf) {
    let vaned = vane_cluster::locate_vaned(None).unwrap_or_else(|error| {
        panic!("{error}\nbuild it with `cargo build -p vane-node --bin vaned`")
    });
    let planted = vaned.with_file_name("vaned-planted");
    assert!(
        planted.is_file(),
        "no {} : build it with `cargo build -p vane-node --features planted-bugs --bin vaned-planted` \
         (only that --bin, so the normal vaned is not rebuilt with the feature)",
        planted.display()
    );
    (vaned, planted)
}

#[test]
fn every_workload_is_valid_under_faults_and_both_planted_bugs_are_caught() {
    if let Some(reason) = missing_privileges() {
        eprintln!("SKIPPED: the jepsen-style smoke needs root and network namespaces: {reason}");
        return;
    }
    let (vaned, planted) = binaries();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "jepsen-smoke-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_vane-jepsen"))
        .arg("smoke")
        .arg("--out")
        .arg(&out)
        .arg("--vaned")
        .arg(&vaned)
        .arg("--vaned-planted")
        .arg(&planted)
        .stdin(Stdio::null())
        .output()
        .expect("vane-jepsen runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the smoke did not go as expected ({}); the run directories (history, verdicts, timeline, node logs) are in {}",
        output.status,
        out.display()
    );
    let passes = stdout
        .lines()
        .filter(|line| line.starts_with("vane-jepsen: PASS"))
        .count();
    assert_eq!(
        passes, 7,
        "five workloads and two planted-bug runs must pass"
    );
    for bug in ["stale-reads", "ack-before-fsync"] {
        assert!(
            stdout
                .lines()
                .any(|line| line.contains(&format!("planted-bug={bug}"))
                    && line.contains("verdict=INVALID")),
            "the planted {bug} bug must be reported as a violation"
        );
    }
}
