//! The stall detector's backtrace: a task that busy-loops past the
//! blocked-reactor threshold is caught in the act, and the sampled stack,
//! resolved off the shard, names the function it was spinning in. On the
//! shard the stall happened on, whichever it is, and on both backends
//! (`SEASTAR_REACTOR_BACKEND=io_uring|epoll`).

use std::time::{Duration, Instant};

use seastar_core::{Runtime, introspect, io::spawn_blocking, smp};

const THRESHOLD: Duration = Duration::from_millis(20);

/// The function the stalled task is caught in.
#[inline(never)]
fn spin_without_yielding_for_the_stall_test(d: Duration) -> u64 {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < d {
        n = std::hint::black_box(n.wrapping_add(1));
    }
    n
}

fn runtime() -> Runtime {
    Runtime::builder()
        .shards(2)
        .handle_signals(false)
        .pin(false)
        .task_quota(Duration::from_millis(1))
        .blocked_reactor_notify(THRESHOLD)
        .build()
        .unwrap()
}

#[test]
fn a_stall_backtrace_names_the_function_that_stalled() {
    let (before, info, frames) = runtime().run(async {
        smp::submit_to(1, || async {
            let before = introspect::stall_info();
            spin_without_yielding_for_the_stall_test(THRESHOLD * 5);
            seastar_core::yield_now().await;
            let info = introspect::stall_info();
            let bt = info.last_backtrace.clone();
            let frames = match bt {
                Some(bt) => spawn_blocking(move || bt.render()).await,
                None => String::new(),
            };
            (before, info, frames)
        })
        .await
        .unwrap()
    });
    // (A loaded machine may deschedule the shard long enough to count as
    // a stall of its own: the spin adds at least one.)
    assert!(info.count > before.count, "{before:?} {info:?}");
    let d = info.last_duration.unwrap();
    assert!(d >= THRESHOLD && d <= THRESHOLD * 20, "{d:?}");
    assert!(
        frames.contains("spin_without_yielding_for_the_stall_test"),
        "the stalled function is not in the backtrace:\n{frames}"
    );
    // The handler's own frames are skipped: the innermost frame is the
    // spinning code (the function or what it inlined, e.g. the clock read).
    assert!(!frames.contains("on_signal"), "{frames}");
}

#[test]
fn a_shard_that_never_stalls_reports_nothing() {
    let infos = runtime().run(async {
        smp::invoke_on_all(|| async { introspect::stall_info() })
            .await
            .unwrap()
    });
    for i in infos {
        assert_eq!(
            (i.count, i.last_duration, i.last_backtrace),
            (0, None, None)
        );
    }
}
