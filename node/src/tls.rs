//! TLS on the client and peer ports, configured with etcd's flags.
//!
//! A port whose URL is `https://` serves TLS 1.2/1.3 (rustls, ring provider) with the
//! certificate and key of `--cert-file`/`--key-file` (clients) or
//! `--peer-cert-file`/`--peer-key-file` (peers). With `--client-cert-auth` (or
//! `--peer-client-cert-auth`) a connection must present a certificate signed by the
//! trusted CA, or its handshake fails. Peers dial each other's `https://` URLs presenting
//! their own peer certificate and trusting only the peer CA: mutual TLS.
//!
//! Certificates are read again on SIGHUP ([`TlsReloader`]): connections accepted or
//! dialled afterwards use the new files, and established ones keep theirs, so a
//! certificate can be rotated without a restart. Files that do not load leave the
//! previous configuration in force, and the error is logged.
//!
//! With client-certificate authentication on, the certificate's common name names the
//! user of a request that carries no token, as in etcd ([`CERT_USER_METADATA_KEY`]).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// How long a client may take to complete its TLS handshake before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const ACCEPTED_QUEUE: usize = 128;
/// How long dialling a peer may take, TCP and TLS together.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Metadata key under which the server passes a verified client certificate's common
/// name to the services. Any value a client sent under it is removed first.
pub const CERT_USER_METADATA_KEY: &str = "vane-internal-cert-user";

/// One port's TLS files, as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain presented by this member.
    pub cert: PathBuf,
    /// PEM private key of that certificate.
    pub key: PathBuf,
    /// PEM CA certificates that sign the certificates this member accepts.
    pub trusted_ca: Option<PathBuf>,
    /// Whether the other side must present a certificate signed by `trusted_ca`.
    pub require_client_cert: bool,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} holds a malformed certificate: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a PEM private key from {}: {e}", path.display()))
}

fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{} is not a usable CA certificate: {e}", path.display()))?;
    }
    Ok(roots)
}

/// gRPC runs over HTTP/2, which TLS clients such as etcd's negotiate with ALPN.
fn h2_only() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec()]
}

fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if files.require_client_cert {
        let ca = files
            .trusted_ca
            .as_deref()
            .ok_or("client certificate authentication needs a trusted CA file")?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(read_roots(ca)?), provider())
                .build()
                .map_err(|e| format!("cannot verify clients against {}: {e}", ca.display()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(read_certs(&files.cert)?, read_key(&files.key)?)
        .map_err(|e| {
            format!(
                "{} and {} do not make a usable certificate: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = h2_only();
    Ok(Arc::new(config))
}

fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, String> {
    let ca = files
        .trusted_ca
        .as_deref()
        .ok_or("dialling https:// peers needs --peer-trusted-ca-file")?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(read_roots(ca)?)
        .with_client_auth_cert(read_certs(&files.cert)?, read_key(&files.key)?)
        .map_err(|e| {
            format!(
                "{} and {} do not make a usable client certificate: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = h2_only();
    Ok(Arc::new(config))
}

/// A port's TLS configuration, replaceable while the server runs.
pub struct ServerTls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl ServerTls {
    /// Loads `files`; an unusable file is an error naming it.
    pub fn load(files: TlsFiles) -> Result<Arc<ServerTls>, String> {
        let current = RwLock::new(server_config(&files)?);
        Ok(Arc::new(ServerTls { files, current }))
    }

    fn acceptor(&self) -> TlsAcceptor {
        let config = self.current.read().unwrap_or_else(|p| p.into_inner());
        TlsAcceptor::from(Arc::clone(&config))
    }
}

/// The peer certificate this member dials with, replaceable while it runs.
pub struct PeerClientTls {
    files: TlsFiles,
    current: RwLock<Arc<ClientConfig>>,
}

impl PeerClientTls {
    /// Loads `files` (the peer certificate, key and CA).
    pub fn load(files: TlsFiles) -> Result<Arc<PeerClientTls>, String> {
        let current = RwLock::new(client_config(&files)?);
        Ok(Arc::new(PeerClientTls { files, current }))
    }

    fn connector(&self) -> TlsConnector {
        let config = self.current.read().unwrap_or_else(|p| p.into_inner());
        TlsConnector::from(Arc::clone(&config))
    }

    /// Dials `host:port` from `local` (when set) and completes the TLS handshake,
    /// checking the peer's certificate against `host` and the peer CA.
    pub async fn dial(
        &self,
        host: &str,
        port: u16,
        local: Option<IpAddr>,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| std::io::Error::other(format!("peer host {host:?}: {e}")))?;
        let connector = self.connector();
        let dial = async {
            let address = tokio::net::lookup_host((host, port))
                .await?
                .next()
                .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
            let socket = if address.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if let Some(local) = local {
                socket.bind(SocketAddr::new(local, 0))?;
            }
            let stream = socket.connect(address).await?;
            stream.set_nodelay(true)?;
            connector.connect(name, stream).await
        };
        tokio::time::timeout(DIAL_TIMEOUT, dial)
            .await
            .map_err(|_| std::io::Error::other(format!("dialling {host}:{port} timed out")))?
    }
}

/// Every TLS configuration of this member, for SIGHUP.
#[derive(Clone, Default)]
pub struct TlsReloader {
    servers: Vec<Arc<ServerTls>>,
    peer_client: Option<Arc<PeerClientTls>>,
}

impl TlsReloader {
    /// Remembers a server configuration to reload.
    pub fn add_server(&mut self, tls: Arc<ServerTls>) {
        self.servers.push(tls);
    }

    /// Remembers the peer dialling configuration to reload.
    pub fn set_peer_client(&mut self, tls: Arc<PeerClientTls>) {
        self.peer_client = Some(tls);
    }

    /// Reads every certificate file again; a configuration whose files do not load
    /// stays as it was. Returns the errors.
    pub fn reload(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for server in &self.servers {
            match server_config(&server.files) {
                Ok(config) => *server.current.write().unwrap_or_else(|p| p.into_inner()) = config,
                Err(e) => errors.push(e),
            }
        }
        if let Some(peer) = &self.peer_client {
            match client_config(&peer.files) {
                Ok(config) => *peer.current.write().unwrap_or_else(|p| p.into_inner()) = config,
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Whether there is anything to reload.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.peer_client.is_none()
    }
}

/// An accepted connection, plain or TLS.
pub enum ServerIo {
    /// `http://`.
    Plain(TcpStream),
    /// `https://`, handshake done.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// What the services may learn about a request's connection.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// The client's address.
    pub remote: Option<SocketAddr>,
    /// The common name of the client's verified certificate, if it presented one.
    pub cert_common_name: Option<String>,
}

/// The common name in a DER certificate's subject.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let name = parsed
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(name)
}

impl Connected for ServerIo {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        match self {
            ServerIo::Plain(stream) => ConnectionInfo {
                remote: stream.peer_addr().ok(),
                cert_common_name: None,
            },
            ServerIo::Tls(stream) => {
                let (tcp, session) = stream.get_ref();
                ConnectionInfo {
                    remote: tcp.peer_addr().ok(),
                    cert_common_name: session
                        .peer_certificates()
                        .and_then(|certs| certs.first())
                        .and_then(common_name),
                }
            }
        }
    }
}

impl AsyncRead for ServerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_flush(cx),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ServerIo::Plain(s) => s.is_write_vectored(),
            ServerIo::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The connections of `listener`, with Nagle's algorithm off (streamed responses would
/// otherwise wait for delayed acknowledgements), through TLS when `tls` is set. Each
/// handshake runs on its own task, so a slow or hostile client cannot hold up others;
/// a failed one is logged and dropped, as etcd logs "rejected connection".
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
) -> ReceiverStream<std::io::Result<ServerIo>> {
    let (accepted, stream) = tokio::sync::mpsc::channel(ACCEPTED_QUEUE);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = listener.accept() => next,
                // The server is gone: stop accepting, which frees the port.
                () = accepted.closed() => return,
            };
            let (tcp, remote) = match next {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            let Some(tls) = &tls else {
                if accepted.send(Ok(ServerIo::Plain(tcp))).await.is_err() {
                    return;
                }
                continue;
            };
            let acceptor = tls.acceptor();
            let accepted = accepted.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = accepted.send(Ok(ServerIo::Tls(Box::new(stream)))).await;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(%remote, error = %e, "rejected connection: TLS handshake failed");
                    }
                    Err(_) => {
                        tracing::warn!(%remote, "rejected connection: TLS handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(stream)
}

/// A tower layer on the client port that hands a verified client certificate's common
/// name to the services under [`CERT_USER_METADATA_KEY`], when `--client-cert-auth` is
/// on, and always strips that key from what the client sent, so nobody can claim a
/// certificate they did not present.
#[derive(Clone, Copy)]
pub struct CertUserLayer {
    enabled: bool,
}

impl CertUserLayer {
    /// Passes common names on when `enabled` (`--client-cert-auth`).
    pub fn new(enabled: bool) -> Self {
        CertUserLayer { enabled }
    }
}

impl<S> tower::Layer<S> for CertUserLayer {
    type Service = CertUser<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CertUser {
            inner,
            enabled: self.enabled,
        }
    }
}

/// See [`CertUserLayer`].
#[derive(Clone)]
pub struct CertUser<S> {
    inner: S,
    enabled: bool,
}

impl<S, B> tower::Service<http::Request<B>> for CertUser<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request.headers_mut().remove(CERT_USER_METADATA_KEY);
        if self.enabled
            && let Some(name) = request
                .extensions()
                .get::<ConnectionInfo>()
                .and_then(|info| info.cert_common_name.clone())
            && let Ok(value) = http::HeaderValue::from_str(&name)
        {
            request.headers_mut().insert(CERT_USER_METADATA_KEY, value);
        }
        self.inner.call(request)
    }
}
