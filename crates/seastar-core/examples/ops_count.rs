//! One runtime primitive `n` times on one shard, for instruction counts
//! under callgrind (no perf counters needed): run it with `n` and with 0,
//! and divide the difference of the totals by `n`. The glommio peer has the
//! same program (`bench/peers/glommio-core/examples/ops_count.rs`).
//!
//! ```text
//! cargo build --release -p seastar-core --example ops_count
//! SEASTAR_REACTOR_BACKEND=epoll valgrind --tool=callgrind \
//!     target/release/examples/ops_count spawn_await 100000
//! ```
//!
//! Operations: `spawn_await`, `yield`, `timer_arm_cancel` (as the groups
//! of `benches/runtime.rs`).

use std::time::Duration;

use seastar_core::{Runtime, spawn_local, timer};

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_else(|| "spawn_await".into());
    let n: u64 = args.next().map_or(100_000, |s| s.parse().expect("a count"));
    let rt = Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .build()
        .expect("a runtime");
    rt.run(async move {
        match op.as_str() {
            "spawn_await" => {
                for _ in 0..n {
                    spawn_local(async {}).await.unwrap();
                }
            }
            "yield" => {
                for _ in 0..n {
                    seastar_core::yield_now().await;
                }
            }
            "timer_arm_cancel" => {
                for _ in 0..n {
                    let mut s = std::pin::pin!(timer::sleep(Duration::from_secs(10)));
                    assert!(futures::poll!(s.as_mut()).is_pending());
                }
            }
            other => panic!("unknown operation {other}"),
        }
    });
}
