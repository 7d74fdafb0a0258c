//! The per-shard reactor: its state, the thread-local that finds it, and
//! the loop.
//!
//! # The loop
//!
//! Each iteration: read the clock; move tasks woken from other threads out
//! of the remote inbox; fire due timers; run ready tasks until the queue is
//! empty or the task quota is spent ([`need_preempt`](crate::need_preempt));
//! then poll the backend: without blocking while work remains (or in poll
//! mode, or within the idle-poll window), otherwise sleep in the kernel until
//! the next timer deadline, an I/O completion, or a wake from another thread
//! (see `remote.rs` for the handshake that loses no wake-up). The loop and
//! its task batches are in `run_loop.rs`.
//!
//! # Wakers
//!
//! Tasks are shard-local cells (`task::cell`): a waker first checks
//! whether the calling thread is the task's own shard; if so the wake is a
//! plain push onto the shard's run queue (a ring behind a `RefCell`, no lock,
//! no atomic); otherwise a wake request goes to the shard (through the
//! cross-shard rings or its remote inbox, waking it if it sleeps), which
//! applies it when it moves its messages into the run queue. A task is
//! only ever run and dropped on its shard. Cross-shard calls' driver tasks
//! are `async-task` cells (made on whichever thread first wakes them).

mod backend;
pub(crate) mod buf_ring;
mod current;
mod epoll;
pub(crate) mod remote;
mod ring;
mod run_loop;
mod run_queue;
pub(crate) mod stall;
pub(crate) mod stats;

pub(crate) use current::{leave, try_with, with};
#[cfg(test)]
mod tests;
mod uring;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

pub(crate) use backend::{Backend, Driver, Readiness};
pub use backend::{BackendKind, ParseBackendError};
pub(crate) use epoll::Interest;
pub use uring::UringFeatures;
pub(crate) use uring::{Cqe, OpKey, Orphan, SleepBatch};

use crate::smp::transport::{self, Message, Transport};
use crate::timer::Clock;
use crate::timer::queue::TimerQueue;
pub(crate) use stall::{IDLE, StallState};

/// A task ready to run (or a wake request to apply): see `run_queue`.
pub(crate) use run_queue::Runnable;

/// What an `async-task` cell (a cross-shard call's driver) carries besides
/// its future: its scheduling group.
pub(crate) struct TaskMeta {
    /// The task's scheduling group.
    pub(crate) group: usize,
}

impl TaskMeta {
    /// A task of `group`.
    pub(crate) fn group(group: usize) -> TaskMeta {
        TaskMeta { group }
    }
}

#[cfg(test)]
use run_loop::{MAX_UNCHECKED_TASKS, tasks_before_check};
use run_queue::RunQueue;
pub(crate) use run_queue::{MAX_GROUPS, set_group_shares};

/// The eventfd other threads write to wake a sleeping shard.
pub(crate) struct EventFd(pub(crate) OwnedFd);

impl remote::Notify for EventFd {
    fn notify(&self) {
        crate::sys::eventfd_write(self.0.as_raw_fd());
    }
}

/// A shard's inbox, as seen from other threads.
pub(crate) type ShardRemote = remote::Remote<Runnable, EventFd>;

/// State shared by all shards of one runtime (read-mostly).
pub(crate) struct Shared {
    /// This runtime's number, unique in the process (see [`crate::ShardId`]).
    pub(crate) runtime_id: u64,
    pub(crate) stalls: Vec<StallState>,
    pub(crate) remotes: Vec<Arc<ShardRemote>>,
    /// The SPSC rings between every two shards (woken tasks, cross-shard
    /// call steps), until each shard takes its ends (`smp::transport`).
    links: transport::Mesh,
    /// How long a task batch runs before `need_preempt` turns true.
    pub(crate) quota: std::time::Duration,
    /// Bumped by the ticker (watchdog) thread every period; the stall
    /// detector measures a batch in these ticks.
    pub(crate) tick: AtomicU64,
    pub(crate) stop_requested: AtomicBool,
    /// Set while the ticker thread is parked because every shard slept for
    /// a while; a shard that wakes unparks it (see `wake_ticker`).
    pub(crate) ticker_parked: AtomicBool,
    pub(crate) ticker: std::sync::OnceLock<std::thread::Thread>,
}

impl Shared {
    pub(crate) fn new(
        remotes: Vec<Arc<ShardRemote>>,
        ring_capacity: usize,
        quota: std::time::Duration,
    ) -> Shared {
        let n = remotes.len();
        Shared {
            runtime_id: crate::shard_id::next_runtime_id(),
            quota,
            stalls: (0..n).map(|_| StallState::new()).collect(),
            links: transport::Mesh::new(n, ring_capacity),
            remotes,
            tick: AtomicU64::new(0),
            stop_requested: AtomicBool::new(false),
            ticker_parked: AtomicBool::new(false),
            ticker: std::sync::OnceLock::new(),
        }
    }

    /// Unparks the ticker thread if it parked while all shards slept. One
    /// relaxed load when it did not (the common case under load).
    pub(crate) fn wake_ticker(&self) {
        if self.ticker_parked.load(Ordering::Relaxed)
            && self.ticker_parked.swap(false, Ordering::SeqCst)
        {
            if let Some(t) = self.ticker.get() {
                t.unpark();
            }
        }
    }

    /// Wakes every shard (to re-check the clock or the stop flag).
    pub(crate) fn signal_all(&self) {
        self.remotes.iter().for_each(|r| r.signal());
    }
}

/// Reactor options fixed at start.
#[derive(Clone, Debug)]
pub(crate) struct ReactorConfig {
    pub(crate) poll_mode: bool,
    pub(crate) idle_poll: Duration,
    pub(crate) smp_poll: Duration,
    pub(crate) ring_entries: u32,
    /// File reads and writes enter the kernel in groups of this many as they
    /// are issued; 0: with the rest of the loop iteration's submissions (see
    /// `RuntimeBuilder::file_submit_batch`).
    pub(crate) file_submit_batch: u32,
    /// How a loaded shard's sleeps batch completions (io_uring; see
    /// `RuntimeBuilder::sleep_batch`).
    pub(crate) sleep_batch: uring::SleepBatch,
}

impl ReactorConfig {
    /// [`smp_poll`](Self::smp_poll) in nanoseconds.
    #[inline]
    fn smp_poll_ns(&self) -> u64 {
        u64::try_from(self.smp_poll.as_nanos()).unwrap_or(u64::MAX)
    }

    /// [`idle_poll`](Self::idle_poll) in nanoseconds.
    #[inline]
    fn idle_poll_ns(&self) -> u64 {
        u64::try_from(self.idle_poll.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Everything one shard owns. Lives in a thread-local of its thread.
pub(crate) struct Shard {
    id: usize,
    count: usize,
    queue: RefCell<RunQueue>,
    /// Scheduling group of the task running now.
    current_group: Cell<usize>,
    remote: Arc<ShardRemote>,
    shared: Arc<Shared>,
    /// What this shard's tasks point to (its identity for their wakers;
    /// see `task::home`).
    task_anchor: Rc<crate::task::home::Anchor>,
    driver: RefCell<Driver>,
    timers: RefCell<TimerQueue>,
    clock: Clock,
    /// The current loop iteration's clock reading, taken on first use
    /// ([`iteration_now`](Self::iteration_now)): by the timers if any is
    /// armed, else by the task batch or a task. An idle iteration with no
    /// timer reads no clock: in poll mode the read (~20 ns in a VM) was
    /// two thirds of an idle iteration, so of the delay to notice a
    /// cross-shard message.
    now: Cell<Option<u64>>,
    /// The same reading as an `Instant`, made on the iteration's first
    /// [`lowres_now`](crate::timer::lowres_now) (then one load): an idle
    /// poll-mode iteration need not pay for the conversion.
    now_instant: Cell<Option<Instant>>,
    /// When the current task batch's quota runs out, on the monotonic
    /// clock in nanoseconds (`sys::monotonic_ns`: the quota is real time
    /// even under a manual clock), or
    /// [`NOT_STARTED`](run_loop::NOT_STARTED) until a clock read starts it.
    batch_deadline: Cell<u64>,
    tick_waiters: RefCell<Vec<Waker>>,
    /// The cross-shard transport: this shard's ends of the rings, outgoing
    /// batches, back-pressure, call steps received (`smp::transport`).
    transport: Rc<Transport>,
    /// When this shard last sent or received cross-shard messages, on the
    /// monotonic clock in nanoseconds (see `smp_poll` in `run_until`).
    last_remote: Cell<Option<u64>>,
    stop_waiters: RefCell<Vec<Waker>>,
    /// Work added to every loop iteration (see [`crate::poller`]).
    pollers: crate::poller::Pollers,
    /// Values crates keep on this shard (see [`crate::shard_local`]).
    slots: crate::shard_local::Slots,
    stats: Rc<stats::ReactorStats>,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::Registry,
    config: ReactorConfig,
    kind: BackendKind,
    /// Lets the stall detector signal this thread while the shard exists.
    _stall: stall::Attached,
}

/// The shard's parts, for the rest of the crate (its fields are private).
impl Shard {
    /// This shard's index in its runtime.
    #[inline]
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    /// How many shards the runtime has.
    #[inline]
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The ready tasks.
    #[inline]
    pub(crate) fn queue(&self) -> &RefCell<RunQueue> {
        &self.queue
    }

    /// The scheduling group of the task running now.
    #[inline]
    pub(crate) fn current_group(&self) -> &Cell<usize> {
        &self.current_group
    }

    /// The inbox other threads reach this shard through.
    #[inline]
    pub(crate) fn remote(&self) -> &Arc<ShardRemote> {
        &self.remote
    }

    /// The state shared by the runtime's shards.
    #[inline]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// What this shard's tasks point to (`task::home`).
    #[inline]
    pub(crate) fn task_anchor(&self) -> &Rc<crate::task::home::Anchor> {
        &self.task_anchor
    }

    /// The I/O backend.
    #[inline]
    pub(crate) fn driver(&self) -> &RefCell<Driver> {
        &self.driver
    }

    /// The timers armed on this shard.
    #[inline]
    pub(crate) fn timers(&self) -> &RefCell<TimerQueue> {
        &self.timers
    }

    /// The shard's clock (real or manual).
    #[inline]
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The cross-shard transport (`smp::transport`).
    #[inline]
    pub(crate) fn transport(&self) -> &Rc<Transport> {
        &self.transport
    }

    /// Wakers to wake when the runtime is asked to stop.
    #[inline]
    pub(crate) fn stop_waiters(&self) -> &RefCell<Vec<Waker>> {
        &self.stop_waiters
    }

    /// Work added to every loop iteration (see [`crate::poller`]).
    #[inline]
    pub(crate) fn pollers(&self) -> &crate::poller::Pollers {
        &self.pollers
    }

    /// Values crates keep on this shard (see [`crate::shard_local`]).
    #[inline]
    pub(crate) fn slots(&self) -> &crate::shard_local::Slots {
        &self.slots
    }

    /// The reactor's counters.
    #[inline]
    pub(crate) fn stats(&self) -> &Rc<stats::ReactorStats> {
        &self.stats
    }

    /// The shard's metrics registry.
    #[cfg(feature = "metrics")]
    #[inline]
    pub(crate) fn metrics(&self) -> &crate::metrics::Registry {
        &self.metrics
    }

    /// Reactor options fixed at start.
    #[inline]
    pub(crate) fn config(&self) -> &ReactorConfig {
        &self.config
    }
}

/// The backend of the calling thread's shard (the I/O layer no longer
/// asks: `Driver`'s methods answer per backend).
#[cfg(test)]
pub(crate) fn backend() -> BackendKind {
    with(|s| s.kind)
}

/// Epoll only: records that `fd` returned `EAGAIN` for `interest`.
pub(crate) fn clear_ready(fd: std::os::fd::RawFd, interest: Interest) {
    with(|s| {
        if let Driver::Epoll(ep) = &mut *s.driver.borrow_mut() {
            ep.clear_ready(fd, interest);
        }
    })
}

/// Epoll: marks `fd` not ready for `interest` after a short stream read
/// showed its queue empty, registering it if needed (unlike `EAGAIN`, a
/// short read does not prove a close is not pending: see
/// `Epoll::clear_ready_registered`). io_uring: nothing.
pub(crate) fn clear_ready_registered(fd: std::os::fd::RawFd, interest: Interest) {
    with(|s| {
        if let Driver::Epoll(ep) = &mut *s.driver.borrow_mut() {
            ep.clear_ready_registered(fd, interest);
        }
    })
}

/// Reads or changes the calling shard's io_uring features (`None` on the
/// epoll backend), e.g. to turn one off that the kernel refused.
pub(crate) fn with_uring_features<R>(f: impl FnOnce(&mut UringFeatures) -> R) -> Option<R> {
    with(|s| s.driver.borrow_mut().uring_features().map(f))
}

/// The schedule function of every task of shard `target` of the runtime
/// `shared`: on `target` itself a plain push onto its run queue; on another
/// shard of the runtime, onto that shard's outgoing batch for `target`
/// (published through their SPSC ring at the end of the task batch); from
/// any other thread, through `target`'s remote inbox.
pub(crate) fn schedule(runnable: Runnable, shared: &Arc<Shared>, target: usize) {
    if let Some(r) = schedule_here(runnable, Arc::as_ptr(shared), target) {
        push_remote(r, &shared.remotes[target]);
    }
}

/// Queues `runnable` from the calling thread if it is a shard of the
/// runtime at `shared`; gives it back otherwise.
#[inline]
fn schedule_here(runnable: Runnable, shared: *const Shared, target: usize) -> Option<Runnable> {
    let mut runnable = Some(runnable);
    let _ = try_with(|shard| {
        if std::ptr::eq(Arc::as_ptr(&shard.shared), shared) {
            let r = runnable.take().expect("present");
            if shard.id == target {
                shard.queue.borrow_mut().push(r);
            } else {
                shard.transport.push(target, Message::Task(r));
            }
        }
    });
    runnable
}

/// Queues `runnable` in its shard's remote inbox (from any thread).
#[cold]
fn push_remote(runnable: Runnable, remote: &ShardRemote) {
    if let Err(r) = remote.push(runnable) {
        // The shard is gone: its task may only be dropped on its own
        // thread, so leak it.
        std::mem::forget(r);
    }
}

impl Shard {
    pub(crate) fn new(
        id: usize,
        count: usize,
        remote: Arc<ShardRemote>,
        shared: Arc<Shared>,
        want: Option<BackendKind>,
        clock: Clock,
        config: ReactorConfig,
    ) -> io::Result<Shard> {
        let driver = Driver::new(
            want,
            remote.notifier().0.as_raw_fd(),
            config.ring_entries,
            config.sleep_batch,
        )?;
        let kind = driver.kind();
        let stats = Rc::new(stats::ReactorStats::new(count));
        let shared_for_stall = shared.clone();
        let transport = {
            let signals = shared.remotes.iter().map(|r| r.clone() as _).collect();
            let sched = shared.clone();
            let scheduler: transport::Scheduler = Arc::new(move |r| schedule(r, &sched, id));
            let links = shared.links.take(id);
            let t = Transport::new(id, links, signals, scheduler, stats.clone());
            // Poll mode is the runtime's: no shard of it ever sleeps.
            Rc::new(t.peers_never_sleep(config.poll_mode))
        };
        Ok(Shard {
            id,
            count,
            queue: RefCell::new(RunQueue::new()),
            current_group: Cell::new(0),
            task_anchor: crate::task::home::Anchor::new(shared.clone(), id),
            shared,
            driver: RefCell::new(driver),
            timers: RefCell::new(TimerQueue::default()),
            now: Cell::new(None),
            now_instant: Cell::new(None),
            clock,
            batch_deadline: Cell::new(0),
            tick_waiters: RefCell::new(Vec::new()),
            transport,
            last_remote: Cell::new(None),
            stop_waiters: RefCell::new(Vec::new()),
            pollers: crate::poller::Pollers::new(remote.clone()),
            slots: Default::default(),
            remote,
            stats,
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::Registry::new(id),
            config,
            kind,
            _stall: stall::Attached::new(shared_for_stall, id),
        })
    }

    /// Installs `shard` as the calling thread's shard.
    pub(crate) fn enter(shard: Shard) -> Rc<Shard> {
        let rc = Rc::new(shard);
        current::enter(rc.clone());
        rc
    }

    /// The shard clock in nanoseconds: the loop iteration's reading on the
    /// real clock (no clock read), the manual time itself under a manual
    /// clock.
    #[inline]
    pub(crate) fn coarse_now_ns(&self) -> u64 {
        if self.clock.is_manual() {
            self.clock.now_ns()
        } else {
            self.iteration_now()
        }
    }

    /// The current loop iteration's clock reading, read now if nobody
    /// did yet in this iteration.
    #[inline]
    pub(crate) fn iteration_now(&self) -> u64 {
        match self.now.get() {
            Some(now) => now,
            None => {
                let now = self.clock.now_ns();
                self.now.set(Some(now));
                now
            }
        }
    }

    /// [`coarse_now_ns`](Self::coarse_now_ns) as an `Instant` (on the real
    /// clock, one load of the iteration's cached reading).
    #[inline]
    pub(crate) fn coarse_now(&self) -> Instant {
        if self.clock.is_manual() {
            self.clock.to_instant(self.clock.now_ns())
        } else if let Some(at) = self.now_instant.get() {
            at
        } else {
            let at = self.clock.to_instant(self.iteration_now());
            self.now_instant.set(Some(at));
            at
        }
    }

    pub(crate) fn backend_kind(&self) -> BackendKind {
        self.kind
    }

    /// Whether the current task batch has used up its quota.
    ///
    /// One read of the monotonic clock (the vDSO, no syscall) against the
    /// batch's deadline. An earlier design had the ticker thread bump a
    /// counter every quota, which made this a load; but 2000 wake-ups a
    /// second of a thread sharing the shard's core cost httpd about 6% of
    /// its CPU per request (measured, 64 connections, one shard), far more
    /// than the clock reads (a few per request).
    ///
    /// A batch whose start was not read yet (see
    /// [`NOT_STARTED`](run_loop::NOT_STARTED)) starts its quota now.
    #[inline]
    pub(crate) fn need_preempt(&self) -> bool {
        let now = crate::sys::monotonic_ns();
        let deadline = self.batch_deadline.get();
        if deadline == run_loop::NOT_STARTED {
            self.batch_deadline.set(now.saturating_add(self.quota_ns()));
            return false;
        }
        now >= deadline
    }

    /// Drops every task this shard still holds, on this thread, then the
    /// backend. Called once the loop has exited.
    pub(crate) fn shutdown(&self) {
        self.pollers.clear();
        self.slots.clear();
        // Tasks bound for other shards may only be dropped there, and call
        // cells only freed by their origin: the transport leaks them.
        self.transport.close();
        for _ in 0..16 {
            let mut tasks: Vec<Runnable> = self.remote.close();
            self.transport.drain_for_shutdown(&mut tasks);
            tasks.extend(self.queue.borrow_mut().drain_all());
            let timers = self.timers.borrow_mut().clear();
            let wakers = self.take_io_wakers();
            let idle = tasks.is_empty() && timers.is_empty() && wakers.is_empty();
            // Dropping a Runnable drops its future; dropping the last waker
            // of a pending task reschedules it here, so loop.
            drop(tasks);
            drop(timers);
            drop(wakers);
            self.tick_waiters.borrow_mut().clear();
            self.stop_waiters.borrow_mut().clear();
            if idle && self.queue.borrow().is_empty() {
                break;
            }
        }
    }

    fn take_io_wakers(&self) -> Vec<Waker> {
        self.driver.borrow_mut().take_wakers()
    }
}

/// Completes after the shard's reactor has next fired its due timers.
/// Returned by [`ManualClock::advance`](crate::timer::ManualClock::advance).
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct NextTick {
    registered: bool,
}

pub(crate) fn next_tick() -> NextTick {
    NextTick { registered: false }
}

impl Future for NextTick {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.registered {
            return Poll::Ready(());
        }
        self.registered = true;
        with(|s| s.tick_waiters.borrow_mut().push(cx.waker().clone()));
        Poll::Pending
    }
}
