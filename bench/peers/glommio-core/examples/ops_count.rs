//! glommio's side of seastar-core's `examples/ops_count.rs`: one primitive
//! `n` times on one executor, for instruction counts under callgrind (run
//! with `n` and with 0, divide the difference by `n`).
//!
//! ```text
//! cargo build --release --manifest-path bench/peers/glommio-core/Cargo.toml \
//!     --target-dir target/bench-glommio --example ops_count
//! valgrind --tool=callgrind target/bench-glommio/release/examples/ops_count spawn_await 100000
//! ```

use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_else(|| "spawn_await".into());
    let n: u64 = args.next().map_or(100_000, |s| s.parse().expect("a count"));
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("a glommio executor");
    ex.run(async move {
        match op.as_str() {
            "spawn_await" => {
                for _ in 0..n {
                    glommio::spawn_local(async {}).await;
                }
            }
            "yield" => {
                for _ in 0..n {
                    glommio::executor().yield_now().await;
                }
            }
            "timer_arm_cancel" => {
                for _ in 0..n {
                    let mut s = std::pin::pin!(glommio::timer::Timer::new(Duration::from_secs(10)));
                    assert!(futures_lite::future::poll_once(s.as_mut()).await.is_none());
                }
            }
            other => panic!("unknown operation {other}"),
        }
    });
}
