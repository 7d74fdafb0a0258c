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
//! With `UNPINNED=1` the shards float over CPUs 0 and 1 instead.

use std::time::{Duration, Instant};

use seastar_core::{Runtime, smp};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .map(|s| s.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    let in_flight = arg(1, 1024).max(1);
    let total = arg(2, 2_000_000);
    let idle_poll = Duration::from_micros(arg(3, 0));
    for _ in 0..3 {
        let per_call = Runtime::builder()
            .shards(2)
            .cpuset([0, 1])
            .pin(std::env::var_os("UNPINNED").is_none())
            .idle_poll(idle_poll)
            .handle_signals(false)
            .build()
            .expect("runtime")
            .run(async move {
                let t = Instant::now();
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
