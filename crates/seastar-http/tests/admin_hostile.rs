//! The admin server against hostile clients, on a 2-shard runtime over
//! real sockets: oversized heads and bodies, garbage, a wrong-token flood,
//! more connections than its cap, and clients that pipeline API requests
//! without reading while the runtime stops. Each gets the answer a
//! hardened server gives, fresh clients are still served, and the stop
//! ends within the admin's shutdown timeout plus 2 s.
//! Run on both backends (`SEASTAR_REACTOR_BACKEND=io_uring|epoll`).
#![cfg(feature = "admin")]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use seastar_core::Runtime;
use seastar_http::admin::{Admin, AdminServer, MAX_CONNECTIONS};
use support::Raw;

const TOKEN: &str = "hostile-t0ken";
const SHARDS: usize = 2;

fn get(path: &str, token: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n").into_bytes()
}

/// One request on a fresh connection: its status, or `None` if the
/// server closed without an answer.
async fn status_of(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut c = Raw::connect(addr).await;
    c.send(request).await;
    c.response(false).await.map(|r| r.status)
}

/// A fresh client gets the runtime facts (retrying while the server is
/// still closing connections a test let go).
async fn assert_fresh_client_served(addr: SocketAddr) {
    for _ in 0..100 {
        if status_of(addr, &get("/api/v1/runtime", TOKEN)).await == Some(200) {
            return;
        }
        seastar_core::timer::sleep(Duration::from_millis(20)).await;
    }
    panic!("a fresh client was not served");
}

#[test]
fn the_admin_server_bounds_what_hostile_clients_hold_and_its_stop() {
    let shutdown = Duration::from_secs(1);
    let took = Runtime::builder()
        .shards(SHARDS)
        .handle_signals(false)
        .pin(false)
        .build()
        .unwrap()
        .run(async move {
            let admin = Admin::new("hostile", "1.0")
                .token(Some(TOKEN.into()))
                .shutdown_timeout(shutdown);
            let server = AdminServer::start("127.0.0.1:0".parse().unwrap(), admin)
                .await
                .unwrap();
            let addr = server.addr();
            assert_fresh_client_served(addr).await;

            // A head past 16 KiB: 431. A body past 4 KiB: 413. Garbage: 400.
            let bomb = format!(
                "GET /api/v1/runtime HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
                "a".repeat(20 * 1024)
            );
            assert_eq!(status_of(addr, bomb.as_bytes()).await, Some(431));
            let body = "GET /api/v1/runtime HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
            let mut c = Raw::connect(addr).await;
            c.send(body.as_bytes()).await;
            c.send(&[b'x'; 8192]).await;
            assert_eq!(c.response(false).await.map(|r| r.status), Some(413));
            assert_eq!(
                status_of(addr, b"\x16\x03\x01garbage\r\n\r\n").await,
                Some(400)
            );

            // A wrong-token flood on one connection: each request gets its
            // 401, in order, and costs no gather.
            let mut c = Raw::connect(addr).await;
            let flood: Vec<u8> = get("/api/v1/metrics", "wrong").repeat(200);
            c.send(&flood).await;
            for i in 0..200 {
                let r = c
                    .response(false)
                    .await
                    .unwrap_or_else(|| panic!("closed at {i}"));
                assert_eq!(r.status, 401, "request {i}");
            }
            drop(c);

            // More connections than the cap of every shard: the surplus is
            // closed unanswered, the rest answered; once they leave, a
            // fresh client is served.
            let total = SHARDS * MAX_CONNECTIONS + 72;
            let mut held = Vec::with_capacity(total);
            for _ in 0..total {
                held.push(Raw::connect(addr).await);
            }
            let (mut answered, mut closed) = (0, 0);
            for c in &mut held {
                c.send(&get("/api/v1/openapi.json", TOKEN)).await;
                match c.response(false).await {
                    Some(r) => {
                        assert_eq!(r.status, 200);
                        answered += 1;
                    }
                    None => closed += 1,
                }
            }
            assert!(answered <= SHARDS * MAX_CONNECTIONS, "{answered} answered");
            assert!(closed >= 72, "{closed} closed of {total}");
            drop(held);
            assert_fresh_client_served(addr).await;

            // Clients that pipeline gathers and never read, then the stop.
            let mut flooders = Vec::new();
            for _ in 0..16 {
                let c = Raw::connect(addr).await;
                c.send(&get("/api/v1/metrics", TOKEN).repeat(100)).await;
                flooders.push(c);
            }
            // Every flooder is being served (its answers pile up unread).
            seastar_core::timer::sleep(Duration::from_millis(200)).await;
            assert_fresh_client_served(addr).await;
            let t0 = Instant::now();
            seastar_core::request_stop();
            server.stopped().await.unwrap();
            let took = t0.elapsed();
            drop(flooders);
            took
        });
    assert!(
        took < shutdown + Duration::from_secs(2),
        "the stop took {took:?}"
    );
}
