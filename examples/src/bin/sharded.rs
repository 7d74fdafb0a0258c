//! Chapter 5: `Sharded` services.
use seastar_core::{
    Runtime, shard_id,
    smp::{Sharded, StopHook},
};
use std::{cell::RefCell, collections::HashMap};

/// A key-value store split over the shards: each key lives on one shard.
struct Store {
    map: RefCell<HashMap<String, String>>,
}

impl StopHook for Store {}

fn owner(key: &str) -> usize {
    key.bytes().map(usize::from).sum::<usize>() % seastar_core::shard_count()
}

fn main() {
    Runtime::builder()
        .shards(2)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            let store = Sharded::start(|_shard| Store {
                map: RefCell::new(HashMap::new()),
            })
            .await
            .unwrap();
            for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
                let (k, v) = (k.to_string(), v.to_string());
                store
                    .invoke_on(owner(&k), move |s| async move {
                        s.map.borrow_mut().insert(k, v);
                    })
                    .await
                    .unwrap();
            }
            let got = store
                .invoke_on(owner("b"), |s| async move {
                    (shard_id(), s.map.borrow().get("b").cloned())
                })
                .await
                .unwrap();
            println!("b is on shard {}: {:?}", got.0, got.1);
            let total = store
                .map_reduce(|s| async move { s.map.borrow().len() }, |a, b| a + b, 0)
                .await
                .unwrap();
            println!("keys in all shards: {total}");
            store.stop().await.unwrap();
        });
}
