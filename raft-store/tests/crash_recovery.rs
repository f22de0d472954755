//! Crash safety: a child process appends entries to the Raft log and applies them to the
//! state machine in a loop, and is killed with SIGKILL at random points, many times.
//! After every kill the parent reopens the data directory and checks that
//! * every entry the child saw reported synced is in the log, with no hole;
//! * the state machine's applied id is within the log, and its data is exactly the
//!   state after that entry (each entry is one txn: the revision, a counter key and a
//!   rotating key all say which entry was applied last).
//!
//! Apply writes no RocksDB WAL, so a kill loses whatever the state machine applied since
//! its last flush, and the next child applies it again from the log. A thread of the child
//! flushes every few milliseconds while it applies (a snapshot, a defragmentation), so
//! kills land on both sides of flushes, and a flush that persisted some column families
//! at a later batch than the applied id fails the counter check. The parent also checks
//! that kills did lose applied entries, so that the replay is exercised, not assumed.
//!
//! The child is this same test binary running the ignored `crash_child` test.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::type_config::TypeConfigExt;
use openraft::{EntryPayload, RaftLogReader};
use rand::Rng;
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{PutRequest, RangeRequest, RequestOp, TxnRequest};
use vane_proto::raft::command::Op;
use vane_raft_store::raft::convert::log_id_to_pb;
use vane_raft_store::raft::log_store::LogStore;
use vane_raft_store::raft::types::{RaftEntry, TypeConfig};
use vane_raft_store::{ApplyItem, ApplyPayload, DataDir, Limits, StateMachine};

const CHILD_DIR_ENV: &str = "VANE_CRASH_CHILD_DIR";
const KILLS: usize = 25;
/// Longest pause between two flushes of the child's state machine.
const FLUSH_EVERY_MS_MAX: u64 = 20;

fn entry(index: u64) -> RaftEntry {
    let put = |key: String, value: String| RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: key.into_bytes(),
            value: value.into_bytes(),
            ..Default::default()
        })),
    };
    let command = vane_proto::raft::Command {
        proposed_at_ms: index as i64,
        op: Some(Op::Txn(TxnRequest {
            compare: vec![],
            success: vec![
                put("counter".into(), index.to_string()),
                put(format!("k{}", index % 10), index.to_string()),
            ],
            failure: vec![],
        })),
        ..Default::default()
    };
    openraft::Entry {
        log_id: openraft::LogId::new(
            openraft::impls::leader_id_adv::LeaderId {
                term: 1,
                node_id: 1,
            },
            index,
        ),
        payload: EntryPayload::Normal(command),
    }
}

fn apply_item(entry: &RaftEntry) -> ApplyItem {
    let EntryPayload::Normal(command) = &entry.payload else {
        panic!("test entries are commands");
    };
    ApplyItem {
        log_id: log_id_to_pb(&entry.log_id),
        payload: ApplyPayload::Command(command.clone()),
    }
}

struct Opened {
    log: LogStore,
    sm: Arc<StateMachine>,
    _dir: Arc<DataDir>,
}

fn open(path: &std::path::Path) -> Opened {
    let dir = Arc::new(DataDir::open(path).expect("data dir"));
    let log = LogStore::open(&dir.raft_log_path()).expect("log");
    let sm = Arc::new(StateMachine::open(dir.clone(), Limits::default()).expect("state machine"));
    Opened { log, sm, _dir: dir }
}

/// Runs in the child: catch the state machine up with the log, then append and apply
/// forever, reporting each synced index on stdout.
#[tokio::test]
#[ignore = "helper process for crash_and_reopen_finds_log_and_state_consistent"]
async fn crash_child() {
    let Ok(path) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let mut opened = open(std::path::Path::new(&path));
    let state = opened.log.get_log_state().await.expect("log state");
    let mut next = state.last_log_id.map_or(1, |l| l.index + 1);
    let applied = opened.sm.applied().log_index;
    let backlog = opened
        .log
        .try_get_log_entries(applied + 1..next)
        .await
        .expect("read backlog");
    let items: Vec<_> = backlog.iter().map(apply_item).collect();
    opened.sm.apply(&items).expect("apply backlog");

    // Flushes run beside apply, as RocksDB's and the snapshot builder's do in a member.
    let sm = opened.sm.clone();
    std::thread::spawn(move || {
        let mut rng = rand::rng();
        loop {
            std::thread::sleep(Duration::from_millis(
                rng.random_range(0..FLUSH_EVERY_MS_MAX),
            ));
            if rng.random_bool(0.5) {
                drop(sm.build_snapshot().expect("snapshot"));
            } else {
                sm.compact_storage().expect("defragment");
            }
        }
    });
    let mut rng = rand::rng();
    loop {
        let count = rng.random_range(1..=8u64);
        let entries: Vec<_> = (next..next + count).map(entry).collect();
        let (tx, rx) = TypeConfig::oneshot();
        opened
            .log
            .append(entries.clone(), IOFlushed::signal(tx))
            .await
            .expect("append");
        rx.await.expect("sync callback").expect("sync");
        println!("synced {}", next + count - 1);
        let items: Vec<_> = entries.iter().map(apply_item).collect();
        opened.sm.apply(&items).expect("apply");
        next += count;
        println!("applied {}", next - 1);
    }
}

fn value(sm: &StateMachine, key: &str) -> Option<String> {
    sm.range(&RangeRequest {
        key: key.into(),
        ..Default::default()
    })
    .expect("range")
    .kvs
    .first()
    .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
}

#[tokio::test]
async fn crash_and_reopen_finds_log_and_state_consistent() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = rand::rng();
    let mut synced_max = 0u64;
    let mut rounds_that_lost_applied = 0;

    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        let (applied_tx, applied_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let number = |prefix| line.strip_prefix(prefix)?.parse::<u64>().ok();
                let sent = match (number("synced "), number("applied ")) {
                    (Some(n), _) => lines_tx.send(n).is_ok(),
                    (_, Some(n)) => applied_tx.send(n).is_ok(),
                    _ => true,
                };
                if !sent {
                    break;
                }
            }
        });
        // Let it make progress, then kill it at a random point.
        let deadline = Instant::now() + Duration::from_secs(30);
        let target = synced_max + rng.random_range(5..60);
        while synced_max < target && Instant::now() < deadline {
            if let Ok(n) = lines_rx.recv_timeout(Duration::from_millis(50)) {
                synced_max = synced_max.max(n);
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..15)));
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        while let Ok(n) = lines_rx.try_recv() {
            synced_max = synced_max.max(n);
        }
        let applied_before_kill = applied_rx.try_iter().max().unwrap_or(0);
        assert!(
            synced_max > 0,
            "round {round}: the child never synced anything"
        );

        let mut opened = open(tmp.path());
        let state = opened.log.get_log_state().await.expect("log state");
        let last = state.last_log_id.map_or(0, |l| l.index);
        assert!(
            last >= synced_max,
            "round {round}: synced entry {synced_max} lost; log ends at {last}"
        );
        let entries = opened
            .log
            .try_get_log_entries(1..=last)
            .await
            .expect("read log");
        assert_eq!(
            entries.len() as u64,
            last,
            "round {round}: the log has a hole"
        );
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.log_id.index, i as u64 + 1);
        }

        let applied = opened.sm.applied();
        assert!(
            applied.log_index <= last,
            "round {round}: applied past the log"
        );
        assert_eq!(
            applied.revision,
            applied.log_index as i64 + 1,
            "round {round}: one revision per applied entry"
        );
        if applied.log_index < applied_before_kill {
            rounds_that_lost_applied += 1;
        }
        if applied.log_index > 0 {
            let n = applied.log_index;
            assert_eq!(
                value(&opened.sm, "counter"),
                Some(n.to_string()),
                "round {round}"
            );
            assert_eq!(
                value(&opened.sm, &format!("k{}", n % 10)),
                Some(n.to_string()),
                "round {round}"
            );
        }
        drop(opened);
    }
    assert!(
        rounds_that_lost_applied > 0,
        "no kill lost an applied entry, so none was applied again from the log"
    );
}
