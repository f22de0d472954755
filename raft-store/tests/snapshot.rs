//! Snapshots: built while writes continue, installed on a fresh store, and compared key by
//! key and counter by counter; a damaged file is refused without touching the state; an
//! install interrupted before its switch leaves the old state.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::Store;
use vane_proto::etcdserverpb::{CompactionRequest, LeaseGrantRequest, PutRequest, RangeRequest};
use vane_proto::raft::command::Op;
use vane_raft_store::{DataDir, Limits, StateMachine};

fn everything_at(sm: &StateMachine, revision: i64) -> Vec<vane_proto::mvccpb::KeyValue> {
    sm.range(&RangeRequest {
        key: vec![0],
        range_end: vec![0],
        revision,
        ..Default::default()
    })
    .expect("range")
    .kvs
}

#[test]
fn snapshot_built_during_writes_installs_to_the_same_state() {
    let mut source = Store::new();
    source.apply(Op::LeaseGrant(LeaseGrantRequest { ttl: 100, id: 9 }));
    for i in 0..2_000 {
        source.put(&format!("key/{:05}", i % 700), &format!("value-{i}"));
    }
    source
        .put_request(PutRequest {
            key: "leased".into(),
            value: "x".into(),
            lease: 9,
            ..Default::default()
        })
        .unwrap();
    source.apply(Op::Compaction(CompactionRequest {
        revision: 1_000,
        physical: false,
    }));

    // Keep writing on another thread while the snapshot is built.
    let sm = source.sm.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut store = Store {
            dir: tempfile::tempdir().unwrap(),
            sm: sm.clone(),
            next_index: source.next_index,
        };
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 20_000 {
                store.put(&format!("key/{:05}", n % 900), &format!("late-{n}"));
                n += 1;
            }
            n
        })
    };
    let file = sm.build_snapshot().expect("build snapshot");
    stop.store(true, Ordering::Relaxed);
    let written_during = writer.join().unwrap();
    let meta = file.header.meta.clone().expect("meta");
    assert!(written_during > 0, "writes continued while building");

    let target_dir = tempfile::tempdir().unwrap();
    let target = StateMachine::open(
        Arc::new(DataDir::open(target_dir.path()).unwrap()),
        Limits::default(),
    )
    .unwrap();
    let (_out, written) = common::written_out(&file);
    target.install_snapshot(&written).expect("install");

    let installed = target.meta().unwrap();
    assert_eq!(
        installed, meta,
        "applied id, membership and counters come with the data"
    );
    assert_eq!(installed.compact_revision, 1_000);
    // Every key, with all its metadata, equals the source's at the snapshot's revision.
    assert_eq!(everything_at(&target, 0), everything_at(&sm, meta.revision));
    assert_eq!(
        target.hash_kv(meta.revision).unwrap().0,
        sm.hash_kv(meta.revision).unwrap().0,
        "retained history is identical too"
    );
    assert_eq!(target.lease_keys(9).unwrap(), vec![b"leased".to_vec()]);
    assert_eq!(target.applied().log_index, meta.last_applied.unwrap().index);
    let current = target
        .current_snapshot()
        .unwrap()
        .expect("installed snapshot is kept");
    assert_eq!(current.header.meta, Some(meta));
}

#[test]
fn a_damaged_snapshot_is_refused_and_the_state_is_untouched() {
    let mut source = Store::new();
    for i in 0..100 {
        source.put(&format!("k{i}"), "v");
    }
    let file = source.sm.build_snapshot().unwrap();
    let mut bytes = std::fs::read(common::written_out(&file).1).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let damaged = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(damaged.path(), &bytes).unwrap();
    let truncated = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(truncated.path(), &bytes[..middle]).unwrap();

    let mut target = Store::new();
    target.put("mine", "kept");
    for path in [damaged.path(), truncated.path()] {
        let err = target.sm.install_snapshot(path).unwrap_err();
        assert!(err.to_string().contains("snapshot"), "{err}");
    }
    assert_eq!(target.get("mine").kvs.len(), 1);
    assert_eq!(target.revision(), 2);
}

#[test]
fn an_install_interrupted_before_its_switch_leaves_the_old_state() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let dir = Arc::new(DataDir::open(tmp.path()).unwrap());
        let mut store = Store {
            dir: tempfile::tempdir().unwrap(),
            sm: Arc::new(StateMachine::open(dir.clone(), Limits::default()).unwrap()),
            next_index: 1,
        };
        store.put("old", "state");
        // What a crash half-way through loading a snapshot leaves: a new generation that
        // CURRENT does not name yet.
        let half = dir.generation_path(2);
        std::fs::create_dir_all(&half).unwrap();
        std::fs::write(half.join("000001.sst"), b"partial").unwrap();
    }
    let dir = Arc::new(DataDir::open(tmp.path()).unwrap());
    let sm = StateMachine::open(dir.clone(), Limits::default()).unwrap();
    let got = sm
        .range(&RangeRequest {
            key: "old".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(got.kvs[0].value, b"state");
    assert!(
        !dir.generation_path(2).exists(),
        "the half-built generation is removed"
    );
}

#[test]
fn a_built_snapshot_is_a_checkpoint_kept_across_restarts_and_superseded_by_an_install() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Arc::new(DataDir::open(tmp.path()).unwrap());
    let built = {
        let mut store = Store {
            dir: tempfile::tempdir().unwrap(),
            sm: Arc::new(StateMachine::open(dir.clone(), Limits::default()).unwrap()),
            next_index: 1,
        };
        for i in 0..300 {
            store.put(&format!("k{:03}", i % 50), &format!("v{i}"));
        }
        let built = store.sm.build_snapshot().unwrap();
        assert!(built.path.is_dir(), "a build is a checkpoint, not a dump");
        // Writes after the build do not change what it holds.
        store.put("after", "the build");
        built
    };

    // After a restart the same snapshot is current, and reads as it was built.
    let reopened = StateMachine::open(dir.clone(), Limits::default()).unwrap();
    let current = reopened.current_snapshot().unwrap().expect("kept");
    assert_eq!(current.path, built.path);
    assert_eq!(current.header.meta, built.header.meta);
    let meta = built.header.meta.clone().unwrap();
    let fresh = Store::new();
    fresh
        .sm
        .install_snapshot(&common::written_out(&current).1)
        .unwrap();
    assert_eq!(fresh.sm.meta().unwrap(), meta);
    assert_eq!(
        everything_at(&fresh.sm, 0),
        everything_at(&reopened, meta.revision)
    );
    assert!(fresh.get("after").kvs.is_empty());

    // Sending pins what it sends: the file opened holds this snapshot's id.
    let mut sent = Vec::new();
    std::io::Read::read_to_end(&mut current.open_pinned().unwrap(), &mut sent).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.snapshots_path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "a send leaves nothing behind: {leftovers:?}"
    );

    // A newer snapshot installed from a leader supersedes the checkpoint, on disk too.
    let mut leader = Store::new();
    for i in 0..400 {
        leader.put(&format!("k{i}"), "leader");
    }
    let newer = leader.sm.build_snapshot().unwrap();
    reopened
        .install_snapshot(&common::written_out(&newer).1)
        .unwrap();
    let current = reopened.current_snapshot().unwrap().expect("installed");
    assert!(current.path.is_file());
    assert_eq!(current.header.meta, newer.header.meta);
    assert!(!built.path.exists(), "the superseded checkpoint is removed");
}

#[test]
fn writes_after_an_install_continue_from_the_installed_state() {
    let mut source = Store::new();
    for i in 0..50 {
        source.put(&format!("k{i}"), "v");
    }
    let file = source.sm.build_snapshot().unwrap();
    let meta = file.header.meta.clone().expect("meta");

    // The target has applied writes of its own, so its apply knows the meta it last wrote.
    let mut target = Store::new();
    target.put("mine", "replaced by the install");
    let (_out, written) = common::written_out(&file);
    target.sm.install_snapshot(&written).expect("install");
    target.next_index = meta.last_applied.expect("applied").index + 1;
    target.put("after", "x");

    let after = target.sm.meta().unwrap();
    assert_eq!(
        after.revision,
        meta.revision + 1,
        "the installed revision, plus one"
    );
    assert_eq!(target.get("after").kvs[0].mod_revision, meta.revision + 1);
    assert_eq!(
        after.last_applied.map(|l| l.index),
        Some(target.next_index - 1)
    );
    assert!(target.get("mine").kvs.is_empty());
    assert_eq!(target.get("k7").kvs.len(), 1);
}
