//! TLS streams (feature `tls`) on the backend named by
//! `SEASTAR_REACTOR_BACKEND`: our client against our server, hostile
//! input, and `openssl s_client` against our server. Certificates are made
//! here, at test time (rcgen): no key material lives in the repository.
#![cfg(feature = "tls")]

mod common;

use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::{localhost0, rt};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use seastar_core::{JoinHandle, spawn_local};
use seastar_net::tls::rustls::{self, AlertDescription, ClientConfig, ProtocolVersion};
use seastar_net::tls::{
    TlsAcceptor, TlsClientConfig, TlsConnector, TlsError, TlsServerConfig, TlsStream,
    crypto_provider,
};
use seastar_net::{ListenOptions, TcpListener, TcpStream};

/// A CA, a server certificate it signed (for `localhost` and `tls.test`),
/// a client certificate it signed, and a client certificate signed by
/// another CA (the rogue one).
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    rogue_cert: String,
    rogue_key: String,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap(), key)
}

fn leaf(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &(rcgen::Certificate, KeyPair),
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer.0, &issuer.1).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let ca = ca("seastar test CA");
    let rogue = ca_rogue();
    let (server_cert, server_key) = leaf(
        &["localhost", "tls.test"],
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
    );
    let (client_cert, client_key) =
        leaf(&["client.test"], ExtendedKeyUsagePurpose::ClientAuth, &ca);
    let (rogue_cert, rogue_key) = leaf(
        &["client.test"],
        ExtendedKeyUsagePurpose::ClientAuth,
        &rogue,
    );
    Pki {
        ca: ca.0.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
        rogue_cert,
        rogue_key,
    }
}

fn ca_rogue() -> (rcgen::Certificate, KeyPair) {
    ca("rogue CA")
}

impl Pki {
    fn server(&self) -> TlsServerConfig {
        TlsServerConfig::from_pem(self.server_cert.as_bytes(), self.server_key.as_bytes()).unwrap()
    }

    fn client(&self) -> TlsClientConfig {
        TlsClientConfig::new().root_pem(self.ca.as_bytes()).unwrap()
    }
}

/// What the server saw of one connection.
#[derive(Debug)]
struct Seen {
    alpn: Option<Vec<u8>>,
    sni: Option<String>,
    resumed: bool,
    peer_cert: Option<Vec<u8>>,
    version: Option<ProtocolVersion>,
}

/// Echoes plaintext until the peer's clean close (then closes cleanly too)
/// or an error, which it returns.
async fn echo(tls: &mut TlsStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let (n, b) = tls.read(buf).await;
        if n? == 0 {
            return tls.shutdown().await;
        }
        let (r, b) = tls.write_all(b).await;
        r?;
        buf = b;
    }
}

/// Serves `n` connections one after the other: a TLS handshake, then an
/// echo; returns what it saw of each (or the handshake's error).
fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    n: usize,
) -> JoinHandle<Vec<Result<Seen, TlsError>>> {
    spawn_local(async move {
        let mut out = Vec::new();
        for _ in 0..n {
            let (tcp, _) = listener.accept().await.unwrap();
            match acceptor.accept(tcp).await {
                Ok(mut tls) => {
                    let seen = Seen {
                        alpn: tls.alpn_protocol().map(<[u8]>::to_vec),
                        sni: tls.server_name().map(str::to_owned),
                        resumed: tls.is_resumed(),
                        peer_cert: tls.peer_certificates().map(|c| c[0].to_vec()),
                        version: tls.protocol_version(),
                    };
                    let _ = echo(&mut tls).await;
                    out.push(Ok(seen));
                }
                Err(e) => out.push(Err(e)),
            }
        }
        out
    })
}

async fn listen() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind(localhost0(), ListenOptions::default())
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Sends `msg`, reads as many bytes back and checks them; then closes cleanly.
async fn ping(tls: &mut TlsStream, msg: &[u8]) {
    tls.write_all(msg.to_vec()).await.0.unwrap();
    let mut got = Vec::new();
    while got.len() < msg.len() {
        let (n, b) = tls.read(Vec::with_capacity(8192)).await;
        let n = n.unwrap();
        assert_ne!(
            n,
            0,
            "end of stream after {} of {} bytes",
            got.len(),
            msg.len()
        );
        got.extend_from_slice(&b[..n]);
    }
    assert!(got == msg, "echo differs");
    tls.shutdown().await.unwrap();
    // The server answers our close_notify with its own: a clean end.
    let (n, _) = tls.read(Vec::with_capacity(16)).await;
    assert_eq!(n.unwrap(), 0);
}

/// Bytes `i % 251`: a shift or a lost chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    let cycle: Vec<u8> = (0..251u8).collect();
    let mut out = cycle.repeat(len / 251 + 1);
    out.truncate(len);
    out
}

#[test]
fn round_trip_large_and_small_messages() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 2);
        for len in [1, 300_000] {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut tls = connector.connect("localhost", tcp).await.unwrap();
            assert_eq!(tls.protocol_version(), Some(ProtocolVersion::TLSv1_3));
            assert_eq!(tls.alpn_protocol(), None);
            // X25519 first (P-384, rustls' first pick for ring, is 4x slower).
            let kx = tls.session().negotiated_key_exchange_group().unwrap();
            assert_eq!(kx.name(), rustls::NamedGroup::X25519);
            assert_eq!(tls.peer_certificates().unwrap()[0], der(&pki.server_cert));
            ping(&mut tls, &pattern(len)).await;
        }
        for seen in server.await.unwrap() {
            let seen = seen.unwrap();
            assert_eq!(seen.sni.as_deref(), Some("localhost"));
            assert_eq!(seen.peer_cert, None);
            assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_3));
        }
    });
}

/// The first certificate of a PEM text.
fn der(pem: &str) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// A TLS 1.2-only client trusting the test CA.
fn tls12_client(pki: &Pki) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der(&pki.ca)).unwrap();
    let config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::new(Arc::new(config))
}

#[test]
fn alpn_picks_h2_over_http1_when_both_are_offered() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().alpn(["h2", "http/1.1"]).build().unwrap());
    let both = TlsConnector::new(pki.client().alpn(["http/1.1", "h2"]).build().unwrap());
    let http1 = TlsConnector::new(pki.client().alpn(["http/1.1"]).build().unwrap());
    let neither = TlsConnector::new(pki.client().alpn(["spdy/3"]).build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 3);
        let mut tls = both
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        assert_eq!(tls.alpn_protocol(), Some(&b"h2"[..]));
        ping(&mut tls, b"x").await;
        let mut tls = http1
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
        ping(&mut tls, b"x").await;
        // No protocol in common: the server refuses with an alert.
        let err = neither
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Handshake(rustls::Error::AlertReceived(
                    AlertDescription::NoApplicationProtocol
                ))
            ),
            "{err:?}"
        );
        let seen = server.await.unwrap();
        assert_eq!(seen[0].as_ref().unwrap().alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(
            seen[1].as_ref().unwrap().alpn.as_deref(),
            Some(&b"http/1.1"[..])
        );
        assert!(
            matches!(
                seen[2],
                Err(TlsError::Handshake(rustls::Error::NoApplicationProtocol))
            ),
            "{:?}",
            seen[2]
        );
    });
}

#[test]
fn server_sees_the_name_the_client_asked_for() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 2);
        let mut tls = connector
            .connect("tls.test", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        assert_eq!(tls.server_name(), None); // client side
        ping(&mut tls, b"sni").await;
        // A name the certificate does not hold fails on the client.
        let err = connector
            .connect("other.test", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Handshake(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "{err:?}"
        );
        let seen = server.await.unwrap();
        assert_eq!(seen[0].as_ref().unwrap().sni.as_deref(), Some("tls.test"));
        // The server learns of the refusal from the client's alert.
        assert!(
            matches!(
                seen[1],
                Err(TlsError::Handshake(rustls::Error::AlertReceived(
                    AlertDescription::BadCertificate
                )))
            ),
            "{:?}",
            seen[1]
        );
        // Not a name at all: refused before the handshake starts.
        let (_l, addr) = listen().await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        assert!(matches!(
            connector.connect("not a name!", tcp).await,
            Err(TlsError::ServerName(_))
        ));
    });
}

#[test]
fn mutual_tls_accepts_a_good_client_certificate_and_rejects_others() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(
        pki.server()
            .client_ca_pem(pki.ca.as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    );
    let good = TlsConnector::new(
        pki.client()
            .client_auth_pem(pki.client_cert.as_bytes(), pki.client_key.as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    );
    let rogue = TlsConnector::new(
        pki.client()
            .client_auth_pem(pki.rogue_cert.as_bytes(), pki.rogue_key.as_bytes())
            .unwrap()
            .build()
            .unwrap(),
    );
    let anonymous = TlsConnector::new(pki.client().build().unwrap());
    let client_der = der(&pki.client_cert).to_vec();
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 4);
        let mut tls = good
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        ping(&mut tls, b"trusted").await;
        for bad in [&rogue, &anonymous] {
            // TLS 1.3: the client is done before the server checks its
            // certificate; the refusal arrives as an alert on the first read.
            let mut tls = bad
                .connect("localhost", TcpStream::connect(addr).await.unwrap())
                .await
                .unwrap();
            let _ = tls.write_all(b"let me in".to_vec()).await;
            let (n, _) = tls.read(Vec::with_capacity(64)).await;
            let err = n.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err:?}");
            let inner = err.get_ref().unwrap().downcast_ref::<rustls::Error>();
            assert!(
                matches!(inner, Some(rustls::Error::AlertReceived(_))),
                "{inner:?}"
            );
        }
        // And the server still serves a trusted client after the refusals.
        let mut tls = good
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        ping(&mut tls, b"trusted again").await;
        let seen = server.await.unwrap();
        assert_eq!(
            seen[0].as_ref().unwrap().peer_cert.as_ref(),
            Some(&client_der)
        );
        assert!(
            matches!(
                seen[1],
                Err(TlsError::Handshake(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                )))
            ),
            "{:?}",
            seen[1]
        );
        assert!(
            matches!(
                seen[2],
                Err(TlsError::Handshake(rustls::Error::NoCertificatesPresented))
            ),
            "{:?}",
            seen[2]
        );
        assert!(seen[3].is_ok());
    });
}

#[test]
fn second_connection_resumes_the_session() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    let no_tickets = TlsAcceptor::new(pki.server().session_tickets(false).build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 3);
        let mut resumed = Vec::new();
        for _ in 0..3 {
            let mut tls = connector
                .connect("localhost", TcpStream::connect(addr).await.unwrap())
                .await
                .unwrap();
            resumed.push(tls.is_resumed());
            // Reading the echo also reads the tickets sent after the handshake.
            ping(&mut tls, b"again").await;
        }
        assert_eq!(resumed, [false, true, true]);
        let seen: Vec<bool> = server
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.unwrap().resumed)
            .collect();
        assert_eq!(seen, [false, true, true]);

        // Without tickets a fresh client gets a full handshake.
        let (l, addr) = listen().await;
        let server = serve(l, no_tickets, 1);
        let fresh = TlsConnector::new(pki.client().build().unwrap());
        let mut tls = fresh
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        assert!(!tls.is_resumed());
        ping(&mut tls, b"full").await;
        assert!(!server.await.unwrap()[0].as_ref().unwrap().resumed);
    });
}

#[test]
fn handshake_times_out_on_a_silent_client() {
    use seastar_core::timer::ManualClock;
    let pki = pki();
    let acceptor =
        TlsAcceptor::new(pki.server().build().unwrap()).handshake_timeout(Duration::from_secs(5));
    let runtime = seastar_core::Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .manual_clock()
        .build()
        .unwrap();
    runtime.run(async move {
        let (l, addr) = listen().await;
        let (started, mut started_rx) = futures::channel::oneshot::channel::<()>();
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let _ = started.send(());
            acceptor.accept(tcp).await
        });
        let silent = TcpStream::connect(addr).await.unwrap();
        (&mut started_rx).await.unwrap();
        ManualClock::advance(Duration::from_millis(4900)).await;
        for _ in 0..10 {
            seastar_core::yield_now().await;
        }
        assert!(!server.is_finished(), "gave up before the timeout");
        ManualClock::advance(Duration::from_millis(200)).await;
        let res = server.await.unwrap();
        assert!(
            matches!(res, Err(TlsError::Timeout(d)) if d == Duration::from_secs(5)),
            "{res:?}"
        );
        // The connection is closed: the silent client reads end of stream.
        let (n, _) = silent.read(Vec::with_capacity(16)).await;
        assert_eq!(n.unwrap(), 0);
    });
}

/// Reads everything until end of stream (or a reset).
async fn read_to_end(tcp: &TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let (n, b) = tcp.read(Vec::with_capacity(4096)).await;
        match n {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&b[..n]),
        }
        assert!(all.len() < 1 << 20, "the server keeps sending");
    }
}

/// A client hello as rustls would send it.
fn client_hello(config: Arc<ClientConfig>) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

#[test]
fn garbage_and_truncated_records_end_in_an_alert_and_a_close() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let client_config = pki.client().build().unwrap();
    let connector = TlsConnector::new(client_config.clone());
    let hello = client_hello(client_config);
    assert_eq!(hello[0], 0x16, "a handshake record");
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 5);

        // 1. Plain HTTP to a TLS port: a fatal alert record, then the close.
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec())
            .await
            .0
            .unwrap();
        let reply = read_to_end(&tcp).await;
        assert_eq!(reply.len(), 7, "one alert record: {reply:?}");
        assert_eq!(reply[0], 0x15, "alert record: {reply:?}");
        assert_eq!(&reply[3..5], &[0, 2], "alert length: {reply:?}");
        assert_eq!(reply[5], 2, "fatal: {reply:?}");

        // 2. Half a client hello, then end of stream: closed, no reply.
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(hello[..hello.len() / 2].to_vec())
            .await
            .0
            .unwrap();
        tcp.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&tcp).await, b"");

        // 3. A record header announcing more than a record may hold.
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(vec![0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3])
            .await
            .0
            .unwrap();
        let reply = read_to_end(&tcp).await;
        assert_eq!(reply.first(), Some(&0x15), "alert record: {reply:?}");

        // 4. After a good handshake, the client's TCP FIN without
        // close_notify: the server's read fails (a possible truncation).
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        tls.write_all(b"partial".to_vec()).await.0.unwrap();
        let (n, b) = tls.read(Vec::with_capacity(64)).await;
        assert_eq!(&b[..n.unwrap()], b"partial");
        tls.get_ref().shutdown(Shutdown::Write).unwrap();

        // 5. And the server still serves a well-behaved client.
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        ping(&mut tls, b"still here").await;

        let seen = server.await.unwrap();
        assert!(
            matches!(seen[0], Err(TlsError::Handshake(_))),
            "{:?}",
            seen[0]
        );
        assert!(
            matches!(&seen[1], Err(TlsError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof),
            "{:?}",
            seen[1]
        );
        assert!(
            matches!(seen[2], Err(TlsError::Handshake(_))),
            "{:?}",
            seen[2]
        );
        assert!(seen[3].is_ok() && seen[4].is_ok());
    });
}

#[test]
fn unclean_close_after_the_handshake_reads_as_unexpected_eof() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            echo(&mut tls).await
        });
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        tls.write_all(b"abc".to_vec()).await.0.unwrap();
        let (n, _) = tls.read(Vec::with_capacity(8)).await;
        assert_eq!(n.unwrap(), 3);
        tls.get_ref().shutdown(Shutdown::Write).unwrap();
        let err = server.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err:?}");
    });
}

#[test]
fn an_unsupported_version_is_refused_with_an_alert() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().tls12(false).build().unwrap());
    let connector = tls12_client(&pki);
    let modern = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 2);
        let err = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Handshake(rustls::Error::AlertReceived(
                    AlertDescription::ProtocolVersion
                ))
            ),
            "{err:?}"
        );
        let mut tls = modern
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        ping(&mut tls, b"1.3").await;
        let seen = server.await.unwrap();
        assert!(
            matches!(
                seen[0],
                Err(TlsError::Handshake(rustls::Error::PeerIncompatible(_)))
            ),
            "{:?}",
            seen[0]
        );
        assert!(seen[1].is_ok());
    });
}

#[test]
fn tls12_sessions_work_too() {
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = tls12_client(&pki);
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = serve(l, acceptor, 2);
        let mut resumed = Vec::new();
        for _ in 0..2 {
            let mut tls = connector
                .connect("localhost", TcpStream::connect(addr).await.unwrap())
                .await
                .unwrap();
            assert_eq!(tls.protocol_version(), Some(ProtocolVersion::TLSv1_2));
            resumed.push(tls.is_resumed());
            ping(&mut tls, &pattern(40_000)).await;
        }
        assert_eq!(resumed, [false, true]);
        let seen = server.await.unwrap();
        assert_eq!(
            seen[0].as_ref().unwrap().version,
            Some(ProtocolVersion::TLSv1_2)
        );
    });
}

#[test]
fn pem_files_and_their_errors() {
    let pki = pki();
    let dir = std::env::temp_dir().join(format!("seastar-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, &pki.server_cert).unwrap();
    std::fs::write(&key, &pki.server_key).unwrap();
    let ok = TlsServerConfig::from_pem_files(&cert, &key).map(|c| c.build());
    assert!(matches!(ok, Ok(Ok(_))), "{ok:?}");

    let missing = TlsServerConfig::from_pem_files(dir.join("nope.pem"), &key).unwrap_err();
    assert!(matches!(missing, TlsError::File { .. }), "{missing:?}");
    assert!(missing.to_string().contains("nope.pem"), "{missing}");

    // A key where the certificate should be: no certificate found.
    let swapped = TlsServerConfig::from_pem_files(&key, &key).unwrap_err();
    assert!(matches!(swapped, TlsError::Pem { .. }), "{swapped:?}");

    // A key that is not the certificate's.
    let other_key = KeyPair::generate().unwrap().serialize_pem();
    let mismatch = TlsServerConfig::from_pem(pki.server_cert.as_bytes(), other_key.as_bytes())
        .unwrap()
        .build()
        .unwrap_err();
    assert!(matches!(mismatch, TlsError::Config { .. }), "{mismatch:?}");

    let garbage = TlsClientConfig::new().root_pem(b"not pem").unwrap_err();
    assert!(matches!(garbage, TlsError::Pem { .. }), "{garbage:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "hyper")]
#[test]
fn hyper_http1_runs_over_tls() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;

    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().alpn(["http/1.1"]).build().unwrap());
    let connector = TlsConnector::new(pki.client().alpn(["http/1.1"]).build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let tls = acceptor.accept(tcp).await.unwrap();
            let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                let path = req.uri().path().to_owned();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let text = format!("{path} {}", body.len());
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                    text,
                ))))
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(tls, svc)
                .await
                .unwrap();
        });
        let tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(tls).await.unwrap();
        let driver = spawn_local(conn);
        for i in 0..20usize {
            let body = Bytes::from(vec![b'x'; i * 5000]);
            let req = hyper::Request::post(format!("/item/{i}"))
                .body(Full::new(body))
                .unwrap();
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            let got = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(got, format!("/item/{i} {}", i * 5000).as_bytes());
        }
        drop(sender);
        driver.await.unwrap().unwrap();
        server.await.unwrap();
    });
}

#[cfg(feature = "futures-io")]
#[test]
fn futures_io_traits_run_over_tls() {
    use futures::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut line = String::new();
            tls.read_line(&mut line).await.unwrap(); // AsyncBufRead, no copy

            AsyncWriteExt::write_all(&mut tls, line.to_uppercase().as_bytes())
                .await
                .unwrap();
            tls.close().await.unwrap();
        });
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        AsyncWriteExt::write_all(&mut tls, b"hello over tls\n")
            .await
            .unwrap();
        tls.flush().await.unwrap();
        let mut got = String::new();
        tls.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "HELLO OVER TLS\n");
        server.await.unwrap();
    });
}

// ---------------------------------------------------------------------------
// openssl s_client against our server.

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

#[test]
fn a_reader_that_does_not_read_holds_the_sender_back() {
    // The server reads in 7-byte steps, and not at all for a while: the
    // session buffers no more plaintext than it was asked for, so the
    // sender's 64 MiB stall in the socket buffers instead of piling up in
    // the server's memory; then every byte arrives, in order.
    const TOTAL: usize = 64 << 20;
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let connector = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let (gate_tx, gate_rx) = futures::channel::oneshot::channel::<()>();
        let data = bytes::Bytes::from(pattern(TOTAL));
        let expected = data.clone();
        let server = spawn_local(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut small = [0u8; 7];
            let n = tls.read_into(&mut small).await.unwrap();
            assert!(n > 0 && small[..n] == pattern(n)[..]);
            gate_rx.await.unwrap();
            let mut got = n;
            let mut buf = Vec::with_capacity(64 * 1024);
            loop {
                let (n, b) = tls.read(buf).await;
                let n = n.unwrap();
                if n == 0 {
                    break;
                }
                assert!(b[..] == expected[got..got + n], "bytes {got}..{}", got + n);
                got += n;
                buf = b;
            }
            got
        });
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        let sender = spawn_local(async move {
            tls.write_all(data).await.0.unwrap();
            tls.shutdown().await.unwrap();
            tls
        });
        seastar_core::timer::sleep(Duration::from_millis(300)).await;
        assert!(
            !sender.is_finished(),
            "64 MiB written to a peer that reads nothing"
        );
        let t0 = std::time::Instant::now();
        gate_tx.send(()).unwrap();
        let _tls = sender.await.unwrap();
        assert_eq!(server.await.unwrap(), TOTAL);
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "64 MiB over TLS on one shard in {secs:.3} s ({:.0} MiB/s, both ends on this core)",
            64.0 / secs
        );
    });
}

/// A measurement, not a check (run it with `--release --ignored
/// --nocapture`): full and resumed handshakes per second and one-way
/// throughput, client and server on one shard (so both ends' CPU counts).
#[test]
#[ignore]
fn measure_handshakes_and_throughput() {
    const HANDSHAKES: usize = 300;
    const BULK: usize = 256 << 20;
    let pki = pki();
    let acceptor = TlsAcceptor::new(pki.server().build().unwrap());
    let full = TlsConnector::new(pki.client().resumption(false).build().unwrap());
    let resuming = TlsConnector::new(pki.client().build().unwrap());
    rt(1).run(async move {
        let (l, addr) = listen().await;
        let server = spawn_local(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                spawn_local(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut buf = Vec::with_capacity(64 * 1024);
                        loop {
                            let (n, b) = tls.read(buf).await;
                            if !matches!(n, Ok(1..)) {
                                let _ = tls.shutdown().await;
                                break;
                            }
                            buf = b;
                        }
                    }
                })
                .detach();
            }
        });
        for (what, connector) in [("full", &full), ("resumed", &resuming)] {
            let t0 = std::time::Instant::now();
            for _ in 0..HANDSHAKES {
                let tcp = TcpStream::connect(addr).await.unwrap();
                let mut tls = connector.connect("localhost", tcp).await.unwrap();
                tls.shutdown().await.unwrap();
                let _ = tls.read(Vec::with_capacity(64)).await;
            }
            let rate = HANDSHAKES as f64 / t0.elapsed().as_secs_f64();
            eprintln!("{what} TLS 1.3 handshakes (both ends, one core): {rate:.0}/s");
        }
        let data = bytes::Bytes::from(pattern(1 << 20));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = full.connect("localhost", tcp).await.unwrap();
        let t0 = std::time::Instant::now();
        for _ in 0..BULK >> 20 {
            tls.write_all(data.clone()).await.0.unwrap();
        }
        tls.shutdown().await.unwrap();
        let _ = tls.read(Vec::with_capacity(64)).await;
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "256 MiB one way (encrypt + decrypt on one core): {:.0} MiB/s",
            256.0 / secs
        );
        server.abort();
    });
}
