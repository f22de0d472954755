//! Starting real `vaned` clusters for the client's integration tests and connecting the
//! client to them. Every process is killed when the returned cluster is dropped, also
//! when a test fails.

#![allow(dead_code)]

use std::time::Duration;

use vane_client::{Client, ClientConfig};
use vane_cluster::{ClusterSpec, LocalCluster};

/// A running cluster and the temporary directory that holds its data and logs.
pub struct TestCluster {
    pub cluster: LocalCluster,
    pub dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `nodes` members with a 1 s election timeout (the shared two-core machine
    /// makes anything shorter elect spuriously) and waits for a leader.
    pub async fn start(nodes: usize) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = ClusterSpec::new(nodes, dir.path().join("cluster"));
        let cluster = LocalCluster::start(spec).await.unwrap_or_else(|e| {
            panic!(
                "cannot start a {nodes}-node cluster (build vaned first: cargo build -p \
                 vane-node --bin vaned): {e}"
            )
        });
        TestCluster { cluster, dir }
    }

    /// A client of every member, with `tweak` applied to the default configuration.
    pub async fn client(&self, tweak: impl FnOnce(&mut ClientConfig)) -> Client {
        let mut config = ClientConfig::new(self.cluster.endpoints());
        config.dial_timeout = Duration::from_secs(5);
        config.request_timeout = Duration::from_secs(20);
        tweak(&mut config);
        Client::connect(config).await.expect("connect")
    }

    /// The current leader's name, waiting for the members to agree on one.
    pub async fn leader(&mut self) -> String {
        self.cluster.wait_for_leader().await.expect("a leader")
    }

    /// The name of the member whose client URL is `url`.
    pub fn name_of(&self, url: &str) -> String {
        self.cluster
            .member_names()
            .into_iter()
            .find(|name| self.cluster.client_url(name).ok().as_deref() == Some(url))
            .unwrap_or_else(|| panic!("no member serves {url}"))
    }

    /// The last lines of every member's log, for failure messages.
    pub fn logs_tail(&self) -> String {
        let mut out = String::new();
        for member in &self.cluster.record().members {
            let log = std::fs::read_to_string(&member.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let start = lines.len().saturating_sub(15);
            out.push_str(&format!(
                "--- {} ---\n{}\n",
                member.name,
                lines[start..].join("\n")
            ));
        }
        out
    }
}
