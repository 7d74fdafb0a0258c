//! `serve_sharded` on two shards, twice at once in one runtime (an HTTP
//! and an HTTPS port do this): each call serves its own routes on its own
//! port, and both stop on the runtime's stop signal.

use std::net::SocketAddr;

use seastar_core::{Runtime, promise::promise};
use seastar_http::{Request, Router, Server, routing::get};
use seastar_net::{ListenOptions, TcpStream};

/// One HTTP/1.1 request on a fresh connection; the whole response.
async fn fetch(addr: SocketAddr) -> String {
    let conn = TcpStream::connect(addr).await.unwrap();
    let req = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec();
    conn.write_all(req).await.0.unwrap();
    let mut out = Vec::new();
    loop {
        let (n, buf) = conn.read(Vec::with_capacity(4096)).await;
        match n.unwrap() {
            0 => break,
            _ => out.extend_from_slice(&buf),
        }
    }
    String::from_utf8(out).unwrap()
}

fn server(body: &'static str) -> impl Fn() -> Server + Send + Clone + 'static {
    move || Server::new(Router::new().route("/", get(move |_r: Request| async move { body })))
}

#[test]
fn two_serve_sharded_at_once_serve_their_own_routes() {
    Runtime::builder()
        .shards(2)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let (a_tx, a_rx) = promise();
            let (b_tx, b_rx) = promise();
            let a = seastar_core::spawn_local(seastar_http::serve_sharded(
                any,
                ListenOptions::default(),
                server("first\n"),
                move |addr| a_tx.set_value(addr),
            ));
            let b = seastar_core::spawn_local(seastar_http::serve_sharded(
                any,
                ListenOptions::default(),
                server("second\n"),
                move |addr| b_tx.set_value(addr),
            ));
            let (a_addr, b_addr) = (a_rx.await.unwrap(), b_rx.await.unwrap());
            assert_ne!(a_addr.port(), b_addr.port());
            for _ in 0..4 {
                assert!(fetch(a_addr).await.ends_with("\r\n\r\nfirst\n"));
                assert!(fetch(b_addr).await.ends_with("\r\n\r\nsecond\n"));
            }
            seastar_core::request_stop();
            let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
            assert_eq!((a.len(), b.len()), (2, 2), "stats from every shard");
            let served =
                |s: &Vec<seastar_http::ServeStats>| -> u64 { s.iter().map(|s| s.requests).sum() };
            assert_eq!((served(&a), served(&b)), (4, 4));
        });
}
