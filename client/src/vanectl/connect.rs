//! From the global flags to a connected [`Client`], and from "no member answered" to a
//! message that says why: the endpoints are probed over TCP so that a wrong
//! `--endpoints` or a stopped `vaned` ("connection refused") is told apart from a
//! cluster that accepts connections but has lost its majority.

use std::time::Duration;

use vane_client::{Client, ClientConfig};

use super::cli::GlobalArgs;
use super::exit::{self, CliError};

/// The client configuration the global flags ask for: `--command-timeout` bounds each
/// call including its retries, `--dial-timeout` bounds reaching the cluster.
pub fn client_config(global: &GlobalArgs, endpoints: Vec<String>) -> ClientConfig {
    let defaults = ClientConfig::default();
    ClientConfig {
        endpoints,
        dial_timeout: global.dial_timeout,
        request_timeout: global.command_timeout,
        attempt_timeout: defaults.attempt_timeout.min(global.command_timeout),
        tls: (global.cacert.is_some() || global.cert.is_some() || global.key.is_some()).then(
            || vane_client::TlsFiles {
                ca: global.cacert.clone(),
                cert: global.cert.clone(),
                key: global.key.clone(),
            },
        ),
        credentials: global.credentials.clone(),
        name: "vanectl".to_string(),
        ..defaults
    }
}

/// A client for the cluster behind `--endpoints`.
pub async fn connect(global: &GlobalArgs) -> Result<Client, CliError> {
    connect_with(client_config(global, global.endpoints.clone())).await
}

/// A client for `config`, with vanectl's error messages.
pub async fn connect_with(config: ClientConfig) -> Result<Client, CliError> {
    let endpoints = config.endpoints.clone();
    let dial_timeout = config.dial_timeout;
    match Client::connect(config).await {
        Ok(client) => Ok(client),
        Err(error) => Err(connect_error(error, &endpoints, dial_timeout).await),
    }
}

/// What a failed connect means for the user.
pub async fn connect_error(
    error: vane_client::Error,
    endpoints: &[String],
    dial_timeout: Duration,
) -> CliError {
    match error {
        vane_client::Error::Invalid { message } => {
            CliError::bad_args(format!("{message} (check --endpoints)"))
        }
        vane_client::Error::Unavailable { .. } | vane_client::Error::Timeout { .. } => {
            unreachable(&error, endpoints, dial_timeout).await
        }
        vane_client::Error::Authentication { message } => {
            // etcdctl fails to create its client here, and exits as for a bad connection.
            CliError::new(exit::Exit::BadConnection, message)
        }
        other => exit::from_client(other),
    }
}

/// Why no endpoint answered, found by trying a plain TCP connection to each.
async fn unreachable(
    error: &vane_client::Error,
    endpoints: &[String],
    dial_timeout: Duration,
) -> CliError {
    let probes = futures::future::join_all(
        endpoints
            .iter()
            .map(|endpoint| probe(endpoint, dial_timeout)),
    )
    .await;
    let listed = endpoints.join(",");
    let failures: Vec<(&String, String)> = endpoints
        .iter()
        .zip(probes)
        .filter_map(|(endpoint, probe)| probe.err().map(|why| (endpoint, why)))
        .collect();
    if failures.len() == endpoints.len() && !endpoints.is_empty() {
        let first_reason = &failures[0].1;
        let reasons = if failures.iter().all(|(_, why)| why == first_reason) {
            first_reason.clone()
        } else {
            failures
                .iter()
                .map(|(endpoint, why)| format!("{endpoint}: {why}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return CliError::failed(format!(
            "cannot reach any of {listed} ({reasons}); is vaned running? check --endpoints"
        ));
    }
    CliError::failed(format!(
        "no member of {listed} answered within --dial-timeout={} ({}); the cluster may have \
         lost its majority: check vanectl endpoint status, or raise --dial-timeout",
        super::go_text::format_duration(dial_timeout),
        error.message()
    ))
}

/// Whether something accepts TCP connections at `endpoint`; the reason if not.
async fn probe(endpoint: &str, dial_timeout: Duration) -> Result<(), String> {
    let address = endpoint
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    match tokio::time::timeout(dial_timeout, tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(match error.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            std::io::ErrorKind::TimedOut => "timed out".to_string(),
            _ if error.to_string().contains("lookup") || error.to_string().contains("resolve") => {
                format!("cannot resolve {address}")
            }
            _ => error.to_string(),
        }),
        Err(_) => Err(format!(
            "no answer within {}",
            super::go_text::format_duration(dial_timeout)
        )),
    }
}
