//! glommio as a peer of seastar-core's criterion benches, one function named
//! `glommio` in groups named as ours (`crates/seastar-core/benches/runtime.rs`
//! and `smp.rs`), measured the same way, so `cargo xtask bench core` reports
//! the ratio glommio time / seastar time per group in the same run.
//!
//! Placement matches ours: the single-executor benches run on CPU 0 (the
//! suite runs the process under `taskset -c 0`, as our one shard); the
//! two-executor benches put the client on CPU 0 and the server on CPU 1
//! (as our pinned shards 0 and 1), talking through glommio's
//! `shared_channel` (its executor-to-executor messaging).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use glommio::channels::shared_channel;
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};

/// Requests in flight in the pipelined groups (as `IN_FLIGHT` in `smp.rs`).
const IN_FLIGHT: u64 = 1024;

/// "Forever" for `spin_before_park`: glommio has no poll mode; an executor
/// that spins this long before parking never parks within a bench.
const SPIN_FOREVER: Duration = Duration::from_secs(3600);

/// One executor on CPU 0, made once per bench function (ours builds a
/// runtime per sample; glommio's executor reserves its I/O memory when
/// made, so it is made once and its `run` called per sample).
fn executor() -> LocalExecutor {
    LocalExecutorBuilder::new(Placement::Fixed(0))
        .make()
        .expect("a glommio executor on CPU 0")
}

fn spawn_await(c: &mut Criterion) {
    let ex = executor();
    let mut g = c.benchmark_group("spawn_await");
    g.bench_function("glommio", |b| {
        b.iter_custom(|n| {
            ex.run(async move {
                let t = Instant::now();
                for _ in 0..n {
                    glommio::spawn_local(async {}).await;
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

fn yield_round_trip(c: &mut Criterion) {
    let ex = executor();
    let mut g = c.benchmark_group("yield");
    g.bench_function("glommio", |b| {
        b.iter_custom(|n| {
            ex.run(async move {
                let t = Instant::now();
                for _ in 0..n {
                    glommio::executor().yield_now().await;
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

fn timer_arm_cancel(c: &mut Criterion) {
    let ex = executor();
    let mut g = c.benchmark_group("timer_arm_cancel");
    g.bench_function("glommio", |b| {
        b.iter_custom(|n| {
            ex.run(async move {
                let t = Instant::now();
                for _ in 0..n {
                    // Armed on its first poll, cancelled on drop (as ours).
                    let mut s = std::pin::pin!(glommio::timer::Timer::new(Duration::from_secs(10)));
                    assert!(futures_lite::future::poll_once(s.as_mut()).await.is_none());
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

/// `n` requests from an executor on CPU 0 to one on CPU 1 over two shared
/// channels, `in_flight` at a time (a batch is sent, then its replies
/// awaited in order, as the anchors in `smp.rs` do); both executors spin
/// `spin` before parking (`None`: they park at once, glommio's default).
fn pair(n: u64, in_flight: u64, spin: Option<Duration>) -> Duration {
    let (req_tx, req_rx) = shared_channel::new_bounded::<u64>(IN_FLIGHT as usize);
    let (rep_tx, rep_rx) = shared_channel::new_bounded::<u64>(IN_FLIGHT as usize);
    let builder = |cpu| {
        let b = LocalExecutorBuilder::new(Placement::Fixed(cpu));
        match spin {
            Some(d) => b.spin_before_park(d),
            None => b,
        }
    };
    let server = builder(1)
        .name("server")
        .spawn(move || async move {
            let (rx, tx) = (req_rx.connect().await, rep_tx.connect().await);
            while let Some(i) = rx.recv().await {
                tx.send(i).await.unwrap();
            }
        })
        .expect("a glommio executor on CPU 1");
    let client = builder(0)
        .name("client")
        .spawn(move || async move {
            let (tx, rx) = (req_tx.connect().await, rep_rx.connect().await);
            let t = Instant::now();
            let mut left = n;
            while left > 0 {
                let batch = left.min(in_flight);
                for i in 0..batch {
                    tx.send(i).await.unwrap();
                }
                for _ in 0..batch {
                    std::hint::black_box(rx.recv().await.unwrap());
                }
                left -= batch;
            }
            t.elapsed()
        })
        .expect("a glommio executor on CPU 0");
    let elapsed = client.join().unwrap();
    server.join().unwrap();
    elapsed
}

fn cross_shard(c: &mut Criterion) {
    let groups: [(&str, u64, Option<Duration>); 5] = [
        ("cross_shard_round_trip", 1, None),
        (
            "cross_shard_round_trip_idle_poll",
            1,
            Some(Duration::from_micros(200)),
        ),
        ("cross_shard_round_trip_poll_mode", 1, Some(SPIN_FOREVER)),
        ("submit_to_1024_in_flight", IN_FLIGHT, None),
        (
            "submit_to_1024_in_flight_idle_poll",
            IN_FLIGHT,
            Some(Duration::from_micros(200)),
        ),
    ];
    for (name, in_flight, spin) in groups {
        let mut g = c.benchmark_group(name);
        g.bench_function("glommio", |b| b.iter_custom(|n| pair(n, in_flight, spin)));
        g.finish();
    }
}

criterion_group!(
    benches,
    spawn_await,
    yield_round_trip,
    timer_arm_cancel,
    cross_shard
);
criterion_main!(benches);
