//! etcd's Watch service, served by every member from its own applied state, so watchers
//! spread over the cluster and keep going across leader changes. `cache` holds the
//! recent history all streams share; `stream` runs one client stream and its watchers.

pub mod cache;
pub mod registry;
pub mod stream;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status, Streaming};
use vane_proto::etcdserverpb::watch_server::Watch;
use vane_proto::etcdserverpb::{WatchRequest, WatchResponse};

use crate::node::Node;
use cache::EventCache;

/// Responses queued ahead of a slow client per stream; beyond it the stream's watchers
/// wait (and later catch up from history) instead of growing memory. Each response is at
/// most a page (`stream::WATCH_PAGE_BYTES`), so a stream whose client stopped reading
/// pins a few MiB at most, however far behind it is.
pub const WATCH_RESPONSES_QUEUED_MAX: usize = 16;

/// Serves the Watch API of one member.
pub struct WatchService {
    node: Arc<Node>,
    cache: EventCache,
    progress_interval: Duration,
}

impl WatchService {
    /// Serves `node`, reading events through `cache`.
    pub fn new(node: Arc<Node>, cache: EventCache) -> Self {
        let progress_interval =
            Duration::from_millis(node.config.watch_progress_notify_interval_ms.max(1));
        WatchService {
            node,
            cache,
            progress_interval,
        }
    }
}

type WatchStream = Pin<Box<dyn futures::Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(WATCH_RESPONSES_QUEUED_MAX);
        // Each watcher's creation is checked against the stream's token (etcd's rule).
        let metadata = request.metadata();
        let token = stream::StreamToken {
            token: metadata
                .get(crate::auth::TOKEN_METADATA_KEY)
                .map(|value| value.to_str().map(str::to_owned)),
            cert_user: crate::auth::cert_user(metadata).map(str::to_owned),
        };
        let client = registry::StreamClient {
            client: metadata
                .get("user-agent")
                .and_then(|agent| agent.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            address: request
                .extensions()
                .get::<crate::tls::ConnectionInfo>()
                .and_then(|info| info.remote)
                .map(|a| a.to_string())
                .unwrap_or_default(),
        };
        tokio::spawn(stream::run(
            self.node.clone(),
            self.cache.clone(),
            request.into_inner(),
            tx,
            self.progress_interval,
            token,
            client,
        ));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
