//! The life of one cross-shard call: futures that do not finish at once
//! (driven on the target after their first poll), panics after a wait,
//! cancellation by dropping the caller's future (before and while the call
//! runs), on the backend chosen by `SEASTAR_REACTOR_BACKEND`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::channel::oneshot;
use seastar_core::smp::{self, SubmitError};
use seastar_core::{shard_id, yield_now};

/// Records the shard it is dropped on (`usize::MAX` = not yet).
struct DropProbe(Arc<AtomicUsize>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.0.store(shard_id(), Ordering::SeqCst);
    }
}

async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..1_000_000 {
        if done() {
            return;
        }
        yield_now().await;
    }
    panic!("condition never became true");
}

#[seastar_core::test(shards = 2)]
async fn a_call_that_waits_is_driven_to_completion_on_the_target() {
    // Yields (wakes itself), then waits for a value sent from shard 0
    // (keeps a waker and is woken from another shard).
    let (tx, rx) = oneshot::channel::<u64>();
    let call = smp::submit_to(1, move || async move {
        yield_now().await;
        let v = rx.await.unwrap();
        yield_now().await;
        (shard_id(), v * 2)
    });
    tx.send(21).unwrap();
    assert_eq!(call.await.unwrap(), (1, 42));
}

#[seastar_core::test(shards = 2)]
async fn many_waiting_calls_interleave() {
    let calls: Vec<_> = (0..2_000u64)
        .map(|i| {
            smp::submit_to(1, move || async move {
                for _ in 0..(i % 3) {
                    yield_now().await;
                }
                i
            })
        })
        .collect();
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(c.await.unwrap(), i as u64);
    }
}

#[seastar_core::test(shards = 2)]
async fn a_panic_after_a_wait_is_an_error_and_the_shard_keeps_serving() {
    let r = smp::submit_to(1, || async {
        yield_now().await;
        panic!("boom after a yield");
    })
    .await;
    match r {
        Err(SubmitError::Panicked(p)) => {
            assert_eq!(p.downcast_ref::<&str>(), Some(&"boom after a yield"));
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    let closure_panics = smp::submit_to(1, || -> std::future::Ready<()> {
        panic!("in the closure");
    })
    .await;
    assert!(matches!(closure_panics, Err(SubmitError::Panicked(_))));
    assert_eq!(smp::submit_to(1, || async { shard_id() }).await.unwrap(), 1);
}

#[seastar_core::test(shards = 2)]
async fn dropping_the_caller_future_drops_a_waiting_call_on_its_target() {
    let dropped_on = Arc::new(AtomicUsize::new(usize::MAX));
    let started = Arc::new(AtomicUsize::new(0));
    let (d, s) = (dropped_on.clone(), started.clone());
    let call = smp::submit_to(1, move || async move {
        let _probe = DropProbe(d);
        s.store(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    });
    until(|| started.load(Ordering::SeqCst) == 1).await;
    drop(call);
    until(|| dropped_on.load(Ordering::SeqCst) != usize::MAX).await;
    assert_eq!(
        dropped_on.load(Ordering::SeqCst),
        1,
        "dropped on the target"
    );
    // The cell went back to shard 0 and was freed; calls go on.
    assert_eq!(smp::submit_to(1, || async { 7 }).await.unwrap(), 7);
}

#[seastar_core::test(shards = 2)]
async fn a_call_dropped_before_it_runs_or_after_it_finished_is_cleaned_up() {
    let ran = Arc::new(AtomicUsize::new(0));
    // Dropped at once: the start is still in this shard's outgoing
    // batch, the cancel follows it; the closure may run or not, but
    // nothing is leaked or double-freed and later calls work.
    for _ in 0..1_000 {
        let r = ran.clone();
        drop(smp::submit_to(1, move || async move {
            r.fetch_add(1, Ordering::SeqCst);
        }));
    }
    // Finished, then dropped without being awaited to the end.
    let done = Arc::new(AtomicUsize::new(0));
    let dn = done.clone();
    let call = smp::submit_to(1, move || async move {
        dn.store(1, Ordering::SeqCst);
        String::from("result nobody reads")
    });
    until(|| done.load(Ordering::SeqCst) == 1).await;
    for _ in 0..100 {
        yield_now().await;
    }
    drop(call);
    assert_eq!(smp::submit_to(1, || async { 8 }).await.unwrap(), 8);
    assert!(ran.load(Ordering::SeqCst) <= 1_000);
}
