//! Sleeping and timeouts.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::queue::{Action, TimerKey};
use crate::reactor;

/// A future that completes at a deadline. Created by [`sleep`] and
/// [`sleep_until`]. Dropping it cancels the timer in O(1).
///
/// It belongs to the shard that polled it (its timer sits in that shard's
/// queue), so it is not `Send`:
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// send(seastar_core::timer::sleep(std::time::Duration::from_secs(1)));
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    key: Option<TimerKey>,
    /// `!Send`: `key` names a slot of the timer queue of the shard that
    /// armed it; polled or dropped on another shard it would touch that
    /// shard's timers.
    _shard_bound: PhantomData<*const ()>,
}

/// Waits for `duration` on the shard's clock.
///
/// ```
/// # seastar_core::block_on(async {
/// seastar_core::timer::sleep(std::time::Duration::from_micros(50)).await;
/// # });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let now = super::now();
    Sleep {
        deadline: now
            .checked_add(duration)
            .unwrap_or(now + Duration::from_secs(86400 * 365 * 30)),
        key: None,
        _shard_bound: PhantomData,
    }
}

/// Waits until `deadline` on the shard's clock.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_core::timer;
/// timer::sleep_until(timer::now() + std::time::Duration::from_micros(50)).await;
/// # });
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        key: None,
        _shard_bound: PhantomData,
    }
}

impl Sleep {
    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (the timer is re-armed on the next poll).
    pub fn reset(&mut self, deadline: Instant) {
        self.cancel();
        self.deadline = deadline;
    }

    fn cancel(&mut self) {
        if let Some(key) = self.key.take() {
            let _ = reactor::try_with(|cx| cx.timers().borrow_mut().remove(key));
        }
    }
}

/// A deadline this close to the loop iteration's time is checked against
/// the clock itself (a task quota is 0.5 ms by default).
const NEAR_NS: u64 = 1_000_000;

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        reactor::with(|shard| {
            let mut timers = shard.timers().borrow_mut();
            match this.key {
                Some(key) => {
                    if timers.poll_fired(key, cx.waker()) {
                        timers.remove(key);
                        this.key = None;
                        return Poll::Ready(());
                    }
                    Poll::Pending
                }
                None => {
                    // Converted here only: a timer already queued is polled
                    // on every wake of its task (hyper's per-request
                    // timeouts), and the conversion reads an `Instant`.
                    let deadline = shard.clock().to_ns(this.deadline);
                    // Due already? Against the loop iteration's time first
                    // (no clock read: hyper arms a far timeout per request),
                    // and the clock itself only for a deadline that close.
                    let coarse = shard.coarse_now_ns();
                    if deadline <= coarse
                        || (deadline - coarse < NEAR_NS && deadline <= shard.clock().now_ns())
                    {
                        return Poll::Ready(());
                    }
                    let action = Action::Wake {
                        waker: Some(cx.waker().clone()),
                        fired: false,
                    };
                    this.key = Some(timers.insert(deadline, action));
                    Poll::Pending
                }
            }
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

pin_project_lite::pin_project! {
    /// A future bounded by a deadline. Created by [`timeout`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

/// Runs `future` for at most `duration`: its output, or [`Elapsed`].
///
/// ```
/// # seastar_core::block_on(async {
/// use std::time::Duration;
/// use seastar_core::timer::{timeout, Elapsed};
/// assert_eq!(timeout(Duration::from_millis(1), std::future::pending::<u8>()).await, Err(Elapsed));
/// assert_eq!(timeout(Duration::from_secs(1), async { 7 }).await, Ok(7));
/// # });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        Pin::new(this.sleep).poll(cx).map(|()| Err(Elapsed))
    }
}
