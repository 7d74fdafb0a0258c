//! Starting and stopping the shard threads.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::thread;

use super::builder::Config;
use crate::reactor::{self, EventFd, IDLE, ReactorConfig, Shard, ShardRemote, Shared};
use crate::timer::Clock;
use crate::{BackendKind, sys};

/// Restores the calling thread's affinity and signal mask on exit, even
/// when unwinding.
struct Restore {
    affinity: Option<Vec<usize>>,
    sigmask: Option<libc::sigset_t>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(cpus) = self.affinity.take() {
            let _ = sys::set_affinity(&cpus);
        }
        if let Some(mask) = self.sigmask.take() {
            sys::restore_signals(&mask);
        }
    }
}

pub(crate) fn run<F: Future + 'static>(config: Config, main: F) -> F::Output
where
    F::Output: 'static,
{
    // SAFETY: setting SIGPIPE to ignored is async-signal-safe and affects
    // only writes to closed sockets, which then fail with EPIPE instead.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let n = config.cpus.len();
    let mut restore = Restore {
        affinity: None,
        sigmask: None,
    };
    let signal_fd = if config.handle_signals {
        let set = sys::stop_signals();
        // Blocked before any shard thread starts, so all inherit the mask
        // and the signals are only read from the signalfd.
        restore.sigmask = Some(sys::block_signals(&set));
        sys::signalfd(&set)
            .map_err(|e| tracing::warn!(error = %e, "no signalfd; signals not handled"))
            .ok()
    } else {
        None
    };
    let remotes: Vec<Arc<ShardRemote>> = (0..n)
        .map(|_| Arc::new(ShardRemote::new(EventFd(sys::eventfd().expect("eventfd")))))
        .collect();
    let shared = Arc::new(Shared::new(
        remotes.clone(),
        config.ring_capacity,
        config.task_quota,
    ));
    let clock = Clock::new(config.manual_clock);
    let rconf = ReactorConfig {
        poll_mode: config.poll_mode,
        idle_poll: config.idle_poll,
        smp_poll: config.smp_poll,
        ring_entries: config.ring_entries,
        file_submit_batch: config.file_submit_batch,
        sleep_batch: crate::reactor::SleepBatch::new(config.sleep_batch, config.sleep_batch_wait),
    };
    let make_shard = {
        let (shared, clock, rconf, backend) =
            (shared.clone(), clock.clone(), rconf.clone(), config.backend);
        move |id: usize| {
            Shard::new(
                id,
                n,
                shared.remotes[id].clone(),
                shared.clone(),
                backend,
                clock.clone(),
                rconf.clone(),
            )
        }
    };

    let ticker_done = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (shared, done) = (shared.clone(), ticker_done.clone());
        let blocked = config.blocked_reactor_notify;
        thread::Builder::new()
            .name("seastar-ticker".into())
            .spawn(move || tick_and_watch(&shared, &done, blocked))
            .expect("spawn ticker thread")
    };
    let _ = shared.ticker.set(ticker.thread().clone());

    #[cfg(feature = "alloc")]
    let shard_limit = config.memory.map(|m| m / n as u64);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<BackendKind, String>>();
    let threads: Vec<_> = (1..n)
        .map(|id| {
            let (make, cpu, pin, tx) = (
                make_shard.clone(),
                config.cpus[id],
                config.pin,
                ready_tx.clone(),
            );
            thread::Builder::new()
                .name(format!("seastar-shard-{id}"))
                .spawn(move || {
                    if pin {
                        if let Err(e) = sys::set_affinity(&[cpu]) {
                            tracing::warn!(shard = id, cpu, error = %e, "could not pin shard");
                        }
                    }
                    let shard = match make(id) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Err(format!("shard {id}: {e}")));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(shard.backend_kind()));
                    let shard = Shard::enter(shard);
                    #[cfg(feature = "alloc")]
                    crate::alloc::set_shard_limit(shard_limit);
                    shard.run_until(&|| false);
                    shard.shutdown();
                    drop(shard);
                    drop(reactor::leave());
                })
                .expect("spawn shard thread")
        })
        .collect();
    drop(ready_tx);

    if config.pin {
        restore.affinity = sys::affinity().ok();
        if let Err(e) = sys::set_affinity(&[config.cpus[0]]) {
            tracing::warn!(shard = 0, cpu = config.cpus[0], error = %e, "could not pin shard");
        }
    }
    let shard0 = Shard::enter(make_shard(0).expect("start shard 0 reactor"));
    #[cfg(feature = "alloc")]
    crate::alloc::set_shard_limit(shard_limit);
    let kind = shard0.backend_kind();
    let mut failures = Vec::new();
    for r in ready_rx.iter().take(n - 1) {
        match r {
            Ok(k) if k == kind => {}
            Ok(k) => failures.push(format!("shards chose different backends ({kind} and {k})")),
            Err(e) => failures.push(e),
        }
    }
    tracing::debug!(shards = n, backend = %kind, "runtime started");

    let output = if failures.is_empty() {
        if let Some(fd) = signal_fd {
            let deadline = config.stop_deadline;
            crate::spawn_local(super::signal::watch(fd, shared.clone(), deadline)).detach();
        }
        let mut handle = crate::spawn_local(main);
        shard0.run_until(&|| handle.is_finished());
        let mut cx = Context::from_waker(Waker::noop());
        match std::pin::Pin::new(&mut handle).poll(&mut cx) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        }
    } else {
        None
    };

    for r in &remotes[1..] {
        r.request_stop();
    }
    for t in threads {
        let _ = t.join();
    }
    shard0.shutdown();
    drop(shard0);
    drop(reactor::leave());
    ticker_done.store(true, Ordering::Relaxed);
    ticker.thread().unpark();
    let _ = ticker.join();
    drop(restore);

    if !failures.is_empty() {
        panic!("runtime failed to start: {}", failures.join("; "));
    }
    match output.expect("main task finished") {
        Ok(v) => v,
        Err(crate::JoinError::Panicked(p)) => std::panic::resume_unwind(p),
        Err(crate::JoinError::Cancelled) => panic!("main task was cancelled"),
    }
}

/// Ticks with every shard asleep before the ticker parks.
const PARK_AFTER: u32 = 20;

/// The ticker (watchdog) thread: bumps the tick every period, and reports
/// shards whose current task has run past `blocked` (the stall detector),
/// again each time the stall doubles. Preemption does not depend on it
/// (`need_preempt` reads the clock), so it wakes only a few times per
/// `blocked`: a stall is measured to a quarter of the threshold.
fn tick_and_watch(shared: &Shared, done: &AtomicBool, blocked: std::time::Duration) {
    let period = (blocked / 4).max(shared.quota);
    let threshold = (blocked.as_nanos() / period.as_nanos().max(1)).max(1) as u64;
    // Per shard: the stall being tracked (its start tick) and when to report.
    let mut tracked = vec![(IDLE, threshold); shared.stalls.len()];
    let mut idle_ticks = 0u32;
    while !done.load(Ordering::Relaxed) {
        thread::sleep(period);
        // An idle runtime costs no wake-ups: once every shard has slept for
        // PARK_AFTER ticks, park until a shard wakes (`Shared::wake_ticker`).
        let all_asleep = || shared.remotes.iter().all(|r| r.is_sleeping());
        idle_ticks = if all_asleep() { idle_ticks + 1 } else { 0 };
        if idle_ticks >= PARK_AFTER {
            shared.ticker_parked.store(true, Ordering::SeqCst);
            if all_asleep() && !done.load(Ordering::Relaxed) {
                thread::park();
            }
            shared.ticker_parked.store(false, Ordering::SeqCst);
            idle_ticks = 0;
        }
        let tick = shared.tick.fetch_add(1, Ordering::Relaxed) + 1;
        reactor::stall::watch(&shared.stalls, &mut tracked, tick, period, threshold);
    }
}
