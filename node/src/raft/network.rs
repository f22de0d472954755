//! The peer network, client side: openraft's network traits over tonic.
//!
//! One persistent, lazily connected channel per peer, shared by every RPC to it (tonic
//! multiplexes them over one HTTP/2 connection and reconnects on its own). Replication
//! is pipelined over a bidirectional stream; snapshots are streamed from their file in
//! fixed-size chunks through a small bounded queue, so sending one costs a few chunks of
//! memory whatever its size. An unreachable peer is retried with capped exponential
//! backoff.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{
    Backoff, NetBackoff, NetSnapshot, NetStreamAppend, NetTransferLeader, NetVote, RPCOption,
};
use openraft::raft::{
    AppendEntriesRequest, SnapshotResponse, StreamAppendResult, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, OptionalSend, RaftNetworkFactory};
use tokio::io::AsyncReadExt;
use tonic::transport::{Channel, Endpoint};
use vane_proto::raft as pb;
use vane_proto::raft::raft_peer_client::RaftPeerClient;
use vane_raft_store::SnapshotFile;
use vane_raft_store::raft::convert::{
    log_id_to_pb, stored_membership_to_pb, vote_from_pb, vote_to_pb,
};
use vane_raft_store::raft::types::{NodeId, RaftVote, TypeConfig};

use crate::tls::PeerClientTls;

use super::messages::{
    append_to_pb, stream_result_from_pb, vote_request_to_pb, vote_response_from_pb,
};

/// Bytes per snapshot chunk on the wire.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Chunks queued ahead of the wire while sending a snapshot.
const SNAPSHOT_CHUNKS_QUEUED_MAX: usize = 4;
/// Largest peer message accepted or sent, in bytes (a batch of entries may be large).
pub const PEER_MESSAGE_BYTES_MAX: usize = 64 << 20;

fn peer_url(node: &pb::Node) -> Option<String> {
    node.peer_urls.first().cloned()
}

/// Dials peers and keeps one channel per peer for the life of the process.
#[derive(Clone, Default)]
pub struct PeerChannels {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    local_address: Option<IpAddr>,
    /// How to dial `https://` peers: this member's peer certificate and the peer CA.
    tls: Option<Arc<PeerClientTls>>,
}

/// The source address to dial `url` from, given the address this member listens for
/// peers on. Binding outgoing connections to it makes each member's traffic carry its own
/// address, so a firewall rule can cut the link between two members (as the
/// jepsen-style suite does on 127.0.0.x); it is skipped where the route could not work
/// (a loopback source towards another host, or the reverse).
fn source_address(local: Option<IpAddr>, url: &str) -> Option<IpAddr> {
    let local = local.filter(|ip| !ip.is_unspecified())?;
    let authority = url.split("://").nth(1).unwrap_or(url);
    let authority = authority.split('/').next().unwrap_or(authority);
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let target_is_loopback = match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost",
    };
    (local.is_loopback() == target_is_loopback && local.is_ipv4() != host.contains(':'))
        .then_some(local)
}

impl PeerChannels {
    /// Channels whose connections leave from `local_address` where that can route (see
    /// `source_address`); `None` lets the kernel choose.
    pub fn bound_to(local_address: Option<IpAddr>) -> Self {
        PeerChannels {
            channels: Arc::default(),
            local_address,
            tls: None,
        }
    }

    /// The same channels, dialling `https://` peers with `tls` (mutual TLS).
    pub fn with_tls(mut self, tls: Option<Arc<PeerClientTls>>) -> Self {
        self.tls = tls;
        self
    }

    /// The channel to `url`, created (without connecting yet) on first use.
    pub fn get(&self, url: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(url) {
            return Ok(channel.clone());
        }
        let local = source_address(self.local_address, url);
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("peer URL {url:?} is invalid: {e}"))?
            .local_address(local)
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let channel = if crate::config::is_https(url) {
            let tls = self.tls.clone().ok_or_else(|| {
                format!("peer URL {url} is https:// but this member has no --peer-cert-file")
            })?;
            let dial = move |uri: http::Uri| {
                let tls = tls.clone();
                async move {
                    let host = uri
                        .host()
                        .unwrap_or_default()
                        .trim_matches(['[', ']'])
                        .to_string();
                    let port = uri.port_u16().unwrap_or(443);
                    tls.dial(&host, port, local)
                        .await
                        .map(hyper_util::rt::TokioIo::new)
                }
            };
            endpoint.connect_with_connector_lazy(tower::service_fn(dial))
        } else {
            endpoint.connect_lazy()
        };
        channels.insert(url.to_string(), channel.clone());
        Ok(channel)
    }

    /// A peer client for `node`.
    pub fn client(&self, node: &pb::Node) -> Result<RaftPeerClient<Channel>, String> {
        let url = peer_url(node).ok_or("member has no peer URL")?;
        Ok(RaftPeerClient::new(self.get(&url)?)
            .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX))
    }
}

/// openraft's network factory: hands out a connection per target node.
#[derive(Clone, Default)]
pub struct PeerNetwork {
    channels: PeerChannels,
}

impl PeerNetwork {
    /// A network that dials through `channels`.
    pub fn new(channels: PeerChannels) -> Self {
        PeerNetwork { channels }
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &pb::Node) -> Self::Network {
        PeerConnection {
            target,
            node: node.clone(),
            channels: self.channels.clone(),
        }
    }
}

/// The connection to one peer.
pub struct PeerConnection {
    target: NodeId,
    node: pb::Node,
    channels: PeerChannels,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PeerError(String);

fn unreachable(message: impl Into<String>) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&PeerError(message.into())))
}

fn network_error(message: impl Into<String>) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::new(&PeerError(message.into())))
}

fn status_error(status: tonic::Status) -> RPCError<TypeConfig> {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => unreachable(status.to_string()),
        _ => network_error(status.to_string()),
    }
}

impl PeerConnection {
    fn client(&self) -> Result<RaftPeerClient<Channel>, RPCError<TypeConfig>> {
        self.channels
            .client(&self.node)
            .map_err(|e| unreachable(format!("peer {}: {e}", self.target)))
    }

    fn request<T>(message: T, option: &RPCOption) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(option.hard_ttl());
        request
    }
}

impl NetBackoff<TypeConfig> for PeerConnection {
    fn backoff(&self) -> Option<Backoff> {
        // 50 ms doubling to 1 s: a restarted peer is found again quickly, a dead one is
        // not hammered.
        let steps = (0..).map(|i: u32| Duration::from_millis((50u64 << i.min(5)).min(1_000)));
        Some(Backoff::new(steps))
    }
}

impl NetStreamAppend<TypeConfig> for PeerConnection {
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        _option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<
            BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>,
            RPCError<TypeConfig>,
        >,
    >
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        Box::pin(async move {
            let mut client = self.client()?;
            // tonic pulls openraft's requests straight from its stream as HTTP/2 has room:
            // no task or queue of our own between them.
            let outbound = input.map(|request| append_to_pb(&request));
            let response = client.stream_append(outbound).await.map_err(status_error)?;
            let replies = response.into_inner().map(|reply| {
                let reply = reply.map_err(status_error)?;
                stream_result_from_pb(reply).map_err(network_error)
            });
            Ok(Box::pin(replies) as BoxStream<'s, _>)
        })
    }
}

impl PeerConnection {
    /// A vote or a pre-vote: the same request and reply, two RPCs.
    async fn request_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
        pre_vote: bool,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let mut client = self.client()?;
        let request = Self::request(vote_request_to_pb(&rpc), &option);
        let reply = if pre_vote {
            client.pre_vote(request).await
        } else {
            client.vote(request).await
        }
        .map_err(status_error)?;
        vote_response_from_pb(reply.into_inner()).map_err(network_error)
    }
}

impl NetVote<TypeConfig> for PeerConnection {
    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.request_vote(rpc, option, false).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.request_vote(rpc, option, true).await
    }
}

impl NetSnapshot<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotFile;

    async fn full_snapshot(
        &mut self,
        vote: RaftVote,
        snapshot: openraft::alias::SnapshotOf<TypeConfig, SnapshotFile>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client().map_err(|e| match e {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            other => StreamingError::Network(NetworkError::new(&PeerError(other.to_string()))),
        })?;
        // Pinned: the file this snapshot's metadata describes, even if a newer build
        // replaces the current snapshot while it is being sent.
        let path = snapshot.snapshot.path.clone();
        let pinned = snapshot.snapshot.clone();
        let file = tokio::task::spawn_blocking(move || pinned.open_pinned())
            .await
            .map_err(|e| e.to_string())
            .and_then(|opened| opened.map_err(|e| e.to_string()))
            .map_err(|e| StreamingError::Network(NetworkError::new(&PeerError(e))))?;
        let mut file = tokio::fs::File::from_std(file);
        let total_bytes = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let meta = pb::SnapshotChunk {
            payload: Some(pb::snapshot_chunk::Payload::Meta(pb::SnapshotMeta {
                vote: Some(vote_to_pb(&vote)),
                last_log_id: snapshot.meta.last_log_id.as_ref().map(log_id_to_pb),
                last_membership: Some(stored_membership_to_pb(&snapshot.meta.last_membership)),
                total_bytes,
            })),
        };

        let (tx, rx) = tokio::sync::mpsc::channel(SNAPSHOT_CHUNKS_QUEUED_MAX);
        let reader = tokio::spawn(async move {
            if tx.send(meta).await.is_err() {
                return Ok(());
            }
            loop {
                let mut buffer = vec![0u8; SNAPSHOT_CHUNK_BYTES];
                let n = file.read(&mut buffer).await?;
                if n == 0 {
                    return Ok::<(), std::io::Error>(());
                }
                buffer.truncate(n);
                let chunk = pb::SnapshotChunk {
                    payload: Some(pb::snapshot_chunk::Payload::Data(buffer)),
                };
                if tx.send(chunk).await.is_err() {
                    return Ok(());
                }
            }
        });

        let send = client.install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx));
        let reply = tokio::select! {
            closed = cancel => {
                reader.abort();
                return Err(StreamingError::Closed(closed));
            }
            reply = send => reply,
        };
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(StreamingError::Network(NetworkError::new(&PeerError(
                    format!("read snapshot {}: {e}", path.display()),
                ))));
            }
            Err(e) => {
                return Err(StreamingError::Network(NetworkError::new(&PeerError(
                    e.to_string(),
                ))));
            }
        }
        let reply = reply.map_err(|status| match status_error(status) {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            other => StreamingError::Network(NetworkError::new(&PeerError(other.to_string()))),
        })?;
        let vote = reply
            .into_inner()
            .vote
            .as_ref()
            .map(vote_from_pb)
            .ok_or_else(|| {
                StreamingError::Network(NetworkError::new(&AnyError::error(
                    "snapshot reply without a vote",
                )))
            })?;
        Ok(SnapshotResponse::new(vote))
    }
}

impl NetTransferLeader<TypeConfig> for PeerConnection {
    async fn transfer_leader(
        &mut self,
        request: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let message = pb::TransferLeaderRequest {
            from_leader: Some(vote_to_pb(request.from_leader())),
            to_node_id: *request.to_node_id(),
            last_log_id: request.last_log_id().map(log_id_to_pb),
        };
        self.client()?
            .transfer_leader(Self::request(message, &option))
            .await
            .map_err(status_error)?;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::source_address;

    fn ip(s: &str) -> Option<std::net::IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_specific_loopback_address_is_used_towards_loopback_peers() {
        let local = ip("127.0.0.11");
        assert_eq!(source_address(local, "http://127.0.0.12:2380"), local);
        assert_eq!(source_address(local, "http://localhost:2380/"), local);
    }

    #[test]
    fn no_binding_where_it_could_not_route() {
        assert_eq!(
            source_address(ip("127.0.0.11"), "http://10.0.0.2:2380"),
            None
        );
        assert_eq!(
            source_address(ip("10.0.0.1"), "http://127.0.0.1:2380"),
            None
        );
        assert_eq!(source_address(ip("0.0.0.0"), "http://127.0.0.1:2380"), None);
        assert_eq!(source_address(ip("127.0.0.1"), "http://[::1]:2380"), None);
        assert_eq!(source_address(None, "http://127.0.0.1:2380"), None);
    }
}
