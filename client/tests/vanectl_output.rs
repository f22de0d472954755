//! vanectl prints what etcdctl 3.4 prints, byte for byte, in every output format.
//!
//! Two three-member Vane clusters, A and B, receive the same writes: etcdctl writes to A
//! and vanectl to B, so both see the same revisions and the outputs of writes compare
//! with only ids and terms masked. Reads (and watches, member and endpoint reports,
//! snapshots) run both tools against the same member of A, so their outputs compare
//! exactly, up to timings. Error lines compare by prefix: vanectl keeps etcd's message
//! first and may add what to do next.
//!
//! Deliberate differences, not compared here: vanectl refuses an unsupported `-w` before
//! changing anything (etcdctl changes, then fails), words clap's argument errors its own
//! way, prints `VANED_*` start-up settings after `member add`, sorts members by ID, and
//! names itself in `version`. `vanectl_errors` pins those.

mod vanectl_support;

use std::path::Path;
use std::time::Duration;

use vanectl_support::{
    HEADER_ID_PREFIXES, Output, etcdctl_command, etcdctl_in, mask_after, start_cluster,
    stdout_until, vanectl_in,
};

/// Where a step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A change: etcdctl against cluster A, vanectl against cluster B.
    Write,
    /// Read-only: both against the first member of cluster A.
    Read,
    /// Read-only, both against every member of cluster A.
    ReadAll,
    /// A watch of cluster A's first member that ends after three events: vanectl stops
    /// by itself (`--max-events=3`); etcdctl never does, so it is read until it has
    /// printed as much as vanectl and then killed.
    Watch,
}

/// How outputs are made comparable beyond masking ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Normalize {
    /// Compare as printed.
    Exact,
    /// Compare the lines sorted: vaned lists members in an unspecified order, while
    /// vanectl sorts them by ID as etcd does.
    SortLines,
    /// Mask durations and remaining TTLs, which depend on when the command ran.
    Timing,
    /// Mask database sizes, which change as RocksDB flushes in the background.
    Sizes,
    /// Compare the first line only, member ids masked: `member add` then prints the new
    /// member's settings, as `ETCD_*` variables for etcd and `VANED_*` for vaned.
    FirstLine,
}

struct Step {
    kind: Kind,
    args: Vec<&'static str>,
    stdin: Option<&'static str>,
    normalize: Normalize,
}

fn step(kind: Kind, args: &[&'static str]) -> Step {
    Step {
        kind,
        args: args.to_vec(),
        stdin: None,
        normalize: Normalize::Exact,
    }
}

fn write(args: &[&'static str]) -> Step {
    step(Kind::Write, args)
}

fn read(args: &[&'static str]) -> Step {
    step(Kind::Read, args)
}

impl Step {
    fn stdin(mut self, input: &'static str) -> Step {
        self.stdin = Some(input);
        self
    }

    fn normalize(mut self, how: Normalize) -> Step {
        self.normalize = how;
        self
    }
}

const TXN: &str = "value(\"foo\") = \"baz\"\nmod(\"zeta\") > \"0\"\n\nput foo qux\nget foo\ndel fop\nget nothing\n\nput foo nope\n\n";
const TXN_FAILING: &str = "value(\"foo\") = \"no such value\"\n\nput foo qux\n\nput foo nope --prev-kv\nget fo --prefix --keys-only\n\n";

fn script() -> Vec<Step> {
    use Normalize::*;
    vec![
        write(&["put", "foo", "bar"]),
        write(&["put", "foo", "baz", "--prev-kv"]),
        read(&["get", "foo"]),
        read(&["get", "foo", "-w", "json"]),
        read(&["get", "foo", "-w", "fields"]),
        read(&["get", "foo", "-w", "table"]),
        write(&["put", "foo2", "x"]),
        write(&["put", "fop", "y"]),
        write(&["put", "zeta", "z", "-w", "json"]),
        write(&["put", "multi", "line one\nline \"two\"\t\u{1}"]),
        write(&["put", "k1", "v1", "--prev-kv", "-w", "fields"]),
        write(&["put", "k1", "v2", "--prev-kv", "-w", "json"]),
        read(&["get", "fo", "--prefix"]),
        read(&["get", "foo", "--rev=2"]),
        read(&["get", "fo", "--prefix", "--limit=1", "-w", "json"]),
        read(&[
            "get",
            "fo",
            "--prefix",
            "--sort-by=MODIFY",
            "--order=DESCEND",
        ]),
        read(&[
            "get",
            "fo",
            "--prefix",
            "--sort-by=VALUE",
            "--order=ASCEND",
            "-w",
            "fields",
        ]),
        read(&["get", "fo", "--prefix", "--keys-only"]),
        read(&["get", "fo", "--prefix", "--keys-only", "-w", "json"]),
        read(&["get", "foo", "--from-key"]),
        read(&["get", "a", "z"]),
        read(&["get", "foo", "--hex"]),
        read(&["get", "fo", "--prefix", "--print-value-only"]),
        read(&["get", "multi", "-w", "fields"]),
        read(&["get", "multi", "-w", "json"]),
        read(&["get", "fo", "--prefix", "--consistency=s"]),
        read(&["get", "", "--prefix", "-w", "json"]),
        read(&["get", "nothing", "-w", "fields"]),
        write(&["txn"]).stdin(TXN),
        write(&["txn", "-w", "json"]).stdin(TXN),
        write(&["txn", "-w", "fields"]).stdin(TXN),
        write(&["txn", "-w", "json"]).stdin(TXN_FAILING),
        write(&["txn", "-i"]).stdin(TXN_FAILING),
        write(&["put", "w", "1"]),
        write(&["put", "w", "2"]),
        write(&["del", "w"]),
        step(Kind::Watch, &["watch", "w", "--rev=1"]),
        step(Kind::Watch, &["watch", "w", "--rev=1", "--prev-kv"]),
        step(
            Kind::Watch,
            &["watch", "w", "--rev=1", "--prev-kv", "-w", "json"],
        ),
        step(
            Kind::Watch,
            &["watch", "w", "--rev=1", "--prev-kv", "-w", "fields"],
        ),
        step(Kind::Watch, &["watch", "", "--prefix", "--rev=1", "--hex"]),
        step(
            Kind::Watch,
            &[
                "watch",
                "w",
                "--rev=1",
                "--",
                "sh",
                "-c",
                "env | grep ^ETCD_WATCH_ | sort",
            ],
        ),
        write(&["del", "foo2"]),
        write(&["del", "fo", "--prefix", "--prev-kv"]),
        write(&["del", "k", "--prefix", "--prev-kv", "-w", "json"]),
        write(&["del", "nothing"]),
        write(&["del", "nothing", "-w", "fields"]),
        write(&["lease", "grant", "100"]),
        write(&["put", "lk", "lv", "--lease={lease}"]),
        write(&["put", "lk2", "lv2", "--lease={lease}"]),
        read(&["lease", "timetolive", "{lease}"]).normalize(Timing),
        read(&["lease", "timetolive", "{lease}", "--keys"]).normalize(Timing),
        read(&["lease", "timetolive", "{lease}", "--keys", "-w", "json"]).normalize(Timing),
        read(&["lease", "timetolive", "{lease}", "--keys", "-w", "fields"]).normalize(Timing),
        read(&["lease", "list"]),
        read(&["lease", "list", "-w", "json"]),
        read(&["lease", "list", "-w", "fields"]),
        write(&["lease", "keep-alive", "--once", "{lease}"]),
        write(&["lease", "keep-alive", "--once", "{lease}", "-w", "json"]),
        write(&["lease", "grant", "100", "-w", "json"]),
        write(&["lease", "grant", "100", "-w", "fields"]),
        write(&["lease", "revoke", "{lease}"]),
        read(&["lease", "timetolive", "{lease}"]),
        read(&["lease", "timetolive", "{lease}", "-w", "json"]),
        write(&["lease", "revoke", "1234"]),
        write(&["lease", "grant", "100", "-w", "table"]),
        read(&["member", "list"]).normalize(SortLines),
        read(&["member", "list", "-w", "table"]).normalize(SortLines),
        write(&[
            "member",
            "add",
            "n9",
            "--learner",
            "--peer-urls=http://127.0.0.1:1",
        ])
        .normalize(FirstLine),
        read(&["member", "list"]).normalize(SortLines),
        write(&[
            "member",
            "update",
            "{member}",
            "--peer-urls=http://127.0.0.1:2",
        ])
        .normalize(FirstLine),
        write(&["member", "promote", "{member}"]),
        write(&["member", "remove", "{member}"]).normalize(FirstLine),
        write(&["member", "remove", "1234"]),
        write(&["member", "promote", "1234"]),
        write(&["member", "update", "1234", "--peer-urls=http://127.0.0.1:3"]),
        write(&["lease", "grant", "9999999999"]),
        step(Kind::ReadAll, &["endpoint", "status"]).normalize(Sizes),
        step(Kind::ReadAll, &["endpoint", "status", "-w", "json"]).normalize(Sizes),
        step(Kind::ReadAll, &["endpoint", "status", "-w", "fields"]).normalize(Sizes),
        step(Kind::ReadAll, &["endpoint", "status", "-w", "table"]).normalize(Sizes),
        step(Kind::ReadAll, &["endpoint", "health"]).normalize(Timing),
        step(Kind::ReadAll, &["endpoint", "health", "-w", "json"]).normalize(Timing),
        step(Kind::ReadAll, &["endpoint", "health", "-w", "fields"]).normalize(Timing),
        step(Kind::ReadAll, &["endpoint", "health", "-w", "table"]).normalize(Timing),
        read(&["snapshot", "save", "saved.db"]),
        write(&["compaction", "4"]),
        read(&["get", "foo", "--rev=3"]),
        read(&["get", "zeta", "--rev=99"]),
        write(&["compaction", "2"]),
        write(&["put", "", "empty-key"]),
        read(&["get", "", "--prefix", "-w", "json"]),
    ]
}

/// Ids and terms that differ between cluster A and cluster B.
fn mask_cluster(text: &str) -> String {
    let mut prefixes = HEADER_ID_PREFIXES.to_vec();
    prefixes.extend(["\"ID\":", "\"ID\" : ", "\"id\":"]);
    let text = mask_after(text, &prefixes, false);
    mask_after(&text, &["lease "], true)
}

/// Durations, remaining TTLs and the order of concurrent health checks depend on
/// when a command ran: keep the words and the structure, drop numbers and alignment.
fn mask_timing(text: &str) -> String {
    let mut lines: Vec<String> = text
        .replace("},{", "}\n{")
        .lines()
        .map(|line| {
            // A duration is digits, dots and its unit letters (`850µs`, `1.2ms`, `1.003s`):
            // all of it goes, since a slow answer changes the unit, not only the digits.
            let mut kept = String::new();
            let mut in_number = false;
            for c in line.chars() {
                if c.is_ascii_digit() || c == '.' {
                    in_number = true;
                } else if !(in_number && "hmsµnu".contains(c)) {
                    in_number = false;
                    kept.push(c);
                }
            }
            let mut collapsed = String::new();
            for c in kept.chars() {
                if (c == ' ' || c == '-') && collapsed.ends_with(c) {
                    continue;
                }
                collapsed.push(c);
            }
            collapsed
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

/// Database sizes: `"dbSize":N`, `"DBSize" : N` and the humanized `N kB` column.
fn mask_sizes(text: &str) -> String {
    let text = mask_after(
        text,
        &["\"dbSize\":", "\"dbSizeInUse\":", "\"DBSize\" : "],
        false,
    );
    let mut out = String::new();
    for (i, piece) in text.split(" kB").enumerate() {
        if i > 0 {
            out.push_str(" kB");
        }
        let digits = piece
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .count();
        let keep = piece.len() - digits;
        out.push_str(&piece[..keep]);
        // Only the pieces followed by " kB" end in a size.
        if digits > 0 && i + 1 < text.split(" kB").count() {
            out.push('N');
        } else {
            out.push_str(&piece[keep..]);
        }
    }
    out
}

/// Masks ids and terms always: between clusters A and B they differ, and within A the
/// member that answers may (vanectl spreads reads over the members, etcdctl does not).
fn normalized(output: &Output, how: Normalize) -> (i32, String, String) {
    let mut stdout = mask_cluster(&output.stdout);
    let mut stderr = mask_cluster(&output.stderr);
    match how {
        Normalize::Exact => {}
        Normalize::SortLines => {
            let mut lines: Vec<&str> = stdout.lines().collect();
            lines.sort();
            stdout = lines.join("\n");
        }
        Normalize::Sizes => stdout = mask_sizes(&stdout),
        Normalize::FirstLine => {
            // `%16x` pads a short id with spaces: collapse every run of them.
            let first = stdout
                .lines()
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            stdout = mask_after(&first, &["Member ", "cluster "], true);
        }
        Normalize::Timing => {
            stdout = mask_timing(&stdout);
            // etcdctl 3.4 reports simple health on stderr.
            stderr = mask_timing(&stderr);
        }
    }
    (output.code, stdout, stderr)
}

/// The differences between etcdctl's and vanectl's runs of one step, if any.
fn compare(label: &str, want: &Output, got: &Output, how: Normalize) -> Option<String> {
    let (want_code, want_out, want_err) = normalized(want, how);
    let (got_code, got_out, got_err) = normalized(got, how);
    let mut problems = Vec::new();
    if want_code != got_code {
        problems.push(format!("exit {want_code} vs {got_code}"));
    }
    if want_out != got_out {
        problems.push(format!(
            "stdout\n    etcdctl: {want_out:?}\n    vanectl: {got_out:?}"
        ));
    }
    let want_errors: Vec<&str> = want_err
        .lines()
        .filter(|l| l.starts_with("Error:"))
        .collect();
    let got_errors: Vec<&str> = got_err
        .lines()
        .filter(|l| l.starts_with("Error:"))
        .collect();
    let errors_match = want_errors.len() == got_errors.len()
        && want_errors
            .iter()
            .zip(&got_errors)
            .all(|(w, g)| g.starts_with(w));
    if !errors_match {
        problems.push(format!(
            "errors\n    etcdctl: {want_errors:?}\n    vanectl: {got_errors:?}"
        ));
    }
    let reports = |err: &str| -> Vec<String> {
        err.lines()
            .filter(|l| l.contains(" is healthy") || l.contains(" is unhealthy"))
            .map(str::to_string)
            .collect()
    };
    if reports(&want_err) != reports(&got_err) {
        problems.push(format!(
            "stderr\n    etcdctl: {want_err:?}\n    vanectl: {got_err:?}"
        ));
    }
    (!problems.is_empty()).then(|| format!("{label}: {}", problems.join("; ")))
}

/// The id in `lease <id> granted ...` or `Member <id> added ...`.
fn id_of(output: &Output) -> String {
    output
        .stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no lease id in {output:?}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanectl_prints_what_etcdctl_prints() {
    let (_dir_a, cluster_a) = start_cluster(3).await;
    let (_dir_b, cluster_b) = start_cluster(3).await;
    // etcdctl 3.4's `endpoint status` cannot use http:// URLs against a non-etcd server
    // (it sends the URL as the HTTP/2 authority): give both tools host:port.
    let host_port = |urls: Vec<String>| -> Vec<String> {
        urls.iter()
            .map(|u| u.trim_start_matches("http://").to_string())
            .collect()
    };
    let a_all = host_port(cluster_a.endpoints()).join(",");
    let a_one = host_port(cluster_a.endpoints())[0].clone();
    let b_all = host_port(cluster_b.endpoints()).join(",");
    let etcdctl_dir = tempfile::tempdir().expect("temp dir");
    let vanectl_dir = tempfile::tempdir().expect("temp dir");
    let (e_dir, v_dir): (&Path, &Path) = (etcdctl_dir.path(), vanectl_dir.path());

    let mut mismatches = Vec::new();
    // Lease and member ids differ between the clusters: `{lease}` and `{member}` in a
    // step stand for the ones the step that created them printed.
    let mut lease_a = String::new();
    let mut lease_b = String::new();
    let mut member_a = String::new();
    let mut member_b = String::new();
    let steps = script();
    for s in &steps {
        let step_started = std::time::Instant::now();
        let with_ids = |lease: &str, member: &str| -> Vec<String> {
            s.args
                .iter()
                .map(|a| a.replace("{lease}", lease).replace("{member}", member))
                .collect()
        };
        let (e_endpoints, v_endpoints, e_args, v_args) = match s.kind {
            Kind::Write => (
                &a_all,
                &b_all,
                with_ids(&lease_a, &member_a),
                with_ids(&lease_b, &member_b),
            ),
            Kind::Read | Kind::Watch => (
                &a_one,
                &a_one,
                with_ids(&lease_a, &member_a),
                with_ids(&lease_a, &member_a),
            ),
            Kind::ReadAll => (
                &a_all,
                &a_all,
                with_ids(&lease_a, &member_a),
                with_ids(&lease_a, &member_a),
            ),
        };
        let (e_args, mut v_args): (Vec<&str>, Vec<&str>) = (
            e_args.iter().map(String::as_str).collect(),
            v_args.iter().map(String::as_str).collect(),
        );
        let label = format!("{:?} {}", s.kind, s.args.join(" "));
        if s.kind == Kind::Watch {
            let command_at = v_args
                .iter()
                .position(|a| *a == "--")
                .unwrap_or(v_args.len());
            v_args.insert(command_at, "--max-events=3");
            let got = vanectl_in(None, v_endpoints, &v_args, None);
            // Ids are masked first: members' ids differ in length, and etcdctl may be
            // answered by another member than vanectl.
            let wanted = mask_cluster(&got.stdout);
            let want = stdout_until(
                etcdctl_command(e_endpoints, &e_args),
                |so_far| mask_cluster(so_far).len() >= wanted.len(),
                Duration::from_secs(60),
            );
            // etcdctl may have printed more events than the three in the same read.
            let want = mask_cluster(&want);
            let want = want.get(..wanted.len()).unwrap_or(&want).to_string();
            if step_started.elapsed() > Duration::from_secs(5) {
                eprintln!(
                    "slow step ({} ms): {label}",
                    step_started.elapsed().as_millis()
                );
            }
            if got.code != 0 || want != wanted {
                mismatches.push(format!(
                    "{label}: exit {}\n    etcdctl: {want:?}\n    vanectl: {:?} {:?}",
                    got.code, got.stdout, got.stderr
                ));
            }
            continue;
        }
        let want = etcdctl_in(Some(e_dir), e_endpoints, &e_args, s.stdin);
        let got = vanectl_in(Some(v_dir), v_endpoints, &v_args, s.stdin);
        if s.args.starts_with(&["member", "add"]) {
            member_a = id_of(&want);
            member_b = id_of(&got);
        }
        if s.args == ["lease", "grant", "100"] && lease_a.is_empty() {
            lease_a = id_of(&want);
            lease_b = id_of(&got);
        }
        if let Some(problem) = compare(&label, &want, &got, s.normalize) {
            mismatches.push(problem);
        }
        if step_started.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "slow step ({} ms): {label}",
                step_started.elapsed().as_millis()
            );
        }
    }

    assert!(
        std::fs::metadata(e_dir.join("saved.db")).is_ok()
            && std::fs::metadata(v_dir.join("saved.db")).is_ok(),
        "both tools saved a snapshot"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} commands print differently:\n{}",
        mismatches.len(),
        steps.len(),
        mismatches.join("\n")
    );
}
