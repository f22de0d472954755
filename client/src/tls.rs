//! TLS towards `https://` members, as etcdctl's `--cacert`, `--cert` and `--key`: the
//! server's certificate is checked against the given CA (the system's roots are not
//! consulted), and a client certificate is presented when one is given, for servers run
//! with `--client-cert-auth`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};

use crate::error::Error;

/// The files of a client's TLS configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM CA certificates that sign the members' server certificates.
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for members that require one.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
}

fn pem_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{what} {}: {e}", path.display()))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error("cannot read certificates from", path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error("a malformed certificate in", path, e))?;
    if certs.is_empty() {
        return Err(pem_error("no PEM certificate in", path, "empty"));
    }
    Ok(certs)
}

/// The rustls configuration for `files`.
pub(crate) fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, Error> {
    let ca = files.ca.as_deref().ok_or_else(|| {
        Error::invalid("TLS needs the CA that signs the members' certificates (--cacert)")
    })?;
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca)? {
        roots
            .add(cert)
            .map_err(|e| pem_error("not a usable CA certificate:", ca, e))?;
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::invalid(e.to_string()))?
            .with_root_certificates(roots);
    let mut config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| pem_error("cannot read a PEM private key from", key, e))?;
            builder
                .with_client_auth_cert(read_certs(cert)?, key)
                .map_err(|e| pem_error("not a usable client certificate:", cert, e))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(Error::invalid(
                "a client certificate needs both --cert and --key",
            ));
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// `vane-client/VERSION`, after `name` when there is one.
fn user_agent(name: &str) -> String {
    let agent = concat!("vane-client/", env!("CARGO_PKG_VERSION"));
    let name = name.trim();
    if name.is_empty() {
        agent.to_string()
    } else {
        format!("{name} {agent}")
    }
}

/// Makes the channels to members: plain for `http://`, TLS for `https://`.
pub(crate) struct Dialer {
    /// Longest wait for one connection, TLS handshake included.
    pub(crate) dial_timeout: Duration,
    tls: Option<Arc<ClientConfig>>,
    /// The gRPC user agent of every channel.
    pub(crate) user_agent: String,
}

impl Dialer {
    /// A dialer with `tls` for `https://` members.
    pub(crate) fn new(dial_timeout: Duration, tls: Option<Arc<ClientConfig>>) -> Dialer {
        Dialer {
            dial_timeout,
            tls,
            user_agent: user_agent(""),
        }
    }

    /// The same dialer, naming the client `name` in its user agent.
    pub(crate) fn named(self, name: &str) -> Dialer {
        Dialer {
            user_agent: user_agent(name),
            ..self
        }
    }

    /// The scheme a bare `host:port` endpoint gets: `https` once TLS is configured, as
    /// etcdctl does with `--cacert`.
    pub(crate) fn default_scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// A lazily connected channel to `url` (see [`crate::members`]).
    pub(crate) fn channel(&self, endpoint: Endpoint, url: &str) -> Result<Channel, Error> {
        if !url.starts_with("https://") {
            return Ok(endpoint.connect_lazy());
        }
        let tls = self.tls.clone().ok_or_else(|| {
            Error::invalid(format!(
                "endpoint {url} is https:// but no TLS is configured; give --cacert"
            ))
        })?;
        let dial_timeout = self.dial_timeout;
        let dial = move |uri: http::Uri| {
            let connector = tokio_rustls::TlsConnector::from(tls.clone());
            async move {
                let host = uri
                    .host()
                    .unwrap_or_default()
                    .trim_matches(['[', ']'])
                    .to_string();
                let port = uri.port_u16().unwrap_or(443);
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| std::io::Error::other(format!("host {host:?}: {e}")))?;
                let connect = async {
                    let tcp = TcpStream::connect((host.as_str(), port)).await?;
                    tcp.set_nodelay(true)?;
                    connector.connect(name, tcp).await
                };
                tokio::time::timeout(dial_timeout, connect)
                    .await
                    .map_err(|_| {
                        std::io::Error::other(format!("connecting to {host}:{port} timed out"))
                    })?
                    .map(hyper_util::rt::TokioIo::new)
            }
        };
        Ok(endpoint.connect_with_connector_lazy(tower::service_fn(dial)))
    }
}
