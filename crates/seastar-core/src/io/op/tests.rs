//! The generic operation driver and multishot receives on the shard's
//! backend (`SEASTAR_REACTOR_BACKEND` picks it: run on both).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use crate::io::{self, PooledRecvStream};
use crate::reactor;

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// Slots of the io_uring operation table in use (`None` on epoll).
fn ops_in_use() -> Option<usize> {
    reactor::with(|s| s.driver().borrow().ops_in_use())
}

fn multishot_on() -> bool {
    reactor::with_uring_features(|f| f.multishot_recv && f.provided_buffers).unwrap_or(false)
}

/// Lets the reactor run a few iterations (enter the kernel, reap).
async fn spin() {
    for _ in 0..8 {
        crate::yield_now().await;
    }
}

/// Waits (at most 2 s) until the operation table holds `want` slots:
/// cancellations take a trip through the kernel.
async fn settle(want: Option<usize>) {
    for _ in 0..2000 {
        if ops_in_use() == want {
            return;
        }
        crate::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(ops_in_use(), want, "every abandoned slot freed");
}

/// Reads from `stream` until `want` bytes arrived or end of stream.
async fn read_all(stream: &mut PooledRecvStream, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        let buf = stream.next().await.unwrap();
        if buf.is_empty() {
            break;
        }
        got.extend_from_slice(&buf);
    }
    got
}

#[test]
fn a_multishot_stream_delivers_every_chunk_in_order_from_one_submission() {
    crate::block_on(async {
        let (a, b) = pair();
        let mut stream = PooledRecvStream::new(a.as_raw_fd());
        for i in 0..50u32 {
            (&b).write_all(format!("chunk {i:03};").as_bytes()).unwrap();
            if i % 10 == 0 {
                spin().await;
            }
        }
        let want: Vec<u8> = (0..50u32)
            .flat_map(|i| format!("chunk {i:03};").into_bytes())
            .collect();
        let got = read_all(&mut stream, want.len()).await;
        assert_eq!(got, want);
        if multishot_on() {
            // One multishot receive served every chunk: one slot.
            assert_eq!(ops_in_use(), Some(1), "one armed multishot receive");
        }
        drop(b);
        assert!(stream.next().await.unwrap().is_empty(), "end of stream");
    });
}

#[test]
fn dropping_a_multishot_stream_gives_its_buffers_back() {
    crate::block_on(async {
        let before = ops_in_use();
        for _ in 0..20 {
            let (a, b) = pair();
            let mut stream = PooledRecvStream::new(a.as_raw_fd());
            (&b).write_all(b"first").unwrap();
            assert_eq!(&stream.next().await.unwrap()[..], b"first");
            // Received ahead and never taken, then dropped with the stream.
            for _ in 0..4 {
                (&b).write_all(b"ahead").unwrap();
                spin().await;
            }
            drop(stream);
            spin().await;
        }
        settle(before).await;
        // Every ring buffer is back: 128 receives held at once all get one.
        if multishot_on() {
            let pairs: Vec<_> = (0..128).map(|_| pair()).collect();
            let mut held = Vec::new();
            for (a, b) in &pairs {
                (&*b).write_all(b"x").unwrap();
                let (buf, _) = io::recv_pooled(a.as_raw_fd(), false).await.unwrap();
                assert!(buf.is_ring(), "a ring buffer was lost");
                held.push(buf);
            }
        }
    });
}

#[test]
fn a_multishot_stream_falls_back_to_its_own_buffers_when_the_ring_is_empty() {
    crate::block_on(async {
        // Hold every ring buffer (io_uring), then stream through.
        let pairs: Vec<_> = (0..128).map(|_| pair()).collect();
        let mut held = Vec::new();
        for (a, b) in &pairs {
            (&*b).write_all(b"x").unwrap();
            held.push(io::recv_pooled(a.as_raw_fd(), false).await.unwrap().0);
        }
        let (a, b) = pair();
        let mut stream = PooledRecvStream::new(a.as_raw_fd());
        let want: Vec<u8> = (0..20u8).flat_map(|i| [b'a' + i; 100]).collect();
        for chunk in want.chunks(100) {
            (&b).write_all(chunk).unwrap();
            spin().await;
        }
        let got = read_all(&mut stream, want.len()).await;
        assert_eq!(got, want);
        // With the buffers back, the ring serves the stream again.
        drop(held);
        (&b).write_all(b"again").unwrap();
        let buf = stream.next().await.unwrap();
        assert_eq!(&buf[..], b"again");
        if multishot_on() {
            assert!(buf.is_ring(), "re-armed on the ring");
        }
    });
}

#[test]
fn a_stream_on_a_shard_without_multishot_uses_single_receives() {
    crate::block_on(async {
        reactor::with_uring_features(|f| f.multishot_recv = false);
        let (a, b) = pair();
        let mut stream = PooledRecvStream::new(a.as_raw_fd());
        (&b).write_all(b"single").unwrap();
        assert_eq!(&stream.next().await.unwrap()[..], b"single");
        spin().await;
        // Nothing armed between single-shot receives.
        if let Some(n) = ops_in_use() {
            assert_eq!(n, 0, "no multishot receive armed");
        }
        drop(b);
        assert!(stream.next().await.unwrap().is_empty());
    });
}

#[test]
fn an_abandoned_receive_keeps_its_buffer_until_the_kernel_is_done() {
    crate::block_on(async {
        let (a, b) = pair();
        let before = ops_in_use();
        {
            let fut = io::recv(a.as_raw_fd(), vec![0u8; 64]);
            let mut fut = std::pin::pin!(fut);
            assert!(futures::poll!(fut.as_mut()).is_pending());
        }
        spin().await;
        // The cancellation lands: the slot (and the buffer) is freed.
        settle(before).await;
        (&b).write_all(b"next").unwrap();
        let (n, buf) = io::recv(a.as_raw_fd(), vec![0u8; 64]).await;
        assert_eq!(&buf[..n.unwrap()], b"next");
    });
}

#[test]
fn a_connect_refused_is_an_error_and_a_listener_accepts() {
    crate::block_on(async {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let fd = socket();
        let err = io::connect(fd.as_raw_fd(), addr).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));

        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let fd = socket();
        io::connect(fd.as_raw_fd(), l.local_addr().unwrap())
            .await
            .unwrap();
        let acceptor = io::Acceptor::new(l.as_raw_fd());
        let (_conn, peer) = acceptor.accept().await.unwrap();
        assert!(peer.ip().is_loopback());
    });
}

/// A non-blocking TCP socket.
fn socket() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall; a non-negative return is a new fd we own.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    assert!(fd >= 0);
    // SAFETY: just created, owned by nobody else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}
