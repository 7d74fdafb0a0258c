//! Runtime primitives, ours (`seastar`) against tokio's current_thread
//! runtime with a `LocalSet` (`tokio`), in one run. Group = operation;
//! function = implementation (the convention `cargo xtask bench core` reads).
//! Cross-thread wake round trips are in `smp.rs`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use seastar_core::{Runtime, promise, spawn_local, timer};

fn seastar<F, Fut>(iters: u64, shards: usize, body: F) -> Duration
where
    F: FnOnce(u64) -> Fut + 'static,
    Fut: std::future::Future<Output = Duration> + 'static,
{
    let rt = Runtime::builder()
        .shards(shards)
        .handle_signals(false)
        .build()
        .unwrap();
    rt.run(async move { body(iters).await })
}

fn tokio_local<F, Fut>(iters: u64, body: F) -> Duration
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, body(iters))
}

fn spawn_await(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_await");
    g.bench_function("seastar", |b| {
        b.iter_custom(|n| {
            seastar(n, 1, |n| async move {
                let t = Instant::now();
                for _ in 0..n {
                    spawn_local(async {}).await.unwrap();
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|n| {
            tokio_local(n, |n| async move {
                let t = Instant::now();
                for _ in 0..n {
                    tokio::task::spawn_local(async {}).await.unwrap();
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

fn promise_set_await(c: &mut Criterion) {
    let mut g = c.benchmark_group("promise_set_await");
    g.bench_function("seastar", |b| {
        b.iter_custom(|n| {
            seastar(n, 1, |n| async move {
                let t = Instant::now();
                for i in 0..n {
                    let (p, f) = promise::promise();
                    p.set_value(i);
                    std::hint::black_box(f.await.unwrap());
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|n| {
            tokio_local(n, |n| async move {
                let t = Instant::now();
                for i in 0..n {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    tx.send(i).unwrap();
                    std::hint::black_box(rx.await.unwrap());
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

fn yield_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield");
    g.bench_function("seastar", |b| {
        b.iter_custom(|n| {
            seastar(n, 1, |n| async move {
                let t = Instant::now();
                for _ in 0..n {
                    seastar_core::yield_now().await;
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|n| {
            tokio_local(n, |n| async move {
                let t = Instant::now();
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

fn timer_arm_fire(c: &mut Criterion) {
    let mut g = c.benchmark_group("timer_arm_fire");
    g.bench_function("seastar", |b| {
        b.iter_custom(|n| {
            seastar(n, 1, |n| async move {
                let t = Instant::now();
                for _ in 0..n {
                    timer::sleep(Duration::from_nanos(1)).await;
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|n| {
            tokio_local(n, |n| async move {
                let t = Instant::now();
                for _ in 0..n {
                    tokio::time::sleep(Duration::from_nanos(1)).await;
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

fn timer_arm_cancel(c: &mut Criterion) {
    let mut g = c.benchmark_group("timer_arm_cancel");
    g.bench_function("seastar", |b| {
        b.iter_custom(|n| {
            seastar(n, 1, |n| async move {
                let t = Instant::now();
                for _ in 0..n {
                    let mut s = std::pin::pin!(timer::sleep(Duration::from_secs(10)));
                    assert!(futures::poll!(s.as_mut()).is_pending());
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|n| {
            tokio_local(n, |n| async move {
                let t = Instant::now();
                for _ in 0..n {
                    let mut s = std::pin::pin!(tokio::time::sleep(Duration::from_secs(10)));
                    assert!(futures::poll!(s.as_mut()).is_pending());
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    spawn_await,
    promise_set_await,
    yield_round_trip,
    timer_arm_fire,
    timer_arm_cancel
);
criterion_main!(benches);
