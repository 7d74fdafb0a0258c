//! The client over `https://` against our own HTTPS server, with a CA made
//! at test time: a good certificate (HTTP/1.1 and, with feature `http2`,
//! HTTP/2 by ALPN, pooled either way), SNI from the URL's host, and the
//! certificate errors as typed errors: another host name, an unknown CA,
//! an expired certificate, Mozilla's roots not trusting our CA.
#![cfg(feature = "tls")]

mod support;

use std::sync::Arc;

use http_body_util::BodyExt;
use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};
use seastar_http::routing::get;
use seastar_http::{Client, ClientError, Request, Router, Server};
use seastar_net::tls::rustls::{self, CertificateError};
use seastar_net::tls::{TlsAcceptor, TlsClientConfig, TlsServerConfig};
use seastar_net::{ListenOptions, TcpListener};
use support::{Running, run};

/// A CA that signs leaf certificates.
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

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server configuration for a certificate naming `names`, signed by
    /// this CA; `expired`: valid only in 2020.
    fn server(&self, names: &[&str], expired: bool) -> Arc<rustls::ServerConfig> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        TlsServerConfig::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
            .unwrap()
            .build()
            .unwrap()
    }

    /// A client trusting only this CA.
    fn client(&self) -> Client {
        let config = TlsClientConfig::new()
            .root_pem(self.pem().as_bytes())
            .unwrap()
            .build()
            .unwrap();
        Client::builder().tls(config).build()
    }
}

fn router() -> Router {
    Router::new().route("/", get(|_r: Request| async { "Hello, TLS!\n" }))
}

fn https(s: &Running, host: &str) -> String {
    format!("https://{host}:{}/", s.addr.port())
}

async fn text(resp: seastar_http::ClientResponse) -> String {
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(b.to_vec()).unwrap()
}

/// The server with HTTP/2 on or off (without feature `http2`: always off).
fn server(config: Arc<rustls::ServerConfig>, http2: bool) -> Server {
    let server = Server::new(router()).tls(config);
    #[cfg(feature = "http2")]
    let server = server.http2(http2);
    #[cfg(not(feature = "http2"))]
    let _ = http2;
    server
}

#[test]
fn https_over_http1_reuses_its_connection() {
    run(false, async {
        let ca = Ca::new("test CA");
        let s = Running::start(server(ca.server(&["127.0.0.1"], false), false)).await;
        let client = ca.client();
        for _ in 0..3 {
            let resp = client.get(&https(&s, "127.0.0.1")).await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.version(), http::Version::HTTP_11);
            assert_eq!(text(resp).await, "Hello, TLS!\n");
        }
        assert_eq!(client.idle_connections(), 1);
        let stats = s.stop().await;
        assert_eq!((stats.connections, stats.requests), (1, 3));
        assert_eq!(stats.tls_handshake_errors, 0);
    });
}

#[cfg(feature = "http2")]
#[test]
fn https_negotiates_h2_and_multiplexes_one_connection() {
    run(false, async {
        let ca = Ca::new("test CA");
        let s = Running::start(server(ca.server(&["127.0.0.1"], false), true)).await;
        let client = ca.client();
        let url = https(&s, "127.0.0.1");
        let first = client.get(&url).await.unwrap();
        assert_eq!(first.version(), http::Version::HTTP_2);
        assert_eq!(text(first).await, "Hello, TLS!\n");
        // Four at once: all on the one pooled HTTP/2 connection.
        let all = futures::future::join_all((0..4).map(|_| client.get(&url))).await;
        for resp in all {
            let resp = resp.unwrap();
            assert_eq!(resp.version(), http::Version::HTTP_2);
            assert_eq!(text(resp).await, "Hello, TLS!\n");
        }
        assert_eq!(client.idle_connections(), 1);
        let stats = s.stop().await;
        assert_eq!((stats.connections, stats.requests), (1, 5));
    });
}

#[test]
fn sni_is_the_urls_host_and_plain_and_tls_pools_are_apart() {
    run(false, async {
        let ca = Ca::new("test CA");
        let acceptor = TlsAcceptor::new(ca.server(&["localhost"], false));
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        // One connection: record the SNI name, answer one request.
        let server = seastar_core::spawn_local(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let sni = tls.server_name().map(str::to_owned);
            let mut req = Vec::new();
            while !req.ends_with(b"\r\n\r\n") {
                let (n, buf) = tls.read(Vec::with_capacity(1024)).await;
                let n = n.unwrap();
                assert!(n > 0, "closed before the request's end");
                req.extend_from_slice(&buf[..n]);
            }
            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n".to_vec();
            tls.write_all(reply).await.0.unwrap();
            (sni, String::from_utf8(req).unwrap())
        });
        let client = ca.client();
        let resp = client
            .get(&format!("https://localhost:{port}/path?q=1"))
            .await
            .unwrap();
        assert_eq!(text(resp).await, "ok\n");
        let (sni, req) = server.await.unwrap();
        assert_eq!(sni.as_deref(), Some("localhost"));
        assert!(req.starts_with("GET /path?q=1 HTTP/1.1\r\n"), "{req}");
        assert!(
            req.contains(&format!("host: localhost:{port}\r\n")),
            "{req}"
        );
        // Plain http:// to the same host:port must not take the TLS
        // connection from the pool: it connects anew (and is refused).
        assert!(
            client
                .get(&format!("http://localhost:{port}/"))
                .await
                .is_err()
        );
    });
}

fn certificate_error(e: ClientError) -> CertificateError {
    match e {
        ClientError::Certificate { error, .. } => error,
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[test]
fn a_certificate_for_another_name_is_rejected() {
    run(false, async {
        let ca = Ca::new("test CA");
        let s = Running::start(server(ca.server(&["localhost"], false), false)).await;
        let e = ca.client().get(&https(&s, "127.0.0.1")).await.unwrap_err();
        assert!(
            e.to_string().contains("certificate of 127.0.0.1 rejected"),
            "{e}"
        );
        let error = certificate_error(e);
        assert!(
            matches!(
                error,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            "{error:?}"
        );
        let stats = s.stop().await;
        // The rejection may still be in flight when the stop shuts the
        // connection's read side (the client's alert then never reaches
        // the handshake); it is never counted twice nor served.
        assert_eq!(stats.requests, 0);
        assert!(stats.tls_handshake_errors <= 1, "{stats:?}");
    });
}

#[test]
fn a_certificate_from_an_unknown_ca_is_rejected() {
    run(false, async {
        let ca = Ca::new("test CA");
        let s = Running::start(server(ca.server(&["127.0.0.1"], false), false)).await;
        let stranger = Ca::new("another CA");
        let e = stranger.client().get(&https(&s, "127.0.0.1")).await;
        let error = certificate_error(e.unwrap_err());
        assert_eq!(error, CertificateError::UnknownIssuer);
        // Nor do Mozilla's roots (the default configuration) trust it.
        let e = Client::new().get(&https(&s, "127.0.0.1")).await;
        assert_eq!(
            certificate_error(e.unwrap_err()),
            CertificateError::UnknownIssuer
        );
        let stats = s.stop().await;
        // The first rejection is counted by the server; the second may
        // still be in flight when the stop shuts its connection's read
        // side (the client's alert then never reaches the handshake).
        assert_eq!(stats.requests, 0);
        assert!((1..=2).contains(&stats.tls_handshake_errors), "{stats:?}");
    });
}

#[test]
fn an_expired_certificate_is_rejected() {
    run(false, async {
        let ca = Ca::new("test CA");
        let s = Running::start(server(ca.server(&["127.0.0.1"], true), false)).await;
        let e = ca.client().get(&https(&s, "127.0.0.1")).await;
        let error = certificate_error(e.unwrap_err());
        assert!(
            matches!(
                error,
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ),
            "{error:?}"
        );
        s.stop().await;
    });
}

#[test]
fn a_server_that_is_not_tls_fails_the_handshake_as_a_tls_error() {
    run(false, async {
        let ca = Ca::new("test CA");
        // A plain HTTP server: its reply to a ClientHello is no TLS record.
        let s = Running::start(Server::new(router())).await;
        let e = ca.client().get(&https(&s, "127.0.0.1")).await.unwrap_err();
        assert!(
            matches!(e, ClientError::Tls { ref host, .. } if host == "127.0.0.1"),
            "{e:?}"
        );
        s.stop().await;
    });
}
