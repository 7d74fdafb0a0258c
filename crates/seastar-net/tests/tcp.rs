//! TCP streams and per-shard listeners, on the backend named by
//! `SEASTAR_REACTOR_BACKEND` (the suite runs once per backend).

mod common;

use std::io::ErrorKind;
use std::net::Shutdown;
use std::time::Duration;

use bytes::Bytes;
use common::{localhost0, rt, spawn_echo_server};
use seastar_core::{smp, spawn_local};
use seastar_net::{ListenOptions, ListenerStats, TcpListener, TcpStream};

#[test]
fn write_then_read_round_trips_owned_buffers() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        let server = spawn_echo_server(l);
        let c = TcpStream::connect(addr).await.unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        assert_eq!(c.local_addr().unwrap().ip(), addr.ip());

        let (r, buf) = c.write_all(b"hello".to_vec()).await;
        r.unwrap();
        assert_eq!(buf, b"hello", "the buffer comes back");
        let (n, buf) = c.read(Vec::with_capacity(64)).await;
        assert_eq!(&buf[..n.unwrap()], b"hello");

        let parts = vec![
            Bytes::from_static(b"ab"),
            Bytes::from_static(b"cd"),
            Bytes::from_static(b"e"),
        ];
        let (n, _) = c.writev(parts).await;
        assert_eq!(n.unwrap(), 5);
        let mut got = Vec::new();
        while got.len() < 5 {
            let (n, buf) = c.read(vec![0u8; 16]).await;
            got.extend_from_slice(&buf[..n.unwrap()]);
        }
        assert_eq!(got, b"abcde");

        let mut chunks: Vec<Bytes> = (0..100).map(|i| Bytes::from(vec![i as u8; 1000])).collect();
        c.writev_all(&mut chunks).await.unwrap();
        assert!(chunks.is_empty());
        let mut total = 0;
        while total < 100_000 {
            let (n, _) = c.read(vec![0u8; 65536]).await;
            total += n.unwrap();
        }
        assert_eq!(total, 100_000);
        server.abort();
    });
}

#[test]
fn large_write_all_completes_despite_short_writes() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        let c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        s.set_send_buffer_size(4096).unwrap();
        const LEN: usize = 2 << 20;
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        let writer = spawn_local(async move {
            let (r, back) = s.write_all(data).await;
            r.unwrap();
            back.len()
        });
        let mut got = Vec::with_capacity(LEN);
        while got.len() < LEN {
            let (n, buf) = c.read(vec![0u8; 1 << 16]).await;
            got.extend_from_slice(&buf[..n.unwrap()]);
        }
        assert_eq!(writer.await.unwrap(), LEN);
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    });
}

#[test]
fn port_zero_gives_every_shard_the_same_port() {
    rt(2).run(async {
        let addrs = smp::invoke_on_all(|| async {
            let l = TcpListener::bind(localhost0(), ListenOptions::default())
                .await
                .unwrap();
            let addr = l.local_addr().unwrap();
            // Keep the listener open for the rest of the runtime.
            spawn_local(async move {
                let _l = l;
                std::future::pending::<()>().await;
            })
            .detach();
            addr
        })
        .await
        .unwrap();
        assert_ne!(addrs[0].port(), 0);
        assert_eq!(addrs[0], addrs[1]);
    });
}

#[test]
fn two_port_zero_groups_get_distinct_ports() {
    rt(2).run(async {
        let pairs = smp::invoke_on_all(|| async {
            let a = TcpListener::bind(localhost0(), ListenOptions::default())
                .await
                .unwrap();
            let b = TcpListener::bind(localhost0(), ListenOptions::default())
                .await
                .unwrap();
            let addrs = (a.local_addr().unwrap(), b.local_addr().unwrap());
            spawn_local(async move {
                let _keep = (a, b);
                std::future::pending::<()>().await;
            })
            .detach();
            addrs
        })
        .await
        .unwrap();
        assert_eq!(pairs[0], pairs[1]);
        assert_ne!(pairs[0].0, pairs[0].1);
    });
}

#[test]
fn per_shard_listeners_count_accepted_and_open_connections() {
    rt(2).run(async {
        let addr = smp::invoke_on_all(|| async {
            let l = TcpListener::bind(
                localhost0(),
                ListenOptions::default().policy(seastar_net::Policy::PerShard),
            )
            .await
            .unwrap();
            let addr = l.local_addr().unwrap();
            LISTENER.with(|c| *c.borrow_mut() = Some(std::rc::Rc::new(l)));
            let l = LISTENER.with(|c| c.borrow().clone().unwrap());
            spawn_local(async move {
                while let Ok((conn, _)) = l.accept().await {
                    spawn_local(common::echo(conn)).detach();
                }
            })
            .detach();
            addr
        })
        .await
        .unwrap()[0];

        const N: usize = 64;
        let mut clients = Vec::new();
        for i in 0..N {
            let c = TcpStream::connect(addr).await.unwrap();
            let (r, _) = c.write_all(vec![i as u8]).await;
            r.unwrap();
            let (n, _) = c.read(vec![0u8; 1]).await;
            assert_eq!(n.unwrap(), 1);
            clients.push(c);
        }
        let stats = all_stats().await;
        assert_eq!(stats.iter().map(|s| s.accepted).sum::<u64>(), N as u64);
        assert_eq!(stats.iter().map(|s| s.open).sum::<u64>(), N as u64);

        // Closing the clients ends the echo tasks, which drop the streams.
        for c in clients {
            c.shutdown(Shutdown::Both).unwrap();
            drop(c);
        }
        loop {
            let stats = all_stats().await;
            if stats.iter().map(|s| s.open).sum::<u64>() == 0 {
                break;
            }
            seastar_core::yield_now().await;
        }
        smp::invoke_on_all(|| async { LISTENER.with(|c| c.borrow_mut().take()) }.map(drop))
            .await
            .unwrap();
    });
}

thread_local! {
    static LISTENER: std::cell::RefCell<Option<std::rc::Rc<TcpListener>>> = const { std::cell::RefCell::new(None) };
}

async fn all_stats() -> Vec<ListenerStats> {
    smp::invoke_on_all(|| async {
        LISTENER.with(|c| c.borrow().as_ref().map(|l| l.stats()).unwrap_or_default())
    })
    .await
    .unwrap()
}

use futures::FutureExt;

#[test]
fn connect_refused_is_a_clean_error() {
    rt(1).run(async {
        // Bind then close a listener: its port now refuses connections.
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn connect_to_a_full_backlog_times_out() {
    rt(1).run(async {
        // A listener nobody accepts from, with the smallest backlog: once its
        // queue is full the kernel drops further SYNs, so connects hang.
        let l = TcpListener::bind(localhost0(), ListenOptions::default().backlog(0))
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        let mut held = Vec::new();
        let mut timed_out = false;
        for _ in 0..16 {
            match TcpStream::connect_timeout(addr, Duration::from_millis(200)).await {
                Ok(c) => held.push(c),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                    timed_out = true;
                    break;
                }
            }
        }
        assert!(timed_out, "every connect succeeded ({} held)", held.len());
    });
}

#[test]
fn peer_reset_is_a_clean_error() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        // Unread data plus linger 0 makes close send a reset.
        let (r, _) = c.write_all(b"unread".to_vec()).await;
        r.unwrap();
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
        let (n, _) = c.read(vec![0u8; 16]).await;
        assert_eq!(n.unwrap_err().kind(), ErrorKind::ConnectionReset);
        // Writing to a reset connection fails too, without SIGPIPE.
        let mut failed = false;
        for _ in 0..8 {
            let (r, _) = c.write(b"x".to_vec()).await;
            if r.is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    });
}

#[test]
fn half_close_delivers_eof_and_keeps_the_other_direction() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        c.write_all(b"request".to_vec()).await.0.unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        loop {
            let (n, buf) = s.read(vec![0u8; 64]).await;
            let n = n.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"request");
        // The server can still answer after the client's half-close.
        s.write_all(b"response".to_vec()).await.0.unwrap();
        drop(s);
        let mut got = Vec::new();
        loop {
            let (n, buf) = c.read(vec![0u8; 64]).await;
            let n = n.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"response");
    });
}

#[test]
fn socket_options_round_trip() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default().nodelay(true))
            .await
            .unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        assert!(
            s.nodelay().unwrap(),
            "ListenOptions::nodelay applies to accepted streams"
        );
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        c.set_nodelay(false).unwrap();
        assert!(!c.nodelay().unwrap());
        assert_eq!(c.keepalive().unwrap(), None);
        c.set_keepalive(Some(Duration::from_secs(30))).unwrap();
        assert_eq!(c.keepalive().unwrap(), Some(Duration::from_secs(30)));
        c.set_keepalive(None).unwrap();
        assert_eq!(c.keepalive().unwrap(), None);
        c.set_send_buffer_size(64 * 1024).unwrap();
        assert!(c.send_buffer_size().unwrap() >= 64 * 1024);
        c.set_recv_buffer_size(64 * 1024).unwrap();
        assert!(c.recv_buffer_size().unwrap() >= 64 * 1024);
    });
}

#[test]
fn dropping_a_listener_frees_its_port_even_with_an_accept_pending() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        // An accept that reaches the kernel and is then abandoned.
        let r = seastar_core::timer::timeout(Duration::from_millis(1), l.accept()).await;
        assert!(r.is_err());
        drop(l);
        // Without SO_REUSEPORT on the new socket, a live old one would conflict.
        let std_listener = std::net::TcpListener::bind(addr);
        assert!(std_listener.is_ok(), "port still bound: {std_listener:?}");
    });
}

#[test]
fn read_abandoned_by_a_timeout_leaves_the_stream_usable() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        // Nothing arrives: the read is abandoned when the timeout fires.
        let r = seastar_core::timer::timeout(Duration::from_millis(5), c.read(vec![0u8; 16])).await;
        assert!(r.is_err());
        s.write_all(b"later".to_vec()).await.0.unwrap();
        let (n, buf) = c.read(vec![0u8; 16]).await;
        assert_eq!(&buf[..n.unwrap()], b"later");
    });
}

/// `send_behind` of a buffer far larger than the send buffer: polled only
/// quietly while the sender waits for its next read (the memcached and
/// HTTP pattern), every short send's wake continues it, and the sender's
/// read completes once the peer got every byte.
#[test]
fn send_behind_continues_short_sends_while_the_sender_reads() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        const LEN: usize = 256 * 1024;
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        let peer = spawn_local(async move {
            let (conn, _) = l.accept().await.unwrap();
            let mut got = Vec::new();
            while got.len() < LEN {
                let (n, b) = conn.read(Vec::with_capacity(16 * 1024)).await;
                let n = n.unwrap();
                assert!(n > 0, "end of stream after {} bytes", got.len());
                got.extend_from_slice(&b[..n]);
            }
            conn.write_all(b"ok".to_vec()).await.0.unwrap();
            got
        });
        let c = TcpStream::connect(addr).await.unwrap();
        c.set_send_buffer_size(4096).unwrap();
        let mut sending = Some(c.send_behind(data.clone()));
        let mut read = std::pin::pin!(c.read(Vec::with_capacity(16)));
        let mut sent = None;
        let (n, buf) = std::future::poll_fn(|cx| {
            if let Some(s) = sending.as_mut()
                && let std::task::Poll::Ready(r) = s.poll_quiet(cx)
            {
                sending = None;
                sent = Some(r);
            }
            read.as_mut().poll(cx)
        })
        .await;
        assert_eq!(&buf[..n.unwrap()], b"ok");
        // The last send took the whole rest: collected by a later poll.
        let (res, back) = match (sent, sending) {
            (Some(r), None) => r,
            (None, Some(s)) => s.finish().await,
            _ => unreachable!(),
        };
        assert_eq!(res.unwrap(), LEN);
        assert!(back == data);
        assert!(peer.await.unwrap() == data);
    });
}

/// A connection whose peer never reads blocks its writer forever; a drain
/// gives it its timeout, then aborts it, and the writer sees an error.
#[test]
fn drain_aborts_a_connection_whose_peer_never_reads_after_its_timeout() {
    use seastar_core::timer::ManualClock;
    use seastar_net::Connections;
    use std::rc::Rc;

    seastar_core::Runtime::builder()
        .shards(1)
        .manual_clock()
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            let l = TcpListener::bind(localhost0(), ListenOptions::default())
                .await
                .unwrap();
            let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let (conn, _) = l.accept().await.unwrap();
            conn.set_send_buffer_size(4096).unwrap();
            let conns = Rc::new(Connections::default());
            let conn = Rc::new(conn);
            let id = conns.insert(conn.clone());
            // The server side writes far more than the socket buffers hold;
            // the client never reads.
            let writer = spawn_local({
                let conns = conns.clone();
                async move {
                    let r = conn.write_all(vec![7u8; 64 << 20]).await.0;
                    conns.remove(id);
                    r
                }
            });
            let drain = spawn_local({
                let conns = conns.clone();
                async move { conns.drain(Duration::from_secs(30)).await }
            });
            // Let the writer fill the buffers and block; nothing ends early.
            for _ in 0..20 {
                seastar_core::yield_now().await;
            }
            ManualClock::advance(Duration::from_secs(29)).await;
            assert_eq!(conns.len(), 1, "the drain waited for the writer");
            ManualClock::advance(Duration::from_secs(1)).await;
            assert_eq!(drain.await.unwrap(), 1);
            assert!(writer.await.unwrap().is_err(), "the blocked write failed");
            conns.wait_idle().await;
            drop(client);
        });
}

/// A drain whose connections all leave in time aborts none.
#[test]
fn drain_returns_zero_when_every_connection_leaves_in_time() {
    use seastar_net::Connections;
    use std::rc::Rc;

    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (conn, _) = l.accept().await.unwrap();
        let conns = Rc::new(Connections::default());
        let conn = Rc::new(conn);
        let id = conns.insert(conn.clone());
        // The server side reads until the drain shuts its read side.
        let reader = spawn_local({
            let conns = conns.clone();
            async move {
                let (n, _) = conn.read(Vec::with_capacity(16)).await;
                conns.remove(id);
                n
            }
        });
        assert_eq!(conns.drain(Duration::from_secs(3600)).await, 0);
        assert_eq!(reader.await.unwrap().unwrap(), 0, "end of stream");
        // The client still reads the server's side as open for writing
        // until the connection's owner drops it; nothing was aborted.
        drop(client);
    });
}

/// Pooled reads return what the peer sent, in order, then end of stream.
#[test]
fn read_pooled_returns_the_bytes_in_order_then_end_of_stream() {
    rt(1).run(async {
        let l = TcpListener::bind(localhost0(), ListenOptions::default())
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        let writer = spawn_local(async move {
            let c = TcpStream::connect(addr).await.unwrap();
            for i in 0..50u32 {
                c.write_all(i.to_le_bytes().repeat(1000)).await.0.unwrap();
            }
        });
        let (conn, _) = l.accept().await.unwrap();
        let mut got = Vec::new();
        loop {
            let b = conn.read_pooled().await.unwrap();
            if b.is_empty() {
                break;
            }
            got.extend_from_slice(&b);
        }
        writer.await.unwrap();
        let want: Vec<u8> = (0..50u32)
            .flat_map(|i| i.to_le_bytes().repeat(1000))
            .collect();
        assert!(got == want, "{} bytes of {}", got.len(), want.len());
    });
}
