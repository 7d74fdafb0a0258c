//! [`StreamRecv`]: [`recv_stream`](super::recv_stream) as a value its
//! owner keeps and polls, for poll-style streams (hyper's `Read`,
//! futures-io), which would otherwise box the future once per receive.

use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use io_uring::{opcode, types};

use super::buf::IoBufMut;
use super::op::{Op, ReadyWait, cqe_result};
use super::socket::RECVSEND_POLL_FIRST;
use crate::BackendKind;
use crate::reactor::{self, Driver, Interest};

/// A receive on a stream socket, as [`recv_stream`](super::recv_stream)
/// does it (no doomed attempt after a short receive), started by
/// [`StreamRecv::start`] and driven by [`poll`](StreamRecv::poll).
///
/// Dropping it before it completes cancels the receive; on io_uring, bytes
/// that arrive before the cancellation lands may be lost with its buffer,
/// so keep it until it completes when the data matters.
///
/// ```
/// # seastar_core::block_on(async {
/// use std::os::fd::AsRawFd;
/// use seastar_core::io::StreamRecv;
///
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// b.set_nonblocking(true).unwrap();
/// std::io::Write::write_all(&mut &b, b"hi").unwrap();
/// let mut recv = StreamRecv::start(a.as_raw_fd(), vec![0u8; 16], false);
/// let (r, buf) = std::future::poll_fn(|cx| recv.poll(cx)).await;
/// let (n, drained) = r.unwrap();
/// assert_eq!((n, drained, &buf[..n]), (2, true, &b"hi"[..]));
/// # });
/// ```
pub struct StreamRecv<B: IoBufMut> {
    fd: RawFd,
    /// io_uring: the receive arms its poll first (after a short one).
    poll_first: bool,
    state: State<B>,
}

enum State<B: IoBufMut> {
    /// io_uring: the receive in flight.
    Receiving(Op<B>),
    /// Waiting for readability (io_uring: after `EAGAIN`, this poll;
    /// epoll: after `EAGAIN` or a short receive, the next edge).
    Readable(ReadyWait, B),
    /// Finished (`Ok(n)`: `n` bytes received), not yet handed out.
    Done(io::Result<usize>, B),
    Taken,
}

impl<B: IoBufMut> StreamRecv<B> {
    /// Starts receiving into `buf`; `drained`: the previous receive on `fd`
    /// was short (see [`recv_stream`](super::recv_stream)).
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub fn start(fd: RawFd, buf: B, drained: bool) -> StreamRecv<B> {
        let (kind, poll_first) = reactor::with(|s| match &*s.driver.borrow() {
            Driver::Uring(u) => (BackendKind::IoUring, drained && u.features.recv_poll_first),
            Driver::Epoll(_) => (BackendKind::Epoll, false),
        });
        let mut r = StreamRecv {
            fd,
            poll_first,
            state: State::Taken,
        };
        let state = match kind {
            BackendKind::IoUring => State::Receiving(r.submit(buf)),
            // Readiness was cleared by the short receive, right after its
            // syscall, so an edge since then is not lost.
            BackendKind::Epoll if drained => State::Readable(ReadyWait::Epoll, buf),
            BackendKind::Epoll => r.recv_now(buf),
        };
        r.set_state(state);
        r
    }

    /// Completes with the count received (`0`: end of stream) and whether
    /// the receive was short (the next `start`'s `drained`), and gives the
    /// buffer back (its first `n` bytes initialised).
    ///
    /// # Panics
    ///
    /// If polled again after it completed.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<(io::Result<(usize, bool)>, B)> {
        // Matched in place: a pending poll moves nothing.
        loop {
            let next = match &mut self.state {
                State::Receiving(op) => {
                    let (res, buf) = ready!(Pin::new(op).poll(cx));
                    self.received_io_uring(res, buf)
                }
                State::Readable(wait, _) => {
                    let ready = ready!(wait.poll(self.fd, Interest::Read, cx));
                    let uring = matches!(wait, ReadyWait::Uring(_));
                    let buf = self.take_buf();
                    match ready {
                        Ok(()) if uring => State::Receiving(self.submit(buf)),
                        Ok(()) => self.recv_now(buf),
                        Err(e) => State::Done(Err(e), buf),
                    }
                }
                State::Done(..) => {
                    let State::Done(res, mut buf) =
                        std::mem::replace(&mut self.state, State::Taken)
                    else {
                        unreachable!()
                    };
                    let len = buf.bytes_total();
                    return Poll::Ready(match res {
                        Ok(n) => {
                            // SAFETY: the kernel wrote `n <= len` bytes at
                            // the start of `buf`.
                            unsafe { buf.set_init(n) };
                            (Ok((n, n > 0 && n < len)), buf)
                        }
                        Err(e) => (Err(e), buf),
                    });
                }
                State::Taken => panic!("StreamRecv polled after completion"),
            };
            self.set_state(next);
        }
    }

    /// Moves to state `next`. The state left behind is usually a spent
    /// operation or `Taken`, owning nothing: it is forgotten rather than
    /// handed to the drop glue, an out-of-line call matching every variant
    /// (callgrind: about 24 instructions per transition, two per request).
    #[inline]
    fn set_state(&mut self, next: State<B>) {
        match std::mem::replace(&mut self.state, next) {
            old @ State::Taken => std::mem::forget(old),
            State::Receiving(op) if op.is_spent() => std::mem::forget(op),
            old => drop(old),
        }
    }

    /// The buffer of a `Readable` state, leaving `Taken`.
    fn take_buf(&mut self) -> B {
        match std::mem::replace(&mut self.state, State::Taken) {
            State::Readable(_, buf) => buf,
            _ => unreachable!("take_buf outside Readable"),
        }
    }

    /// io_uring: submits the receive.
    fn submit(&mut self, mut buf: B) -> Op<B> {
        let (ptr, len) = (buf.stable_mut_ptr(), buf.bytes_total());
        let ioprio = if self.poll_first {
            RECVSEND_POLL_FIRST
        } else {
            0
        };
        let entry = opcode::Recv::new(types::Fd(self.fd), ptr, len.min(u32::MAX as usize) as u32)
            .ioprio(ioprio)
            .build();
        // SAFETY: `ptr..ptr+len` is heap memory owned by `buf`, which the Op owns.
        unsafe { Op::submit(entry, buf) }
    }

    /// io_uring: the next state after the receive's completion `res`.
    fn received_io_uring(&mut self, res: i32, buf: B) -> State<B> {
        match res {
            r if r == -libc::EAGAIN => {
                State::Readable(ReadyWait::uring(self.fd, Interest::Read), buf)
            }
            r if r == -libc::EINTR => State::Receiving(self.submit(buf)),
            // Older than 5.19: the flag is refused; off for the shard.
            r if r == -libc::EINVAL && self.poll_first => {
                reactor::with_uring_features(|f| f.recv_poll_first = false);
                self.poll_first = false;
                State::Receiving(self.submit(buf))
            }
            r => State::Done(cqe_result(r), buf),
        }
    }

    /// Epoll: receives now, or waits for the next edge on `EAGAIN`.
    fn recv_now(&mut self, mut buf: B) -> State<B> {
        let (ptr, len) = (buf.stable_mut_ptr(), buf.bytes_total());
        loop {
            // SAFETY: `ptr` has `len` writable bytes owned by `buf`.
            let r = unsafe { libc::recv(self.fd, ptr.cast(), len, libc::MSG_DONTWAIT) };
            if r >= 0 {
                let n = r as usize;
                if n > 0 && n < len {
                    reactor::clear_ready_registered(self.fd, Interest::Read);
                }
                return State::Done(Ok(n), buf);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => {
                    reactor::clear_ready(self.fd, Interest::Read);
                    return State::Readable(ReadyWait::Epoll, buf);
                }
                _ => return State::Done(Err(e), buf),
            }
        }
    }
}

impl<B: IoBufMut> std::fmt::Debug for StreamRecv<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRecv")
            .field("fd", &self.fd)
            .field("done", &matches!(self.state, State::Done(..)))
            .finish()
    }
}
