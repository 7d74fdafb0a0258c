use std::time::{Duration, Instant};
use seastar_core::{Runtime, smp};
fn main() {
    let poll: u64 = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(0);
    let inflight: u64 = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(1);
    let total: u64 = std::env::args().nth(3).map(|s| s.parse().unwrap()).unwrap_or(2000);
    for _ in 0..3 {
        let cap: usize = std::env::var("CAP").ok().and_then(|v| v.parse().ok()).unwrap_or(512);
        let d = Runtime::builder().shards(2).cpuset([0, 1]).smp_ring_capacity(cap).idle_poll(Duration::from_micros(poll)).handle_signals(false).build().unwrap().run(async move {
            let t = Instant::now();
            let mut left = total;
            while left > 0 {
                let batch = left.min(inflight);
                let calls: Vec<_> = (0..batch).map(|i| smp::submit_to(1, move || async move { i })).collect();
                for c in calls { std::hint::black_box(c.await.unwrap()); }
                left -= batch;
            }
            t.elapsed() / total as u32
        });
        println!("idle_poll {poll}us in flight {inflight}: {:?} per call", d);
    }
}
