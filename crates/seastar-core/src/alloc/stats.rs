//! The calling shard's memory figures.

use super::account::{LOCAL, drain};

/// Memory figures of one shard, from [`stats()`].
///
/// Sizes include the 8-byte (or alignment-sized) header kept in front of
/// each block, not the inner allocator's own overhead. A `realloc` counts
/// as one free and one allocation.
///
/// ```
/// let s = seastar_core::alloc::Stats::default();
/// assert_eq!(s.allocations - s.frees, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The calling thread's shard id, `None` outside a running shard.
    pub shard: Option<usize>,
    /// Bytes allocated by this shard and not freed yet, wherever they were
    /// freed (frees by other threads are collected by this call).
    pub allocated: u64,
    /// Allocations made by this shard.
    pub allocations: u64,
    /// This shard's blocks freed so far, by any thread.
    pub frees: u64,
    /// Of [`frees`](Stats::frees), those done by another thread.
    pub foreign_frees: u64,
    /// The shard's soft limit in bytes, if any.
    pub limit: Option<u64>,
    /// Times the shard crossed its limit and ran its reclaimers.
    pub reclaims: u64,
    /// Bytes the reclaimers reported freeing.
    pub reclaimed: u64,
    /// Allocations granted although the shard stayed over its limit after
    /// reclaim (the limit is soft).
    pub over_limit: u64,
}

/// The calling shard's memory figures. All zero on a thread that is not an
/// accounted shard, or without
/// [`ShardAllocator`](super::ShardAllocator) as the global allocator.
///
/// ```
/// let n = seastar_core::Runtime::builder()
///     .shards(1)
///     .memory(64 << 20)
///     .handle_signals(false)
///     .build()
///     .unwrap()
///     .run(async {
///         let s = seastar_core::alloc::stats();
///         assert_eq!(s.shard, Some(0));
///         s.limit
///     });
/// assert_eq!(n, Some(64 << 20));
/// ```
pub fn stats() -> Stats {
    let shard = crate::reactor::try_with(|s| s.id()).ok();
    let figures = LOCAL.try_with(|l| {
        drain(l);
        let limit = l.limit.get();
        Stats {
            shard,
            allocated: l.allocated.get(),
            allocations: l.allocations.get(),
            frees: l.frees.get(),
            foreign_frees: l.foreign_frees.get(),
            limit: (limit != u64::MAX).then_some(limit),
            reclaims: l.reclaims.get(),
            reclaimed: l.reclaimed.get(),
            over_limit: l.over_limit.get(),
        }
    });
    figures.unwrap_or(Stats {
        shard,
        ..Stats::default()
    })
}
