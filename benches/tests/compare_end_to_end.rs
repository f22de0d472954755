//! `vane-bench compare` end to end at a tiny scale: real three-member etcd 3.4 and Vane
//! clusters, one at a time, through every section. What is checked is the plumbing
//! (each system measured on its own cluster, figures and footprints filled in, the
//! summary written and readable), never a speed: these machines are shared.

use vane_bench::compare::{CompareOptions, CompareSummary, SystemKind};

fn tiny_options(results_dir: &std::path::Path, work_dir: &std::path::Path) -> CompareOptions {
    let vaned = vane_cluster::locate_vaned(None)
        .unwrap_or_else(|error| panic!("this test runs real vaned processes: {error}"));
    CompareOptions {
        vaned: Some(vaned),
        etcd: "etcd".into(),
        repetitions: 1,
        duration_secs: 1,
        key_count: 200,
        value_bytes: 64,
        footprint_puts: 200,
        history_revisions: 400,
        recovery_keys: 500,
        watch_watchers: 40,
        watch_streams: 4,
        watch_conns: 2,
        watch_keys: 10,
        watch_rate: 50.0,
        watch_duration_secs: 1,
        election_timeout_ms: 1_000,
        results_dir: results_dir.to_path_buf(),
        work_dir: Some(work_dir.to_path_buf()),
        only: ["put-1", "store", "recovery", "watch-scale"]
            .map(str::to_owned)
            .to_vec(),
        seed: 1,
    }
}

fn systems_of<R>(runs: &[R], system_of: impl Fn(&R) -> SystemKind) -> Vec<SystemKind> {
    runs.iter().map(system_of).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_measures_each_system_on_its_own_cluster_and_writes_a_readable_summary() {
    let results_dir = tempfile::tempdir().expect("create a results directory");
    let work_dir = tempfile::tempdir().expect("create a work directory");
    let summary = vane_bench::compare::run(tiny_options(results_dir.path(), work_dir.path()))
        .await
        .expect("the comparison runs");
    assert!(
        summary.failures.is_empty(),
        "failed runs: {:#?}",
        summary.failures
    );
    let alternation = SystemKind::ALTERNATION.to_vec();

    assert_eq!(summary.workloads.len(), 1, "--only put-1");
    let put = &summary.workloads[0];
    assert_eq!(put.row, "put-1");
    assert_eq!(systems_of(&put.runs, |run| run.system), alternation);
    for run in &put.runs {
        assert!(run.throughput_ops_per_sec > 0.0, "{run:?}");
        assert_eq!(run.errors, 0, "{run:?}");
        assert_eq!(run.nodes.len(), 3, "{run:?}");
        assert!(
            run.nodes
                .iter()
                .all(|node| node.rss_bytes > 0 && node.peak_rss_bytes >= node.rss_bytes),
            "{run:?}"
        );
        assert!(run.nodes.iter().all(|node| node.disk_bytes > 0), "{run:?}");
        assert!(
            run.cpu_us_per_op.is_some_and(|cpu| cpu > 0.0),
            "the members worked for the puts: {run:?}"
        );
        assert!(
            run.generator_cpu_us_per_op.is_some_and(|cpu| cpu > 0.0),
            "the load generator worked for them: {run:?}"
        );
        assert!(
            summary.results_dir.join(&run.report_file).is_file(),
            "{run:?}"
        );
    }

    assert_eq!(systems_of(&summary.store, |run| run.system), alternation);
    for run in &summary.store {
        assert!(run.reads_fresh_ops_per_sec > 0.0, "{run:?}");
        assert!(run.reads_after_history_ops_per_sec > 0.0, "{run:?}");
        assert!(run.history_puts_per_sec > 0.0, "{run:?}");
        assert_eq!(run.errors, 0, "{run:?}");
        assert_eq!(run.footprint.len(), 3, "{run:?}");
        assert!(
            run.footprint.iter().all(|node| node.written_bytes > 0),
            "every member wrote its puts to the disk: {run:?}"
        );
    }

    assert_eq!(systems_of(&summary.recovery, |run| run.system), alternation);
    for run in &summary.recovery {
        assert_eq!(run.keys, 500);
        assert!(run.serving_after_secs > 0.0, "{run:?}");
        let restarted = run
            .nodes_after
            .iter()
            .find(|node| node.member == run.member)
            .expect("the restarted member is listed");
        assert!(restarted.rss_bytes > 0, "it runs again: {run:?}");
    }

    assert_eq!(
        systems_of(&summary.watch_scale, |run| run.system),
        alternation
    );
    for run in &summary.watch_scale {
        assert!(run.events_expected > 0, "{run:?}");
        assert_eq!(run.errors, 0, "{run:?}");
        assert!(run.peak_rss_bytes >= run.rss_before_bytes, "{run:?}");
    }
    let etcd_watch = &summary.watch_scale[0];
    assert_eq!(
        (etcd_watch.events_received, etcd_watch.events_lost),
        (etcd_watch.events_expected, 0),
        "the reference delivers every event: {etcd_watch:?}"
    );

    let written = std::fs::read_to_string(summary.results_dir.join("summary.json"))
        .expect("summary.json is written");
    let read_back: CompareSummary = serde_json::from_str(&written).expect("it parses");
    assert_eq!(read_back, summary);
    let table = std::fs::read_to_string(summary.results_dir.join("summary.txt"))
        .expect("summary.txt is written");
    for heading in ["\nworkloads", "\nstore", "\nrecovery", "\nwatch-scale"] {
        assert!(
            table.contains(heading),
            "{heading:?} missing from:\n{table}"
        );
    }
    assert!(
        std::fs::read_dir(work_dir.path())
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(true),
        "every cluster directory was removed after its run"
    );
}
