//! The io_uring backend.
//!
//! The ring is created with `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN`
//! (when the kernel has them) and a registered ring fd: measured on this
//! project's machines, deferred task work is what makes io_uring cheaper
//! than epoll for small socket I/O (without it, every arriving segment
//! interrupts the busy core). With `DEFER_TASKRUN`, completions are posted
//! only when the owning thread enters the kernel with `GETEVENTS`, so even a
//! non-blocking poll enters the kernel; never touch the ring from another
//! thread.
//!
//! Each in-flight operation owns a slot in [`OpTable`]; its user data is the
//! slot key. A slot is `Waiting` (the task's waker), `Done` (result posted,
//! not yet collected) or `Abandoned` (the future was dropped: the slot keeps
//! the operation's buffers alive until the kernel's completion arrives,
//! because the kernel may still write into them).
//!
//! Cross-thread wakes arrive as readability of the shard's eventfd, watched
//! with a one-shot poll armed before each blocking wait.

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::task::Waker;
use std::time::Duration;

use io_uring::{IoUring, opcode, squeue, types};
use slab::Slab;

use super::backend::Backend;
use super::buf_ring::BufRing;

/// User data of the wake-fd poll.
const WAKE_TOKEN: u64 = u64::MAX;
/// User data of cancellations, whose completions are ignored.
const CANCEL_TOKEN: u64 = u64::MAX - 1;
/// Buffers in the shard's provided-buffer ring: enough for the
/// connections that have bytes at the same moment (a receive that finds
/// the ring empty falls back to a buffer of its own), 2 MiB of address
/// space, resident only once used.
const BUF_RING_COUNT: u16 = 128;
/// Size of each provided buffer: the largest single receive.
const BUF_RING_SIZE: usize = 16 * 1024;
/// `io_uring_enter` flag: wait for (and with DEFER_TASKRUN, post) completions.
const IORING_ENTER_GETEVENTS: u32 = 1;

impl std::fmt::Display for UringFeatures {
    /// The features that are on, joined by `+` (`none` if none).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on: Vec<&str> = [
            (self.defer_taskrun, "defer_taskrun"),
            (self.coop_taskrun, "coop_taskrun"),
            (self.registered_ring_fd, "registered_ring_fd"),
            (self.multishot_accept, "multishot_accept"),
            (self.recv_poll_first, "recv_poll_first"),
            (self.provided_buffers, "provided_buffers"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if on.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&on.join("+"))
        }
    }
}

/// The state of one in-flight operation.
pub(crate) enum Slot {
    /// Submitted; the task to wake on completion, once polled.
    Waiting(Option<Waker>),
    /// Submitted; the task to wake only if the result is not this one
    /// (a send behind that took its whole buffer needs nobody: see
    /// `crate::io::SendAll::poll_quiet`).
    Quiet(Waker, i32),
    /// Completed with this result (`-errno` on failure) and the
    /// completion's flags (a provided buffer's id, see `buf_ring`).
    Done { res: i32, flags: u32 },
    /// The waiting future was dropped; these are its buffers, kept until
    /// the completion arrives.
    /// The optional hook releases what a completion created after its
    /// waiter was gone (the fd of an accepted connection).
    Abandoned(#[allow(dead_code)] Box<dyn Any>, Option<fn(i32)>),
    /// A multishot operation: many completions for one submission.
    Multi(Multi),
}

impl Slot {
    /// Drops a slot replaced or removed on the hot path. The variants that
    /// own nothing (every completion passes through them) are forgotten
    /// instead: the drop glue is an out-of-line call that matches all five
    /// variants, about 28 instructions each time (callgrind, 3-4 per I/O
    /// request).
    #[inline]
    pub(crate) fn discard(self) {
        match self {
            Slot::Waiting(None) | Slot::Done { .. } => std::mem::forget(self),
            other => drop(other),
        }
    }
}

/// The completions of a multishot operation not yet taken by its owner.
#[derive(Default)]
pub(crate) struct Multi {
    /// Results in arrival order (`-errno` on failure).
    pub(crate) results: VecDeque<i32>,
    /// Tasks to wake on the next completion.
    pub(crate) wakers: Vec<Waker>,
    /// The kernel posted the last completion (no `IORING_CQE_F_MORE`).
    pub(crate) ended: bool,
}

/// What this shard's ring got from the kernel: the setup flags that took
/// and the per-operation features found in use. Logged at start and
/// returned by [`crate::io::uring_features`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UringFeatures {
    /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`: completions
    /// are posted only when the shard enters the kernel (no interrupts of
    /// the busy core by arriving segments).
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN`.
    pub coop_taskrun: bool,
    /// The ring fd is registered (cheaper `io_uring_enter`).
    pub registered_ring_fd: bool,
    /// Multishot accept (one submission per listener, a completion per
    /// connection). Turned off for the shard if the kernel rejects it.
    pub multishot_accept: bool,
    /// `IORING_RECVSEND_POLL_FIRST` on stream receives that follow a short
    /// one (see [`crate::io::recv_stream`]). Turned off for the shard if the
    /// kernel rejects it.
    pub recv_poll_first: bool,
    /// A provided-buffer ring serves pooled receives
    /// ([`crate::io::recv_pooled`]): set once the first one registered it.
    pub provided_buffers: bool,
}

/// An io_uring instance and the operations in flight on it.
pub(crate) struct Uring {
    ring: IoUring,
    pub(crate) ops: Slab<Slot>,
    pub(crate) features: UringFeatures,
    wake_fd: RawFd,
    wake_armed: bool,
    /// File I/O entries queued since the submission queue was last handed
    /// to the kernel (see `count_file_io`).
    file_queued: u32,
    /// The wakers of one `reap`, kept for its allocation.
    woken: Vec<Waker>,
    /// The shard's provided-buffer ring, made on first use by a pooled
    /// receive (`None` until then, or if the kernel refused it).
    pub(crate) buf_ring: Option<BufRing>,
    /// The kernel refused the buffer ring: pooled receives fall back.
    pub(crate) buf_ring_refused: bool,
}

impl Uring {
    pub(crate) fn new(wake_fd: RawFd, entries: u32) -> io::Result<Uring> {
        let mut features = UringFeatures {
            defer_taskrun: true,
            coop_taskrun: true,
            // Multishot accept arrived in Linux 5.19, with DEFER_TASKRUN's
            // 6.1 after it; the first use falls back if it is refused.
            // `SEASTAR_URING_MULTISHOT_ACCEPT=0` turns it off (to measure it).
            multishot_accept: std::env::var("SEASTAR_URING_MULTISHOT_ACCEPT").as_deref() != Ok("0"),
            // Linux 5.19 as well; `SEASTAR_URING_RECV_POLL_FIRST=0` turns it off.
            recv_poll_first: std::env::var("SEASTAR_URING_RECV_POLL_FIRST").as_deref() != Ok("0"),
            ..UringFeatures::default()
        };
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_coop_taskrun()
            .setup_submit_all()
            .build(entries)
            .or_else(|e| {
                tracing::debug!(error = %e, "io_uring without DEFER_TASKRUN");
                features.defer_taskrun = false;
                IoUring::builder().setup_coop_taskrun().build(entries)
            })
            .or_else(|_| {
                features.coop_taskrun = false;
                features.multishot_accept = false;
                features.recv_poll_first = false;
                IoUring::new(entries)
            })?;
        match ring.submitter().register_ring_fd() {
            Ok(_) => features.registered_ring_fd = true,
            Err(e) => tracing::debug!(error = %e, "io_uring ring fd not registered"),
        }
        tracing::debug!(?features, "io_uring ring ready");
        Ok(Uring {
            ring,
            ops: Slab::with_capacity(256),
            features,
            wake_fd,
            wake_armed: false,
            file_queued: 0,
            woken: Vec::new(),
            buf_ring: None,
            buf_ring_refused: false,
        })
    }

    /// Queues `entry` (whose user data must be set), flushing the submission
    /// queue to the kernel first if it is full.
    ///
    /// # Safety
    ///
    /// Every pointer in `entry` must stay valid until its completion has
    /// been reaped (see the operation table invariant in `crate::io::op`).
    pub(crate) unsafe fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: forwarded from this function's contract.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return;
            }
            // Full: hand what is queued to the kernel and retry.
            if !self.submit_queued() {
                self.reap();
            }
        }
    }

    /// Counts a file I/O entry just queued; once `batch` (> 0) are queued,
    /// hands the submission queue to the kernel now.
    pub(crate) fn count_file_io(&mut self, batch: u32) {
        self.file_queued += 1;
        if batch > 0 && self.file_queued >= batch {
            self.submit_queued();
        }
    }

    /// Hands the queued submissions to the kernel now, without waiting for
    /// completions; false if the kernel took none. A busy kernel (`EBUSY`,
    /// `EAGAIN`) keeps them queued for later.
    fn submit_queued(&mut self) -> bool {
        self.file_queued = 0;
        match self.ring.submit() {
            Ok(_) => true,
            Err(e) => {
                if !matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN)) {
                    tracing::error!(error = %e, "io_uring submit failed");
                }
                false
            }
        }
    }

    /// The shard's provided-buffer ring, registered on first use; `None`
    /// if the kernel refused it (older than 5.19) or
    /// `SEASTAR_URING_BUF_RING=0` turned it off.
    pub(crate) fn buf_ring(&mut self) -> Option<&mut BufRing> {
        if self.buf_ring.is_none() && !self.buf_ring_refused {
            let off = std::env::var("SEASTAR_URING_BUF_RING").as_deref() == Ok("0");
            match off {
                true => self.buf_ring_refused = true,
                false => match BufRing::new(&self.ring, BUF_RING_COUNT, BUF_RING_SIZE) {
                    Ok(r) => {
                        self.buf_ring = Some(r);
                        self.features.provided_buffers = true;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "io_uring buffer ring refused");
                        self.buf_ring_refused = true;
                    }
                },
            }
        }
        let r = self.buf_ring.as_mut()?;
        r.recycle_deferred();
        Some(r)
    }

    /// Submissions queued and not yet handed to the kernel.
    #[cfg(test)]
    pub(crate) fn queued(&mut self) -> usize {
        self.ring.submission().len()
    }

    /// Asks the kernel to cancel the operation in slot `key`.
    pub(crate) fn cancel(&mut self, key: usize) {
        let entry = opcode::AsyncCancel::new(key as u64)
            .build()
            .user_data(CANCEL_TOKEN);
        // SAFETY: a cancellation references no memory.
        unsafe { self.push(&entry) };
    }

    fn arm_wake(&mut self) {
        if !self.wake_armed {
            let entry = opcode::PollAdd::new(types::Fd(self.wake_fd), libc::POLLIN as u32)
                .build()
                .user_data(WAKE_TOKEN);
            // SAFETY: a poll references no memory.
            unsafe { self.push(&entry) };
            self.wake_armed = true;
        }
    }

    fn enter(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.file_queued = 0;
        let res = match timeout {
            Some(t) if t.is_zero() => {
                let pending = self.ring.submission().len() as u32;
                // SAFETY: no argument pointer is passed; GETEVENTS with
                // min_complete 0 only runs deferred task work.
                unsafe {
                    self.ring.submitter().enter::<libc::sigset_t>(
                        pending,
                        0,
                        IORING_ENTER_GETEVENTS,
                        None,
                    )
                }
            }
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submitter().submit_and_wait(1),
        };
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn reap(&mut self) {
        let mut woken = std::mem::take(&mut self.woken);
        for cqe in self.ring.completion() {
            match cqe.user_data() {
                WAKE_TOKEN => {
                    self.wake_armed = false;
                    crate::sys::eventfd_drain_raw(self.wake_fd);
                }
                CANCEL_TOKEN => {}
                key => {
                    let key = key as usize;
                    let Some(slot) = self.ops.get_mut(key) else {
                        continue;
                    };
                    let more = io_uring::cqueue::more(cqe.flags());
                    match slot {
                        Slot::Abandoned(_, on_orphan) => {
                            if let Some(release) = on_orphan {
                                release(cqe.result());
                            }
                            // A receive that picked a provided buffer for
                            // nobody: the buffer goes back to the ring.
                            if let Some(bid) = io_uring::cqueue::buffer_select(cqe.flags()) {
                                if let Some(r) = self.buf_ring.as_mut() {
                                    r.recycle(bid);
                                }
                            }
                            if !more {
                                self.ops.remove(key);
                            }
                        }
                        Slot::Waiting(w) => {
                            if let Some(w) = w.take() {
                                woken.push(w);
                            }
                            let done = Slot::Done {
                                res: cqe.result(),
                                flags: cqe.flags(),
                            };
                            std::mem::replace(slot, done).discard();
                        }
                        Slot::Quiet(..) => {
                            let res = cqe.result();
                            let done = Slot::Done {
                                res,
                                flags: cqe.flags(),
                            };
                            match std::mem::replace(slot, done) {
                                Slot::Quiet(w, quiet) if res != quiet => woken.push(w),
                                old => old.discard(),
                            }
                        }
                        Slot::Done { .. } => {
                            let done = Slot::Done {
                                res: cqe.result(),
                                flags: cqe.flags(),
                            };
                            std::mem::replace(slot, done).discard();
                        }
                        Slot::Multi(m) => {
                            m.results.push_back(cqe.result());
                            m.ended |= !more;
                            woken.append(&mut m.wakers);
                        }
                    }
                }
            }
        }
        woken.drain(..).for_each(Waker::wake);
        self.woken = woken;
    }
}

impl Backend for Uring {
    fn poll(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout != Some(Duration::ZERO) {
            self.arm_wake();
        }
        self.enter(timeout)?;
        self.reap();
        Ok(())
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // The kernel may still write into the buffers of operations in
        // flight until their completions arrive: cancel them all, wait a
        // bounded number of rounds, and leak whatever is still pending
        // rather than free memory the kernel may touch.
        let keys: Vec<usize> = self.ops.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(
                Slot::Waiting(_) | Slot::Quiet(..) | Slot::Multi(Multi { ended: false, .. }),
            ) = self.ops.get(key)
            {
                self.cancel(key);
            }
        }
        let finished = |s: &Slot| {
            matches!(
                s,
                Slot::Done { .. } | Slot::Multi(Multi { ended: true, .. })
            )
        };
        for _ in 0..100 {
            if self.ops.iter().all(|(_, s)| finished(s)) {
                return;
            }
            let _ = self.enter(Some(Duration::from_millis(10)));
            self.reap();
            let done: Vec<usize> = self
                .ops
                .iter()
                .filter(|(_, s)| finished(s))
                .map(|(k, _)| k)
                .collect();
            for k in done {
                self.ops.remove(k);
            }
        }
        let leaked = std::mem::take(&mut self.ops);
        // Those operations may still write into the provided buffers too.
        if let Some(r) = self.buf_ring.take() {
            r.leak();
        }
        tracing::warn!(
            count = leaked.len(),
            "io_uring operations still in flight at shutdown; leaking their buffers"
        );
        std::mem::forget(leaked);
    }
}
