//! The run's gRPC connections. Each tonic `Channel` is one HTTP/2 connection that many
//! clients multiplex their requests over; connection `i` goes to endpoint
//! `i % endpoints`, and client (or watcher) `i` uses connection `i % connections`. All
//! connections are opened before the measured phase so that connecting is never measured.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use vane_proto::etcdserverpb::kv_client::KvClient;
use vane_proto::etcdserverpb::lease_client::LeaseClient;
use vane_proto::etcdserverpb::watch_client::WatchClient;

use crate::config::WorkloadConfig;
use crate::error::BenchError;

/// Largest response a client accepts: a Range over many large values can exceed tonic's
/// 4 MiB default, and a benchmark should measure it rather than fail.
const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The open connections of a run.
#[derive(Debug, Clone)]
pub struct ConnectionPool {
    channels: Vec<Channel>,
}

impl ConnectionPool {
    /// Opens `config.connections` connections, spread round-robin over the endpoints.
    pub async fn connect(config: &WorkloadConfig) -> Result<Self, BenchError> {
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let mut channels = Vec::with_capacity(config.connections);
        for index in 0..config.connections {
            let endpoint = &config.endpoints[index % config.endpoints.len()];
            channels.push(open_channel(endpoint, connect_timeout).await?);
        }
        Ok(ConnectionPool { channels })
    }

    /// The connection that client (or watcher) `index` uses.
    pub fn channel(&self, index: usize) -> Channel {
        self.channels[index % self.channels.len()].clone()
    }

    /// A KV client on the connection of client `index`.
    pub fn kv(&self, index: usize) -> KvClient<Channel> {
        KvClient::new(self.channel(index)).max_decoding_message_size(RESPONSE_BYTES_MAX)
    }

    /// A Watch client on the connection of watcher `index`.
    pub fn watch(&self, index: usize) -> WatchClient<Channel> {
        WatchClient::new(self.channel(index)).max_decoding_message_size(RESPONSE_BYTES_MAX)
    }

    /// A Lease client on the connection of client `index`.
    pub fn lease(&self, index: usize) -> LeaseClient<Channel> {
        LeaseClient::new(self.channel(index))
    }
}

/// A KV client on a connection of its own to `endpoint`, outside the pool: for a client
/// that must talk to one particular member (the `watch` workload's writer, say).
pub async fn connect_kv(
    config: &WorkloadConfig,
    endpoint: &str,
) -> Result<KvClient<Channel>, BenchError> {
    let channel = open_channel(endpoint, Duration::from_millis(config.connect_timeout_ms)).await?;
    Ok(KvClient::new(channel).max_decoding_message_size(RESPONSE_BYTES_MAX))
}

/// `endpoint` as the URL tonic dials: a bare `host:port` (what `etcdctl --endpoints`
/// and `vane-cluster endpoints` use) is plain `http://`; a URL stays as given.
fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    }
}

async fn open_channel(endpoint: &str, connect_timeout: Duration) -> Result<Channel, BenchError> {
    let invalid = |source| BenchError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        source,
    };
    let connect_error = |source| BenchError::Connect {
        endpoint: endpoint.to_owned(),
        source,
    };
    Endpoint::from_shared(endpoint_url(endpoint))
        .map_err(invalid)?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(connect_error)
}

#[cfg(test)]
mod tests {
    use super::endpoint_url;

    #[test]
    fn a_bare_host_and_port_is_dialled_over_plain_http_and_a_url_as_given() {
        assert_eq!(endpoint_url("127.0.0.1:2379"), "http://127.0.0.1:2379");
        assert_eq!(endpoint_url("http://10.0.0.1:2379"), "http://10.0.0.1:2379");
        assert_eq!(
            endpoint_url("https://vane.example:2379"),
            "https://vane.example:2379"
        );
    }
}
