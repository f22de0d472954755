//! Impact previews on a real three-member cluster: before a put, a delete or a change
//! request is made, the preview names the keys it touches, whether each would be accepted
//! (schema, approval policy, a change request's base revisions) and the live watchers on
//! every member that would receive it — etcdctl's and named Vane clients', with their
//! member, range and filters honoured — and names a member that is down instead of
//! failing. Nothing previewed is written.

mod client_common;
mod vanectl_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client_common::TestCluster;
use vane_client::vane_proto::api::{
    ApprovalPolicy, ChangeOp, ImpactResponse, Namespace, ProposedWrite,
};
use vane_client::vane_proto::etcdserverpb::watch_create_request::FilterType;
use vane_client::vane_proto::etcdserverpb::{PutRequest, WatchCreateRequest};
use vane_client::{ChangeDecision, Client, ClientConfig};
use vanectl_support::vanectl;

const POOL_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {"max_connections": {"type": "integer", "maximum": 1000}},
  "required": ["max_connections"]
}"#;

fn put(key: &str, value: &str) -> ProposedWrite {
    ProposedWrite {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A client of one member only, calling itself `name`.
async fn named_client(endpoint: &str, name: &str) -> Client {
    let mut config = ClientConfig::new([endpoint]);
    config.discover_members = false;
    config.request_timeout = Duration::from_secs(20);
    config.name = name.to_string();
    Client::connect(config).await.expect("connect")
}

fn watch(key: &str, range_end: &[u8], filters: Vec<i32>) -> WatchCreateRequest {
    WatchCreateRequest {
        key: key.as_bytes().to_vec(),
        range_end: range_end.to_vec(),
        filters,
        ..Default::default()
    }
}

/// Previews `writes` until `ready` holds (watchers register as their streams open).
async fn preview_until(
    client: &Client,
    writes: Vec<ProposedWrite>,
    ready: impl Fn(&ImpactResponse) -> bool,
) -> ImpactResponse {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let impact = client
            .writes_impact(writes.clone(), 0)
            .await
            .expect("impact");
        if ready(&impact) {
            return impact;
        }
        assert!(
            Instant::now() < deadline,
            "the preview never reached the expected state: {impact:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_name_keys_verdicts_and_watchers_on_every_member() {
    let mut cluster = TestCluster::start(3).await;
    let endpoints = cluster.cluster.endpoints();
    let names = cluster.cluster.member_names();
    let admin = cluster.client(|_| {}).await;
    admin
        .create_namespace(Namespace {
            name: "app".into(),
            prefix: b"/app/".to_vec(),
            schema: POOL_SCHEMA.into(),
            ..Default::default()
        })
        .await
        .expect("create app");
    admin
        .create_namespace(Namespace {
            name: "flags".into(),
            prefix: b"/flags/".to_vec(),
            approval: Some(ApprovalPolicy {
                approvals_required: 1,
                allow_self_approval: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("create flags");
    let written = admin
        .put(PutRequest {
            key: b"/app/db".to_vec(),
            value: br#"{"max_connections": 10}"#.to_vec(),
            ..Default::default()
        })
        .await
        .expect("put");
    admin
        .put(PutRequest {
            key: b"/app/cache".to_vec(),
            value: br#"{"max_connections": 4}"#.to_vec(),
            ..Default::default()
        })
        .await
        .expect("put");

    // Watchers on all three members: etcdctl 3.4 on the first, a named Vane client on
    // the second, and on the third one that filters deletes, one on another range (never
    // listed) and one on the flags.
    let etcdctl = Killed(
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                &format!("--endpoints={}", endpoints[0]),
                "watch",
                "/app/",
                "--prefix",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcdctl watch"),
    );
    let billing = named_client(&endpoints[1], "billing-7").await;
    let mut billing_watch = billing
        .watch(watch("/app/db", b"", vec![]))
        .await
        .expect("watch");
    let third = named_client(&endpoints[2], "auditor").await;
    let _no_delete = third
        .watch(watch("/app/", b"/app0", vec![FilterType::Nodelete as i32]))
        .await
        .expect("watch");
    let _elsewhere = third
        .watch(watch("/other/", b"/other0", vec![]))
        .await
        .expect("watch");
    let _flags = third
        .watch(watch("/flags/", b"/flags0", vec![]))
        .await
        .expect("watch");

    // A valid put: accepted, and three watchers on three members would receive it.
    let valid = vec![put("/app/db", r#"{"max_connections": 20}"#)];
    let impact = preview_until(&admin, valid.clone(), |i| i.watcher_count == 3).await;
    assert!(impact.accepted, "{impact:#?}");
    assert_eq!(impact.key_count, 1);
    let key = &impact.keys[0];
    assert_eq!(key.key, b"/app/db");
    assert_eq!(key.namespace, "app");
    assert_eq!(key.mod_revision, written.header.expect("header").revision);
    assert!(key.accepted && key.changes_value && !key.delete);
    assert!(impact.unanswered.is_empty(), "{impact:#?}");
    let on = |member: usize| {
        impact
            .watchers
            .iter()
            .filter(|w| w.member_name == names[member])
            .collect::<Vec<_>>()
    };
    let (first, second, third_member) = (on(0), on(1), on(2));
    assert_eq!(first.len(), 1, "{impact:#?}");
    assert!(first[0].client.contains("grpc-go"), "{:?}", first[0]);
    assert_eq!(first[0].key, b"/app/");
    assert_eq!(first[0].range_end, b"/app0");
    assert!(first[0].address.starts_with("127.0.0.1:"), "{:?}", first[0]);
    assert_eq!(second.len(), 1, "{impact:#?}");
    assert!(
        second[0].client.starts_with("billing-7 vane-client/"),
        "{:?}",
        second[0]
    );
    assert_eq!(second[0].key, b"/app/db");
    assert!(second[0].range_end.is_empty());
    assert_eq!(second[0].watch_id, billing_watch.watch_id());
    assert_eq!(third_member.len(), 1, "{impact:#?}");
    assert!(third_member[0].client.starts_with("auditor vane-client/"));
    assert!(impact.watchers.iter().all(|w| w.matched_keys == 1));

    // The same put with a value the schema refuses: refused with the pointer and rule.
    let invalid = client_refusal(&admin, put("/app/db", r#"{"max_connections": 5000}"#)).await;
    assert!(!invalid.accepted);
    assert!(
        invalid.keys[0].reason.contains("/max_connections")
            && invalid.keys[0].reason.contains("1000"),
        "{invalid:#?}"
    );
    assert_eq!(
        invalid.watcher_count, 3,
        "a refused write is still previewed"
    );
    // vanectl says so and exits 1.
    let all = endpoints.join(",");
    let ctl = tokio::task::block_in_place(|| {
        vanectl(
            &all,
            &["impact", "put", "/app/db", r#"{"max_connections": 5000}"#],
            None,
        )
    });
    assert_eq!(ctl.code, 1, "{ctl:?}");
    assert!(
        ctl.stdout
            .contains("REFUSED: vane: value of /app/db is invalid at /max_connections"),
        "{ctl:?}"
    );
    assert!(ctl.stdout.contains("billing-7 vane-client/"), "{ctl:?}");
    assert!(
        ctl.stdout.contains("watchers: 3 would receive this change"),
        "{ctl:?}"
    );
    // YAML is previewed as the JSON it stands for.
    let ctl = tokio::task::block_in_place(|| {
        vanectl(
            &all,
            &["impact", "put", "/app/db", "--yaml", "-w", "json"],
            Some("max_connections: 30\n"),
        )
    });
    assert_eq!(ctl.code, 0, "{ctl:?}");
    let json: serde_json::Value = serde_json::from_str(&ctl.stdout).expect("json");
    assert_eq!(json["accepted"], true, "{json}");
    assert_eq!(json["watcher_count"], 3, "{json}");

    // Deleting the prefix touches both keys; the watcher that filters deletes is out.
    let delete = ProposedWrite {
        key: b"/app/".to_vec(),
        range_end: b"/app0".to_vec(),
        delete: true,
        ..Default::default()
    };
    let impact = admin.writes_impact(vec![delete], 0).await.expect("impact");
    assert!(impact.accepted, "{impact:#?}");
    let keys: Vec<&[u8]> = impact.keys.iter().map(|k| k.key.as_slice()).collect();
    assert_eq!(keys, [b"/app/cache".as_slice(), b"/app/db".as_slice()]);
    assert_eq!(impact.watcher_count, 2, "{impact:#?}");
    let counted: u32 = impact.watchers.iter().map(|w| w.matched_keys).sum();
    assert_eq!(
        counted, 3,
        "etcdctl's prefix watch gets both keys, billing's one"
    );

    // A direct write under the flags needs an approval; a change request does not.
    let direct = client_refusal(&admin, put("/flags/dark", "on")).await;
    assert!(
        direct.keys[0].reason.contains("needs 1 approval"),
        "{direct:#?}"
    );
    let ops = |value: &str| {
        vec![ChangeOp {
            key: b"/flags/dark".to_vec(),
            value: value.as_bytes().to_vec(),
            ..Default::default()
        }]
    };
    let first_cr = admin
        .create_change("flags", "on", ops("on"))
        .await
        .expect("cr");
    let second_cr = admin
        .create_change("flags", "off", ops("off"))
        .await
        .expect("cr");
    let (first_id, second_id) = (
        first_cr.change.expect("change").id,
        second_cr.change.expect("change").id,
    );
    let impact = admin.change_impact(second_id, 0).await.expect("impact");
    assert!(impact.accepted, "{impact:#?}");
    assert_eq!(impact.watcher_count, 1, "{impact:#?}");
    assert_eq!(impact.watchers[0].key, b"/flags/");
    // Once the first applies, the second's base has moved: it would conflict.
    admin
        .decide_change(first_id, ChangeDecision::Approve, "")
        .await
        .expect("approve");
    let impact = admin.change_impact(second_id, 0).await.expect("impact");
    assert!(!impact.accepted);
    assert!(impact.keys[0].reason.contains("CONFLICTED"), "{impact:#?}");
    let ctl = tokio::task::block_in_place(|| {
        vanectl(&all, &["impact", "cr", &second_id.to_string()], None)
    });
    assert_eq!(ctl.code, 1, "{ctl:?}");
    assert!(
        ctl.stdout
            .contains("moved since the change request was drafted"),
        "{ctl:?}"
    );
    // Previews wrote nothing: the flag holds the first request's value.
    let flag = admin.get("/flags/dark").await.expect("get").expect("set");
    assert_eq!(flag.value, b"on");
    let db = admin.get("/app/db").await.expect("get").expect("set");
    assert_eq!(db.value, br#"{"max_connections": 10}"#);

    // A cancelled watcher leaves the preview.
    billing_watch.cancel().await;
    preview_until(&admin, valid.clone(), |i| i.watcher_count == 2).await;

    // A member that is down is named, and the rest still answer.
    cluster.cluster.kill(&names[2]).await.expect("kill");
    let impact = preview_until(&admin, valid, |i| !i.unanswered.is_empty()).await;
    assert_eq!(impact.unanswered.len(), 1, "{impact:#?}");
    assert_eq!(impact.unanswered[0].member_name, names[2]);
    assert_eq!(
        impact.watcher_count, 1,
        "only etcdctl's watch is left: {impact:#?}"
    );
    drop(etcdctl);
}

/// A preview of one write that must be refused.
async fn client_refusal(client: &Client, write: ProposedWrite) -> ImpactResponse {
    let impact = client.writes_impact(vec![write], 0).await.expect("impact");
    assert!(!impact.accepted, "{impact:#?}");
    assert!(!impact.keys[0].accepted);
    impact
}
