//! Chapter 12: testing with the manual clock and `#[seastar_core::test]`.
use seastar_core::{
    smp, spawn_local,
    timer::{self, ManualClock},
};
use std::time::Duration;

/// A retry loop under test: tries `attempts` times, waiting `backoff` between tries.
async fn retry(attempts: u32, backoff: Duration, mut op: impl FnMut() -> bool) -> bool {
    for i in 0..attempts {
        if op() {
            return true;
        }
        if i + 1 < attempts {
            timer::sleep(backoff).await;
        }
    }
    false
}

#[seastar_core::test(manual_clock, timeout_secs = 10)]
async fn retry_waits_its_backoff_and_no_longer() {
    let mut calls = 0;
    let task = spawn_local(retry(3, Duration::from_secs(60), move || {
        calls += 1;
        calls == 3
    }));
    // Let the task make its first attempt and start its first backoff.
    seastar_core::yield_now().await;
    // One minute of backoff passes instantly; the task is still waiting for the second.
    ManualClock::advance(Duration::from_secs(60)).await;
    assert!(!task.is_finished());
    ManualClock::advance(Duration::from_secs(60)).await;
    assert!(task.await.unwrap());
}

#[seastar_core::test(shards = 2, timeout_secs = 10)]
async fn a_call_to_shard_1_runs_there() -> Result<(), smp::SubmitError> {
    let id = smp::submit_to(1, || async { seastar_core::shard_id() }).await?;
    assert_eq!(id, 1);
    Ok(())
}
