//! etcd's MVCC semantics, pinned against the real state machine on RocksDB. Where a
//! behaviour is surprising, the comment cites what etcd does.

mod common;

use common::{Store, keys};
use vane_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use vane_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::response_op::Response;
use vane_proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest,
    PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use vane_proto::raft::command::Op;
use vane_proto::raft::command_error::Code;
use vane_proto::raft::command_result::Result as Outcome;
use vane_proto::raft::{Command, OpenSession};
use vane_raft_store::StoreError;
use vane_raft_store::auth::Caller;

fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    end
}

fn put_op(key: &str, value: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        })),
    }
}

fn get_op(key: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestRange(RangeRequest {
            key: key.into(),
            ..Default::default()
        })),
    }
}

fn delete_op(key: &str, range_end: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
            key: key.into(),
            range_end: range_end.into(),
            prev_kv: false,
        })),
    }
}

fn compare(key: &str, target: CompareTarget, result: CompareResult, value: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: key.into(),
        target_union: Some(value),
        range_end: Vec::new(),
    }
}

#[test]
fn revision_starts_at_one_and_each_put_is_one_revision() {
    let mut s = Store::new();
    assert_eq!(s.revision(), 1);
    let r = s.put("foo", "bar");
    assert_eq!(r.header.unwrap().revision, 2);
    s.put("foo", "baz");
    let kv = &s.get("foo").kvs[0];
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
    assert_eq!(kv.value, b"baz");
    assert_eq!(s.revision(), 3);
}

#[test]
fn delete_resets_version_and_a_new_put_recreates_the_key() {
    let mut s = Store::new();
    s.put("k", "1");
    s.put("k", "2");
    let deleted = s.delete("k", "", true).unwrap();
    assert_eq!(deleted.deleted, 1);
    assert_eq!(deleted.prev_kvs[0].value, b"2");
    assert_eq!(s.revision(), 4);
    assert!(s.get("k").kvs.is_empty());
    s.put("k", "3");
    let kv = &s.get("k").kvs[0];
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
}

#[test]
fn delete_of_nothing_does_not_advance_the_revision() {
    let mut s = Store::new();
    s.put("a", "1");
    let r = s.delete("zzz", "", false).unwrap();
    assert_eq!(r.deleted, 0);
    assert_eq!(s.revision(), 2);
}

#[test]
fn put_prev_kv_ignore_value_and_ignore_lease() {
    let mut s = Store::new();
    let first = s
        .put_request(PutRequest {
            key: "k".into(),
            value: "v1".into(),
            prev_kv: true,
            ..Default::default()
        })
        .unwrap();
    assert!(first.prev_kv.is_none());
    let second = s
        .put_request(PutRequest {
            key: "k".into(),
            value: "v2".into(),
            prev_kv: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(second.prev_kv.unwrap().value, b"v1");

    let lease = match s
        .apply(Op::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 7 }))
        .result
    {
        Some(Outcome::LeaseGrant(g)) => g.id,
        other => panic!("{other:?}"),
    };
    s.put_request(PutRequest {
        key: "k".into(),
        value: "v3".into(),
        lease,
        ..Default::default()
    })
    .unwrap();
    // ignore_value keeps the value and takes the new lease (none); ignore_lease keeps the lease.
    s.put_request(PutRequest {
        key: "k".into(),
        ignore_lease: true,
        value: "v4".into(),
        ..Default::default()
    })
    .unwrap();
    let kv = s.get("k").kvs.remove(0);
    assert_eq!((kv.value.as_slice(), kv.lease), (&b"v4"[..], 7));
    s.put_request(PutRequest {
        key: "k".into(),
        ignore_value: true,
        ..Default::default()
    })
    .unwrap();
    let kv = s.get("k").kvs.remove(0);
    assert_eq!(
        (kv.value.as_slice(), kv.lease, kv.version),
        (&b"v4"[..], 0, 5)
    );
}

#[test]
fn put_errors_carry_etcds_messages_and_change_nothing() {
    let mut s = Store::new();
    let before = s.revision();
    let cases = [
        (
            PutRequest {
                key: "missing".into(),
                ignore_value: true,
                ..Default::default()
            },
            "etcdserver: key not found",
        ),
        (
            PutRequest {
                key: "k".into(),
                value: "v".into(),
                ignore_value: true,
                ..Default::default()
            },
            "etcdserver: value is provided",
        ),
        (
            PutRequest {
                key: "k".into(),
                value: "v".into(),
                lease: 42,
                ..Default::default()
            },
            "etcdserver: requested lease not found",
        ),
        (
            PutRequest {
                value: "v".into(),
                ..Default::default()
            },
            "etcdserver: key is not provided",
        ),
    ];
    for (request, message) in cases {
        let err = s.put_request(request).unwrap_err();
        assert_eq!(err.message, message);
    }
    assert_eq!(s.revision(), before);
}

fn seed(s: &mut Store) {
    for (k, v) in [
        ("a", "5"),
        ("b", "4"),
        ("c/1", "3"),
        ("c/2", "2"),
        ("d", "1"),
    ] {
        s.put(k, v);
    }
}

#[test]
fn range_by_key_range_prefix_and_from_key() {
    let mut s = Store::new();
    seed(&mut s);
    let r = s
        .range(RangeRequest {
            key: "b".into(),
            range_end: "d".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(keys(&r), ["b", "c/1", "c/2"]);
    let r = s
        .range(RangeRequest {
            key: "c/".into(),
            range_end: prefix_end("c/"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(keys(&r), ["c/1", "c/2"]);
    let r = s
        .range(RangeRequest {
            key: "c/2".into(),
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(keys(&r), ["c/2", "d"]);
    let all = s
        .range(RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.count, 5);
    // An end at or before the start selects nothing.
    let none = s
        .range(RangeRequest {
            key: "d".into(),
            range_end: "a".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((none.count, none.kvs.len()), (0, 0));
}

#[test]
fn range_limit_sets_more_and_count_is_every_key_in_range() {
    let mut s = Store::new();
    seed(&mut s);
    let r = s
        .range(RangeRequest {
            key: vec![0],
            range_end: vec![0],
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(keys(&r), ["a", "b"]);
    assert!(r.more);
    assert_eq!(r.count, 5);
    let exact = s
        .range(RangeRequest {
            key: vec![0],
            range_end: vec![0],
            limit: 5,
            ..Default::default()
        })
        .unwrap();
    assert!(!exact.more);
}

#[test]
fn range_sorts_by_every_target_in_both_orders() {
    let mut s = Store::new();
    seed(&mut s);
    s.put("a", "6"); // a: version 2, mod revision 7
    let sorted = |target: SortTarget, order: SortOrder| {
        keys(
            &s.range(RangeRequest {
                key: vec![0],
                range_end: vec![0],
                sort_target: target as i32,
                sort_order: order as i32,
                ..Default::default()
            })
            .unwrap(),
        )
    };
    assert_eq!(
        sorted(SortTarget::Key, SortOrder::Descend),
        ["d", "c/2", "c/1", "b", "a"]
    );
    assert_eq!(
        sorted(SortTarget::Value, SortOrder::Ascend),
        ["d", "c/2", "c/1", "b", "a"]
    );
    assert_eq!(sorted(SortTarget::Mod, SortOrder::Descend)[0], "a");
    assert_eq!(
        sorted(SortTarget::Create, SortOrder::Ascend),
        ["a", "b", "c/1", "c/2", "d"]
    );
    assert_eq!(sorted(SortTarget::Version, SortOrder::Descend)[0], "a");
    // A target other than the key with no order sorts ascending (etcd).
    assert_eq!(
        sorted(SortTarget::Value, SortOrder::None),
        ["d", "c/2", "c/1", "b", "a"]
    );
}

#[test]
fn range_keys_only_count_only_and_revision_filters() {
    let mut s = Store::new();
    seed(&mut s);
    let r = s
        .range(RangeRequest {
            key: vec![0],
            range_end: vec![0],
            keys_only: true,
            ..Default::default()
        })
        .unwrap();
    assert!(r.kvs.iter().all(|kv| kv.value.is_empty()));
    let r = s
        .range(RangeRequest {
            key: vec![0],
            range_end: vec![0],
            count_only: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((r.count, r.kvs.len()), (5, 0));
    // a..d were created at revisions 2..6.
    let r = s
        .range(RangeRequest {
            key: vec![0],
            range_end: vec![0],
            min_create_revision: 3,
            max_mod_revision: 5,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(keys(&r), ["b", "c/1", "c/2"]);
    assert_eq!(r.count, 5, "count is of the range, before filters (etcd)");
}

#[test]
fn range_at_an_old_revision_reads_history() {
    let mut s = Store::new();
    s.put("a", "1"); // 2
    s.put("b", "1"); // 3
    s.put("a", "2"); // 4
    s.delete("b", "", false).unwrap(); // 5
    s.put("c", "1"); // 6
    let at = |rev: i64| {
        s.range(RangeRequest {
            key: vec![0],
            range_end: vec![0],
            revision: rev,
            ..Default::default()
        })
        .unwrap()
    };
    let r3 = at(3);
    assert_eq!(keys(&r3), ["a", "b"]);
    assert_eq!(r3.kvs[0].value, b"1");
    assert_eq!(
        r3.header.unwrap().revision,
        6,
        "header carries the current revision"
    );
    let r4 = at(4);
    assert_eq!(
        (r4.kvs[0].value.as_slice(), r4.kvs[0].version),
        (&b"2"[..], 2)
    );
    assert_eq!(keys(&at(5)), ["a"]);
    assert_eq!(keys(&at(6)), ["a", "c"]);
    assert_eq!(keys(&at(1)), Vec::<String>::new());
    let single = s
        .range(RangeRequest {
            key: "b".into(),
            revision: 3,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(single.kvs.len(), 1);
    let err = s
        .range(RangeRequest {
            key: "a".into(),
            revision: 7,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );
}

#[test]
fn compaction_refuses_older_reads_and_keeps_what_newer_reads_need() {
    let mut s = Store::new();
    s.put("a", "1"); // 2
    s.put("a", "2"); // 3
    s.put("b", "1"); // 4
    s.delete("b", "", false).unwrap(); // 5
    s.put("a", "3"); // 6
    let compact = |s: &mut Store, revision: i64| {
        s.apply(Op::Compaction(CompactionRequest {
            revision,
            physical: false,
        }))
    };
    assert!(matches!(
        compact(&mut s, 5).result,
        Some(Outcome::Compaction(_))
    ));

    let err = s
        .range(RangeRequest {
            key: "a".into(),
            revision: 4,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "etcdserver: mvcc: required revision has been compacted"
    );
    assert!(matches!(
        err,
        StoreError::Compacted {
            compact_revision: 5
        }
    ));

    let at5 = s
        .range(RangeRequest {
            key: vec![0],
            range_end: vec![0],
            revision: 5,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(keys(&at5), ["a"]);
    assert_eq!(at5.kvs[0].value, b"2");
    assert_eq!(s.get("a").kvs[0].value, b"3");

    let again = compact(&mut s, 5);
    match again.result {
        Some(Outcome::Error(e)) => {
            assert_eq!(e.code, Code::Compacted as i32);
            assert_eq!(
                e.message,
                "etcdserver: mvcc: required revision has been compacted"
            );
        }
        other => panic!("{other:?}"),
    }
    match compact(&mut s, 99).result {
        Some(Outcome::Error(e)) => assert_eq!(e.code, Code::FutureRevision as i32),
        other => panic!("{other:?}"),
    }
    // Compacting up to the current revision leaves the live keys readable.
    assert!(matches!(
        compact(&mut s, 6).result,
        Some(Outcome::Compaction(_))
    ));
    assert_eq!(s.get("a").kvs[0].version, 3);
}

#[test]
fn txn_compares_choose_the_branch_and_the_txn_is_one_revision() {
    let mut s = Store::new();
    s.put("k", "v1"); // 2
    let txn = TxnRequest {
        compare: vec![compare(
            "k",
            CompareTarget::Value,
            CompareResult::Equal,
            TargetUnion::Value("v1".into()),
        )],
        success: vec![put_op("k", "v2"), put_op("other", "x"), get_op("k")],
        failure: vec![put_op("k", "failed")],
    };
    let r = s.txn(txn.clone()).unwrap();
    assert!(r.succeeded);
    assert_eq!(s.revision(), 3, "a txn with two puts is one revision");
    match &r.responses[2].response {
        Some(Response::ResponseRange(range)) => {
            assert_eq!(
                range.kvs[0].value, b"v2",
                "reads in a txn see its earlier writes"
            );
        }
        other => panic!("{other:?}"),
    }
    let r = s.txn(txn).unwrap();
    assert!(!r.succeeded);
    assert_eq!(s.get("k").kvs[0].value, b"failed");
}

#[test]
fn txn_compares_on_version_create_mod_and_lease() {
    let mut s = Store::new();
    s.put("k", "v"); // 2
    s.put("k", "v"); // 3
    let check = |s: &mut Store, c: Compare| {
        s.txn(TxnRequest {
            compare: vec![c],
            ..Default::default()
        })
        .unwrap()
        .succeeded
    };
    assert!(check(
        &mut s,
        compare(
            "k",
            CompareTarget::Version,
            CompareResult::Equal,
            TargetUnion::Version(2)
        )
    ));
    assert!(check(
        &mut s,
        compare(
            "k",
            CompareTarget::Create,
            CompareResult::Equal,
            TargetUnion::CreateRevision(2)
        )
    ));
    assert!(check(
        &mut s,
        compare(
            "k",
            CompareTarget::Mod,
            CompareResult::Greater,
            TargetUnion::ModRevision(2)
        )
    ));
    assert!(check(
        &mut s,
        compare(
            "k",
            CompareTarget::Mod,
            CompareResult::Less,
            TargetUnion::ModRevision(4)
        )
    ));
    assert!(check(
        &mut s,
        compare(
            "k",
            CompareTarget::Lease,
            CompareResult::Equal,
            TargetUnion::Lease(0)
        )
    ));
    assert!(!check(
        &mut s,
        compare(
            "k",
            CompareTarget::Version,
            CompareResult::NotEqual,
            TargetUnion::Version(2)
        )
    ));
    // A missing key compares as a zero key-value: version 0, create revision 0.
    assert!(check(
        &mut s,
        compare(
            "nope",
            CompareTarget::Version,
            CompareResult::Equal,
            TargetUnion::Version(0)
        )
    ));
    assert!(check(
        &mut s,
        compare(
            "nope",
            CompareTarget::Create,
            CompareResult::Equal,
            TargetUnion::CreateRevision(0)
        )
    ));
    // ...but by value it always fails, whatever the operator (etcd).
    assert!(!check(
        &mut s,
        compare(
            "nope",
            CompareTarget::Value,
            CompareResult::Equal,
            TargetUnion::Value(Vec::new())
        )
    ));
    assert!(!check(
        &mut s,
        compare(
            "nope",
            CompareTarget::Value,
            CompareResult::NotEqual,
            TargetUnion::Value("x".into())
        )
    ));
    // A compare over a range holds only if it holds for every key in it.
    s.put("r/1", "a");
    s.put("r/2", "b");
    let mut over_range = compare(
        "r/",
        CompareTarget::Value,
        CompareResult::Greater,
        TargetUnion::Value("".into()),
    );
    over_range.range_end = prefix_end("r/");
    assert!(check(&mut s, over_range.clone()));
    over_range.target_union = Some(TargetUnion::Value("a".into()));
    assert!(!check(&mut s, over_range));
}

#[test]
fn nested_txns_decide_every_branch_on_the_state_before_the_txn() {
    let mut s = Store::new();
    s.put("k", "1");
    let nested = TxnRequest {
        // Evaluated before the outer put of k=2 runs, so it sees k=1.
        compare: vec![compare(
            "k",
            CompareTarget::Value,
            CompareResult::Equal,
            TargetUnion::Value("1".into()),
        )],
        success: vec![put_op("inner", "saw-1")],
        failure: vec![put_op("inner", "saw-2")],
    };
    let r = s
        .txn(TxnRequest {
            compare: vec![],
            success: vec![
                put_op("k", "2"),
                RequestOp {
                    request: Some(Request::RequestTxn(nested)),
                },
            ],
            failure: vec![],
        })
        .unwrap();
    assert!(r.succeeded);
    assert_eq!(s.get("inner").kvs[0].value, b"saw-1");
    match &r.responses[1].response {
        Some(Response::ResponseTxn(t)) => assert!(t.succeeded),
        other => panic!("{other:?}"),
    }
}

#[test]
fn txn_writing_a_key_twice_is_refused_with_etcds_error() {
    let mut s = Store::new();
    let dup = |success: Vec<RequestOp>| TxnRequest {
        success,
        ..Default::default()
    };
    let nested = |success: Vec<RequestOp>, failure: Vec<RequestOp>| RequestOp {
        request: Some(Request::RequestTxn(TxnRequest {
            compare: vec![],
            success,
            failure,
        })),
    };
    for request in [
        dup(vec![put_op("k", "1"), put_op("k", "2")]),
        dup(vec![delete_op("a", "z"), put_op("k", "2")]),
        dup(vec![
            put_op("k", "1"),
            nested(vec![put_op("k", "2")], vec![]),
        ]),
        dup(vec![
            delete_op("k", ""),
            nested(vec![], vec![put_op("k", "2")]),
        ]),
    ] {
        let err = s.txn(request).unwrap_err();
        assert_eq!(
            err.message,
            "etcdserver: duplicate key given in txn request"
        );
    }
    // The two branches of one nested txn exclude each other, so both may put a key.
    s.txn(dup(vec![nested(
        vec![put_op("k", "1")],
        vec![put_op("k", "2")],
    )]))
    .unwrap();
    // Success and failure of the outer txn are checked separately.
    s.txn(TxnRequest {
        compare: vec![],
        success: vec![put_op("k", "1")],
        failure: vec![put_op("k", "2")],
    })
    .unwrap();
    assert_eq!(s.revision(), 3);
}

#[test]
fn txn_refused_on_its_chosen_path_changes_nothing() {
    let mut s = Store::new();
    s.put("k", "1");
    let before = s.revision();
    let err = s
        .txn(TxnRequest {
            compare: vec![],
            success: vec![
                put_op("a", "1"),
                RequestOp {
                    request: Some(Request::RequestPut(PutRequest {
                        key: "b".into(),
                        value: "1".into(),
                        lease: 999,
                        ..Default::default()
                    })),
                },
            ],
            failure: vec![],
        })
        .unwrap_err();
    assert_eq!(err.message, "etcdserver: requested lease not found");
    assert_eq!(s.revision(), before);
    assert!(s.get("a").kvs.is_empty());
}

#[test]
fn txn_with_too_many_operations_is_refused() {
    let mut s = Store::new();
    let ops = (0..129).map(|i| put_op(&format!("k{i}"), "v")).collect();
    let err = s
        .txn(TxnRequest {
            success: ops,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        err.message,
        "etcdserver: too many operations in txn request"
    );
}

#[test]
fn lease_revoke_deletes_its_keys_in_one_revision() {
    let mut s = Store::new();
    let granted = match s
        .apply(Op::LeaseGrant(LeaseGrantRequest { ttl: 30, id: 0 }))
        .result
    {
        Some(Outcome::LeaseGrant(g)) => g,
        other => panic!("{other:?}"),
    };
    assert!(granted.id > 0, "server-chosen lease ids are positive");
    for k in ["x", "y", "z"] {
        s.put_request(PutRequest {
            key: k.into(),
            value: "v".into(),
            lease: granted.id,
            ..Default::default()
        })
        .unwrap();
    }
    s.put("kept", "v");
    assert_eq!(s.sm.lease_keys(granted.id).unwrap().len(), 3);
    let before = s.revision();
    s.apply(Op::LeaseRevoke(LeaseRevokeRequest { id: granted.id }));
    assert_eq!(s.revision(), before + 1);
    assert_eq!(
        keys(
            &s.range(RangeRequest {
                key: vec![0],
                range_end: vec![0],
                ..Default::default()
            })
            .unwrap()
        ),
        ["kept"]
    );
    assert!(s.sm.lease(granted.id).unwrap().is_none());
    match s
        .apply(Op::LeaseRevoke(LeaseRevokeRequest { id: granted.id }))
        .result
    {
        Some(Outcome::Error(e)) => assert_eq!(e.message, "etcdserver: requested lease not found"),
        other => panic!("{other:?}"),
    }
    match s
        .apply(Op::LeaseGrant(LeaseGrantRequest { ttl: 30, id: 5 }))
        .result
    {
        Some(Outcome::LeaseGrant(g)) => assert_eq!(g.id, 5),
        other => panic!("{other:?}"),
    }
    match s
        .apply(Op::LeaseGrant(LeaseGrantRequest { ttl: 30, id: 5 }))
        .result
    {
        Some(Outcome::Error(e)) => assert_eq!(e.message, "etcdserver: lease already exists"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_duplicate_request_in_a_session_is_answered_from_memory_not_applied_again() {
    let mut s = Store::new();
    let session = match s
        .apply(Op::OpenSession(OpenSession { ttl_ms: 60_000 }))
        .result
    {
        Some(Outcome::SessionOpened(o)) => o.session_id,
        other => panic!("{other:?}"),
    };
    let command = |sequence: u64, acked_below: u64, value: &str| Command {
        session_id: session,
        sequence,
        acked_below,
        proposed_at_ms: 5_000,
        op: Some(Op::Put(PutRequest {
            key: "counter".into(),
            value: value.into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let first = s.apply_command(command(1, 1, "a"));
    let retry = s.apply_command(command(1, 1, "a"));
    assert_eq!(first, retry);
    assert_eq!(
        s.get("counter").kvs[0].version,
        1,
        "the retry was not applied"
    );
    s.apply_command(command(2, 2, "b"));
    assert_eq!(s.get("counter").kvs[0].version, 2);
    // Sequence 1 was acknowledged (acked_below 2): a late copy is refused, not applied.
    match s.apply_command(command(1, 1, "a")).result {
        Some(Outcome::Error(e)) => assert_eq!(e.code, Code::SessionSequence as i32),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.get("counter").kvs[0].version, 2);
}

#[test]
fn an_expired_session_is_refused_in_log_time() {
    let mut s = Store::new();
    let session = match s
        .apply(Op::OpenSession(OpenSession { ttl_ms: 2_000 }))
        .result
    {
        Some(Outcome::SessionOpened(o)) => o.session_id,
        other => panic!("{other:?}"),
    };
    let late = Command {
        session_id: session,
        sequence: 1,
        acked_below: 1,
        proposed_at_ms: 1_000_000,
        op: Some(Op::Put(PutRequest {
            key: "k".into(),
            value: "v".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    match s.apply_command(late.clone()).result {
        Some(Outcome::Error(e)) => {
            assert_eq!(e.code, Code::SessionExpired as i32);
            assert!(e.message.contains("open a new session"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.get("k").kvs.is_empty());
    assert!(s.sm.session(session).unwrap().is_none());
}

#[test]
fn sessions_left_to_expire_are_forgotten_when_another_opens() {
    let mut s = Store::new();
    let open = |s: &mut Store, ttl_ms: i64, at_ms: i64| match s
        .apply_command(Command {
            proposed_at_ms: at_ms,
            op: Some(Op::OpenSession(OpenSession { ttl_ms })),
            ..Default::default()
        })
        .result
    {
        Some(Outcome::SessionOpened(o)) => o.session_id,
        other => panic!("{other:?}"),
    };
    let abandoned = open(&mut s, 2_000, 10_000);
    let lasting = open(&mut s, 60_000, 10_000);
    let remembered = s.apply_command(Command {
        session_id: abandoned,
        sequence: 1,
        acked_below: 1,
        proposed_at_ms: 10_500,
        op: Some(Op::Put(PutRequest {
            key: "k".into(),
            value: "v".into(),
            ..Default::default()
        })),
        ..Default::default()
    });
    assert!(matches!(remembered.result, Some(Outcome::Put(_))));
    open(&mut s, 2_000, 11_000);
    assert!(
        s.sm.session(abandoned).unwrap().is_some(),
        "not expired yet at 11 s"
    );
    let later = open(&mut s, 2_000, 20_000);
    assert!(
        s.sm.session(abandoned).unwrap().is_none(),
        "idle past its TTL in log time, it is forgotten with its results"
    );
    assert!(s.sm.session(lasting).unwrap().is_some());
    assert!(s.sm.session(later).unwrap().is_some());
}

#[test]
fn the_same_log_gives_the_same_state_and_hash() {
    let run = || {
        let mut s = Store::new();
        for i in 0..200 {
            s.put(&format!("k{}", i % 17), &format!("v{i}"));
            if i % 13 == 0 {
                s.delete(&format!("k{}", i % 5), "", false).unwrap();
            }
        }
        s.apply(Op::Compaction(CompactionRequest {
            revision: 100,
            physical: false,
        }));
        s.sm.hash_kv(0).unwrap()
    };
    assert_eq!(run(), run());
}

/// Reads of one key at the current revision are served from the current-version cache;
/// reads naming the revision go through a RocksDB snapshot. Both must answer alike:
/// values, tombstones, keys never written, every flag and filter, and the header.
#[test]
fn a_current_read_of_one_key_answers_as_a_read_at_that_revision_does() {
    let mut s = Store::new();
    for i in 0..40 {
        s.put(&format!("k{}", i % 7), &format!("v{i}"));
    }
    s.delete("k3", "", false).unwrap();
    s.apply(Op::Compaction(CompactionRequest {
        revision: 10,
        physical: false,
    }));
    s.put("k5", "last");
    let current = s.revision();
    let variants = |key: &str| {
        let base = RangeRequest {
            key: key.into(),
            ..Default::default()
        };
        vec![
            base.clone(),
            RangeRequest {
                keys_only: true,
                ..base.clone()
            },
            RangeRequest {
                count_only: true,
                ..base.clone()
            },
            RangeRequest {
                min_mod_revision: current,
                ..base.clone()
            },
            RangeRequest {
                max_create_revision: 3,
                ..base.clone()
            },
            RangeRequest {
                limit: 1,
                sort_order: SortOrder::Descend as i32,
                sort_target: SortTarget::Value as i32,
                ..base
            },
        ]
    };
    for key in ["k0", "k3", "k5", "never"] {
        for request in variants(key) {
            let cached = s.range(request.clone()).unwrap();
            let at_revision = s
                .range(RangeRequest {
                    revision: current,
                    ..request.clone()
                })
                .unwrap();
            assert_eq!(cached, at_revision, "{request:?}");
            // What a server answers from memory, without the blocking pool: the same,
            // from the cache for the keys the writes above put there, from the memtables
            // for the others.
            let from_memory = s.sm.range_in_memory(&Caller::Member, &request).unwrap();
            assert_eq!(from_memory, Some(at_revision), "{request:?}");
        }
    }
    // What the cache cannot answer, the memtables do: a range, a read at a revision.
    let prefix = RangeRequest {
        key: b"k".to_vec(),
        range_end: prefix_end("k"),
        ..Default::default()
    };
    let at_revision = RangeRequest {
        key: b"k5".to_vec(),
        revision: current - 3,
        ..Default::default()
    };
    for request in [prefix, at_revision] {
        assert_eq!(
            s.sm.range_in_memory(&Caller::Member, &request).unwrap(),
            Some(s.range(request.clone()).unwrap()),
            "{request:?}"
        );
    }
    assert_eq!(s.get("k5").kvs[0].value, b"last");
    assert_eq!(s.get("k5").header.unwrap().revision, current);
    assert!(s.get("k3").kvs.is_empty(), "deleted");
}

#[test]
fn a_txn_that_only_reads_is_answered_from_a_snapshot_as_applying_it_would() {
    use vane_raft_store::{reads_only, reads_serializable};

    let mut s = Store::new();
    for i in 0..12 {
        s.put(&format!("a{}", i % 4), &format!("v{i}"));
    }
    s.put("b", "1");
    s.delete("a3", "", false).unwrap();
    s.apply(Op::Compaction(CompactionRequest {
        revision: 5,
        physical: false,
    }));
    let current = s.revision();
    let txn_op = |txn: TxnRequest| RequestOp {
        request: Some(Request::RequestTxn(txn)),
    };
    let range_op = |request: RangeRequest| RequestOp {
        request: Some(Request::RequestRange(request)),
    };
    let a_prefix = RangeRequest {
        key: b"a".to_vec(),
        range_end: prefix_end("a"),
        ..Default::default()
    };
    let b_is_1 = compare(
        "b",
        CompareTarget::Value,
        CompareResult::Equal,
        TargetUnion::Value("1".into()),
    );
    let b_is_2 = compare(
        "b",
        CompareTarget::Value,
        CompareResult::Equal,
        TargetUnion::Value("2".into()),
    );
    let missing = compare(
        "never",
        CompareTarget::Version,
        CompareResult::Equal,
        TargetUnion::Version(0),
    );
    let txns = vec![
        // Each branch, with ranges of every shape.
        TxnRequest {
            compare: vec![b_is_1.clone()],
            success: vec![
                get_op("a1"),
                range_op(RangeRequest {
                    limit: 2,
                    sort_order: SortOrder::Descend as i32,
                    sort_target: SortTarget::Mod as i32,
                    ..a_prefix.clone()
                }),
                range_op(RangeRequest {
                    count_only: true,
                    ..a_prefix.clone()
                }),
            ],
            failure: vec![get_op("b")],
        },
        TxnRequest {
            compare: vec![b_is_1.clone(), b_is_2.clone()],
            success: vec![get_op("a1")],
            failure: vec![
                get_op("b"),
                range_op(RangeRequest {
                    revision: 7,
                    ..a_prefix.clone()
                }),
            ],
        },
        // Nested levels decide their own branches.
        TxnRequest {
            compare: vec![missing],
            success: vec![txn_op(TxnRequest {
                compare: vec![b_is_2.clone()],
                success: vec![get_op("a0")],
                failure: vec![get_op("a2"), get_op("a3")],
            })],
            failure: vec![],
        },
        TxnRequest::default(),
        // Errors on the branch taken are the ones applying gives: a compacted revision,
        // a future one.
        TxnRequest {
            compare: vec![b_is_1.clone()],
            success: vec![range_op(RangeRequest {
                revision: 3,
                ..a_prefix.clone()
            })],
            failure: vec![],
        },
        TxnRequest {
            compare: vec![b_is_2.clone()],
            success: vec![],
            failure: vec![range_op(RangeRequest {
                revision: current + 1,
                ..a_prefix.clone()
            })],
        },
    ];
    for txn in txns {
        assert!(reads_only(&txn), "{txn:?}");
        let read = s.sm.txn_read_as(&Caller::Member, &txn);
        let applied = s.txn(txn.clone());
        assert_eq!(
            s.revision(),
            current,
            "a txn that only reads changes nothing"
        );
        match (read, applied) {
            (Ok(read), Ok(applied)) => assert_eq!(read, applied, "{txn:?}"),
            (Err(read), Err(applied)) => {
                assert_eq!(
                    read.command_code().map(|c| c as i32),
                    Some(applied.code),
                    "{txn:?}"
                );
                assert_eq!(read.to_string(), applied.message, "{txn:?}");
            }
            (read, applied) => panic!("{txn:?}: read {read:?}, applied {applied:?}"),
        }
    }

    // A txn that writes, at any depth, is not a read, and is refused as one.
    let writes = TxnRequest {
        compare: vec![b_is_2.clone()],
        success: vec![get_op("a1")],
        failure: vec![txn_op(TxnRequest {
            success: vec![put_op("b", "3")],
            ..Default::default()
        })],
    };
    assert!(!reads_only(&writes));
    assert!(s.sm.txn_read_as(&Caller::Member, &writes).is_err());
    assert_eq!(s.get("b").kvs[0].value, b"1");
    assert_eq!(s.revision(), current);

    // Served without a read index only when every range, at every depth, asks for it.
    let serializable = |key: &str| {
        range_op(RangeRequest {
            key: key.into(),
            serializable: true,
            ..Default::default()
        })
    };
    let nested_serializable = TxnRequest {
        success: vec![
            serializable("a1"),
            txn_op(TxnRequest {
                failure: vec![serializable("a2")],
                ..Default::default()
            }),
        ],
        ..Default::default()
    };
    assert!(reads_serializable(&nested_serializable));
    let one_linearizable = TxnRequest {
        failure: vec![get_op("b")],
        ..nested_serializable.clone()
    };
    assert!(!reads_serializable(&one_linearizable));
    let compares_alone = TxnRequest {
        compare: vec![b_is_1],
        ..Default::default()
    };
    assert!(reads_only(&compares_alone));
    assert!(!reads_serializable(&compares_alone));
}

#[test]
fn a_read_from_memory_leaves_what_needs_the_disk_or_many_records_to_the_blocking_pool() {
    use vane_raft_store::IN_MEMORY_RECORDS_MAX;

    let mut s = Store::new();
    let keys = IN_MEMORY_RECORDS_MAX + 50;
    for i in 0..keys {
        s.put(&format!("m/{i:04}"), "v");
    }
    let all = RangeRequest {
        key: b"m/".to_vec(),
        range_end: prefix_end("m/"),
        ..Default::default()
    };
    let hundred = RangeRequest {
        key: b"m/0100".to_vec(),
        range_end: b"m/0200".to_vec(),
        ..Default::default()
    };
    let txn = TxnRequest {
        success: vec![get_op("m/0007"), get_op("m/0250")],
        ..Default::default()
    };
    // More records than an async thread should read at once: left to the blocking pool,
    // and counting them is no way around it.
    assert_eq!(s.sm.range_in_memory(&Caller::Member, &all).unwrap(), None);
    let count_all = RangeRequest {
        count_only: true,
        ..all.clone()
    };
    assert_eq!(
        s.sm.range_in_memory(&Caller::Member, &count_all).unwrap(),
        None
    );
    assert_eq!(
        s.range(count_all).unwrap().count,
        i64::try_from(keys).unwrap()
    );
    let range = s.range(hundred.clone()).unwrap();
    assert_eq!(range.kvs.len(), 100);
    assert_eq!(
        s.sm.range_in_memory(&Caller::Member, &hundred).unwrap(),
        Some(range.clone())
    );
    let answered = s.sm.txn_read_as(&Caller::Member, &txn).unwrap();
    assert_eq!(
        s.sm.txn_read_in_memory(&Caller::Member, &txn).unwrap(),
        Some(answered.clone())
    );

    // After a restart the keys are in table files, and no cache holds them: a read from
    // memory declines rather than wait on the disk, until a read that may wait has
    // brought their blocks into the block cache.
    drop(s.sm.build_snapshot().unwrap());
    let s = s.reopen();
    assert_eq!(
        s.sm.range_in_memory(&Caller::Member, &hundred).unwrap(),
        None
    );
    assert_eq!(
        s.sm.txn_read_in_memory(&Caller::Member, &txn).unwrap(),
        None
    );
    assert_eq!(s.sm.range_as(&Caller::Member, &hundred).unwrap(), range);
    assert_eq!(
        s.sm.range_in_memory(&Caller::Member, &hundred).unwrap(),
        Some(range)
    );
    assert_eq!(s.sm.txn_read_as(&Caller::Member, &txn).unwrap(), answered);
    assert_eq!(
        s.sm.txn_read_in_memory(&Caller::Member, &txn).unwrap(),
        Some(answered)
    );
}
