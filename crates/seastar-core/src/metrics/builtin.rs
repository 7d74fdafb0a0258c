//! The runtime's own metrics, read from the shard's reactor counters when a
//! snapshot is taken (so they cost nothing until then).

use std::time::Instant;

use super::Collector;
use crate::reactor;
use crate::task::group;

/// Adds the reactor, smp and (feature `alloc`) memory metrics of the
/// calling shard.
pub(super) fn collect(c: &mut Collector<'_>) {
    reactor::with(|s| {
        let st = &s.stats();
        c.counter(
            "seastar_reactor_tasks_run_total",
            "Tasks polled by the shard's reactor.",
            &[],
            st.tasks_run.get(),
        );
        c.counter(
            "seastar_reactor_polls_total",
            "Polls of the I/O backend (io_uring or epoll).",
            &[],
            st.polls.get(),
        );
        c.counter(
            "seastar_reactor_sleeps_total",
            "Times the reactor slept in the kernel for lack of work.",
            &[],
            st.sleeps.get(),
        );
        c.counter(
            "seastar_reactor_batched_sleeps_total",
            "Sleeps that waited for a batch of completions after a burst (io_uring).",
            &[],
            st.batched_sleeps.get(),
        );
        c.counter(
            "seastar_reactor_stalls_total",
            "Tasks that ran past the blocked-reactor threshold without yielding.",
            &[],
            s.shared().stalls[s.id()]
                .count
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        let busy = st.busy_ns.get();
        c.counter_f64(
            "seastar_reactor_busy_seconds_total",
            "Wall-clock time of reactor loop iterations that ran tasks.",
            &[],
            seconds(busy),
        );
        c.counter_f64(
            "seastar_reactor_cpu_seconds_total",
            "CPU time consumed by the shard's thread.",
            &[],
            seconds(crate::sys::thread_cpu_ns()),
        );
        let now = Instant::now();
        let (then, busy_then) = s.metrics().last.replace((now, busy));
        let wall = now.duration_since(then).as_nanos() as f64;
        let utilization = if wall > 0.0 {
            (busy.saturating_sub(busy_then) as f64 / wall).min(1.0)
        } else {
            0.0
        };
        c.gauge(
            "seastar_reactor_utilization",
            "Fraction of wall-clock time spent running tasks since the shard's previous snapshot.",
            &[],
            utilization,
        );
        let queue = s.queue().borrow();
        let single = !queue.multi_group();
        for (id, len, runtime) in queue.groups() {
            let name = group::name_of(id);
            c.gauge(
                "seastar_reactor_run_queue_length",
                "Tasks ready to run, per scheduling group.",
                &[("group", &name)],
                len as f64,
            );
            // With one group in use the reactor does not time its slices:
            // all busy time is that group's.
            let ns = if single { busy } else { runtime };
            c.counter_f64(
                "seastar_reactor_group_runtime_seconds_total",
                "CPU time charged to each scheduling group (busy time when only `main` is in use).",
                &[("group", &name)],
                seconds(ns),
            );
        }
        drop(queue);
        for to in (0..s.count()).filter(|&t| t != s.id()) {
            let dest = to.to_string();
            c.counter(
                "seastar_smp_messages_sent_total",
                "Tasks (calls, replies, wake-ups) sent to each other shard over the smp rings.",
                &[("to", &dest)],
                st.sent[to].get(),
            );
            c.counter(
                "seastar_smp_ring_full_total",
                "Times the smp ring towards a shard was full when publishing.",
                &[("to", &dest)],
                st.ring_full[to].get(),
            );
        }
        c.counter(
            "seastar_smp_backlog_waits_total",
            "Cross-shard calls that waited for room in the backlog to their target.",
            &[],
            st.space_waits.get(),
        );
    });
    #[cfg(feature = "alloc")]
    memory(c);
}

/// Nanoseconds as seconds: Prometheus wants base units.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

#[cfg(feature = "alloc")]
fn memory(c: &mut Collector<'_>) {
    let m = crate::alloc::stats();
    c.gauge(
        "seastar_memory_allocated_bytes",
        "Bytes allocated by the shard and not freed yet.",
        &[],
        m.allocated as f64,
    );
    if let Some(limit) = m.limit {
        c.gauge(
            "seastar_memory_limit_bytes",
            "The shard's soft memory limit.",
            &[],
            limit as f64,
        );
    }
    c.counter(
        "seastar_memory_allocations_total",
        "Allocations made by the shard.",
        &[],
        m.allocations,
    );
    c.counter(
        "seastar_memory_frees_total",
        "The shard's blocks freed, by any thread.",
        &[],
        m.frees,
    );
    c.counter(
        "seastar_memory_foreign_frees_total",
        "The shard's blocks freed by another thread.",
        &[],
        m.foreign_frees,
    );
    c.counter(
        "seastar_memory_reclaims_total",
        "Times the shard crossed its limit and ran its reclaimers.",
        &[],
        m.reclaims,
    );
    c.counter(
        "seastar_memory_reclaimed_bytes_total",
        "Bytes the reclaimers reported freeing.",
        &[],
        m.reclaimed,
    );
    c.counter(
        "seastar_memory_over_limit_total",
        "Allocations granted while over the limit after reclaim.",
        &[],
        m.over_limit,
    );
}
