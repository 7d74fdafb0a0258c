//! The runtime: one pinned reactor thread per shard, started together and
//! stopped together.
//!
//! [`Runtime::run`] turns the calling thread into shard 0 (pinned for the
//! duration of the call, its previous CPU affinity restored afterwards),
//! starts shards 1..N on new threads pinned to their CPUs, runs the given
//! future on shard 0 and, when it returns, stops and joins every shard and
//! returns its output.
//!
//! SIGINT and SIGTERM (when [`RuntimeBuilder::handle_signals`] is on, the
//! default) request a graceful stop: [`stop_signal`] resolves on every
//! shard, and the app decides how to wind down. A second signal exits the
//! process at once.

mod builder;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
mod help;
mod signal;
mod start;

pub use builder::{RuntimeBuilder, RuntimeError, parse_cpuset};
#[cfg(feature = "cli")]
pub use cli::{DEFAULT_SHUTDOWN_TIMEOUT_S, MemoryArgs, RuntimeArgs};
#[cfg(feature = "cli")]
pub use help::help_gaps;
pub use signal::{StopSignal, request_stop, stop_signal};

use crate::reactor;

/// A configured runtime, ready to [`run`](Runtime::run).
///
/// ```
/// let n = seastar_core::Runtime::builder()
///     .shards(2)
///     .build()
///     .unwrap()
///     .run(async { seastar_core::shard_count() });
/// assert_eq!(n, 2);
/// ```
#[derive(Debug)]
pub struct Runtime {
    config: builder::Config,
}

impl Runtime {
    /// A builder with the defaults: one shard per CPU in the process
    /// affinity mask, backend `auto` (io_uring, else epoll; overridden by
    /// `SEASTAR_REACTOR_BACKEND`), no poll mode, no idle polling, a 0.5 ms
    /// task quota, signal handling on.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Runs `main` on shard 0 with every shard up; returns its output once
    /// every shard has stopped. A panic in `main` is resumed here after the
    /// shards are stopped.
    pub fn run<F: std::future::Future + 'static>(self, main: F) -> F::Output
    where
        F::Output: 'static,
    {
        start::run(self.config, main)
    }

    /// The backend the shards will use (after `auto` and the environment
    /// override are resolved), if one was forced.
    pub fn backend(&self) -> Option<crate::BackendKind> {
        self.config.backend
    }

    /// Number of shards this runtime will start.
    pub fn shards(&self) -> usize {
        self.config.cpus.len()
    }
}

/// Runs `future` to completion on a fresh single-shard runtime on the
/// calling thread (not pinned). Handy in tests and examples.
///
/// ```
/// assert_eq!(seastar_core::block_on(async { 1 + 1 }), 2);
/// ```
pub fn block_on<F: std::future::Future + 'static>(future: F) -> F::Output
where
    F::Output: 'static,
{
    Runtime::builder()
        .shards(1)
        .pin(false)
        .handle_signals(false)
        .build()
        .expect("build single-shard runtime")
        .run(future)
}

/// The calling shard's id, `0..shard_count()`.
///
/// # Panics
///
/// Outside a shard.
pub fn shard_id() -> usize {
    reactor::with(|s| s.id())
}

/// The number of shards of the calling shard's runtime.
///
/// # Panics
///
/// Outside a shard.
pub fn shard_count() -> usize {
    reactor::with(|s| s.count())
}

/// The I/O backend of the calling shard.
///
/// # Panics
///
/// Outside a shard.
pub fn backend() -> crate::BackendKind {
    reactor::with(|s| s.backend_kind())
}

/// The calling shard's backend with its io_uring features, for start-up
/// lines: `io_uring (defer_taskrun+coop_taskrun+registered_ring_fd+multishot_accept)`
/// or `epoll`.
///
/// ```
/// # seastar_core::block_on(async {
/// let b = seastar_core::runtime::backend_summary();
/// assert!(b.starts_with("io_uring") || b == "epoll");
/// # });
/// ```
///
/// # Panics
///
/// Outside a shard.
pub fn backend_summary() -> String {
    match crate::io::uring_features() {
        Some(f) => format!("{} ({f})", backend()),
        None => backend().to_string(),
    }
}
