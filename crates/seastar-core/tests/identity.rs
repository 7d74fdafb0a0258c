//! Shard identity across runtimes: handles made by one runtime are not
//! mistaken for the same shard index of another (every `block_on` thread
//! is a shard 0), and shard-local state dies with its runtime.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use seastar_core::smp::{Sharded, StopHook, SubmitError};
use seastar_core::{Runtime, ShardId};

#[derive(Debug)]
struct Counter(Cell<u32>);
impl StopHook for Counter {}

#[test]
fn a_sharded_handle_does_not_reach_into_another_runtime() {
    let (tx, rx) = mpsc::channel::<Sharded<Counter>>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let a = std::thread::spawn(move || {
        seastar_core::block_on(async move {
            let s = Sharded::start(|_| Counter(Cell::new(7))).await.unwrap();
            assert_eq!(s.local().0.get(), 7);
            tx.send(s.clone()).unwrap();
            // Keep runtime A (and its service) alive while B tries it.
            done_rx.recv().unwrap();
            assert_eq!(s.local().0.get(), 7, "untouched by the other runtime");
            s.stop().await.unwrap();
        })
    });
    seastar_core::block_on(async move {
        let s = rx.recv().unwrap();
        assert!(s.try_local().is_none(), "runtime B's shard 0 is not A's");
        let call = s.invoke_on(0, |c| async move { c.0.set(0) }).await;
        assert!(matches!(call, Err(SubmitError::Stopped)), "{call:?}");
        assert!(matches!(s.stop().await, Err(SubmitError::Stopped)));
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.local()));
        let msg = panic.expect_err("local() outside its runtime");
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("used outside it"), "{msg}");
        done_tx.send(()).unwrap();
    });
    a.join().unwrap();
}

struct Tracked(Arc<AtomicBool>);
impl StopHook for Tracked {}
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_service_never_stopped_is_dropped_with_its_runtime() {
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let handle = seastar_core::block_on(async move {
        Sharded::start(move |_| Tracked(d.clone())).await.unwrap()
    });
    assert!(
        dropped.load(Ordering::SeqCst),
        "dropped when its runtime ended"
    );
    // The next runtime on this thread does not see it.
    seastar_core::block_on(async move {
        assert!(handle.try_local().is_none());
    });
}

#[test]
fn shard_ids_name_the_runtime() {
    let ids = Runtime::builder()
        .shards(2)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            seastar_core::smp::invoke_on_all(|| async { ShardId::current() })
                .await
                .unwrap()
        });
    assert_eq!(ids[0].index(), 0);
    assert_eq!(ids[1].index(), 1);
    assert_eq!(ids[0].runtime(), ids[1].runtime());
    let other = seastar_core::block_on(async { ShardId::current() });
    assert_ne!(other.runtime(), ids[0].runtime());
    assert!(!ids[0].is_current());
}
