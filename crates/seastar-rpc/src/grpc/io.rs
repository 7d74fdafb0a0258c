//! A connection wrapper that makes hyper yield to the shard.
//!
//! hyper and h2 loop over their socket until it would block. Under tokio
//! the runtime's cooperative budget turns a socket Pending after a number
//! of operations, so a connection task that always finds more data still
//! yields; a shard has no such budget inside foreign code. Without this
//! wrapper an HTTP/2 connection flooded with requests kept its task
//! running for hundreds of milliseconds (the reactor's stall detector saw
//! it), starving the stream tasks it had just woken. The wrapper answers
//! `Pending` (after waking itself) whenever the shard's task quota is used
//! up ([`seastar_core::need_preempt`]).
//!
//! [`Watched`] also reports every read and write to the connection's
//! [`Activity`], which its watchdog uses for the first-bytes and idle
//! timeouts.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::rc::Rc;

use hyper::rt::{Read, ReadBufCursor, Write};

use super::activity::Activity;

/// `T` with a yield point at every read and write once the task quota is spent.
#[derive(Debug)]
pub(crate) struct Cooperative<T>(pub(crate) T);

fn yield_now(cx: &mut Context<'_>) -> bool {
    if seastar_core::need_preempt() {
        cx.waker().wake_by_ref();
        true
    } else {
        false
    }
}

impl<T: Read + Unpin> Read for Cooperative<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if yield_now(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Cooperative<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if yield_now(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if yield_now(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// A server connection's socket: [`Cooperative`], and every completed
/// read or write is reported to the connection's [`Activity`].
#[derive(Debug)]
pub(crate) struct Watched<T> {
    pub(crate) io: Cooperative<T>,
    pub(crate) activity: Rc<Activity>,
}

impl<T: Read + Unpin> Read for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            this.activity.on_read();
        }
        r
    }
}

impl<T: Write + Unpin> Write for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
        {
            this.activity.on_write();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
        {
            this.activity.on_write();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
