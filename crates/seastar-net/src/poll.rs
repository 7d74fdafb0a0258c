//! Poll-style reads and writes on top of completion-style I/O, for the
//! ecosystem's `poll_read`/`poll_write` traits (hyper, futures-io).
//!
//! A completion-based socket cannot read straight into a caller's borrowed
//! buffer: the buffer must outlive a future the caller may drop. So reads go
//! into an internal buffer (one copy out to the caller), and writes copy
//! the caller's bytes into an internal buffer and report them accepted at
//! once while the send runs behind (write-behind). A failed background
//! write is reported by the next `poll_write`, `poll_flush` or
//! `poll_shutdown`; `poll_flush` completes when every accepted byte is sent.
//!
//! A send behind is kept as a [`SendBehind`] and polled quietly: its
//! completion wakes the task only if something is left to do (a short send
//! to continue, an error), and the next call on the stream, a read
//! included, collects it. So a connection that wrote a response is not
//! polled again just to learn that the send went well.
//!
//! An idle connection holds no buffer: receives are pooled
//! ([`PooledRecv`]: the kernel, or the epoll path, picks a shard buffer
//! only when bytes arrive, and it goes back once they are handed out), and
//! a write buffer goes back to the shard's pool when its send completes.
//! So 10,000 idle connections cost their state, not 10,000 buffers. One
//! exception while a connection is busy: the buffer of the last small send
//! (under [`SPARE_MAX`], not a pooled one) is kept as a spare for the
//! next write, so a connection answering request after request allocates
//! no buffer per answer (a `malloc` and a `free`, about 150 instructions,
//! callgrind); `poll_flush` and `poll_shutdown` let it go, which a server
//! does before it leaves a connection at rest.
//!
//! [`poll_write_owned`](PollIo::poll_write_owned) sends a caller's `Vec`
//! without copying it and hands back the spare in its place: a caller
//! that buffers its own writes (seastar-http's coalescing writer) and this
//! state then pass two buffers back and forth, with no copy and no
//! allocation per write.
//!
//! The state is allocated on first use, so streams that only use the
//! owned-buffer API pay one pointer for it.

use std::fmt;
use std::io;
use std::task::{Context, Poll, ready};

use seastar_core::io::{PooledBuf, PooledRecv, pool};

use crate::SendBehind;
use crate::fd::SockIo;

/// Most bytes accepted by one `poll_write` while a send runs behind.
const WRITE_MAX: usize = 64 * 1024;
/// Writes under this size are copied into a buffer of their own size
/// rather than a pooled one (see `poll_write_vectored`).
const SMALL_WRITE: usize = 2048;
/// Most capacity a finished send's buffer may have to be kept as the
/// spare for the next write (see the module docs).
const SPARE_MAX: usize = 64 * 1024;

/// Poll-style state of one socket.
#[derive(Default)]
pub(crate) struct PollIo {
    state: Option<Box<State>>,
}

impl fmt::Debug for PollIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollIo")
            .field("active", &self.state.is_some())
            .finish()
    }
}

#[derive(Default)]
struct State {
    /// Received bytes not yet handed out are `rbuf[rpos..]`.
    rbuf: Option<PooledBuf>,
    rpos: usize,
    reading: Option<PooledRecv>,
    /// The last receive was short (the socket's queue was empty).
    drained: bool,
    writing: Option<SendBehind<Vec<u8>>>,
    /// The error of a send behind, collected by a read, for the next
    /// write, flush or shutdown to report.
    werr: Option<io::Error>,
    shut: bool,
    /// The buffer of a finished send, empty, for the next write (no
    /// capacity when there is none).
    spare: Vec<u8>,
}

impl State {
    /// Polls the send behind, if any: quietly (see the module docs), or
    /// waiting for it (`wait`), when a write needs the buffer or a flush
    /// needs every byte sent.
    fn poll_send(&mut self, cx: &mut Context<'_>, wait: bool) -> Poll<()> {
        let Some(op) = self.writing.as_mut() else {
            return Poll::Ready(());
        };
        let (res, buf) = ready!(if wait { op.poll(cx) } else { op.poll_quiet(cx) });
        self.writing = None;
        self.recycle(buf);
        if let Err(e) = res {
            self.werr = Some(e);
        }
        Poll::Ready(())
    }

    /// Keeps a finished send's buffer as the spare if it is a small one
    /// of its own (a pooled buffer goes back to the pool).
    fn recycle(&mut self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if self.spare.capacity() == 0 && cap != pool::BUF_SIZE && cap <= SPARE_MAX {
            buf.clear();
            self.spare = buf;
        } else {
            pool::give(buf);
        }
    }

    /// A buffer for a write of `total` bytes: the spare if it is large
    /// enough, else one of that size (small) or a pooled one.
    fn write_buf(&mut self, total: usize) -> Vec<u8> {
        if self.spare.capacity() >= total.min(WRITE_MAX) {
            std::mem::take(&mut self.spare)
        } else if total < SMALL_WRITE {
            Vec::with_capacity(total)
        } else {
            pool::take()
        }
    }
}

impl PollIo {
    fn state(&mut self) -> &mut State {
        self.state.get_or_insert_with(Box::default)
    }

    /// Whether received bytes wait here, or a receive is in flight (a
    /// caller that now reads the socket another way must drain this first).
    #[cfg(feature = "tls")]
    pub(crate) fn has_read_state(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|st| st.reading.is_some() || st.rbuf.is_some())
    }

    /// The buffered received bytes, reading more if there are none; an
    /// empty slice is end of stream. Follow with [`consume`](Self::consume).
    pub(crate) fn poll_fill(
        &mut self,
        io: SockIo<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<&[u8]>> {
        let st = self.state();
        // Collects a finished send behind, or continues a short one (whose
        // completion woke the task: a reader, hyper when idle, is polled).
        let _ = st.poll_send(cx, false);
        let buffered = st.rbuf.as_ref().map_or(0, |b| b.len() - st.rpos);
        if buffered == 0 {
            // Everything handed out: the buffer goes back before waiting.
            st.rbuf = None;
            st.rpos = 0;
            let op = st
                .reading
                .get_or_insert_with(|| PooledRecv::start(io.fd, st.drained));
            let res = ready!(op.poll(cx));
            st.reading = None;
            let (buf, drained) = res?;
            io.meter.received(buf.len());
            st.drained = drained;
            st.rbuf = Some(buf);
        }
        let b = st.rbuf.as_ref().expect("read buffer");
        Poll::Ready(Ok(&b[st.rpos..]))
    }

    /// Marks `n` bytes returned by [`poll_fill`](Self::poll_fill) as used.
    pub(crate) fn consume(&mut self, n: usize) {
        let st = self.state();
        let len = st.rbuf.as_ref().map_or(0, |b| b.len());
        st.rpos = (st.rpos + n).min(len);
        if st.rpos == len {
            // All handed out: the buffer goes back to the shard now.
            st.rbuf = None;
            st.rpos = 0;
        }
    }

    /// Copies into `dst` (one copy from the internal buffer).
    pub(crate) fn poll_read(
        &mut self,
        io: SockIo<'_>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let data = ready!(self.poll_fill(io, cx))?;
        let n = data.len().min(dst.len());
        dst[..n].copy_from_slice(&data[..n]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }

    /// Waits for the background send, if any; its error, if it failed.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let st = self.state();
        ready!(st.poll_send(cx, true));
        match st.werr.take() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Accepts up to 64 KiB of `bufs` (copied) and starts sending them.
    pub(crate) fn poll_write_vectored(
        &mut self,
        io: SockIo<'_>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_idle(cx))?;
        let st = self.state();
        if st.shut {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        // A small write gets a buffer of its own size (or the spare): on
        // io_uring a send behind is collected by the next call on the
        // stream, so an idle connection holds its last one, and a small
        // allocation costs it the bytes, where a pooled buffer would cost
        // a whole page.
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut buf = st.write_buf(total);
        for b in bufs {
            let room = WRITE_MAX - buf.len();
            if room == 0 {
                break;
            }
            buf.extend_from_slice(&b[..b.len().min(room)]);
        }
        let n = buf.len();
        if n == 0 {
            st.recycle(buf);
            return Poll::Ready(Ok(0));
        }
        // Counted as it starts (see `SocketStream::send_behind`).
        io.meter.sent(n);
        st.writing = Some(SendBehind::start(io.fd, buf));
        // Sent already on epoll; on io_uring, registers a quiet wake.
        let _ = st.poll_send(cx, false);
        match st.werr.take() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Ready(Ok(n)),
        }
    }

    pub(crate) fn poll_write(
        &mut self,
        io: SockIo<'_>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(io, cx, &[io::IoSlice::new(src)])
    }

    /// Takes all of `buf` (no copy) and starts sending it; `buf` is left
    /// empty, holding the spare buffer if there is one (see the module
    /// docs). Waits first for an earlier send, as `poll_write_vectored`.
    pub(crate) fn poll_write_owned(
        &mut self,
        io: SockIo<'_>,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_idle(cx))?;
        let st = self.state();
        if st.shut {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let out = std::mem::replace(buf, std::mem::take(&mut st.spare));
        io.meter.sent(out.len());
        st.writing = Some(SendBehind::start(io.fd, out));
        let _ = st.poll_send(cx, false);
        match st.werr.take() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Completes once every accepted byte is sent; lets the spare buffer go.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_idle(cx))?;
        self.state().spare = Vec::new();
        Poll::Ready(Ok(()))
    }

    /// Flushes, then shuts the write side down (the peer reads end of stream).
    pub(crate) fn poll_shutdown(
        &mut self,
        io: SockIo<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_idle(cx))?;
        let st = self.state();
        st.spare = Vec::new();
        if !st.shut {
            st.shut = true;
            match crate::sys::shutdown(io.fd, libc::SHUT_WR) {
                Err(e) if e.raw_os_error() != Some(libc::ENOTCONN) => return Poll::Ready(Err(e)),
                _ => {}
            }
        }
        Poll::Ready(Ok(()))
    }
}
