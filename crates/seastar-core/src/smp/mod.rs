//! Cross-shard calls: run a closure on another shard and await its result.
//!
//! [`submit_to`] moves a `Send` closure to the target shard, where it
//! builds and runs its (possibly `!Send`) future as a task of that shard.
//! The result comes back through a oneshot channel. Submitting to the
//! calling shard spawns locally, without crossing threads.
//!
//! Transport: the task travels through the target's remote inbox (a
//! mutex-protected vector drained once per reactor iteration, with the
//! wake-up handshake of `reactor/remote.rs`).
//!
//! ```
//! use seastar_core::{Runtime, shard_id, smp};
//!
//! Runtime::builder().shards(2).build().unwrap().run(async {
//!     let id = smp::submit_to(1, || async { shard_id() }).await.unwrap();
//!     assert_eq!(id, 1);
//! });
//! ```

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use futures::channel::oneshot;

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

/// Runs `f` on shard `shard` and resolves to the output of its future.
///
/// # Panics
///
/// Outside a shard.
pub fn submit_to<F, Fut, T>(shard: usize, f: F) -> impl Future<Output = Result<T, SubmitError>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let call = async move {
        let out = AssertUnwindSafe(async move { f().await })
            .catch_unwind()
            .await;
        let _ = tx.send(out);
    };
    let sent = reactor::with(|me| {
        if shard == me.id {
            crate::spawn_local(call).detach();
            return true;
        }
        let Some(remote) = me.shared.remotes.get(shard).cloned() else {
            return false;
        };
        let schedule = move |r| reactor::schedule(r, &remote);
        // SAFETY: `call` is `!Send` only because of the future `f` creates
        // once polled; what it captures before its first poll (`f` and the
        // sender) is `Send`. The schedule function routes every wake to the
        // target shard (a local push only when already on it), shards run
        // and drop tasks only on their own thread, and a closed inbox leaks
        // the task instead of dropping it elsewhere. So the future is
        // polled and dropped on the target thread only.
        let (runnable, task) = unsafe { async_task::spawn_unchecked(call, schedule) };
        task.detach();
        runnable.schedule();
        true
    });
    async move {
        if !sent {
            return Err(SubmitError::NoSuchShard(shard));
        }
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(p)) => Err(SubmitError::Panicked(p)),
            Err(_) => Err(SubmitError::Stopped),
        }
    }
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
