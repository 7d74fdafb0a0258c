//! A [`Sleep`] that APIs demanding `Send` futures accept.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use super::Sleep;
use crate::ShardId;

/// A [`Sleep`] checked against its shard, so that it may be `Send` and
/// `Sync`: for frameworks that demand `Send` futures although they run on
/// one shard (tonic's service methods, hyper's timer).
///
/// It remembers the shard that made it and touches the sleep only there:
/// polled or reset elsewhere it panics; dropped elsewhere it leaves its
/// timer to fire unseen (a stale wake-up) rather than reach into another
/// shard's timer queue.
///
/// ```
/// use std::time::Duration;
/// fn send<T: Send + Sync>(t: T) -> T { t }
/// seastar_core::block_on(async {
///     send(seastar_core::timer::sleep(Duration::from_micros(10)).into_send()).await;
/// });
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct SendSleep {
    sleep: ManuallyDrop<Sleep>,
    owner: ShardId,
}

// SAFETY: the inner `Sleep` is only polled, reset or dropped on `owner`
// (checked with the runtime-qualified shard id in `poll`, `reset` and
// `drop`); on any other thread it is plain data that is moved, or leaked.
unsafe impl Send for SendSleep {}
// SAFETY: a shared reference gives access to nothing (every use of the
// sleep takes `&mut self`).
unsafe impl Sync for SendSleep {}

impl Sleep {
    /// This sleep as a [`SendSleep`].
    ///
    /// # Panics
    /// Outside a shard.
    pub fn into_send(self) -> SendSleep {
        SendSleep {
            sleep: ManuallyDrop::new(self),
            owner: ShardId::current(),
        }
    }
}

impl SendSleep {
    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }

    /// Moves the deadline.
    ///
    /// # Panics
    /// Away from the shard that made it.
    pub fn reset(&mut self, deadline: Instant) {
        self.on_owner().reset(deadline)
    }

    fn on_owner(&mut self) -> &mut Sleep {
        assert!(
            self.owner.is_current(),
            "a SendSleep was used away from its shard ({})",
            self.owner
        );
        &mut self.sleep
    }
}

impl Drop for SendSleep {
    fn drop(&mut self) {
        if self.owner.is_current() {
            // SAFETY: dropped once, here, on its own shard.
            unsafe { ManuallyDrop::drop(&mut self.sleep) }
        }
    }
}

impl Future for SendSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(self.get_mut().on_owner()).poll(cx)
    }
}

#[cfg(test)]
// The tests carry a sleep out of the runtime that armed it, on purpose.
#[allow(clippy::async_yields_async)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dropped_on_another_runtime_it_leaves_the_foreign_queue_alone() {
        let s = crate::block_on(async {
            let mut s = crate::timer::sleep(Duration::from_secs(60)).into_send();
            // Armed: its timer now sits in this shard's queue.
            let waker = std::task::Waker::noop();
            assert!(
                Pin::new(&mut s)
                    .poll(&mut Context::from_waker(waker))
                    .is_pending()
            );
            s
        });
        // Another runtime on this same thread, also a shard 0: the drop
        // must not remove the timer key from this runtime's queue.
        crate::block_on(async move {
            let mut own = crate::timer::sleep(Duration::from_millis(1));
            drop(s);
            (&mut own).await;
        });
    }

    #[test]
    fn polled_away_from_its_shard_it_panics() {
        let s = crate::block_on(async { crate::timer::sleep(Duration::from_secs(1)).into_send() });
        let r = std::thread::spawn(move || {
            crate::block_on(async move {
                let mut s = s;
                let waker = std::task::Waker::noop();
                let _ = Pin::new(&mut s).poll(&mut Context::from_waker(waker));
            })
        })
        .join();
        assert!(r.is_err(), "polled on another runtime's shard 0");
    }
}
