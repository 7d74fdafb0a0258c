//! Handles kept past their runtime: an I/O operation or a sleep started by
//! one runtime and polled or dropped under a later runtime on the same
//! thread must not reach the later runtime's operation table or timer
//! queue (whose slots start over at the same indices).

// The runtimes hand their in-flight futures out on purpose.
#![allow(clippy::async_yields_async)]

use std::future::Future;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use seastar_core::{BackendKind, io, timer};

type Boxed<T> = Pin<Box<dyn Future<Output = T>>>;

/// Polls `f` once with a waker that does nothing.
fn poll_once<T>(f: &mut Boxed<T>) -> Poll<T> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    f.as_mut().poll(&mut cx)
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn an_op_kept_past_its_runtime_does_not_touch_the_next_runtimes_ops() {
    let (a_mine, a_peer) = UnixStream::pair().unwrap();
    a_mine.set_nonblocking(true).unwrap();
    let a_fd = a_mine.as_raw_fd();
    // Runtime A starts a receive (slot 0 of its table) and ends with it
    // still in flight.
    let (stale, a_backend) = seastar_core::block_on(async move {
        let mut f: Boxed<_> = Box::pin(io::recv(a_fd, Vec::with_capacity(16)));
        assert!(poll_once(&mut f).is_pending());
        (f, seastar_core::runtime::backend())
    });

    let (b_mine, mut b_peer) = UnixStream::pair().unwrap();
    b_mine.set_nonblocking(true).unwrap();
    let b_fd = b_mine.as_raw_fd();
    let got = seastar_core::block_on(async move {
        let mut stale = stale;
        // Runtime B's own receive, most likely in the same slot index.
        let mut mine: Boxed<_> = Box::pin(io::recv(b_fd, Vec::with_capacity(16)));
        assert!(poll_once(&mut mine).is_pending());
        if a_backend == BackendKind::IoUring {
            let p = catch_unwind(AssertUnwindSafe(|| poll_once(&mut stale)))
                .expect_err("a stale operation panics when polled");
            let msg = panic_message(p);
            assert!(msg.contains("other than the one that started it"), "{msg}");
        }
        // Dropped here, it must not abandon (cancel) B's operation.
        drop(stale);
        std::io::Write::write_all(&mut b_peer, b"from b").unwrap();
        let (n, buf) = mine.await;
        buf[..n.unwrap()].to_vec()
    });
    assert_eq!(got, b"from b");
    drop((a_mine, a_peer, b_mine));
}

#[test]
fn a_sleep_kept_past_its_runtime_does_not_cancel_the_next_runtimes_timer() {
    let stale = seastar_core::block_on(async {
        let mut s: Boxed<()> = Box::pin(timer::sleep(Duration::from_secs(3600)));
        assert!(poll_once(&mut s).is_pending());
        s
    });
    seastar_core::block_on(async move {
        let mut stale = stale;
        // B arms its first timer: the same slot and sequence as A's.
        let mut mine: Boxed<()> = Box::pin(timer::sleep(Duration::from_secs(3600)));
        assert!(poll_once(&mut mine).is_pending());
        let p = catch_unwind(AssertUnwindSafe(|| poll_once(&mut stale)))
            .expect_err("a stale sleep panics when polled");
        let msg = panic_message(p);
        assert!(msg.contains("other than the one that armed it"), "{msg}");
        drop(stale);
        // B's timer is still armed: not fired, not cancelled.
        assert!(poll_once(&mut mine).is_pending());
        // And a short one still fires.
        timer::sleep(Duration::from_millis(1)).await;
    });
}
