//! The io_uring backend.
//!
//! The ring is created with `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN`
//! (when the kernel has them) and a registered ring fd: measured on this
//! project's machines, deferred task work is what makes io_uring cheaper
//! than epoll for small socket I/O (without it, every arriving segment
//! interrupts the busy core). With `DEFER_TASKRUN`, completions are posted
//! only when the owning thread enters the kernel with `GETEVENTS`, so even a
//! non-blocking poll enters the kernel; never touch the ring from another
//! thread. With `TASKRUN_FLAG` as well, the kernel marks the ring's SQ
//! flags with `IORING_SQ_TASKRUN` while deferred work waits, so a spinning
//! shard enters only then (or with entries to submit, or a CQ overflow)
//! instead of on every iteration with an operation in flight (a signalfd
//! read is in flight for the whole life of shard 0).
//!
//! Each in-flight operation owns a slot in the operation table
//! ([`table`], private to this backend); its user data is the slot key,
//! which the I/O layer holds as an [`OpKey`]. The I/O layer submits,
//! polls and abandons operations through this type's methods, reached via
//! [`Driver`](super::backend::Driver).
//!
//! Cross-thread wakes arrive as readability of the shard's eventfd, watched
//! with a one-shot poll armed before each blocking wait.

#[cfg(test)]
mod poll_tests;
mod sleep_batch;
mod table;

use std::any::Any;
use std::io;
use std::os::fd::RawFd;
use std::task::{Poll, Waker};
use std::time::Duration;

use io_uring::{IoUring, opcode, squeue, types};

use super::backend::Backend;
use super::buf_ring::BufRing;
pub(crate) use sleep_batch::SleepBatch;
use table::OpTable;
pub(crate) use table::{Cqe, OpKey, Orphan, foreign_key};

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
            (self.taskrun_flag, "taskrun_flag"),
            (self.registered_ring_fd, "registered_ring_fd"),
            (self.multishot_accept, "multishot_accept"),
            (self.recv_poll_first, "recv_poll_first"),
            (self.provided_buffers, "provided_buffers"),
            (self.multishot_recv, "multishot_recv"),
            (self.sleep_batch, "sleep_batch"),
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
    /// `IORING_SETUP_TASKRUN_FLAG` (with `defer_taskrun`): the kernel flags
    /// pending deferred work in the SQ ring, and a spinning shard's
    /// non-blocking poll enters the kernel only when it is set.
    /// `SEASTAR_URING_TASKRUN_FLAG=0` turns it off.
    pub taskrun_flag: bool,
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
    /// Multishot receives from the provided-buffer ring serve
    /// [`crate::io::PooledRecvStream`] (Linux 6.0). Turned off for the
    /// shard if the kernel rejects it; `SEASTAR_URING_MULTISHOT_RECV=0`
    /// turns it off from the start.
    pub multishot_recv: bool,
    /// A loaded shard's sleeps wait for a batch of completions, for a
    /// bounded time (`IORING_FEAT_MIN_TIMEOUT`, Linux 6.12; see
    /// `RuntimeBuilder::sleep_batch`).
    pub sleep_batch: bool,
}

/// An io_uring instance and the operations in flight on it.
pub(crate) struct Uring {
    ring: IoUring,
    ops: OpTable,
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
    /// How sleeps batch completions (off unless `features.sleep_batch`).
    sleep_batch: SleepBatch,
}

impl Uring {
    pub(crate) fn new(wake_fd: RawFd, entries: u32) -> io::Result<Uring> {
        let mut features = UringFeatures {
            defer_taskrun: true,
            coop_taskrun: true,
            // `SEASTAR_URING_TASKRUN_FLAG=0` turns it off (to measure it).
            taskrun_flag: std::env::var("SEASTAR_URING_TASKRUN_FLAG").as_deref() != Ok("0"),
            // Multishot accept arrived in Linux 5.19, with DEFER_TASKRUN's
            // 6.1 after it; the first use falls back if it is refused.
            // `SEASTAR_URING_MULTISHOT_ACCEPT=0` turns it off (to measure it).
            multishot_accept: std::env::var("SEASTAR_URING_MULTISHOT_ACCEPT").as_deref() != Ok("0"),
            // Linux 5.19 as well; `SEASTAR_URING_RECV_POLL_FIRST=0` turns it off.
            recv_poll_first: std::env::var("SEASTAR_URING_RECV_POLL_FIRST").as_deref() != Ok("0"),
            multishot_recv: std::env::var("SEASTAR_URING_MULTISHOT_RECV").as_deref() != Ok("0"),
            ..UringFeatures::default()
        };
        let mut builder = IoUring::builder();
        builder
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_coop_taskrun()
            .setup_submit_all();
        if features.taskrun_flag {
            builder.setup_taskrun_flag();
        }
        let ring = builder
            .build(entries)
            .or_else(|e| {
                tracing::debug!(error = %e, "io_uring without DEFER_TASKRUN");
                features.defer_taskrun = false;
                features.taskrun_flag = false;
                IoUring::builder().setup_coop_taskrun().build(entries)
            })
            .or_else(|_| {
                features.coop_taskrun = false;
                features.multishot_accept = false;
                features.recv_poll_first = false;
                features.multishot_recv = false;
                IoUring::new(entries)
            })?;
        match ring.submitter().register_ring_fd() {
            Ok(_) => features.registered_ring_fd = true,
            Err(e) => tracing::debug!(error = %e, "io_uring ring fd not registered"),
        }
        tracing::debug!(?features, "io_uring ring ready");
        Ok(Uring {
            ring,
            ops: OpTable::new(),
            features,
            wake_fd,
            wake_armed: false,
            file_queued: 0,
            woken: Vec::new(),
            buf_ring: None,
            buf_ring_refused: false,
            sleep_batch: SleepBatch::off(),
        })
    }

    /// Sleeps batch completions as `batch` says, if the kernel can bound
    /// the wait (`IORING_FEAT_MIN_TIMEOUT`); otherwise they do not.
    pub(crate) fn set_sleep_batch(&mut self, batch: SleepBatch) {
        let on = batch.enabled() && self.ring.params().is_feature_min_timeout();
        self.features.sleep_batch = on;
        self.sleep_batch = if on { batch } else { SleepBatch::off() };
    }

    /// Before a sleep: reactor pollers handled `items` of work since the
    /// shard last woke (see [`SleepBatch::handled`]). Returns whether the
    /// sleep will wait for a batch.
    #[inline]
    pub(crate) fn prepare_sleep(&mut self, items: u32) -> bool {
        self.sleep_batch.handled(items);
        self.sleep_batch.next().is_some()
    }

    /// Queues `entry` as a one-shot operation and returns its key.
    ///
    /// # Safety
    ///
    /// Every pointer in `entry` must stay valid until its completion has
    /// been reaped: it points into memory the caller keeps until it
    /// collects the completion, or hands to [`abandon`](Self::abandon)
    /// (see the invariant in `crate::io::op`), or into `'static` memory.
    pub(crate) unsafe fn submit(&mut self, entry: squeue::Entry) -> OpKey {
        let key = self.ops.insert();
        // SAFETY: forwarded from this function's contract.
        unsafe { self.push(&entry.user_data(key.user_data())) };
        key
    }

    /// Queues `entry` as a multishot operation (a completion per event
    /// until the kernel ends it) and returns its key.
    ///
    /// # Safety
    ///
    /// `entry` must point into no memory but `'static` memory (the
    /// shard's provided-buffer ring counts as such): the kernel may
    /// complete it until the cancellation of an abandoned one lands.
    pub(crate) unsafe fn submit_multi(&mut self, entry: squeue::Entry) -> OpKey {
        let key = self.ops.insert_multi();
        // SAFETY: forwarded from this function's contract.
        unsafe { self.push(&entry.user_data(key.user_data())) };
        key
    }

    /// The completion of one-shot `key` (its slot freed), or `Pending`
    /// with `waker` registered; `quiet`: a completion with exactly this
    /// result does not wake it (collected by a later poll).
    #[inline]
    pub(crate) fn poll_op(&mut self, key: &OpKey, waker: &Waker, quiet: Option<i32>) -> Poll<Cqe> {
        self.ops.poll(key, waker, quiet)
    }

    /// The next completion of multishot `key`; `None` once the kernel
    /// ended it and every completion was taken.
    pub(crate) fn poll_multi(&mut self, key: &OpKey, waker: &Waker) -> Poll<Option<Cqe>> {
        self.ops.poll_multi(key, waker)
    }

    /// Gives up on `key`: `data` (the resources its entry points into)
    /// stays owned by the table until the kernel's last completion for
    /// it, the operation is cancelled, and results nobody collects are
    /// released (`orphan`, and their provided buffers go back).
    pub(crate) fn abandon(&mut self, key: OpKey, data: Box<dyn Any>, orphan: Orphan) {
        let mut taken = Vec::new();
        let cancel = self.ops.abandon(&key, data, orphan, &mut taken);
        if cancel {
            self.cancel(&key);
        }
        for cqe in taken {
            release(&mut self.buf_ring, cqe, orphan);
        }
    }

    /// Takes the wakers of every operation waiting (shard shutdown).
    pub(crate) fn take_wakers(&mut self) -> Vec<Waker> {
        self.ops.take_wakers()
    }

    /// Queues `entry` (whose user data must be set), flushing the submission
    /// queue to the kernel first if it is full.
    ///
    /// # Safety
    ///
    /// Every pointer in `entry` must stay valid until its completion has
    /// been reaped.
    unsafe fn push(&mut self, entry: &squeue::Entry) {
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

    /// Slots of the operation table in use (operations in flight or
    /// completed and not yet collected).
    #[cfg(test)]
    pub(crate) fn ops_in_use(&self) -> usize {
        self.ops.len()
    }

    /// Submissions queued and not yet handed to the kernel.
    #[cfg(test)]
    pub(crate) fn queued(&mut self) -> usize {
        self.ring.submission().len()
    }

    /// Asks the kernel to cancel the operation in slot `key`.
    fn cancel(&mut self, key: &OpKey) {
        let entry = opcode::AsyncCancel::new(key.user_data())
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
        let (want, min_wait) = self
            .sleep_batch
            .next()
            .map_or((1, 0), |(n, us)| (n as usize, us));
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
                // A zero minimum wait is the plain wait for `want`.
                let args = types::SubmitArgs::new()
                    .timespec(&ts)
                    .min_wait_usec(min_wait);
                self.ring.submitter().submit_with_args(want, &args)
            }
            None if min_wait == 0 => self.ring.submitter().submit_and_wait(want),
            None => {
                let args = types::SubmitArgs::new().min_wait_usec(min_wait);
                self.ring.submitter().submit_with_args(want, &args)
            }
        };
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && self.features.sleep_batch => {
                // A kernel that advertised the bounded wait but refuses
                // it: sleep as before from now on (the loop comes back).
                tracing::debug!(error = %e, "io_uring refused a batched sleep; batching off");
                self.set_sleep_batch(SleepBatch::off());
                Ok(())
            }
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

    /// Takes the completions posted so far and wakes their operations.
    #[inline]
    fn reap(&mut self) {
        // The common case of a spinning shard: nothing completed.
        if !self.ring.completion().is_empty() {
            self.reap_completions();
        }
    }

    #[inline(never)]
    fn reap_completions(&mut self) {
        let mut woken = std::mem::take(&mut self.woken);
        for cqe in self.ring.completion() {
            match cqe.user_data() {
                WAKE_TOKEN => {
                    self.wake_armed = false;
                    crate::sys::eventfd_drain_raw(self.wake_fd);
                }
                CANCEL_TOKEN => {}
                key => {
                    let cqe = Cqe {
                        res: cqe.result(),
                        flags: cqe.flags(),
                    };
                    if let Some(orphan) = self.ops.complete(key as usize, cqe, &mut woken) {
                        release(&mut self.buf_ring, cqe, orphan);
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
        } else if !self.must_enter() {
            // A spinning shard with nothing to submit and no operation in
            // flight: nothing can complete, so no syscall (poll mode's
            // cross-shard round trip spent most of its time in this one).
            // Completions posted without DEFER_TASKRUN are still reaped.
            self.reap();
            return Ok(());
        }
        self.enter(timeout)?;
        if timeout != Some(Duration::ZERO) {
            // What this sleep ended with sizes the next one's batch.
            let n = self.ring.completion().len();
            self.sleep_batch.woke(u32::try_from(n).unwrap_or(u32::MAX));
        }
        self.reap();
        Ok(())
    }
}

impl Uring {
    /// Whether a non-blocking poll needs the kernel: entries are queued, or
    /// operations are in flight and may have completed (with DEFER_TASKRUN
    /// their completions are posted only when this thread enters the
    /// kernel). With `taskrun_flag` the kernel says when that is: it sets
    /// `IORING_SQ_TASKRUN` when it queues deferred work for this ring
    /// (and clears it when an enter runs the work), so an operation that
    /// is only waiting costs no syscall; work queued just after the check
    /// is seen by the next iteration's check, and a sleep always enters.
    /// Completions posted without deferred work (inline at submission,
    /// without DEFER_TASKRUN) are in the CQ ring and reaped without an
    /// enter. The wake-fd poll does not count: a spinning shard sees
    /// cross-thread work in its inbox's state word, and the poll's
    /// completion is reaped at the next enter (at worst the next sleep
    /// returns at once, once).
    #[inline]
    fn must_enter(&mut self) -> bool {
        let sq = self.ring.submission();
        if !sq.is_empty() {
            return true;
        }
        if self.ops.len() == 0 {
            return false;
        }
        !self.features.taskrun_flag || sq.taskrun() || sq.cq_overflow()
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // The kernel may still write into the buffers of operations in
        // flight until their completions arrive: cancel them all, wait a
        // bounded number of rounds, and leak whatever is still pending
        // rather than free memory the kernel may touch.
        for key in self.ops.unfinished() {
            self.cancel(&key);
        }
        for _ in 0..100 {
            if self.ops.sweep_finished() {
                return;
            }
            let _ = self.enter(Some(Duration::from_millis(10)));
            self.reap();
        }
        let leaked = self.ops.len();
        self.ops.leak();
        // Those operations may still write into the provided buffers too.
        if let Some(r) = self.buf_ring.take() {
            r.leak();
        }
        tracing::warn!(
            count = leaked,
            "io_uring operations still in flight at shutdown; leaking their buffers"
        );
    }
}

/// Releases what completion `cqe` created for nobody: runs `orphan`, and
/// gives its provided buffer back to `ring`.
fn release(ring: &mut Option<BufRing>, cqe: Cqe, orphan: Orphan) {
    if let Some(release) = orphan {
        release(cqe.res);
    }
    if let Some(bid) = cqe.buffer()
        && let Some(r) = ring.as_mut()
    {
        r.recycle(bid);
    }
}
