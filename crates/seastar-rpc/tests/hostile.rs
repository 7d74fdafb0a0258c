//! Clients that try to make the native server hold memory, time or
//! connection slots: each attack is bounded by a [`ServerOptions`] limit,
//! and a fresh client is served during and after it. On the backend named
//! by `SEASTAR_REACTOR_BACKEND`.
//!
//! Attackers are blocking std sockets on helper threads (the shard keeps
//! serving while the test waits on them).

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use seastar_core::timer::{self, ManualClock};
use seastar_core::{Runtime, spawn_local};
use seastar_rpc::frame::{Features, HEADER_LEN, Header, Kind, Negotiation, Status};
use seastar_rpc::{CallError, RpcClient, RpcError, RpcServer, ServerOptions, codec};

const ECHO: u32 = 1;
/// Echoes a [`Blob`] (the same wire format as `Vec<u8>`, serialized as one
/// byte string: fast in a debug build, where a 256 KiB `Vec<u8>` goes
/// through serde a byte at a time).
const BLOB_ECHO: u32 = 5;
const SLOW_MS: u32 = 2;
const PANIC_NOW: u32 = 3;
const PANIC_LATER: u32 = 4;

/// Bytes serialized with `serialize_bytes`.
#[derive(Debug, PartialEq, Eq)]
struct Blob(Vec<u8>);

impl serde::Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}

fn run<F: std::future::Future + 'static>(manual: bool, f: F) -> F::Output {
    let b = Runtime::builder().shards(1).handle_signals(false);
    let b = if manual { b.manual_clock() } else { b };
    b.build().unwrap().run(f)
}

/// Counts when dropped (a handler future dropped mid-way drops it).
struct DropCount(Rc<Cell<u32>>);
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

struct Fixture {
    server: RpcServer,
    addr: SocketAddr,
    echoed: Rc<Cell<u32>>,
    slow_started: Rc<Cell<u32>>,
    slow_dropped: Rc<Cell<u32>>,
}

async fn start(opts: ServerOptions) -> Fixture {
    let server = RpcServer::new(opts);
    let echoed = Rc::new(Cell::new(0));
    let (started, dropped) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let e = echoed.clone();
    server.register(ECHO, move |v: Vec<u8>| {
        e.set(e.get() + 1);
        async move { Ok::<_, ()>(v) }
    });
    let e = echoed.clone();
    server.register(BLOB_ECHO, move |v: Blob| {
        e.set(e.get() + 1);
        async move { Ok::<_, ()>(v) }
    });
    let (s, d) = (started.clone(), dropped.clone());
    server.register(SLOW_MS, move |ms: u64| {
        let (s, d) = (s.clone(), d.clone());
        async move {
            let _count = DropCount(d);
            s.set(s.get() + 1);
            timer::sleep(Duration::from_millis(ms)).await;
            Ok::<_, ()>(ms)
        }
    });
    server.register(PANIC_NOW, |(): ()| -> std::future::Ready<Result<(), ()>> {
        panic!("a handler that panics when called")
    });
    server.register(PANIC_LATER, |(): ()| async move {
        timer::sleep(Duration::from_millis(1)).await;
        if std::hint::black_box(true) {
            panic!("a handler future that panics");
        }
        Ok::<(), ()>(())
    });
    let addr = server
        .listen("127.0.0.1:0".parse().unwrap(), Default::default())
        .await
        .unwrap();
    Fixture {
        server,
        addr,
        echoed,
        slow_started: started,
        slow_dropped: dropped,
    }
}

/// Waits (real time, at most 10 s) for `cond`, letting the shard run.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if cond() {
            return;
        }
        seastar_core::yield_now().await;
        std::thread::sleep(Duration::from_micros(200));
    }
    panic!("timed out waiting for {what}");
}

/// Lets the shard run for 100 ms of real time (to give it a chance to do
/// what it must not).
async fn pause() {
    let end = Instant::now() + Duration::from_millis(100);
    while Instant::now() < end {
        seastar_core::yield_now().await;
        std::thread::sleep(Duration::from_micros(200));
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let h = std::thread::spawn(f);
    until("a helper thread", || h.is_finished()).await;
    h.join().unwrap()
}

/// A fresh client is served: an echo round trip on a new connection.
async fn fresh_client_is_served(addr: SocketAddr) {
    let c = RpcClient::connect(addr).await.unwrap();
    let v: Vec<u8> = c.call::<_, _, ()>(ECHO, &b"fresh".to_vec()).await.unwrap();
    assert_eq!(v, b"fresh");
}

/// A raw connection that negotiated `features` (no lz4 unless asked).
async fn raw_connect(addr: SocketAddr, features: Features) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = Negotiation {
        features,
        max_frame: u32::MAX,
    };
    let mut w = s.try_clone().unwrap();
    w.write_all(&n.encode()).unwrap();
    let mut r = s.try_clone().unwrap();
    let reply = blocking(move || {
        let mut b = [0u8; 16];
        r.read_exact(&mut b).unwrap();
        b
    })
    .await;
    Negotiation::decode(&reply).unwrap();
    s
}

fn request(verb: u32, id: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Header::request(verb, id, payload.len() as u32, None).encode(&mut out);
    out.extend_from_slice(payload);
    out
}

fn read_frame(s: &mut std::net::TcpStream) -> (Header, Vec<u8>) {
    let mut b = [0u8; HEADER_LEN];
    s.read_exact(&mut b).unwrap();
    let h = Header::decode(&b, u32::MAX).unwrap();
    let mut p = vec![0; h.len as usize];
    s.read_exact(&mut p).unwrap();
    (h, p)
}

/// Whether the server closed `s` (end of stream or reset) within its read
/// timeout (read on a helper thread: the shard must run meanwhile); bytes
/// it sent before are skipped.
async fn closed_by_server(s: &std::net::TcpStream) -> bool {
    let mut s = s.try_clone().unwrap();
    blocking(move || {
        // Replies sent before the close are skipped.
        let mut b = vec![0u8; 64 << 10];
        loop {
            match s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        }
    })
    .await
}

/// Incompressible bytes (an LCG), so lz4 could not hide the volume.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

#[test]
fn replies_a_client_does_not_read_are_held_to_the_output_budget() {
    const N: usize = 200;
    const SIZE: usize = 256 << 10;
    run(false, async {
        let f = start(ServerOptions::default().output_budget(256 << 10)).await;
        let attacker = raw_connect(f.addr, Features::default()).await;
        let payload = codec::encode(&Blob(noise(SIZE, 7))).unwrap();
        assert_eq!(
            payload,
            codec::encode(&noise(SIZE, 7)).unwrap(),
            "a Vec<u8> on the wire"
        );
        let written = Arc::new(AtomicUsize::new(0));
        let mut w = attacker.try_clone().unwrap();
        let (p, n) = (payload.clone(), written.clone());
        // Writes 50 MiB of echo requests and never reads; blocks once the
        // server stops reading.
        let writer = std::thread::spawn(move || {
            for id in 1..=N as u64 {
                if w.write_all(&request(BLOB_ECHO, id, &p)).is_err() {
                    return;
                }
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Wait until the server stops dispatching (no new echo for 300 ms).
        let (mut last, mut since) = (0, Instant::now());
        until("the server to stop reading", || {
            let now = f.echoed.get();
            if now != last {
                (last, since) = (now, Instant::now());
            }
            since.elapsed() > Duration::from_millis(300)
        })
        .await;
        let dispatched = f.echoed.get() as usize;
        eprintln!("{dispatched} of {N} echo calls dispatched while the client read nothing");
        // Budget 256 KiB + the kernel's socket buffers (a few MiB on
        // loopback) + one request: far below the 200 requests sent.
        assert!(
            dispatched <= 40,
            "{dispatched} of {N} echo calls ran while the client read nothing"
        );
        assert!(
            written.load(Ordering::Relaxed) < N,
            "the client was not held back"
        );
        fresh_client_is_served(f.addr).await;
        // The client reads now: every reply arrives, in order, intact.
        let mut r = attacker.try_clone().unwrap();
        let expect = payload.clone();
        let got = blocking(move || {
            let mut ids = Vec::new();
            for _ in 0..N {
                let (h, body) = read_frame(&mut r);
                assert_eq!((h.kind, h.status), (Kind::Response, Status::Ok as u16));
                assert!(body == expect, "reply {} differs", h.id);
                ids.push(h.id);
            }
            ids
        })
        .await;
        assert_eq!(got, (1..=N as u64).collect::<Vec<_>>());
        until("the writer", || writer.is_finished()).await;
        assert_eq!(
            f.echoed.get() as usize,
            N + 1,
            "the attack's calls and the fresh client's"
        );
        fresh_client_is_served(f.addr).await;
        drop(attacker);
        f.server.stop().await;
    });
}

#[test]
fn a_client_that_stops_reading_for_the_idle_timeout_is_dropped() {
    const SIZE: usize = 256 << 10;
    run(true, async {
        let opts = ServerOptions::default()
            .output_budget(256 << 10)
            .idle_timeout(Some(Duration::from_secs(5)));
        let f = start(opts).await;
        let attacker = raw_connect(f.addr, Features::default()).await;
        let payload = codec::encode(&Blob(noise(SIZE, 3))).unwrap();
        let mut w = attacker.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            for id in 1..=100u64 {
                if w.write_all(&request(BLOB_ECHO, id, &payload)).is_err() {
                    return;
                }
            }
        });
        let (mut last, mut since) = (0, Instant::now());
        until("the server to stop reading", || {
            let now = f.echoed.get();
            if now != last {
                (last, since) = (now, Instant::now());
            }
            since.elapsed() > Duration::from_millis(300)
        })
        .await;
        ManualClock::advance(Duration::from_millis(4999)).await;
        pause().await;
        assert_eq!(f.server.connections(), 1, "dropped before the idle timeout");
        fresh_client_is_served(f.addr).await;
        ManualClock::advance(Duration::from_millis(1)).await;
        until("the stalled connection to go", || {
            f.server.connections() == 0
        })
        .await;
        assert_eq!(f.server.stats().stalled_closed, 1);
        assert!(closed_by_server(&attacker).await);
        until("the writer", || writer.is_finished()).await;
        fresh_client_is_served(f.addr).await;
        f.server.stop().await;
    });
}

#[test]
fn the_client_closing_its_connection_cancels_its_calls() {
    run(false, async {
        let f = start(ServerOptions::default()).await;
        let mut s = raw_connect(f.addr, Features::supported()).await;
        let arg = codec::encode(&60_000u64).unwrap();
        s.write_all(&request(SLOW_MS, 1, &arg)).unwrap();
        s.write_all(&request(SLOW_MS, 2, &arg)).unwrap();
        until("both calls to start", || f.slow_started.get() == 2).await;
        fresh_client_is_served(f.addr).await;
        s.shutdown(std::net::Shutdown::Write).unwrap();
        until("the handlers to be dropped", || f.slow_dropped.get() == 2).await;
        assert_eq!(f.server.stats().cancelled_calls, 2);
        // No reply was sent: the server just closes.
        let mut r = s.try_clone().unwrap();
        let rest = blocking(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            all
        })
        .await;
        assert!(
            rest.is_empty(),
            "{} bytes after the client's end",
            rest.len()
        );
        until("the connection to go", || f.server.connections() == 0).await;
        fresh_client_is_served(f.addr).await;
        f.server.stop().await;
    });
}

#[test]
fn a_duplicate_request_id_is_answered_bad_request_and_closes() {
    run(false, async {
        let f = start(ServerOptions::default()).await;
        let mut s = raw_connect(f.addr, Features::default()).await;
        let arg = codec::encode(&60_000u64).unwrap();
        s.write_all(&request(SLOW_MS, 7, &arg)).unwrap();
        until("the call to start", || f.slow_started.get() == 1).await;
        s.write_all(&request(SLOW_MS, 7, &arg)).unwrap();
        let mut r = s.try_clone().unwrap();
        let got = blocking(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            all
        })
        .await;
        let msg = b"duplicate message id 7: that call is in flight";
        let mut h = Header::new(Kind::Response, 7);
        h.status = Status::BadRequest as u16;
        h.len = msg.len() as u32;
        let mut expect = Vec::new();
        h.encode(&mut expect);
        expect.extend_from_slice(msg);
        assert_eq!(got, expect, "one error reply, then end of stream");
        until("the first call to be cancelled", || {
            f.slow_dropped.get() == 1
        })
        .await;
        let stats = f.server.stats();
        assert_eq!((stats.duplicate_ids, stats.cancelled_calls), (1, 1));
        fresh_client_is_served(f.addr).await;
        f.server.stop().await;
    });
}

#[test]
fn silent_and_idle_connections_are_closed_on_the_shard_clock() {
    run(true, async {
        let opts = ServerOptions::default()
            .negotiation_timeout(Duration::from_secs(2))
            .idle_timeout(Some(Duration::from_secs(5)));
        let f = start(opts).await;
        let silent: Vec<_> = (0..20)
            .map(|_| {
                let s = std::net::TcpStream::connect(f.addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s
            })
            .collect();
        let idle = raw_connect(f.addr, Features::supported()).await;
        let mut busy = raw_connect(f.addr, Features::supported()).await;
        busy.write_all(&request(SLOW_MS, 1, &codec::encode(&60_000u64).unwrap()))
            .unwrap();
        until("the server to see them", || {
            f.server.connections() == 22 && f.slow_started.get() == 1
        })
        .await;
        ManualClock::advance(Duration::from_millis(1999)).await;
        pause().await;
        assert_eq!(f.server.connections(), 22, "closed before the timeout");
        ManualClock::advance(Duration::from_millis(1)).await;
        until("the silent ones to go", || f.server.connections() == 2).await;
        assert_eq!(f.server.stats().first_bytes_timeouts, 20);
        for s in &silent {
            assert!(closed_by_server(s).await);
        }
        // 5 s after its last bytes the idle connection goes; the one with a
        // call in flight stays.
        ManualClock::advance(Duration::from_secs(3)).await;
        until("the idle one to go", || f.server.connections() == 1).await;
        assert_eq!(f.server.stats().idle_closed, 1);
        assert!(closed_by_server(&idle).await);
        ManualClock::advance(Duration::from_secs(60)).await;
        let (h, body) = blocking(move || read_frame(&mut busy)).await;
        assert_eq!((h.id, h.status), (1, Status::Ok as u16));
        assert_eq!(codec::decode::<u64>(&body).unwrap(), 60_000);
        // Idle now: closed 5 s later.
        ManualClock::advance(Duration::from_secs(5)).await;
        until("the last one to go", || f.server.connections() == 0).await;
        fresh_client_is_served(f.addr).await;
        f.server.stop().await;
    });
}

#[test]
fn connections_over_the_limit_are_refused_and_counted() {
    run(false, async {
        let f = start(ServerOptions::default().max_connections(2)).await;
        let a = RpcClient::connect(f.addr).await.unwrap();
        let b = raw_connect(f.addr, Features::supported()).await;
        let _: Vec<u8> = a.call::<_, _, ()>(ECHO, &vec![1u8]).await.unwrap();
        let mut over = std::net::TcpStream::connect(f.addr).unwrap();
        over.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = over.write_all(
            &Negotiation {
                features: Features::supported(),
                max_frame: 1024,
            }
            .encode(),
        );
        assert!(closed_by_server(&over).await);
        assert_eq!(f.server.stats().refused, 1);
        assert_eq!(f.server.connections(), 2);
        // The connections already open are still served.
        let _: Vec<u8> = a.call::<_, _, ()>(ECHO, &vec![2u8]).await.unwrap();
        drop(b);
        until("a slot to free up", || f.server.connections() == 1).await;
        fresh_client_is_served(f.addr).await;
        drop(a);
        f.server.stop().await;
    });
}

#[test]
fn panicking_handlers_free_their_connection_or_answer_internal() {
    run(false, async {
        let f = start(ServerOptions::default()).await;
        let c = RpcClient::connect(f.addr).await.unwrap();
        // A handler future that panics: the call is answered, the
        // connection goes on.
        let r = c.call::<_, (), ()>(PANIC_LATER, &()).await;
        assert!(
            matches!(&r, Err(CallError::Rpc(RpcError::Server(m))) if m == "the handler panicked"),
            "{r:?}"
        );
        let _: Vec<u8> = c.call::<_, _, ()>(ECHO, &vec![3u8]).await.unwrap();
        // A handler that panics when called panics the connection's task:
        // its slot and socket are released all the same.
        let r = c.call::<_, (), ()>(PANIC_NOW, &()).await;
        assert!(
            matches!(r, Err(CallError::Rpc(RpcError::ConnectionLost(_)))),
            "{r:?}"
        );
        until("the slot to be freed", || f.server.connections() == 0).await;
        fresh_client_is_served(f.addr).await;
        f.server.stop().await;
    });
}

#[test]
fn a_stop_finishes_calls_in_flight_then_drops_what_is_left_at_the_deadline() {
    run(false, async {
        let f = start(ServerOptions::default()).await;
        // Graceful: a 100 ms call in flight is answered before the stop ends.
        let c = Rc::new(RpcClient::connect(f.addr).await.unwrap());
        let c2 = c.clone();
        let call = spawn_local(async move { c2.call::<_, u64, ()>(SLOW_MS, &100u64).await });
        until("the call to start", || f.slow_started.get() == 1).await;
        assert_eq!(f.server.stop_within(Duration::from_secs(10)).await, 0);
        assert_eq!(call.await.unwrap().unwrap(), 100);
        assert_eq!(
            f.slow_dropped.get(),
            1,
            "the finished handler was dropped once"
        );
        drop(c);

        // Bounded: a 60 s call is dropped at the deadline.
        let g = start(ServerOptions::default()).await;
        let mut s = raw_connect(g.addr, Features::supported()).await;
        s.write_all(&request(SLOW_MS, 1, &codec::encode(&60_000u64).unwrap()))
            .unwrap();
        until("the slow call to start", || g.slow_started.get() == 1).await;
        let t0 = Instant::now();
        assert_eq!(g.server.stop_within(Duration::from_millis(300)).await, 1);
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(5), "the stop took {took:?}");
        assert_eq!(g.slow_dropped.get(), 1);
        assert_eq!(g.server.stats().dropped_at_stop, 1);
        assert_eq!(g.server.connections(), 0);
        assert!(closed_by_server(&s).await);
    });
}
