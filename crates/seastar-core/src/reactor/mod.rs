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
//! (see `remote.rs` for the handshake that loses no wake-up).
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

pub(crate) use run_queue::{MAX_GROUPS, set_group_shares};
use run_queue::{RunQueue, SLICE_TASKS};

/// The reactor reads the clock for the task quota after this many tasks of
/// a batch, then every few tasks (see [`Shard::tasks_until_check`]), not
/// after each: a clock read costs about as much as running a small task
/// (~20 ns; measured 22 ns here, a third of a spawn+await), and a batch
/// overshoots its quota by at most the tasks run since the last read.
/// Tasks that call [`need_preempt`](crate::need_preempt) themselves still
/// read it each time.
const FIRST_CHECK_TASKS: usize = 4;

/// The most tasks run between two reads of the clock for the quota: a
/// batch of small tasks reads it once per four slices (`SLICE_TASKS` is
/// 16), one of long tasks more often (down to after every task). 64 tiny
/// tasks (a `yield_now` round is ~20 ns) take ~1.3 µs, far below a quota
/// (0.5 ms by default); at 16, a read (~22 ns here, plus the pace
/// arithmetic) every 16 tasks added ~1.4 ns to each, 7% of a `yield_now`
/// round.
const MAX_UNCHECKED_TASKS: usize = 64;

/// How many tasks may run before the next read of the clock, `left` of the
/// quota being left after `ran` tasks took `spent`: half of those that would
/// fit in `left` at that pace, at least 1 and at most
/// [`MAX_UNCHECKED_TASKS`].
fn tasks_before_check(left: u64, spent: u64, ran: usize) -> usize {
    let (ran, max) = (ran.max(1) as u64, MAX_UNCHECKED_TASKS as u64);
    // `left / (spent / ran) / 2`, without a division when it is large (and
    // so `spent` is not 0 below).
    let n = if left.saturating_mul(ran) >= spent.saturating_mul(2 * max) {
        max
    } else {
        (left.saturating_mul(ran) / spent.saturating_mul(2)).max(1)
    };
    n as usize
}

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
    /// Clock reading at the start of the current loop iteration.
    now: Cell<u64>,
    /// The same reading as an `Instant`, made on the iteration's first
    /// [`lowres_now`](crate::timer::lowres_now) (then one load): an idle
    /// poll-mode iteration need not pay for the conversion.
    now_instant: Cell<Option<Instant>>,
    /// When the current task batch's quota runs out, on the monotonic
    /// clock in nanoseconds (`sys::monotonic_ns`: the quota is real time
    /// even under a manual clock).
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
        let now = clock.now_ns();
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
            now: Cell::new(now),
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
            self.now.get()
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
            let at = self.clock.to_instant(self.now.get());
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
    #[inline]
    pub(crate) fn need_preempt(&self) -> bool {
        crate::sys::monotonic_ns() >= self.batch_deadline.get()
    }

    /// Runs the cross-shard call steps received (a call's first poll, in
    /// the call's scheduling group) until none is left or the quota is
    /// spent. Returns how many ran.
    fn run_calls(&self) -> usize {
        let mut ran = 0;
        while let Some(call) = self.transport.next_call() {
            if let Some(group) = call.starts() {
                self.enter_group(group);
                self.mark_task_start();
            }
            call.run(&self.transport);
            ran += 1;
            if ran % 16 == 0 && self.need_preempt() {
                break;
            }
        }
        self.current_group.set(0);
        ran
    }

    /// Runs what follows in `group`, as the stall detector reports it.
    #[inline]
    fn enter_group(&self, group: usize) {
        self.current_group.set(group);
        self.shared.stalls[self.id]
            .group
            .store(group, Ordering::Relaxed);
    }

    /// Tells the stall detector that a task (or a call) starts running now.
    #[inline]
    fn mark_task_start(&self) {
        self.shared.stalls[self.id]
            .started
            .store(self.shared.tick.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    // (Out of line: inside `run_until` its task loop lacked the registers
    // for the shard and the stall state, and reloaded them per task.)
    #[inline(never)]
    fn run_tasks(&self) -> usize {
        self.batch_deadline
            .set(crate::sys::monotonic_ns().saturating_add(self.quota_ns()));
        let stall = &self.shared.stalls[self.id];
        let mut ran = self.run_calls();
        let mut until_check = FIRST_CHECK_TASKS;
        loop {
            let (group, timed) = {
                let q = self.queue.borrow();
                match q.pick() {
                    Some(g) => (g, q.multi_group()),
                    None => break,
                }
            };
            let started = timed.then(crate::sys::thread_cpu_ns);
            self.enter_group(group);
            let mut slice = 0;
            let mut preempted = false;
            while slice < SLICE_TASKS {
                // Up to the end of the slice or the next clock read,
                // whichever comes first (one count in the loop).
                let n = (SLICE_TASKS - slice).min(until_check);
                let done = if group == 0 {
                    self.run_some(n, stall, RunQueue::pop_main)
                } else {
                    self.run_some(n, stall, |q| q.pop(group))
                };
                slice += done;
                until_check -= done;
                if done < n {
                    // The group has nothing more ready.
                    break;
                }
                if until_check == 0 {
                    match self.tasks_until_check(ran + slice) {
                        Some(n) => until_check = n,
                        None => {
                            preempted = true;
                            break;
                        }
                    }
                }
            }
            ran += slice;
            if let Some(t) = started {
                self.queue
                    .borrow_mut()
                    .charge(group, crate::sys::thread_cpu_ns().saturating_sub(t));
            }
            if preempted {
                break;
            }
        }
        stall.started.store(IDLE, Ordering::Relaxed);
        self.current_group.set(0);
        ran
    }

    /// Runs up to `n` tasks taken by `pop` from the run queue, each
    /// stamped for the stall detector; returns how many ran (fewer than `n`
    /// once `pop` finds none).
    #[inline(always)]
    fn run_some(
        &self,
        n: usize,
        stall: &StallState,
        pop: impl Fn(&mut RunQueue) -> Option<Runnable>,
    ) -> usize {
        let tick = &self.shared.tick;
        for i in 0..n {
            let next = pop(&mut self.queue.borrow_mut());
            let Some(task) = next else { return i };
            // (`mark_task_start` with the stall state at hand.)
            stall
                .started
                .store(tick.load(Ordering::Relaxed), Ordering::Relaxed);
            task.run_on(self);
        }
        n
    }

    /// Reads the clock for the batch's quota: `None` once it is spent;
    /// otherwise how many more tasks may run before the next read: half of
    /// those that would fit in the time left at the batch's pace so far
    /// (`ran` tasks in the time spent), at least 1 and at most
    /// [`MAX_UNCHECKED_TASKS`]. So small tasks read the clock once per 64,
    /// and long ones (a sizeable part of the quota each) at every task or
    /// two, which overshoots less than a fixed count would.
    #[inline(never)]
    fn tasks_until_check(&self, ran: usize) -> Option<usize> {
        let now = crate::sys::monotonic_ns();
        let deadline = self.batch_deadline.get();
        if now >= deadline {
            return None;
        }
        let left = deadline - now;
        // (The deadline is the batch's start plus the quota.)
        let spent = self.quota_ns().saturating_sub(left);
        Some(tasks_before_check(left, spent, ran))
    }

    /// The task quota in nanoseconds.
    #[inline]
    fn quota_ns(&self) -> u64 {
        u64::try_from(self.shared.quota.as_nanos()).unwrap_or(u64::MAX)
    }

    fn fire_timers(&self) {
        if self.timers.borrow().has_due(self.now.get()) {
            self.expire_timers();
        }
        if !self.tick_waiters.borrow().is_empty() {
            let waiters = std::mem::take(&mut *self.tick_waiters.borrow_mut());
            waiters.into_iter().for_each(Waker::wake);
        }
    }

    #[inline(never)]
    fn expire_timers(&self) {
        let mut callbacks = Vec::new();
        // Periodic callbacks re-arm while firing: repeat until nothing is due.
        for _ in 0..1024 {
            self.timers
                .borrow_mut()
                .expire(self.now.get(), &mut callbacks);
            if callbacks.is_empty() {
                break;
            }
            callbacks.drain(..).for_each(|t| t.fire());
        }
    }

    fn drain_remote(&self) {
        // The rings every time: their producers signal only a sleeping shard.
        self.transport
            .drain(&mut |task| self.queue.borrow_mut().push(task));
        if self.remote.drain(&mut *self.queue.borrow_mut())
            && self.shared.stop_requested.load(Ordering::Acquire)
        {
            let waiters = std::mem::take(&mut *self.stop_waiters.borrow_mut());
            waiters.into_iter().for_each(Waker::wake);
        }
    }

    /// Publishes the messages queued for other shards (`smp::transport`).
    fn flush_outgoing(&self) {
        self.transport.flush();
    }

    /// How long the shard may sleep: until the next timer (`None`: no
    /// timer, or a manual clock, which only moves with a cross-shard wake).
    fn sleep_timeout(&self) -> Option<Duration> {
        let next = self.timers.borrow_mut().next_deadline()?;
        if self.clock.is_manual() {
            return if next <= self.clock.now_ns() {
                Some(Duration::ZERO)
            } else {
                None
            };
        }
        Some(Duration::from_nanos(
            next.saturating_sub(self.clock.now_ns()),
        ))
    }

    /// Runs the loop until `done()` or a stop request.
    pub(crate) fn run_until(&self, done: &dyn Fn() -> bool) {
        // Raw monotonic nanoseconds, as `last_remote`.
        let mut idle_since: Option<u64> = None;
        loop {
            let now = self.clock.now_ns();
            self.now.set(now);
            self.now_instant.set(None);
            let started = self.stats.iteration_start(|| self.clock.real_ns(now));
            self.drain_remote();
            self.fire_timers();
            let polled = self.pollers.poll();
            // Nothing to run: no batch (its deadline is a clock read).
            let ran = if self.queue.borrow().is_empty() && !self.transport.has_calls() {
                0
            } else {
                self.run_tasks()
            };
            self.stats
                .iteration_ran(started, ran, || self.clock.real_now_ns());
            self.flush_outgoing();
            // Poll mode never sleeps: no smp-poll window to track.
            if self.transport.take_activity() && !self.config.poll_mode {
                self.last_remote.set(Some(crate::sys::monotonic_ns()));
            }
            if done() || self.remote.stop_requested() {
                return;
            }
            let busy = polled
                || self.pollers.has_fresh()
                || !self.queue.borrow().is_empty()
                || self.transport.has_calls()
                || self.remote.is_pending()
                || !self.tick_waiters.borrow().is_empty();
            if ran > 0 || busy {
                idle_since = None;
            }
            // A shard that just exchanged cross-shard messages expects more
            // within microseconds (a call's reply, the next call of a
            // burst): it polls for `smp_poll` instead of sleeping, because
            // a sleeping shard costs a wake-up on both sides (tens of µs
            // here; the round trip of one call fell from ~55 µs to ~2 µs).
            // Shards that only do I/O still sleep at once.
            let smp_poll = !busy
                && !self.config.poll_mode
                && self.last_remote.get().is_some_and(|t| {
                    crate::sys::monotonic_ns().saturating_sub(t) < self.config.smp_poll_ns()
                });
            // (No clock read on the way to a sleep without an idle-poll
            // window, the default.)
            let spin = busy
                || self.config.poll_mode
                || smp_poll
                || (!self.config.idle_poll.is_zero() && {
                    let now = crate::sys::monotonic_ns();
                    let since = *idle_since.get_or_insert(now);
                    now - since < self.config.idle_poll_ns()
                });
            let result = if spin {
                // (Not while the shard polls anyway: in poll mode or an
                // idle-poll window, each a syscall per iteration.)
                if smp_poll && self.config.idle_poll.is_zero() {
                    // Waiting on another shard, not on this core: let any
                    // other thread that wants it run first (a load
                    // generator, a process sharing the CPU). Alone here, a
                    // yield returns at once. Measured with memcached on two
                    // shards sharing both cores with its load (unpinned):
                    // 7.4-7.7 µs of server CPU per operation with the yield,
                    // 11.1-11.4 without it and 10.3-10.7 sleeping at once.
                    std::thread::yield_now();
                }
                self.driver.borrow_mut().poll(Some(Duration::ZERO))
            } else {
                let timeout = self.sleep_timeout();
                // Pollers arm their wake-ups (and may wake tasks while at
                // it): the queue is checked again after them.
                if timeout == Some(Duration::ZERO)
                    || !self.pollers.try_sleep()
                    || !self.queue.borrow().is_empty()
                    || !self.remote.prepare_sleep()
                {
                    continue;
                }
                // Ring producers signal only a sleeping shard: look at the
                // rings again now that the flag is up (`reactor/remote.rs`).
                if self.transport.has_incoming() {
                    self.remote.woke();
                    continue;
                }
                let r = self.driver.borrow_mut().poll(timeout);
                self.remote.woke();
                self.pollers.woke();
                stats::add(&self.stats.sleeps, 1);
                self.shared.wake_ticker();
                idle_since = None;
                r
            };
            stats::add(&self.stats.polls, 1);
            if let Err(e) = result {
                tracing::error!(shard = self.id, error = %e, "reactor backend poll failed");
            }
        }
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
