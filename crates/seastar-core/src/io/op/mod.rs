//! The two primitive futures every I/O call is built from: an io_uring
//! operation ([`Op`]) and an epoll readiness wait ([`Ready`]).
//!
//! # The operation table invariant
//!
//! An [`Op`] owns the resources (buffers, iovecs, socket addresses) its
//! submission entry points into. Those resources are heap memory owned by
//! the `data` value, so moving `data` does not move them. Until the
//! completion is reaped, the resources are owned either by the `Op` (while
//! it is alive) or by the slot in the reactor's operation table (after the
//! `Op` was dropped: `Slot::Abandoned`, freed only when the completion
//! arrives, see `reactor::uring`). So the kernel never writes into freed
//! memory, whatever the user does with the future.

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, squeue, types};

use crate::reactor::{self, Driver, Interest, Slot};

/// An in-flight io_uring operation owning `T`.
pub(crate) struct Op<T: 'static> {
    key: usize,
    data: Option<T>,
    /// Called with the result if the completion arrives after the Op was
    /// dropped (e.g. closes the fd an abandoned accept produced).
    on_orphan: Option<fn(i32)>,
}

impl<T: 'static> Op<T> {
    /// Submits `entry` (its user data is set here) with `data` owning every
    /// resource it references.
    ///
    /// # Safety
    ///
    /// Every pointer in `entry` must point into heap memory owned by `data`
    /// (stable across moves of `data`), or be valid for `'static`.
    ///
    /// # Panics
    ///
    /// Outside a shard, or on a shard not running io_uring.
    pub(crate) unsafe fn submit(entry: squeue::Entry, data: T) -> Op<T> {
        // SAFETY: forwarded from this function's contract.
        unsafe { Self::submit_with(entry, data, false) }
    }

    /// [`Op::submit`] for a file read or write: the entries of these enter
    /// the kernel in groups of `ReactorConfig::file_submit_batch`.
    ///
    /// # Safety
    ///
    /// As for [`Op::submit`].
    pub(crate) unsafe fn submit_file_io(entry: squeue::Entry, data: T) -> Op<T> {
        // SAFETY: forwarded from this function's contract.
        unsafe { Self::submit_with(entry, data, true) }
    }

    /// # Safety
    ///
    /// As for [`Op::submit`].
    unsafe fn submit_with(entry: squeue::Entry, data: T, file_io: bool) -> Op<T> {
        reactor::with(|cx| {
            let mut driver = cx.driver.borrow_mut();
            let Driver::Uring(ring) = &mut *driver else {
                unreachable!("io_uring op on an epoll shard")
            };
            let key = ring.ops.insert(Slot::Waiting(None));
            // SAFETY: forwarded from this function's contract; the slot
            // keeps `data` alive if the Op is dropped (module invariant).
            unsafe { ring.push(&entry.user_data(key as u64)) };
            if file_io {
                ring.count_file_io(cx.config.file_submit_batch);
            }
            Op {
                key,
                data: Some(data),
                on_orphan: None,
            }
        })
    }

    /// True once the completion was taken (dropping the Op does nothing).
    #[inline]
    pub(crate) fn is_spent(&self) -> bool {
        self.data.is_none()
    }

    /// Sets the hook run on a completion that arrives after this Op was
    /// dropped.
    pub(crate) fn on_orphan(mut self, release: fn(i32)) -> Self {
        self.on_orphan = Some(release);
        self
    }
}

// The data is never structurally pinned: it is moved out on completion.
impl<T: 'static> Unpin for Op<T> {}

impl<T: 'static> Op<T> {
    /// Polls for the completion; `quiet`: a completion with exactly this
    /// result does not wake the task (it is collected by a later poll).
    fn poll_with(&mut self, cx: &mut Context<'_>, quiet: Option<i32>) -> Poll<(i32, T)> {
        self.poll_cqe(cx, quiet).map(|(res, _, data)| (res, data))
    }

    /// As `poll_with`, with the completion's flags (a provided buffer's id).
    pub(crate) fn poll_cqe(
        &mut self,
        cx: &mut Context<'_>,
        quiet: Option<i32>,
    ) -> Poll<(i32, u32, T)> {
        reactor::with(|shard| {
            let mut driver = shard.driver.borrow_mut();
            let Driver::Uring(ring) = &mut *driver else {
                unreachable!()
            };
            let slot = &mut ring.ops[self.key];
            match slot {
                Slot::Done { res, flags } => {
                    let (res, flags) = (*res, *flags);
                    ring.ops.remove(self.key).discard();
                    let data = self.data.take().expect("Op polled after completion");
                    Poll::Ready((res, flags, data))
                }
                // Same mode: the waker and the quiet result updated in place.
                Slot::Waiting(w) if quiet.is_none() => {
                    if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *w = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
                Slot::Quiet(w, q) if quiet.is_some() => {
                    if !w.will_wake(cx.waker()) {
                        *w = cx.waker().clone();
                    }
                    *q = quiet.unwrap_or_default();
                    Poll::Pending
                }
                Slot::Waiting(_) | Slot::Quiet(..) => {
                    std::mem::replace(slot, waiting(cx.waker().clone(), quiet)).discard();
                    Poll::Pending
                }
                Slot::Abandoned(..) | Slot::Multi(_) => unreachable!("live Op with a foreign slot"),
            }
        })
    }

    /// As `poll`, but a completion whose result is `quiet` does not wake
    /// the task: for an operation whose expected outcome needs no action
    /// (a send behind taking its whole buffer), collected by a later poll.
    pub(crate) fn poll_quiet(&mut self, cx: &mut Context<'_>, quiet: i32) -> Poll<(i32, T)> {
        self.poll_with(cx, Some(quiet))
    }
}

/// The slot of a pending operation woken by `w` (unless the result is `quiet`).
fn waiting(w: Waker, quiet: Option<i32>) -> Slot {
    match quiet {
        Some(q) => Slot::Quiet(w, q),
        None => Slot::Waiting(Some(w)),
    }
}

impl<T: 'static> Future for Op<T> {
    /// The completion's result (`-errno` on failure) and the resources.
    type Output = (i32, T);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx, None)
    }
}

impl<T: 'static> Drop for Op<T> {
    fn drop(&mut self) {
        let mut data = self.data.take();
        if data.is_none() {
            return;
        }
        let _ = reactor::try_with(|cx| {
            let mut driver = cx.driver.borrow_mut();
            let Driver::Uring(ring) = &mut *driver else {
                return;
            };
            match ring.ops.get_mut(self.key) {
                Some(Slot::Done { res, flags }) => {
                    let (res, flags) = (*res, *flags);
                    ring.ops.remove(self.key);
                    drop(data.take());
                    if let Some(release) = self.on_orphan {
                        release(res);
                    }
                    // A provided buffer picked for nobody goes back.
                    if let Some(bid) = io_uring::cqueue::buffer_select(flags) {
                        if let Some(r) = ring.buf_ring.as_mut() {
                            r.recycle(bid);
                        }
                    }
                }
                Some(slot) => {
                    *slot = Slot::Abandoned(Box::new(data.take()), self.on_orphan);
                    ring.cancel(self.key);
                }
                None => {}
            }
        });
        // No reactor left to own it (shutdown): the kernel may still use
        // the memory, so leak it rather than free it.
        if let Some(data) = data {
            std::mem::forget(data);
        }
    }
}

/// Waits until `fd` is ready for `interest`: a one-shot poll on io_uring,
/// the registration's edge on epoll.
pub(crate) async fn ready(fd: RawFd, interest: Interest) -> io::Result<()> {
    match reactor::backend() {
        crate::BackendKind::IoUring => {
            let (res, ()) = submit_poll(fd, interest).await;
            cqe_result(res).map(drop)
        }
        crate::BackendKind::Epoll => std::future::poll_fn(|cx| poll_ready(fd, interest, cx)).await,
    }
}

/// io_uring: submits a one-shot poll of `fd` for `interest`.
pub(crate) fn submit_poll(fd: RawFd, interest: Interest) -> Op<()> {
    let mask = match interest {
        Interest::Read => libc::POLLIN | libc::POLLRDHUP,
        Interest::Write => libc::POLLOUT,
    };
    let entry = opcode::PollAdd::new(types::Fd(fd), mask as u32).build();
    // SAFETY: a poll references no memory.
    unsafe { Op::submit(entry, ()) }
}

/// A readiness wait kept by value by the poll-style operations
/// (`SendAll`, `StreamRecv`) after `EAGAIN` or a short receive.
pub(crate) enum ReadyWait {
    /// io_uring: a one-shot poll in flight.
    Uring(Op<()>),
    /// epoll: the registration's next edge.
    Epoll,
}

impl ReadyWait {
    /// io_uring: submits the poll.
    pub(crate) fn uring(fd: RawFd, interest: Interest) -> ReadyWait {
        ReadyWait::Uring(submit_poll(fd, interest))
    }

    /// Ready once `fd` is ready for `interest`.
    pub(crate) fn poll(
        &mut self,
        fd: RawFd,
        interest: Interest,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        match self {
            ReadyWait::Uring(op) => Pin::new(op)
                .poll(cx)
                .map(|(res, ())| cqe_result(res).map(drop)),
            ReadyWait::Epoll => poll_ready(fd, interest, cx),
        }
    }
}

/// Epoll: ready once `fd` is known ready for `interest` (its ready bit, or
/// the next edge, which wakes `cx`).
pub(crate) fn poll_ready(
    fd: RawFd,
    interest: Interest,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    reactor::with(|shard| {
        let mut driver = shard.driver.borrow_mut();
        let Driver::Epoll(ep) = &mut *driver else {
            unreachable!()
        };
        match ep.poll_ready(fd, interest, cx.waker()) {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    })
}

/// Submits the entry `entry()` builds and, while the kernel answers
/// `EAGAIN` (a non-blocking fd with nothing ready), waits for readiness and
/// submits again. Returns the result as an `io::Result` and the resources.
///
/// # Safety
///
/// As [`Op::submit`]: every entry `entry` builds must point only into heap
/// memory owned by `data` (or `'static` memory).
pub(crate) async unsafe fn submit_ready<T: 'static>(
    fd: RawFd,
    interest: Interest,
    mut data: T,
    entry: impl Fn() -> squeue::Entry,
) -> (io::Result<usize>, T) {
    loop {
        // SAFETY: forwarded from this function's contract.
        let (res, back) = unsafe { Op::submit(entry(), data) }.await;
        data = back;
        if res != -libc::EAGAIN {
            return (cqe_result(res), data);
        }
        if let Err(e) = ready(fd, interest).await {
            return (Err(e), data);
        }
    }
}

/// Runs a non-blocking syscall until it stops saying `EAGAIN`, waiting for
/// readiness in between (both backends), retrying on `EINTR`.
pub(crate) async fn retry(
    fd: RawFd,
    interest: Interest,
    mut call: impl FnMut() -> isize,
) -> io::Result<usize> {
    loop {
        let r = call();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) => {
                reactor::clear_ready(fd, interest);
                ready(fd, interest).await?;
            }
            Some(libc::EINTR) => {}
            _ => return Err(e),
        }
    }
}

/// Turns an io_uring result into an `io::Result`.
pub(crate) fn cqe_result(res: i32) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    }
}
