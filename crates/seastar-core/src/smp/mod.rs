//! Cross-shard calls: run a closure on another shard and await its result.
//!
//! [`submit_to`] moves a `Send` closure to the target shard, where it
//! builds and runs its (possibly `!Send`) future as a task of that shard.
//! The result comes back through a oneshot channel. Submitting to the
//! calling shard spawns locally, without crossing threads.
//!
//! # Transport
//!
//! Every ordered pair of shards has a bounded single-producer
//! single-consumer ring (`ring.rs`). A task woken on shard A for shard B
//! (the call itself when submitted, its wake-ups later, the reply's task
//! on the way back) is appended to A's outgoing batch for B; the reactor
//! publishes each batch into the ring once per loop iteration and signals B
//! once, so a burst of calls costs one publication and at most one wake-up.
//! B drains its incoming rings once per iteration. The reply returns the
//! same way on the reverse ring. When B falls behind and A's backlog for B
//! reaches the ring's capacity, `submit_to` waits for room: nothing is
//! dropped and nobody spins (B signals A when it frees space). Threads that
//! are not shards of the runtime fall back to B's mutex-protected inbox.
//!
//! ```
//! use seastar_core::{Runtime, shard_id, smp};
//!
//! Runtime::builder().shards(2).build().unwrap().run(async {
//!     let id = smp::submit_to(1, || async { shard_id() }).await.unwrap();
//!     assert_eq!(id, 1);
//! });
//! ```

mod foreign;
pub(crate) mod ring;
mod sharded;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::task::Poll;

use futures::FutureExt;

use crate::reactor;

/// Why a cross-shard call produced no value.
#[derive(thiserror::Error)]
pub enum SubmitError {
    /// The target shard does not exist.
    #[error("no shard {0}")]
    NoSuchShard(usize),
    /// The target shard stopped before the call finished.
    #[error("target shard stopped")]
    Stopped,
    /// The closure or its future panicked on the target shard.
    #[error("submitted call panicked")]
    Panicked(Box<dyn Any + Send>),
}

impl fmt::Debug for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::NoSuchShard(n) => write!(f, "NoSuchShard({n})"),
            SubmitError::Stopped => f.write_str("Stopped"),
            SubmitError::Panicked(_) => f.write_str("Panicked(..)"),
        }
    }
}

pub use foreign::ForeignPtr;
pub use sharded::{Sharded, StopHook};

/// Runs `f` on shard `shard` and resolves to the output of its future.
///
/// `f` is `Send` (it travels), its future need not be (it runs where it
/// was built, on the target), in the caller's scheduling group. Calling
/// with the own shard spawns locally.
///
/// # Panics
///
/// Outside a shard.
pub async fn submit_to<F, Fut, T>(shard: usize, f: F) -> Result<T, SubmitError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let (me, count) = reactor::with(|s| (s.id, s.count));
    if shard >= count {
        return Err(SubmitError::NoSuchShard(shard));
    }
    if shard != me {
        // Back-pressure: wait while our backlog for `shard` is full.
        std::future::poll_fn(|cx| {
            if reactor::with(|s| s.poll_space(shard, cx.waker())) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
    let call = AssertUnwindSafe(async move { f().await }).catch_unwind();
    let out = if shard == me {
        crate::spawn_local(call)
            .await
            .map_err(|_| SubmitError::Stopped)?
    } else {
        let (shared, group) = reactor::with(|s| (s.shared.clone(), s.current_group.get()));
        let schedule = move |r| reactor::schedule(r, &shared, shard);
        // SAFETY: `call` is `!Send` only because of the future `f` creates
        // once polled; what it holds before its first poll (`f`) is `Send`.
        // The schedule function delivers every wake to the target shard (a
        // local push only when already on it), shards run and drop tasks
        // only on their own thread, and tasks stranded by a stopped shard
        // are leaked, never dropped elsewhere. So the future is polled and
        // dropped on the target thread only. The output is `Send` and
        // travels back through the task handle awaited here.
        let (runnable, task) = unsafe {
            async_task::Builder::new()
                .metadata(group)
                .spawn_unchecked(|_| call, schedule)
        };
        runnable.schedule();
        task.fallible().await.ok_or(SubmitError::Stopped)?
    };
    out.map_err(SubmitError::Panicked)
}

/// Runs `f` on every shard concurrently; resolves to the results in shard
/// order.
///
/// ```
/// use seastar_core::{Runtime, shard_id, smp};
///
/// Runtime::builder().shards(2).build().unwrap().run(async {
///     let ids = smp::invoke_on_all(|| async { shard_id() }).await.unwrap();
///     assert_eq!(ids, vec![0, 1]);
/// });
/// ```
pub async fn invoke_on_all<F, Fut, T>(f: F) -> Result<Vec<T>, SubmitError>
where
    F: Fn() -> Fut + Send + Clone + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let n = crate::shard_count();
    let calls = (0..n).map(|s| submit_to(s, f.clone()));
    futures::future::join_all(calls).await.into_iter().collect()
}
