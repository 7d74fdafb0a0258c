//! `openssl s_client` against our server.

use crate::support::*;

const OPENSSL: &str = "/usr/bin/openssl";

/// Reads up to a newline (or the end), echoes it and closes cleanly.
async fn line_echo(tls: &mut TlsStream) -> std::io::Result<Vec<u8>> {
    let mut got = Vec::new();
    while !got.contains(&b'\n') {
        let (n, b) = tls.read(Vec::with_capacity(1024)).await;
        match n? {
            0 => break,
            n => got.extend_from_slice(&b[..n]),
        }
    }
    tls.write_all(got.clone()).await.0?;
    tls.shutdown().await?;
    Ok(got)
}

/// A one-shard server on its own thread serving `n` connections with
/// [`line_echo`]; each accept gives up after 20 s so a failed client
/// cannot hang the test.
fn server_thread(
    acceptor: TlsAcceptor,
    n: usize,
) -> (
    SocketAddr,
    std::thread::JoinHandle<Vec<Result<Seen, TlsError>>>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        rt(1).run(async move {
            let (l, addr) = listen().await;
            tx.send(addr).unwrap();
            let mut out = Vec::new();
            for _ in 0..n {
                let accepted =
                    seastar_core::timer::timeout(Duration::from_secs(20), l.accept()).await;
                let (tcp, _) = accepted.expect("no client within 20 s").unwrap();
                out.push(match acceptor.accept(tcp).await {
                    Ok(mut tls) => {
                        let seen = Seen {
                            alpn: tls.alpn_protocol().map(<[u8]>::to_vec),
                            sni: tls.server_name().map(str::to_owned),
                            resumed: tls.is_resumed(),
                            peer_cert: tls.peer_certificates().map(|c| c[0].to_vec()),
                            version: tls.protocol_version(),
                        };
                        let _ = line_echo(&mut tls).await;
                        Ok(seen)
                    }
                    Err(e) => Err(e),
                });
            }
            out
        })
    });
    (rx.recv().unwrap(), thread)
}

/// Kills the child if the test ends before it does.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `openssl s_client` against `addr` with `args`, sending `input`;
/// returns its stdout and stderr. Bounded: killed after 20 s.
fn s_client(addr: SocketAddr, args: &[&str], input: &[u8]) -> (String, String) {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut child = Child(
        Command::new(OPENSSL)
            .arg("s_client")
            .arg("-connect")
            .arg(addr.to_string())
            .args(["-ign_eof", "-verify_return_error"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    child.0.stdin.take().unwrap().write_all(input).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "openssl s_client still running after 20 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (mut out, mut err) = (String::new(), String::new());
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (out, err)
}

fn have_openssl() -> bool {
    let there = std::path::Path::new(OPENSSL).exists();
    if !there {
        eprintln!("note: {OPENSSL} is missing; skipping the openssl s_client test");
    }
    there
}

/// PEM files for openssl, removed on drop.
struct PemDir(std::path::PathBuf);

impl PemDir {
    fn new(pki: &Pki, tag: &str) -> PemDir {
        let dir = std::env::temp_dir().join(format!("seastar-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [
            ("ca.pem", &pki.ca),
            ("client.pem", &pki.client_cert),
            ("client.key", &pki.client_key),
            ("rogue.pem", &pki.rogue_cert),
            ("rogue.key", &pki.rogue_key),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        PemDir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for PemDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn openssl_s_client_negotiates_alpn_resumes_and_gets_its_echo() {
    if !have_openssl() {
        return;
    }
    let pki = pki();
    let files = PemDir::new(&pki, "s_client");
    let acceptor = TlsAcceptor::new(pki.server().alpn(["h2", "http/1.1"]).build().unwrap());
    let (addr, server) = server_thread(acceptor, 2);
    let ca = files.path("ca.pem");
    let sess = files.path("session.pem");
    let common = [
        "-servername",
        "localhost",
        "-CAfile",
        &ca,
        "-alpn",
        "http/1.1,h2",
    ];

    let mut first: Vec<&str> = common.to_vec();
    first.extend(["-sess_out", &sess]);
    let (out, err) = s_client(addr, &first, b"hello from openssl\n");
    assert!(out.contains("ALPN protocol: h2"), "{out}\n{err}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}\n{err}");
    assert!(out.contains("hello from openssl\n"), "{out}\n{err}");
    assert!(out.contains("New, TLSv1.3"), "{out}\n{err}");

    let mut second: Vec<&str> = common.to_vec();
    second.extend(["-sess_in", &sess]);
    let (out, err) = s_client(addr, &second, b"and again\n");
    assert!(out.contains("Reused, TLSv1.3"), "{out}\n{err}");
    assert!(out.contains("and again\n"), "{out}\n{err}");

    let seen = server.join().unwrap();
    let first = seen[0].as_ref().unwrap();
    assert_eq!(first.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(first.sni.as_deref(), Some("localhost"));
    assert!(!first.resumed);
    assert!(seen[1].as_ref().unwrap().resumed);
}

#[test]
fn openssl_s_client_with_a_bad_client_certificate_is_refused() {
    if !have_openssl() {
        return;
    }
    let pki = pki();
    let files = PemDir::new(&pki, "s_client_mtls");
    let acceptor = TlsAcceptor::new(
        pki.server()
            .client_ca_pem(pki.ca.as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    );
    let (addr, server) = server_thread(acceptor, 2);
    let ca = files.path("ca.pem");
    let base = ["-servername", "localhost", "-CAfile", &ca];

    let (cert, key) = (files.path("rogue.pem"), files.path("rogue.key"));
    let mut rogue: Vec<&str> = base.to_vec();
    rogue.extend(["-cert", &cert, "-key", &key]);
    let (out, err) = s_client(addr, &rogue, b"let me in\n");
    assert!(
        !out.contains("let me in"),
        "echoed to a rogue client: {out}"
    );
    assert!(err.contains("alert"), "no alert reported: {out}\n{err}");

    let (cert, key) = (files.path("client.pem"), files.path("client.key"));
    let mut good: Vec<&str> = base.to_vec();
    good.extend(["-cert", &cert, "-key", &key]);
    let (out, err) = s_client(addr, &good, b"trusted\n");
    assert!(out.contains("trusted\n"), "{out}\n{err}");

    let seen = server.join().unwrap();
    assert!(
        matches!(
            seen[0],
            Err(TlsError::Handshake(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            )))
        ),
        "{:?}",
        seen[0]
    );
    assert_eq!(
        seen[1].as_ref().unwrap().peer_cert.as_deref(),
        Some(&der(&pki.client_cert)[..])
    );
}
