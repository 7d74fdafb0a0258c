//! Chapter 1: a first app. Start a runtime, run a future on every shard.
use seastar_core::{Runtime, shard_count, shard_id, smp};

fn main() {
    let runtime = Runtime::builder()
        .shards(2) // omit it to get one shard per core
        .handle_signals(false)
        .build()
        .expect("runtime");
    let ids = runtime.run(async {
        println!("hello from shard {} of {}", shard_id(), shard_count());
        smp::invoke_on_all(|| async { shard_id() }).await.unwrap()
    });
    println!("every shard answered: {ids:?}");
}
