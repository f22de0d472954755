//! Namespaces on a real three-member cluster: created with vanectl and the client, then
//! enforced on every path a write can take — etcdctl 3.4's put, txn (the branch that
//! runs), del and put --lease, the client's raw calls — with the refusal naming the key,
//! the JSON pointer and the rule; a namespace requiring approvals refuses direct writes
//! and deletes; and every member ends with the same keys and the same namespaces.

mod client_common;
mod vanectl_support;

use std::time::Duration;

use client_common::TestCluster;
use vane_client::vane_proto::api::Namespace;
use vane_client::vane_proto::etcdserverpb::{PutRequest, RangeRequest};
use vane_client::{Client, ClientConfig, Error};
use vanectl_support::{Output, etcdctl_in, vanectl};

const POOL_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "max_connections": {"type": "integer", "minimum": 1, "maximum": 1000},
    "host": {"type": "string"}
  },
  "required": ["host"]
}"#;

fn etcdctl(endpoints: &str, args: &[&str], stdin: Option<&str>) -> Output {
    tokio::task::block_in_place(|| etcdctl_in(None, endpoints, args, stdin))
}

fn ctl(endpoints: &str, args: &[&str]) -> Output {
    tokio::task::block_in_place(|| vanectl(endpoints, args, None))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_enforced_on_every_path_and_agree_on_every_member() {
    let cluster = TestCluster::start(3).await;
    let endpoints = cluster.cluster.endpoints().join(",");
    let client = cluster.client(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let schema_file = dir.path().join("pool.schema.json");
    std::fs::write(&schema_file, POOL_SCHEMA).unwrap();

    // vanectl creates a schema-governed namespace and a two-approval one.
    let created = ctl(
        &endpoints,
        &[
            "ns",
            "create",
            "db",
            "--prefix",
            "/db/",
            "--schema",
            schema_file.to_str().unwrap(),
            "--owner",
            "platform",
            "--description",
            "connection pools",
        ],
    );
    assert_eq!(created.code, 0, "{created:?}");
    assert_eq!(created.stdout, "Namespace db created\n");
    let existing = etcdctl(&endpoints, &["put", "/flags/legacy", "on"], None);
    assert_eq!(existing.code, 0, "{existing:?}");
    let flags = ctl(
        &endpoints,
        &[
            "ns",
            "create",
            "flags",
            "--prefix",
            "/flags/",
            "--approvals",
            "2",
            "--approver-role",
            "reviewers",
            "--env",
            "base",
            "--env",
            "prod:base",
        ],
    );
    assert_eq!(flags.code, 0, "{flags:?}");
    let overlapping = ctl(&endpoints, &["ns", "create", "inner", "--prefix", "/db/x/"]);
    assert_eq!(overlapping.code, 1, "{overlapping:?}");
    assert!(
        overlapping.stderr.contains("overlaps namespace db"),
        "{overlapping:?}"
    );

    // etcdctl put: valid passes; invalid is refused with the key, pointer and rule.
    let ok = etcdctl(
        &endpoints,
        &["put", "/db/pool", r#"{"host":"a","max_connections":10}"#],
        None,
    );
    assert_eq!(ok.code, 0, "{ok:?}");
    let bad = etcdctl(
        &endpoints,
        &["put", "/db/pool", r#"{"host":"a","max_connections":5000}"#],
        None,
    );
    assert_eq!(bad.code, 1, "{bad:?}");
    assert_eq!(
        bad.error_lines(),
        // etcdctl shows a status it does not know as etcd's with its code.
        [
            "Error: rpc error: code = InvalidArgument desc = vane: value of /db/pool is invalid \
          at /max_connections: 5000 is greater than the maximum of 1000 (schema of namespace db)"
        ]
    );
    let not_json = etcdctl(&endpoints, &["put", "/db/raw", "host=a"], None);
    assert!(not_json.stderr.contains("is not JSON"), "{not_json:?}");

    // etcdctl txn: an invalid value in the branch that runs refuses the whole txn.
    // etcdctl's txn language: a double-quoted value with its quotes escaped.
    let txn = r#"
put /free/a 1
put /db/pool "{\"host\":\"b\",\"max_connections\":0}"


"#;
    let smuggled = etcdctl(&endpoints, &["txn"], Some(txn));
    assert_eq!(smuggled.code, 1, "{smuggled:?}");
    assert!(
        smuggled
            .stderr
            .contains("/db/pool is invalid at /max_connections"),
        "{smuggled:?}"
    );
    let free = etcdctl(&endpoints, &["get", "/free/a"], None);
    assert_eq!(free.stdout, "", "nothing of the refused txn was applied");

    // etcdctl put --lease into a governed prefix is refused: expiry would bypass review.
    let lease = etcdctl(&endpoints, &["lease", "grant", "60"], None);
    let lease_id = lease
        .stdout
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    let leased = etcdctl(
        &endpoints,
        &[
            "put",
            "/db/leased",
            r#"{"host":"c"}"#,
            &format!("--lease={lease_id}"),
        ],
        None,
    );
    assert!(
        leased.stderr.contains("cannot be attached to a lease"),
        "{leased:?}"
    );

    // The two-approval namespace refuses direct puts and deletes, from etcdctl and the
    // client alike.
    let direct = etcdctl(&endpoints, &["put", "/flags/dark-mode", "on"], None);
    assert_eq!(direct.code, 1, "{direct:?}");
    assert!(
        direct
            .stderr
            .contains("needs 2 approval(s) in namespace flags; open a change request"),
        "{direct:?}"
    );
    let deleted = etcdctl(&endpoints, &["del", "/", "--prefix"], None);
    assert_eq!(
        deleted.code, 1,
        "a delete over a governed range is refused: {deleted:?}"
    );
    assert!(
        deleted
            .stderr
            .contains("delete of /flags/legacy needs 2 approval(s)"),
        "{deleted:?}"
    );
    let kept = etcdctl(&endpoints, &["get", "/", "--prefix", "--keys-only"], None);
    assert_eq!(
        kept.stdout,
        "/db/pool

/flags/legacy

",
        "nothing was deleted"
    );
    let refused = client
        .put(PutRequest {
            key: b"/flags/x".to_vec(),
            value: b"1".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Conflict { .. }), "{refused:?}");

    // The dry run answers as the write would.
    let verdict = client
        .validate_value("/db/pool", r#"{"host":1}"#)
        .await
        .unwrap();
    assert!(!verdict.valid);
    assert_eq!(verdict.namespace, "db");
    assert!(verdict.reason.contains("at /host"), "{verdict:?}");
    let checked = ctl(
        &endpoints,
        &["schema", "validate", "/db/pool", r#"{"host":"z"}"#],
    );
    assert_eq!(
        checked.stdout, "valid: /db/pool in namespace db\n",
        "{checked:?}"
    );
    let checked = ctl(&endpoints, &["schema", "validate", "/db/pool", "[]"]);
    assert_eq!(checked.code, 1, "{checked:?}");

    // Listing and reading back.
    let listed = ctl(&endpoints, &["ns", "list"]);
    assert_eq!(
        listed.stdout,
        "db, /db/, schema v1, 0 approvals\nflags, /flags/, no schema, 2 approvals\n"
    );
    let shown = ctl(&endpoints, &["ns", "get", "flags"]);
    assert!(
        shown
            .stdout
            .contains("Approvals: 2 from roles reviewers; self-approval forbidden\n"),
        "{shown:?}"
    );
    assert!(
        shown
            .stdout
            .contains("Environments: base, prod (inherits base)\n"),
        "{shown:?}"
    );
    let json = ctl(&endpoints, &["ns", "get", "db", "-w", "json"]);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(parsed["namespace"]["schema"]["required"][0], "host");
    assert_eq!(parsed["namespace"]["owners"][0], "platform");

    // A schema change that the stored value breaks is refused, then forced.
    let strict = dir.path().join("strict.schema.json");
    std::fs::write(&strict, r#"{"type":"object","required":["host","port"]}"#).unwrap();
    let refused = ctl(
        &endpoints,
        &["ns", "update", "db", "--schema", strict.to_str().unwrap()],
    );
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("/db/pool"), "{refused:?}");
    let forced = ctl(
        &endpoints,
        &[
            "ns",
            "update",
            "db",
            "--schema",
            strict.to_str().unwrap(),
            "--force",
        ],
    );
    assert_eq!(
        forced.stdout,
        "Namespace db updated\n1 existing value(s) do not satisfy the new schema:\n\t/db/pool\n",
        "{forced:?}"
    );

    // Every member holds the same keys and the same namespaces.
    let mut hashes = Vec::new();
    let mut namespaces: Vec<Vec<Namespace>> = Vec::new();
    let revision = client
        .range(RangeRequest {
            key: b"/db/pool".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .header
        .expect("header")
        .revision;
    for endpoint in cluster.cluster.endpoints() {
        let member = Client::connect(ClientConfig {
            discover_members: false,
            request_timeout: Duration::from_secs(20),
            ..ClientConfig::new([endpoint.clone()])
        })
        .await
        .expect("connect to one member");
        let listed = member.list_namespaces().await.expect("list on the member");
        namespaces.push(listed.namespaces);
        // A linearizable read first: the member has then applied `revision`.
        member.get("/db/pool").await.expect("read on the member");
        let status = member.hash_kv(&endpoint, revision).await.expect("hashkv");
        hashes.push((status.hash, status.compact_revision));
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
    assert!(
        namespaces.windows(2).all(|w| w[0] == w[1]),
        "{namespaces:?}"
    );
    assert_eq!(namespaces[0].len(), 2);

    // Environments: prod inherits staging inherits base; the schema's default is last.
    let created = ctl(
        &endpoints,
        &[
            "ns",
            "create",
            "app",
            "--prefix",
            "/app/",
            "--env",
            "base",
            "--env",
            "staging:base",
            "--env",
            "prod:staging",
        ],
    );
    assert_eq!(created.code, 0, "{created:?}");
    let with_default = dir.path().join("app.schema.json");
    std::fs::write(
        &with_default,
        r#"{"type":"object","default":{"host":"fallback"}}"#,
    )
    .unwrap();
    let updated = ctl(
        &endpoints,
        &[
            "ns",
            "update",
            "app",
            "--schema",
            with_default.to_str().unwrap(),
        ],
    );
    assert_eq!(updated.code, 0, "{updated:?}");
    for (key, value) in [
        ("/app/base/db", r#"{"host":"base"}"#),
        ("/app/staging/db", r#"{"host":"staging"}"#),
        ("/app/base/cache", r#"{"host":"cache"}"#),
        ("/app/prod/cache", r#"{"host":"cache"}"#),
    ] {
        let put = etcdctl(&endpoints, &["put", key, value], None);
        assert_eq!(put.code, 0, "{put:?}");
    }
    let resolved = ctl(&endpoints, &["resolve", "app", "db", "--env", "prod"]);
    assert_eq!(
        resolved.stdout, "{\"host\":\"staging\"}\nlayer: staging\n",
        "{resolved:?}"
    );
    let resolved = client
        .resolve("app", "base", b"db")
        .await
        .unwrap()
        .resolved
        .unwrap();
    assert_eq!(
        (resolved.layer.as_str(), resolved.value.as_slice()),
        ("base", br#"{"host":"base"}"#.as_slice())
    );
    let fallback = client
        .resolve("app", "prod", b"queue")
        .await
        .unwrap()
        .resolved
        .unwrap();
    assert_eq!(fallback.layer, "default");
    assert_eq!(fallback.value, br#"{"host":"fallback"}"#);
    let unknown = client.resolve("app", "qa", b"db").await.unwrap_err();
    assert!(
        unknown.message().contains("has no environment qa"),
        "{unknown:?}"
    );
    let differences = ctl(&endpoints, &["diff-env", "app", "base", "prod"]);
    assert_eq!(
        differences.stdout,
        "db: base={\"host\":\"base\"} (from base) prod={\"host\":\"staging\"} (from staging)\n",
        "only the keys whose resolved values differ: {differences:?}"
    );
}
