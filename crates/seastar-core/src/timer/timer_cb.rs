//! The callback timer: arm, rearm, cancel, periodic.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::queue::{Action, TimerKey};
use crate::reactor;

/// Shared state of a [`Timer`], also held by the timer queue while armed.
pub(crate) struct TimerInner {
    callback: RefCell<Box<dyn FnMut()>>,
    key: Cell<Option<TimerKey>>,
    deadline: Cell<u64>,
    period: Cell<Option<u64>>,
}

/// A timer that runs a callback on its shard when it expires, optionally
/// every period. Dropping the timer cancels it.
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// use seastar_core::{Runtime, timer::{self, ManualClock, Timer}};
///
/// Runtime::builder().shards(1).manual_clock().build().unwrap().run(async {
///     let fired = Rc::new(Cell::new(0));
///     let f = fired.clone();
///     let t = Timer::new(move || f.set(f.get() + 1));
///     t.arm_periodic(Duration::from_secs(1));
///     ManualClock::advance(Duration::from_millis(3500)).await;
///     assert_eq!(fired.get(), 3);
///     assert!(t.cancel());
/// });
/// ```
pub struct Timer {
    inner: Rc<TimerInner>,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("armed", &self.armed())
            .finish()
    }
}

impl Timer {
    /// A disarmed timer that will run `callback` each time it fires.
    pub fn new(callback: impl FnMut() + 'static) -> Timer {
        Timer {
            inner: Rc::new(TimerInner {
                callback: RefCell::new(Box::new(callback)),
                key: Cell::new(None),
                deadline: Cell::new(0),
                period: Cell::new(None),
            }),
        }
    }

    /// Arms the timer to fire once at `deadline` (re-arms if armed).
    pub fn arm_at(&self, deadline: Instant) {
        let ns = reactor::with(|cx| cx.clock().to_ns(deadline));
        self.inner.period.set(None);
        self.inner.schedule(ns);
    }

    /// Arms the timer to fire once after `delay` (re-arms if armed).
    pub fn arm(&self, delay: Duration) {
        self.arm_at(super::now() + delay);
    }

    /// Same as [`arm`](Self::arm): Seastar's name for re-arming.
    pub fn rearm(&self, delay: Duration) {
        self.arm(delay);
    }

    /// Arms the timer to fire every `period`, first after one period.
    pub fn arm_periodic(&self, period: Duration) {
        let p = period.as_nanos().max(1) as u64;
        let now = reactor::with(|cx| cx.clock().now_ns());
        self.inner.period.set(Some(p));
        self.inner.schedule(now + p);
    }

    /// Disarms the timer; returns whether it was armed.
    pub fn cancel(&self) -> bool {
        self.inner.disarm()
    }

    /// Whether the timer is armed.
    pub fn armed(&self) -> bool {
        self.inner.key.get().is_some()
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.inner.disarm();
    }
}

impl TimerInner {
    fn schedule(self: &Rc<Self>, deadline: u64) {
        self.disarm();
        self.deadline.set(deadline);
        let key = reactor::with(|cx| {
            cx.timers()
                .borrow_mut()
                .insert(deadline, Action::Callback(self.clone()))
        });
        self.key.set(Some(key));
    }

    fn disarm(&self) -> bool {
        match self.key.take() {
            Some(key) => {
                let removed = reactor::try_with(|cx| cx.timers().borrow_mut().remove(key));
                drop(removed);
                true
            }
            None => false,
        }
    }

    /// Called by the reactor, outside the queue borrow, for an expired
    /// timer: re-arms a periodic timer, then runs the callback.
    pub(crate) fn fire(self: Rc<Self>) {
        self.key.set(None);
        if let Some(p) = self.period.get() {
            self.schedule(self.deadline.get() + p);
        }
        if let Ok(mut cb) = self.callback.try_borrow_mut() {
            cb();
        }
    }
}
