//! The shard clock: real (monotonic) or manual, plus the cached
//! low-resolution reading.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{reactor, sys};

/// A runtime's clock: nanoseconds since a common epoch, either read from
/// the monotonic clock or kept by hand.
#[derive(Clone)]
pub(crate) struct Clock {
    epoch: Instant,
    /// The monotonic clock's reading at `epoch`, in nanoseconds, read just
    /// after it: readings since `epoch_ns` lag those since `epoch` by one
    /// clock read (tens of nanoseconds), so a deadline set from an
    /// `Instant` fires that much late, never early.
    epoch_ns: u64,
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    pub(crate) fn new(manual: bool) -> Clock {
        let epoch = Instant::now();
        Clock {
            epoch,
            epoch_ns: sys::monotonic_ns(),
            manual: manual.then(|| Arc::new(AtomicU64::new(0))),
        }
    }

    /// Nanoseconds since the epoch.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        match &self.manual {
            None => sys::monotonic_ns().saturating_sub(self.epoch_ns),
            Some(t) => t.load(Ordering::Acquire),
        }
    }

    /// Real nanoseconds since the epoch, for timing work: `now` (a
    /// reading of [`now_ns`](Self::now_ns)) on the real clock; on a manual
    /// one, whose time does not pass while work runs, the monotonic clock.
    #[inline]
    pub(crate) fn real_ns(&self, now: u64) -> u64 {
        match &self.manual {
            None => now,
            Some(_) => self.real_now_ns(),
        }
    }

    /// The monotonic clock's reading (`sys::monotonic_ns`) at `now`, a
    /// reading of [`now_ns`](Self::now_ns): no clock read on the real
    /// clock; on a manual one, whose time is not real, the monotonic clock
    /// read now.
    #[inline]
    pub(crate) fn monotonic_at(&self, now: u64) -> u64 {
        match &self.manual {
            None => now.saturating_add(self.epoch_ns),
            Some(_) => sys::monotonic_ns(),
        }
    }

    /// Real nanoseconds since the epoch, read now.
    #[inline]
    pub(crate) fn real_now_ns(&self) -> u64 {
        sys::monotonic_ns().saturating_sub(self.epoch_ns)
    }

    pub(crate) fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    pub(crate) fn to_instant(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }

    pub(crate) fn to_ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch)
            .as_nanos()
            .min(u64::MAX as u128) as u64
    }

    fn advance(&self, by: Duration) -> bool {
        match &self.manual {
            Some(t) => {
                t.fetch_add(by.as_nanos().min(u64::MAX as u128) as u64, Ordering::AcqRel);
                true
            }
            None => false,
        }
    }
}

/// The current time on this shard's clock (the manual time under a manual
/// clock).
///
/// # Panics
///
/// Outside a shard.
pub fn now() -> Instant {
    reactor::with(|cx| {
        if cx.clock().is_manual() {
            cx.clock().to_instant(cx.clock().now_ns())
        } else {
            // The same instant without the round trip through nanoseconds
            // since the epoch (hyper asks for it on every request).
            Instant::now()
        }
    })
}

/// The time the reactor read in its current loop iteration (for its
/// timers, or at the first use after the iteration started when nothing
/// read it before): costs a thread-local load, lags the real clock by at
/// most one task quota. Use it for timestamps on hot paths (expiry
/// checks, statistics, timeouts). Under a manual clock it is the manual
/// time itself (as [`now`]), so that tests see no lag after an advance.
///
/// # Panics
///
/// Outside a shard.
pub fn lowres_now() -> Instant {
    reactor::with(|cx| cx.coarse_now())
}

/// The clock of a runtime built with
/// [`RuntimeBuilder::manual_clock`](crate::RuntimeBuilder::manual_clock).
///
/// ```
/// use std::time::Duration;
/// use seastar_core::{Runtime, spawn_local, timer::{self, ManualClock}};
///
/// Runtime::builder().shards(1).manual_clock().build().unwrap().run(async {
///     let t0 = timer::now();
///     let sleeper = spawn_local(timer::sleep(Duration::from_secs(3600)));
///     ManualClock::advance(Duration::from_secs(3600)).await;
///     sleeper.await.unwrap();
///     assert_eq!(timer::now() - t0, Duration::from_secs(3600));
/// });
/// ```
#[derive(Debug)]
pub struct ManualClock(());

impl ManualClock {
    /// Moves the runtime's manual clock forward by `by` at once and wakes
    /// every shard so that timers now due fire, in deadline order. The
    /// returned future completes once this shard's reactor has fired them
    /// (and run the callbacks of expired [`Timer`](super::Timer)s).
    ///
    /// # Panics
    ///
    /// Outside a shard, or if the runtime uses the real clock.
    pub fn advance(by: Duration) -> reactor::NextTick {
        reactor::with(|cx| {
            assert!(
                cx.clock().advance(by),
                "ManualClock::advance on a runtime with the real clock"
            );
            cx.shared().signal_all();
        });
        reactor::next_tick()
    }
}
