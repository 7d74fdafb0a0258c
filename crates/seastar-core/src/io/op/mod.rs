//! One trait per I/O operation ([`Operation`]) and the one future that
//! drives any of them on either backend ([`Op`]); multishot operations in
//! [`multi`].
//!
//! Each operation is a small value in its own file: its io_uring
//! submission entry, its epoll readiness direction and non-blocking
//! attempt, and how a result becomes its output (handing its buffers
//! back). [`Op`] does the rest for all of them: submit (io_uring) or
//! attempt (epoll), wait for readiness and retry on `EAGAIN`, retry on
//! `EINTR`, continue when the operation asks (a short send), and cancel
//! on drop. The operation table itself is private to the io_uring backend
//! (`reactor::uring`); this layer holds keys and goes through
//! [`Driver`](crate::reactor::Driver)'s methods.
//!
//! # The operation table invariant
//!
//! An [`Op`] owns the operation value, and with it the resources (buffers,
//! iovecs, socket addresses) its submission entry points into. Those are
//! heap memory owned by the value, so moving it does not move them. Until
//! the completion is reaped they are owned either by the `Op` (while it
//! is alive) or by the slot in the backend's operation table (after the
//! `Op` was dropped: `Driver::abandon`, freed only when the completion
//! arrives). So the kernel never writes into freed memory, whatever the
//! user does with the future.
//!
//! # Shard-bound
//!
//! An `Op`'s key indexes the operation table of the shard that created it,
//! so an `Op`, and every I/O future holding one, is `!Send`:
//!
//! ```compile_fail,E0277
//! fn send<T: Send>(_: T) {}
//! // A receive future holds its `Op`: it cannot move to another thread.
//! send(seastar_core::io::recv(0, Vec::<u8>::with_capacity(8)));
//! ```
//!
//! (The buffer alone is `Send`; the `Op` is what makes the future not.)
//!
//! ```
//! fn send<T: Send>(_: T) {}
//! send(Vec::<u8>::with_capacity(8));
//! ```

mod accept;
mod connect;
mod fs;
mod msg;
pub(crate) mod multi;
mod recv;
mod recv_ring;
mod rw;
mod send;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use io_uring::squeue;

pub(crate) use accept::{Accept, AcceptMulti};
pub(crate) use connect::Connect;
pub(crate) use fs::{Fallocate, Ftruncate, OpenAt, PathOp, Statx, TwoPathOp};
pub(crate) use msg::{RecvMsg, SendMsg};
pub(crate) use recv::{Recv, RecvStream};
pub(crate) use recv_ring::{Received, RecvMulti, RecvRing, is_no_buffers};
pub(crate) use rw::{CURRENT, Fsync, Read, Write, Writev};
pub(crate) use send::{Send, SendAllOp};

use crate::reactor::{self, Interest, Orphan, Readiness};

/// What [`Op`] does after a result that is not `EAGAIN` or `EINTR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// The operation is over: hand out its output.
    Finish,
    /// Submit (io_uring) or attempt (epoll) again at once: a short send
    /// with bytes left, a refused optional flag turned off.
    Again,
}

/// One I/O operation, described once for both backends.
///
/// Results are the kernel's convention on both: a count (`>= 0`) or
/// `-errno`. `EAGAIN` (wait for [`INTEREST`](Self::INTEREST) on
/// [`fd`](Self::fd), then again) and `EINTR` (again) are handled by [`Op`].
///
/// # Safety
///
/// Every pointer in the entry [`uring_entry`](Self::uring_entry) builds
/// must point into heap memory owned by `self` (which stays put when
/// `self` moves) or into `'static` memory (the shard's provided-buffer
/// ring counts: it outlives every operation in flight). [`Op`] keeps
/// `self` alive until the kernel's completion, even after the future is
/// dropped.
pub(crate) unsafe trait Operation: 'static {
    /// What the operation completes with (usually its result and its
    /// buffer, given back).
    type Output;
    /// The readiness an `EAGAIN` waits for.
    const INTEREST: Interest;
    /// Releases what a completion nobody waits for created (an accepted
    /// or opened fd).
    const ORPHAN: Orphan = None;
    /// A regular-file read or write: io_uring hands these to the kernel in
    /// groups (`RuntimeBuilder::file_submit_batch`).
    const FILE_IO: bool = false;

    /// The file descriptor the readiness waits watch.
    fn fd(&self) -> RawFd;

    /// io_uring: the submission entry (its user data is set by the driver).
    fn uring_entry(&mut self) -> squeue::Entry;

    /// Epoll (and the blocking pool for regular files): the non-blocking
    /// syscall, returning a count or `-errno` (see [`syscall`]).
    fn attempt(&mut self) -> isize;

    /// A result came back (not `EAGAIN`/`EINTR`): finish, or go again.
    fn next(&mut self, res: isize, flags: u32) -> Flow {
        let _ = (res, flags);
        Flow::Finish
    }

    /// The output for the final result `res` (and the completion's flags,
    /// zero on epoll), handing the resources back.
    fn output(self, res: isize, flags: u32) -> Self::Output;

    /// A result known without any call (an empty send): the operation
    /// finishes with it at once.
    fn known_result(&self) -> Option<isize> {
        None
    }

    /// Epoll: the attempt would fail (the previous receive drained the
    /// socket), so wait for readiness before the first one.
    fn wait_first(&self) -> bool {
        false
    }

    /// A result that needs no wake when the future is polled quietly
    /// ([`Op::poll_quiet`]): a send that took all it was given.
    fn quiet_result(&self) -> Option<i32> {
        None
    }
}

/// A syscall's return as a result: the count, or `-errno`.
#[inline]
pub(crate) fn syscall(r: isize) -> isize {
    if r < 0 {
        -(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO) as isize)
    } else {
        r
    }
}

/// A result as an `io::Result`.
#[inline]
pub(crate) fn result(res: isize) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res as i32))
    } else {
        Ok(res as usize)
    }
}

/// The future that drives one [`Operation`] on the calling shard's
/// backend, started at once by [`Op::new`]. `!Send`: its key belongs to
/// this shard's operation table.
pub(crate) struct Op<O: Operation> {
    /// The operation; `None` once its output was handed out.
    op: Option<O>,
    step: Step,
    _shard: PhantomData<*const ()>,
}

/// Where an [`Op`] is. Owns nothing that needs dropping (the key is
/// given back by `Op`'s drop), so moving between steps costs a store.
#[derive(Debug)]
enum Step {
    /// io_uring: the entry in flight.
    Submitted(reactor::OpKey),
    /// Waiting for readiness (after `EAGAIN`, or before the first epoll
    /// attempt), then again.
    Waiting(Readiness),
    /// Finished with this result and these flags, not yet handed out.
    Done(isize, u32),
    /// Handed out.
    Taken,
}

// The operation is never structurally pinned: it is moved out on completion.
impl<O: Operation> Unpin for Op<O> {}

impl<O: Operation> Op<O> {
    /// Starts `op`: submitted on io_uring; on epoll attempted right here
    /// (unless it waits first), so a send that the socket takes is done.
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub(crate) fn new(op: O) -> Op<O> {
        let mut this = Op {
            op: Some(op),
            step: Step::Taken,
            _shard: PhantomData,
        };
        this.step = this.run(true);
        this
    }

    /// io_uring: submits `op` and returns the future collecting it; epoll:
    /// gives `op` back unstarted (for a caller with another fallback).
    pub(crate) fn submit_only(mut op: O) -> Result<Op<O>, O> {
        match submit(&mut op) {
            Some(key) => Ok(Op {
                op: Some(op),
                step: Step::Submitted(key),
                _shard: PhantomData,
            }),
            None => Err(op),
        }
    }

    /// The operation (until its output is handed out).
    pub(crate) fn get(&self) -> Option<&O> {
        self.op.as_ref()
    }

    /// Whether the result is in and waits to be handed out.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.step, Step::Done(..))
    }

    /// Submits (io_uring), or attempts until the call must wait or is
    /// over (epoll); `first`: the operation's first start.
    fn run(&mut self, first: bool) -> Step {
        let Some(op) = self.op.as_mut() else {
            return Step::Taken;
        };
        if first && let Some(res) = op.known_result() {
            return Step::Done(res, 0);
        }
        if let Some(key) = submit(op) {
            return Step::Submitted(key);
        }
        if first && op.wait_first() {
            return Step::Waiting(Readiness::Epoll);
        }
        loop {
            match op.attempt() {
                r if r == -(libc::EAGAIN as isize) => {
                    reactor::clear_ready(op.fd(), O::INTEREST);
                    return Step::Waiting(Readiness::Epoll);
                }
                r if r == -(libc::EINTR as isize) => {}
                r => match op.next(r, 0) {
                    Flow::Again => {}
                    Flow::Finish => return Step::Done(r, 0),
                },
            }
        }
    }

    /// Polls for the output.
    ///
    /// # Panics
    ///
    /// If polled again after it completed.
    #[inline]
    pub(crate) fn poll_op(&mut self, cx: &mut Context<'_>) -> Poll<O::Output> {
        self.poll_with(cx, false)
    }

    /// As [`poll_op`](Self::poll_op), except that a completion with the
    /// operation's [`quiet_result`](Operation::quiet_result) does not wake
    /// the task (a later poll collects it).
    #[inline]
    pub(crate) fn poll_quiet(&mut self, cx: &mut Context<'_>) -> Poll<O::Output> {
        self.poll_with(cx, true)
    }

    fn poll_with(&mut self, cx: &mut Context<'_>, quiet: bool) -> Poll<O::Output> {
        loop {
            self.step = match &self.step {
                Step::Submitted(key) => {
                    let q = match (&self.op, quiet) {
                        (Some(op), true) => op.quiet_result(),
                        _ => None,
                    };
                    let cqe = ready!(reactor::with(|s| {
                        s.driver().borrow_mut().poll_op(key, cx.waker(), q)
                    }));
                    self.completed(cqe.res as isize, cqe.flags)
                }
                Step::Waiting(r) => {
                    // (The operation is present until its output is out.)
                    let fd = self.op.as_ref().map_or(-1, O::fd);
                    let ready = ready!(reactor::with(|s| {
                        s.driver()
                            .borrow_mut()
                            .poll_ready(r, fd, O::INTEREST, cx.waker())
                    }));
                    match ready {
                        Ok(()) => self.run(false),
                        Err(e) => Step::Done(-(e.raw_os_error().unwrap_or(libc::EIO) as isize), 0),
                    }
                }
                Step::Done(res, flags) => {
                    let (res, flags) = (*res, *flags);
                    self.step = Step::Taken;
                    let op = self.op.take().expect("an operation with a result");
                    return Poll::Ready(op.output(res, flags));
                }
                Step::Taken => panic!("I/O operation polled after completion"),
            };
        }
    }

    /// The step after io_uring completion `res`.
    fn completed(&mut self, res: isize, flags: u32) -> Step {
        let Some(op) = self.op.as_mut() else {
            return Step::Taken;
        };
        match res {
            r if r == -(libc::EAGAIN as isize) => {
                let fd = op.fd();
                Step::Waiting(reactor::with(|s| {
                    s.driver().borrow_mut().arm_ready(fd, O::INTEREST)
                }))
            }
            r if r == -(libc::EINTR as isize) => self.run(false),
            r => match op.next(r, flags) {
                Flow::Again => self.run(false),
                Flow::Finish => Step::Done(r, flags),
            },
        }
    }
}

/// io_uring: queues `op`'s entry and returns its key; epoll: `None`.
fn submit<O: Operation>(op: &mut O) -> Option<reactor::OpKey> {
    let batch = O::FILE_IO.then(|| reactor::with(|s| s.config().file_submit_batch));
    // SAFETY: the entry points into memory `op` owns (the trait's
    // contract), which its `Op` keeps until the completion or hands to the
    // table with the key (`Drop`).
    reactor::with(|s| unsafe { s.driver().borrow_mut().submit(|| op.uring_entry(), batch) })
}

impl<O: Operation> Future for Op<O> {
    type Output = O::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O::Output> {
        self.get_mut().poll_op(cx)
    }
}

impl<O: Operation> Drop for Op<O> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.step, Step::Taken) {
            Step::Submitted(key) => {
                let mut data = self.op.take().map(Box::new);
                let _ = reactor::try_with(|s| {
                    if let Some(data) = data.take() {
                        s.driver().borrow_mut().abandon(key, data, O::ORPHAN);
                    }
                });
                // No reactor left to own it (shutdown): the kernel may
                // still use the memory, so leak it rather than free it.
                if let Some(data) = data {
                    std::mem::forget(data);
                }
            }
            Step::Waiting(r @ Readiness::Uring(_)) => {
                let _ = reactor::try_with(|s| s.driver().borrow_mut().abandon_ready(r));
            }
            Step::Waiting(Readiness::Epoll) | Step::Done(..) | Step::Taken => {}
        }
    }
}

impl<O: Operation> std::fmt::Debug for Op<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op").field("step", &self.step).finish()
    }
}

/// Runs `op` and returns its output: one submission on io_uring, its call
/// on the blocking pool on epoll (readiness means nothing for regular
/// files and paths: a `pread` on a cold page blocks whatever `O_NONBLOCK`
/// says).
pub(crate) async fn run_file_op<O>(op: O) -> O::Output
where
    O: Operation + std::marker::Send,
    O::Output: std::marker::Send + 'static,
{
    match Op::submit_only(op) {
        Ok(op) => op.await,
        Err(mut op) => {
            super::spawn_blocking(move || {
                let res = op.attempt();
                op.output(res, 0)
            })
            .await
        }
    }
}

/// Waits until `fd` is ready for `interest`: a one-shot poll on io_uring,
/// the registration's edge on epoll.
pub(crate) async fn ready(fd: RawFd, interest: Interest) -> io::Result<()> {
    let mut wait = ReadyWait::arm(fd, interest);
    std::future::poll_fn(|cx| wait.poll(cx)).await
}

/// A readiness wait kept by value (cancelled on drop).
#[derive(Debug)]
pub(crate) struct ReadyWait {
    fd: RawFd,
    interest: Interest,
    r: Option<Readiness>,
    _shard: PhantomData<*const ()>,
}

impl ReadyWait {
    /// Starts waiting for `fd` to be ready for `interest`.
    pub(crate) fn arm(fd: RawFd, interest: Interest) -> ReadyWait {
        let r = reactor::with(|s| s.driver().borrow_mut().arm_ready(fd, interest));
        ReadyWait {
            fd,
            interest,
            r: Some(r),
            _shard: PhantomData,
        }
    }

    /// Ready once `fd` is.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(r) = &self.r else {
            return Poll::Ready(Ok(()));
        };
        let res = ready!(reactor::with(|s| {
            s.driver()
                .borrow_mut()
                .poll_ready(r, self.fd, self.interest, cx.waker())
        }));
        self.r = None;
        Poll::Ready(res)
    }
}

impl Drop for ReadyWait {
    fn drop(&mut self) {
        if let Some(r @ Readiness::Uring(_)) = self.r.take() {
            let _ = reactor::try_with(|s| s.driver().borrow_mut().abandon_ready(r));
        }
    }
}
