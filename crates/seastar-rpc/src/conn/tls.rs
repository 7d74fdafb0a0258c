//! One TLS session shared by a native connection's reader (frames in) and
//! the outbox's writer (frames out): two tasks on the client, one on the
//! server (which polls both sides from its connection task).
//!
//! A [`TlsStream`] is one session with `&mut` calls; here it sits in a
//! `RefCell` borrowed only inside a poll (never across an `.await`), and
//! every poll goes through a waker that wakes both tasks: the session
//! keeps one waker per socket operation, registered by whichever task
//! polled last, and either task's progress may depend on it (a reader's
//! receive also collects the writer's send in flight). A task woken for
//! the other's event polls once more and finds nothing to do.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker, ready};

use bytes::BytesMut;
use futures::task::AtomicWaker;
use seastar_net::tls::TlsStream;

/// The two tasks' wakers; waking it wakes both.
#[derive(Default)]
struct FanOut {
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Wake for FanOut {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.reader.wake();
        self.writer.wake();
    }
}

/// Which task polls.
#[derive(Clone, Copy)]
enum Side {
    Reader,
    Writer,
}

/// A TLS session polled by a reader task and a writer task.
pub(crate) struct SharedTls {
    stream: RefCell<TlsStream>,
    fan: Arc<FanOut>,
    waker: Waker,
}

impl SharedTls {
    pub(crate) fn new(stream: TlsStream) -> SharedTls {
        let fan = Arc::new(FanOut::default());
        SharedTls {
            stream: RefCell::new(stream),
            waker: Waker::from(fan.clone()),
            fan,
        }
    }

    /// Runs one poll of the session for `side`, under the shared waker.
    fn poll<R>(
        &self,
        side: Side,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut TlsStream, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        match side {
            Side::Reader => self.fan.reader.register(cx.waker()),
            Side::Writer => self.fan.writer.register(cx.waker()),
        }
        let mut shared_cx = Context::from_waker(&self.waker);
        f(&mut self.stream.borrow_mut(), &mut shared_cx)
    }

    /// Waits for plaintext and copies up to `max` bytes of it out with
    /// `put`; 0 at end of stream. The peer's close without `close_notify`
    /// (or our own read side shut at a stop) also reads as the end: the
    /// framing tells a cut-off frame from a clean end.
    async fn read_with(&self, max: usize, mut put: impl FnMut(&[u8])) -> io::Result<usize> {
        poll_fn(|cx| {
            self.poll(Side::Reader, cx, |s, cx| {
                let data = match ready!(s.poll_fill_buf(cx)) {
                    Ok(data) => data,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Poll::Ready(Ok(0));
                    }
                    Err(e) => return Poll::Ready(Err(e)),
                };
                let n = data.len().min(max);
                put(&data[..n]);
                s.consume(n);
                Poll::Ready(Ok(n))
            })
        })
        .await
    }

    /// Waits for bytes without holding a buffer meanwhile; returns them in
    /// a buffer of their size, empty at end of stream.
    pub(crate) async fn read_fresh(&self) -> io::Result<BytesMut> {
        let mut out = BytesMut::new();
        self.read_with(usize::MAX, |d| out.extend_from_slice(d))
            .await?;
        Ok(out)
    }

    /// Reads into `spare`'s capacity (from its start); `Ok(0)` at end of stream.
    pub(crate) async fn read(&self, mut spare: BytesMut) -> (io::Result<usize>, BytesMut) {
        spare.clear();
        let room = spare.capacity();
        let r = self.read_with(room, |d| spare.extend_from_slice(d)).await;
        (r, spare)
    }

    /// Poll-style write for the writer task: encrypts some of `src` and
    /// sends it behind (waiting first for the previous send).
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, src: &[u8]) -> Poll<io::Result<usize>> {
        self.poll(Side::Writer, cx, |s, cx| s.poll_write(cx, src))
    }

    /// Poll-style flush for the writer task: every byte written is sent.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll(Side::Writer, cx, |s, cx| s.poll_flush(cx))
    }

    /// Poll-style shutdown for the writer task: `close_notify`, flushed,
    /// then the socket's write side shut.
    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll(Side::Writer, cx, |s, cx| s.poll_shutdown(cx))
    }

    /// Encrypts and sends all of `data`, and waits until it is sent.
    pub(crate) async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = poll_fn(|cx| self.poll_write(cx, data)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            data = &data[n..];
        }
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Shuts the TCP socket under the session down (no `close_notify`:
    /// this ends the connection, as for a plain socket).
    pub(crate) fn shutdown_tcp(&self, how: Shutdown) -> io::Result<()> {
        // Never borrowed across an await: free unless a poll is unwinding.
        match self.stream.try_borrow() {
            Ok(s) => s.get_ref().shutdown(how),
            Err(_) => Ok(()),
        }
    }
}
