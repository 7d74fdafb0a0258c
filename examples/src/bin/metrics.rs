//! Chapter 11: metrics.
use seastar_core::{
    Runtime,
    metrics::{self, facade::counter},
    smp,
};

fn main() {
    Runtime::builder()
        .shards(2)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            // Each shard counts in its own registry; no shared cache line.
            smp::invoke_on_all(|| async {
                counter!("tutorial_requests_total", "route" => "/").increment(1);
            })
            .await
            .unwrap();
            // Gather every shard's metrics in the Prometheus text format.
            let text = metrics::prometheus::text().await.unwrap();
            for line in text
                .lines()
                .filter(|l| l.starts_with("tutorial_requests_total"))
            {
                println!("{line}");
            }
        });
}
