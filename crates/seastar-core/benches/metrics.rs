//! Recording on a shard. `counter_increment`: our per-shard cell through a
//! kept `metrics::Counter` handle (`seastar`) against the storage the
//! `metrics-util` registry (behind `metrics-exporter-prometheus`) gives a
//! handle, an `Arc<AtomicU64>` bumped with `fetch_add` (`atomic_fetch_add`).
//! Ours alone: `counter_macro` (the `counter!` macro on every call: key
//! lookup in the shard's map plus the handle) and `histogram_record`.
//! Group = operation; function = implementation.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use seastar_core::Runtime;
use seastar_core::metrics::facade::{counter, histogram};

fn record(crit: &mut Criterion) {
    // The runtime's main must be 'static: lend it the Criterion by value.
    let mut c = std::mem::take(crit);
    *crit = Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async move {
            let mut g = c.benchmark_group("counter_increment");
            let handle = counter!("bench_requests_total", "path" => "/");
            g.bench_function("seastar", |b| b.iter(|| handle.increment(black_box(1))));
            let atomic = Arc::new(AtomicU64::new(0));
            g.bench_function("atomic_fetch_add", |b| {
                b.iter(|| atomic.fetch_add(black_box(1), Ordering::Relaxed))
            });
            g.finish();
            let mut g = c.benchmark_group("counter_macro");
            g.bench_function("seastar", |b| {
                b.iter(|| counter!("bench_requests_total", "path" => "/").increment(black_box(1)))
            });
            g.finish();
            let mut g = c.benchmark_group("histogram_record");
            let h = histogram!("bench_latency_seconds");
            g.bench_function("seastar", |b| b.iter(|| h.record(black_box(0.003))));
            g.finish();
            c
        });
}

criterion_group!(benches, record);
criterion_main!(benches);
