//! Owned-buffer I/O on both backends: sockets, pipes, files, abandonment.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use common::pair;
use seastar_core::{io, spawn_local, timer};

/// A non-blocking IPv4 TCP socket made with plain libc (no extra crate).
fn tcp_socket() -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2) call; the returned fd is owned by nobody else.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    assert!(fd >= 0);
    // SAFETY: fd was just created above.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[seastar_core::test]
async fn ping_pong_over_a_socket_pair() {
    let (a, b) = pair();
    for i in 0..1000u32 {
        let msg = i.to_le_bytes().to_vec();
        let (n, _) = io::send(a.as_raw_fd(), msg).await;
        assert_eq!(n.unwrap(), 4);
        let (n, buf) = io::recv(b.as_raw_fd(), Vec::with_capacity(4)).await;
        assert_eq!(n.unwrap(), 4);
        assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()), i);
    }
}

#[seastar_core::test]
async fn recv_waits_for_data_then_sees_eof() {
    let (a, b) = pair();
    let reader = spawn_local(async move {
        let (n, buf) = io::recv(b.as_raw_fd(), Vec::with_capacity(64)).await;
        let first = buf[..n.unwrap()].to_vec();
        let (n, _) = io::recv(b.as_raw_fd(), Vec::with_capacity(64)).await;
        (first, n.unwrap())
    });
    timer::sleep(Duration::from_millis(1)).await;
    let (n, _) = io::write(a.as_raw_fd(), b"late".to_vec()).await;
    assert_eq!(n.unwrap(), 4);
    drop(a);
    let (first, eof) = reader.await.unwrap();
    assert_eq!(first, b"late");
    assert_eq!(eof, 0);
}

/// `recv_stream` after a short read: bytes that arrive later wake it, and
/// an end of stream that was already queued behind the short read is seen
/// (epoll gives no second edge for it; io_uring polls first).
#[seastar_core::test]
async fn recv_stream_after_a_short_read_sees_later_bytes_and_a_queued_eof() {
    let (a, b) = pair();
    let fd = b.as_raw_fd();
    let (r, _) = io::write(a.as_raw_fd(), b"one".to_vec()).await;
    assert_eq!(r.unwrap(), 3);
    let (r, buf) = io::recv_stream(fd, Vec::with_capacity(64), false).await;
    assert_eq!((r.unwrap(), &buf[..]), ((3, true), &b"one"[..]));
    // Nothing queued now: the next receive waits for the writer.
    let reader = spawn_local(async move {
        let (r, buf) = io::recv_stream(fd, Vec::with_capacity(64), true).await;
        (r.unwrap(), buf)
    });
    seastar_core::yield_now().await;
    assert!(!reader.is_finished());
    let (r, _) = io::write(a.as_raw_fd(), b"two".to_vec()).await;
    assert_eq!(r.unwrap(), 3);
    let ((n, drained), buf) = reader.await.unwrap();
    assert_eq!((n, drained, &buf[..]), (3, true, &b"two"[..]));
    // Bytes and the close arrive before the next receive: a short read
    // of the bytes, then the end of stream without a new edge.
    let (r, _) = io::write(a.as_raw_fd(), b"three".to_vec()).await;
    assert_eq!(r.unwrap(), 5);
    drop(a);
    seastar_core::yield_now().await;
    let (r, buf) = io::recv_stream(fd, Vec::with_capacity(64), true).await;
    assert_eq!((r.unwrap(), &buf[..]), ((5, true), &b"three"[..]));
    let (r, _) = io::recv_stream(fd, Vec::with_capacity(64), true).await;
    assert_eq!(r.unwrap(), (0, false));
    drop(b);
}

#[seastar_core::test]
async fn dropped_read_keeps_the_socket_usable() {
    let (a, b) = pair();
    // Start a read and abandon it: its buffer must stay owned by the
    // reactor until the kernel is done with it.
    let r = timer::timeout(
        Duration::from_millis(1),
        io::recv(b.as_raw_fd(), vec![0u8; 0].into_boxed_slice()),
    )
    .await;
    assert!(r.is_err());
    let pending = spawn_local(io::recv(b.as_raw_fd(), Vec::with_capacity(8)));
    seastar_core::yield_now().await;
    pending.abort();
    assert!(pending.await.unwrap_err().is_cancelled());
    // Let the reactor submit the cancellation before anything is sent:
    // on io_uring a receive whose cancellation is still in flight when
    // bytes arrive may complete with them (they would go to the
    // abandoned buffer; see `io::recv`).
    for _ in 0..2 {
        seastar_core::yield_now().await;
    }
    let (n, _) = io::send(a.as_raw_fd(), b"after".to_vec()).await;
    assert_eq!(n.unwrap(), 5);
    let (n, buf) = io::recv(b.as_raw_fd(), Vec::with_capacity(8)).await;
    assert_eq!(&buf[..n.unwrap()], b"after");
}

#[seastar_core::test]
async fn writev_gathers_buffers_in_order() {
    let (a, b) = pair();
    let parts = vec![b"hello ".to_vec(), b"vectored ".to_vec(), b"world".to_vec()];
    let (n, parts) = io::writev(a.as_raw_fd(), parts).await;
    assert_eq!(n.unwrap(), 20);
    assert_eq!(parts.len(), 3);
    let (n, buf) = io::read(b.as_raw_fd(), Vec::with_capacity(64)).await;
    assert_eq!(&buf[..n.unwrap()], b"hello vectored world");
}

#[seastar_core::test]
async fn tcp_accept_connect_and_exchange() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let lfd = listener.as_raw_fd();
    let server = spawn_local(async move {
        let (conn, peer) = io::accept(lfd).await.unwrap();
        let (n, buf) = io::recv(conn.as_raw_fd(), Vec::with_capacity(16)).await;
        let n = n.unwrap();
        let (w, _) = io::send(conn.as_raw_fd(), buf[..n].to_vec()).await;
        w.unwrap();
        io::close(conn);
        peer
    });
    let client = tcp_socket();
    io::connect(client.as_raw_fd(), addr).await.unwrap();
    let (n, _) = io::send(client.as_raw_fd(), b"echo me".to_vec()).await;
    assert_eq!(n.unwrap(), 7);
    let (n, buf) = io::recv(client.as_raw_fd(), Vec::with_capacity(16)).await;
    assert_eq!(&buf[..n.unwrap()], b"echo me");
    let peer: SocketAddr = server.await.unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.1");
    io::close(client);
    drop(listener);
}

#[seastar_core::test]
async fn connect_refused_is_a_clean_error() {
    // Bind then drop to find a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = tcp_socket();
    let err = io::connect(s.as_raw_fd(), SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    io::close(s);
}

#[seastar_core::test]
async fn udp_send_to_and_recv_from() {
    let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let (n, _) = io::send_to(a.as_raw_fd(), b"datagram".to_vec(), b.local_addr().unwrap()).await;
    assert_eq!(n.unwrap(), 8);
    let (r, buf) = io::recv_from(b.as_raw_fd(), Vec::with_capacity(64)).await;
    let (n, from) = r.unwrap();
    assert_eq!(&buf[..n], b"datagram");
    assert_eq!(from, a.local_addr().unwrap());
}

#[seastar_core::test]
async fn file_write_at_read_at_and_fsync() {
    let dir = std::env::temp_dir().join(format!("seastar-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("f-{:?}", std::thread::current().id()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let fd = file.as_raw_fd();
    let (n, _) = io::write_at(fd, b"0123456789".to_vec(), 0).await;
    assert_eq!(n.unwrap(), 10);
    let (n, _) = io::write_at(fd, b"AB".to_vec(), 4).await;
    assert_eq!(n.unwrap(), 2);
    io::fsync(fd).await.unwrap();
    io::fdatasync(fd).await.unwrap();
    let (n, buf) = io::read_at(fd, Vec::with_capacity(16), 2).await;
    assert_eq!(&buf[..n.unwrap()], b"23AB6789");
    drop(file);
    std::fs::remove_file(&path).unwrap();
}

#[seastar_core::test]
async fn read_of_closed_fd_is_an_error_not_a_panic() {
    let (n, _) = io::read(-1, Vec::with_capacity(8)).await;
    assert_eq!(n.unwrap_err().raw_os_error(), Some(libc::EBADF));
}

#[seastar_core::test]
async fn spawn_blocking_returns_the_result() {
    let v = io::spawn_blocking(|| (1..=10u32).sum::<u32>()).await;
    assert_eq!(v, 55);
}

#[seastar_core::test]
async fn acceptor_takes_a_burst_of_connections_with_their_peer_addresses() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = io::Acceptor::new(l.as_raw_fd());
    // Connections that complete before and while the accept is armed.
    let early: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let mut peers = Vec::new();
    for i in 0..40 {
        if i >= 3 {
            peers.push(std::net::TcpStream::connect(addr).unwrap());
        }
        let (fd, peer) = acceptor.accept().await.unwrap();
        assert!(fd.as_raw_fd() >= 0);
        let clients: Vec<SocketAddr> = early
            .iter()
            .chain(&peers)
            .map(|c| c.local_addr().unwrap())
            .collect();
        assert!(clients.contains(&peer), "{peer} is not one of our clients");
    }
    if let Some(f) = io::uring_features() {
        let multishot = std::env::var("SEASTAR_URING_MULTISHOT_ACCEPT").as_deref() != Ok("0");
        assert!(f.defer_taskrun && f.multishot_accept == multishot, "{f:?}");
    }
}

#[seastar_core::test]
async fn dropping_an_acceptor_closes_connections_it_had_queued() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = io::Acceptor::new(l.as_raw_fd());
    let first = std::net::TcpStream::connect(addr).unwrap();
    drop(acceptor.accept().await.unwrap());
    // A connection the armed accept takes after nobody waits any more.
    let mut second = std::net::TcpStream::connect(addr).unwrap();
    timer::sleep(Duration::from_millis(1)).await;
    drop(acceptor);
    drop(first);
    // Its server side is closed, not leaked: the client reads EOF
    // (io_uring: closed by the orphan hook; epoll: never accepted, so
    // closing the listener resets it).
    drop(l);
    use std::io::Read;
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 1];
    match second.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected EOF or reset, got {other:?}"),
    }
}
