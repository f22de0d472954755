//! vanectl over TLS with etcdctl's flags: `--cacert` to verify the member, `--cert` and
//! `--key` for a member run with `--client-cert-auth`. A real `vaned` with certificates
//! made by `openssl` in the test's directory.

mod vanectl_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vanectl_support::vanectl;

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

/// `ca.pem`, and `name.pem`/`name.key` signed by it for 127.0.0.1, for each name.
fn make_certs(dir: &Path, names: &[&str]) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ca",
    ]);
    openssl(dir, &ca);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .expect("extensions");
    for name in names {
        let (key, csr, pem, subject) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("/CN={name}"),
        );
        let mut request = vec!["req"];
        request.extend(ec);
        request.extend(["-keyout", &key, "-out", &csr, "-subj", &subject]);
        openssl(dir, &request);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
            ],
        );
    }
}

/// Below the ephemeral range, where the members' own connections could take it first.
fn free_port() -> u16 {
    vane_cluster::free_loopback_ports(1, &[]).expect("free port")[0]
}

struct Member(Child);

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn vanectl_speaks_tls_with_etcdctls_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    make_certs(dir.path(), &["server", "client"]);
    let path = |file: &str| dir.path().join(file).to_str().expect("utf-8").to_string();
    let (client_port, peer_port) = (free_port(), free_port());
    let vaned = vane_cluster::locate_vaned(None).expect("build vaned first");
    let log = std::fs::File::create(dir.path().join("vaned.log")).expect("log");
    let _member = Member(
        Command::new(vaned)
            .args([
                "--data-dir",
                &path("data"),
                "--listen-client-urls",
                &format!("https://127.0.0.1:{client_port}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer_port}"),
                "--listen-metrics-urls",
                &format!("http://127.0.0.1:{}", free_port()),
                "--cert-file",
                &path("server.pem"),
                "--key-file",
                &path("server.key"),
                "--trusted-ca-file",
                &path("ca.pem"),
                "--client-cert-auth",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start vaned"),
    );
    let endpoint = format!("127.0.0.1:{client_port}");
    let tls = [
        format!("--cacert={}", path("ca.pem")),
        format!("--cert={}", path("client.pem")),
        format!("--key={}", path("client.key")),
    ];
    let with_tls = |args: &[&str]| {
        let mut all: Vec<&str> = tls.iter().map(String::as_str).collect();
        all.extend(args);
        vanectl(&endpoint, &all, None)
    };

    // A bare host:port with --cacert means https, as with etcdctl.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let put = with_tls(&["put", "/tls/key", "over-tls"]);
        if put.code == 0 {
            assert_eq!(put.stdout, "OK\n");
            break;
        }
        assert!(Instant::now() < deadline, "no put over TLS: {put:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let get = with_tls(&["get", "/tls/key"]);
    assert_eq!(get.stdout, "/tls/key\nover-tls\n", "{get:?}");
    let https = vanectl(
        &format!("https://{endpoint}"),
        &[
            &tls[0],
            &tls[1],
            &tls[2],
            "get",
            "/tls/key",
            "--print-value-only",
        ],
        None,
    );
    assert_eq!(https.stdout, "over-tls\n", "{https:?}");

    // Without a client certificate the member refuses the connection; without TLS the
    // client cannot talk to it at all. Both end in one error line.
    let no_cert = vanectl(
        &endpoint,
        &[&tls[0], "--command-timeout=3s", "get", "/tls/key"],
        None,
    );
    assert_ne!(
        no_cert.code, 0,
        "served without a client certificate: {no_cert:?}"
    );
    assert!(no_cert.stdout.is_empty(), "{no_cert:?}");
    let plain = vanectl(
        &endpoint,
        &["--command-timeout=3s", "get", "/tls/key"],
        None,
    );
    assert_ne!(plain.code, 0, "served over plain HTTP/2: {plain:?}");
    let half = vanectl(&endpoint, &[&tls[0], &tls[1], "get", "/tls/key"], None);
    assert_ne!(half.code, 0);
    assert!(
        half.stderr.contains("needs both --cert and --key"),
        "{half:?}"
    );
}
