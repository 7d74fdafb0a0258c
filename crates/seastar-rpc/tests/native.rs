//! The native protocol end to end over loopback TCP, on the backend named
//! by `SEASTAR_REACTOR_BACKEND`.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use seastar_core::timer::{self, ManualClock};
use seastar_core::{Runtime, spawn_local};
use seastar_rpc::frame::{Features, HEADER_LEN, Header, Kind, Negotiation, Status};
use seastar_rpc::{
    CallError, ClientOptions, RpcClient, RpcError, RpcServer, ServerOptions, Sink, Source,
};

const ECHO: u32 = 1;
const DIV: u32 = 2;
const SLOW: u32 = 3;
const COUNT: u32 = 4;

fn run<F: std::future::Future + 'static>(manual: bool, f: F) -> F::Output {
    let b = Runtime::builder().shards(1).handle_signals(false);
    let b = if manual { b.manual_clock() } else { b };
    b.build().unwrap().run(f)
}

/// Sets a flag when dropped (a handler future dropped mid-way drops it).
struct DropFlag(Rc<Cell<bool>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

struct Fixture {
    server: RpcServer,
    addr: SocketAddr,
    started: Rc<Cell<u32>>,
    dropped: Rc<Cell<bool>>,
    sent: Rc<Cell<u64>>,
}

async fn start(opts: ServerOptions) -> Fixture {
    let server = RpcServer::new(opts);
    let (started, dropped, sent) = (
        Rc::new(Cell::new(0)),
        Rc::new(Cell::new(false)),
        Rc::new(Cell::new(0)),
    );
    server.register(ECHO, |v: Vec<u8>| async move { Ok::<_, ()>(v) });
    server.register(DIV, |(a, b): (u32, u32)| async move {
        a.checked_div(b).ok_or_else(|| format!("{a} / 0"))
    });
    let (s, d) = (started.clone(), dropped.clone());
    server.register(SLOW, move |secs: u64| {
        let (s, d) = (s.clone(), d.clone());
        async move {
            let _flag = DropFlag(d);
            s.set(s.get() + 1);
            timer::sleep(Duration::from_secs(secs)).await;
            Ok::<_, ()>(secs)
        }
    });
    let n_sent = sent.clone();
    server.register_stream(
        COUNT,
        move |n: u64, mut input: Source<u64>, mut out: Sink<u64>| {
            let n_sent = n_sent.clone();
            async move {
                for i in 0..n {
                    out.send(&i).await.map_err(|e| e.to_string())?;
                    n_sent.set(n_sent.get() + 1);
                }
                let mut sum = 0;
                while let Some(v) = input.next().await {
                    sum += v.map_err(|e| e.to_string())?;
                }
                if sum == 666 {
                    return Err("unlucky sum".to_string());
                }
                out.send(&sum).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(())
            }
        },
    );
    let addr = server
        .listen("127.0.0.1:0".parse().unwrap(), Default::default())
        .await
        .unwrap();
    Fixture {
        server,
        addr,
        started,
        dropped,
        sent,
    }
}

/// Lets I/O and tasks run for a while of real time.
async fn settle() {
    for _ in 0..20 {
        seastar_core::yield_now().await;
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..20_000 {
        if cond() {
            return;
        }
        seastar_core::yield_now().await;
        std::thread::sleep(Duration::from_micros(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn round_trips_typed_errors_and_unknown_verbs() {
    run(false, async {
        let f = start(ServerOptions::default()).await;
        let c = RpcClient::connect(f.addr).await.unwrap();
        let v: Vec<u8> = c.call::<_, _, ()>(ECHO, &b"hello".to_vec()).await.unwrap();
        assert_eq!(v, b"hello");
        let empty: Vec<u8> = c.call::<_, _, ()>(ECHO, &Vec::<u8>::new()).await.unwrap();
        assert!(empty.is_empty());
        assert_eq!(
            c.call::<_, u32, String>(DIV, &(84u32, 2u32)).await.unwrap(),
            42
        );
        match c.call::<_, u32, String>(DIV, &(1u32, 0u32)).await {
            Err(CallError::Handler(e)) => assert_eq!(e, "1 / 0"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.call::<_, u32, String>(99, &()).await,
            Err(CallError::Rpc(RpcError::UnknownVerb(99)))
        ));
        // An argument of the wrong shape: the server says so, the connection lives on.
        assert!(matches!(
            c.call::<_, u32, String>(DIV, &1u8).await,
            Err(CallError::Rpc(RpcError::Server(m))) if m.contains("")
        ));
        assert_eq!(
            c.call::<_, u32, String>(DIV, &(9u32, 3u32)).await.unwrap(),
            3
        );
        assert_eq!(c.features().unwrap(), Features::supported());
        drop(c);
        f.server.stop().await;
    });
}

#[test]
fn concurrent_calls_share_one_connection() {
    run(false, async {
        let f = start(ServerOptions::default()).await;
        let c = RpcClient::connect(f.addr).await.unwrap();
        let calls = (0..200u32).map(|i| {
            let c = c.clone();
            async move {
                c.call::<_, Vec<u8>, ()>(ECHO, &i.to_le_bytes().to_vec())
                    .await
                    .unwrap()
            }
        });
        let out = futures::future::join_all(calls).await;
        for (i, v) in out.iter().enumerate() {
            assert_eq!(v[..], (i as u32).to_le_bytes());
        }
        assert_eq!(f.server.connections(), 1);
        assert_eq!(c.connects(), 1);
        drop(c);
        f.server.stop().await;
    });
}

#[test]
fn timeouts_fire_on_both_sides_with_the_manual_clock() {
    run(true, async {
        let f = start(ServerOptions::default()).await;
        let c = RpcClient::connect(f.addr).await.unwrap();
        let call = {
            let c = c.clone();
            spawn_local(async move {
                c.call_with_timeout::<_, u64, ()>(SLOW, &60u64, Some(Duration::from_secs(1)))
                    .await
            })
        };
        until("the handler to start", || f.started.get() == 1).await;
        ManualClock::advance(Duration::from_millis(999)).await;
        settle().await;
        assert!(!call.is_finished(), "timed out early");
        ManualClock::advance(Duration::from_millis(1)).await;
        assert!(matches!(
            call.await.unwrap(),
            Err(CallError::Rpc(RpcError::Timeout))
        ));
        // The server dropped the handler: by its own deadline or by the cancel.
        until("the handler to be dropped", || f.dropped.get()).await;
        // A call within its timeout still succeeds.
        let ok = {
            let c = c.clone();
            spawn_local(async move {
                c.call_with_timeout::<_, u64, ()>(SLOW, &1u64, Some(Duration::from_secs(5)))
                    .await
            })
        };
        until("the second handler", || f.started.get() == 2).await;
        ManualClock::advance(Duration::from_secs(1)).await;
        assert_eq!(ok.await.unwrap().unwrap(), 1);
        drop(c);
        f.server.stop().await;
    });
}

#[test]
fn server_enforces_the_timeout_it_was_sent() {
    run(true, async {
        let f = start(ServerOptions::default()).await;
        // Raw client: a request with a 2 s timeout and no client-side timer.
        let mut s = raw_connect(
            f.addr,
            Negotiation {
                features: Features::supported(),
                max_frame: 1 << 20,
            },
        )
        .await;
        let body = seastar_rpc::codec::encode(&60u64).unwrap();
        let mut frame = Vec::new();
        Header::request(SLOW, 7, body.len() as u32, Some(Duration::from_secs(2)))
            .encode(&mut frame);
        frame.extend_from_slice(&body);
        s.write_all(&frame).unwrap();
        until("the handler to start", || f.started.get() == 1).await;
        ManualClock::advance(Duration::from_secs(2)).await;
        let (h, msg) = blocking_read_frame(s.try_clone().unwrap()).await;
        assert_eq!(
            (h.kind, h.id, Status::from_u16(h.status)),
            (Kind::Response, 7, Status::Timeout)
        );
        assert_eq!(msg, b"deadline exceeded");
        assert!(f.dropped.get());
        drop(s);
        f.server.stop().await;
    });
}

#[test]
fn dropping_a_call_sends_a_cancel_and_the_handler_is_dropped() {
    run(false, async {
        let f = start(ServerOptions::default()).await;
        let c = RpcClient::connect(f.addr).await.unwrap();
        let call = {
            let c = c.clone();
            spawn_local(async move { c.call::<_, u64, ()>(SLOW, &3600u64).await })
        };
        until("the handler to start", || f.started.get() == 1).await;
        assert!(!f.dropped.get());
        call.abort(); // drops the call future: a cancel frame goes out
        until("the handler to be dropped", || f.dropped.get()).await;
        // The connection is still good.
        assert_eq!(
            c.call::<_, Vec<u8>, ()>(ECHO, &vec![1u8]).await.unwrap(),
            [1]
        );
        drop(c);
        f.server.stop().await;
    });
}

#[test]
fn streams_apply_back_pressure_and_carry_both_directions() {
    run(false, async {
        let f = start(ServerOptions::default().stream_window(8)).await;
        let c = RpcClient::connect_with(f.addr, ClientOptions::default().stream_window(4))
            .await
            .unwrap();
        let (mut sink, mut source) = c.open_stream::<u64, u64, u64>(COUNT, &100).await.unwrap();
        // Nobody reads: the server stops after our window of 4 items, which
        // arrive in the client's buffer (wait for both: a loaded machine
        // may deliver them some polls after they were sent).
        until("the window to fill", || {
            f.sent.get() == 4 && source.buffered() == 4
        })
        .await;
        for _ in 0..50 {
            settle().await;
            std::thread::sleep(Duration::from_micros(100));
        }
        assert_eq!(f.sent.get(), 4, "sent beyond the receiver's window");
        assert_eq!(source.buffered(), 4);
        for i in 0..100 {
            assert_eq!(source.next().await.unwrap().unwrap(), i);
            assert!(source.buffered() <= 4);
        }
        // Our direction: the server grants 8 credits.
        until("the server's credit", || sink.credits() == 8).await;
        for v in [1u64, 2, 3] {
            sink.send(&v).await.unwrap();
        }
        sink.close().unwrap();
        assert!(matches!(sink.send(&4).await, Err(RpcError::StreamClosed)));
        assert_eq!(source.next().await.unwrap().unwrap(), 6);
        assert!(source.next().await.is_none());
        assert!(source.next().await.is_none());

        // A handler error ends the stream with it.
        let (mut sink, mut source) = c.open_stream::<u64, u64, u64>(COUNT, &0).await.unwrap();
        sink.send(&666).await.unwrap();
        drop(sink);
        match source.next().await {
            Some(Err(RpcError::Server(m))) => assert_eq!(m, "unlucky sum"),
            other => panic!("{other:?}"),
        }
        // An unknown streaming verb.
        let (_sink, mut source) = c.open_stream::<u64, u64, u64>(77, &0).await.unwrap();
        assert!(matches!(
            source.next().await,
            Some(Err(RpcError::UnknownVerb(_)))
        ));
        drop(c);
        f.server.stop().await;
    });
}

/// A blocking std socket speaking raw frames (from a helper thread, so the
/// shard keeps serving).
async fn raw_connect(addr: SocketAddr, n: Negotiation) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    w.write_all(&n.encode()).unwrap();
    let mut r = s.try_clone().unwrap();
    let reply = blocking(move || {
        let mut b = [0u8; 16];
        r.read_exact(&mut b).unwrap();
        b
    })
    .await;
    let theirs = Negotiation::decode(&reply).unwrap();
    assert_eq!(theirs.features, n.features & Features::supported());
    s
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let h = std::thread::spawn(f);
    until("a helper thread", || h.is_finished()).await;
    h.join().unwrap()
}

async fn blocking_read_frame(mut s: std::net::TcpStream) -> (Header, Vec<u8>) {
    blocking(move || {
        let mut b = [0u8; HEADER_LEN];
        s.read_exact(&mut b).unwrap();
        let h = Header::decode(&b, u32::MAX).unwrap();
        let mut p = vec![0; h.len as usize];
        s.read_exact(&mut p).unwrap();
        (h, p)
    })
    .await
}

#[test]
fn oversized_frames_are_refused_on_both_sides() {
    run(false, async {
        let f = start(ServerOptions::default().max_frame(1024)).await;
        // Client side: the server's limit is known after negotiation; nothing is sent.
        let c = RpcClient::connect(f.addr).await.unwrap();
        assert!(matches!(
            c.call::<_, Vec<u8>, ()>(ECHO, &vec![0u8; 2000]).await,
            Err(CallError::Rpc(RpcError::Protocol(
                seastar_rpc::frame::FrameError::TooLarge { max: 1024, .. }
            )))
        ));
        assert_eq!(
            c.call::<_, Vec<u8>, ()>(ECHO, &vec![7u8; 1000])
                .await
                .unwrap()
                .len(),
            1000
        );
        // Server side: a header announcing 1 GiB gets an error response and a close.
        let mut s = raw_connect(
            f.addr,
            Negotiation {
                features: Features::TIMEOUTS,
                max_frame: 1 << 20,
            },
        )
        .await;
        let mut frame = Vec::new();
        Header::request(ECHO, 42, 1 << 30, None).encode(&mut frame);
        s.write_all(&frame).unwrap();
        let (h, msg) = blocking_read_frame(s.try_clone().unwrap()).await;
        assert_eq!(
            (h.kind, h.id, Status::from_u16(h.status)),
            (Kind::Response, 42, Status::FrameTooLarge)
        );
        assert!(
            String::from_utf8(msg)
                .unwrap()
                .contains("exceeds the limit of 1024")
        );
        let rest = blocking(move || {
            let mut v = Vec::new();
            s.read_to_end(&mut v).map(|_| v)
        })
        .await;
        assert!(
            rest.map(|v| v.is_empty()).unwrap_or(true),
            "the server closes the connection"
        );
        drop(c);
        f.server.stop().await;
    });
}

#[test]
fn garbage_at_negotiation_closes_the_connection_cleanly() {
    run(false, async {
        let f = start(ServerOptions::default()).await;
        for garbage in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            &[0xff; 16][..],
            &b"SRPC\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"[..],
        ] {
            let mut s = std::net::TcpStream::connect(f.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(garbage).unwrap();
            let got = blocking(move || {
                let mut v = Vec::new();
                let _ = s.read_to_end(&mut v);
                v
            })
            .await;
            assert!(got.is_empty(), "no reply to garbage, only a close: {got:?}");
        }
        // The server is unharmed.
        let c = RpcClient::connect(f.addr).await.unwrap();
        assert_eq!(
            c.call::<_, Vec<u8>, ()>(ECHO, &vec![5u8]).await.unwrap(),
            [5]
        );
        drop(c);
        f.server.stop().await;
    });
}

#[test]
fn a_client_refuses_a_server_that_is_not_seastar_rpc() {
    run(false, async {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 16];
            s.read_exact(&mut b).unwrap();
            s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
        });
        match RpcClient::connect(addr).await {
            Err(RpcError::Negotiation(e)) => assert!(e.to_string().contains("bad magic"), "{e}"),
            other => panic!("{other:?}"),
        }
        until("the fake server", || t.is_finished()).await;
    });
}

#[test]
fn the_client_reconnects_after_the_connection_fails() {
    run(false, async {
        let f = start(ServerOptions::default()).await;
        let c = RpcClient::connect(f.addr).await.unwrap();
        assert_eq!(
            c.call::<_, Vec<u8>, ()>(ECHO, &vec![1u8]).await.unwrap(),
            [1]
        );
        f.server.stop().await;
        until("the client to see the close", || c.features().is_none()).await;
        assert!(
            c.call::<_, Vec<u8>, ()>(ECHO, &vec![2u8]).await.is_err(),
            "nobody listens"
        );
        let server = RpcServer::new(ServerOptions::default());
        server.register(ECHO, |v: Vec<u8>| async move { Ok::<_, ()>(v) });
        server.listen(f.addr, Default::default()).await.unwrap();
        assert_eq!(
            c.call::<_, Vec<u8>, ()>(ECHO, &vec![3u8]).await.unwrap(),
            [3]
        );
        assert_eq!(c.connects(), 2);
        drop(c);
        server.stop().await;
    });
}

#[test]
fn features_are_the_intersection_of_both_sides() {
    run(false, async {
        let f = start(ServerOptions::default().features(Features::TIMEOUTS | Features::STREAMING))
            .await;
        let c = RpcClient::connect_with(
            f.addr,
            ClientOptions::default().features(Features::TIMEOUTS | Features::CANCELLATION),
        )
        .await
        .unwrap();
        assert_eq!(c.features(), Some(Features::TIMEOUTS));
        assert!(matches!(
            c.open_stream::<u64, u64, u64>(COUNT, &1).await,
            Err(RpcError::NotNegotiated("streaming"))
        ));
        assert_eq!(
            c.call::<_, Vec<u8>, ()>(ECHO, &vec![9u8]).await.unwrap(),
            [9]
        );
        drop(c);
        f.server.stop().await;
    });
}

#[cfg(feature = "lz4")]
#[test]
fn lz4_is_negotiated_and_large_payloads_round_trip() {
    run(false, async {
        let f = start(ServerOptions::default()).await;
        let c = RpcClient::connect(f.addr).await.unwrap();
        assert!(c.features().unwrap().contains(Features::LZ4));
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
        assert_eq!(c.call::<_, Vec<u8>, ()>(ECHO, &big).await.unwrap(), big);
        let off = RpcClient::connect_with(
            f.addr,
            ClientOptions::default().features(Features::TIMEOUTS),
        )
        .await
        .unwrap();
        assert!(!off.features().unwrap().contains(Features::LZ4));
        assert_eq!(off.call::<_, Vec<u8>, ()>(ECHO, &big).await.unwrap(), big);
        drop((c, off));
        f.server.stop().await;
    });
}

#[test]
fn dropping_a_source_stops_the_handler_and_closes_the_sink() {
    run(false, async {
        let f = start(ServerOptions::default().stream_window(8)).await;
        let c = RpcClient::connect_with(f.addr, ClientOptions::default().stream_window(2))
            .await
            .unwrap();
        let (mut sink, source) = c.open_stream::<u64, u64, u64>(COUNT, &1000).await.unwrap();
        until("the window to fill", || f.sent.get() == 2).await;
        drop(source);
        let mut closed = false;
        for _ in 0..20 {
            if let Err(e) = sink.send(&1).await {
                assert!(matches!(e, RpcError::StreamClosed), "{e:?}");
                closed = true;
                break;
            }
        }
        assert!(closed, "the sink never saw the stream end");
        assert_eq!(f.sent.get(), 2);
        // The connection serves on.
        assert_eq!(
            c.call::<_, Vec<u8>, ()>(ECHO, &vec![4u8]).await.unwrap(),
            [4]
        );
        drop(c);
        f.server.stop().await;
    });
}

#[test]
fn a_server_per_shard_on_sharded_serves_and_stops() {
    Runtime::builder()
        .shards(2)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            let servers = seastar_core::smp::Sharded::start(|shard| {
                let s = RpcServer::new(ServerOptions::default());
                s.register(ECHO, move |v: Vec<u8>| async move {
                    Ok::<_, ()>(vec![v[0], shard as u8])
                });
                s
            })
            .await
            .unwrap();
            let first = servers
                .invoke_on(0, |s| async move {
                    s.listen("127.0.0.1:0".parse().unwrap(), Default::default())
                        .await
                        .unwrap()
                })
                .await
                .unwrap();
            servers
                .invoke_on(1, move |s| async move {
                    s.listen(first, Default::default()).await.unwrap()
                })
                .await
                .unwrap();
            // Connections land on either shard (SO_REUSEPORT); each answers.
            for i in 0..8u8 {
                let c = RpcClient::connect(first).await.unwrap();
                let r: Vec<u8> = c.call::<_, _, ()>(ECHO, &vec![i]).await.unwrap();
                assert_eq!(r[0], i);
                assert!(r[1] < 2);
            }
            servers.stop().await.unwrap();
            assert!(RpcClient::connect(first).await.is_err(), "still listening");
        });
}
