//! HTTP/2 over cleartext (feature `http2`): a connection that opens with
//! the preface gets HTTP/2 on the same port as HTTP/1.1; its streams are
//! served concurrently on the shard (checked on the manual clock).
#![cfg(feature = "http2")]

mod support;

use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use seastar_core::timer::{self, ManualClock};
use seastar_http::{Request, RequestExt, Router, Server, routing::get};
use seastar_net::TcpStream;
use seastar_net::hyper::ShardExecutor;
use support::{Running, exchange, run};

thread_local! {
    /// Handlers of `/wait` that have started sleeping.
    static WAITING: Cell<u32> = const { Cell::new(0) };
}

fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(|r: Request| async move { format!("hello over {:?}\n", r.version()) }),
        )
        .route(
            "/wait/{id}",
            get(|r: Request| async move {
                WAITING.with(|w| w.set(w.get() + 1));
                timer::sleep(Duration::from_secs(1)).await;
                format!("{} done\n", r.param("id").unwrap())
            }),
        )
}

async fn h2_client(s: &Running) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::Builder::new(ShardExecutor)
        .handshake(stream)
        .await
        .unwrap();
    seastar_core::spawn_local(async move {
        let _ = conn.await;
    })
    .detach();
    sender
}

/// Lets the shard run until `n` handlers of `/wait` are asleep.
async fn waiting(n: u32) {
    for _ in 0..100_000 {
        if WAITING.with(Cell::get) == n {
            return;
        }
        seastar_core::yield_now().await;
    }
    panic!("{} of {n} streams started", WAITING.with(Cell::get));
}

fn get_req(s: &Running, path: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(s.url(path)).body(Empty::new()).unwrap()
}

#[test]
fn prior_knowledge_gets_http2_and_http1_still_works_on_the_port() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let mut h2 = h2_client(&s).await;
        let resp = h2.send_request(get_req(&s, "/")).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello over HTTP/2.0\n");

        let r = exchange(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(r.text(), "hello over HTTP/1.1\n");
        let stats = s.stop().await;
        assert_eq!((stats.connections, stats.requests), (2, 2));
    });
}

#[test]
fn streams_of_one_connection_are_served_concurrently() {
    run(true, async {
        let s = Running::start(Server::new(app())).await;
        let h2 = h2_client(&s).await;
        let calls: Vec<_> = (0..3)
            .map(|i| {
                let mut h2 = h2.clone();
                let req = get_req(&s, &format!("/wait/{i}"));
                seastar_core::spawn_local(async move {
                    let resp = h2.send_request(req).await.unwrap();
                    resp.into_body().collect().await.unwrap().to_bytes()
                })
            })
            .collect();
        // All three handlers sleep at once: one second in total.
        waiting(3).await;
        ManualClock::advance(Duration::from_secs(1)).await;
        for (i, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap(), format!("{i} done\n"));
        }
        s.stop().await;
    });
}

#[test]
fn a_graceful_stop_finishes_open_streams_and_refuses_new_ones() {
    run(true, async {
        let s = Running::start(Server::new(app())).await;
        let h2 = h2_client(&s).await;
        let mut c = h2.clone();
        let req = get_req(&s, "/wait/last");
        let call = seastar_core::spawn_local(async move {
            let resp = c.send_request(req).await.unwrap();
            resp.into_body().collect().await.unwrap().to_bytes()
        });
        waiting(1).await;
        // Stop while the stream is open: GOAWAY, then the answer still comes.
        s.stop.request_abort();
        ManualClock::advance(Duration::from_secs(1)).await;
        assert_eq!(call.await.unwrap(), "last done\n");
        let late = get_req(&s, "/");
        let stats = s.task.await.unwrap();
        assert_eq!((stats.requests, stats.dropped_at_stop), (1, 0));
        let mut c = h2.clone();
        assert!(c.send_request(late).await.is_err());
    });
}
