//! [`PooledRecv`]: a receive on a stream socket that holds no buffer while
//! it waits, and its result, a [`PooledBuf`] lent by the shard.
//!
//! An idle connection should cost a few hundred bytes, not a receive
//! buffer. So the buffer is chosen only when bytes arrive:
//!
//! - **io_uring**: the receive names the shard's provided-buffer ring
//!   (`IOSQE_BUFFER_SELECT`, see `reactor::buf_ring`); the kernel picks a
//!   buffer at arrival. One submission, as a plain receive. If the ring is
//!   empty (`ENOBUFS`: every buffer lent out) or the kernel has none
//!   (older than 5.19), that receive falls back to a pooled buffer of its
//!   own, held while it waits.
//! - **epoll**: a non-blocking `recv` into a buffer from the shard's
//!   [`pool`](super::pool) when the socket is readable; on `EAGAIN` the
//!   buffer goes back and the receive waits for the next edge with nothing.
//!
//! A [`PooledBuf`] goes back to the ring or the pool when dropped, so
//! keep it only while parsing; copy out what must outlive that.

use std::io;
use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use super::op::multi::MultiOp;
use super::op::{Op, Received, RecvMulti, RecvRing, RecvStream, is_no_buffers};
use super::pool;
use crate::reactor;
use crate::reactor::buf_ring::{self, RingMem};

/// Received bytes in a buffer lent by the shard (its provided-buffer ring
/// or its buffer pool); given back when dropped. An empty one is end of
/// stream. Not `Send`: it belongs to the shard that received it.
///
/// ```
/// # seastar_core::block_on(async {
/// use std::os::fd::AsRawFd;
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// b.set_nonblocking(true).unwrap();
/// std::io::Write::write_all(&mut &b, b"hello").unwrap();
/// let (buf, _drained) = seastar_core::io::recv_pooled(a.as_raw_fd(), false).await.unwrap();
/// assert_eq!(&buf[..], b"hello");
/// drop(b);
/// let (eof, _) = seastar_core::io::recv_pooled(a.as_raw_fd(), true).await.unwrap();
/// assert!(eof.is_empty());
/// # });
/// ```
pub struct PooledBuf {
    inner: Inner,
    _shard: PhantomData<Rc<()>>,
}

enum Inner {
    Ring {
        mem: Rc<RingMem>,
        bid: u16,
        size: usize,
        len: usize,
    },
    Heap(Vec<u8>),
}

impl PooledBuf {
    /// Bytes in pooled buffer `buf`.
    pub(crate) fn heap(buf: Vec<u8>) -> PooledBuf {
        PooledBuf {
            inner: Inner::Heap(buf),
            _shard: PhantomData,
        }
    }

    /// Whether the bytes are in one of the ring's buffers.
    #[cfg(test)]
    pub(crate) fn is_ring(&self) -> bool {
        matches!(self.inner, Inner::Ring { .. })
    }

    /// End of stream: no bytes.
    pub(crate) fn eof() -> PooledBuf {
        PooledBuf::heap(Vec::new())
    }

    /// The first `len` bytes of handed-out buffer `bid` of ring `mem`
    /// (buffers of `size` bytes), which the kernel filled.
    pub(crate) fn ring(mem: Rc<RingMem>, bid: u16, size: usize, len: usize) -> PooledBuf {
        PooledBuf {
            inner: Inner::Ring {
                mem,
                bid,
                size,
                len,
            },
            _shard: PhantomData,
        }
    }
}

impl Deref for PooledBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.inner {
            Inner::Ring {
                mem,
                bid,
                size,
                len,
            } => {
                // SAFETY: a `Ring` buffer is handed out (the kernel filled
                // its first `len` bytes and will not write it until this
                // value's drop recycles it).
                unsafe { mem.slice(*bid, *size, *len) }
            }
            Inner::Heap(v) => v,
        }
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.inner, Inner::Heap(Vec::new())) {
            Inner::Ring { mem, bid, .. } => {
                let _ = reactor::try_with(|cx| match cx.driver().try_borrow_mut() {
                    Ok(mut driver) => driver.recycle(&mem, bid),
                    // Dropped by the reactor itself (a send of this buffer
                    // abandoned, its completion reaped): recycled later.
                    Err(_) => buf_ring::defer_recycle(mem, bid),
                });
            }
            Inner::Heap(v) => pool::give(v),
        }
    }
}

// SAFETY: the bytes live in the ring's heap block (kept alive by the `Rc`
// this value holds) or in a `Vec`'s heap buffer: neither moves when the
// value moves, and nothing writes them while the value lives (a ring
// buffer is handed out until this value's drop).
unsafe impl super::IoBuf for PooledBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.len()
    }
}

impl std::fmt::Debug for PooledBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBuf")
            .field("len", &self.len())
            .finish()
    }
}

/// A receive that holds no buffer while it waits (module docs), started
/// by [`PooledRecv::start`] and driven by [`poll`](PooledRecv::poll), for
/// poll-style streams; [`recv_pooled`] is its `async` form.
///
/// Dropping it before it completes cancels the receive; a buffer the
/// kernel picked meanwhile goes back to the ring.
pub struct PooledRecv {
    fd: RawFd,
    /// The previous receive was short.
    drained: bool,
    state: State,
}

enum State {
    /// A receive from the ring (io_uring) or, once readable, into a pooled
    /// buffer (epoll).
    Ring(Op<RecvRing>),
    /// io_uring without a ring buffer: a receive into a pooled buffer.
    Own(Op<RecvStream<Vec<u8>>>),
}

impl PooledRecv {
    /// Starts receiving on `fd`; `drained`: the previous receive on it was
    /// short (its queue was empty), so this one waits for readability first.
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub fn start(fd: RawFd, drained: bool) -> PooledRecv {
        // One look at the reactor: the backend, the flag, the ring.
        let (uring, poll_first, ring) = reactor::with(|s| {
            let mut d = s.driver().borrow_mut();
            let features = d.uring_features().map(|f| f.recv_poll_first);
            (
                features.is_some(),
                drained && features == Some(true),
                d.buf_ring(),
            )
        });
        let state = match ring {
            Some(ring) => State::Ring(Op::new(RecvRing::new(fd, drained, poll_first, Some(ring)))),
            None if uring => State::Own(Op::new(RecvStream::new(fd, pool::take(), drained))),
            None => State::Ring(Op::new(RecvRing::new(fd, drained, false, None))),
        };
        PooledRecv { fd, drained, state }
    }

    /// A receive into a pooled buffer of its own (the ring had none left).
    fn own(fd: RawFd, drained: bool) -> PooledRecv {
        PooledRecv {
            fd,
            drained,
            state: State::Own(Op::new(RecvStream::new(fd, pool::take(), drained))),
        }
    }

    /// Completes with the received bytes (empty: end of stream) and
    /// whether the receive was short (the next `start`'s `drained`).
    ///
    /// # Panics
    ///
    /// If polled again after it completed.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(PooledBuf, bool)>> {
        loop {
            match &mut self.state {
                State::Ring(op) => match ready!(op.poll_op(cx)) {
                    // Every ring buffer is lent out: this receive uses its own.
                    Err(e) if is_no_buffers(&e) => *self = PooledRecv::own(self.fd, self.drained),
                    res => return Poll::Ready(res),
                },
                State::Own(op) => {
                    let (res, mut buf) = ready!(op.poll_op(cx));
                    return Poll::Ready(res.map(|(n, drained)| {
                        buf.truncate(n);
                        if n == 0 {
                            pool::give(buf);
                            (PooledBuf::eof(), false)
                        } else {
                            (PooledBuf::heap(buf), drained)
                        }
                    }));
                }
            }
        }
    }
}

impl std::fmt::Debug for PooledRecv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let done = match &self.state {
            State::Ring(op) => op.is_done(),
            State::Own(op) => op.is_done(),
        };
        f.debug_struct("PooledRecv")
            .field("fd", &self.fd)
            .field("done", &done)
            .finish()
    }
}

/// Receives on the stream socket `fd` into a buffer lent by the shard,
/// holding none while it waits (module docs); `drained`: the previous
/// receive was short. Returns the bytes (empty: end of stream) and whether
/// this receive was short.
pub async fn recv_pooled(fd: RawFd, drained: bool) -> io::Result<(PooledBuf, bool)> {
    let mut r = PooledRecv::start(fd, drained);
    std::future::poll_fn(|cx| r.poll(cx)).await
}

/// Every receive on a stream socket as a stream of [`PooledBuf`]s: on
/// io_uring one **multishot** receive from the shard's provided-buffer
/// ring (a single submission, a completion per chunk the peer sends,
/// re-armed when the kernel ends it); elsewhere, or when the kernel
/// refuses it (older than 6.0) or `SEASTAR_URING_MULTISHOT_RECV=0`, one
/// [`PooledRecv`] after another. When the ring runs dry the kernel ends
/// the multishot receive (`ENOBUFS`); the next chunk then goes into a
/// pooled buffer of its own and the receive is re-armed after it.
///
/// While armed, the kernel receives ahead of the reader into ring
/// buffers, at most the ring's size across the shard; dropping the stream
/// cancels the receive and gives buffers received ahead back.
///
/// ```
/// # seastar_core::block_on(async {
/// use std::os::fd::AsRawFd;
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// b.set_nonblocking(true).unwrap();
/// let mut stream = seastar_core::io::PooledRecvStream::new(a.as_raw_fd());
/// std::io::Write::write_all(&mut &b, b"one").unwrap();
/// assert_eq!(&stream.next().await.unwrap()[..], b"one");
/// drop(b);
/// assert!(stream.next().await.unwrap().is_empty());
/// # });
/// ```
pub struct PooledRecvStream {
    fd: RawFd,
    /// The multishot receive (io_uring, when the shard has one).
    multi: Option<MultiOp<RecvMulti>>,
    /// A single-shot receive in flight instead.
    single: Option<PooledRecv>,
    /// The last single-shot receive was short.
    drained: bool,
}

impl PooledRecvStream {
    /// The receives of stream socket `fd` (non-blocking, outliving this).
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub fn new(fd: RawFd) -> PooledRecvStream {
        let ring = reactor::with(|s| {
            let mut d = s.driver().borrow_mut();
            let on = d.uring_features().is_some_and(|f| f.multishot_recv);
            if on { d.buf_ring() } else { None }
        });
        PooledRecvStream {
            fd,
            multi: ring.map(|(mem, size)| MultiOp::new(RecvMulti::new(fd, mem, size))),
            single: None,
            drained: false,
        }
    }

    /// The next bytes received (empty: end of stream).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<PooledBuf>> {
        loop {
            if let Some(r) = &mut self.single {
                let res = ready!(r.poll(cx));
                self.single = None;
                return Poll::Ready(res.map(|(buf, drained)| {
                    self.drained = drained;
                    buf
                }));
            }
            let item: Option<Received> = match &mut self.multi {
                Some(m) => ready!(m.poll_next(cx)),
                None => None,
            };
            match item {
                Some(Err(e)) if is_no_buffers(&e) => {
                    self.single = Some(PooledRecv::own(self.fd, false));
                }
                Some(res) => return Poll::Ready(res.map(|(buf, _)| buf)),
                None => {
                    // No multishot on this shard (any more): single-shot.
                    self.multi = None;
                    self.single = Some(PooledRecv::start(self.fd, self.drained));
                }
            }
        }
    }

    /// The next bytes received (empty: end of stream).
    pub async fn next(&mut self) -> io::Result<PooledBuf> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl std::fmt::Debug for PooledRecvStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledRecvStream")
            .field("fd", &self.fd)
            .field("multishot", &self.multi.is_some())
            .finish()
    }
}
