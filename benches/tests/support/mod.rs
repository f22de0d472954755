//! A real single-node etcd 3.4 for the integration tests: started on free loopback ports
//! in a temporary data directory, waited for until it answers, killed when the guard drops
//! (also when a test panics).

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vane_proto::etcdserverpb::StatusRequest;
use vane_proto::etcdserverpb::maintenance_client::MaintenanceClient;

/// Where the tests expect etcd; installed by the machine setup.
const ETCD_BINARY: &str = "/usr/bin/etcd";
/// How long etcd may take to answer its first Status request.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running etcd; dropping it kills the process and removes its data.
pub struct EtcdProcess {
    child: Child,
    /// The client URL, `http://127.0.0.1:<port>`.
    pub client_url: String,
    log_path: PathBuf,
    _data_dir: tempfile::TempDir,
}

impl EtcdProcess {
    /// Starts etcd and returns once it answers a Status request.
    pub async fn start() -> EtcdProcess {
        let data_dir = tempfile::tempdir().expect("create a temporary data directory");
        let client_url = format!("http://127.0.0.1:{}", free_port());
        let peer_url = format!("http://127.0.0.1:{}", free_port());
        let log_path = data_dir.path().join("etcd.log");
        let log = File::create(&log_path).expect("create the etcd log file");
        let child = Command::new(ETCD_BINARY)
            .arg("--name=bench-test")
            .arg(format!(
                "--data-dir={}",
                data_dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=bench-test={peer_url}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("start {ETCD_BINARY}: {error}; is etcd 3.4 installed?"));
        let mut etcd = EtcdProcess {
            child,
            client_url,
            log_path,
            _data_dir: data_dir,
        };
        etcd.wait_until_ready().await;
        etcd
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("poll the etcd process") {
                panic!("etcd exited with {status} during startup:\n{}", self.log());
            }
            if self.answers_status().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "etcd did not answer within {STARTUP_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    async fn answers_status(&self) -> bool {
        let Ok(mut client) = MaintenanceClient::connect(self.client_url.clone()).await else {
            return false;
        };
        let status = client.status(StatusRequest {});
        matches!(
            tokio::time::timeout(Duration::from_secs(2), status).await,
            Ok(Ok(_))
        )
    }

    /// etcd's output so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now, below the kernel's ephemeral range (where
/// the members' own outgoing connections could take it first) and never handed out twice
/// by this process.
pub fn free_port() -> u16 {
    vane_cluster::free_loopback_ports(1, &[]).expect("a free loopback port")[0]
}
