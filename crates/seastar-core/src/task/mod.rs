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

pub(crate) mod cell;
pub mod group;
pub(crate) mod home;
mod join;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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
    reactor::with(|shard| spawn_on(shard, shard.current_group().get(), future))
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
    let home = home::ShardHome::of(shard);
    let (runnable, handle) = cell::spawn(home, group, future);
    shard.queue().borrow_mut().push_local_in(runnable, group);
    JoinHandle::new(handle)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    use crate::{Runtime, smp, spawn_local, yield_now};

    type Slot = Arc<Mutex<Option<Waker>>>;

    /// A task ready once `flag` is set, leaving its waker in `slot`.
    fn wait_for(flag: Arc<AtomicBool>, slot: Slot) -> super::JoinHandle<()> {
        spawn_local(std::future::poll_fn(move |cx| {
            if flag.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }))
    }

    #[test]
    fn waker_used_on_another_shard_wakes_the_task_at_home() {
        let rt = Runtime::builder().shards(2).build().unwrap();
        rt.run(async {
            for _ in 0..100 {
                let flag = Arc::new(AtomicBool::new(false));
                let slot = Slot::default();
                let h = wait_for(flag.clone(), slot.clone());
                yield_now().await;
                let w = slot.lock().unwrap().take().expect("polled once");
                smp::submit_to(1, move || async move {
                    // Clone, wake and drop on shard 1: each is a request
                    // to shard 0.
                    let c = w.clone();
                    flag.store(true, Ordering::Release);
                    c.wake_by_ref();
                    drop(c);
                    w.wake();
                })
                .await
                .unwrap();
                h.await.unwrap();
            }
        });
    }

    #[test]
    fn waker_kept_by_a_plain_thread_keeps_a_detached_task_until_it_wakes() {
        let rt = Runtime::builder().shards(1).build().unwrap();
        rt.run(async move {
            let flag = Arc::new(AtomicBool::new(false));
            let slot = Slot::default();
            let (tx, rx) = futures::channel::oneshot::channel();
            let wait = wait_for(flag.clone(), slot.clone());
            // Detached; it reports its end (a dropped task drops `tx`).
            drop(spawn_local(async move {
                wait.await.unwrap();
                tx.send(()).unwrap();
            }));
            yield_now().await;
            yield_now().await;
            let w = slot.lock().unwrap().take().expect("polled once");
            std::thread::spawn(move || {
                // A foreign clone, then the local waker's drop (sent
                // home): the task must not be dropped meanwhile.
                let c = w.clone();
                drop(w);
                flag.store(true, Ordering::Release);
                c.wake();
            })
            .join()
            .unwrap();
            rx.await.expect("the waiting task was dropped");
        });
    }
}
