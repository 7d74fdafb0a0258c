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
//! Tasks are `async-task` cells (a proven, Miri-tested task cell whose
//! wakers are `Send + Sync`). Their schedule function checks whether the
//! calling thread is the task's own shard: if so the wake is a plain push
//! onto the shard's run queue (a `RefCell<VecDeque>`, no lock, no atomic);
//! otherwise the task goes to the shard's remote inbox and the shard is
//! woken if it sleeps. A task is only ever run and dropped on its shard.

mod backend;
pub(crate) mod buf_ring;
mod current;
mod epoll;
pub(crate) mod remote;
mod run_queue;
pub(crate) mod stats;

pub(crate) use current::{leave, try_with, with};
#[cfg(test)]
mod tests;
mod uring;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

pub(crate) use backend::{Backend, Driver};
pub use backend::{BackendKind, ParseBackendError};
pub(crate) use epoll::Interest;
pub use uring::UringFeatures;
pub(crate) use uring::{Multi, Slot};

use crate::smp::call::{CallPtr, Message, Op};
use crate::smp::ring::Ring;
use crate::timer::Clock;
use crate::timer::queue::TimerQueue;

/// A task ready to run; its metadata is its scheduling group.
pub(crate) type Runnable = async_task::Runnable<usize>;

use run_queue::{RunQueue, SLICE_TASKS};

/// Messages queued for one shard that are published at once, without
/// waiting for the end of the task batch.
const PUBLISH_BATCH: usize = 32;

/// The eventfd other threads write to wake a sleeping shard.
pub(crate) struct EventFd(pub(crate) OwnedFd);

impl remote::Notify for EventFd {
    fn notify(&self) {
        crate::sys::eventfd_write(self.0.as_raw_fd());
    }
}

/// A shard's inbox, as seen from other threads.
pub(crate) type ShardRemote = remote::Remote<Runnable, EventFd>;

/// `StallState::started` of a shard running no task.
pub(crate) const IDLE: u64 = u64::MAX;

/// What the ticker thread reads to detect a task stalling a shard.
#[derive(Default)]
pub(crate) struct StallState {
    /// `Shared::tick` when the running task started, or [`IDLE`].
    pub(crate) started: AtomicU64,
    /// Its scheduling group.
    pub(crate) group: std::sync::atomic::AtomicUsize,
    /// Stalls detected (bumped by the ticker thread).
    pub(crate) count: AtomicU64,
}

/// State shared by all shards of one runtime (read-mostly).
pub(crate) struct Shared {
    pub(crate) stalls: Vec<StallState>,
    pub(crate) remotes: Vec<Arc<ShardRemote>>,
    /// `rings[from * n + to]`: messages (woken tasks, cross-shard call
    /// steps) sent from shard `from` to shard `to`.
    pub(crate) rings: Vec<Ring<Message>>,
    pub(crate) ring_capacity: usize,
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
            quota,
            stalls: (0..n)
                .map(|_| StallState {
                    started: AtomicU64::new(IDLE),
                    ..Default::default()
                })
                .collect(),
            rings: (0..n * n).map(|_| Ring::new(ring_capacity)).collect(),
            ring_capacity: ring_capacity.max(2).next_power_of_two(),
            remotes,
            tick: AtomicU64::new(0),
            stop_requested: AtomicBool::new(false),
            ticker_parked: AtomicBool::new(false),
            ticker: std::sync::OnceLock::new(),
        }
    }

    fn ring(&self, from: usize, to: usize) -> &Ring<Message> {
        &self.rings[from * self.remotes.len() + to]
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
}

/// Everything one shard owns. Lives in a thread-local of its thread.
pub(crate) struct Shard {
    pub(crate) id: usize,
    pub(crate) count: usize,
    pub(crate) queue: RefCell<RunQueue>,
    /// Scheduling group of the task running now.
    pub(crate) current_group: Cell<usize>,
    pub(crate) remote: Arc<ShardRemote>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) driver: RefCell<Driver>,
    pub(crate) timers: RefCell<TimerQueue>,
    pub(crate) clock: Clock,
    /// Clock reading at the start of the current loop iteration.
    pub(crate) now: Cell<u64>,
    /// The same reading as an `Instant`, so that
    /// [`lowres_now`](crate::timer::lowres_now) is one load.
    pub(crate) now_instant: Cell<Instant>,
    /// When the current task batch's quota runs out.
    pub(crate) batch_deadline: Cell<std::time::Instant>,
    pub(crate) tick_waiters: RefCell<Vec<Waker>>,
    /// Messages for other shards (tasks woken here, cross-shard call
    /// steps), published into the rings in batches (see `push_outgoing`);
    /// per destination shard.
    outgoing: RefCell<Vec<VecDeque<Message>>>,
    /// Cross-shard call steps received to run here, handled at the start
    /// of the task batch. (Popping the rings empty first, rather than
    /// running each call as it is popped, gives the producer its room back
    /// at once: measured 75 against 130 ns per call with 1024 in flight.)
    calls: RefCell<VecDeque<(CallPtr, Op)>>,
    outgoing_dirty: Cell<bool>,
    /// Cross-shard messages were sent or received in this loop iteration.
    remote_activity: Cell<bool>,
    /// When this shard last sent or received cross-shard messages (see
    /// `smp_poll` in `run_until`).
    last_remote: Cell<Option<Instant>>,
    /// Tasks waiting for a destination's backlog to drain (back-pressure).
    space_waiters: RefCell<Vec<Vec<Waker>>>,
    pub(crate) stop_waiters: RefCell<Vec<Waker>>,
    /// Work added to every loop iteration (see [`crate::poller`]).
    pub(crate) pollers: crate::poller::Pollers,
    /// Values crates keep on this shard (see [`crate::shard_local`]).
    pub(crate) slots: crate::shard_local::Slots,
    pub(crate) stats: stats::ReactorStats,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::metrics::Registry,
    pub(crate) config: ReactorConfig,
    kind: BackendKind,
}

/// The backend of the calling thread's shard.
#[inline]
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
    with(|s| match &mut *s.driver.borrow_mut() {
        Driver::Uring(u) => Some(f(&mut u.features)),
        Driver::Epoll(_) => None,
    })
}

/// The schedule function of every task of shard `target` of the runtime
/// `shared`: on `target` itself a plain push onto its run queue; on another
/// shard of the runtime, onto that shard's outgoing batch for `target`
/// (published through their SPSC ring at the end of the task batch); from
/// any other thread, through `target`'s remote inbox.
pub(crate) fn schedule(runnable: Runnable, shared: &Arc<Shared>, target: usize) {
    let mut runnable = Some(runnable);
    let _ = try_with(|shard| {
        if Arc::ptr_eq(&shard.shared, shared) {
            let r = runnable.take().expect("present");
            if shard.id == target {
                shard.queue.borrow_mut().push(r);
            } else {
                shard.push_outgoing(target, Message::Task(r));
            }
        }
    });
    if let Some(r) = runnable {
        if let Err(r) = shared.remotes[target].push(r) {
            // The shard is gone: its task may only be dropped on its own
            // thread, so leak it.
            std::mem::forget(r);
        }
    }
}

/// Queues `msg` for shard `dest` (not the calling one) in the calling
/// shard's outgoing batch, published when [`PUBLISH_BATCH`] messages are
/// pending or at the end of the task batch.
pub(crate) fn send(dest: usize, msg: Message) {
    with(|s| s.push_outgoing(dest, msg))
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
        let driver = Driver::new(want, remote.notifier().0.as_raw_fd(), config.ring_entries)?;
        let kind = driver.kind();
        let now = clock.now_ns();
        Ok(Shard {
            id,
            count,
            queue: RefCell::new(RunQueue::new()),
            current_group: Cell::new(0),
            shared,
            driver: RefCell::new(driver),
            timers: RefCell::new(TimerQueue::default()),
            now: Cell::new(now),
            now_instant: Cell::new(clock.to_instant(now)),
            clock,
            batch_deadline: Cell::new(std::time::Instant::now()),
            tick_waiters: RefCell::new(Vec::new()),
            outgoing: RefCell::new((0..count).map(|_| VecDeque::new()).collect()),
            outgoing_dirty: Cell::new(false),
            remote_activity: Cell::new(false),
            last_remote: Cell::new(None),
            calls: RefCell::new(VecDeque::new()),
            space_waiters: RefCell::new((0..count).map(|_| Vec::new()).collect()),
            stop_waiters: RefCell::new(Vec::new()),
            pollers: crate::poller::Pollers::new(remote.clone()),
            slots: Default::default(),
            remote,
            stats: stats::ReactorStats::new(count),
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::Registry::new(id),
            config,
            kind,
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
        } else {
            self.now_instant.get()
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
        std::time::Instant::now() >= self.batch_deadline.get()
    }

    pub(crate) fn push_outgoing(&self, dest: usize, mut msg: Message) {
        debug_assert_ne!(dest, self.id, "messages only go to other shards");
        self.outgoing_dirty.set(true);
        let mut outgoing = self.outgoing.borrow_mut();
        let pending = &mut outgoing[dest];
        // Straight into the ring's next slot (staged, not yet visible),
        // unless older messages still wait for room: they go first. Going
        // through the queue every time cost the origin of a call about 90
        // of its ~500 instructions (callgrind, 1024 calls in flight).
        if pending.is_empty() {
            let ring = self.shared.ring(self.id, dest);
            match self.stage(ring, dest, msg) {
                Ok(()) => {
                    // A full batch leaves at once, so the destination starts
                    // on it while this shard goes on producing (a burst of
                    // calls overlaps on both cores instead of alternating).
                    if ring.staged() >= PUBLISH_BATCH {
                        self.publish(dest, pending);
                    }
                    return;
                }
                Err(back) => msg = back,
            }
        }
        pending.push_back(msg);
        if pending.len() >= PUBLISH_BATCH {
            self.publish(dest, pending);
        }
    }

    /// Stages `msg` in `ring`; when full, announces that this shard waits
    /// for room (then retries once, as the consumer may have just made
    /// some) and hands `msg` back.
    fn stage(&self, ring: &Ring<Message>, dest: usize, msg: Message) -> Result<(), Message> {
        ring.stage(msg).or_else(|msg| {
            stats::add(&self.stats.ring_full[dest], 1);
            ring.set_producer_waiting();
            ring.stage(msg)
        })
    }

    /// Moves what fits of `pending` into the ring to `dest`, publishes
    /// everything staged there and signals `dest` once; the rest stays
    /// queued (the consumer signals back when it has made room).
    fn publish(&self, dest: usize, pending: &mut VecDeque<Message>) {
        let ring = self.shared.ring(self.id, dest);
        while let Some(msg) = pending.pop_front() {
            if let Err(msg) = self.stage(ring, dest, msg) {
                pending.push_front(msg);
                self.outgoing_dirty.set(true);
                break;
            }
        }
        let sent = ring.publish();
        if sent > 0 {
            self.remote_activity.set(true);
            stats::add(&self.stats.sent[dest], sent as u64);
            self.shared.remotes[dest].signal();
        }
    }

    /// Runs the cross-shard call steps received (a call's first poll, in
    /// the call's scheduling group) until none is left or the quota is
    /// spent. Returns how many ran.
    fn run_calls(&self) -> usize {
        let mut ran = 0;
        loop {
            let next = self.calls.borrow_mut().pop_front();
            let Some((call, op)) = next else { break };
            if op == Op::Start {
                self.enter_group(call.group());
                self.mark_task_start();
            }
            call.deliver(op);
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

    fn run_tasks(&self) -> usize {
        self.batch_deadline
            .set(std::time::Instant::now() + self.shared.quota);
        let stall = &self.shared.stalls[self.id];
        let mut ran = self.run_calls();
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
            while slice < SLICE_TASKS {
                let next = self.queue.borrow_mut().pop(group);
                let Some(task) = next else { break };
                self.mark_task_start();
                task.run();
                slice += 1;
                if self.need_preempt() {
                    break;
                }
            }
            ran += slice;
            if let Some(t) = started {
                self.queue
                    .borrow_mut()
                    .charge(group, crate::sys::thread_cpu_ns().saturating_sub(t));
            }
            if self.need_preempt() {
                break;
            }
        }
        stall.started.store(IDLE, Ordering::Relaxed);
        self.current_group.set(0);
        ran
    }

    fn fire_timers(&self) {
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
        let waiters = std::mem::take(&mut *self.tick_waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
    }

    fn drain_remote(&self) {
        if !self.remote.drain(&mut *self.queue.borrow_mut()) {
            return;
        }
        for from in (0..self.count).filter(|&f| f != self.id) {
            let ring = self.shared.ring(from, self.id);
            while let Some(msg) = ring.pop() {
                self.remote_activity.set(true);
                match msg {
                    Message::Task(task) => self.queue.borrow_mut().push(task),
                    // The origin's side of a call: a flag and a wake-up.
                    Message::Call(call, op @ (Op::Return | Op::CancelAck)) => call.deliver(op),
                    // The target's side runs user code: in the task batch.
                    Message::Call(call, op) => self.calls.borrow_mut().push_back((call, op)),
                }
            }
            if ring.take_producer_waiting() {
                self.shared.remotes[from].signal();
            }
        }
        if self.shared.stop_requested.load(Ordering::Acquire) {
            let waiters = std::mem::take(&mut *self.stop_waiters.borrow_mut());
            waiters.into_iter().for_each(Waker::wake);
        }
    }

    /// Publishes the tasks woken here for other shards into their rings and
    /// signals each destination once per batch. What does not fit stays
    /// queued; the consumer signals back when it has made room.
    fn flush_outgoing(&self) {
        if !self.outgoing_dirty.replace(false) {
            return;
        }
        let mut outgoing = self.outgoing.borrow_mut();
        for (dest, pending) in outgoing.iter_mut().enumerate() {
            if dest == self.id {
                continue;
            }
            self.publish(dest, pending);
            if pending.len() < self.backlog_limit() {
                let waiters = std::mem::take(&mut self.space_waiters.borrow_mut()[dest]);
                waiters.into_iter().for_each(Waker::wake);
            }
        }
    }

    /// Whether the backlog towards `dest` has room for another call.
    pub(crate) fn has_space(&self, dest: usize) -> bool {
        self.outgoing.borrow()[dest].len() < self.backlog_limit()
    }

    /// Calls queued towards one shard beyond what its ring holds, before
    /// `submit_to` makes callers wait: a few rings' worth, so a burst keeps
    /// flowing while the target drains, yet memory stays bounded when the
    /// target falls behind.
    fn backlog_limit(&self) -> usize {
        self.shared.ring_capacity * 8
    }

    /// Back-pressure for cross-shard calls: whether `dest`'s backlog has
    /// room; if not, `waker` is woken once it has.
    pub(crate) fn poll_space(&self, dest: usize, waker: &Waker) -> bool {
        if self.has_space(dest) {
            return true;
        }
        stats::add(&self.stats.space_waits, 1);
        self.space_waiters.borrow_mut()[dest].push(waker.clone());
        false
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
        let mut idle_since: Option<Instant> = None;
        loop {
            let now = self.clock.now_ns();
            self.now.set(now);
            self.now_instant.set(self.clock.to_instant(now));
            let started = self.stats.iteration_start();
            self.drain_remote();
            self.fire_timers();
            let polled = self.pollers.poll();
            let ran = self.run_tasks();
            self.stats.iteration_ran(started, ran);
            self.flush_outgoing();
            if self.remote_activity.replace(false) {
                self.last_remote.set(Some(Instant::now()));
            }
            if done() || self.remote.stop_requested() {
                return;
            }
            let busy = polled
                || self.pollers.has_fresh()
                || !self.queue.borrow().is_empty()
                || !self.calls.borrow().is_empty()
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
                && self
                    .last_remote
                    .get()
                    .is_some_and(|t| t.elapsed() < self.config.smp_poll);
            let spin = busy || self.config.poll_mode || smp_poll || {
                let since = *idle_since.get_or_insert_with(Instant::now);
                since.elapsed() < self.config.idle_poll
            };
            let result = if spin {
                if smp_poll {
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
        // cells only freed by their origin: leak them.
        for pending in self.outgoing.borrow_mut().iter_mut() {
            pending.drain(..).for_each(std::mem::forget);
        }
        self.calls.borrow_mut().drain(..).for_each(std::mem::forget);
        for _ in 0..16 {
            let mut tasks: Vec<Runnable> = self.remote.close();
            for from in (0..self.count).filter(|&f| f != self.id) {
                let ring = self.shared.ring(from, self.id);
                while let Some(msg) = ring.pop() {
                    match msg {
                        Message::Task(t) => tasks.push(t),
                        call @ Message::Call(..) => std::mem::forget(call),
                    }
                }
            }
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
        match &mut *self.driver.borrow_mut() {
            Driver::Uring(u) => u
                .ops
                .iter_mut()
                .flat_map(|(_, s)| match s {
                    Slot::Waiting(w) => w.take().into_iter().collect(),
                    Slot::Quiet(..) => match std::mem::replace(s, Slot::Waiting(None)) {
                        Slot::Quiet(w, _) => vec![w],
                        _ => unreachable!(),
                    },
                    Slot::Multi(m) => std::mem::take(&mut m.wakers),
                    _ => Vec::new(),
                })
                .collect(),
            Driver::Epoll(_) => Vec::new(),
        }
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
