//! The server against hostile clients and failing handlers, over real
//! sockets on one shard: panics, bad chunked framing, bodies and clients
//! that stall, pipelining without reading, connection caps, a stop that
//! must end whatever the clients do. Time-dependent cases run on the
//! manual clock. Each checks that a fresh client is served afterwards.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http_body::Frame;
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
            "/panic",
            get(|_r: Request| async {
                if std::hint::black_box(true) {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
        .route(
            "/panic-in-body",
            get(|_r: Request| async {
                let frames = futures::stream::iter([0, 1]).map(|i| {
                    assert!(i == 0, "body bug");
                    Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"first\n")))
                });
                Body::new(http_body_util::StreamBody::new(frames))
            }),
        )
        // The naive echo: the answer starts before any body byte is read.
        .route(
            "/echo",
            post(|r: Request| async move { Body::new(r.into_body()) }),
        )
        .route(
            "/len",
            post(|r: Request| async move { r.bytes().await.map(|b| format!("{}\n", b.len())) }),
        )
}

use futures::StreamExt as _;

async fn assert_fresh_client_served(s: &Running) {
    let r = exchange(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, world!\n"));
}

/// Advances the manual clock a second at a time until `task` is done.
async fn advance_until<T>(
    task: &mut seastar_core::JoinHandle<T>,
    limit: Duration,
) -> (T, Duration) {
    let mut waited = Duration::ZERO;
    loop {
        // Whatever is due now gets to run before the clock moves on.
        for _ in 0..20 {
            if let Some(r) = task.now_or_never() {
                return (r.unwrap(), waited);
            }
            seastar_core::yield_now().await;
        }
        assert!(waited <= limit, "still running after {waited:?}");
        ManualClock::advance(Duration::from_secs(1)).await;
        waited += Duration::from_secs(1);
    }
}

#[test]
fn a_panicking_handler_gets_500_and_frees_its_connection_slot() {
    run(false, async {
        // One connection at most: the next one is only served if the
        // panicking connection gave its slot back.
        let s = Running::start(Server::new(app()).max_connections(1)).await;
        let mut c = Raw::connect(s.addr).await;
        c.send(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let r = c.response(false).await.unwrap();
        assert_eq!(r.status, 500);
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.text(), "internal server error\n");
        assert!(c.closed().await);
        assert_fresh_client_served(&s).await;

        // A panic outside the handler (in its response body) unwinds the
        // connection task: the slot and the socket go with it.
        let mut c = Raw::connect(s.addr).await;
        c.send(b"GET /panic-in-body HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        c.closed().await;
        assert_fresh_client_served(&s).await;
        let stats = s.stop().await;
        assert_eq!(stats.handler_panics, 1);
        assert_eq!(stats.refused, 0, "every connection found its slot free");
    });
}

#[test]
fn a_bad_chunk_size_gets_400_even_when_the_handler_streams_the_body() {
    run(false, async {
        let s = Running::start(Server::new(app())).await;
        // hyper drops the request before the echo's answer leaves: the
        // server writes the 400 itself, then closes.
        let mut c = Raw::connect(s.addr).await;
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            .await;
        let r = c.response(false).await.expect("an answer before the close");
        assert_eq!(r.status, 400);
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.text(), "bad request\n");
        assert!(c.closed().await);
        // A handler that reads the whole body answers 400 itself.
        let mut c = Raw::connect(s.addr).await;
        c.send(
            b"POST /len HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nq\r\n",
        )
        .await;
        let r = c.response(false).await.unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed().await);
        assert_fresh_client_served(&s).await;
        s.stop().await;
    });
}

#[test]
fn a_body_that_stops_coming_gets_408_after_the_body_read_timeout() {
    run(true, async {
        let s = Running::start(Server::new(app()).body_read_timeout(Duration::from_secs(10))).await;
        let t0 = timer::now();
        let c = Raw::connect(s.addr).await;
        c.send(b"POST /len HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            .await;
        let mut reader = answer_time(c);
        assert_fresh_client_served(&s).await;
        // A second at a time: the answer may come only once 10 s passed
        // (the timer starts when the handler first waits for the body).
        let ((r, at, closed), _) = advance_until(&mut reader, Duration::from_secs(30)).await;
        let r = r.unwrap();
        assert!(
            at - t0 >= Duration::from_secs(10),
            "answered after {:?}",
            at - t0
        );
        assert_eq!(r.status, 408);
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.text(), "no request body bytes for 10s\n");
        assert!(closed);
        assert_fresh_client_served(&s).await;
        s.stop().await;
    });
}

/// Reads one response on a task of its own: the response, the (manual)
/// time it arrived, and whether the connection then closed.
fn answer_time(
    mut c: Raw,
) -> seastar_core::JoinHandle<(Option<support::Resp>, std::time::Instant, bool)> {
    seastar_core::spawn_local(async move {
        let r = c.response(false).await;
        let at = timer::now();
        (r, at, c.closed().await)
    })
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_not() {
    run(true, async {
        let (fire, entered) = support::signal();
        let app = app().route(
            "/think",
            get(move |_r: Request| {
                let fire = fire.clone();
                async move {
                    fire.fire();
                    seastar_core::timer::sleep(Duration::from_secs(30)).await;
                    "thought\n"
                }
            }),
        );
        let s = Running::start(
            Server::new(app)
                .idle_timeout(Duration::from_secs(5))
                .header_read_timeout(None),
        )
        .await;
        let mut idle = Raw::connect(s.addr).await;
        idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(idle.response(false).await.unwrap().status, 200);
        // A handler that takes longer than the idle timeout is not idle.
        let mut busy = Raw::connect(s.addr).await;
        busy.send(b"GET /think HTTP/1.1\r\nHost: x\r\n\r\n").await;
        entered.await.unwrap();
        ManualClock::advance(Duration::from_secs(4)).await;
        // Still open after 4 s: it answers, and its idle time restarts.
        idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(idle.response(false).await.unwrap().status, 200);
        let t0 = timer::now();
        let closing = seastar_core::spawn_local(async move {
            let closed = idle.closed().await;
            (closed, timer::now())
        });
        for _ in 0..7 {
            ManualClock::advance(Duration::from_secs(1)).await;
        }
        let (closed, at) = closing.await.unwrap();
        assert!(closed, "idle past the timeout");
        let after = at - t0;
        assert!(after >= Duration::from_secs(5), "closed after {after:?}");
        for _ in 0..20 {
            ManualClock::advance(Duration::from_secs(1)).await;
        }
        let r = busy.response(false).await.unwrap();
        assert_eq!(r.text(), "thought\n");
        assert_fresh_client_served(&s).await;
        let stats = s.stop().await;
        assert_eq!(stats.idle_closed, 1);
    });
}

#[test]
fn a_pipelining_client_that_never_reads_cannot_hold_up_the_stop() {
    run(true, async {
        let big = Bytes::from(vec![b'x'; 64 * 1024]);
        let served = std::rc::Rc::new(std::cell::Cell::new(0u32));
        let count = served.clone();
        let app = app().route(
            "/big",
            get(move |_r: Request| {
                let big = big.clone();
                count.set(count.get() + 1);
                async move { big }
            }),
        );
        let s = Running::start(
            Server::new(app)
                .max_output_buffer(16 * 1024)
                .shutdown_timeout(Duration::from_secs(5)),
        )
        .await;
        // 2,000 pipelined requests for 64 KiB each (128 MB of answers)
        // that the client never reads: the server fills the socket
        // buffers, then waits on its write with its budget full.
        let mut flooder = Raw::connect(s.addr).await;
        flooder
            .send(&b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000))
            .await;
        // Until the server is stuck: no answer produced for a while.
        let (mut last, mut still) = (0, 0);
        while still < 100 {
            ManualClock::advance(Duration::from_millis(1)).await;
            seastar_core::yield_now().await;
            (last, still) = if served.get() == last {
                (last, still + 1)
            } else {
                (served.get(), 0)
            };
        }
        assert!(
            last < 2000,
            "the server sent 128 MB to a client that reads nothing"
        );
        assert_fresh_client_served(&s).await;
        s.stop.request_abort();
        let mut task = s.task;
        let (stats, waited) = advance_until(&mut task, Duration::from_secs(10)).await;
        // Graceful first (the blocked write never finishes), then dropped
        // at the timeout: the stop is over within it plus a tick.
        assert!(waited >= Duration::from_secs(5), "stop took {waited:?}");
        assert!(waited <= Duration::from_secs(5), "stop took {waited:?}");
        assert_eq!(stats.dropped_at_stop, 1, "{stats:?}");
        assert!(stats.requests < 2000, "{stats:?}");
        // The flooder's socket was closed under it: what the kernel held
        // arrives, then the end.
        flooder.closed().await;
        assert!(flooder.eof);
    });
}

#[test]
fn clients_that_never_finish_a_request_do_not_hold_up_the_stop() {
    run(true, async {
        // Header timeout 30 s, stop timeout 5 s: each of these clients,
        // waited for, would hold the stop for the whole 5 s.
        let s = Running::start(Server::new(app()).shutdown_timeout(Duration::from_secs(5))).await;
        // Part of an HTTP/1 head (past the protocol sniffing).
        let h1 = Raw::connect(s.addr).await;
        h1.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1").await;
        // Part of the HTTP/2 preface (still sniffing).
        let sniffing = Raw::connect(s.addr).await;
        sniffing.send(b"PRI * HTTP/2.0\r\n").await;
        // HTTP/2: preface, empty SETTINGS, then half a HEADERS frame header;
        // it never acknowledges anything (the GOAWAY's ping included).
        let h2 = Raw::connect(s.addr).await;
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        hello.extend_from_slice(&[0, 0, 16, 1]);
        h2.send(&hello).await;
        // A keep-alive client: one answer, then part of the next head.
        let mut kept = Raw::connect(s.addr).await;
        kept.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(kept.response(false).await.unwrap().status, 200);
        kept.send(b"GET / HTTP/1.1\r\nHo").await;
        support::settle().await;
        s.stop.request_abort();
        let mut task = s.task;
        let (stats, waited) = advance_until(&mut task, Duration::from_secs(10)).await;
        assert_eq!(
            waited,
            Duration::ZERO,
            "the stop waited for clients with no request"
        );
        assert_eq!((stats.dropped_at_stop, stats.requests), (0, 1), "{stats:?}");
        for (name, mut c) in [
            ("h1", h1),
            ("sniffing", sniffing),
            ("h2", h2),
            ("kept", kept),
        ] {
            c.closed().await;
            assert!(c.eof, "{name}: still open");
        }
    });
}

#[test]
fn connections_beyond_the_cap_are_closed_and_counted() {
    run(false, async {
        let s = Running::start(Server::new(app()).max_connections(2)).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut c = Raw::connect(s.addr).await;
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert_eq!(c.response(false).await.unwrap().status, 200);
            held.push(c);
        }
        let mut third = Raw::connect(s.addr).await;
        third.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(third.closed().await, "answered beyond the cap");
        // One held connection leaves: a fresh client is served again.
        let mut one = held.pop().unwrap();
        one.conn.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(one.closed().await);
        assert_fresh_client_served(&s).await;
        let stats = s.stop().await;
        assert_eq!(stats.refused, 1);
    });
}

/// The SETTINGS an HTTP/2 client gets: bounded streams, windows and
/// header list, whatever it announces itself.
#[cfg(feature = "http2")]
#[test]
fn http2_settings_bound_what_a_connection_may_hold() {
    run(false, async {
        let s = Running::start(
            Server::new(app())
                .http2_max_concurrent_streams(8)
                .http2_windows(100_000, 1_000_000),
        )
        .await;
        let mut c = Raw::connect(s.addr).await;
        // Preface, then SETTINGS announcing a 2^31-1 window.
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0x7f, 0xff, 0xff, 0xff]);
        c.send(&hello).await;
        let frame = c.read_exact_bytes(9).await;
        assert_eq!(frame[3], 4, "first frame is SETTINGS: {frame:?}");
        let len = usize::from(frame[0]) << 16 | usize::from(frame[1]) << 8 | usize::from(frame[2]);
        let payload = c.read_exact_bytes(len).await;
        let settings: Vec<(u16, u32)> = payload
            .chunks(6)
            .map(|e| {
                (
                    u16::from_be_bytes([e[0], e[1]]),
                    u32::from_be_bytes([e[2], e[3], e[4], e[5]]),
                )
            })
            .collect();
        assert!(settings.contains(&(3, 8)), "max streams: {settings:?}");
        assert!(
            settings.contains(&(4, 100_000)),
            "stream window: {settings:?}"
        );
        assert!(
            settings.contains(&(6, 64 * 1024)),
            "header list: {settings:?}"
        );
        drop(c);
        assert_fresh_client_served(&s).await;
        s.stop().await;
    });
}

/// An HTTP/2 client that opens a huge window and never reads: the server
/// stops producing once each stream's send buffer and the socket are
/// full, however endless the bodies.
#[cfg(feature = "http2")]
#[test]
fn http2_client_with_huge_windows_that_never_reads_bounds_what_is_produced() {
    use std::cell::Cell;
    use std::rc::Rc;

    run(false, async {
        let produced = Rc::new(Cell::new(0u64));
        let count = produced.clone();
        let app = app().route(
            "/endless",
            get(move |_r: Request| {
                let count = count.clone();
                async move {
                    let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
                    let frames = futures::stream::repeat(()).map(move |()| {
                        count.set(count.get() + chunk.len() as u64);
                        Ok::<_, std::io::Error>(Frame::data(chunk.clone()))
                    });
                    Body::new(http_body_util::StreamBody::new(frames))
                }
            }),
        );
        let s = Running::start(Server::new(app).http2_max_send_buf_size(64 * 1024)).await;
        let c = Raw::connect(s.addr).await;
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        // SETTINGS: INITIAL_WINDOW_SIZE 2^31-1; WINDOW_UPDATE on the connection.
        out.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0x7f, 0xff, 0xff, 0xff]);
        out.extend_from_slice(&[0, 0, 4, 8, 0, 0, 0, 0, 0, 0x7f, 0xff, 0, 0]);
        // Eight streams: GET /endless (HPACK: :method GET, :scheme http,
        // :path literal, :authority literal), END_STREAM | END_HEADERS.
        let block = [
            0x82, 0x86, 0x44, 8, b'/', b'e', b'n', b'd', b'l', b'e', b's', b's', 0x41, 1, b'x',
        ];
        for id in (1u8..16).step_by(2) {
            out.extend_from_slice(&[0, 0, block.len() as u8, 1, 5, 0, 0, 0, id]);
            out.extend_from_slice(&block);
        }
        c.send(&out).await;
        // Until production stops: nothing new for a while.
        let (mut last, mut still, mut rounds) = (0, 0, 0);
        while still < 200 {
            seastar_core::timer::sleep(Duration::from_millis(1)).await;
            (last, still) = if produced.get() == last {
                (last, still + 1)
            } else {
                (produced.get(), 0)
            };
            rounds += 1;
            assert!(rounds < 20_000, "still producing: {} bytes", produced.get());
        }
        assert!(last > 0, "no stream started");
        // Eight streams x 64 KiB of send buffer, plus the socket buffers
        // (a few MB on loopback); an unbounded server never stops.
        assert!(
            last < 32 << 20,
            "produced {last} bytes for a client that reads nothing"
        );
        assert_fresh_client_served(&s).await;
        drop(c);
        s.stop().await;
    });
}
