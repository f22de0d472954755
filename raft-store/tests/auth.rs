//! Auth as replicated state, on a real state machine: etcd's rules for auth changes,
//! permissions checked at apply against the auth state at each command's place in the
//! log, the member's own commands exempt, and snapshots that carry users, roles and the
//! signing key.

mod common;

use common::Store;
use vane_proto::authpb::Permission;
use vane_proto::authpb::permission::Type as PermissionType;
use vane_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{
    AuthRoleAddRequest, AuthRoleGrantPermissionRequest, AuthUserDeleteRequest,
    AuthUserGrantRoleRequest, AuthUserRevokeRoleRequest, Compare, LeaseGrantRequest,
    LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use vane_proto::raft::command::Op;
use vane_proto::raft::command_error::Code;
use vane_proto::raft::command_result::Result as Outcome;
use vane_proto::raft::{AuthEnable, AuthUserAdd, Command, CommandResult, LogId};
use vane_raft_store::auth::{Access, Caller};
use vane_raft_store::{ApplyItem, ApplyPayload, AuthError, StoreError};

fn command(principal: &str, op: Op) -> Command {
    Command {
        principal: principal.into(),
        op: Some(op),
        ..Default::default()
    }
}

fn code_of(result: &CommandResult) -> Option<Code> {
    match &result.result {
        Some(Outcome::Error(e)) => Some(Code::try_from(e.code).expect("known code")),
        _ => None,
    }
}

fn auth_revision(result: &CommandResult) -> u64 {
    match &result.result {
        Some(Outcome::AuthChanged(changed)) => changed.auth_revision,
        other => panic!("expected an auth change, got {other:?}"),
    }
}

fn user_add(name: &str) -> Op {
    Op::AuthUserAdd(AuthUserAdd {
        name: name.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        no_password: false,
    })
}

fn grant_role(user: &str, role: &str) -> Op {
    Op::AuthUserGrantRole(AuthUserGrantRoleRequest {
        user: user.into(),
        role: role.into(),
    })
}

fn put(key: &str) -> Op {
    Op::Put(PutRequest {
        key: key.into(),
        value: b"v".to_vec(),
        ..Default::default()
    })
}

fn enable() -> Op {
    Op::AuthEnable(AuthEnable {
        token_key: vec![7; 32],
    })
}

/// Root with the root role, role `app` with readwrite on `/app/`, user `u` holding it,
/// auth on.
fn with_auth(store: &mut Store) {
    for op in [
        user_add("root"),
        grant_role("root", "root"),
        Op::AuthRoleAdd(AuthRoleAddRequest { name: "app".into() }),
        Op::AuthRoleGrantPermission(AuthRoleGrantPermissionRequest {
            name: "app".into(),
            perm: Some(Permission {
                perm_type: PermissionType::Readwrite as i32,
                key: b"/app/".to_vec(),
                range_end: b"/app0".to_vec(),
            }),
        }),
        user_add("u"),
        grant_role("u", "app"),
        enable(),
    ] {
        let result = store.apply(op);
        assert_eq!(code_of(&result), None, "{result:?}");
    }
}

#[test]
fn auth_changes_follow_etcds_rules_and_raise_the_auth_revision() {
    let mut store = Store::new();
    assert_eq!(store.sm.auth_state().unwrap().revision, 1);
    assert_eq!(
        code_of(&store.apply(enable())),
        Some(Code::RootUserNotExist)
    );
    assert_eq!(auth_revision(&store.apply(user_add("root"))), 2);
    assert_eq!(
        code_of(&store.apply(user_add("root"))),
        Some(Code::UserAlreadyExist)
    );
    assert_eq!(code_of(&store.apply(user_add(""))), Some(Code::UserEmpty));
    assert_eq!(
        code_of(&store.apply(enable())),
        Some(Code::RootRoleNotExist)
    );
    // `root` may be granted before a role record of that name exists, as in etcd.
    assert_eq!(auth_revision(&store.apply(grant_role("root", "root"))), 3);
    assert_eq!(
        auth_revision(&store.apply(grant_role("root", "root"))),
        3,
        "granting a role twice changes nothing"
    );
    assert_eq!(
        code_of(&store.apply(grant_role("root", "nosuch"))),
        Some(Code::RoleNotFound)
    );
    assert_eq!(auth_revision(&store.apply(enable())), 4);
    let state = store.sm.auth_state().unwrap();
    assert!(state.enabled);
    assert_eq!(state.token_key, vec![7; 32]);

    // From here on auth changes need root, and root stays root.
    let as_root = |op| command("root", op);
    let delete_root = Op::AuthUserDelete(AuthUserDeleteRequest {
        name: "root".into(),
    });
    assert_eq!(
        code_of(&store.apply_command(as_root(delete_root))),
        Some(Code::InvalidAuthMgmt)
    );
    let revoke_root = Op::AuthUserRevokeRole(AuthUserRevokeRoleRequest {
        name: "root".into(),
        role: "root".into(),
    });
    assert_eq!(
        code_of(&store.apply_command(as_root(revoke_root))),
        Some(Code::InvalidAuthMgmt)
    );
    assert_eq!(
        code_of(&store.apply_command(command("", user_add("x")))),
        Some(Code::UserEmpty)
    );
    assert_eq!(
        code_of(&store.apply_command(as_root(user_add("x")))),
        None,
        "root manages users"
    );
    assert!(store.sm.auth_user("x").unwrap().is_some());
}

#[test]
fn apply_checks_the_principal_and_exempts_the_member() {
    let mut store = Store::new();
    with_auth(&mut store);
    let before = store.revision();

    assert_eq!(
        code_of(&store.apply_command(command("u", put("/other/x")))),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        code_of(&store.apply_command(command("", put("/app/x")))),
        Some(Code::UserEmpty)
    );
    assert_eq!(
        code_of(&store.apply_command(command("ghost", put("/app/x")))),
        Some(Code::PermissionDenied)
    );
    assert_eq!(store.revision(), before, "refused writes change nothing");
    assert_eq!(
        code_of(&store.apply_command(command("u", put("/app/x")))),
        None
    );
    assert_eq!(
        code_of(&store.apply_command(command("root", put("/other/x")))),
        None
    );

    // A lease holding a key u may not write: u may not revoke it, the member may (its
    // expiry), and u may not attach more keys to it.
    let grant = store.apply_command(command(
        "root",
        Op::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 9 }),
    ));
    assert_eq!(code_of(&grant), None);
    let attach = Op::Put(PutRequest {
        key: b"/other/leased".to_vec(),
        lease: 9,
        ..Default::default()
    });
    assert_eq!(code_of(&store.apply_command(command("root", attach))), None);
    let attach_mine = Op::Put(PutRequest {
        key: b"/app/leased".to_vec(),
        lease: 9,
        ..Default::default()
    });
    assert_eq!(
        code_of(&store.apply_command(command("u", attach_mine))),
        Some(Code::PermissionDenied)
    );
    let revoke = Op::LeaseRevoke(LeaseRevokeRequest { id: 9 });
    assert_eq!(
        code_of(&store.apply_command(command("u", revoke.clone()))),
        Some(Code::PermissionDenied)
    );
    let by_member = Command {
        from_member: true,
        op: Some(revoke),
        ..Default::default()
    };
    assert_eq!(code_of(&store.apply_command(by_member)), None);
}

#[test]
fn a_revoke_takes_effect_at_its_place_in_the_batch() {
    let mut store = Store::new();
    with_auth(&mut store);
    let revoke = Op::AuthUserRevokeRole(AuthUserRevokeRoleRequest {
        name: "u".into(),
        role: "app".into(),
    });
    let items: Vec<ApplyItem> = [
        command("u", put("/app/a")),
        command("root", revoke),
        command("u", put("/app/b")),
    ]
    .into_iter()
    .map(|c| {
        let index = store.next_index;
        store.next_index += 1;
        ApplyItem {
            log_id: LogId {
                term: 1,
                node_id: 1,
                index,
            },
            payload: ApplyPayload::Command(c),
        }
    })
    .collect();
    let results = store.sm.apply(&items).unwrap();
    assert_eq!(code_of(&results[0]), None);
    assert_eq!(code_of(&results[1]), None);
    assert_eq!(code_of(&results[2]), Some(Code::PermissionDenied));

    let read = RangeRequest {
        key: b"/app/a".to_vec(),
        ..Default::default()
    };
    // The key is in the current-version cache, but with auth on the cache alone does not
    // answer: the read from memory checks the caller as the blocking one does.
    for refused in [
        store.sm.range_as(&Caller::User("u".into()), &read),
        store
            .sm
            .range_in_memory(&Caller::User("u".into()), &read)
            .map(|answer| answer.expect("in memory")),
    ] {
        assert!(
            matches!(refused, Err(StoreError::Auth(AuthError::PermissionDenied))),
            "{refused:?}"
        );
    }
    assert_eq!(
        store
            .sm
            .range_in_memory(&Caller::User("root".into()), &read)
            .unwrap()
            .expect("in memory")
            .kvs
            .len(),
        1
    );
    assert_eq!(
        store
            .sm
            .range_as(&Caller::User("root".into()), &read)
            .unwrap()
            .kvs
            .len(),
        1
    );
}

#[test]
fn a_snapshot_carries_users_roles_and_the_signing_key() {
    let mut source = Store::new();
    with_auth(&mut source);
    let snapshot = source.sm.build_snapshot().unwrap();

    let target = Store::new();
    target
        .sm
        .install_snapshot(&common::written_out(&snapshot).1)
        .unwrap();
    assert_eq!(
        target.sm.auth_state().unwrap(),
        source.sm.auth_state().unwrap()
    );
    assert_eq!(
        target.sm.auth_users().unwrap(),
        source.sm.auth_users().unwrap()
    );
    assert_eq!(
        target.sm.auth_roles().unwrap(),
        source.sm.auth_roles().unwrap()
    );
    let u = Caller::User("u".into());
    target
        .sm
        .check_access(&u, &[Access::write(b"/app/x", b"")])
        .unwrap();
    assert!(
        target
            .sm
            .check_access(&u, &[Access::write(b"/other", b"")])
            .is_err()
    );
}

#[test]
fn a_client_session_answers_only_the_user_that_opened_it() {
    use vane_proto::raft::{CloseSession, OpenSession};
    let mut store = Store::new();
    with_auth(&mut store);
    let opened = store.apply_command(command(
        "u",
        Op::OpenSession(OpenSession { ttl_ms: 60_000 }),
    ));
    let session_id = match opened.result {
        Some(Outcome::SessionOpened(opened)) => opened.session_id,
        other => panic!("expected a session, got {other:?}"),
    };
    let in_session = |principal: &str, op: Op| Command {
        session_id,
        sequence: 1,
        principal: principal.into(),
        op: Some(op),
        ..Default::default()
    };
    let first = store.apply_command(in_session("u", put("/app/s")));
    assert_eq!(code_of(&first), None);
    // Another user replaying that sequence must not get u's remembered answer, even
    // with a request of its own that it may make.
    let replayed = store.apply_command(in_session("root", put("/other/s")));
    assert_eq!(code_of(&replayed), Some(Code::PermissionDenied));
    assert_eq!(
        store.apply_command(in_session("u", put("/app/s"))),
        first,
        "the owner's retry is answered from memory"
    );
    let close = Op::CloseSession(CloseSession { session_id });
    assert_eq!(
        code_of(&store.apply_command(command("root", close.clone()))),
        Some(Code::PermissionDenied)
    );
    assert_eq!(code_of(&store.apply_command(command("u", close))), None);
}

#[test]
fn a_txn_answered_as_a_read_needs_read_access_to_every_compare_and_range() {
    let mut store = Store::new();
    with_auth(&mut store);
    let result = store.apply_command(command("u", put("/app/a")));
    assert_eq!(code_of(&result), None, "{result:?}");
    let range = |key: &[u8]| RequestOp {
        request: Some(Request::RequestRange(RangeRequest {
            key: key.to_vec(),
            ..Default::default()
        })),
    };
    let compare_on = |key: &[u8]| Compare {
        key: key.to_vec(),
        target: CompareTarget::Version as i32,
        result: CompareResult::Greater as i32,
        target_union: Some(TargetUnion::Version(0)),
        ..Default::default()
    };
    let inside = TxnRequest {
        compare: vec![compare_on(b"/app/a")],
        success: vec![range(b"/app/a")],
        failure: vec![],
    };
    let answered = store
        .sm
        .txn_read_as(&Caller::User("u".into()), &inside)
        .unwrap();
    assert!(answered.succeeded);
    // Outside the user's prefix: a compare alone, and a range on the branch not taken,
    // are each refused, as when the txn is applied.
    for outside in [
        TxnRequest {
            compare: vec![compare_on(b"/other")],
            ..inside.clone()
        },
        TxnRequest {
            failure: vec![range(b"/other")],
            ..inside.clone()
        },
    ] {
        for refused in [
            store.sm.txn_read_as(&Caller::User("u".into()), &outside),
            store
                .sm
                .txn_read_in_memory(&Caller::User("u".into()), &outside)
                .map(|answer| answer.expect("in memory")),
        ] {
            assert!(
                matches!(refused, Err(StoreError::Auth(AuthError::PermissionDenied))),
                "{refused:?}"
            );
        }
        let applied = store.apply_command(command("u", Op::Txn(outside.clone())));
        assert_eq!(code_of(&applied), Some(Code::PermissionDenied));
        assert!(
            store
                .sm
                .txn_read_as(&Caller::User("root".into()), &outside)
                .is_ok()
        );
    }
}
