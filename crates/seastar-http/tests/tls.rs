//! HTTPS on the server (feature `tls`): ALPN follows the HTTP/2 setting,
//! the server's limits apply to TLS connections, and a handshake that does
//! not finish in time is counted and closed. Clients are seastar-net's
//! `TlsConnector`, speaking raw HTTP/1.1 for byte-exact replies.
#![cfg(feature = "tls")]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use seastar_http::routing::get;
use seastar_http::{Request, Router, Server};
use seastar_net::TcpStream;
use seastar_net::tls::{TlsClientConfig, TlsConnector, TlsServerConfig, TlsStream, rustls};
use support::{Running, run};

struct Keys {
    server: Arc<rustls::ServerConfig>,
    cert_pem: String,
}

fn keys() -> Keys {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
    // No ALPN here: the server sets the list of what it serves.
    let server = TlsServerConfig::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    Keys { server, cert_pem }
}

fn router() -> Router {
    Router::new().route("/", get(|_r: Request| async { "hi\n" }))
}

/// The server with HTTP/2 off (without feature `http2` it is never on).
fn http1_only(server: Server) -> Server {
    #[cfg(feature = "http2")]
    let server = server.http2(false);
    server
}

async fn connect(keys: &Keys, addr: std::net::SocketAddr) -> TlsStream {
    let client = TlsClientConfig::new()
        .root_pem(keys.cert_pem.as_bytes())
        .unwrap()
        .alpn(["h2", "http/1.1"])
        .build()
        .unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::new(client)
        .connect("localhost", tcp)
        .await
        .unwrap()
}

/// Sends `req`, reads until the server closes (clean or not): every byte.
async fn exchange(tls: &mut TlsStream, req: &str) -> String {
    tls.write_all(req.as_bytes().to_vec()).await.0.unwrap();
    let mut got = Vec::new();
    loop {
        let (n, buf) = tls.read(Vec::with_capacity(4096)).await;
        match n {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8(got).unwrap()
}

/// The reply without its `date` header line.
fn without_date(reply: &str) -> String {
    reply
        .split("\r\n")
        .filter(|l| !l.starts_with("date: "))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn alpn_picks_http1_when_http2_is_off_and_limits_apply() {
    run(false, async {
        let keys = keys();
        let server = Server::new(router())
            .tls(keys.server.clone())
            .max_body_size(10);
        let server = http1_only(server);
        let running = Running::start(server).await;

        let mut tls = connect(&keys, running.addr).await;
        assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
        let reply = exchange(
            &mut tls,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(
            without_date(&reply),
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 3\r\n\r\nhi\n"
        );

        // The body limit, as on a plain connection: 413 at once, closed.
        let mut tls = connect(&keys, running.addr).await;
        let reply = exchange(
            &mut tls,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
        )
        .await;
        assert!(
            reply.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
            "{reply}"
        );

        let stats = running.stop().await;
        assert_eq!(stats.connections, 2);
        assert_eq!(stats.requests, 2);
        assert_eq!(stats.tls_handshake_errors, 0);
    });
}

#[cfg(feature = "http2")]
#[test]
fn alpn_picks_h2_when_http2_is_on() {
    run(false, async {
        let keys = keys();
        let running = Running::start(Server::new(router()).tls(keys.server.clone())).await;
        let mut tls = connect(&keys, running.addr).await;
        assert_eq!(tls.alpn_protocol(), Some(&b"h2"[..]));
        // The server speaks first in HTTP/2: its SETTINGS frame (type 4, stream 0).
        let (n, buf) = tls.read(Vec::with_capacity(64)).await;
        let n = n.unwrap();
        assert!(n >= 9, "{:?}", &buf[..n]);
        assert_eq!(buf[3], 4, "not a SETTINGS frame: {:?}", &buf[..n]);
        assert_eq!(&buf[5..9], &[0, 0, 0, 0]);
        drop(tls);
        let stats = running.stop().await;
        assert_eq!(stats.tls_handshake_errors, 0);
    });
}

#[test]
fn a_handshake_past_its_timeout_is_closed_and_counted() {
    run(false, async {
        let keys = keys();
        let server = Server::new(router())
            .tls(keys.server.clone())
            .tls_handshake_timeout(Duration::from_millis(200));
        let server = http1_only(server);
        let running = Running::start(server).await;
        // Connected, says nothing.
        let silent = TcpStream::connect(running.addr).await.unwrap();
        let t0 = Instant::now();
        let (n, _) = silent.read(Vec::with_capacity(64)).await;
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(150), "closed after {took:?}");
        assert!(took < Duration::from_secs(10), "closed after {took:?}");
        // Garbage: closed too (after rustls' alert), counted.
        let tcp = TcpStream::connect(running.addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\n\r\n".to_vec())
            .await
            .0
            .unwrap();
        let mut got = Vec::new();
        loop {
            let (n, buf) = tcp.read(Vec::with_capacity(64)).await;
            match n {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        assert!(got.is_empty() || got[0] == 21, "not an alert: {got:?}");
        // Still serving.
        let mut tls = connect(&keys, running.addr).await;
        let reply = exchange(
            &mut tls,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(reply.ends_with("\r\n\r\nhi\n"), "{reply}");
        let stats = running.stop().await;
        assert_eq!(stats.tls_handshake_errors, 2);
        assert_eq!(stats.requests, 1);
    });
}
