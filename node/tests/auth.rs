//! etcd's auth on real `vaned` processes: enabling it needs root; a user with read on a
//! prefix can do exactly that on every path (KV, Txn branches, Watch, Lease, Cluster,
//! Maintenance) and gets etcd's error otherwise; a revoked role is refused on every
//! member as soon as the revoke returns; wrong passwords, expired, forged and foreign
//! tokens are refused; the plaintext of a password never reaches the data directory.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Cluster;
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use vane_proto::authpb::permission::Type as PermissionType;
use vane_proto::authpb::{Permission, UserAddOptions};
use vane_proto::etcdserverpb::auth_client::AuthClient;
use vane_proto::etcdserverpb::cluster_client::ClusterClient;
use vane_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use vane_proto::etcdserverpb::kv_client::KvClient;
use vane_proto::etcdserverpb::lease_client::LeaseClient;
use vane_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use vane_proto::etcdserverpb::request_op::Request as Op;
use vane_proto::etcdserverpb::watch_client::WatchClient;
use vane_proto::etcdserverpb::watch_request::RequestUnion;
use vane_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleGrantPermissionRequest,
    AuthUserAddRequest, AuthUserChangePasswordRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest, AuthUserListRequest, AuthUserRevokeRoleRequest, AuthenticateRequest,
    CompactionRequest, Compare, DefragmentRequest, DeleteRangeRequest, LeaseGrantRequest,
    LeaseRevokeRequest, MemberListRequest, PutRequest, RangeRequest, RequestOp, StatusRequest,
    TxnRequest, WatchCreateRequest, WatchRequest, WatchResponse,
};

const DENIED: &str = "etcdserver: permission denied";
const USER_EMPTY: &str = "etcdserver: user name is empty";
const AUTH_FAILED: &str = "etcdserver: authentication failed, invalid user ID or password";
const INVALID_TOKEN: &str = "etcdserver: invalid auth token";

/// `message` with `token` in its metadata, as etcd clients send it.
fn req<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("token", token.parse().expect("a token is ASCII"));
    }
    request
}

fn assert_refused<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, message: &str) {
    match result {
        Ok(ok) => panic!("expected {code:?} {message:?}, got {ok:?}"),
        Err(status) => {
            assert_eq!(status.message(), message, "{status:?}");
            assert_eq!(status.code(), code, "{status:?}");
        }
    }
}

/// One client connection to one member, optionally logged in.
#[derive(Clone)]
struct Client {
    channel: Channel,
    token: Option<String>,
}

impl Client {
    async fn connect(cluster: &Cluster, member: usize) -> Client {
        Client {
            channel: common::channel(&cluster.members[member].client_url()).await,
            token: None,
        }
    }

    fn auth(&self) -> AuthClient<Channel> {
        AuthClient::new(self.channel.clone())
    }

    fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel.clone())
    }

    fn t(&self) -> Option<&str> {
        self.token.as_deref()
    }

    async fn authenticate(&self, name: &str, password: &str) -> Result<String, Status> {
        self.auth()
            .authenticate(AuthenticateRequest {
                name: name.into(),
                password: password.into(),
            })
            .await
            .map(|r| r.into_inner().token)
    }

    async fn login(&self, name: &str, password: &str) -> Client {
        let token = self.authenticate(name, password).await.expect("log in");
        Client {
            channel: self.channel.clone(),
            token: Some(token),
        }
    }

    fn as_token(&self, token: &str) -> Client {
        Client {
            channel: self.channel.clone(),
            token: Some(token.to_string()),
        }
    }

    async fn put(&self, key: &str, value: &str) -> Result<i64, Status> {
        self.kv()
            .put(req(
                PutRequest {
                    key: key.into(),
                    value: value.into(),
                    ..Default::default()
                },
                self.t(),
            ))
            .await
            .map(|r| r.into_inner().header.map_or(0, |h| h.revision))
    }

    /// A linearizable Range over `key`..`range_end`; the values found.
    async fn get(&self, key: &str, range_end: &str) -> Result<Vec<String>, Status> {
        self.kv()
            .range(req(
                RangeRequest {
                    key: key.into(),
                    range_end: range_end.into(),
                    ..Default::default()
                },
                self.t(),
            ))
            .await
            .map(|r| {
                r.into_inner()
                    .kvs
                    .iter()
                    .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
                    .collect()
            })
    }

    async fn txn(&self, txn: TxnRequest) -> Result<bool, Status> {
        self.kv()
            .txn(req(txn, self.t()))
            .await
            .map(|r| r.into_inner().succeeded)
    }

    /// Opens a watch stream with this client's token and asks for one watcher; returns
    /// the creation response.
    async fn watch(&self, key: &str, range_end: &str) -> WatchResponse {
        let (requests, rx) = mpsc::channel(4);
        requests
            .send(WatchRequest {
                request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                    key: key.into(),
                    range_end: range_end.into(),
                    ..Default::default()
                })),
            })
            .await
            .expect("queue the create request");
        let mut responses = WatchClient::new(self.channel.clone())
            .watch(req(
                tokio_stream::wrappers::ReceiverStream::new(rx),
                self.t(),
            ))
            .await
            .expect("watch stream")
            .into_inner();
        let response = tokio::time::timeout(Duration::from_secs(15), responses.message())
            .await
            .expect("a watch response in time")
            .expect("watch stream")
            .expect("stream open");
        drop(requests);
        response
    }

    async fn user_add(&self, name: &str, password: &str) -> Result<(), Status> {
        self.auth()
            .user_add(req(
                AuthUserAddRequest {
                    name: name.into(),
                    password: password.into(),
                    options: Some(UserAddOptions { no_password: false }),
                },
                self.t(),
            ))
            .await
            .map(|_| ())
    }

    async fn role_add(&self, name: &str) -> Result<(), Status> {
        self.auth()
            .role_add(req(AuthRoleAddRequest { name: name.into() }, self.t()))
            .await
            .map(|_| ())
    }

    async fn grant_role(&self, user: &str, role: &str) -> Result<(), Status> {
        self.auth()
            .user_grant_role(req(
                AuthUserGrantRoleRequest {
                    user: user.into(),
                    role: role.into(),
                },
                self.t(),
            ))
            .await
            .map(|_| ())
    }

    async fn revoke_role(&self, user: &str, role: &str) -> Result<(), Status> {
        self.auth()
            .user_revoke_role(req(
                AuthUserRevokeRoleRequest {
                    name: user.into(),
                    role: role.into(),
                },
                self.t(),
            ))
            .await
            .map(|_| ())
    }

    async fn grant(
        &self,
        role: &str,
        kind: PermissionType,
        key: &str,
        range_end: &str,
    ) -> Result<(), Status> {
        self.auth()
            .role_grant_permission(req(
                AuthRoleGrantPermissionRequest {
                    name: role.into(),
                    perm: Some(Permission {
                        perm_type: kind as i32,
                        key: key.into(),
                        range_end: range_end.into(),
                    }),
                },
                self.t(),
            ))
            .await
            .map(|_| ())
    }

    async fn enable(&self) -> Result<(), Status> {
        self.auth()
            .auth_enable(req(AuthEnableRequest {}, self.t()))
            .await
            .map(|_| ())
    }
}

/// `root:root-secret-pw` with the root role, role `reader` with read on the `/app/` prefix,
/// user `u:u-secret-pw` holding it, and auth on; returns root's client.
async fn set_up_auth(anonymous: &Client) -> Client {
    anonymous
        .user_add("root", "root-secret-pw")
        .await
        .expect("add root");
    anonymous.role_add("root").await.expect("add the root role");
    anonymous
        .grant_role("root", "root")
        .await
        .expect("grant root");
    anonymous.role_add("reader").await.expect("add reader");
    anonymous
        .grant("reader", PermissionType::Read, "/app/", "/app0")
        .await
        .expect("grant read on /app/");
    anonymous.user_add("u", "u-secret-pw").await.expect("add u");
    anonymous
        .grant_role("u", "reader")
        .await
        .expect("grant reader");
    anonymous.enable().await.expect("enable auth");
    anonymous.login("root", "root-secret-pw").await
}

fn compare_value(key: &str, value: &str) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Value as i32,
        key: key.into(),
        target_union: Some(TargetUnion::Value(value.into())),
        ..Default::default()
    }
}

fn op_get(key: &str) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestRange(RangeRequest {
            key: key.into(),
            ..Default::default()
        })),
    }
}

fn op_put(key: &str, value: &str) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestPut(PutRequest {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_a_prefix_can_read_it_and_nothing_else_on_every_path() {
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let anonymous = Client::connect(&cluster, 0).await;

    // Enabling auth needs a root user with the root role, with etcd's errors.
    assert_refused(
        anonymous.enable().await,
        Code::FailedPrecondition,
        "etcdserver: root user does not exist",
    );
    anonymous
        .user_add("root", "root-secret-pw")
        .await
        .expect("add root");
    assert_refused(
        anonymous.enable().await,
        Code::FailedPrecondition,
        "etcdserver: root user does not have root role",
    );
    assert_refused(
        anonymous.user_add("root", "again").await,
        Code::FailedPrecondition,
        "etcdserver: user name already exists",
    );
    assert_refused(
        anonymous.user_add("", "x").await,
        Code::InvalidArgument,
        USER_EMPTY,
    );
    anonymous.role_add("root").await.expect("add the root role");
    anonymous.grant_role("root", "root").await.expect("grant");
    anonymous.role_add("reader").await.expect("add reader");
    assert_refused(
        anonymous.role_add("reader").await,
        Code::FailedPrecondition,
        "etcdserver: role name already exists",
    );
    anonymous
        .grant("reader", PermissionType::Read, "/app/", "/app0")
        .await
        .expect("grant read on /app/");
    anonymous.user_add("u", "u-secret-pw").await.expect("add u");
    anonymous.grant_role("u", "reader").await.expect("grant");
    anonymous.enable().await.expect("enable auth");

    // Anonymous requests now carry no user.
    assert_refused(
        anonymous.put("/app/x", "1").await,
        Code::InvalidArgument,
        USER_EMPTY,
    );
    assert_refused(
        anonymous.get("/app/x", "").await,
        Code::InvalidArgument,
        USER_EMPTY,
    );
    assert_refused(
        anonymous
            .auth()
            .auth_disable(req(AuthDisableRequest {}, None))
            .await,
        Code::InvalidArgument,
        USER_EMPTY,
    );

    let root = anonymous.login("root", "root-secret-pw").await;
    root.put("/app/x", "1").await.expect("root writes /app/");
    root.put("/other/y", "2")
        .await
        .expect("root writes /other/");

    // u, logged in on another member: tokens verify on every member.
    let u = Client::connect(&cluster, 1)
        .await
        .login("u", "u-secret-pw")
        .await;
    assert_eq!(u.get("/app/x", "").await.expect("read /app/x"), ["1"]);
    assert_eq!(
        u.get("/app/", "/app0").await.expect("read the prefix"),
        ["1"]
    );
    assert_refused(u.put("/app/x", "2").await, Code::PermissionDenied, DENIED);
    assert_refused(u.get("/other/y", "").await, Code::PermissionDenied, DENIED);
    assert_refused(u.get("/ap", "/ap0").await, Code::PermissionDenied, DENIED);
    assert_refused(u.get("/app/", "\0").await, Code::PermissionDenied, DENIED);
    assert_refused(
        u.kv()
            .delete_range(req(
                DeleteRangeRequest {
                    key: "/app/x".into(),
                    ..Default::default()
                },
                u.t(),
            ))
            .await,
        Code::PermissionDenied,
        DENIED,
    );

    // A put cannot ride in a txn branch, taken or not, nor in a nested txn; a compare
    // outside the grant is a read too.
    let smuggled = TxnRequest {
        compare: vec![compare_value("/app/x", "1")],
        success: vec![op_get("/app/x")],
        failure: vec![op_put("/app/x", "smuggled")],
    };
    assert_refused(u.txn(smuggled).await, Code::PermissionDenied, DENIED);
    let nested = TxnRequest {
        compare: vec![],
        success: vec![RequestOp {
            request: Some(Op::RequestTxn(TxnRequest {
                success: vec![op_put("/app/x", "nested")],
                ..Default::default()
            })),
        }],
        failure: vec![],
    };
    assert_refused(u.txn(nested).await, Code::PermissionDenied, DENIED);
    let peeking = TxnRequest {
        compare: vec![compare_value("/other/y", "2")],
        success: vec![op_get("/app/x")],
        failure: vec![],
    };
    assert_refused(u.txn(peeking).await, Code::PermissionDenied, DENIED);
    let allowed = TxnRequest {
        compare: vec![compare_value("/app/x", "1")],
        success: vec![op_get("/app/x")],
        failure: vec![],
    };
    assert!(
        u.txn(allowed)
            .await
            .expect("a read-only txn inside the grant")
    );
    assert_eq!(root.get("/app/x", "").await.expect("root reads"), ["1"]);

    // Watch: the prefix is fine, anything wider is canceled with etcd's reason.
    let ok = u.watch("/app/", "/app0").await;
    assert!(ok.created && !ok.canceled, "{ok:?}");
    for (key, range_end) in [("/", "0"), ("/app/", "\0"), ("/other/y", "")] {
        let refused = u.watch(key, range_end).await;
        assert!(refused.created && refused.canceled, "{refused:?}");
        assert_eq!(
            refused.cancel_reason,
            format!("rpc error: code = PermissionDenied desc = {DENIED}")
        );
    }
    let anonymous_watch = anonymous.watch("/app/", "/app0").await;
    assert!(anonymous_watch.canceled, "{anonymous_watch:?}");
    assert!(
        anonymous_watch.cancel_reason.ends_with(USER_EMPTY),
        "{anonymous_watch:?}"
    );
    let wide = root.watch("/", "0").await;
    assert!(
        wide.created && !wide.canceled,
        "root watches anything: {wide:?}"
    );

    // Leases: revoking deletes the attached keys, so it needs write on each of them.
    let mut root_lease = LeaseClient::new(root.channel.clone());
    let lease = root_lease
        .lease_grant(req(LeaseGrantRequest { ttl: 600, id: 0 }, root.t()))
        .await
        .expect("grant a lease")
        .into_inner()
        .id;
    root.kv()
        .put(req(
            PutRequest {
                key: "/other/leased".into(),
                value: "v".into(),
                lease,
                ..Default::default()
            },
            root.t(),
        ))
        .await
        .expect("attach a key");
    let mut u_lease = LeaseClient::new(u.channel.clone());
    assert_refused(
        u_lease
            .lease_revoke(req(LeaseRevokeRequest { id: lease }, u.t()))
            .await,
        Code::PermissionDenied,
        DENIED,
    );
    assert_eq!(
        root.get("/other/leased", "").await.expect("still there"),
        ["v"]
    );

    // Compaction, maintenance and membership changes need root; listing does not.
    let compact = |client: &Client| {
        let mut kv = client.kv();
        let token = client.token.clone();
        async move {
            kv.compact(req(
                CompactionRequest {
                    revision: 2,
                    physical: false,
                },
                token.as_deref(),
            ))
            .await
        }
    };
    assert_refused(compact(&u).await, Code::PermissionDenied, DENIED);
    let mut maintenance = MaintenanceClient::new(u.channel.clone());
    assert_refused(
        maintenance
            .defragment(req(DefragmentRequest {}, u.t()))
            .await,
        Code::PermissionDenied,
        DENIED,
    );
    maintenance
        .status(req(StatusRequest {}, u.t()))
        .await
        .expect("status needs no role");
    ClusterClient::new(u.channel.clone())
        .member_list(req(
            MemberListRequest {
                linearizable: false,
            },
            u.t(),
        ))
        .await
        .expect("member list needs no role");

    // User management: u may read itself, not list users or disable auth.
    let mut u_auth = u.auth();
    let me = u_auth
        .user_get(req(AuthUserGetRequest { name: "u".into() }, u.t()))
        .await
        .expect("u reads itself")
        .into_inner();
    assert_eq!(me.roles, ["reader"]);
    assert_refused(
        u_auth
            .user_get(req(
                AuthUserGetRequest {
                    name: "root".into(),
                },
                u.t(),
            ))
            .await,
        Code::PermissionDenied,
        DENIED,
    );
    assert_refused(
        u_auth.user_list(req(AuthUserListRequest {}, u.t())).await,
        Code::PermissionDenied,
        DENIED,
    );
    assert_refused(
        u_auth.auth_disable(req(AuthDisableRequest {}, u.t())).await,
        Code::PermissionDenied,
        DENIED,
    );
    let users = root
        .auth()
        .user_list(req(AuthUserListRequest {}, root.t()))
        .await
        .expect("root lists users")
        .into_inner()
        .users;
    assert_eq!(users, ["root", "u"]);
    assert_refused(
        root.revoke_role("root", "root").await,
        Code::InvalidArgument,
        "etcdserver: invalid auth management",
    );
    assert_refused(
        root.revoke_role("u", "writer").await,
        Code::FailedPrecondition,
        "etcdserver: role is not granted to the user",
    );

    // Root can do everything u could not.
    assert!(
        !root
            .txn(TxnRequest {
                compare: vec![compare_value("/app/x", "nope")],
                success: vec![],
                failure: vec![op_put("/app/x", "by-root")],
            })
            .await
            .expect("root's txn")
    );
    assert_eq!(root.get("/app/x", "").await.expect("read"), ["by-root"]);
    compact(&root).await.expect("root compacts");

    // Disabling auth brings anonymous access back; a token left over is ignored.
    root.auth()
        .auth_disable(req(AuthDisableRequest {}, root.t()))
        .await
        .expect("root disables auth");
    anonymous
        .put("/other/y", "3")
        .await
        .expect("anonymous again");
    u.put("/other/y", "4")
        .await
        .expect("a stale token is ignored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_role_is_refused_on_every_member_as_soon_as_the_revoke_returns() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let root = set_up_auth(&Client::connect(&cluster, leader).await).await;
    root.put("/app/x", "1").await.expect("root writes");

    // One token, minted before the revoke, used on every member.
    let token = Client::connect(&cluster, leader)
        .await
        .authenticate("u", "u-secret-pw")
        .await
        .expect("log in");
    let mut members = Vec::new();
    for i in 0..cluster.members.len() {
        members.push(Client::connect(&cluster, i).await.as_token(&token));
    }
    for u in &members {
        assert_eq!(u.get("/app/x", "").await.expect("granted"), ["1"]);
    }

    root.revoke_role("u", "reader").await.expect("revoke");
    // Followers may not have applied the revoke yet; a linearizable Range waits for
    // them to reach the read index, and the permission is read from that state.
    for (i, u) in members.iter().enumerate() {
        assert_refused(u.get("/app/x", "").await, Code::PermissionDenied, DENIED);
        let watch = u.watch("/app/", "/app0").await;
        assert!(
            watch.canceled,
            "member {i} let a revoked user watch: {watch:?}"
        );
    }

    // Granting is as immediate: a write through a follower right after the grant
    // returns is allowed (a member behind the grant catches up before refusing).
    root.grant_role("u", "reader").await.expect("grant again");
    root.auth()
        .role_add(req(
            AuthRoleAddRequest {
                name: "writer".into(),
            },
            root.t(),
        ))
        .await
        .expect("add writer");
    root.grant("writer", PermissionType::Readwrite, "/app/", "/app0")
        .await
        .expect("grant write");
    root.grant_role("u", "writer").await.expect("grant writer");
    for (i, u) in members.iter().enumerate() {
        u.put("/app/x", &format!("by-u-via-{i}"))
            .await
            .unwrap_or_else(|e| panic!("member {i} refused a granted write: {e:?}"));
        assert_eq!(
            u.get("/app/x", "").await.expect("read"),
            [format!("by-u-via-{i}")]
        );
    }
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir").flatten() {
                pending.push(entry.path());
            }
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_and_bad_tokens_are_refused_and_passwords_stay_out_of_the_data_dir() {
    // Tokens live two seconds here, so that one can be seen to expire.
    let cluster = Cluster::start_with(1, &["--auth-token-ttl", "2"]);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let anonymous = Client::connect(&cluster, 0).await;
    assert_refused(
        anonymous.authenticate("root", "x").await,
        Code::FailedPrecondition,
        "etcdserver: authentication is not enabled",
    );
    let root = set_up_auth(&anonymous).await;

    // A lease expires under auth too: the leader's revoke acts for the member, not for a
    // user (checked below, once the lease's time is up).
    let lease = LeaseClient::new(root.channel.clone())
        .lease_grant(req(LeaseGrantRequest { ttl: 1, id: 0 }, root.t()))
        .await
        .expect("grant a short lease")
        .into_inner()
        .id;
    root.kv()
        .put(req(
            PutRequest {
                key: "/app/ephemeral".into(),
                value: "v".into(),
                lease,
                ..Default::default()
            },
            root.t(),
        ))
        .await
        .expect("attach a key");

    // Wrong password, unknown user, user without a password.
    assert_refused(
        anonymous.authenticate("u", "wrong").await,
        Code::InvalidArgument,
        AUTH_FAILED,
    );
    assert_refused(
        anonymous.authenticate("nobody", "u-secret-pw").await,
        Code::InvalidArgument,
        AUTH_FAILED,
    );
    root.auth()
        .user_add(req(
            AuthUserAddRequest {
                name: "nopw".into(),
                password: String::new(),
                options: Some(UserAddOptions { no_password: true }),
            },
            root.t(),
        ))
        .await
        .expect("add a user without password");
    assert_refused(
        anonymous.authenticate("nopw", "").await,
        Code::InvalidArgument,
        AUTH_FAILED,
    );

    // Forged tokens: garbage, and a real token with its user changed to root.
    let token = anonymous
        .authenticate("u", "u-secret-pw")
        .await
        .expect("log in");
    assert_eq!(
        anonymous
            .as_token(&token)
            .get("/app/x", "")
            .await
            .expect("valid"),
        Vec::<String>::new()
    );
    for forged in ["garbage".to_string(), {
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] = "726f6f74".into(); // "root", hex
        parts.join(".")
    }] {
        assert_refused(
            anonymous.as_token(&forged).put("/app/x", "forged").await,
            Code::Unauthenticated,
            INVALID_TOKEN,
        );
    }

    // A token of another cluster, with the same users and passwords, is refused.
    let other = Cluster::start(1);
    other.wait_for_leader(Duration::from_secs(20)).await;
    let other_anonymous = Client::connect(&other, 0).await;
    set_up_auth(&other_anonymous).await;
    let foreign = other_anonymous
        .authenticate("root", "root-secret-pw")
        .await
        .expect("log in elsewhere");
    assert_refused(
        anonymous.as_token(&foreign).get("/app/x", "").await,
        Code::Unauthenticated,
        INVALID_TOKEN,
    );
    drop(other);

    // A password change retires the tokens minted before it.
    let before_change = anonymous
        .authenticate("u", "u-secret-pw")
        .await
        .expect("log in");
    root.auth()
        .user_change_password(req(
            AuthUserChangePasswordRequest {
                name: "u".into(),
                password: "u-secret-pw-2".into(),
            },
            root.t(),
        ))
        .await
        .expect("change u's password");
    assert_refused(
        anonymous.as_token(&before_change).get("/app/x", "").await,
        Code::Unauthenticated,
        INVALID_TOKEN,
    );
    assert_refused(
        anonymous.authenticate("u", "u-secret-pw").await,
        Code::InvalidArgument,
        AUTH_FAILED,
    );
    let fresh = anonymous
        .authenticate("u", "u-secret-pw-2")
        .await
        .expect("new password");
    anonymous
        .as_token(&fresh)
        .get("/app/x", "")
        .await
        .expect("a fresh token works");

    // An expired token: the TTL is two seconds.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_refused(
        anonymous.as_token(&fresh).get("/app/x", "").await,
        Code::Unauthenticated,
        INVALID_TOKEN,
    );

    // The short lease has expired by now or will shortly; its key goes with it. Tokens
    // live two seconds here, so root logs in again for every look.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let root = anonymous.login("root", "root-secret-pw").await;
        if root
            .get("/app/ephemeral", "")
            .await
            .expect("root reads")
            .is_empty()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a lease with a key did not expire under auth"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // No password's plaintext is anywhere in the data directory, log included; the
    // hashes are, so the search does look at the files that hold the users.
    let data_dir = &cluster.members[0].data_dir;
    for plaintext in ["root-secret-pw", "u-secret-pw"] {
        let found = files_containing(data_dir, plaintext.as_bytes());
        assert!(found.is_empty(), "{plaintext:?} found in {found:?}");
    }
    assert!(
        !files_containing(data_dir, b"$argon2id$").is_empty(),
        "the password hashes should be in the data directory"
    );
}
