//! Shard-local tasks.
//!
//! [`spawn_local`] starts a future (which may be `!Send`) on the calling
//! shard; it stays there for life. The [`JoinHandle`] awaits its output,
//! aborts it, or detaches it (dropping the handle detaches, as in tokio).
//! A panic inside a task is caught at the task boundary: the shard keeps
//! running and the handle resolves to [`JoinError::Panicked`].
//!
//! Preemption is cooperative and costs no syscall: [`need_preempt`] reads
//! the monotonic clock (the vDSO) against the deadline the reactor set when
//! the current batch of tasks started (now + the task quota). Long loops
//! call [`maybe_yield`].

pub mod group;
mod join;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::FutureExt;

pub use group::{GroupError, SchedulingGroup, current_scheduling_group, spawn_local_in};
pub use join::{JoinError, JoinHandle};

use crate::reactor;

/// Spawns `future` on the calling shard and returns a handle to its output.
///
/// ```
/// # seastar_core::block_on(async {
/// use std::rc::Rc;
/// let shared = Rc::new(5); // !Send is fine: the task never leaves the shard
/// let s = shared.clone();
/// let h = seastar_core::spawn_local(async move { *s * 2 });
/// assert_eq!(h.await.unwrap(), 10);
/// # });
/// ```
///
/// # Panics
///
/// Outside a shard.
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    reactor::with(|shard| spawn_on(shard, shard.current_group.get(), future))
}

pub(crate) fn spawn_in<F>(group: usize, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    reactor::with(|shard| spawn_on(shard, group, future))
}

/// Spawns `future` in `group` on `shard` (the calling thread's).
#[inline]
fn spawn_on<F>(shard: &reactor::Shard, group: usize, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    {
        let meta = reactor::TaskMeta::homed(group, shard.shared.clone(), shard.id);
        // `spawn_local` would wrap the future in a check of the thread id
        // on every poll and on drop (two thread-local reads, ~50
        // instructions per spawn+await, callgrind); the reactor keeps the
        // rule that check enforces by construction: `schedule_task` queues
        // the `Runnable` here or hands it to this shard (SPSC ring, remote
        // inbox) without running it; only this shard runs it (`run_tasks`)
        // or drops it (`shutdown`); whatever could drop it elsewhere (a
        // closed or dropped inbox, ring or transport, a task without a
        // home) leaks it instead. A `!Send` output stays here because the
        // `JoinHandle` holding it is then `!Send`.
        // SAFETY: the `Runnable` of this possibly `!Send` future is only
        // run and dropped on this thread (above); the schedule function is
        // a `'static` fn item, `Send` and `Sync`.
        let (runnable, task) = unsafe {
            async_task::Builder::new().metadata(meta).spawn_unchecked(
                move |_| AssertUnwindSafe(future).catch_unwind(),
                reactor::schedule_task,
            )
        };
        shard.queue.borrow_mut().push(runnable);
        JoinHandle::new(task)
    }
}

/// Whether the running task should yield: the shard's task quota
/// (`--task-quota-ms`) has elapsed since the current batch of tasks started.
/// `false` outside a shard.
///
/// ```
/// # seastar_core::block_on(async {
/// let mut n = 0u64;
/// for i in 0..1_000_000u64 {
///     n = n.wrapping_add(i);
///     if seastar_core::need_preempt() {
///         seastar_core::yield_now().await;
///     }
/// }
/// # assert!(n > 0);
/// # });
/// ```
#[inline]
pub fn need_preempt() -> bool {
    reactor::try_with(|s| s.need_preempt()).unwrap_or(false)
}

/// Yields to the other ready tasks of the shard once.
///
/// ```
/// # seastar_core::block_on(async {
/// seastar_core::yield_now().await;
/// # });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// Yields only if [`need_preempt`] says the quota is spent.
///
/// ```
/// # seastar_core::block_on(async {
/// for _ in 0..1000 {
///     seastar_core::maybe_yield().await;
/// }
/// # });
/// ```
pub async fn maybe_yield() {
    if need_preempt() {
        yield_now().await;
    }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
