//! Namespaces in the state machine: the checks that apply makes, whatever API a write
//! came through, and the rules of namespace changes themselves. Real RocksDB, commands
//! applied as Raft would apply them.

mod common;

use common::Store;
use prost::Message;
use vane_proto::api::{ApprovalPolicy, Namespace, NamespaceResponse};
use vane_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{Compare, LeaseGrantRequest, PutRequest, RequestOp, TxnRequest};
use vane_proto::raft::command::Op;
use vane_proto::raft::command_error::Code;
use vane_proto::raft::command_result::Result as Outcome;
use vane_proto::raft::{CommandError, NamespaceChange, NamespaceDelete};

const POOL_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "max_connections": {"type": "integer", "minimum": 1, "maximum": 1000},
    "host": {"type": "string"}
  },
  "required": ["host"]
}"#;

fn namespace(name: &str, prefix: &str, schema: &str) -> Namespace {
    Namespace {
        name: name.to_string(),
        prefix: prefix.as_bytes().to_vec(),
        schema: schema.to_string(),
        ..Default::default()
    }
}

fn change(
    s: &mut Store,
    namespace: Namespace,
    create: bool,
    force: bool,
) -> Result<NamespaceResponse, CommandError> {
    match s
        .apply(Op::NamespaceChange(Box::new(NamespaceChange {
            namespace: Some(namespace),
            create,
            force,
        })))
        .result
    {
        Some(Outcome::Namespace(response)) => Ok(*response),
        Some(Outcome::Error(e)) => Err(e),
        other => panic!("unexpected {other:?}"),
    }
}

fn delete_namespace(s: &mut Store, name: &str) -> Result<NamespaceResponse, CommandError> {
    match s
        .apply(Op::NamespaceDelete(NamespaceDelete {
            name: name.to_string(),
        }))
        .result
    {
        Some(Outcome::Namespace(response)) => Ok(*response),
        Some(Outcome::Error(e)) => Err(e),
        other => panic!("unexpected {other:?}"),
    }
}

fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn put_op(key: &str, value: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(put(key, value))),
    }
}

fn code(error: &CommandError) -> Code {
    Code::try_from(error.code).unwrap()
}

#[test]
fn every_write_path_is_checked_against_the_schema_at_apply() {
    let mut s = Store::new();
    change(&mut s, namespace("db", "/db/", POOL_SCHEMA), true, false).unwrap();

    // Put: valid passes, invalid is refused naming key, pointer and rule.
    s.put_request(put("/db/pool", r#"{"host":"a","max_connections":10}"#))
        .unwrap();
    let revision = s.revision();
    let refused = s
        .put_request(put("/db/pool", r#"{"host":"a","max_connections":5000}"#))
        .unwrap_err();
    assert_eq!(code(&refused), Code::InvalidArgument);
    assert_eq!(
        refused.message,
        "vane: value of /db/pool is invalid at /max_connections: 5000 is greater than the \
         maximum of 1000 (schema of namespace db)"
    );
    let missing = s.put_request(put("/db/other", "{}")).unwrap_err();
    assert!(
        missing.message.contains("\"host\" is a required property"),
        "{}",
        missing.message
    );
    let not_json = s.put_request(put("/db/raw", "host=a")).unwrap_err();
    assert!(
        not_json.message.contains("is not JSON"),
        "{}",
        not_json.message
    );
    assert_eq!(s.revision(), revision, "refused puts change nothing");

    // Outside the prefix anything goes.
    s.put("/dbx", "not json at all");

    // Txn: the branch that runs is checked; an invalid value in it undoes the whole txn,
    // including a valid write outside the namespace.
    let revision = s.revision();
    let smuggle = TxnRequest {
        compare: vec![Compare {
            key: b"/db/pool".to_vec(),
            target: CompareTarget::Version as i32,
            result: CompareResult::Greater as i32,
            target_union: Some(TargetUnion::Version(0)),
            ..Default::default()
        }],
        success: vec![
            put_op("/free/x", "1"),
            put_op("/db/pool", r#"{"host":"a","max_connections":0}"#),
        ],
        failure: vec![],
    };
    let refused = s.txn(smuggle).unwrap_err();
    assert!(
        refused
            .message
            .contains("/db/pool is invalid at /max_connections"),
        "{}",
        refused.message
    );
    assert_eq!(s.revision(), revision);
    assert!(
        s.get("/free/x").kvs.is_empty(),
        "nothing of a refused txn stays"
    );
    // An invalid value in the branch that does not run is not looked at.
    let harmless = TxnRequest {
        compare: vec![],
        success: vec![put_op("/db/pool", r#"{"host":"b"}"#)],
        failure: vec![put_op("/db/pool", "garbage")],
    };
    assert!(s.txn(harmless).unwrap().succeeded);

    // A lease cannot carry a governed value.
    let lease = match s
        .apply(Op::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 0 }))
        .result
    {
        Some(Outcome::LeaseGrant(granted)) => granted.id,
        other => panic!("{other:?}"),
    };
    let with_lease = PutRequest {
        lease,
        ..put("/db/pool", r#"{"host":"c"}"#)
    };
    let refused = s.put_request(with_lease).unwrap_err();
    assert!(
        refused.message.contains("cannot be attached to a lease"),
        "{}",
        refused.message
    );
}

#[test]
fn a_namespace_requiring_approval_refuses_direct_writes_and_deletes() {
    let mut s = Store::new();
    s.put("/flags/dark-mode", "true");
    let mut flags = namespace("flags", "/flags/", "");
    flags.approval = Some(ApprovalPolicy {
        approvals_required: 2,
        ..Default::default()
    });
    change(&mut s, flags, true, false).unwrap();
    let refused = s.put_request(put("/flags/new", "1")).unwrap_err();
    assert_eq!(code(&refused), Code::ApprovalRequired);
    assert!(
        refused.message.contains("open a change request"),
        "{}",
        refused.message
    );
    let refused = s.delete("/flags/", "/flags0", false).unwrap_err();
    assert_eq!(code(&refused), Code::ApprovalRequired);
    assert!(
        refused
            .message
            .starts_with("vane: delete of /flags/dark-mode"),
        "{}",
        refused.message
    );
    assert_eq!(s.get("/flags/dark-mode").kvs.len(), 1);
    // A delete over a wider range that touches the namespace is refused too.
    s.put("/a", "1");
    assert!(s.delete("/", "/z", false).is_err());
    assert_eq!(s.get("/a").kvs.len(), 1);
}

#[test]
fn namespace_changes_keep_prefixes_apart_and_existing_values_valid() {
    let mut s = Store::new();
    let created = change(&mut s, namespace("app", "/app/", ""), true, false).unwrap();
    let stored = created.namespace.unwrap();
    assert_eq!((stored.schema_version, stored.create_revision), (1, 1));
    for overlapping in ["/app/db/", "/ap", "/"] {
        let refused = change(&mut s, namespace("other", overlapping, ""), true, false).unwrap_err();
        assert_eq!(code(&refused), Code::GovernanceConflict, "{overlapping}");
        assert!(
            refused.message.contains("overlaps namespace app"),
            "{}",
            refused.message
        );
    }
    change(&mut s, namespace("apple", "/apple/", ""), true, false).unwrap();
    let again = change(&mut s, namespace("app", "/x/", ""), true, false).unwrap_err();
    assert_eq!(code(&again), Code::NamespaceExists);
    let moved = change(&mut s, namespace("app", "/x/", ""), false, false).unwrap_err();
    assert!(moved.message.contains("cannot change"), "{}", moved.message);
    let missing = change(&mut s, namespace("ghost", "/g/", ""), false, false).unwrap_err();
    assert_eq!(code(&missing), Code::NamespaceNotFound);

    // A schema that existing values break is refused with the keys, or forced.
    s.put("/app/a", r#"{"host":"h"}"#);
    s.put("/app/b", "not json");
    let refused = change(&mut s, namespace("app", "/app/", POOL_SCHEMA), false, false).unwrap_err();
    assert_eq!(code(&refused), Code::GovernanceConflict);
    assert!(
        refused.message.contains("1 existing value(s)"),
        "{}",
        refused.message
    );
    assert!(refused.message.contains("/app/b"), "{}", refused.message);
    let forced = change(&mut s, namespace("app", "/app/", POOL_SCHEMA), false, true).unwrap();
    assert_eq!(forced.offending_keys, vec![b"/app/b".to_vec()]);
    assert_eq!(forced.namespace.unwrap().schema_version, 2);

    // A namespace with keys cannot go; an empty one can, and its prefix is free again.
    let refused = delete_namespace(&mut s, "app").unwrap_err();
    assert!(
        refused.message.contains("still has keys"),
        "{}",
        refused.message
    );
    s.delete("/app/", "/app0", false).unwrap();
    delete_namespace(&mut s, "app").unwrap();
    s.put("/app/b", "anything now");
    change(&mut s, namespace("app2", "/app/", ""), true, false).unwrap();
    let (all, _) = s.sm.namespaces().unwrap();
    let names: Vec<&str> = all.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["app2", "apple"]);
}

#[test]
fn the_same_log_gives_the_same_governance_state_and_a_snapshot_carries_it() {
    let run = || {
        let mut s = Store::new();
        change(&mut s, namespace("db", "/db/", POOL_SCHEMA), true, false).unwrap();
        change(&mut s, namespace("free", "/free/", ""), true, false).unwrap();
        for i in 0..60 {
            let value = if i % 7 == 0 {
                r#"{"host":"x","max_connections":99999}"#.to_string()
            } else {
                format!(r#"{{"host":"h{i}"}}"#)
            };
            let _ = s.put_request(put(&format!("/db/k{}", i % 9), &value));
            s.put(&format!("/free/k{i}"), "v");
        }
        change(&mut s, namespace("db", "/db/", ""), false, false).unwrap();
        (s.sm.hash_kv(0).unwrap(), s.sm.governance_hash().unwrap(), s)
    };
    let (kv_a, gov_a, a) = run();
    let (kv_b, gov_b, _b) = run();
    assert_eq!((kv_a, gov_a), (kv_b, gov_b));

    let snapshot = a.sm.build_snapshot().expect("build snapshot");
    let fresh = Store::new();
    fresh
        .sm
        .install_snapshot(&common::written_out(&snapshot).1)
        .expect("install");
    assert_eq!(fresh.sm.governance_hash().unwrap(), gov_a);
    assert_eq!(fresh.sm.hash_kv(0).unwrap(), kv_a);
    let db = fresh
        .sm
        .namespace("db")
        .unwrap()
        .expect("namespace in the snapshot");
    assert_eq!(db.schema_version, 2);
    assert!(
        fresh
            .sm
            .check_governed_write(b"/db/x", Some(b"anything"), 0)
            .unwrap()
            .is_none(),
        "the installed state has the schema removed"
    );
}

#[test]
fn the_audit_records_every_governed_change_and_names_an_altered_record() {
    use vane_proto::api::ListAuditRequest;
    use vane_proto::api::audit_record::Path;
    use vane_raft_store::{DataDir, Limits, StateMachine};

    let mut s = Store::new();
    s.put("/db/before", r#"{"host":"untracked"}"#);
    change(&mut s, namespace("db", "/db/", POOL_SCHEMA), true, false).unwrap();
    s.put("/db/a", r#"{"host":"one"}"#);
    s.put("/db/a", r#"{"host":"two"}"#);
    s.put("/elsewhere", "not audited");
    s.delete("/db/a", "", false).unwrap();
    let refused = s.put_request(put("/db/a", "{}"));
    assert!(refused.is_err(), "a refused write leaves no record");
    s.apply(Op::Compaction(
        vane_proto::etcdserverpb::CompactionRequest {
            revision: s.revision(),
            physical: false,
        },
    ));

    let records = s.sm.audit(&ListAuditRequest::default()).unwrap();
    let summary: Vec<(String, bool, String, bool)> = records
        .iter()
        .map(|r| {
            (
                String::from_utf8_lossy(&r.key).into_owned(),
                r.existed_before,
                String::from_utf8_lossy(&r.after).into_owned(),
                r.deleted,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("/db/a".into(), false, r#"{"host":"one"}"#.into(), false),
            ("/db/a".into(), true, r#"{"host":"two"}"#.into(), false),
            ("/db/a".into(), true, String::new(), true),
        ],
        "every governed change, in order, surviving compaction"
    );
    assert_eq!(records[1].before, br#"{"host":"one"}"#.to_vec());
    assert!(records.iter().all(|r| r.path == Path::EtcdApi as i32));
    assert!(s.sm.verify_audit().unwrap().intact);

    // Alter the second record on disk, behind the state machine's back.
    let dir = s.dir.path().to_path_buf();
    drop(s.sm);
    let data = DataDir::open(&dir).unwrap();
    let generation = data.current_generation().unwrap().unwrap();
    let path = data.generation_path(generation);
    drop(data);
    {
        let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).unwrap();
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, &names).unwrap();
        let audit = db.cf_handle("audit").unwrap();
        let mut record = vane_proto::api::AuditRecord::decode(
            db.get_cf(&audit, 2u64.to_be_bytes())
                .unwrap()
                .unwrap()
                .as_slice(),
        )
        .unwrap();
        record.after = br#"{"host":"forged"}"#.to_vec();
        db.put_cf(&audit, 2u64.to_be_bytes(), record.encode_to_vec())
            .unwrap();
    }
    let data = std::sync::Arc::new(DataDir::open(&dir).unwrap());
    let reopened = StateMachine::open(data, Limits::default()).unwrap();
    let verdict = reopened.verify_audit().unwrap();
    assert!(!verdict.intact);
    assert_eq!(verdict.broken_seq, 2, "{verdict:?}");
    assert!(verdict.detail.contains("record 2"), "{verdict:?}");
}

/// The watch cache takes apply's events instead of reading them back: they must be the
/// stored history exactly, previous values included, and a write refused (and rolled
/// back) inside a batch must leave no event behind.
#[test]
fn the_events_apply_hands_over_are_the_stored_history_without_refused_writes() {
    let mut s = Store::new();
    change(&mut s, namespace("db", "/db/", POOL_SCHEMA), true, false).unwrap();
    s.put("/other/x", "1");
    let from = s.revision() + 1;

    let valid = r#"{"host": "a", "max_connections": 10}"#;
    let invalid = r#"{"host": "a", "max_connections": 5000}"#;
    let items = vec![
        s.item(Op::Put(put("/db/pool", valid))),
        s.item(Op::Put(put("/db/pool", invalid))),
        s.item(Op::Txn(TxnRequest {
            success: vec![put_op("/other/y", "2"), put_op("/db/other", invalid)],
            ..Default::default()
        })),
        s.item(Op::Put(put("/other/x", "3"))),
        s.item(Op::DeleteRange(
            vane_proto::etcdserverpb::DeleteRangeRequest {
                key: b"/other/".to_vec(),
                range_end: b"/other0".to_vec(),
                ..Default::default()
            },
        )),
    ];
    let results = s.sm.apply(&items).unwrap();
    let refused = results
        .iter()
        .filter(|r| matches!(r.result, Some(Outcome::Error(_))))
        .count();
    assert_eq!(
        refused, 2,
        "the invalid put and the txn carrying one are refused"
    );

    let through = s.revision();
    let handed =
        s.sm.take_recent_events(from, through)
            .expect("all in memory");
    let stored = s.sm.events_since(from, 1_000, true).unwrap().events;
    assert_eq!(handed, stored);
    // The valid put, the put of /other/x, and the delete of /other/x: three revisions.
    assert_eq!(through - from + 1, 3);
    assert_eq!(handed.len(), 3);
    assert_eq!(handed[2].prev_kv.as_ref().unwrap().value, b"3");
    // Taken once: the next reader of those revisions goes to the disk.
    assert_eq!(s.sm.take_recent_events(from, through), None);
}
