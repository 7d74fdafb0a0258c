//! Per-shard memory accounting (feature `alloc`): an opt-in global
//! allocator that counts bytes per shard, enforces a soft per-shard limit
//! (`--memory` divided by the shard count) and calls shard-local
//! reclaimers under pressure, so that a cache evicts instead of the process
//! growing without bound.
//!
//! ```
//! // In the application's main crate:
//! #[global_allocator]
//! static ALLOC: seastar_core::alloc::ShardAllocator = seastar_core::alloc::ShardAllocator::new();
//! ```
//!
//! Then [`RuntimeBuilder::memory`](crate::RuntimeBuilder::memory) (or
//! `--memory 2G` through [`MemoryArgs`](crate::runtime::MemoryArgs), feature `cli`) sets each shard's limit when its thread
//! starts, [`stats()`] reports the calling shard's figures and
//! [`register_reclaimer`] installs a callback that frees memory on demand.
//!
//! # Design
//!
//! **A wrapper, not a new allocator.** [`ShardAllocator`] forwards every
//! request to [`std::alloc::System`] (or any other [`GlobalAlloc`](std::alloc::GlobalAlloc)
//! given to [`ShardAllocator::wrap`], e.g. a jemalloc or mimalloc crate).
//! Seastar proper owns each core's memory and carves it into per-shard
//! pages; doing that in Rust means reimplementing size classes, thread
//! caches, fragmentation control and a cross-CPU free path: thousands of
//! lines of `unsafe` where a bug corrupts memory silently. The platform
//! allocator already has per-thread caches, so the shard-local fast path
//! takes no lock there either; what it lacks is *accounting*, which is all
//! this module adds.
//!
//! **Counters are thread-local `Cell`s.** Each thread has a `thread_local!`
//! block of `Cell`s with `const` initialisers and no destructor: it needs no
//! lazy initialisation, registers nothing, and stays readable while the
//! thread's other thread-locals are being destroyed (when the allocator is
//! still called). An allocation or a free on the owning shard touches only
//! these cells: no atomic operation, no lock. The allocator itself never
//! allocates; the only code that may run inside it and allocate is a
//! reclaimer, under a guard flag that keeps reclaim from re-entering.
//! Threads that are not shards (the process before a runtime starts, helper
//! threads, the blocking-call pool) are not accounted: their requests go
//! straight to the inner allocator after writing the header below.
//!
//! **Memory freed on another thread goes back to its owner.** Per-thread
//! "net" counters (the freeing thread's figure goes down) would drift apart
//! under any cross-shard traffic: a shard that builds messages and hands
//! them to its neighbour would appear to leak and would run its reclaimers
//! for memory it no longer holds, while the receiver's figure would go
//! negative. So every block carries an 8-byte header (before the returned
//! pointer, so alignment is kept; `max(8, align)` bytes are reserved) naming
//! the owning shard by a *slot*: an index into a fixed table of
//! [`MAX_SHARDS`] entries claimed by a thread when it becomes an accounted
//! shard, plus the slot's generation. A free on the owning thread decrements
//! its `Cell`s. A free anywhere else adds the size to two relaxed atomic
//! counters in the owner's slot (one cache line per slot, touched only by
//! foreign frees and by its owner); the owner subtracts them lazily: when an
//! allocation would cross its limit (before asking reclaimers) and when
//! [`stats()`] is called. So [`Stats::allocated`] is "bytes allocated by
//! this shard and not yet freed, wherever they were freed", exact as of each
//! `stats()` call, and [`Stats::foreign_frees`] counts the blocks another
//! thread freed. The header costs 8 bytes per block; glibc rounds requests
//! to 16 bytes, so e.g. a 64-byte request still takes an 80-byte chunk.
//! Because the header lies before the pointer the compiler sees as the
//! start of a fresh object, it is never reached by pointer arithmetic on
//! that pointer (out of bounds in the optimizer's model: release builds
//! with LTO crashed), but through the inner block's exposed provenance
//! (see `allocator.rs`).
//!
//! Slots are per thread, not per runtime, so two runtimes running at once
//! (tests) do not mix their shards. When an accounted thread exits its slot
//! is released and its generation bumped: later frees of its blocks match no
//! live owner and are not counted anywhere. A free racing with the owner's
//! exit *and* the slot's reuse by a new thread may credit the new owner with
//! a stale block; its figure saturates at zero instead of wrapping.
//!
//! **Limits and reclaim.** The limit is soft: when an allocation would take
//! the shard over it, the shard first collects foreign frees, then calls its
//! reclaimers in registration order with the number of bytes wanted (the
//! overshoot plus a little slack, 1/64 of the limit up to 1 MiB, so that a
//! shard sitting at its limit does not reclaim on every allocation) until it
//! is back under. Then the allocation proceeds regardless: a process over
//! its budget is slower to notice than one that aborts, but a cache that
//! could not evict in time (it was borrowed) is not a reason to die.
//! [`Stats::over_limit`] counts those allocations. A reclaimer runs inside
//! the allocator of whatever code hit the limit: it may allocate and free
//! but is never re-entered (allocations it makes skip reclaim), should use
//! `try_borrow_mut` on shared state and give up (return 0) when it is busy,
//! and a panic in it is caught and the reclaimer dropped.
//!
//! | file | concept |
//! |---|---|
//! | `allocator.rs` | [`ShardAllocator`]: the `GlobalAlloc` wrapper and the block header |
//! | `account.rs` | per-thread counters, the owner-slot table, [`set_shard_limit`] |
//! | `stats.rs` | [`Stats`] and [`stats()`] |
//! | `reclaim.rs` | [`register_reclaimer`] and the [`Reclaimer`] registration handle |

mod account;
mod allocator;
mod reclaim;
mod stats;

pub use account::{MAX_SHARDS, set_shard_limit};
pub use allocator::ShardAllocator;
pub use reclaim::{Reclaimer, register_reclaimer};
pub use stats::{Stats, stats};
