//! Allocation + free of 64 bytes on an accounted shard thread: the
//! accounting allocator (`seastar`) against the plain system allocator it
//! wraps (`system`), in one run. Group = operation; function =
//! implementation (the convention `cargo xtask bench core` reads).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use seastar_core::alloc::{self, ShardAllocator};

#[global_allocator]
static ALLOC: ShardAllocator = ShardAllocator::new();

fn alloc_free_64(c: &mut Criterion) {
    // Account this thread as a shard would be (no limit): the same-shard
    // fast path, cells only.
    alloc::set_shard_limit(None);
    let layout = Layout::from_size_align(64, 8).unwrap();
    let mut g = c.benchmark_group("alloc_free_64");
    g.bench_function("seastar", |b| {
        b.iter(|| {
            // SAFETY: non-zero size; the block is freed with its layout.
            unsafe {
                let p = ALLOC.alloc(black_box(layout));
                ALLOC.dealloc(black_box(p), layout);
            }
        })
    });
    g.bench_function("system", |b| {
        b.iter(|| {
            // SAFETY: as above, with the system allocator.
            unsafe {
                let p = System.alloc(black_box(layout));
                System.dealloc(black_box(p), layout);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, alloc_free_64);
criterion_main!(benches);
