//! Every tunable of `vaned`, in one struct: a flag (etcd's name where the meaning is the
//! same), an environment variable (`VANED_` and the flag name in capitals), a key of
//! the TOML file given with `--config-file` (the flag name), and a documented default.
//! Precedence: flag, then environment, then file, then default.
//!
//! With no flags at all the node is a single-member cluster in `./vane-data`, serving
//! clients on 127.0.0.1:2379: what `make run` starts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};

/// Whether this node founds a cluster or joins one that exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    /// Every member of `--initial-cluster` starts together and founds the cluster.
    New,
    /// The cluster exists; this node was added with MemberAdd and joins it.
    Existing,
}

/// The `--initial-cluster-token` of a member not given one. It goes into every founding
/// member's id, so whoever needs those ids (a test predicting which member starts a new
/// cluster) reads it here.
pub const INITIAL_CLUSTER_TOKEN_DEFAULT: &str = "vane-cluster";

/// The configuration of one node.
#[derive(Clone, Debug, Parser, serde::Deserialize)]
#[command(
    name = "vaned",
    version,
    about = "Vane: a replicated configuration store that speaks the etcd v3 API",
    long_about = "Starts one Vane node. With no flags it founds a single-node cluster with data in \
                  ./vane-data and serves etcd v3 clients on 127.0.0.1:2379.\n\n\
                  Three nodes on one machine:\n  \
                  vaned --name n1 --data-dir n1 --listen-client-urls http://127.0.0.1:2379 \
                  --listen-peer-urls http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
                  --initial-cluster n1=http://127.0.0.1:2380,n2=http://127.0.0.1:12380,n3=http://127.0.0.1:22380\n  \
                  (and likewise n2, n3 with their own ports)"
)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// TOML file with any of these settings, keyed by flag name.
    #[arg(long, env = "VANED_CONFIG_FILE")]
    #[serde(skip)]
    pub config_file: Option<PathBuf>,

    /// Human-readable name of this member, unique in the cluster.
    #[arg(long, env = "VANED_NAME", default_value = "default")]
    pub name: String,

    /// Where this node keeps its Raft log, state machine and snapshots.
    #[arg(long, env = "VANED_DATA_DIR", default_value = "./vane-data")]
    pub data_dir: PathBuf,

    /// URLs to serve clients on (etcd v3 gRPC and vane.v1), comma-separated.
    #[arg(
        long,
        env = "VANED_LISTEN_CLIENT_URLS",
        default_value = "http://127.0.0.1:2379",
        value_delimiter = ','
    )]
    pub listen_client_urls: Vec<String>,

    /// Client URLs announced to the cluster; defaults to the listen URLs.
    #[arg(long, env = "VANED_ADVERTISE_CLIENT_URLS", value_delimiter = ',')]
    #[serde(default)]
    pub advertise_client_urls: Vec<String>,

    /// URLs to serve peers (Raft) on, comma-separated.
    #[arg(
        long,
        env = "VANED_LISTEN_PEER_URLS",
        default_value = "http://127.0.0.1:2380",
        value_delimiter = ','
    )]
    pub listen_peer_urls: Vec<String>,

    /// Peer URLs announced to the cluster; defaults to the listen URLs.
    #[arg(long, env = "VANED_INITIAL_ADVERTISE_PEER_URLS", value_delimiter = ',')]
    #[serde(default)]
    pub initial_advertise_peer_urls: Vec<String>,

    /// The founding members, `name=peer-url,…`; defaults to this node alone.
    #[arg(long, env = "VANED_INITIAL_CLUSTER")]
    #[serde(default)]
    pub initial_cluster: Option<String>,

    /// `new` to found the cluster with `--initial-cluster`, `existing` to join one.
    #[arg(
        long,
        env = "VANED_INITIAL_CLUSTER_STATE",
        value_enum,
        default_value = "new"
    )]
    pub initial_cluster_state: ClusterState,

    /// Distinguishes clusters founded with the same member names and URLs.
    #[arg(
        long,
        env = "VANED_INITIAL_CLUSTER_TOKEN",
        default_value = INITIAL_CLUSTER_TOKEN_DEFAULT
    )]
    pub initial_cluster_token: String,

    /// URLs of the admin HTTP endpoint (`/metrics`, `/health`, `/readyz`).
    #[arg(
        long,
        env = "VANED_LISTEN_METRICS_URLS",
        default_value = "http://127.0.0.1:2381",
        value_delimiter = ','
    )]
    pub listen_metrics_urls: Vec<String>,

    /// Leader heartbeat interval, in milliseconds.
    #[arg(
        long = "heartbeat-interval",
        env = "VANED_HEARTBEAT_INTERVAL",
        default_value_t = 100
    )]
    #[serde(rename = "heartbeat-interval")]
    pub heartbeat_interval_ms: u64,

    /// Election timeout, in milliseconds: the longest a follower waits for a silent
    /// leader; it campaigns after a random wait between three quarters of it and all of it.
    #[arg(
        long = "election-timeout",
        env = "VANED_ELECTION_TIMEOUT",
        default_value_t = 1000
    )]
    #[serde(rename = "election-timeout")]
    pub election_timeout_ms: u64,

    /// Largest client request accepted, in bytes (etcd's default, 1.5 MiB).
    #[arg(
        long = "max-request-bytes",
        env = "VANED_MAX_REQUEST_BYTES",
        default_value_t = 1_572_864
    )]
    #[serde(rename = "max-request-bytes")]
    pub request_bytes_max: usize,

    /// Size of the store at which writes are refused with a NOSPACE alarm, in bytes.
    #[arg(long = "quota-backend-bytes", env = "VANED_QUOTA_BACKEND_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub quota_backend_bytes: u64,

    /// Most bytes per second each of the member's two stores (the Raft log's and the
    /// state machine's) writes in flushes and compactions; 0 leaves them unpaced. Pacing
    /// keeps the Raft log's fsyncs from waiting behind a flush's burst on a shared disk.
    #[arg(
        long = "backend-write-bytes-per-sec",
        env = "VANED_BACKEND_WRITE_BYTES_PER_SEC",
        default_value_t = vane_raft_store::BACKGROUND_WRITE_BYTES_PER_SEC_DEFAULT
    )]
    pub backend_write_bytes_per_sec: u64,

    /// Applied entries between two snapshots (after which the log before them is purged).
    #[arg(
        long = "snapshot-count",
        env = "VANED_SNAPSHOT_COUNT",
        default_value_t = 10_000
    )]
    pub snapshot_count: u64,

    /// Threads that run the member's requests, Raft and apply [default: one per core the
    /// process may use]. Members that share a machine each want their share of its
    /// cores: more threads than cores wake and preempt each other for nothing.
    #[arg(long = "worker-threads", env = "VANED_WORKER_THREADS")]
    #[serde(default)]
    pub worker_threads: Option<usize>,

    /// How long a client request may wait for the cluster (a leader, a commit), in ms.
    #[arg(
        long = "request-timeout",
        env = "VANED_REQUEST_TIMEOUT",
        default_value_t = 7_000
    )]
    #[serde(rename = "request-timeout")]
    pub request_timeout_ms: u64,

    /// How often a watcher that asked for progress notifications gets one, in ms.
    #[arg(
        long = "watch-progress-notify-interval",
        env = "VANED_WATCH_PROGRESS_NOTIFY_INTERVAL",
        default_value_t = 600_000
    )]
    #[serde(rename = "watch-progress-notify-interval")]
    pub watch_progress_notify_interval_ms: u64,

    /// How long an auth token (from Authenticate) stays valid, in seconds; clients
    /// authenticate again when it expires (etcd's `--auth-token-ttl`).
    #[arg(
        long = "auth-token-ttl",
        env = "VANED_AUTH_TOKEN_TTL",
        default_value_t = 300
    )]
    #[serde(rename = "auth-token-ttl")]
    pub auth_token_ttl_seconds: u64,

    /// Log filter in `tracing` syntax, e.g. `info` or `vane_node=debug,openraft=warn`.
    #[arg(long = "log-level", env = "VANED_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// PEM certificate served on `https://` client URLs.
    #[arg(long = "cert-file", env = "VANED_CERT_FILE")]
    #[serde(default)]
    pub cert_file: Option<PathBuf>,

    /// PEM private key of `--cert-file`.
    #[arg(long = "key-file", env = "VANED_KEY_FILE")]
    #[serde(default)]
    pub key_file: Option<PathBuf>,

    /// PEM CA certificates that sign the client certificates accepted.
    #[arg(long = "trusted-ca-file", env = "VANED_TRUSTED_CA_FILE")]
    #[serde(default)]
    pub trusted_ca_file: Option<PathBuf>,

    /// Clients must present a certificate signed by `--trusted-ca-file`; with auth on,
    /// its common name is the user of a request without a token.
    #[arg(long = "client-cert-auth", env = "VANED_CLIENT_CERT_AUTH", num_args = 0..=1,
          default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    #[serde(default)]
    pub client_cert_auth: bool,

    /// PEM certificate served on `https://` peer URLs and presented when dialling peers.
    #[arg(long = "peer-cert-file", env = "VANED_PEER_CERT_FILE")]
    #[serde(default)]
    pub peer_cert_file: Option<PathBuf>,

    /// PEM private key of `--peer-cert-file`.
    #[arg(long = "peer-key-file", env = "VANED_PEER_KEY_FILE")]
    #[serde(default)]
    pub peer_key_file: Option<PathBuf>,

    /// PEM CA certificates that sign the other members' peer certificates.
    #[arg(long = "peer-trusted-ca-file", env = "VANED_PEER_TRUSTED_CA_FILE")]
    #[serde(default)]
    pub peer_trusted_ca_file: Option<PathBuf>,

    /// Peers must present a certificate signed by `--peer-trusted-ca-file` (mutual TLS).
    #[arg(long = "peer-client-cert-auth", env = "VANED_PEER_CLIENT_CERT_AUTH", num_args = 0..=1,
          default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    #[serde(default)]
    pub peer_client_cert_auth: bool,
}

/// A configuration that cannot be used, with what to change.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// The file form: every field optional, so a file may set any subset.
type FileValues = BTreeMap<String, toml::Value>;

impl Config {
    /// Reads flags and environment, then fills what they left at default from the file.
    pub fn load() -> Result<Config, ConfigError> {
        let matches = Config::command().get_matches();
        Config::from_matches(&matches)
    }

    /// Like [`Config::load`] from an explicit argument list (tests).
    pub fn load_from<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Config::command()
            .try_get_matches_from(args)
            .map_err(|e| match e.kind() {
                // Asked for, not a mistake: printed on stdout, exit status 0, as clap's own
                // `parse` does.
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
                _ => ConfigError(e.to_string()),
            })?;
        Config::from_matches(&matches)
    }

    fn from_matches(matches: &ArgMatches) -> Result<Config, ConfigError> {
        let mut config =
            Config::from_arg_matches(matches).map_err(|e| ConfigError(e.to_string()))?;
        if let Some(path) = config.config_file.clone() {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError(format!("cannot read --config-file {}: {e}", path.display()))
            })?;
            let file: FileValues = toml::from_str(&text)
                .map_err(|e| ConfigError(format!("{} is not valid TOML: {e}", path.display())))?;
            config.merge_file(matches, file, &path)?;
        }
        config.fill_defaults();
        config.validate()?;
        Ok(config)
    }

    /// Checks everything that can be checked before touching the data directory, so a
    /// typo never leaves a half-initialised node behind.
    fn validate(&self) -> Result<(), ConfigError> {
        for url in self
            .listen_client_urls
            .iter()
            .chain(&self.advertise_client_urls)
            .chain(&self.listen_peer_urls)
            .chain(&self.initial_advertise_peer_urls)
            .chain(&self.listen_metrics_urls)
        {
            parse_url(url)?;
        }
        self.initial_members()?;
        if self.election_timeout_ms < 5 * self.heartbeat_interval_ms {
            return Err(ConfigError(format!(
                "--election-timeout ({} ms) must be at least five heartbeat intervals ({} ms)",
                self.election_timeout_ms, self.heartbeat_interval_ms
            )));
        }
        if self.name.is_empty() {
            return Err(ConfigError("--name must not be empty".into()));
        }
        if self.worker_threads == Some(0) {
            return Err(ConfigError(
                "--worker-threads must be at least 1 (leave it out for one per core)".into(),
            ));
        }
        self.validate_tls()?;
        if self.auth_token_ttl_seconds == 0 {
            return Err(ConfigError(
                "--auth-token-ttl must be at least 1 second".into(),
            ));
        }
        Ok(())
    }

    /// `https://` URLs need their certificate flags, and a required client certificate
    /// needs the CA that signs it; the files themselves are read when the member starts.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        if self.listen_metrics_urls.iter().any(|u| is_https(u)) {
            return Err(ConfigError(
                "--listen-metrics-urls serves plain http:// only (metrics and health)".into(),
            ));
        }
        let client_tls = self.listen_client_urls.iter().any(|u| is_https(u));
        if client_tls && (self.cert_file.is_none() || self.key_file.is_none()) {
            return Err(ConfigError(
                "https:// in --listen-client-urls needs --cert-file and --key-file".into(),
            ));
        }
        if self.client_cert_auth && self.trusted_ca_file.is_none() {
            return Err(ConfigError(
                "--client-cert-auth needs --trusted-ca-file, the CA that signs client certificates"
                    .into(),
            ));
        }
        let peers = self.initial_members()?;
        let peer_tls = self.listen_peer_urls.iter().any(|u| is_https(u))
            || peers.iter().flat_map(|(_, urls)| urls).any(|u| is_https(u));
        if peer_tls
            && (self.peer_cert_file.is_none()
                || self.peer_key_file.is_none()
                || self.peer_trusted_ca_file.is_none())
        {
            return Err(ConfigError(
                "https:// peer URLs need --peer-cert-file, --peer-key-file and --peer-trusted-ca-file".into(),
            ));
        }
        if self.peer_client_cert_auth && self.peer_trusted_ca_file.is_none() {
            return Err(ConfigError(
                "--peer-client-cert-auth needs --peer-trusted-ca-file".into(),
            ));
        }
        Ok(())
    }

    /// The client port's TLS files, when any client URL is `https://`.
    pub fn client_tls(&self) -> Option<crate::tls::TlsFiles> {
        if !self.listen_client_urls.iter().any(|u| is_https(u)) {
            return None;
        }
        Some(crate::tls::TlsFiles {
            cert: self.cert_file.clone()?,
            key: self.key_file.clone()?,
            trusted_ca: self.trusted_ca_file.clone(),
            require_client_cert: self.client_cert_auth,
        })
    }

    /// The peer certificate files, when this member has them (to serve `https://` peer
    /// URLs and to dial peers that serve them).
    pub fn peer_tls(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles {
            cert: self.peer_cert_file.clone()?,
            key: self.peer_key_file.clone()?,
            trusted_ca: self.peer_trusted_ca_file.clone(),
            require_client_cert: self.peer_client_cert_auth,
        })
    }

    fn merge_file(
        &mut self,
        matches: &ArgMatches,
        file: FileValues,
        path: &std::path::Path,
    ) -> Result<(), ConfigError> {
        // Parse the file as a whole Config over the current values, then keep, field by
        // field, what the command line or the environment set explicitly.
        let mut merged = toml::Table::new();
        let current = toml::Value::try_from(self.file_view())
            .map_err(|e| ConfigError(format!("internal: {e}")))?;
        if let toml::Value::Table(t) = current {
            merged.extend(t);
        }
        for (key, value) in file {
            // Unknown keys go through, so that deserialising names them in its error.
            let explicit = Config::command()
                .get_arguments()
                .find(|a| a.get_long() == Some(key.as_str()))
                .map(|a| a.get_id().as_str().to_string())
                .and_then(|id| matches.value_source(&id))
                .is_some_and(|source| source != ValueSource::DefaultValue);
            if !explicit {
                merged.insert(key, value);
            }
        }
        let config_file = self.config_file.take();
        *self = toml::Value::Table(merged)
            .try_into()
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        self.config_file = config_file;
        Ok(())
    }

    fn file_view(&self) -> FileView<'_> {
        FileView { config: self }
    }

    fn fill_defaults(&mut self) {
        if self.advertise_client_urls.is_empty() {
            self.advertise_client_urls = self.listen_client_urls.clone();
        }
        if self.initial_advertise_peer_urls.is_empty() {
            self.initial_advertise_peer_urls = self.listen_peer_urls.clone();
        }
        if self.initial_cluster.is_none() {
            self.initial_cluster = Some(format!(
                "{}={}",
                self.name,
                self.initial_advertise_peer_urls
                    .join(&format!(",{}=", self.name))
            ));
        }
    }

    /// The founding members as name → peer URLs, in the order given.
    pub fn initial_members(&self) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
        let text = self.initial_cluster.as_deref().unwrap_or_default();
        let mut members: Vec<(String, Vec<String>)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, url) = part.split_once('=').ok_or_else(|| {
                ConfigError(format!(
                    "--initial-cluster entry {part:?} is not name=peer-url (e.g. n1=http://10.0.0.1:2380)"
                ))
            })?;
            parse_url(url)?;
            match members.iter_mut().find(|(n, _)| n == name) {
                Some((_, urls)) => urls.push(url.to_string()),
                None => members.push((name.to_string(), vec![url.to_string()])),
            }
        }
        if !members.iter().any(|(n, _)| *n == self.name) {
            return Err(ConfigError(format!(
                "--initial-cluster does not name this member ({:?}); add {}={}",
                self.name,
                self.name,
                self.initial_advertise_peer_urls
                    .first()
                    .cloned()
                    .unwrap_or_default()
            )));
        }
        Ok(members)
    }
}

/// Serialises the explicit fields of a config back to the file's keys, so that merging
/// can start from the command line's values.
struct FileView<'a> {
    config: &'a Config,
}

impl serde::Serialize for FileView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let c = self.config;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", &c.name)?;
        map.serialize_entry("data-dir", &c.data_dir)?;
        map.serialize_entry("listen-client-urls", &c.listen_client_urls)?;
        map.serialize_entry("advertise-client-urls", &c.advertise_client_urls)?;
        map.serialize_entry("listen-peer-urls", &c.listen_peer_urls)?;
        map.serialize_entry(
            "initial-advertise-peer-urls",
            &c.initial_advertise_peer_urls,
        )?;
        if let Some(v) = &c.initial_cluster {
            map.serialize_entry("initial-cluster", v)?;
        }
        map.serialize_entry(
            "initial-cluster-state",
            match c.initial_cluster_state {
                ClusterState::New => "new",
                ClusterState::Existing => "existing",
            },
        )?;
        map.serialize_entry("initial-cluster-token", &c.initial_cluster_token)?;
        map.serialize_entry("listen-metrics-urls", &c.listen_metrics_urls)?;
        map.serialize_entry("heartbeat-interval", &c.heartbeat_interval_ms)?;
        map.serialize_entry("election-timeout", &c.election_timeout_ms)?;
        map.serialize_entry("max-request-bytes", &c.request_bytes_max)?;
        map.serialize_entry("quota-backend-bytes", &c.quota_backend_bytes)?;
        map.serialize_entry(
            "backend-write-bytes-per-sec",
            &c.backend_write_bytes_per_sec,
        )?;
        map.serialize_entry("snapshot-count", &c.snapshot_count)?;
        if let Some(v) = c.worker_threads {
            map.serialize_entry("worker-threads", &v)?;
        }
        map.serialize_entry("request-timeout", &c.request_timeout_ms)?;
        map.serialize_entry(
            "watch-progress-notify-interval",
            &c.watch_progress_notify_interval_ms,
        )?;
        map.serialize_entry("auth-token-ttl", &c.auth_token_ttl_seconds)?;
        map.serialize_entry("log-level", &c.log_level)?;
        for (key, path) in [
            ("cert-file", &c.cert_file),
            ("key-file", &c.key_file),
            ("trusted-ca-file", &c.trusted_ca_file),
            ("peer-cert-file", &c.peer_cert_file),
            ("peer-key-file", &c.peer_key_file),
            ("peer-trusted-ca-file", &c.peer_trusted_ca_file),
        ] {
            if let Some(path) = path {
                map.serialize_entry(key, path)?;
            }
        }
        map.serialize_entry("client-cert-auth", &c.client_cert_auth)?;
        map.serialize_entry("peer-client-cert-auth", &c.peer_client_cert_auth)?;
        map.end()
    }
}

/// Whether `url` asks for TLS.
pub fn is_https(url: &str) -> bool {
    url.starts_with("https://")
}

/// Splits `http://host:port` or `https://host:port` into the address to bind or dial.
pub fn parse_url(url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| ConfigError(format!("URL {url:?} must start with http:// or https://")))?;
    let host_port = rest.trim_end_matches('/');
    if !host_port.contains(':') {
        return Err(ConfigError(format!(
            "URL {url:?} must name a port, e.g. http://127.0.0.1:2379"
        )));
    }
    Ok(host_port.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn no_flags_is_a_single_node_on_the_default_ports() {
        let c = Config::load_from(["vaned"]).unwrap();
        assert_eq!(c.name, "default");
        assert_eq!(c.data_dir, PathBuf::from("./vane-data"));
        assert_eq!(c.listen_client_urls, ["http://127.0.0.1:2379"]);
        assert_eq!(c.advertise_client_urls, ["http://127.0.0.1:2379"]);
        assert_eq!(
            c.initial_cluster.as_deref(),
            Some("default=http://127.0.0.1:2380")
        );
        assert_eq!(c.initial_members().unwrap().len(), 1);
        assert_eq!(c.initial_cluster_state, ClusterState::New);
    }

    #[test]
    fn file_fills_what_flags_leave_at_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vaned.toml");
        std::fs::write(
            &path,
            "name = \"from-file\"\nelection-timeout = 3000\nsnapshot-count = 7\n\
             backend-write-bytes-per-sec = 0\nworker-threads = 3\n",
        )
        .unwrap();
        let c = Config::load_from([
            "vaned",
            "--config-file",
            path.to_str().unwrap(),
            "--name",
            "from-flag",
        ])
        .unwrap();
        assert_eq!(c.name, "from-flag", "a flag beats the file");
        assert_eq!(c.election_timeout_ms, 3000, "the file beats the default");
        assert_eq!(c.snapshot_count, 7);
        assert_eq!(c.backend_write_bytes_per_sec, 0, "0 turns the pacing off");
        assert_eq!(c.worker_threads, Some(3));
    }

    #[test]
    fn worker_threads_default_to_one_per_core_and_zero_is_refused() {
        let c = Config::load_from(["vaned"]).unwrap();
        assert_eq!(c.worker_threads, None, "left out: one per core");
        let c = Config::load_from(["vaned", "--worker-threads", "1"]).unwrap();
        assert_eq!(c.worker_threads, Some(1));
        let err = Config::load_from(["vaned", "--worker-threads", "0"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("--worker-threads must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn unknown_file_keys_and_bad_members_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vaned.toml");
        std::fs::write(&path, "nmae = \"typo\"\n").unwrap();
        let err =
            Config::load_from(["vaned", "--config-file", path.to_str().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("nmae"), "{err}");

        let err = Config::load_from([
            "vaned",
            "--name",
            "n4",
            "--initial-cluster",
            "n1=http://127.0.0.1:2380",
        ])
        .unwrap_err();
        assert!(
            err.to_string().contains("does not name this member"),
            "{err}"
        );
        let err = Config::load_from(["vaned", "--listen-client-urls", "https://127.0.0.1:2379"])
            .unwrap_err();
        assert!(
            err.to_string().contains("needs --cert-file and --key-file"),
            "{err}"
        );
    }

    #[test]
    fn tls_flags_are_etcds_and_each_https_url_needs_its_files() {
        let c = Config::load_from([
            "vaned",
            "--listen-client-urls",
            "https://127.0.0.1:2379",
            "--cert-file",
            "s.pem",
            "--key-file",
            "s-key.pem",
            "--trusted-ca-file",
            "ca.pem",
            "--client-cert-auth",
        ])
        .unwrap();
        let files = c.client_tls().unwrap();
        assert!(files.require_client_cert);
        assert_eq!(files.trusted_ca.as_deref(), Some(Path::new("ca.pem")));
        assert!(c.peer_tls().is_none());
        let c = Config::load_from(["vaned", "--client-cert-auth=false"]).unwrap();
        assert!(!c.client_cert_auth && c.client_tls().is_none());

        let err = Config::load_from([
            "vaned",
            "--listen-peer-urls",
            "https://127.0.0.1:2380",
            "--peer-cert-file",
            "p.pem",
            "--peer-key-file",
            "p-key.pem",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--peer-trusted-ca-file"), "{err}");
        let err = Config::load_from(["vaned", "--client-cert-auth"]).unwrap_err();
        assert!(err.to_string().contains("needs --trusted-ca-file"), "{err}");
    }
}
