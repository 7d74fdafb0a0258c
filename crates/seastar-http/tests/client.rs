//! The client against the server and against misbehaving peers: the pool
//! (reuse, a body dropped early, a server that closes), streaming bodies,
//! timeouts on the manual clock, errors, and use from another shard.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use seastar_core::timer::ManualClock;
use seastar_http::{
    Body, Client, ClientError, Request, RequestExt, Router, Server,
    routing::{get, post},
};
use seastar_net::{ListenOptions, TcpListener};
use support::{Running, run};

fn app() -> Router {
    Router::new()
        .route("/", get(|_r: Request| async { "Hello, world!\n" }))
        .route("/big", get(|_r: Request| async { vec![b'x'; 1 << 20] }))
        .route(
            "/echo",
            post(|r: Request| async move {
                let chunked = r
                    .headers()
                    .get("transfer-encoding")
                    .is_some_and(|v| v == "chunked");
                let body = r.bytes().await.unwrap();
                format!("chunked={chunked} {}", String::from_utf8_lossy(&body))
            }),
        )
}

async fn text(resp: seastar_http::ClientResponse) -> String {
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn a_read_body_returns_its_connection_to_the_pool() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let client = Client::new();
        for _ in 0..3 {
            let resp = client.get(&s.url("/")).await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(text(resp).await, "Hello, world!\n");
        }
        assert_eq!(client.idle_connections(), 1);
        let stats = s.stop().await;
        assert_eq!((stats.connections, stats.requests), (1, 3));
    });
}

#[test]
fn a_body_dropped_early_costs_its_connection() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let client = Client::new();
        let resp = client.get(&s.url("/big")).await.unwrap();
        assert_eq!(resp.status(), 200);
        drop(resp);
        // The next request cannot reuse a connection with a body in flight.
        let resp = client.get(&s.url("/")).await.unwrap();
        assert_eq!(text(resp).await, "Hello, world!\n");
        let stats = s.stop().await;
        assert_eq!((stats.connections, stats.requests), (2, 2));
    });
}

#[test]
fn a_connection_the_server_closes_is_not_reused() {
    run(false, async {
        let s = Running::start(Server::new(app()).max_requests_per_connection(1)).await;
        let client = Client::new();
        for _ in 0..3 {
            let resp = client.get(&s.url("/")).await.unwrap();
            assert_eq!(resp.headers()["connection"], "close");
            assert_eq!(text(resp).await, "Hello, world!\n");
        }
        let stats = s.stop().await;
        assert_eq!((stats.connections, stats.requests), (3, 3));
    });
}

#[test]
fn a_streaming_request_body_goes_out_chunked() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        let chunks = futures::stream::iter(["one ", "two ", "three"])
            .map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from(c))));
        let req = http::Request::post(s.url("/echo"))
            .body(Body::new(StreamBody::new(chunks)))
            .unwrap();
        let resp = Client::new().request(req).await.unwrap();
        assert_eq!(text(resp).await, "chunked=true one two three");

        // A full body has a length instead.
        let req = http::Request::post(s.url("/echo"))
            .body(Body::from("whole"))
            .unwrap();
        let resp = Client::new().request(req).await.unwrap();
        assert_eq!(text(resp).await, "chunked=false whole");
        s.stop().await;
    });
}

#[test]
fn a_silent_server_times_the_request_out_on_the_manual_clock() {
    run(true, async {
        let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
            .await
            .unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let client = Client::builder()
            .request_timeout(Duration::from_secs(5))
            .build();
        let req = seastar_core::spawn_local(async move { client.get(&url).await });
        // Once the request has arrived, its timer runs.
        let (conn, _) = l.accept().await.unwrap();
        let (n, buf) = conn.read(Vec::with_capacity(4096)).await;
        assert!(buf[..n.unwrap()].starts_with(b"GET / HTTP/1.1\r\n"));
        ManualClock::advance(Duration::from_millis(4999)).await;
        assert!(!req.is_finished(), "timed out early");
        ManualClock::advance(Duration::from_millis(1)).await;
        let err = req.await.unwrap().unwrap_err();
        assert!(matches!(err, ClientError::Timeout), "{err}");
        assert_eq!(err.to_string(), "request timed out");
    });
}

#[test]
fn idle_connections_expire_on_the_shard_clock() {
    run(true, async {
        // The server keeps idle connections: only the client's clock counts.
        let s = Running::start(Server::new(app()).header_read_timeout(None)).await;
        let client = Client::builder()
            .idle_timeout(Duration::from_secs(60))
            .build();
        let resp = client.get(&s.url("/")).await.unwrap();
        text(resp).await;
        ManualClock::advance(Duration::from_secs(59)).await;
        let resp = client.get(&s.url("/")).await.unwrap();
        text(resp).await;
        // Idle since the second request: 60 s later it is not reused.
        ManualClock::advance(Duration::from_secs(60)).await;
        let resp = client.get(&s.url("/")).await.unwrap();
        text(resp).await;
        assert_eq!(client.idle_connections(), 1);
        let stats = s.stop().await;
        assert_eq!((stats.connections, stats.requests), (2, 3));
    });
}

#[test]
fn a_request_on_a_connection_the_server_just_closed_is_sent_again() {
    run(true, async {
        let s =
            Running::start(Server::new(app()).header_read_timeout(Duration::from_secs(10))).await;
        let client = Client::new();
        let resp = client.get(&s.url("/")).await.unwrap();
        text(resp).await;
        // The server drops the idle connection; the client has not seen it
        // yet when the next request takes it from the pool.
        ManualClock::advance(Duration::from_secs(10)).await;
        for _ in 0..2 {
            let resp = client.get(&s.url("/")).await.unwrap();
            assert_eq!(text(resp).await, "Hello, world!\n");
        }
        let stats = s.stop().await;
        assert_eq!((stats.connections, stats.requests), (2, 3));
    });
}

#[test]
fn a_peer_that_never_answers_times_the_connect_out_on_the_manual_clock() {
    use std::os::fd::AsRawFd;
    run(true, async {
        // A listener that never accepts, with room for one connection in
        // its queue: once that is taken, the kernel drops further SYNs
        // and a connect waits (the client would retransmit for minutes).
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: `l` owns this listening socket; listen again only sets
        // its backlog.
        assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
        let addr = l.local_addr().unwrap();
        let _queued = std::net::TcpStream::connect(addr).unwrap();
        // A request timeout shorter than the connect timeout: were the
        // connection to open after all, the test fails at once, not hangs.
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .request_timeout(Duration::from_secs(1))
            .build();
        let url = format!("http://{addr}/");
        let req = seastar_core::spawn_local(async move { client.get(&url).await });
        seastar_core::yield_now().await;
        ManualClock::advance(Duration::from_millis(9999)).await;
        assert!(!req.is_finished(), "the connect ended early");
        ManualClock::advance(Duration::from_millis(1)).await;
        match req.await.unwrap() {
            Err(ClientError::ConnectTimeout(a)) => assert_eq!(a, addr),
            other => panic!("expected a connect timeout, got {other:?}"),
        }
    });
}

#[test]
fn errors_name_what_failed() {
    run(false, async {
        // A port that was free a moment ago: nothing listens there.
        let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let client = Client::new();
        match client.get(&format!("http://{addr}/")).await {
            Err(ClientError::Connect { addr: a, source }) => {
                assert_eq!(a, addr);
                assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
        for bad in ["ftp://127.0.0.1/", "/no/host", "not a uri"] {
            let err = client.get(bad).await.unwrap_err();
            assert!(matches!(err, ClientError::BadUri(_)), "{bad}: {err}");
        }
        assert_eq!(client.idle_connections(), 0);
    });
}

#[test]
fn a_client_on_another_shard_reaches_the_server() {
    seastar_core::Runtime::builder()
        .shards(2)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            let s = Running::start(Server::new(app())).await;
            let url = s.url("/");
            let (shard, status, body, pooled) =
                seastar_core::smp::submit_to(1, move || async move {
                    let client = Client::shard_local();
                    let resp = client.get(&url).await.unwrap();
                    let status = resp.status().as_u16();
                    let body = text(resp).await;
                    let pooled = Client::shard_local().same_pool(&client);
                    (seastar_core::shard_id(), status, body, pooled)
                })
                .await
                .unwrap();
            assert_eq!(
                (shard, status, body.as_str(), pooled),
                (1, 200, "Hello, world!\n", true)
            );
            s.stop().await;
        });
}

#[test]
fn the_shard_client_and_its_pool_end_with_their_runtime() {
    // A connection pooled by one runtime's shard client must never be
    // handed to the next runtime on the same thread: its socket belongs to
    // the first runtime's reactor.
    let (first, idle) = seastar_core::block_on(async {
        let s = Running::start(Server::new(app())).await;
        let client = Client::shard_local();
        let resp = client.get(&s.url("/")).await.unwrap();
        assert_eq!(text(resp).await, "Hello, world!\n");
        let idle = client.idle_connections();
        s.stop().await;
        (client, idle)
    });
    assert_eq!(idle, 1, "the first runtime pooled its connection");
    seastar_core::block_on(async move {
        let next = Client::shard_local();
        assert!(
            !next.same_pool(&first),
            "a new runtime gets a new shard client"
        );
        assert_eq!(next.idle_connections(), 0);
        assert!(next.same_pool(&Client::shard_local()));
    });
}
