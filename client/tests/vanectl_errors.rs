//! Every way vanectl fails ends in one readable `Error:` line on stderr and a non-zero
//! exit code (etcdctl's), never a stack of messages, a usage dump or a hang.

mod vanectl_support;

use std::net::TcpListener;

use vanectl_support::{Output, start_cluster, vanectl};

/// A port nothing listens on: bound, then released.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("127.0.0.1:{port}")
}

/// Asserts that `output` failed with `code` and exactly one stderr line starting with
/// `Error: ` and containing every one of `words`.
fn assert_one_error_line(what: &str, output: &Output, code: i32, words: &[&str]) {
    let lines: Vec<&str> = output.stderr.lines().collect();
    assert_eq!(output.code, code, "{what}: exit code; {output:?}");
    assert_eq!(lines.len(), 1, "{what}: one stderr line; {output:?}");
    assert!(lines[0].starts_with("Error: "), "{what}: {output:?}");
    for word in words {
        assert!(
            lines[0].contains(word),
            "{what}: {word:?} in {:?}",
            lines[0]
        );
    }
}

#[test]
fn an_unreachable_cluster_is_one_line_naming_the_endpoints() {
    let nowhere = closed_port();
    for args in [
        vec!["get", "foo"],
        vec!["put", "foo", "bar"],
        vec!["member", "list"],
        vec!["watch", "foo"],
        vec!["lease", "grant", "10"],
    ] {
        let output = vanectl(&nowhere, &args, None);
        assert_one_error_line(
            &args.join(" "),
            &output,
            1,
            &[
                &format!("cannot reach any of {nowhere} (connection refused)"),
                "is vaned running? check --endpoints",
            ],
        );
        assert!(output.stdout.is_empty(), "{output:?}");
    }
}

#[test]
fn bad_command_lines_are_refused_before_connecting() {
    // Nothing listens there: these must fail on their arguments alone.
    let nowhere = closed_port();
    let cases: Vec<(Vec<&str>, i32, Vec<&str>)> = vec![
        (
            vec!["get", "foo", "--bogus"],
            1,
            vec!["--bogus", "vanectl get --help"],
        ),
        (vec!["frobnicate"], 1, vec!["frobnicate"]),
        (vec!["get"], 128, vec!["<KEY>"]),
        (
            vec!["lease", "revoke", "zz"],
            128,
            vec!["expecting ID in hex"],
        ),
        (vec!["get", "foo", "--sort-by=SIZE"], 128, vec!["SIZE"]),
        (vec!["get", "foo", "-w", "yaml"], 4, vec!["yaml"]),
        (
            vec!["get", "foo", "-w", "table"],
            4,
            vec!["table not supported as output format"],
        ),
        (
            vec![
                "member",
                "add",
                "n4",
                "--peer-urls=http://a:1",
                "-w",
                "fields",
            ],
            4,
            vec!["fields not supported"],
        ),
        (
            vec!["get", "foo", "--print-value-only", "-w", "json"],
            128,
            vec!["print-value-only"],
        ),
        (
            vec!["get", "k", "--prefix", "--from-key"],
            128,
            vec!["cannot be set at the same time"],
        ),
        (
            vec!["del", "a", "b", "--prefix"],
            128,
            vec!["only accept one argument"],
        ),
        (
            vec!["put", "foo"],
            128,
            vec!["put command needs 1 argument"],
        ),
        (
            vec!["--command-timeout=soon", "get", "foo"],
            128,
            vec!["invalid duration"],
        ),
    ];
    for (args, code, words) in cases {
        let output = vanectl(&nowhere, &args, Some(""));
        assert_one_error_line(&args.join(" "), &output, code, &words);
    }
}

#[test]
fn txn_syntax_errors_name_the_line() {
    let nowhere = closed_port();
    let output = vanectl(
        &nowhere,
        &["txn"],
        Some("value(\"a\") = \"1\"\nvalue(\"b\") == \"2\"\n\nput a 2\n\n"),
    );
    assert_one_error_line(
        "bad operator",
        &output,
        3,
        &["txn line 2:", "malformed comparison", "=, !=, < or >"],
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("change.txn");
    std::fs::write(&file, "mod(\"a\") > \"3\"\n\nput a 2\nfrobnicate a\n\n").expect("write");
    let output = vanectl(
        &nowhere,
        &["txn", "--file", file.to_str().expect("utf-8")],
        None,
    );
    assert_one_error_line(
        "bad request",
        &output,
        3,
        &["txn line 4:", "invalid request \"frobnicate a\""],
    );

    let output = vanectl(&nowhere, &["txn"], Some(""));
    assert_one_error_line("empty", &output, 3, &["txn line 1: empty input"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_revisions_say_where_history_starts() {
    let (_dir, cluster) = start_cluster(1).await;
    let endpoint = cluster.endpoints().join(",");
    for value in ["1", "2", "3"] {
        let output = vanectl(&endpoint, &["put", "k", value], None);
        assert_eq!(output.code, 0, "{output:?}");
    }
    // Revisions: 2, 3, 4 for the three puts.
    let output = vanectl(&endpoint, &["compaction", "4"], None);
    assert_eq!(output.stdout, "compacted revision 4\n", "{output:?}");

    let output = vanectl(&endpoint, &["get", "k", "--rev=2"], None);
    assert_one_error_line(
        "get below the compaction",
        &output,
        1,
        &[
            "etcdserver: mvcc: required revision has been compacted",
            "--rev",
        ],
    );

    let output = vanectl(&endpoint, &["watch", "k", "--rev=2"], None);
    assert_one_error_line(
        "watch below the compaction",
        &output,
        5,
        &["revision 2 has been compacted", "--rev 4 or later"],
    );

    let output = vanectl(&endpoint, &["compaction", "3"], None);
    assert_one_error_line(
        "compaction below the compaction",
        &output,
        1,
        &[
            "required revision has been compacted",
            "already compacted past revision 3",
        ],
    );

    let output = vanectl(&endpoint, &["get", "k", "--rev=99"], None);
    assert_one_error_line(
        "future revision",
        &output,
        1,
        &["etcdserver: mvcc: required revision is a future revision"],
    );

    // From the compacted revision itself, history is still there.
    let output = vanectl(
        &endpoint,
        &["watch", "k", "--rev=4", "--max-events=1"],
        None,
    );
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(output.stdout, "PUT\nk\n3\n");
}
