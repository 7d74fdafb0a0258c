//! Cross-shard calls, the semaphore and scheduling-group switches, ours
//! (`seastar`) against the anchors in one run: tokio mpsc + oneshot between
//! two current_thread runtimes on two threads (`tokio`), and a crossbeam
//! channel pair between two plain threads (`crossbeam`).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use seastar_core::sync::Semaphore;
use seastar_core::task::{SchedulingGroup, spawn_local_in};
use seastar_core::{Runtime, smp};

const IN_FLIGHT: u64 = 1024;

fn seastar<F, Fut>(builder: seastar_core::RuntimeBuilder, body: F) -> Duration
where
    F: FnOnce() -> Fut + 'static,
    Fut: std::future::Future<Output = Duration> + 'static,
{
    builder
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async move { body().await })
}

/// `n` requests to shard 1, `IN_FLIGHT` at a time: issue a batch (calls
/// start when made), then await the replies in order, as the anchors do.
async fn seastar_pipelined(n: u64) -> Duration {
    let t = Instant::now();
    let mut left = n;
    while left > 0 {
        let batch = left.min(IN_FLIGHT);
        let calls: Vec<_> = (0..batch)
            .map(|i| smp::submit_to(1, move || async move { i }))
            .collect();
        for c in calls {
            std::hint::black_box(c.await.unwrap());
        }
        left -= batch;
    }
    t.elapsed()
}

type Req = (u64, tokio::sync::oneshot::Sender<u64>);

fn tokio_pair(n: u64, in_flight: u64) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Req>(IN_FLIGHT as usize);
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            while let Some((i, reply)) = rx.recv().await {
                let _ = reply.send(i);
            }
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let elapsed = rt.block_on(async move {
        let t = Instant::now();
        let mut left = n;
        while left > 0 {
            let batch = left.min(in_flight);
            let mut replies = Vec::with_capacity(batch as usize);
            for i in 0..batch {
                let (rtx, rrx) = tokio::sync::oneshot::channel();
                tx.send((i, rtx)).await.unwrap();
                replies.push(rrx);
            }
            for r in replies {
                std::hint::black_box(r.await.unwrap());
            }
            left -= batch;
        }
        t.elapsed()
    });
    server.join().unwrap();
    elapsed
}

fn crossbeam_pair(n: u64, in_flight: u64) -> Duration {
    let (req_tx, req_rx) = crossbeam_channel::bounded::<u64>(IN_FLIGHT as usize);
    let (rep_tx, rep_rx) = crossbeam_channel::bounded::<u64>(IN_FLIGHT as usize);
    let server = std::thread::spawn(move || {
        for i in req_rx {
            rep_tx.send(i).unwrap();
        }
    });
    let t = Instant::now();
    let mut left = n;
    while left > 0 {
        let batch = left.min(in_flight);
        for i in 0..batch {
            req_tx.send(i).unwrap();
        }
        for _ in 0..batch {
            std::hint::black_box(rep_rx.recv().unwrap());
        }
        left -= batch;
    }
    let elapsed = t.elapsed();
    drop(req_tx);
    server.join().unwrap();
    elapsed
}

/// One group per configuration of ours, each against the same anchors, so
/// every ratio compares one configuration with the peers.
fn pipelined_group(c: &mut Criterion, name: &str, ours: fn() -> seastar_core::RuntimeBuilder) {
    let mut g = c.benchmark_group(name);
    g.bench_function("seastar", |b| {
        b.iter_custom(|n| seastar(ours(), move || seastar_pipelined(n)))
    });
    g.bench_function("tokio", |b| b.iter_custom(|n| tokio_pair(n, IN_FLIGHT)));
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|n| crossbeam_pair(n, IN_FLIGHT))
    });
    g.finish();
}

fn round_trip_group(c: &mut Criterion, name: &str, ours: fn() -> seastar_core::RuntimeBuilder) {
    let mut g = c.benchmark_group(name);
    g.bench_function("seastar", |b| {
        b.iter_custom(|n| seastar(ours(), move || seastar_one_at_a_time(n)))
    });
    g.bench_function("tokio", |b| b.iter_custom(|n| tokio_pair(n, 1)));
    g.bench_function("crossbeam", |b| b.iter_custom(|n| crossbeam_pair(n, 1)));
    g.finish();
}

/// Two pinned shards that sleep in the kernel when idle (the default).
fn pinned() -> seastar_core::RuntimeBuilder {
    Runtime::builder().shards(2)
}

/// Unpinned, as tokio's threads are: the kernel may run both sides on one
/// core and skip the cross-core wake-up of an idle vCPU.
fn unpinned() -> seastar_core::RuntimeBuilder {
    Runtime::builder().shards(2).pin(false)
}

/// Two shards that poll for 200 us before sleeping (Seastar's default).
fn polling() -> seastar_core::RuntimeBuilder {
    Runtime::builder()
        .shards(2)
        .idle_poll(Duration::from_micros(200))
}

async fn seastar_one_at_a_time(n: u64) -> Duration {
    let t = Instant::now();
    for i in 0..n {
        std::hint::black_box(smp::submit_to(1, move || async move { i }).await.unwrap());
    }
    t.elapsed()
}

fn submit_to(c: &mut Criterion) {
    round_trip_group(c, "cross_shard_round_trip", pinned);
    round_trip_group(c, "cross_shard_round_trip_unpinned", unpinned);
    round_trip_group(c, "cross_shard_round_trip_idle_poll", polling);
    pipelined_group(c, "submit_to_1024_in_flight", pinned);
    pipelined_group(c, "submit_to_1024_in_flight_idle_poll", polling);
}

fn semaphore(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore_acquire_release");
    g.bench_function("seastar", |b| {
        b.iter_custom(|n| {
            seastar(Runtime::builder().shards(1), move || async move {
                let sem = Semaphore::new(1);
                let t = Instant::now();
                for _ in 0..n {
                    drop(std::hint::black_box(sem.acquire(1).await.unwrap()));
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|n| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async move {
                let sem = tokio::sync::Semaphore::new(1);
                let t = Instant::now();
                for _ in 0..n {
                    drop(std::hint::black_box(sem.acquire().await.unwrap()));
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

fn group_switch(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_switch");
    // Two groups, one yielding task each: every poll switches group.
    g.bench_function("seastar", |b| {
        b.iter_custom(|n| {
            seastar(Runtime::builder().shards(1), move || async move {
                // Groups are process-wide: create the pair once.
                static GROUPS: std::sync::OnceLock<(SchedulingGroup, SchedulingGroup)> =
                    std::sync::OnceLock::new();
                let (a, z) = *GROUPS.get_or_init(|| {
                    (
                        SchedulingGroup::new("bench-a", 100).unwrap(),
                        SchedulingGroup::new("bench-b", 100).unwrap(),
                    )
                });
                let t = Instant::now();
                let spin = move || async move {
                    for _ in 0..n / 2 {
                        seastar_core::yield_now().await;
                    }
                };
                let (x, y) = (spawn_local_in(a, spin()), spawn_local_in(z, spin()));
                x.await.unwrap();
                y.await.unwrap();
                t.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, submit_to, semaphore, group_switch);
criterion_main!(benches);
