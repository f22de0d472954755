//! Every workload, run for about a second with small parameters against a real etcd 3.4:
//! operations complete, nothing fails, the report survives JSON, and watchers receive
//! every event exactly once. No assertion is about speed: these machines are shared.

mod support;

use std::process::Command;

use support::EtcdProcess;
use vane_bench::{BenchError, OperationKind, Report, Workload, WorkloadConfig};

/// A small, short run of `workload` against `etcd`.
fn small_config(etcd: &EtcdProcess, workload: Workload) -> WorkloadConfig {
    let mut config = WorkloadConfig::new(workload, vec![etcd.client_url.clone()]);
    config.clients = 4;
    config.duration_secs = Some(1);
    config.key_count = 200;
    config.value_bytes = 32;
    config.request_timeout_ms = 10_000;
    config.seed = Some(7);
    config
}

async fn run_against(etcd: &EtcdProcess, config: WorkloadConfig) -> Report {
    match vane_bench::run(config).await {
        Ok(report) => report,
        Err(error) => panic!("run failed: {error}\netcd log:\n{}", etcd.log()),
    }
}

/// What every successful run must show: operations of `kind` done, no error, and a JSON
/// form that reads back to the same report.
fn assert_completed_cleanly(report: &Report, kind: OperationKind) {
    let table = report.to_table();
    let count = report
        .operation(kind)
        .map_or(0, |operation| operation.count);
    assert!(
        count > 0,
        "no {} operation completed:\n{table}",
        kind.name()
    );
    assert!(
        report.errors.is_empty(),
        "errors: {:?}\n{table}",
        report.errors
    );
    let json = report.to_json().expect("serialise the report");
    assert_eq!(
        &Report::from_json(&json).expect("parse the report"),
        report,
        "JSON round trip"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_workload_completes_without_errors() {
    let etcd = EtcdProcess::start().await;
    let report = run_against(&etcd, small_config(&etcd, Workload::Put)).await;
    assert_completed_cleanly(&report, OperationKind::Put);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_workload_reads_prepopulated_keys_without_errors() {
    let etcd = EtcdProcess::start().await;
    let report = run_against(&etcd, small_config(&etcd, Workload::Get)).await;
    assert_completed_cleanly(&report, OperationKind::Get);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_serializable_workload_reads_prepopulated_keys_without_errors() {
    let etcd = EtcdProcess::start().await;
    let report = run_against(&etcd, small_config(&etcd, Workload::GetSerializable)).await;
    assert_completed_cleanly(&report, OperationKind::GetSerializable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_workload_returns_every_key_of_each_range() {
    let etcd = EtcdProcess::start().await;
    let report = run_against(
        &etcd,
        small_config(&etcd, Workload::Range { range_keys: 50 }),
    )
    .await;
    // A short range would have been counted as a `RangeShort` error.
    assert_completed_cleanly(&report, OperationKind::Range);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_workload_reports_conflicts_apart_from_successes() {
    let etcd = EtcdProcess::start().await;
    let mut config = small_config(
        &etcd,
        Workload::Cas {
            attempts_max: 1_000,
        },
    );
    config.key_count = 4; // contention: 4 clients on 4 keys
    let report = run_against(&etcd, config).await;
    assert_completed_cleanly(&report, OperationKind::Cas);
    let cas = report.cas.expect("a cas run reports contention");
    assert_eq!(cas.abandoned, 0, "1000 attempts is plenty for 4 clients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_read_workload_finds_every_key_of_each_txn() {
    let etcd = EtcdProcess::start().await;
    let report = run_against(&etcd, small_config(&etcd, Workload::TxnRead)).await;
    // A txn missing a key would have been counted as a `KeyMissing` error.
    assert_completed_cleanly(&report, OperationKind::TxnRead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_workload_reports_gets_and_puts_apart() {
    let etcd = EtcdProcess::start().await;
    let report = run_against(
        &etcd,
        small_config(&etcd, Workload::Mixed { read_ratio: 0.5 }),
    )
    .await;
    assert_completed_cleanly(&report, OperationKind::Get);
    assert_completed_cleanly(&report, OperationKind::Put);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_workload_delivers_every_event_exactly_once_to_every_watcher() {
    let etcd = EtcdProcess::start().await;
    let watchers = 6;
    let mut config = small_config(
        &etcd,
        Workload::Watch {
            watchers,
            streams: watchers,
            watched_keys: None,
            drain_timeout_ms: 10_000,
            writer_endpoint: None,
        },
    );
    config.connections = 2;
    config.rate_ops_per_sec = Some(200.0);
    let report = run_against(&etcd, config).await;
    assert_completed_cleanly(&report, OperationKind::Put);
    assert_completed_cleanly(&report, OperationKind::WatchEvent);

    let watch = report.watch.as_ref().expect("a watch run reports delivery");
    assert_eq!(watch.per_watcher.len(), watchers);
    assert!(watch.puts_acknowledged > 0);
    assert_eq!(watch.puts_failed, 0);
    for watcher in &watch.per_watcher {
        assert_eq!(
            watcher.events_received, watch.puts_acknowledged,
            "{watcher:?}"
        );
        assert!(!watcher.has_anomalies(), "{watcher:?}");
    }
    assert_eq!(
        watch.events_lost + watch.events_duplicated + watch.events_reordered,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplexed_watchers_of_single_keys_each_receive_every_put_of_their_key() {
    let etcd = EtcdProcess::start().await;
    // 12 watchers per stream, a multiple of the keys: every key has 8 watchers.
    let (watchers, streams, keys) = (48, 4, 6);
    let mut config = small_config(
        &etcd,
        Workload::Watch {
            watchers,
            streams,
            watched_keys: Some(keys),
            drain_timeout_ms: 10_000,
            writer_endpoint: Some(etcd.client_url.clone()),
        },
    );
    config.connections = 2;
    config.rate_ops_per_sec = Some(200.0);
    let report = run_against(&etcd, config).await;
    assert_completed_cleanly(&report, OperationKind::Put);
    assert_completed_cleanly(&report, OperationKind::WatchEvent);

    let watch = report.watch.as_ref().expect("a watch run reports delivery");
    assert_eq!((watch.watchers, watch.streams), (watchers, streams));
    assert_eq!(watch.per_watcher.len(), watchers);
    assert_eq!(watch.puts_failed, 0);
    // The writer takes the keys in turn, so each key got its share, give or take one.
    let watchers_per_key = (watchers / keys as usize) as u64;
    assert_eq!(
        watch.events_expected,
        watch.puts_acknowledged * watchers_per_key,
        "every put reaches the {watchers_per_key} watchers of its key"
    );
    assert_eq!(watch.events_received, watch.events_expected);
    let share = watch.puts_acknowledged / keys;
    for watcher in &watch.per_watcher {
        assert!(!watcher.has_anomalies(), "{watcher:?}");
        assert!(
            (share..=share + 1).contains(&watcher.events_received),
            "{watcher:?} against {share} puts per key"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_keepalive_workload_keeps_every_lease_alive() {
    let etcd = EtcdProcess::start().await;
    let workload = Workload::LeaseKeepAlive {
        leases: 10,
        lease_ttl_secs: 30,
    };
    let report = run_against(&etcd, small_config(&etcd, workload)).await;
    // An expired or unknown lease would have been counted as a `LeaseExpired` error.
    assert_completed_cleanly(&report, OperationKind::LeaseKeepAlive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_run_sends_exactly_the_total_requested() {
    let etcd = EtcdProcess::start().await;
    let mut config = small_config(&etcd, Workload::Put);
    config.duration_secs = None;
    config.total_ops = Some(50);
    config.rate_ops_per_sec = Some(100.0);
    let report = run_against(&etcd, config).await;
    assert_completed_cleanly(&report, OperationKind::Put);
    assert_eq!(report.operations_succeeded(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_prints_a_json_report_and_writes_the_same_to_a_file() {
    let etcd = EtcdProcess::start().await;
    let json_dir = tempfile::tempdir().expect("create a temporary directory");
    let json_path = json_dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_vane-bench"))
        .args([
            "put",
            "--endpoints",
            // Bare host:port, as etcdctl takes it.
            etcd.client_url.trim_start_matches("http://"),
            "--clients",
            "2",
            "--total",
            "100",
        ])
        .args(["--output", "json", "--json"])
        .arg(&json_path)
        .output()
        .expect("run vane-bench");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = Report::from_json(&String::from_utf8_lossy(&output.stdout))
        .expect("stdout is a JSON report");
    let written =
        Report::from_json(&std::fs::read_to_string(&json_path).expect("read --json file"))
            .expect("the --json file is a JSON report");
    assert_eq!(printed, written);
    assert_eq!(printed.operations_succeeded(), 100);
    assert!(printed.errors.is_empty(), "{:?}", printed.errors);
}

#[tokio::test]
async fn unreachable_endpoint_fails_with_advice_instead_of_hanging() {
    let endpoint = format!("http://127.0.0.1:{}", support::free_port());
    let mut config = WorkloadConfig::new(Workload::Put, vec![endpoint.clone()]);
    config.connect_timeout_ms = 1_000;
    let error = vane_bench::run(config)
        .await
        .expect_err("nothing listens there");
    assert!(matches!(error, BenchError::Connect { .. }), "{error}");
    assert!(error.to_string().contains(&endpoint), "{error}");
}
