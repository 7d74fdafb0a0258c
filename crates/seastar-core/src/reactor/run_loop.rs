//! The reactor loop ([`Shard::run_until`]) and its task batches: the
//! cross-shard calls and tasks run within the quota, timers fired, remote
//! wakes drained, outgoing messages published, and the backend polled or
//! slept in (see the [module doc](super) for one iteration's steps).

use super::*;
use run_queue::SLICE_TASKS;

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
pub(super) const MAX_UNCHECKED_TASKS: usize = 64;

/// [`Shard::batch_deadline`](super::Shard) of a task batch whose quota has
/// not started: a batch starts its quota at its first clock read (a check
/// after [`FIRST_CHECK_TASKS`] tasks or calls, or a task's
/// [`need_preempt`](crate::need_preempt)), unless the loop iteration read
/// the clock already (for its timers). So a batch of a task or two, the
/// common case of a shard waiting on messages (a poll-mode cross-shard
/// round trip: two such batches, one per shard), reads no clock at all (a
/// read is ~20 ns in a VM, as much as the rest of such a batch); the quota
/// then counts from a few tasks in.
pub(crate) const NOT_STARTED: u64 = 0;

/// How many tasks may run before the next read of the clock, `left` of the
/// quota being left after `ran` tasks took `spent`: half of those that would
/// fit in `left` at that pace, at least 1 and at most
/// [`MAX_UNCHECKED_TASKS`].
pub(super) fn tasks_before_check(left: u64, spent: u64, ran: usize) -> usize {
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

impl Shard {
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
        // The iteration's reading if the timers took one (the quota then
        // also counts this iteration's timers and pollers, which ran on the
        // shard all the same); else none: the first clock read of the
        // batch starts its quota (`NOT_STARTED`).
        let deadline = match self.now.get() {
            Some(now) => self.clock.monotonic_at(now).saturating_add(self.quota_ns()),
            None => NOT_STARTED,
        };
        self.batch_deadline.set(deadline);
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
        if deadline == NOT_STARTED {
            // The quota starts now; the pace is known at the next read.
            self.batch_deadline.set(now.saturating_add(self.quota_ns()));
            return Some(FIRST_CHECK_TASKS);
        }
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
    pub(super) fn quota_ns(&self) -> u64 {
        u64::try_from(self.shared.quota.as_nanos()).unwrap_or(u64::MAX)
    }

    fn fire_timers(&self) {
        if self.timers.borrow().has_due(|| self.iteration_now()) {
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
                .expire(self.iteration_now(), &mut callbacks);
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
            // The clock is read on first use (`iteration_now`).
            self.now.set(None);
            self.now_instant.set(None);
            let started = self
                .stats
                .iteration_start(|| self.clock.real_ns(self.iteration_now()));
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
                let r = {
                    let mut driver = self.driver.borrow_mut();
                    if driver.prepare_sleep(self.pollers.take_handled()) {
                        stats::add(&self.stats.batched_sleeps, 1);
                    }
                    driver.poll(timeout)
                };
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
}
