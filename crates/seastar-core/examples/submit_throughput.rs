//! Cross-shard call throughput without criterion's harness: shard 0 keeps
//! `IN_FLIGHT` `submit_to` calls in flight towards shard 1 (CPUs 0 and 1)
//! and prints the time per call, three runs. Small and deterministic
//! enough to profile under callgrind (use the epoll backend there:
//! `SEASTAR_REACTOR_BACKEND=epoll valgrind --tool=callgrind ...`).
//!
//! ```text
//! cargo run --release -p seastar-core --example submit_throughput -- [in-flight] [calls] [idle-poll-us]
//! ```
//!
//! With `UNPINNED=1` the shards float over CPUs 0 and 1 instead; with
//! `POLL_MODE=1` both shards poll and never sleep (`--poll-mode`; with one
//! call in flight this is the suite's `cross_shard_round_trip_poll_mode`).
//! With `CROSSBEAM=1` it times the suite's anchor instead: two threads
//! pinned to CPUs 0 and 1 exchanging through two bounded crossbeam
//! channels, the same number in flight.

use std::time::{Duration, Instant};

use seastar_core::{Runtime, smp};

#[path = "../benches/anchors/crossbeam.rs"]
mod crossbeam_anchor;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .map(|s| s.parse().expect("a number"))
        .unwrap_or(default)
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) {
    // SAFETY: a zeroed `cpu_set_t` is valid; the calls only read and write
    // the set passed by reference.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
    }
}

/// The crossbeam anchor: per-call time of `total` calls, `in_flight` at once.
fn crossbeam(in_flight: u64, total: u64) -> Duration {
    pin(0);
    crossbeam_anchor::round_trips(total, in_flight, 1024, || pin(1)) / total.max(1) as u32
}

fn main() {
    let in_flight = arg(1, 1024).max(1);
    let total = arg(2, 2_000_000);
    let idle_poll = Duration::from_micros(arg(3, 0));
    if std::env::var_os("CROSSBEAM").is_some() {
        for _ in 0..3 {
            let per_call = crossbeam(in_flight, total);
            println!("crossbeam, {in_flight} in flight: {per_call:?} per call");
        }
        return;
    }
    for _ in 0..3 {
        let per_call = Runtime::builder()
            .shards(2)
            .cpuset([0, 1])
            .pin(std::env::var_os("UNPINNED").is_none())
            .idle_poll(idle_poll)
            .poll_mode(std::env::var_os("POLL_MODE").is_some())
            .handle_signals(false)
            .build()
            .expect("runtime")
            .run(async move {
                let t = Instant::now();
                if in_flight == 1 {
                    // As the suite's round-trip cases: no batch vector.
                    for i in 0..total {
                        std::hint::black_box(
                            smp::submit_to(1, move || async move { i })
                                .await
                                .expect("call"),
                        );
                    }
                    return t.elapsed() / total.max(1) as u32;
                }
                let mut left = total;
                while left > 0 {
                    let batch = left.min(in_flight);
                    let calls: Vec<_> = (0..batch)
                        .map(|i| smp::submit_to(1, move || async move { i }))
                        .collect();
                    for c in calls {
                        std::hint::black_box(c.await.expect("call"));
                    }
                    left -= batch;
                }
                t.elapsed() / total.max(1) as u32
            });
        println!("{in_flight} in flight, idle poll {idle_poll:?}: {per_call:?} per call");
    }
}
