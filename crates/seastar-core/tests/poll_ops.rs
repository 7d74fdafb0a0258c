//! The poll-style operations `SendAll` and `StreamRecv` on both backends:
//! whole sends across short ones, quiet completions, errors, receives.

mod common;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use common::pair;
use futures::task::ArcWake;
use seastar_core::io::{SendAll, StreamRecv};
use seastar_core::{BackendKind, io, spawn_local, yield_now};

/// Shrinks the send buffer so that a large send is short several times.
fn small_sndbuf(s: &UnixStream) {
    let size: libc::c_int = 4096;
    // SAFETY: a valid socket fd and an int option of the right size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

/// Reads `len` bytes from `fd`, in small pieces.
async fn read_exactly(fd: i32, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let (n, buf) = io::recv(fd, Vec::with_capacity(8192)).await;
        let n = n.unwrap();
        assert!(n > 0, "end of stream after {} of {len} bytes", out.len());
        out.extend_from_slice(&buf[..n]);
    }
    out
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Counts its wakes.
struct Counter(AtomicUsize);

impl ArcWake for Counter {
    fn wake_by_ref(me: &Arc<Self>) {
        me.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Lets the reactor run a few iterations (enter the kernel, reap).
async fn spin() {
    for _ in 0..8 {
        yield_now().await;
    }
}

#[seastar_core::test]
async fn send_all_sends_every_byte_across_short_sends() {
    let (a, b) = pair();
    small_sndbuf(&a);
    let data = pattern(1 << 20);
    let reader = spawn_local(async move { read_exactly(b.as_raw_fd(), 1 << 20).await });
    let mut send = SendAll::start(a.as_raw_fd(), data.clone());
    let (res, back) = poll_fn(|cx| send.poll(cx)).await;
    assert_eq!(res.unwrap(), 1 << 20);
    assert_eq!(send.sent(), 1 << 20);
    assert_eq!(back, data);
    assert!(reader.await.unwrap() == data);
}

#[seastar_core::test]
async fn quiet_send_of_a_whole_buffer_does_not_wake_the_task() {
    let (a, b) = pair();
    let counter = Arc::new(Counter(AtomicUsize::new(0)));
    let waker = futures::task::waker(counter.clone());
    let mut send = SendAll::start(a.as_raw_fd(), b"ping".to_vec());
    let first = send.poll_quiet(&mut Context::from_waker(&waker));
    match seastar_core::runtime::backend() {
        // Sent by `start` itself.
        BackendKind::Epoll => assert!(matches!(first, Poll::Ready((Ok(4), _)))),
        BackendKind::IoUring => {
            assert!(first.is_pending());
            spin().await;
            let got = read_exactly(b.as_raw_fd(), 4).await;
            assert_eq!(got, b"ping");
            assert_eq!(counter.0.load(Ordering::Relaxed), 0, "woken by a full send");
            let (res, buf) = poll_fn(|cx| send.poll(cx)).await;
            assert_eq!((res.unwrap(), &buf[..]), (4, &b"ping"[..]));
        }
    }
}

#[seastar_core::test]
async fn quiet_sends_continue_when_short_and_sleep_through_the_last() {
    let (a, b) = pair();
    small_sndbuf(&a);
    let len = 1 << 20;
    let send = Rc::new(RefCell::new(SendAll::start(a.as_raw_fd(), pattern(len))));
    let finished = Rc::new(Cell::new(false));
    let (s, f) = (send.clone(), finished.clone());
    // Only ever polls quietly: every short send must wake it.
    let _driver = spawn_local(async move {
        poll_fn(|cx| s.borrow_mut().poll_quiet(cx).map(drop)).await;
        f.set(true);
    });
    assert!(read_exactly(b.as_raw_fd(), len).await == pattern(len));
    spin().await;
    // epoll finishes inside the poll that sends the last bytes; on
    // io_uring the last completion takes the whole rest: no wake.
    let epoll = seastar_core::runtime::backend() == BackendKind::Epoll;
    assert_eq!(finished.get(), epoll);
    if !epoll {
        let (res, _) = poll_fn(|cx| send.borrow_mut().poll(cx)).await;
        assert_eq!(res.unwrap(), len);
    }
}

#[seastar_core::test]
async fn send_all_to_a_closed_peer_is_an_error() {
    let (a, b) = pair();
    drop(b);
    let mut send = SendAll::start(a.as_raw_fd(), b"lost".to_vec());
    let (res, buf) = poll_fn(|cx| send.poll(cx)).await;
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EPIPE));
    assert_eq!(buf, b"lost");
    assert_eq!(send.sent(), 0);
}

#[seastar_core::test]
async fn empty_send_all_is_done_at_once() {
    let (a, _b) = pair();
    let mut send = SendAll::start(a.as_raw_fd(), Vec::new());
    assert!(send.is_done());
    let (res, _) = poll_fn(|cx| send.poll(cx)).await;
    assert_eq!(res.unwrap(), 0);
}

#[seastar_core::test]
async fn stream_recv_reports_short_receives_later_bytes_and_end_of_stream() {
    let (a, b) = pair();
    std::io::Write::write_all(&mut &b, b"hi").unwrap();
    let mut recv = StreamRecv::start(a.as_raw_fd(), Vec::with_capacity(16), false);
    let (r, buf) = poll_fn(|cx| recv.poll(cx)).await;
    assert_eq!((r.unwrap(), &buf[..]), ((2, true), &b"hi"[..]));

    // After a short receive: waits for the next bytes (nothing queued).
    let mut recv = StreamRecv::start(a.as_raw_fd(), Vec::with_capacity(4), true);
    let writer = spawn_local(async move {
        spin().await;
        let (n, _) = io::send(b.as_raw_fd(), b"more!".to_vec()).await;
        assert_eq!(n.unwrap(), 5);
        b
    });
    let (r, buf) = poll_fn(|cx| recv.poll(cx)).await;
    // A full buffer is not a short receive.
    assert_eq!((r.unwrap(), &buf[..]), ((4, false), &b"more"[..]));
    let b = writer.await;
    drop(b);
    let mut recv = StreamRecv::start(a.as_raw_fd(), Vec::with_capacity(16), false);
    let (r, buf) = poll_fn(|cx| recv.poll(cx)).await;
    assert_eq!((r.unwrap(), &buf[..]), ((1, true), &b"!"[..]));
    let mut recv = StreamRecv::start(a.as_raw_fd(), Vec::with_capacity(16), true);
    let (r, _) = poll_fn(|cx| recv.poll(cx)).await;
    assert_eq!(r.unwrap(), (0, false));
}

#[seastar_core::test]
async fn dropping_a_stream_recv_keeps_the_socket_usable() {
    let (a, b) = pair();
    let mut recv = StreamRecv::start(a.as_raw_fd(), Vec::with_capacity(16), true);
    assert!(poll_fn(|cx| Poll::Ready(recv.poll(cx).is_pending())).await);
    drop(recv);
    spin().await;
    let (n, _) = io::send(b.as_raw_fd(), b"after".to_vec()).await;
    assert_eq!(n.unwrap(), 5);
    let mut recv = StreamRecv::start(a.as_raw_fd(), Vec::with_capacity(16), false);
    let (r, buf) = poll_fn(|cx| recv.poll(cx)).await;
    assert_eq!((r.unwrap(), &buf[..]), ((5, true), &b"after"[..]));
}
