//! Change requests on a real three-member cluster with auth on: alice authors, bob and
//! carol review (role `reviewers`), dave is on call (the break-glass role), eve holds no
//! role. The namespace needs two approvals from reviewers. The author cannot approve her
//! own request, nor can eve; two approvals apply every operation at one revision; a
//! request whose key another request changed first becomes conflicted without
//! overwriting anything, and applies after a rebase and fresh approvals; rejection,
//! cancellation, break-glass (with a reason, marked for review) and a scheduled apply
//! work as specified.

mod client_common;
mod vanectl_support;

use std::time::Duration;

use client_common::TestCluster;
use vane_client::vane_proto::api::change_request::State;
use vane_client::vane_proto::api::{ApprovalPolicy, ChangeOp, Namespace};
use vane_client::vane_proto::etcdserverpb::{
    AuthEnableRequest, AuthRoleAddRequest, AuthUserAddRequest, AuthUserGrantRoleRequest,
};
use vane_client::{ChangeDecision, Client, ClientConfig, Credentials, Error};
use vanectl_support::vanectl;

async fn as_user(cluster: &TestCluster, user: &str) -> Client {
    let mut config = ClientConfig::new(cluster.cluster.endpoints());
    config.request_timeout = Duration::from_secs(20);
    config.credentials = Some(Credentials::new(user, format!("{user}-pw")));
    Client::connect(config).await.expect("connect")
}

fn put(key: &str, value: &str) -> ChangeOp {
    ChangeOp {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn state(response: &vane_client::vane_proto::api::ChangeResponse) -> State {
    State::try_from(response.change.as_ref().expect("change").state).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_apply_atomically_and_conflicts_overwrite_nothing() {
    let cluster = TestCluster::start(3).await;
    let admin = cluster.client(|_| {}).await;
    for user in ["root", "alice", "bob", "carol", "dave", "eve"] {
        admin
            .user_add(AuthUserAddRequest {
                name: user.to_string(),
                password: format!("{user}-pw"),
                options: None,
            })
            .await
            .expect("user add");
    }
    for role in ["reviewers", "oncall"] {
        admin
            .role_add(AuthRoleAddRequest {
                name: role.to_string(),
            })
            .await
            .expect("role add");
    }
    for (user, role) in [
        ("root", "root"),
        ("bob", "reviewers"),
        ("carol", "reviewers"),
        ("dave", "oncall"),
    ] {
        admin
            .user_grant_role(AuthUserGrantRoleRequest {
                user: user.to_string(),
                role: role.to_string(),
            })
            .await
            .expect("grant role");
    }
    admin
        .create_namespace(Namespace {
            name: "flags".to_string(),
            prefix: b"/flags/".to_vec(),
            schema: r#"{"enum": ["on", "off"]}"#.to_string(),
            approval: Some(ApprovalPolicy {
                approvals_required: 2,
                approver_roles: vec!["reviewers".to_string()],
                allow_self_approval: false,
                break_glass_role: "oncall".to_string(),
            }),
            ..Default::default()
        })
        .await
        .expect("create namespace");
    admin
        .auth_enable(AuthEnableRequest {})
        .await
        .expect("auth enable");
    let [alice, bob, carol, dave, eve] = [
        as_user(&cluster, "alice").await,
        as_user(&cluster, "bob").await,
        as_user(&cluster, "carol").await,
        as_user(&cluster, "dave").await,
        as_user(&cluster, "eve").await,
    ];
    // alice needs write permission on the keys to propose them; root grants it.
    let root = as_user(&cluster, "root").await;
    root.role_add(AuthRoleAddRequest {
        name: "authors".to_string(),
    })
    .await
    .unwrap();
    root.role_grant_permission(
        vane_client::vane_proto::etcdserverpb::AuthRoleGrantPermissionRequest {
            name: "authors".to_string(),
            perm: Some(vane_client::vane_proto::authpb::Permission {
                perm_type: vane_client::vane_proto::authpb::permission::Type::Readwrite as i32,
                key: b"/flags/".to_vec(),
                range_end: b"/flags0".to_vec(),
            }),
        },
    )
    .await
    .unwrap();
    root.user_grant_role(AuthUserGrantRoleRequest {
        user: "alice".to_string(),
        role: "authors".to_string(),
    })
    .await
    .unwrap();

    // An invalid value is refused when the request is opened.
    let invalid = alice
        .create_change("flags", "typo", vec![put("/flags/dark", "yes")])
        .await
        .unwrap_err();
    assert!(matches!(invalid, Error::Invalid { .. }), "{invalid:?}");
    // eve may not even propose: she cannot write the keys.
    let refused = eve
        .create_change("flags", "", vec![put("/flags/dark", r#""on""#)])
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Permission { .. }), "{refused:?}");

    // Request 1: two keys. The author and eve cannot approve; bob and carol can.
    let opened = alice
        .create_change(
            "flags",
            "dark mode and new nav",
            vec![put("/flags/dark", r#""on""#), put("/flags/nav", r#""on""#)],
        )
        .await
        .expect("open");
    assert_eq!(state(&opened), State::Open);
    let first = opened.change.unwrap().id;
    let own = alice
        .decide_change(first, ChangeDecision::Approve, "")
        .await
        .unwrap_err();
    assert!(own.message().contains("cannot approve it"), "{own:?}");
    let outsider = eve
        .decide_change(first, ChangeDecision::Approve, "")
        .await
        .unwrap_err();
    assert!(
        outsider
            .message()
            .contains("holds none of the approver roles"),
        "{outsider:?}"
    );
    let once = bob
        .decide_change(first, ChangeDecision::Approve, "")
        .await
        .unwrap();
    assert_eq!(state(&once), State::Open);
    assert!(
        alice.get("/flags/dark").await.unwrap().is_none(),
        "one approval is not enough"
    );
    let twice = bob
        .decide_change(first, ChangeDecision::Approve, "")
        .await
        .unwrap_err();
    assert!(twice.message().contains("already approved"), "{twice:?}");

    // Request 2 touches /flags/dark too and is opened now, before request 1 applies.
    let competing = alice
        .create_change("flags", "dark off", vec![put("/flags/dark", r#""off""#)])
        .await
        .unwrap()
        .change
        .unwrap()
        .id;

    let applied = carol
        .decide_change(first, ChangeDecision::Approve, "")
        .await
        .unwrap();
    assert_eq!(state(&applied), State::Applied);
    let at = applied.change.unwrap().applied_revision;
    let dark = alice.get("/flags/dark").await.unwrap().unwrap();
    let nav = alice.get("/flags/nav").await.unwrap().unwrap();
    assert_eq!(
        (dark.mod_revision, nav.mod_revision),
        (at, at),
        "one revision"
    );
    assert_eq!(dark.value, br#""on""#);

    // Request 2's base is stale: its last approval marks it conflicted, nothing changes.
    bob.decide_change(competing, ChangeDecision::Approve, "")
        .await
        .unwrap();
    let conflicted = carol
        .decide_change(competing, ChangeDecision::Approve, "")
        .await
        .unwrap();
    assert_eq!(state(&conflicted), State::Conflicted);
    assert_eq!(
        conflicted.change.unwrap().conflicting_keys,
        vec![b"/flags/dark".to_vec()]
    );
    assert_eq!(
        alice.get("/flags/dark").await.unwrap().unwrap().value,
        br#""on""#
    );
    // Rebased, it needs its approvals again, then applies.
    let rebased = alice
        .decide_change(competing, ChangeDecision::Rebase, "")
        .await
        .unwrap();
    assert_eq!(state(&rebased), State::Open);
    assert!(rebased.change.unwrap().approvals.is_empty());
    bob.decide_change(competing, ChangeDecision::Approve, "")
        .await
        .unwrap();
    let done = carol
        .decide_change(competing, ChangeDecision::Approve, "")
        .await
        .unwrap();
    assert_eq!(state(&done), State::Applied);
    assert_eq!(
        alice.get("/flags/dark").await.unwrap().unwrap().value,
        br#""off""#
    );

    // Rejection by a reviewer, cancellation by the author.
    let third = alice
        .create_change("flags", "", vec![put("/flags/beta", r#""on""#)])
        .await
        .unwrap()
        .change
        .unwrap()
        .id;
    let rejected = bob
        .decide_change(third, ChangeDecision::Reject, "not before the release")
        .await
        .unwrap();
    assert_eq!(state(&rejected), State::Rejected);
    let late = carol
        .decide_change(third, ChangeDecision::Approve, "")
        .await
        .unwrap_err();
    assert!(late.message().contains("is REJECTED"), "{late:?}");

    // Break-glass: only the on-call role, only with a reason, and marked.
    let urgent = alice
        .create_change(
            "flags",
            "kill switch",
            vec![put("/flags/payments", r#""off""#)],
        )
        .await
        .unwrap()
        .change
        .unwrap()
        .id;
    let no_role = bob
        .decide_change(urgent, ChangeDecision::BreakGlass, "because")
        .await
        .unwrap_err();
    assert!(
        no_role.message().contains("break-glass role oncall"),
        "{no_role:?}"
    );
    let no_reason = dave
        .decide_change(urgent, ChangeDecision::BreakGlass, " ")
        .await
        .unwrap_err();
    assert!(
        no_reason.message().contains("needs a reason"),
        "{no_reason:?}"
    );
    let glass = dave
        .decide_change(urgent, ChangeDecision::BreakGlass, "INC-1: payments down")
        .await
        .unwrap();
    let glass = glass.change.unwrap();
    assert!(
        glass.break_glass && glass.state == State::Applied as i32,
        "{glass:?}"
    );
    assert_eq!(glass.decided_by, "dave");

    // Scheduled: approved now, applied by the leader two seconds later.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let scheduled = alice
        .create_change_at(
            "flags",
            "launch",
            vec![put("/flags/launch", r#""on""#)],
            now_ms + 2_000,
        )
        .await
        .unwrap()
        .change
        .unwrap()
        .id;
    bob.decide_change(scheduled, ChangeDecision::Approve, "")
        .await
        .unwrap();
    let waiting = carol
        .decide_change(scheduled, ChangeDecision::Approve, "")
        .await
        .unwrap();
    assert_eq!(state(&waiting), State::Approved);
    assert!(
        alice.get("/flags/launch").await.unwrap().is_none(),
        "not before its time"
    );
    let mut applied_on_time = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = alice.get_change(scheduled).await.unwrap();
        if state(&now) == State::Applied {
            applied_on_time = now.change;
            break;
        }
    }
    let applied_on_time = applied_on_time.expect("the leader applied the scheduled change");
    assert!(
        applied_on_time.updated_at_ms >= now_ms + 2_000,
        "{applied_on_time:?}"
    );
    assert_eq!(
        alice.get("/flags/launch").await.unwrap().unwrap().value,
        br#""on""#
    );

    // Rollback of /flags/dark to the revision request 1 applied at: a change request of
    // its own, approved like any other, recorded as a rollback.
    let rollback = alice
        .rollback(b"/flags/dark", at, "back to dark mode")
        .await
        .unwrap()
        .change
        .unwrap();
    assert_eq!(rollback.ops[0].value, br#""on""#);
    bob.decide_change(rollback.id, ChangeDecision::Approve, "")
        .await
        .unwrap();
    carol
        .decide_change(rollback.id, ChangeDecision::Approve, "")
        .await
        .unwrap();
    assert_eq!(
        alice.get("/flags/dark").await.unwrap().unwrap().value,
        br#""on""#
    );
    let history = root
        .list_audit(vane_client::vane_proto::api::ListAuditRequest {
            key: b"/flags/dark".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .records;
    let story: Vec<(String, String, i32, u64)> = history
        .iter()
        .map(|r| {
            (
                r.principal.clone(),
                String::from_utf8_lossy(&r.after).into_owned(),
                r.path,
                r.change_id,
            )
        })
        .collect();
    use vane_client::vane_proto::api::audit_record::Path;
    assert_eq!(
        story,
        [
            (
                "carol".to_string(),
                r#""on""#.to_string(),
                Path::ChangeRequest as i32,
                first
            ),
            (
                "carol".to_string(),
                r#""off""#.to_string(),
                Path::ChangeRequest as i32,
                competing
            ),
            (
                "carol".to_string(),
                r#""on""#.to_string(),
                Path::Rollback as i32,
                rollback.id
            ),
        ]
    );
    let not_auditor = alice.verify_audit().await.unwrap_err();
    assert!(
        matches!(not_auditor, Error::Permission { .. }),
        "{not_auditor:?}"
    );
    assert!(root.verify_audit().await.unwrap().intact);

    // The CLI shows the same story; every member lists the same requests.
    let endpoints = cluster.cluster.endpoints().join(",");
    let listed = tokio::task::block_in_place(|| {
        vanectl(
            &endpoints,
            &["--user=alice:alice-pw", "cr", "list", "--ns", "flags"],
            None,
        )
    });
    assert_eq!(listed.code, 0, "{listed:?}");
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{listed:?}");
    assert!(
        lines[2].contains("APPLIED")
            && lines[2].contains("break-glass (dave: INC-1: payments down), needs review"),
        "{lines:?}"
    );
    assert!(
        lines[3].contains("REJECTED by bob: not before the release"),
        "{lines:?}"
    );
    assert!(
        lines[5].contains(&format!(
            "Change request {first} in flags: APPLIED at revision {at}, approved by bob, carol"
        )),
        "{lines:?}"
    );
    let mut seen = Vec::new();
    for endpoint in cluster.cluster.endpoints() {
        let mut config = ClientConfig::new([endpoint]);
        config.discover_members = false;
        config.credentials = Some(Credentials::new("root", "root-pw"));
        let member = Client::connect(config).await.expect("member");
        seen.push(member.list_changes("", None).await.unwrap().changes);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
    let history = tokio::task::block_in_place(|| {
        vanectl(
            &endpoints,
            &["--user=root:root-pw", "history", "/flags/dark"],
            None,
        )
    });
    assert_eq!(history.stdout.lines().count(), 3, "{history:?}");
    assert!(history.stdout.contains(" carol ROLLBACK #"), "{history:?}");
    let verified = tokio::task::block_in_place(|| {
        vanectl(
            &endpoints,
            &["--user=root:root-pw", "audit", "verify"],
            None,
        )
    });
    assert!(
        verified.stdout.starts_with("audit intact: "),
        "{verified:?}"
    );
}
