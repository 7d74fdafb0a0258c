//! httpd over HTTPS (`--tls-cert`, `--tls-key`, `--tls-port`): curl with
//! the test's CA over HTTP/1.1 and HTTP/2, garbage on the TLS port, a
//! silent client at stop, SIGTERM. Certificates are made at test time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

const HELLO: &str = "Hello, world!\n";

/// A scratch directory removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA and a `localhost` certificate it signed, as PEM files in a fresh
/// directory: `ca.pem`, `cert.pem`, `key.pem`.
fn certificates(name: &str) -> Dir {
    let dir = std::env::temp_dir().join(format!("httpd-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Subjects differ from rcgen's one default, or the leaf looks self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "httpd test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    Dir(dir)
}

/// A running httpd with HTTPS; killed if a test fails before stopping it.
struct Httpd {
    child: Option<Child>,
    plain: SocketAddr,
    tls: SocketAddr,
    out: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Drop for Httpd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn addr_after(line: &str, prefix: &str) -> Option<SocketAddr> {
    line.strip_prefix(prefix)?.split('/').next()?.parse().ok()
}

fn start(certs: &Path) -> Httpd {
    let mut child = Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args(["--port", "0", "--tls-port", "0", "--smp", "2"])
        .args(["--shutdown-timeout", "2"])
        .arg("--tls-cert")
        .arg(certs.join("cert.pem"))
        .arg("--tls-key")
        .arg(certs.join("key.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start httpd");
    let out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut h = Httpd {
        child: Some(child),
        plain: "0.0.0.0:0".parse().unwrap(),
        tls: "0.0.0.0:0".parse().unwrap(),
        out,
    };
    let (mut plain, mut tls) = (None, None);
    while plain.is_none() || tls.is_none() {
        let line = h.out.next().expect("the listening lines").unwrap();
        if let Some(a) = addr_after(&line, "httpd: listening on https://") {
            assert!(
                line.contains("(TLS, HTTP/2 and HTTP/1.1, 2 shards)"),
                "{line}"
            );
            tls = Some(a);
        } else if let Some(a) = addr_after(&line, "httpd: listening on http://") {
            plain = Some(a);
        } else {
            panic!("unexpected line {line:?}");
        }
    }
    h.plain = plain.unwrap();
    h.tls = tls.unwrap();
    assert_ne!(h.plain.port(), h.tls.port());
    h
}

impl Httpd {
    /// SIGTERM; the exit status, how long it took, the remaining lines.
    fn stop(mut self) -> (std::process::ExitStatus, Duration, Vec<String>) {
        let mut child = self.child.take().unwrap();
        let t0 = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let lines: Vec<String> = self.out.by_ref().map(Result::unwrap).collect();
        let status = child.wait().unwrap();
        (status, t0.elapsed(), lines)
    }
}

/// Whether this curl speaks HTTP/2 (nghttp2); if not, the HTTP/2 checks
/// are skipped with a note.
fn curl_has_http2() -> bool {
    let out = Command::new("curl").arg("-V").output().expect("curl -V");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .any(|l| l.starts_with("Features:") && l.split_whitespace().any(|f| f == "HTTP2"))
}

/// `curl --cacert` on `https://localhost:PORT/`: the body, then the HTTP
/// version curl used on a last line of its own.
fn curl(certs: &Path, tls: SocketAddr, version: &str) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10", version])
        .arg("--cacert")
        .arg(certs.join("ca.pem"))
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", tls.port()))
        .args(["-w", "\n%{http_version}"])
        .arg(format!("https://localhost:{}/", tls.port()))
        .output()
        .expect("run curl")
}

fn assert_hello(out: &Output, http_version: &str) {
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = format!("{HELLO}\n{http_version}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

/// A plain HTTP/1.1 GET / on the clear-text port: the whole reply.
fn plain_get(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

/// Sends bytes that are not TLS on the TLS port; the server must close
/// the connection (after its alert, if any), not wait or crash.
fn garbage(tls: SocketAddr) {
    let mut s = TcpStream::connect(tls).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff garbage \x16\x03\x01\x00")
        .unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    // At most a TLS alert record (type 21) came back, never HTTP.
    assert!(got.is_empty() || got[0] == 21, "unexpected reply {got:?}");
    assert!(got.len() <= 7, "more than an alert: {got:?}");
}

#[test]
fn curl_over_http1_and_http2_garbage_then_a_clean_stop() {
    let certs = certificates("curl");
    let httpd = start(&certs.0);

    assert_hello(&curl(&certs.0, httpd.tls, "--http1.1"), "1.1");
    if curl_has_http2() {
        assert_hello(&curl(&certs.0, httpd.tls, "--http2"), "2");
    } else {
        eprintln!("note: this curl has no HTTP/2; skipping the HTTPS HTTP/2 check");
    }
    // Clear text is served as before, next to HTTPS.
    let reply = plain_get(httpd.plain);
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with(&format!("\r\n\r\n{HELLO}")), "{reply}");

    garbage(httpd.tls);
    garbage(httpd.tls);
    // The server keeps serving TLS.
    assert_hello(&curl(&certs.0, httpd.tls, "--http1.1"), "1.1");

    let (status, took, lines) = httpd.stop();
    assert!(status.success(), "{status:?}: {lines:?}");
    assert!(took < Duration::from_secs(4), "stop took {took:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("httpd: stopped cleanly")
    );
    // "tls shard N: C connections, R requests, F failed handshakes, ..."
    let tls_lines: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("tls shard "))
        .collect();
    assert_eq!(tls_lines.len(), 2, "{lines:?}");
    let field = |l: &str, what: &str| -> u64 {
        l.split(", ")
            .find_map(|part| part.rsplit(": ").next().unwrap().strip_suffix(what))
            .map(|n| n.trim().parse().unwrap())
            .unwrap_or_else(|| panic!("no {what:?} in {l:?}"))
    };
    let failed: u64 = tls_lines
        .iter()
        .map(|l| field(l, " failed handshakes"))
        .sum();
    assert_eq!(failed, 2, "{tls_lines:?}");
    let requests: u64 = tls_lines.iter().map(|l| field(l, " requests")).sum();
    let expected = if curl_has_http2() { 3 } else { 2 };
    assert_eq!(requests, expected, "{tls_lines:?}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("shard ")).count(), 2);
}

#[test]
fn a_silent_client_mid_handshake_does_not_hold_the_stop() {
    let certs = certificates("silent");
    let httpd = start(&certs.0);
    // Connected, sends nothing: its handshake waits (10 s timeout).
    let silent = TcpStream::connect(httpd.tls).unwrap();
    // A half ClientHello: the record header promises more.
    let mut half = TcpStream::connect(httpd.tls).unwrap();
    half.write_all(b"\x16\x03\x01\x02\x00\x01").unwrap();
    assert_hello(&curl(&certs.0, httpd.tls, "--http1.1"), "1.1");
    let (status, took, lines) = httpd.stop();
    assert!(status.success(), "{status:?}: {lines:?}");
    assert!(took < Duration::from_secs(4), "stop took {took:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("httpd: stopped cleanly")
    );
    drop((silent, half));
}

#[test]
fn unreadable_certificate_files_are_clear_errors() {
    let certs = certificates("bad");
    let out = Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args(["--port", "0", "--tls-port", "0", "--smp", "1"])
        .arg("--tls-cert")
        .arg(certs.0.join("missing.pem"))
        .arg("--tls-key")
        .arg(certs.0.join("key.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pem"), "{err}");
    // A key that is not PEM.
    let out = Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args(["--port", "0", "--tls-port", "0", "--smp", "1"])
        .arg("--tls-cert")
        .arg(certs.0.join("cert.pem"))
        .arg("--tls-key")
        .arg(certs.0.join("ca.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // Only one of the pair.
    let out = Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args(["--port", "0", "--tls-cert"])
        .arg(certs.0.join("cert.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}
