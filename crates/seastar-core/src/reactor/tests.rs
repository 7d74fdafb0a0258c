//! The reactor's loop seen from inside a shard, through its own counters.

use std::time::Duration;

use crate::{Runtime, reactor, smp};

/// How often shard 1 slept in the kernel while shard 0 made 100 calls to
/// it, one at a time.
fn sleeps_of_shard_1_during_calls(smp_poll: Duration) -> u64 {
    Runtime::builder()
        .shards(2)
        .pin(false)
        .handle_signals(false)
        .smp_poll(smp_poll)
        .build()
        .expect("runtime")
        .run(async {
            let sleeps = || smp::submit_to(1, || async { reactor::with(|s| s.stats.sleeps.get()) });
            let before = sleeps().await.expect("call");
            for i in 0..100u32 {
                let back = smp::submit_to(1, move || async move { i }).await;
                assert_eq!(back.expect("call"), i);
            }
            sleeps().await.expect("call") - before
        })
}

#[test]
fn a_shard_polls_instead_of_sleeping_between_cross_shard_messages() {
    assert_eq!(
        sleeps_of_shard_1_during_calls(Duration::from_secs(3600)),
        0,
        "within smp_poll of its last message a shard never sleeps"
    );
}

#[test]
fn without_smp_poll_an_idle_shard_sleeps_between_calls() {
    // Each call leaves shard 1 idle until the next one, which cannot come
    // before shard 0 has the reply: it goes to sleep (nearly) every time.
    let sleeps = sleeps_of_shard_1_during_calls(Duration::ZERO);
    assert!(sleeps > 0, "{sleeps} sleeps in 100 calls");
}
