//! Counters a shard's reactor keeps about itself.
//!
//! Plain `Cell`s in the shard's own `Shard` struct: bumping one is a load,
//! an add and a store on memory only this thread touches (no atomic, no
//! lock). Nobody else reads them directly: the metrics exporter
//! (`crate::metrics`, feature `metrics`) asks each shard for a snapshot by
//! message passing and reads them there, on the owning thread.

use std::cell::Cell;

/// Whether the reactor times its working iterations (only when someone can
/// read the figure: the `metrics` feature).
const TIMED: bool = cfg!(feature = "metrics");

/// A shard's reactor counters. See the `seastar_reactor_*` and
/// `seastar_smp_*` metrics in `crate::metrics` for their meaning.
#[derive(Debug)]
pub(crate) struct ReactorStats {
    /// Tasks polled.
    pub(crate) tasks_run: Cell<u64>,
    /// Backend polls (non-blocking and blocking).
    pub(crate) polls: Cell<u64>,
    /// Blocking polls: the shard slept in the kernel.
    pub(crate) sleeps: Cell<u64>,
    /// Sleeps that waited for a batch of completions (io_uring, after a
    /// burst; `RuntimeBuilder::sleep_batch`).
    pub(crate) batched_sleeps: Cell<u64>,
    /// Wall-clock nanoseconds of loop iterations that ran tasks.
    pub(crate) busy_ns: Cell<u64>,
    /// Per destination shard: tasks (calls, replies, wakes) published into
    /// the ring towards it.
    pub(crate) sent: Vec<Cell<u64>>,
    /// Per destination shard: times the ring towards it was full.
    pub(crate) ring_full: Vec<Cell<u64>>,
    /// Cross-shard calls that waited for room in the backlog.
    pub(crate) space_waits: Cell<u64>,
}

impl ReactorStats {
    pub(crate) fn new(shards: usize) -> ReactorStats {
        ReactorStats {
            tasks_run: Cell::new(0),
            polls: Cell::new(0),
            sleeps: Cell::new(0),
            batched_sleeps: Cell::new(0),
            busy_ns: Cell::new(0),
            sent: (0..shards).map(|_| Cell::new(0)).collect(),
            ring_full: (0..shards).map(|_| Cell::new(0)).collect(),
            space_waits: Cell::new(0),
        }
    }

    /// The start of a loop iteration, when iterations are timed: `now`
    /// gives monotonic nanoseconds (on the real clock the iteration's own
    /// reading, which costs no second clock read).
    #[inline]
    pub(crate) fn iteration_start(&self, now: impl FnOnce() -> u64) -> Option<u64> {
        TIMED.then(now)
    }

    /// The end of an iteration's task run: counts `ran` tasks and, if any
    /// ran, the iteration's time so far as busy (`now` as for
    /// [`iteration_start`](Self::iteration_start), read only then).
    #[inline]
    pub(crate) fn iteration_ran(
        &self,
        started: Option<u64>,
        ran: usize,
        now: impl FnOnce() -> u64,
    ) {
        if ran == 0 {
            return;
        }
        add(&self.tasks_run, ran as u64);
        if let Some(t) = started {
            add(&self.busy_ns, now().saturating_sub(t));
        }
    }
}

/// Adds `n` to a counter.
#[inline]
pub(crate) fn add(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}
