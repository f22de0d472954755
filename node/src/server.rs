//! Starting and stopping a member: open the data directory, settle the member's identity,
//! start Raft, found or join the cluster, serve peers and clients, and on SIGTERM hand
//! leadership over before stopping. kill -9 is always safe: nothing here is needed for
//! durability.

use openraft::async_runtime::WatchReceiver;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::TryFutureExt;
use tokio::net::TcpListener;
use vane_proto::api::config_server::ConfigServer;
use vane_proto::api::session_server::SessionServer;
use vane_proto::etcdserverpb::auth_server::AuthServer;
use vane_proto::etcdserverpb::cluster_server::ClusterServer;
use vane_proto::etcdserverpb::kv_server::KvServer;
use vane_proto::etcdserverpb::lease_server::LeaseServer;
use vane_proto::etcdserverpb::maintenance_server::MaintenanceServer;
use vane_proto::etcdserverpb::watch_server::WatchServer;
use vane_proto::raft::raft_peer_server::RaftPeerServer;
use vane_proto::raft::{MembersRequest, Node as MemberNode};
use vane_raft_store::raft::log_store::LogStore;
use vane_raft_store::raft::state_machine::ApplyObserver;
use vane_raft_store::{DataDir, Limits, StateMachine};

use crate::auth::AuthService;
use crate::config::{ClusterState, Config, is_https, parse_url};
use crate::config_api::ConfigService;
use crate::etcd::cluster::ClusterService;
use crate::etcd::kv::KvService;
use crate::etcd::lease::LeaseService;
use crate::etcd::maintenance::MaintenanceService;
use crate::member::{cluster_id, founding_member_id};
use crate::metrics::{Metrics, RequestMetricsLayer};
use crate::node::Node;
use crate::raft::network::{PEER_MESSAGE_BYTES_MAX, PeerChannels};
use crate::raft::peer_service::PeerService;
use crate::session::SessionService;
use crate::tls::{CertUserLayer, PeerClientTls, ServerTls, TlsFiles, TlsReloader, incoming};
use crate::watch::WatchService;
use crate::watch::cache::EventCache;

/// Headroom above `--max-request-bytes` for the gRPC framing, as etcd allows.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;
/// Requests one client connection may have in flight; more wait for a slot.
const CLIENT_REQUESTS_PER_CONNECTION_MAX: usize = 4096;
/// How long a joining member keeps asking the cluster for its id.
const JOIN_ATTEMPTS_MAX: u32 = 60;

/// A failure to start, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

fn fail(message: impl Into<String>) -> StartError {
    StartError(message.into())
}

/// Runs a member until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), StartError> {
    let config = Arc::new(config);
    let members = config.initial_members().map_err(|e| fail(e.to_string()))?;
    let data_dir = Arc::new(DataDir::open(&config.data_dir).map_err(|e| fail(e.to_string()))?);
    vane_raft_store::set_background_write_bytes_per_sec(config.backend_write_bytes_per_sec);
    let log_store = LogStore::open(&data_dir.raft_log_path()).map_err(|e| fail(e.to_string()))?;
    let state_machine = Arc::new(
        StateMachine::open(data_dir.clone(), Limits::default()).map_err(|e| fail(e.to_string()))?,
    );
    let mut tls_reloader = TlsReloader::default();
    let peer_dialer = match config.peer_tls() {
        Some(files) => {
            let dialer = PeerClientTls::load(files).map_err(fail)?;
            tls_reloader.set_peer_client(dialer.clone());
            Some(dialer)
        }
        None => None,
    };
    let channels = PeerChannels::bound_to(
        config
            .listen_peer_urls
            .first()
            .and_then(|url| parse_url(url).ok())
            .and_then(|host_port| host_port.parse::<SocketAddr>().ok())
            .map(|addr| addr.ip()),
    )
    .with_tls(peer_dialer);

    // Without client URLs, which each member knows only of itself: whichever founding
    // member initialises the cluster (`bootstrap`) does so with this same membership, and
    // each member then publishes its client URLs through the log
    // (`Node::publish_client_urls`), as etcd's members do.
    let founding: BTreeMap<u64, MemberNode> = members
        .iter()
        .map(|(name, urls)| {
            let id = founding_member_id(&config.initial_cluster_token, name, urls);
            (
                id,
                MemberNode {
                    name: name.clone(),
                    peer_urls: urls.clone(),
                    client_urls: Vec::new(),
                },
            )
        })
        .collect();

    let (member_id, cluster) = match data_dir.identity().map_err(|e| fail(e.to_string()))? {
        Some(identity) => identity,
        None => {
            let identity = match config.initial_cluster_state {
                ClusterState::New => {
                    let own = founding
                        .iter()
                        .find(|(_, n)| n.name == config.name)
                        .map(|(id, _)| *id)
                        .ok_or_else(|| fail("this member is not in --initial-cluster"))?;
                    let ids: Vec<u64> = founding.keys().copied().collect();
                    (own, cluster_id(&config.initial_cluster_token, &ids))
                }
                ClusterState::Existing => join_identity(&config, &founding, &channels).await?,
            };
            data_dir
                .set_identity(identity.0, identity.1)
                .map_err(|e| fail(e.to_string()))?;
            identity
        }
    };
    tracing::info!(name = %config.name, member_id = format!("{member_id:016x}"), cluster_id = format!("{cluster:016x}"), "starting member");

    let metrics = Arc::new(Metrics::new().map_err(|e| fail(format!("metrics: {e}")))?);
    log_store.observe_syncs({
        let metrics = metrics.clone();
        Arc::new(move |took: Duration| metrics.wal_fsync_duration.observe(took.as_secs_f64()))
    });
    log_store.sync_inline_when({
        let metrics = metrics.clone();
        Arc::new(move || metrics.idle_follower())
    });
    let apply_observer: ApplyObserver = {
        let metrics = metrics.clone();
        Arc::new(move |took: Duration, _entries: usize| {
            metrics.apply_duration.observe(took.as_secs_f64())
        })
    };
    let raft = crate::raft::start(
        &config,
        member_id,
        log_store.clone(),
        state_machine.clone(),
        channels.clone(),
        apply_observer,
    )
    .await
    .map_err(fail)?;

    if config.initial_cluster_state == ClusterState::New
        && !raft
            .is_initialized()
            .await
            .map_err(|e| fail(e.to_string()))?
    {
        let wait = bootstrap_wait(&founding, member_id, config.election_timeout_ms);
        tokio::spawn(bootstrap(raft.clone(), founding.clone(), wait));
    }

    let (read_rounds, reads_waiting) = crate::read_index::ReadRounds::new();
    let node = Arc::new(Node {
        read_rounds,
        raft: raft.clone(),
        state_machine,
        log_store,
        data_dir,
        member_id,
        cluster_id: cluster,
        config: config.clone(),
        forwarder: crate::forward::Forwarder::new(channels.clone(), metrics.clone()),
        channels,
        metrics: metrics.clone(),
        lease_deadlines: Default::default(),
        watchers: Default::default(),
    });
    tokio::spawn(crate::read_index::run(Arc::downgrade(&node), reads_waiting));
    tokio::spawn(crate::lease::expire_leases(node.clone()));
    tokio::spawn(crate::config_api::apply_scheduled_changes(node.clone()));
    tokio::spawn(crate::metrics::follow_raft(node.clone()));

    let publisher = {
        let node = node.clone();
        tokio::spawn(async move { node.publish_client_urls().await })
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    let peer_server_tls = server_tls(
        &config.listen_peer_urls,
        config.peer_tls(),
        &mut tls_reloader,
    )?;
    let client_server_tls = server_tls(
        &config.listen_client_urls,
        config.client_tls(),
        &mut tls_reloader,
    )?;
    for url in &config.listen_peer_urls {
        let listener = bind(url).await?;
        let tls = peer_server_tls.clone().filter(|_| is_https(url));
        let service = RaftPeerServer::new(PeerService::new(node.clone()))
            .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX);
        let mut stop = stop_rx.clone();
        servers.spawn(
            tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(service)
                .serve_with_incoming_shutdown(incoming(listener, tls), async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .map_err(|e| e.to_string()),
        );
    }
    let request_max = config.request_bytes_max + GRPC_OVERHEAD_BYTES;
    let watch_cache = EventCache::start(node.state_machine.clone());
    for url in &config.listen_client_urls {
        let listener = bind(url).await?;
        let tls = client_server_tls.clone().filter(|_| is_https(url));
        let mut stop = stop_rx.clone();
        servers.spawn(
            tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .concurrency_limit_per_connection(CLIENT_REQUESTS_PER_CONNECTION_MAX)
                .layer(RequestMetricsLayer::new(metrics.clone()))
                .layer(CertUserLayer::new(config.client_cert_auth))
                .add_service(
                    LeaseServer::new(LeaseService::new(node.clone()))
                        .max_decoding_message_size(request_max),
                )
                .add_service(
                    WatchServer::new(WatchService::new(node.clone(), watch_cache.clone()))
                        .max_decoding_message_size(request_max),
                )
                .add_service(
                    KvServer::new(KvService::new(node.clone()))
                        .max_decoding_message_size(request_max),
                )
                .add_service(
                    ClusterServer::new(ClusterService::new(node.clone()))
                        .max_decoding_message_size(request_max),
                )
                .add_service(
                    MaintenanceServer::new(MaintenanceService::new(node.clone()))
                        .max_decoding_message_size(request_max),
                )
                .add_service(SessionServer::new(SessionService::new(node.clone())))
                .add_service(
                    ConfigServer::new(ConfigService::new(node.clone()))
                        .max_decoding_message_size(request_max),
                )
                .add_service(AuthServer::new(AuthService::new(node.clone())))
                .serve_with_incoming_shutdown(incoming(listener, tls), async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .map_err(|e| e.to_string()),
        );
    }
    for url in &config.listen_metrics_urls {
        let listener = bind(url).await?;
        let mut stop = stop_rx.clone();
        let app = crate::admin::router(node.clone());
        servers.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .map_err(|e| e.to_string())
        });
    }
    tracing::info!(clients = ?config.listen_client_urls, peers = ?config.listen_peer_urls, admin = ?config.listen_metrics_urls, "serving");

    if !tls_reloader.is_empty() {
        tokio::spawn(reload_certificates_on_sighup(tls_reloader));
    }
    let stopped_by = tokio::select! {
        () = wait_for_signal() => None,
        fatal = raft_stopped(&node) => Some(fatal),
    };
    tracing::info!("stopping");
    publisher.abort();
    if stopped_by.is_none() {
        hand_over_leadership(&node).await;
    }
    let _ = stop_tx.send(true);
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "Raft did not stop cleanly");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    match stopped_by {
        None => Ok(()),
        Some(fatal) => Err(fail(format!(
            "Raft stopped ({fatal}); this member stopped serving rather than answer for state \
             it could not persist. Check the disk, then restart it on the same data directory"
        ))),
    }
}

/// Resolves when this member's Raft core stops on its own, with why: a failed fsync or
/// write of the log or the state machine. etcd exits on such a failure too; a member that
/// stayed up would keep answering Status and serving stale reads while unable to store
/// anything, and a supervisor restart brings it back once the disk works again.
async fn raft_stopped(node: &Node) -> String {
    // The server metrics change only with leadership, and their channel closes when the
    // core stops (after it has recorded why): following them rather than the full metrics,
    // which are sent on every turn of the core, keeps this task asleep under writes.
    let mut server = node.raft.server_metrics();
    loop {
        let changed = server.changed().await;
        if let Err(fatal) = &node.raft.metrics().borrow_watched().running_state {
            let fatal = fatal.to_string();
            tracing::error!(error = %fatal, "Raft stopped; stopping this member");
            return fatal;
        }
        if changed.is_err() {
            return "its metrics channel closed".to_string();
        }
    }
}

/// The TLS configuration of a port group (client or peer) when any of its URLs is
/// `https://`, registered for SIGHUP reloads.
fn server_tls(
    urls: &[String],
    files: Option<TlsFiles>,
    reloader: &mut TlsReloader,
) -> Result<Option<Arc<ServerTls>>, StartError> {
    if !urls.iter().any(|url| is_https(url)) {
        return Ok(None);
    }
    let files = files.ok_or_else(|| fail("https:// URLs need their certificate flags"))?;
    let tls = ServerTls::load(files).map_err(fail)?;
    reloader.add_server(tls.clone());
    Ok(Some(tls))
}

/// Reads the certificate files again on every SIGHUP, so certificates can be rotated
/// without a restart; files that do not load leave the previous ones in force.
async fn reload_certificates_on_sighup(reloader: TlsReloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP; certificates reload only on restart");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let errors = reloader.reload();
        if errors.is_empty() {
            tracing::info!("SIGHUP: certificates reloaded; new connections use them");
        } else {
            for error in errors {
                tracing::error!(%error, "SIGHUP: a certificate did not reload; the previous one stays in use");
            }
        }
    }
}

async fn bind(url: &str) -> Result<TcpListener, StartError> {
    let address: SocketAddr = parse_url(url)
        .map_err(|e| fail(e.to_string()))?
        .parse()
        .map_err(|e| fail(format!("{url} does not name an IP address and port: {e}")))?;
    TcpListener::bind(address).await.map_err(|e| {
        fail(format!(
            "cannot listen on {url}: {e}; is another vaned or etcd running there?"
        ))
    })
}

/// Asks the members of `--initial-cluster` which member this node is (it was added with
/// MemberAdd under its peer URLs), and the cluster's id.
async fn join_identity(
    config: &Config,
    founding: &BTreeMap<u64, MemberNode>,
    channels: &PeerChannels,
) -> Result<(u64, u64), StartError> {
    let own_urls = &config.initial_advertise_peer_urls;
    for attempt in 0..JOIN_ATTEMPTS_MAX {
        for node in founding.values().filter(|n| n.name != config.name) {
            let Ok(mut client) = channels.client(node) else {
                continue;
            };
            let Ok(reply) = client.members(MembersRequest {}).await else {
                continue;
            };
            let reply = reply.into_inner();
            let found = reply.membership.and_then(|m| m.membership).and_then(|m| {
                m.nodes
                    .into_iter()
                    .find(|(_, n)| n.peer_urls.iter().any(|u| own_urls.contains(u)))
            });
            if let Some((id, _)) = found {
                return Ok((id, reply.cluster_id));
            }
        }
        if attempt % 10 == 0 {
            tracing::info!(
                "waiting for the cluster to list this member's peer URLs (MemberAdd first)"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(fail(format!(
        "no member of --initial-cluster lists peer URLs {own_urls:?}; add this member with MemberAdd before starting it with --initial-cluster-state existing"
    )))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// On the leader, passes leadership to the most caught-up voter so the cluster does not
/// wait an election timeout; bounded to a few seconds.
async fn hand_over_leadership(node: &Node) {
    if node.leader() != Some(node.member_id) {
        return;
    }
    let target = {
        let metrics = node.raft.metrics();
        let m = metrics.borrow_watched();
        let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
        m.replication.as_ref().and_then(|replication| {
            replication
                .iter()
                .filter(|(id, _)| **id != node.member_id && voters.contains(id))
                .max_by_key(|(_, matched)| matched.as_ref().map_or(0, |l| l.index))
                .map(|(id, _)| *id)
        })
    };
    let Some(target) = target else { return };
    tracing::info!(
        to = format!("{target:016x}"),
        "transferring leadership before stopping"
    );
    if let Err(e) = node.raft.trigger().transfer_leader(target).await {
        tracing::warn!(error = %e, "leadership transfer failed");
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while node.leader() == Some(node.member_id) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// How many election timeouts a founding member other than the first waits for the first to
/// reach it before it initialises the cluster itself.
const BOOTSTRAP_FALLBACK_ELECTION_TIMEOUTS: u64 = 3;

/// How long this founding member waits before it initialises a new cluster: not at all for
/// the founding member with the lowest id, a few election timeouts for the others.
///
/// One member initialising, as openraft recommends, gives a new cluster one campaign and one
/// leader. When every member initialises at once, each campaigns in the same term, and
/// openraft orders the votes of one term by node id: a member that has not yet heard from
/// the winner rejects its heartbeats with its own higher vote and deposes it, so a new
/// cluster changed leaders (and `etcdctl endpoint status` showed none) in its first second.
/// The others still initialise if the first has not reached them in time, so a cluster
/// whose first member is down at bootstrap forms all the same, as etcd's would from a
/// quorum of its founding members. The lowest id rather than the first name listed, so
/// that members given `--initial-cluster` in different orders still agree on the first.
fn bootstrap_wait(
    founding: &BTreeMap<u64, MemberNode>,
    member_id: u64,
    election_timeout_ms: u64,
) -> Duration {
    if founding.keys().next() == Some(&member_id) {
        Duration::ZERO
    } else {
        Duration::from_millis(election_timeout_ms * BOOTSTRAP_FALLBACK_ELECTION_TIMEOUTS)
    }
}

/// Initialises a new cluster with its founding members after `wait`, unless a member that
/// did so has replicated the membership here meanwhile.
async fn bootstrap(
    raft: vane_raft_store::raft::types::Raft,
    founding: BTreeMap<u64, MemberNode>,
    wait: Duration,
) {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
        match raft.is_initialized().await {
            Ok(false) => tracing::info!(
                waited = ?wait,
                "the first founding member has not reached this one; initialising the cluster here"
            ),
            Ok(true) => return,
            Err(e) => {
                tracing::info!(error = %e, "Raft stopped before the cluster was initialised");
                return;
            }
        }
    }
    if let Err(e) = raft.initialize(founding).await {
        tracing::info!(error = %e, "cluster already initialised elsewhere");
    }
}
