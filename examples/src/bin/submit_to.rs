//! Chapter 4: shards and `submit_to`.
use seastar_core::{Runtime, shard_count, shard_id, smp};

fn main() {
    Runtime::builder()
        .shards(3)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            // Run a closure on shard 2; the closure and its result cross shards,
            // so they are `Send`; the future it builds runs on shard 2 and need not be.
            let on_2 = smp::submit_to(2, || async { shard_id() * 10 })
                .await
                .unwrap();
            println!("shard 2 answered {on_2}");

            // Sum work done on every shard.
            let parts = smp::invoke_on_all(|| async {
                let me = shard_id() as u64;
                (me * 100..(me + 1) * 100).sum::<u64>()
            })
            .await
            .unwrap();
            println!(
                "sum over {} shards: {}",
                shard_count(),
                parts.iter().sum::<u64>()
            );

            // Asking for a shard that does not exist is an error, not a panic.
            println!(
                "shard 7: {:?}",
                smp::submit_to(7, || async {}).await.is_err()
            );
        });
}
