//! `memcached -Z -o ssl_chain_cert=…,ssl_key=…` as stock memcached offers
//! it, the binary as a child process (backend from
//! `SEASTAR_REACTOR_BACKEND`), certificates made at test time: a rustls
//! client, `openssl s_client` and pymemcache with an `ssl.SSLContext`
//! speak the text protocol over TLS and get stock's replies byte for byte;
//! client certificates with `ssl_ca_cert` and `ssl_verify_mode=2`;
//! garbage and truncated records end their connection only; SIGTERM ends
//! the process cleanly. openssl and pymemcache (`python3-pymemcache`) are
//! optional: without them their tests say SKIPPED.

mod spawned;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};
use seastar_net::tls::TlsClientConfig;
use seastar_net::tls::rustls::{self, ClientConnection, StreamOwned};
use spawned::{HANG_GUARD, SHUTDOWN_TIMEOUT, Spawned};

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn leaf(&self, name: &str) -> (String, String) {
        let params = CertificateParams::new(vec![name.to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// The PEM files of a test, in a directory removed at the end.
struct Files {
    dir: PathBuf,
    client_ca: Ca,
}

impl Files {
    fn new(tag: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("memcached-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = Ca::new("server CA");
        let client_ca = Ca::new("client CA");
        let files = Files { dir, client_ca };
        let (cert, key) = ca.leaf("localhost");
        files.write("server.pem", &cert);
        files.write("server.key", &key);
        files.write("ca.pem", &ca.cert.pem());
        files.write("client-ca.pem", &files.client_ca.cert.pem());
        let (cert, key) = files.client_ca.leaf("client");
        files.write("client.pem", &cert);
        files.write("client.key", &key);
        files
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    /// `-Z -o ssl_chain_cert=…,ssl_key=…` (and `extra` options).
    fn server_args(&self, extra: &str) -> Vec<String> {
        let mut o = format!(
            "ssl_chain_cert={},ssl_key={}",
            self.path("server.pem"),
            self.path("server.key")
        );
        if !extra.is_empty() {
            o.push(',');
            o.push_str(extra);
        }
        vec!["-Z".into(), "-o".into(), o]
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(files: &Files, extra: &str) -> Spawned {
    let args = files.server_args(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Spawned::start(&args)
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A blocking rustls client trusting the test CA, with a client
/// certificate if `identity`.
fn tls_client(files: &Files, addr: SocketAddr, identity: Option<(&str, &str)>) -> Tls {
    let mut config = TlsClientConfig::new()
        .root_pem(files.read("ca.pem").as_bytes())
        .unwrap();
    if let Some((cert, key)) = identity {
        config = config
            .client_auth_pem(files.read(cert).as_bytes(), files.read(key).as_bytes())
            .unwrap();
    }
    let config: Arc<rustls::ClientConfig> = config.build().unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(HANG_GUARD)).unwrap();
    tcp.set_write_timeout(Some(HANG_GUARD)).unwrap();
    let conn = ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
    StreamOwned::new(conn, tcp)
}

/// Sends `req`, reads exactly `want.len()` bytes and checks them.
fn ask(c: &mut Tls, req: &[u8], want: &[u8]) {
    c.write_all(req).unwrap();
    c.flush().unwrap();
    let mut got = vec![0; want.len()];
    c.read_exact(&mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(want),
        "reply to {:?}",
        String::from_utf8_lossy(&req[..req.len().min(60)])
    );
}

#[test]
fn the_text_protocol_over_tls_is_byte_for_byte_stocks() {
    let files = Files::new("proto");
    let mut server = start(&files, "");
    let mut c = tls_client(&files, server.tcp, None);
    ask(&mut c, b"set k 5 0 5\r\nhello\r\n", b"STORED\r\n");
    ask(&mut c, b"get k\r\n", b"VALUE k 5 5\r\nhello\r\nEND\r\n");
    ask(&mut c, b"add k 0 0 1\r\nx\r\n", b"NOT_STORED\r\n");
    ask(&mut c, b"incr n 1\r\n", b"NOT_FOUND\r\n");
    ask(&mut c, b"delete k\r\nget k\r\n", b"DELETED\r\nEND\r\n");
    ask(&mut c, b"bogus\r\n", b"ERROR\r\n");
    // A 300 KB value (many TLS records each way), pipelined with a get.
    let value: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut req = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\nget big\r\n");
    let mut want = format!("STORED\r\nVALUE big 0 {}\r\n", value.len()).into_bytes();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\nEND\r\n");
    ask(&mut c, &req, &want);
    // `quit` closes the connection (after close_notify: a clean end).
    c.write_all(b"quit\r\n").unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    server.stop_cleanly();
}

#[test]
fn openssl_s_client_drives_the_text_protocol() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: openssl is missing (apt-get install openssl)");
        return;
    }
    let files = Files::new("openssl");
    let mut server = start(&files, "");
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &server.tcp.to_string()])
        .args(["-CAfile", &files.path("ca.pem"), "-servername", "localhost"])
        .args(["-verify_return_error", "-quiet", "-tls1_3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"set a 0 0 2\r\nhi\r\nget a b\r\nquit\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "STORED\r\nVALUE a 0 2\r\nhi\r\nEND\r\n"
    );
    server.stop_cleanly();
}

#[test]
fn pymemcache_with_an_ssl_context_works_unchanged() {
    let probe = Command::new("python3")
        .args(["-c", "import pymemcache"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: pymemcache is missing (apt-get install python3-pymemcache)");
        return;
    }
    let files = Files::new("pymemcache");
    let mut server = start(&files, "");
    let script = format!(
        r#"
import ssl
from pymemcache.client.base import Client
ctx = ssl.create_default_context(cafile={ca:?})
c = Client(("127.0.0.1", {port}), tls_context=ctx, timeout=10)
# The context checks the name "127.0.0.1" would fail: ask for localhost.
"#,
        ca = files.path("ca.pem"),
        port = server.tcp.port()
    );
    // pymemcache connects to the address it is given and checks the
    // certificate against it: the certificate names localhost.
    let script = script.replace("(\"127.0.0.1\",", "(\"localhost\",")
        + r#"
c.set("greeting", b"hello over tls")
print(c.get("greeting").decode())
print(c.add("greeting", b"x", noreply=False))
c.set("n", b"10")
print(c.incr("n", 5))
print(sorted(c.get_many(["greeting", "n", "missing"]).items()))
c.close()
"#;
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello over tls\nFalse\n15\n[('greeting', b'hello over tls'), ('n', b'15')]\n"
    );
    server.stop_cleanly();
}

#[test]
fn client_certificates_are_required_with_verify_mode_2() {
    let files = Files::new("mtls");
    let extra = format!(
        "ssl_ca_cert={},ssl_verify_mode=2",
        files.path("client-ca.pem")
    );
    let mut server = start(&files, &extra);
    let mut good = tls_client(&files, server.tcp, Some(("client.pem", "client.key")));
    ask(&mut good, b"set k 0 0 1\r\nv\r\n", b"STORED\r\n");
    // Without a certificate, or with one from another CA: refused (TLS
    // 1.3: the alert arrives at the first read).
    let rogue = Ca::new("rogue CA").leaf("client");
    files.write("rogue.pem", &rogue.0);
    files.write("rogue.key", &rogue.1);
    for identity in [None, Some(("rogue.pem", "rogue.key"))] {
        let mut c = tls_client(&files, server.tcp, identity);
        let _ = c.write_all(b"get k\r\n").and_then(|_| c.flush());
        let mut buf = [0u8; 64];
        let r = c.read(&mut buf);
        assert!(r.is_err(), "{identity:?}: {r:?}");
    }
    ask(&mut good, b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
    server.stop_cleanly();
}

/// Writes `bytes` on plain TCP, half-closes if asked, reads until the
/// server closes: what it sent.
fn raw(addr: SocketAddr, bytes: &[u8], half_close: bool) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(HANG_GUARD)).unwrap();
    s.write_all(bytes).unwrap();
    if half_close {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

#[test]
fn garbage_and_truncated_records_end_their_connection_only() {
    let files = Files::new("hostile");
    let mut server = start(&files, "");
    let mut keep = tls_client(&files, server.tcp, None);
    ask(&mut keep, b"set k 0 0 1\r\nv\r\n", b"STORED\r\n");
    // The text protocol in clear: an alert (content type 21), a close.
    let got = raw(server.tcp, b"get k\r\n", false);
    assert_eq!(got.first(), Some(&21), "{got:?}");
    // A record announcing 512 bytes, 5 sent, then the end.
    let got = raw(server.tcp, &[22, 3, 1, 2, 0, 1, 0, 1, 252, 3], true);
    assert!(got.is_empty() || got[0] == 21, "{got:?}");
    // A wrong record version.
    let got = raw(server.tcp, &[22, 9, 9, 0, 4, 1, 0, 0, 0], false);
    assert_eq!(got.first(), Some(&21), "{got:?}");
    // A TLS client that goes silent mid-request: no effect on the others.
    let mut stalled = tls_client(&files, server.tcp, None);
    stalled.write_all(b"set s 0 0 10\r\nabc").unwrap();
    stalled.flush().unwrap();
    assert!(server.alive());
    ask(&mut keep, b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
    let mut fresh = tls_client(&files, server.tcp, None);
    ask(&mut fresh, b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
    // A handshake that stalls (part of a ClientHello), open across the
    // stop: the stop does not wait for it (nor for the handshake timeout).
    let mut half_hello = TcpStream::connect(server.tcp).unwrap();
    half_hello
        .write_all(&[22, 3, 1, 2, 0, 1, 0, 1, 252, 3])
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // SIGTERM with those connections open, none with a request in flight:
    // exit 0 without waiting for the shutdown timeout.
    drop(stalled);
    let (status, took) = server.sigterm();
    assert!(status.success(), "{status:?} after {took:?}");
    assert!(took < SHUTDOWN_TIMEOUT / 2, "{took:?}");
    drop(half_hello);
}

#[test]
fn tls_options_are_checked_like_stocks() {
    let files = Files::new("args");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_memcached"))
            .args(["-p", "0"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["-Z"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ssl_chain_cert"), "{err}");
    let bad = format!(
        "ssl_chain_cert={},ssl_key={}",
        files.path("server.pem"),
        files.path("ca.pem")
    );
    let out = run(&["-Z", "-o", &bad]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ca.pem"), "{err}");
    let out = run(&["-Z", "-o", &format!("{bad},ssl_verify_mode=7")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ssl_verify_mode=7"));
}
