//! The client on a cluster with auth on: it authenticates with its credentials, sends
//! the token with every request (unary calls, watches, lease streams), gets a new
//! token when the cluster refuses the old one (expired, or auth enabled after the client
//! connected), and reports wrong credentials as [`Error::Authentication`] instead of
//! retrying them. Real `vaned` members with `--auth-token-ttl 2`.

mod client_common;

use std::time::Duration;

use client_common::TestCluster;
use vane_client::txn::prefix_range_end;
use vane_client::vane_proto::authpb::Permission;
use vane_client::vane_proto::authpb::permission::Type as PermType;
use vane_client::vane_proto::etcdserverpb::{
    AuthEnableRequest, AuthRoleAddRequest, AuthRoleGrantPermissionRequest, AuthUserAddRequest,
    AuthUserChangePasswordRequest, AuthUserGrantRoleRequest, PutRequest, WatchCreateRequest,
};
use vane_client::{Client, ClientConfig, Credentials, Error};
use vane_cluster::{ClusterSpec, LocalCluster};

/// Token lifetime of the test cluster, in seconds.
const TOKEN_TTL_S: u64 = 2;

async fn start() -> TestCluster {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = ClusterSpec {
        extra_args: vec!["--auth-token-ttl".to_string(), TOKEN_TTL_S.to_string()],
        ..ClusterSpec::new(3, dir.path().join("cluster"))
    };
    let cluster = LocalCluster::start(spec).await.expect("start 3 members");
    TestCluster { cluster, dir }
}

async fn connect(cluster: &TestCluster, user: &str, password: &str) -> Result<Client, Error> {
    let mut config = ClientConfig::new(cluster.cluster.endpoints());
    config.dial_timeout = Duration::from_secs(5);
    config.request_timeout = Duration::from_secs(20);
    config.credentials = Some(Credentials::new(user, password));
    Client::connect(config).await
}

fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// root with the root role, and alice with readwrite on `/app/`.
async fn add_users(admin: &Client) {
    for (name, password) in [("root", "rootpw"), ("alice", "alicepw")] {
        admin
            .user_add(AuthUserAddRequest {
                name: name.to_string(),
                password: password.to_string(),
                options: None,
            })
            .await
            .expect("user add");
    }
    admin
        .role_add(AuthRoleAddRequest {
            name: "app".to_string(),
        })
        .await
        .expect("role add");
    admin
        .role_grant_permission(AuthRoleGrantPermissionRequest {
            name: "app".to_string(),
            perm: Some(Permission {
                perm_type: PermType::Readwrite as i32,
                key: b"/app/".to_vec(),
                range_end: prefix_range_end(b"/app/"),
            }),
        })
        .await
        .expect("grant permission");
    for (user, role) in [("root", "root"), ("alice", "app")] {
        admin
            .user_grant_role(AuthUserGrantRoleRequest {
                user: user.to_string(),
                role: role.to_string(),
            })
            .await
            .expect("grant role");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_obtained_refreshed_and_refused_as_etcd_clients_expect() {
    let cluster = start().await;
    let admin = cluster.client(|_| {}).await;
    add_users(&admin).await;

    // Connected while auth is off: the client goes on without a token.
    let alice = connect(&cluster, "alice", "alicepw")
        .await
        .expect("connect");
    assert_eq!(alice.stats().tokens_obtained, 0);
    alice
        .put(put("/app/before", "1"))
        .await
        .expect("put before auth");

    admin
        .auth_enable(AuthEnableRequest {})
        .await
        .expect("auth enable");

    // Anonymous requests are refused with etcd's words; alice's client notices the same
    // refusal and authenticates.
    let refused = admin.put(put("/app/anonymous", "x")).await.unwrap_err();
    assert_eq!(
        refused.message(),
        "etcdserver: user name is empty",
        "{refused:?}"
    );
    alice
        .put(put("/app/after", "2"))
        .await
        .expect("put after auth enable");
    assert_eq!(alice.stats().tokens_obtained, 1);

    // Permissions hold for the token's user.
    let denied = alice.put(put("/other/x", "3")).await.unwrap_err();
    assert!(matches!(denied, Error::Permission { .. }), "{denied:?}");
    assert_eq!(denied.message(), "etcdserver: permission denied");

    // Namespace changes need the root role; reading one needs only a verified user.
    let namespace = vane_client::vane_proto::api::Namespace {
        name: "app".to_string(),
        prefix: b"/app/".to_vec(),
        ..Default::default()
    };
    let denied = alice.create_namespace(namespace.clone()).await.unwrap_err();
    assert_eq!(
        denied.message(),
        "etcdserver: permission denied",
        "{denied:?}"
    );

    // The token expires; the next request, a watch and a lease keep-alive get a new one.
    tokio::time::sleep(Duration::from_secs(TOKEN_TTL_S + 1)).await;
    alice
        .put(put("/app/expired", "4"))
        .await
        .expect("put after expiry");
    let refreshed = alice.stats().tokens_obtained;
    assert!(refreshed >= 2, "no new token after expiry: {refreshed}");
    tokio::time::sleep(Duration::from_secs(TOKEN_TTL_S + 1)).await;
    let mut watcher = alice
        .watch(WatchCreateRequest {
            key: b"/app/".to_vec(),
            range_end: prefix_range_end(b"/app/"),
            start_revision: 1,
            ..Default::default()
        })
        .await
        .expect("watch with an expired token");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let response = tokio::time::timeout(Duration::from_secs(10), watcher.next())
            .await
            .expect("watch events in time")
            .expect("watch open")
            .expect("watch response");
        seen.extend(
            response
                .events
                .into_iter()
                .filter_map(|e| e.kv.map(|kv| String::from_utf8_lossy(&kv.key).into_owned())),
        );
    }
    assert_eq!(seen, ["/app/before", "/app/after", "/app/expired"]);
    let after_watch = alice.stats().tokens_obtained;
    assert!(after_watch > refreshed, "the watch reused an expired token");
    let lease = alice.lease_grant(60, 0).await.expect("lease grant").id;
    tokio::time::sleep(Duration::from_secs(TOKEN_TTL_S + 1)).await;
    let mut keeper = alice.lease_keeper(lease);
    let renewed = tokio::time::timeout(Duration::from_secs(10), keeper.next())
        .await
        .expect("keep-alive answer in time")
        .expect("keeper running")
        .expect("keep-alive with an expired token");
    // As in etcd, a keep-alive renews a lease by its id without checking the token, so
    // an expired token does not interrupt it.
    assert!(renewed.ttl > 0, "{renewed:?}");
    drop(keeper);

    // Wrong credentials fail the connect, clearly and without retrying until a timeout.
    let wrong = connect(&cluster, "alice", "wrong")
        .await
        .err()
        .expect("refused");
    assert!(matches!(wrong, Error::Authentication { .. }), "{wrong:?}");
    assert_eq!(
        wrong.message(),
        "etcdserver: authentication failed, invalid user ID or password"
    );

    // A password change invalidates alice's token; her old password no longer gets one.
    let root = connect(&cluster, "root", "rootpw")
        .await
        .expect("root connects");
    root.create_namespace(namespace)
        .await
        .expect("root creates a namespace");
    let listed = alice
        .list_namespaces()
        .await
        .expect("alice reads namespaces");
    assert_eq!(listed.namespaces.len(), 1);
    root.user_change_password(AuthUserChangePasswordRequest {
        name: "alice".to_string(),
        password: "newpw".to_string(),
    })
    .await
    .expect("change password");
    let locked_out = alice.put(put("/app/locked", "5")).await.unwrap_err();
    assert!(
        matches!(locked_out, Error::Authentication { .. }),
        "{locked_out:?}"
    );
    let alice_again = connect(&cluster, "alice", "newpw")
        .await
        .expect("new password");
    alice_again
        .put(put("/app/new-password", "6"))
        .await
        .expect("put with the new password");
}
