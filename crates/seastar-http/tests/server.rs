//! The server over real sockets: routing, keep-alive, pipelining, bodies,
//! limits, timeouts, graceful stop.

mod support;

use std::time::Duration;

use http::StatusCode;
use seastar_core::timer::{self, ManualClock};
use seastar_http::{
    Body, Request, RequestExt, Router, Server,
    routing::{get, post},
};
use support::{Raw, Running, exchange, run};

fn app() -> Router {
    Router::new()
        .route("/", get(|_r: Request| async { "Hello, world!\n" }))
        .route(
            "/users/{id}",
            get(|r: Request| async move { format!("user {}\n", r.param("id").unwrap()) })
                .delete(|_r: Request| async { StatusCode::NO_CONTENT }),
        )
        .route(
            "/search",
            get(|r: Request| async move { format!("q={}\n", r.query().get("q").unwrap_or("-")) }),
        )
        .route(
            "/echo",
            post(|r: Request| async move { Body::new(r.into_body()) }),
        )
        .route(
            "/len",
            post(|r: Request| async move { r.bytes().await.map(|b| format!("{}\n", b.len())) }),
        )
        .route(
            "/slow",
            get(|_r: Request| async {
                timer::sleep(Duration::from_millis(50)).await;
                "slow done\n"
            }),
        )
}

#[test]
fn routes_parameters_queries_404_and_405_over_the_wire() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let r = exchange(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!((r.status, r.text().as_str()), (200, "Hello, world!\n"));
        assert_eq!(r.header("content-length"), Some("14"));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(r.header("date").is_some());
        let r = exchange(s.addr, b"GET /users/a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(r.text(), "user a/b\n");
        let r = exchange(s.addr, b"GET /search?q=a+b%21 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(r.text(), "q=a b!\n");
        let r = exchange(s.addr, b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!((r.status, r.text().as_str()), (404, "not found\n"));
        let r = exchange(
            s.addr,
            b"POST /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, DELETE, HEAD, OPTIONS"));
        let r = exchange(s.addr, b"DELETE /users/1 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(r.status, 204);
        s.stop().await;
    });
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let mut c = Raw::connect(s.addr).await;
        for i in 0..5 {
            c.send(format!("GET /users/{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await;
            let r = c.response(false).await.unwrap();
            assert_eq!(r.text(), format!("user {i}\n"));
        }
        drop(c);
        let stats = s.stop().await;
        assert_eq!((stats.connections, stats.requests), (1, 5));
    });
}

#[test]
fn pipelined_requests_get_their_responses_in_order() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let mut c = Raw::connect(s.addr).await;
        let mut batch = Vec::new();
        for i in 0..16 {
            batch.extend_from_slice(
                format!("GET /users/{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            );
        }
        // A slow handler in the middle must not reorder the answers.
        batch.extend_from_slice(
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        c.send(&batch).await;
        for i in 0..16 {
            assert_eq!(
                c.response(false).await.unwrap().text(),
                format!("user {i}\n")
            );
        }
        assert_eq!(c.response(false).await.unwrap().text(), "slow done\n");
        assert_eq!(c.response(false).await.unwrap().text(), "Hello, world!\n");
        s.stop().await;
    });
}

#[test]
fn chunked_request_bodies_are_streamed_back() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let r = exchange(
            s.addr,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n",
        )
        .await;
        assert_eq!((r.status, r.text().as_str()), (200, "hello, world"));
        s.stop().await;
    });
}

#[test]
fn expect_100_continue_gets_an_interim_response_before_the_body() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let mut c = Raw::connect(s.addr).await;
        c.send(
            b"POST /len HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        )
        .await;
        let interim = c.response(false).await.unwrap();
        assert_eq!(interim.status, 100);
        c.send(b"ping").await;
        let r = c.response(false).await.unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "4\n"));
        s.stop().await;
    });
}

#[test]
fn head_gets_the_get_headers_and_no_body() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let mut c = Raw::connect(s.addr).await;
        c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let r = c.response(true).await.unwrap();
        assert_eq!((r.status, r.header("content-length")), (200, Some("14")));
        // The next response starts right after the head: no body bytes sent.
        c.send(b"GET /users/2 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(c.response(false).await.unwrap().text(), "user 2\n");
        s.stop().await;
    });
}

#[test]
fn large_bodies_round_trip_and_oversized_ones_get_413() {
    run(false, async {
        let s = Running::start(Server::new(app()).max_body_size(1 << 20)).await;
        let big: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
        let req = http::Request::post(s.url("/echo"))
            .body(Body::from(big.clone()))
            .unwrap();
        let client = seastar_http::Client::new();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let got = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert!(got[..] == big[..], "echoed body differs");

        // Declared too large: 413 before the body is read, connection closed.
        let mut c = Raw::connect(s.addr).await;
        c.send(
            format!(
                "POST /len HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                (1 << 20) + 1
            )
            .as_bytes(),
        )
        .await;
        let r = c.response(false).await.unwrap();
        assert_eq!(r.status, 413);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed().await);

        // Chunked past the limit: 413 when the handler reads past it.
        let mut c = Raw::connect(s.addr).await;
        c.send(b"POST /len HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..17 {
            let mut msg = format!("{:x}\r\n", chunk.len()).into_bytes();
            msg.extend_from_slice(&chunk);
            msg.extend_from_slice(b"\r\n");
            c.send(&msg).await;
        }
        c.send(b"0\r\n\r\n").await;
        let r = c.response(false).await.unwrap();
        assert_eq!(r.status, 413);
        assert_eq!(
            r.text(),
            format!("request body larger than {} bytes\n", 1 << 20)
        );
        s.stop().await;
    });
}

#[test]
fn malformed_requests_get_400_and_others_are_still_served() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let mut bad = Raw::connect(s.addr).await;
        bad.send(b"GET / HTTP/1.1\r\nHost x\r\n\r\n").await;
        assert_eq!(bad.response(false).await.unwrap().status, 400);
        assert!(bad.closed().await);
        let mut garbage = Raw::connect(s.addr).await;
        garbage.send(b"\x00\x01\x02 nonsense\r\n\r\n").await;
        assert_eq!(garbage.response(false).await.unwrap().status, 400);
        let r = exchange(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(r.status, 200);
        let stats = s.stop().await;
        assert_eq!(stats.connection_errors, 2);
    });
}

#[test]
fn oversized_headers_get_431() {
    run(false, async {
        let s = Running::start(Server::new(app()).max_header_size(8192)).await;
        let mut c = Raw::connect(s.addr).await;
        let req = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(9000)
        );
        c.send(req.as_bytes()).await;
        assert_eq!(c.response(false).await.unwrap().status, 431);
        s.stop().await;
    });
}

#[test]
fn slow_client_is_closed_after_the_header_timeout() {
    run(true, async {
        let s =
            Running::start(Server::new(app()).header_read_timeout(Duration::from_secs(10))).await;
        let mut slow = Raw::connect(s.addr).await;
        // One full request first: once it is answered, the server is
        // reading this connection's next head, with the timer armed.
        slow.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(slow.response(false).await.unwrap().status, 200);
        slow.send(b"GET / HTTP/1.1\r\nHost: x\r\n").await; // no blank line
        ManualClock::advance(Duration::from_secs(9)).await;
        // Still open: a fast client on another connection is served.
        let r = exchange(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(r.status, 200);
        ManualClock::advance(Duration::from_secs(2)).await;
        let closed = slow.response(false).await;
        // hyper may answer 408 before closing, or just close.
        assert!(
            closed.as_ref().is_none_or(|r| r.status == 408),
            "{closed:?}"
        );
        assert!(slow.closed().await);
        s.stop().await;
    });
}

#[test]
fn request_cap_closes_the_connection_after_the_last_allowed_request() {
    run(false, async {
        let s = Running::start(Server::new(app()).max_requests_per_connection(2)).await;
        let mut c = Raw::connect(s.addr).await;
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let a = c.response(false).await.unwrap();
        assert_eq!(a.header("connection"), None);
        let b = c.response(false).await.unwrap();
        assert_eq!(b.header("connection"), Some("close"));
        assert!(c.closed().await, "the third request was answered");
        s.stop().await;
    });
}

#[test]
fn graceful_stop_finishes_in_flight_requests_and_closes_idle_connections() {
    run(false, async {
        let (fire, entered) = support::signal();
        let app = app().route(
            "/wait",
            get(move |_r: Request| {
                let fire = fire.clone();
                async move {
                    fire.fire();
                    timer::sleep(Duration::from_millis(50)).await;
                    "slow done\n"
                }
            }),
        );
        let s = Running::start(Server::new(app)).await;
        let mut idle = Raw::connect(s.addr).await;
        idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        idle.response(false).await.unwrap();
        let mut busy = Raw::connect(s.addr).await;
        busy.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n").await;
        entered.await.unwrap();
        let addr = s.addr;
        s.stop.request_abort();
        let r = busy.response(false).await.unwrap();
        assert_eq!(r.text(), "slow done\n");
        assert!(busy.closed().await);
        assert!(idle.closed().await);
        let stats = s.task.await.unwrap();
        assert_eq!(
            (stats.connections, stats.requests, stats.dropped_at_stop),
            (2, 2, 0)
        );
        assert!(
            seastar_net::TcpStream::connect(addr).await.is_err(),
            "still accepting"
        );
    });
}

#[test]
fn stragglers_are_dropped_after_the_shutdown_timeout() {
    run(true, async {
        let (fire, entered) = support::signal();
        let never = Router::new().route(
            "/hang",
            get(move |_r: Request| {
                let fire = fire.clone();
                async move {
                    fire.fire();
                    std::future::pending::<()>().await;
                    ""
                }
            }),
        );
        let s = Running::start(Server::new(never).shutdown_timeout(Duration::from_secs(5))).await;
        let mut c = Raw::connect(s.addr).await;
        c.send(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n").await;
        entered.await.unwrap();
        s.stop.request_abort();
        // The stop arms its timeout once the server task runs; advance
        // until it has fired.
        let mut task = s.task;
        let stats = loop {
            if let Some(r) = futures::FutureExt::now_or_never(&mut task) {
                break r.unwrap();
            }
            ManualClock::advance(Duration::from_secs(1)).await;
        };
        assert_eq!(stats.dropped_at_stop, 1);
        assert!(c.closed().await);
    });
}
