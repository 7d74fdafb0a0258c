//! Busy time (the `metrics` feature): the iterations that ran tasks count
//! their real duration, on the real clock and on a manual one alike.

#![cfg(feature = "metrics")]

use std::time::{Duration, Instant};

use seastar_core::{Runtime, introspect, spawn_local};

/// Busy nanoseconds added while a task spins for `spin`.
async fn busy_while_spinning(spin: Duration) -> u64 {
    let before = introspect::busy_ns();
    spawn_local(async move {
        let t = Instant::now();
        while t.elapsed() < spin {
            std::hint::spin_loop();
        }
    })
    .await
    .unwrap();
    // The iteration that ran the spin adds its time once it ends.
    seastar_core::yield_now().await;
    introspect::busy_ns() - before
}

#[test]
fn busy_time_counts_the_tasks_that_ran() {
    let spin = Duration::from_millis(20);
    let busy = Runtime::builder()
        .shards(1)
        .build()
        .unwrap()
        .run(busy_while_spinning(spin));
    assert!(busy >= spin.as_nanos() as u64, "busy {busy} ns");
}

#[test]
fn busy_time_is_real_time_on_a_manual_clock() {
    let spin = Duration::from_millis(20);
    let busy = Runtime::builder()
        .shards(1)
        .manual_clock()
        .build()
        .unwrap()
        .run(busy_while_spinning(spin));
    assert!(busy >= spin.as_nanos() as u64, "busy {busy} ns");
}
