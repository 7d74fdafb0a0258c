//! The native protocol over TLS (feature `tls`), on the backend named by
//! `SEASTAR_REACTOR_BACKEND`, with certificates made at test time: calls
//! small and large, many at once, a stream; mutual TLS accepting a good
//! client certificate and refusing a missing or rogue one; garbage, a
//! truncated record and a plain client on the TLS port, after which the
//! server still serves; a stop with TLS connections open.
#![cfg(feature = "tls")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};
use seastar_core::Runtime;
use seastar_net::TcpStream;
use seastar_net::tls::{TlsAcceptor, TlsClientConfig, TlsConnector, TlsServerConfig};
use seastar_rpc::{ClientOptions, RpcClient, RpcError, RpcServer, ServerOptions};

const ECHO: u32 = 1;

fn run<F: std::future::Future + 'static>(f: F) -> F::Output {
    Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(f)
}

/// A CA and what it signs.
struct Ca {
    cert: Certificate,
    key: KeyPair,
}

/// A certificate chain and key, PEM.
struct Leaf {
    cert: String,
    key: String,
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

    fn leaf(&self, name: &str) -> Leaf {
        let params = CertificateParams::new(vec![name.to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

struct Pki {
    ca: Ca,
    server: Leaf,
}

fn pki() -> Pki {
    let ca = Ca::new("rpc test CA");
    let server = ca.leaf("localhost");
    Pki { ca, server }
}

/// The server's acceptor; with `client_ca`, mutual TLS.
fn acceptor(pki: &Pki, client_ca: Option<&str>) -> TlsAcceptor {
    let mut config =
        TlsServerConfig::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap();
    if let Some(ca) = client_ca {
        config = config.client_ca_pem(ca.as_bytes()).unwrap();
    }
    TlsAcceptor::new(config.build().unwrap())
}

/// A connector trusting `pki`'s CA, presenting `cert` if given.
fn connector(pki: &Pki, cert: Option<&Leaf>) -> TlsConnector {
    let mut config = TlsClientConfig::new()
        .root_pem(pki.ca.pem().as_bytes())
        .unwrap();
    if let Some(leaf) = cert {
        config = config
            .client_auth_pem(leaf.cert.as_bytes(), leaf.key.as_bytes())
            .unwrap();
    }
    TlsConnector::new(config.build().unwrap())
}

async fn start(acceptor: TlsAcceptor) -> (RpcServer, SocketAddr) {
    let opts = ServerOptions::default()
        .negotiation_timeout(Duration::from_secs(5))
        .shutdown_timeout(Duration::from_secs(2))
        .tls(acceptor);
    let server = RpcServer::new(opts);
    server.register(ECHO, |v: Vec<u8>| async move { Ok::<_, ()>(v) });
    let addr = server
        .listen("127.0.0.1:0".parse().unwrap(), Default::default())
        .await
        .unwrap();
    (server, addr)
}

async fn client(addr: SocketAddr, connector: TlsConnector) -> Result<RpcClient, RpcError> {
    let opts = ClientOptions::default()
        .connect_timeout(Duration::from_secs(5))
        .tls(connector, "localhost");
    RpcClient::connect_with(addr, opts).await
}

async fn echo(c: &RpcClient, v: Vec<u8>) -> Result<Vec<u8>, RpcError> {
    c.call::<_, Vec<u8>, ()>(ECHO, &v)
        .await
        .map_err(|e| match e {
            seastar_rpc::CallError::Rpc(e) => e,
            seastar_rpc::CallError::Handler(()) => panic!("echo does not fail"),
        })
}

/// A payload whose every byte is checked: its index, mod 251.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn calls_over_tls_small_large_and_many_at_once() {
    run(async {
        let pki = pki();
        let (server, addr) = start(acceptor(&pki, None)).await;
        let c = client(addr, connector(&pki, None)).await.unwrap();
        assert_eq!(echo(&c, b"ping".to_vec()).await.unwrap(), b"ping");
        // 3 MiB each way: many TLS records, several 64 KiB session writes.
        let big = pattern(3 << 20);
        assert_eq!(echo(&c, big.clone()).await.unwrap(), big);
        // 64 calls in flight at once on the one connection.
        let calls = (0..64).map(|i| echo(&c, pattern(i * 1000)));
        let replies = futures::future::join_all(calls).await;
        for (i, r) in replies.into_iter().enumerate() {
            assert_eq!(r.unwrap(), pattern(i * 1000), "call {i}");
        }
        assert_eq!(c.connects(), 1);
        assert_eq!(server.connections(), 1);
        drop(c);
        let stats = server.stats();
        assert_eq!(stats.tls_handshake_errors, 0);
        server.stop().await;
    });
}

#[test]
fn a_client_that_does_not_trust_the_server_fails_its_handshake() {
    run(async {
        let pki = pki();
        let (server, addr) = start(acceptor(&pki, None)).await;
        let stranger = Pki {
            ca: Ca::new("another CA"),
            server: pki.ca.leaf("unused"),
        };
        let e = client(addr, connector(&stranger, None)).await.unwrap_err();
        assert!(matches!(e, RpcError::Tls(_)), "{e:?}");
        assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        // The server saw the client's alert.
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.stats().tls_handshake_errors == 0 && Instant::now() < deadline {
            seastar_core::timer::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(server.stats().tls_handshake_errors, 1);
        server.stop().await;
    });
}

#[test]
fn mutual_tls_accepts_a_good_client_certificate_and_refuses_others() {
    run(async {
        let pki = pki();
        let clients_ca = Ca::new("clients CA");
        let (server, addr) = start(acceptor(&pki, Some(&clients_ca.pem()))).await;

        let good = clients_ca.leaf("client-1");
        let c = client(addr, connector(&pki, Some(&good))).await.unwrap();
        assert_eq!(echo(&c, b"mtls".to_vec()).await.unwrap(), b"mtls");

        // No certificate, and one from a CA the server does not trust: with
        // TLS 1.3 the client's handshake ends before the server's verdict,
        // which arrives as the first read fails (the negotiation).
        let rogue = Ca::new("rogue CA").leaf("client-1");
        for cert in [None, Some(&rogue)] {
            let e = client(addr, connector(&pki, cert)).await.unwrap_err();
            let text = e.to_string();
            assert!(
                matches!(e, RpcError::Io(_) | RpcError::Tls(_)),
                "{cert:?}: {e:?}",
                cert = cert.is_some()
            );
            assert!(
                text.contains("CertificateRequired")
                    || text.contains("UnknownCA")
                    || text.contains("BadCertificate")
                    || text.contains("DecryptError"),
                "{text}"
            );
        }
        // The server counts each refusal as its handshake ends, which may
        // come after the client read the alert.
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.stats().tls_handshake_errors < 2 && Instant::now() < deadline {
            seastar_core::timer::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(server.stats().tls_handshake_errors, 2);
        // The good client is still served.
        assert_eq!(echo(&c, b"again".to_vec()).await.unwrap(), b"again");
        drop(c);
        server.stop().await;
    });
}

/// Sends `bytes` on a plain TCP connection to `addr`, then reads until the
/// server closes; returns what it sent back (an alert, or nothing).
async fn raw(addr: SocketAddr, bytes: &[u8], half_close: bool) -> Vec<u8> {
    let s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes.to_vec()).await.0.unwrap();
    if half_close {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut got = Vec::new();
    loop {
        let (n, buf) = s.read(Vec::with_capacity(4096)).await;
        match n {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn garbage_truncated_records_and_plain_clients_end_alone() {
    run(async {
        let pki = pki();
        let (server, addr) = start(acceptor(&pki, None)).await;
        let keep = client(addr, connector(&pki, None)).await.unwrap();

        // Not TLS at all: an alert (content type 21) and a close.
        let got = raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false).await;
        assert_eq!(got.first(), Some(&21), "{got:?}");
        // The native protocol's negotiation frame in clear: the same.
        let got = raw(
            addr,
            b"SRPC\x01\x00\x00\x00\x0f\x00\x00\x00\x00\x00\x10\x00",
            false,
        )
        .await;
        assert_eq!(got.first(), Some(&21), "{got:?}");
        // A handshake record announcing 512 bytes, 5 of them sent, then
        // the client's end: closed without waiting for the rest.
        let got = raw(addr, &[22, 3, 1, 2, 0, 1, 0, 1, 252, 3], true).await;
        assert!(got.is_empty() || got[0] == 21, "{got:?}");
        // A record of a wrong version.
        let got = raw(addr, &[22, 9, 9, 0, 4, 1, 0, 0, 0], false).await;
        assert_eq!(got.first(), Some(&21), "{got:?}");

        let deadline = Instant::now() + Duration::from_secs(5);
        while server.stats().tls_handshake_errors < 4 && Instant::now() < deadline {
            seastar_core::timer::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(server.stats().tls_handshake_errors, 4);
        // The connection made before, and a new one, are served.
        assert_eq!(echo(&keep, b"still".to_vec()).await.unwrap(), b"still");
        let fresh = client(addr, connector(&pki, None)).await.unwrap();
        assert_eq!(echo(&fresh, b"fresh".to_vec()).await.unwrap(), b"fresh");
        drop((keep, fresh));
        server.stop().await;
    });
}

#[test]
fn a_stop_ends_open_tls_connections_within_its_timeout() {
    run(async {
        let pki = pki();
        let (server, addr) = start(acceptor(&pki, None)).await;
        let c = client(addr, connector(&pki, None)).await.unwrap();
        assert_eq!(echo(&c, b"x".to_vec()).await.unwrap(), b"x");
        // A connection mid-handshake too: a ClientHello never finished.
        let silent = TcpStream::connect(addr).await.unwrap();
        silent.write_all(vec![22, 3, 1, 0, 200]).await.0.unwrap();
        let started = Instant::now();
        // The read side shut at the stop: both connections end at once.
        assert_eq!(server.stop_within(Duration::from_secs(2)).await, 0);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(server.connections(), 0);
        let e = echo(&c, b"y".to_vec()).await.unwrap_err();
        assert!(
            matches!(e, RpcError::ConnectionLost(_) | RpcError::Io(_)),
            "{e:?}"
        );
        drop(silent);
    });
}
