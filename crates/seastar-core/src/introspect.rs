//! Read-only views of the calling shard's reactor, for admin endpoints and
//! dashboards.
//!
//! Everything here reads the *calling* shard's own counters (plain `Cell`s
//! only its thread writes): to see every shard, call these through
//! [`invoke_on_all`](crate::smp::invoke_on_all), one message per shard and
//! no lock anywhere. The figures are the ones behind the built-in
//! `seastar_reactor_*` and `seastar_smp_*` metrics (see [`crate::metrics`]),
//! typed, and without the side effect a metrics snapshot has (the
//! `seastar_reactor_utilization` gauge measures since the previous
//! snapshot; reading these leaves it alone).
//!
//! Busy time is only measured when the crate is built with the `metrics`
//! feature ([`busy_time_measured`]); without it [`busy_ns`] stays 0.
//!
//! ```
//! use seastar_core::{Runtime, introspect, smp};
//!
//! Runtime::builder().shards(2).build().unwrap().run(async {
//!     let all = smp::invoke_on_all(|| async { introspect::reactor_counters() }).await.unwrap();
//!     assert_eq!(all.len(), 2);
//!     assert_eq!(all[0].messages_sent.len(), 2);
//!     assert_eq!(introspect::groups()[0].name, "main");
//! });
//! ```

use std::sync::atomic::Ordering;

use crate::reactor;
pub use crate::reactor::stall::{
    MAX_FRAMES, StallBacktrace, StallFrame, StallInfo, signal_number as stall_signal, stall_info,
};
use crate::task::group;

/// A shard's reactor counters, from [`reactor_counters`]. All counts are
/// since the shard started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReactorCounters {
    /// The shard's id.
    pub shard: usize,
    /// Tasks polled.
    pub tasks_run: u64,
    /// Polls of the I/O backend (non-blocking and blocking).
    pub polls: u64,
    /// Times the shard slept in the kernel for lack of work.
    pub sleeps: u64,
    /// Tasks that ran past the blocked-reactor threshold without yielding.
    pub stalls: u64,
    /// Wall-clock nanoseconds of loop iterations that ran tasks (0 without
    /// the `metrics` feature).
    pub busy_ns: u64,
    /// CPU time the shard's thread consumed, in nanoseconds.
    pub cpu_ns: u64,
    /// Per destination shard (indexed by shard id; the own slot is 0):
    /// tasks, calls, replies and wake-ups sent over the smp rings.
    pub messages_sent: Vec<u64>,
    /// Per destination shard: times the ring towards it was full.
    pub ring_full: Vec<u64>,
    /// Cross-shard calls that waited for room in the backlog.
    pub backlog_waits: u64,
    /// Tasks ready to run now, all groups together.
    pub ready_tasks: usize,
}

/// One scheduling group as the calling shard sees it, from [`groups`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupStats {
    /// The group's id (0 is `main`).
    pub id: usize,
    /// Its name.
    pub name: String,
    /// Its shares.
    pub shares: u32,
    /// Tasks of the group ready to run on this shard now.
    pub ready_tasks: usize,
    /// Nanoseconds this shard ran the group's tasks (with only `main` in
    /// use the reactor does not time slices: all busy time is `main`'s).
    pub runtime_ns: u64,
}

/// Whether this build measures busy time (the `metrics` feature).
pub const fn busy_time_measured() -> bool {
    cfg!(feature = "metrics")
}

/// The calling shard's busy time so far, in nanoseconds: one load, for
/// samplers that take it often.
///
/// # Panics
///
/// Outside a shard.
pub fn busy_ns() -> u64 {
    reactor::with(|s| s.stats().busy_ns.get())
}

/// The calling shard's reactor counters.
///
/// # Panics
///
/// Outside a shard.
pub fn reactor_counters() -> ReactorCounters {
    reactor::with(|s| {
        let st = &s.stats();
        ReactorCounters {
            shard: s.id(),
            tasks_run: st.tasks_run.get(),
            polls: st.polls.get(),
            sleeps: st.sleeps.get(),
            stalls: s.shared().stalls[s.id()].count.load(Ordering::Relaxed),
            busy_ns: st.busy_ns.get(),
            cpu_ns: crate::sys::thread_cpu_ns(),
            messages_sent: st.sent.iter().map(|c| c.get()).collect(),
            ring_full: st.ring_full.iter().map(|c| c.get()).collect(),
            backlog_waits: st.space_waits.get(),
            ready_tasks: s.queue().borrow().groups().map(|(_, len, _)| len).sum(),
        }
    })
}

/// The scheduling groups of the calling shard's run queue: `main` and
/// every group up to the highest one the shard has queued a task for, with
/// its shares and this shard's figures.
///
/// # Panics
///
/// Outside a shard.
pub fn groups() -> Vec<GroupStats> {
    reactor::with(|s| {
        let busy = s.stats().busy_ns.get();
        let queue = s.queue().borrow();
        let single = !queue.multi_group();
        queue
            .groups()
            .map(|(id, len, runtime)| GroupStats {
                id,
                name: group::name_of(id),
                shares: group::shares_of(id),
                ready_tasks: len,
                runtime_ns: if single { busy } else { runtime },
            })
            .collect()
    })
}
