//! `seastar-core`: a thread-per-core, shared-nothing async runtime.
//!
//! One reactor thread is pinned to each core ("shard"). Tasks spawned on a
//! shard stay there for life and are scheduled without locks; I/O goes
//! through the shard's own io_uring instance (or epoll, as a fallback);
//! timers live in the shard's own timer queue. Shards share no mutable
//! state: they talk by explicit messages.
//!
//! # Map of the crate
//!
//! | module | what it holds |
//! |---|---|
//! | [`ShardId`] | which shard of which runtime: the identity shard-bound handles check before touching shard state |
//! | [`runtime`] | [`Runtime`] and its builder, shard threads, CPU pinning, signals, the `cli` options |
//! | `reactor` (private) | the per-shard loop, the backend trait, its io_uring and epoll implementations, the run queue by scheduling group, the remote inbox and sleep/wake protocol |
//! | [`task`] | [`spawn_local`], [`JoinHandle`], [`yield_now`], [`need_preempt`], [`maybe_yield`], [`SchedulingGroup`](task::SchedulingGroup) |
//! | [`promise`] | shard-local oneshot [`promise()`](promise::promise) and [`SharedFuture`](promise::SharedFuture) |
//! | [`smp`] | cross-shard calls over SPSC rings: [`submit_to`](smp::submit_to), [`invoke_on_all`](smp::invoke_on_all), [`Sharded`](smp::Sharded), [`ForeignPtr`](smp::ForeignPtr) |
//! | [`poller`] | [`Poller`](poller::Poller): work added to every iteration of a shard's loop (a user-space device's rings), [`FdWatch`](poller::FdWatch) to sleep on a file descriptor |
//! | [`shard_local`] | values kept on the calling shard (a typed map dropped with the shard): per-shard state without `thread_local!` |
//! | [`sync`] | shard-local [`Semaphore`](sync::Semaphore), [`Gate`](sync::Gate), [`ConditionVariable`](sync::ConditionVariable), bounded [`Queue`](sync::Queue), [`AbortSource`](sync::AbortSource) |
//! | [`timer`] | [`sleep`](timer::sleep), [`timeout`](timer::timeout), [`Timer`](timer::Timer), the low-resolution and manual clocks |
//! | [`alloc`] (feature `alloc`) | [`ShardAllocator`](alloc::ShardAllocator), per-shard [`stats`](alloc::stats()), `--memory` limits, [`register_reclaimer`](alloc::register_reclaimer) |
//! | [`metrics`] (feature `metrics`) | a per-shard recorder for the `metrics` facade, built-in reactor/smp/memory metrics, [`gather`](metrics::gather) across shards, the Prometheus text format |
//! | [`introspect`] | typed, read-only views of the calling shard's reactor counters and scheduling groups (for admin endpoints) |
//! | [`io`] | completion-style, owned-buffer I/O on file descriptors, the buffer traits, blocking-call offload |
//! | [`stream`] | the one stream model of sockets and files: [`DataSource`](stream::DataSource)/[`DataSink`](stream::DataSink), buffered [`InputStream`](stream::InputStream) and [`OutputStream`](stream::OutputStream) |
//!
//! # Example
//!
//! ```
//! use seastar_core::{Runtime, shard_count, shard_id};
//!
//! let sum = Runtime::builder()
//!     .shards(1)
//!     .build()
//!     .unwrap()
//!     .run(async {
//!         let task = seastar_core::spawn_local(async { 40 + 2 });
//!         task.await.unwrap() + shard_id() * shard_count()
//!     });
//! assert_eq!(sum, 42);
//! ```
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
pub mod alloc;
pub mod introspect;
pub mod io;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod poller;
pub mod promise;
mod reactor;
pub mod runtime;
mod shard_id;
pub mod shard_local;
pub mod smp;
pub mod stream;
pub mod sync;
mod sys;
pub mod task;
pub mod timer;

pub use reactor::{BackendKind, NextTick, ParseBackendError};
pub use runtime::{
    Runtime, RuntimeBuilder, RuntimeError, StopSignal, block_on, request_stop, shard_count,
    shard_id, stop_signal,
};
pub use shard_id::ShardId;
pub use task::{JoinError, JoinHandle, maybe_yield, need_preempt, spawn_local, yield_now};

/// `#[seastar_core::test]`: runs an `async fn` test on a fresh runtime with
/// a printed seed that shuffles ready tasks in debug builds (see the macro's
/// docs for its arguments).
pub use seastar_macros::test;

// Lets `#[seastar_core::test]` (which names `::seastar_core`) work in this
// crate's own tests.
extern crate self as seastar_core;
