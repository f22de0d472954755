//! TLS on both ports, with etcd's flags: three members with mutual TLS between peers and
//! client-certificate authentication, driven by etcdctl 3.4 with `--cacert/--cert/--key`.
//! Certificates are made with `openssl` in the test's own directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Cluster;

/// Runs `openssl` with `args` in `dir`, panicking with its stderr on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA named `ca` in `dir`: `ca.pem`, `ca.key`.
fn make_ca(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
        ],
    );
}

/// A certificate `name.pem`/`name.key` for common name `cn`, signed by `ca`, valid for
/// 127.0.0.1 as a server and usable as a client.
fn make_cert(dir: &Path, ca: &str, name: &str, cn: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    let extensions = dir.join(format!("{name}.ext"));
    std::fs::write(
        &extensions,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .expect("write extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().expect("utf-8").to_string()
    }

    /// etcdctl's TLS flags for client certificate `name` (none when `None`).
    fn client_flags(&self, name: Option<&str>) -> Vec<String> {
        let mut flags = vec![format!("--cacert={}", self.path("ca.pem"))];
        if let Some(name) = name {
            flags.push(format!("--cert={}", self.path(&format!("{name}.pem"))));
            flags.push(format!("--key={}", self.path(&format!("{name}.key"))));
        }
        flags
    }
}

/// Runs etcdctl against `endpoint` with `tls` flags; returns (success, stdout, stderr).
fn etcdctl(endpoint: &str, tls: &[String], args: &[&str]) -> (bool, String, String) {
    let output = Command::new("timeout")
        .arg("20")
        .arg("etcdctl")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--command-timeout=5s")
        .arg("--dial-timeout=3s")
        .args(tls)
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .expect("etcdctl 3.4 is installed by `make setup`");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// The common name of the certificate `endpoint` serves, as `openssl s_client` sees it.
fn served_common_name(certs: &Certs, port: u16) -> String {
    let output = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-CAfile",
            &certs.path("ca.pem"),
            "-cert",
            &certs.path("root.pem"),
            "-key",
            &certs.path("root.key"),
            "-alpn",
            "h2",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.trim().strip_prefix("subject=").map(str::to_string))
        .unwrap_or_else(|| panic!("no subject in s_client output: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_on_both_ports_serves_etcdctl_and_refuses_strangers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = Certs {
        dir: dir.path().to_path_buf(),
    };
    make_ca(dir.path(), "ca");
    make_ca(dir.path(), "other-ca");
    make_cert(dir.path(), "ca", "server", "vane-server");
    make_cert(dir.path(), "ca", "peer", "vane-peer");
    make_cert(dir.path(), "ca", "root", "root");
    make_cert(dir.path(), "ca", "reader", "reader");
    make_cert(dir.path(), "other-ca", "stranger", "root");

    let flags = [
        format!("--cert-file={}", certs.path("server.pem")),
        format!("--key-file={}", certs.path("server.key")),
        format!("--trusted-ca-file={}", certs.path("ca.pem")),
        "--client-cert-auth".to_string(),
        format!("--peer-cert-file={}", certs.path("peer.pem")),
        format!("--peer-key-file={}", certs.path("peer.key")),
        format!("--peer-trusted-ca-file={}", certs.path("ca.pem")),
        "--peer-client-cert-auth".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let cluster = Cluster::start_with_scheme(3, "https", &flags);
    let endpoint = |i: usize| cluster.members[i].client_url();
    let root = certs.client_flags(Some("root"));

    // Members elect a leader over mutual TLS and replicate a write to every member.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, _, stderr) = etcdctl(&endpoint(0), &root, &["put", "/app/greeting", "hello"]);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no write over TLS within 30 s: {stderr}\nlogs in {:?}",
            cluster.dir.path()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for i in 0..3 {
        let (ok, stdout, stderr) = etcdctl(&endpoint(i), &root, &["get", "/app/greeting"]);
        assert!(ok, "get on member {i}: {stderr}");
        assert_eq!(stdout, "/app/greeting\nhello\n");
    }

    // No client certificate, or one from another CA: refused at the handshake.
    let (ok, _, stderr) = etcdctl(
        &endpoint(1),
        &certs.client_flags(None),
        &["get", "/app/greeting"],
    );
    assert!(!ok, "a client without a certificate was served");
    eprintln!("without a certificate: {}", stderr.trim());
    let (ok, _, stderr) = etcdctl(
        &endpoint(1),
        &[
            format!("--cacert={}", certs.path("ca.pem")),
            format!("--cert={}", certs.path("stranger.pem")),
            format!("--key={}", certs.path("stranger.key")),
        ],
        &["get", "/app/greeting"],
    );
    assert!(!ok, "a certificate from another CA was accepted");
    eprintln!("certificate from another CA: {}", stderr.trim());

    // A peer with another CA's certificate cannot talk to the peer port; one with the
    // cluster's gets as far as the (unknown to etcdctl) peer service.
    let peer_endpoint = format!("https://127.0.0.1:{}", cluster.members[2].peer_port);
    let (ok, _, stranger_peer) = etcdctl(
        &peer_endpoint,
        &[
            format!("--cacert={}", certs.path("ca.pem")),
            format!("--cert={}", certs.path("stranger.pem")),
            format!("--key={}", certs.path("stranger.key")),
        ],
        &["get", "x"],
    );
    assert!(!ok);
    let (ok, _, known_peer) = etcdctl(
        &peer_endpoint,
        &certs.client_flags(Some("peer")),
        &["get", "x"],
    );
    assert!(!ok, "the peer port does not serve KV");
    assert!(
        known_peer.contains("Unimplemented") || known_peer.contains("unknown service"),
        "a cluster certificate reaches the peer port's gRPC server: {known_peer}"
    );
    assert!(
        !stranger_peer.contains("Unimplemented") && !stranger_peer.contains("unknown service"),
        "another CA's certificate must not get past the handshake: {stranger_peer}"
    );

    // With auth on, a request without a token is the user its certificate names.
    for args in [
        vec!["user", "add", "root", "--new-user-password=rootpw"],
        vec!["user", "grant-role", "root", "root"],
        vec!["role", "add", "app-reader"],
        vec![
            "role",
            "grant-permission",
            "app-reader",
            "read",
            "/app/",
            "--prefix=true",
        ],
        vec!["user", "add", "reader", "--new-user-password=readerpw"],
        vec!["user", "grant-role", "reader", "app-reader"],
        vec!["auth", "enable"],
    ] {
        let (ok, _, stderr) = etcdctl(&endpoint(0), &root, &args);
        assert!(ok, "etcdctl {args:?}: {stderr}");
    }
    let reader = certs.client_flags(Some("reader"));
    let (ok, stdout, stderr) = etcdctl(&endpoint(1), &reader, &["get", "/app/greeting"]);
    assert!(ok, "the reader's certificate reads /app/: {stderr}");
    assert_eq!(stdout, "/app/greeting\nhello\n");
    let (ok, _, stderr) = etcdctl(&endpoint(1), &reader, &["put", "/app/greeting", "bye"]);
    assert!(!ok);
    assert!(
        stderr.contains("etcdserver: permission denied"),
        "the reader may not write: {stderr}"
    );
    let (ok, _, stderr) = etcdctl(&endpoint(2), &root, &["put", "/app/greeting", "bye"]);
    assert!(ok, "root's certificate writes: {stderr}");

    // SIGHUP: the client port serves a new certificate without a restart.
    assert_eq!(
        served_common_name(&certs, cluster.members[0].client_port),
        "CN = vane-server"
    );
    make_cert(dir.path(), "ca", "server", "vane-server-rotated");
    let pid = cluster.members[0]
        .process
        .as_ref()
        .expect("running")
        .id()
        .to_string();
    let status = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let served = served_common_name(&certs, cluster.members[0].client_port);
        if served == "CN = vane-server-rotated" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still serving {served} after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, stdout, stderr) = etcdctl(&endpoint(0), &root, &["get", "/app/greeting"]);
    assert!(ok, "served with the new certificate: {stderr}");
    assert_eq!(stdout, "/app/greeting\nbye\n");
}
