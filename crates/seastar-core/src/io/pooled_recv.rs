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

use io_uring::{opcode, squeue, types};

use super::op::{Op, ReadyWait, cqe_result};
use super::pool;
use super::socket::RECVSEND_POLL_FIRST;
use super::stream_recv::StreamRecv;
use crate::reactor::buf_ring::{self, BGID, RingMem};
use crate::reactor::{self, Driver, Interest};

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
    fn heap(buf: Vec<u8>) -> PooledBuf {
        PooledBuf {
            inner: Inner::Heap(buf),
            _shard: PhantomData,
        }
    }

    /// End of stream: no bytes.
    fn eof() -> PooledBuf {
        PooledBuf::heap(Vec::new())
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
                let _ = reactor::try_with(|cx| match cx.driver.try_borrow_mut() {
                    Ok(mut driver) => {
                        if let Driver::Uring(u) = &mut *driver
                            && let Some(r) = u.buf_ring.as_mut()
                            && Rc::ptr_eq(r.mem(), &mem)
                        {
                            r.recycle(bid);
                        }
                    }
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
    /// io_uring: the receive arms its poll first (after a short one).
    poll_first: bool,
    /// io_uring: the shard ring's memory and buffer size, taken at start
    /// (a completion then needs no second look at the reactor).
    ring: Option<(Rc<RingMem>, usize)>,
    state: State,
}

enum State {
    /// io_uring: a buffer-selecting receive in flight.
    Ring(Op<()>),
    /// Waiting for readability, holding nothing.
    Readable(ReadyWait),
    /// io_uring without a ring buffer: a receive into a pooled buffer.
    Own(StreamRecv<Vec<u8>>),
    Done(io::Result<(PooledBuf, bool)>),
    Taken,
}

/// What a receive on this shard starts with.
enum Start {
    Ring {
        poll_first: bool,
        mem: Rc<RingMem>,
        size: usize,
    },
    Own {
        poll_first: bool,
    },
    Epoll,
}

impl PooledRecv {
    /// Starts receiving on `fd`; `drained`: the previous receive on it was
    /// short (its queue was empty), so this one waits for readability first.
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub fn start(fd: RawFd, drained: bool) -> PooledRecv {
        let start = reactor::with(|s| match &mut *s.driver.borrow_mut() {
            Driver::Uring(u) => {
                let poll_first = drained && u.features.recv_poll_first;
                match u.buf_ring() {
                    Some(r) => Start::Ring {
                        poll_first,
                        mem: r.mem().clone(),
                        size: r.buf_size(),
                    },
                    None => Start::Own { poll_first },
                }
            }
            Driver::Epoll(_) => Start::Epoll,
        });
        let mut r = PooledRecv {
            fd,
            poll_first: false,
            ring: None,
            state: State::Taken,
        };
        r.state = match start {
            Start::Ring {
                poll_first,
                mem,
                size,
            } => {
                r.poll_first = poll_first;
                r.ring = Some((mem, size));
                State::Ring(r.submit())
            }
            Start::Own { poll_first } => {
                State::Own(StreamRecv::start(fd, pool::take(), poll_first))
            }
            // Readiness was cleared by the short receive, right after its
            // syscall, so an edge since then is not lost.
            Start::Epoll if drained => State::Readable(ReadyWait::Epoll),
            Start::Epoll => recv_now(fd),
        };
        r
    }

    /// Completes with the received bytes (empty: end of stream) and
    /// whether the receive was short (the next `start`'s `drained`).
    ///
    /// # Panics
    ///
    /// If polled again after it completed.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(PooledBuf, bool)>> {
        loop {
            let next = match &mut self.state {
                State::Ring(op) => {
                    let (res, flags, ()) = ready!(op.poll_cqe(cx, None));
                    self.received_ring(res, flags)
                }
                State::Readable(wait) => {
                    let ready = ready!(wait.poll(self.fd, Interest::Read, cx));
                    let uring = matches!(wait, ReadyWait::Uring(_));
                    match ready {
                        Ok(()) if uring => State::Ring(self.submit()),
                        Ok(()) => recv_now(self.fd),
                        Err(e) => State::Done(Err(e)),
                    }
                }
                State::Own(r) => {
                    let (res, mut buf) = ready!(r.poll(cx));
                    State::Done(res.map(|(n, drained)| {
                        buf.truncate(n);
                        if n == 0 {
                            pool::give(buf);
                            (PooledBuf::eof(), false)
                        } else {
                            (PooledBuf::heap(buf), drained)
                        }
                    }))
                }
                State::Done(_) => {
                    let State::Done(res) = std::mem::replace(&mut self.state, State::Taken) else {
                        unreachable!()
                    };
                    return Poll::Ready(res);
                }
                State::Taken => panic!("PooledRecv polled after completion"),
            };
            self.set_state(next);
        }
    }

    /// Moves to `next`; a spent operation left behind is forgotten (it
    /// owns nothing), as `StreamRecv` does.
    fn set_state(&mut self, next: State) {
        match std::mem::replace(&mut self.state, next) {
            State::Ring(op) if op.is_spent() => std::mem::forget(op),
            old => drop(old),
        }
    }

    /// io_uring: submits a receive that takes its buffer from the ring.
    fn submit(&mut self) -> Op<()> {
        let size = self.ring.as_ref().map_or(pool::BUF_SIZE, |(_, size)| *size);
        let ioprio = if self.poll_first {
            RECVSEND_POLL_FIRST
        } else {
            0
        };
        let entry = opcode::Recv::new(types::Fd(self.fd), std::ptr::null_mut(), size as u32)
            .buf_group(BGID)
            .ioprio(ioprio)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT);
        // SAFETY: the entry points at no memory of its own; the buffer the
        // kernel picks belongs to the shard's ring, which outlives every
        // operation in flight (`reactor::buf_ring`).
        unsafe { Op::submit(entry, ()) }
    }

    /// io_uring: the next state after the receive's completion.
    fn received_ring(&mut self, res: i32, flags: u32) -> State {
        let picked = io_uring::cqueue::buffer_select(flags);
        if res > 0 {
            let Some(bid) = picked else {
                return State::Done(Err(io::Error::other("receive completed without a buffer")));
            };
            let n = res as usize;
            let Some((mem, size)) = self.ring.take() else {
                unreachable!("a ring buffer without a ring")
            };
            let buf = PooledBuf {
                inner: Inner::Ring {
                    mem,
                    bid,
                    size,
                    len: n.min(size),
                },
                _shard: PhantomData,
            };
            return State::Done(Ok((buf, n < size)));
        }
        if let Some(bid) = picked {
            recycle(bid);
        }
        match res {
            0 => State::Done(Ok((PooledBuf::eof(), false))),
            r if r == -libc::ENOBUFS => {
                // Every ring buffer is lent out: this receive uses its own.
                State::Own(StreamRecv::start(self.fd, pool::take(), self.poll_first))
            }
            r if r == -libc::EAGAIN => State::Readable(ReadyWait::uring(self.fd, Interest::Read)),
            r if r == -libc::EINTR => State::Ring(self.submit()),
            // Older than 5.19: the flag is refused; off for the shard.
            r if r == -libc::EINVAL && self.poll_first => {
                reactor::with_uring_features(|f| f.recv_poll_first = false);
                self.poll_first = false;
                State::Ring(self.submit())
            }
            r => State::Done(cqe_result(r).map(|_| (PooledBuf::eof(), false))),
        }
    }
}

/// Puts ring buffer `bid` back.
fn recycle(bid: u16) {
    reactor::with(|s| {
        if let Driver::Uring(u) = &mut *s.driver.borrow_mut()
            && let Some(r) = u.buf_ring.as_mut()
        {
            r.recycle(bid);
        }
    });
}

/// Epoll: receives now into a pooled buffer, or gives it back and waits
/// for the next edge on `EAGAIN`.
fn recv_now(fd: RawFd) -> State {
    let mut buf = pool::take();
    let len = buf.capacity();
    loop {
        // SAFETY: `buf` has `len` writable bytes of spare capacity.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), len, libc::MSG_DONTWAIT) };
        if r >= 0 {
            let n = r as usize;
            if n == 0 {
                pool::give(buf);
                return State::Done(Ok((PooledBuf::eof(), false)));
            }
            if n < len {
                reactor::clear_ready_registered(fd, Interest::Read);
            }
            // SAFETY: the kernel initialised the first `n <= len` bytes.
            unsafe { buf.set_len(n) };
            return State::Done(Ok((PooledBuf::heap(buf), n < len)));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => {
                pool::give(buf);
                reactor::clear_ready(fd, Interest::Read);
                return State::Readable(ReadyWait::Epoll);
            }
            _ => {
                pool::give(buf);
                return State::Done(Err(e));
            }
        }
    }
}

impl std::fmt::Debug for PooledRecv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledRecv")
            .field("fd", &self.fd)
            .field("done", &matches!(self.state, State::Done(_)))
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
