//! Cross-shard calls, the semaphore and scheduling-group switches, ours
//! (`seastar`) against the anchors in one run: tokio mpsc + oneshot between
//! two current_thread runtimes on two threads (`tokio`), and a crossbeam
//! channel pair between two plain threads (`crossbeam`).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use seastar_core::sync::Semaphore;
use seastar_core::task::{SchedulingGroup, spawn_local_in};
use seastar_core::{Runtime, smp};

#[path = "anchors/crossbeam.rs"]
mod crossbeam_anchor;

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

/// Where the anchors' two threads run, matching the shard placement of the
/// group's `seastar` configuration. The suite runs this process under
/// `taskset -c 0`, so the anchors set their threads' affinity explicitly
/// (as our shards do) instead of inheriting CPU 0.
#[derive(Clone, Copy)]
enum Placement {
    /// Client on CPU 0, server on CPU 1 (as pinned shards 0 and 1).
    Pinned,
    /// Both threads may run on CPU 0 or 1 (as unpinned shards).
    Floating,
}

impl Placement {
    fn apply(self, role: usize) {
        let cpus: &[usize] = match (self, role) {
            (Placement::Pinned, 0) => &[0],
            (Placement::Pinned, _) => &[1],
            (Placement::Floating, _) => &[0, 1],
        };
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
        // inside it; sched_setaffinity reads `size_of` bytes of it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &c in cpus {
                libc::CPU_SET(c, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
        }
    }
}

/// Runs `client` on this thread placed as role 0, restoring its affinity.
fn placed<T>(placement: Placement, client: impl FnOnce() -> T) -> T {
    // SAFETY: as in `Placement::apply`; `saved` is written by the kernel.
    let saved = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set);
        set
    };
    placement.apply(0);
    let out = client();
    // SAFETY: restores the set read above.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&saved), &saved) };
    out
}

fn tokio_pair(n: u64, in_flight: u64, placement: Placement) -> Duration {
    placed(placement, || tokio_pair_placed(n, in_flight, placement))
}

fn tokio_pair_placed(n: u64, in_flight: u64, placement: Placement) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Req>(IN_FLIGHT as usize);
    let server = std::thread::spawn(move || {
        placement.apply(1);
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

fn crossbeam_pair(n: u64, in_flight: u64, placement: Placement) -> Duration {
    placed(placement, || crossbeam_pair_placed(n, in_flight, placement))
}

fn crossbeam_pair_placed(n: u64, in_flight: u64, placement: Placement) -> Duration {
    crossbeam_anchor::round_trips(n, in_flight, IN_FLIGHT as usize, move || placement.apply(1))
}

/// One group per configuration of ours, each against the same anchors, so
/// every ratio compares one configuration with the peers.
fn pipelined_group(
    c: &mut Criterion,
    name: &str,
    ours: fn() -> seastar_core::RuntimeBuilder,
    placement: Placement,
) {
    let mut g = c.benchmark_group(name);
    g.bench_function("seastar", |b| {
        b.iter_custom(|n| placed(placement, || seastar(ours(), move || seastar_pipelined(n))))
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|n| tokio_pair(n, IN_FLIGHT, placement))
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|n| crossbeam_pair(n, IN_FLIGHT, placement))
    });
    g.finish();
}

fn round_trip_group(
    c: &mut Criterion,
    name: &str,
    ours: fn() -> seastar_core::RuntimeBuilder,
    placement: Placement,
) {
    let mut g = c.benchmark_group(name);
    g.bench_function("seastar", |b| {
        b.iter_custom(|n| {
            placed(placement, || {
                seastar(ours(), move || seastar_one_at_a_time(n))
            })
        })
    });
    g.bench_function("tokio", |b| b.iter_custom(|n| tokio_pair(n, 1, placement)));
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|n| crossbeam_pair(n, 1, placement))
    });
    g.finish();
}

/// Two shards pinned to CPUs 0 and 1 that sleep in the kernel when idle
/// (the default). The cpuset is explicit: the suite runs this process
/// under `taskset -c 0`, and a runtime takes its CPUs from the inherited
/// affinity, which would put both shards on CPU 0.
fn pinned() -> seastar_core::RuntimeBuilder {
    Runtime::builder().shards(2).cpuset([0, 1])
}

/// Unpinned shards floating over CPUs 0 and 1 (as the anchors' threads in
/// this group): the kernel may run both sides on one core and skip the
/// cross-core wake-up of an idle vCPU.
fn unpinned() -> seastar_core::RuntimeBuilder {
    Runtime::builder().shards(2).cpuset([0, 1]).pin(false)
}

/// Two pinned shards in poll mode (`--poll-mode`): they never sleep in the
/// kernel, each spinning on its core (as the anchors' threads, which spin
/// in crossbeam's backoff before parking).
fn poll_mode() -> seastar_core::RuntimeBuilder {
    pinned().poll_mode(true)
}

/// Two pinned shards that poll for 200 us before sleeping (Seastar's
/// default).
fn polling() -> seastar_core::RuntimeBuilder {
    pinned().idle_poll(Duration::from_micros(200))
}

async fn seastar_one_at_a_time(n: u64) -> Duration {
    let t = Instant::now();
    for i in 0..n {
        std::hint::black_box(smp::submit_to(1, move || async move { i }).await.unwrap());
    }
    t.elapsed()
}

fn submit_to(c: &mut Criterion) {
    use Placement::{Floating, Pinned};
    round_trip_group(c, "cross_shard_round_trip", pinned, Pinned);
    round_trip_group(c, "cross_shard_round_trip_unpinned", unpinned, Floating);
    round_trip_group(c, "cross_shard_round_trip_idle_poll", polling, Pinned);
    round_trip_group(c, "cross_shard_round_trip_poll_mode", poll_mode, Pinned);
    pipelined_group(c, "submit_to_1024_in_flight", pinned, Pinned);
    pipelined_group(c, "submit_to_1024_in_flight_idle_poll", polling, Pinned);
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
