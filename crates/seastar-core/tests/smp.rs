//! Cross-shard machinery: rings under back-pressure, Sharded services,
//! ForeignPtr, on the backend chosen by `SEASTAR_REACTOR_BACKEND`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use seastar_core::smp::{self, ForeignPtr, Sharded, StopHook, SubmitError};
use seastar_core::{Runtime, shard_id, spawn_local, yield_now};

#[test]
fn tiny_ring_applies_back_pressure_and_loses_nothing() {
    Runtime::builder()
        .shards(2)
        .smp_ring_capacity(2)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            let calls: Vec<_> = (0..5_000u64)
                .map(|i| spawn_local(smp::submit_to(1, move || async move { (shard_id(), i) })))
                .collect();
            for (i, c) in calls.into_iter().enumerate() {
                assert_eq!(c.await.unwrap().unwrap(), (1, i as u64));
            }
        });
}

#[seastar_core::test(shards = 2)]
async fn calls_from_both_shards_cross_in_both_directions() {
    let out = smp::submit_to(1, || async {
        // From shard 1, call back into shard 0 many times.
        let calls = (0..1000u64).map(|i| smp::submit_to(0, move || async move { i * 2 }));
        futures::future::join_all(calls)
            .await
            .into_iter()
            .map(Result::unwrap)
            .sum::<u64>()
    })
    .await
    .unwrap();
    assert_eq!(out, (0..1000u64).map(|i| i * 2).sum());
}

struct Store {
    items: Cell<u64>,
    stops: Arc<AtomicUsize>,
}

impl StopHook for Store {
    async fn stop(self: Rc<Self>) {
        yield_now().await;
        self.stops.fetch_add(1, Ordering::SeqCst);
    }
}

#[seastar_core::test(shards = 2)]
async fn sharded_start_invoke_map_reduce_stop() {
    let stops = Arc::new(AtomicUsize::new(0));
    let s2 = stops.clone();
    {
        let store = Sharded::start(move |shard| Store {
            items: Cell::new(shard as u64 * 100),
            stops: s2.clone(),
        })
        .await
        .unwrap();
        assert_eq!(store.local().items.get(), 0);
        let seen = store
            .invoke_on(1, |s| async move { (shard_id(), s.items.get()) })
            .await
            .unwrap();
        assert_eq!(seen, (1, 100));
        store
            .invoke_on_all(|s| async move { s.items.set(s.items.get() + 1) })
            .await
            .unwrap();
        let sum = store
            .map_reduce(|s| async move { s.items.get() }, |a, b| a + b, 0)
            .await
            .unwrap();
        assert_eq!(sum, 1 + 101, "shard 0: 0 + 1, shard 1: 100 + 1");
        store.stop().await.unwrap();
        let after = store.invoke_on(1, |s| async move { s.items.get() }).await;
        assert!(matches!(after, Err(SubmitError::Stopped)));
    }
    assert_eq!(
        stops.load(Ordering::SeqCst),
        2,
        "stop hook runs once per shard"
    );
}

#[seastar_core::test(shards = 2)]
async fn sharded_stop_waits_for_calls_in_flight() {
    let stops = Arc::new(AtomicUsize::new(0));
    let s2 = stops.clone();
    {
        let store = Sharded::start(move |_| Store {
            items: Cell::new(0),
            stops: s2.clone(),
        })
        .await
        .unwrap();
        let (tx, rx) = futures::channel::oneshot::channel::<u64>();
        let slow = spawn_local(store.invoke_on(1, move |s| async move {
            let v = rx.await.unwrap();
            s.items.set(v);
            s.items.get()
        }));
        // Make sure the slow call is running on shard 1 before stopping.
        store.invoke_on(1, |_| async {}).await.unwrap();
        let stopping = spawn_local({
            let store = store.clone();
            async move { store.stop().await }
        });
        yield_now().await;
        assert!(!stopping.is_finished());
        tx.send(9).unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), 9);
        stopping.await.unwrap().unwrap();
    }
    assert_eq!(
        stops.load(Ordering::SeqCst),
        2,
        "stop returned before its hooks ran"
    );
}

struct DropsAt(Rc<Cell<Option<usize>>>);

impl Drop for DropsAt {
    fn drop(&mut self) {
        self.0.set(Some(shard_id()));
    }
}

#[seastar_core::test(shards = 2)]
async fn foreign_ptr_is_dropped_on_its_owner_shard() {
    let where_dropped = Rc::new(Cell::new(None));
    let p = ForeignPtr::new(DropsAt(where_dropped.clone()));
    assert_eq!(p.owner(), 0);
    let remote_view = smp::submit_to(1, move || async move {
        let visible = p.get().is_some();
        drop(p); // on shard 1: sent home
        visible
    })
    .await
    .unwrap();
    assert!(!remote_view, "a foreign shard cannot read the value");
    // Wait for the value to travel home.
    while where_dropped.get().is_none() {
        yield_now().await;
    }
    assert_eq!(where_dropped.get(), Some(0));
}
