//! [`HeadTimer`]: hyper's timer for one HTTP/1 connection, which also
//! tells the driver when hyper is waiting for a request head.
//!
//! hyper 1.x uses an HTTP/1 server connection's timer for one thing only,
//! the header read timeout: it arms a sleep when it starts reading a
//! request head and drops it once the head is parsed (`proto::h1::conn`,
//! `poll_read_head`). So a sleep of this timer being alive means that
//! hyper is between requests; after at least one request on the same
//! hyper connection, that it is idle in its keep-alive sense (the response
//! was written and the request body read), which is when the driver may
//! take the connection apart (see `http1`). The timer also carries the
//! header deadline over such a pause: the first head read by the next
//! hyper connection keeps the deadline of the wait that the pause
//! interrupted, so a parked connection gets no more time than hyper would
//! have given it.
//!
//! hyper wants its timer `Send + Sync`; the state is an atomic counter
//! and an uncontended lock (only ever touched on the connection's shard).
//! Per request hyper asks for one sleep: the lock keeps the deadline as
//! the `Instant` it is (callgrind: about 30 instructions less per request
//! than converting it to nanoseconds for an atomic).
//!
//! A sleep arms no timer of its own: it only compares its deadline with
//! the clock when hyper polls it (hyper does so each time a head read
//! finds nothing more to read). What wakes hyper at the deadline is the
//! connection's one timer, which the driver never sets past the deadline
//! of the head hyper waits for (see `http1`, `tick`). A timer per request
//! (armed at each head, cancelled when it is parsed) cost about 300
//! instructions per keep-alive request (callgrind, HTTPS hello).

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use seastar_core::timer;

/// What hyper is given as its header read timeout when the server has
/// none: the sleeps must exist to tell when hyper waits for a head, but
/// these never fire (see [`HeadSleep`]).
pub(crate) const NO_TIMEOUT: Duration = Duration::from_secs(86400 * 365 * 30);

/// The state shared by a connection's driver and its timers.
#[derive(Debug)]
struct Clock {
    /// Whether the server has a header read timeout.
    timed: bool,
    /// hyper's sleeps alive now: hyper is reading a request head.
    waiting: AtomicU32,
    deadlines: Mutex<Deadlines>,
}

#[derive(Debug, Default)]
struct Deadlines {
    /// The deadline of the last head read hyper started.
    last: Option<Instant>,
    /// A deadline the next head read keeps if it is earlier than its own.
    carry: Option<Instant>,
}

impl Clock {
    /// Single-threaded use (one shard): a load and a store, no
    /// read-modify-write instruction.
    fn add_waiting(&self, d: i32) {
        let n = self.waiting.load(Relaxed);
        self.waiting.store(n.wrapping_add_signed(d), Relaxed);
    }

    /// Never poisoned in practice: nothing panics while it is held.
    fn deadlines(&self) -> MutexGuard<'_, Deadlines> {
        self.deadlines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// hyper's [`Timer`] for one HTTP/1 connection; see the [module docs](self).
#[derive(Debug, Clone)]
pub(crate) struct HeadTimer {
    clock: Arc<Clock>,
}

impl HeadTimer {
    /// A timer for a server whose header read timeout is `timeout`.
    pub(crate) fn new(timeout: Option<Duration>) -> HeadTimer {
        HeadTimer {
            clock: Arc::new(Clock {
                timed: timeout.is_some(),
                waiting: AtomicU32::new(0),
                deadlines: Mutex::default(),
            }),
        }
    }

    /// Whether hyper is reading a request head now.
    pub(crate) fn waiting(&self) -> bool {
        self.clock.waiting.load(Relaxed) > 0
    }

    /// The deadline of the head read hyper started last (`None` without a
    /// header read timeout).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.clock.deadlines().last
    }

    /// Makes `deadline` the latest the next head read may end at.
    pub(crate) fn carry(&self, deadline: Option<Instant>) {
        self.clock.deadlines().carry = deadline;
    }
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        let now = self.now();
        self.sleep_until(now.checked_add(duration).unwrap_or(now + NO_TIMEOUT))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let c = &self.clock;
        c.add_waiting(1);
        let due = c.timed.then(|| {
            let mut d = c.deadlines();
            let due = d.carry.take().map_or(deadline, |k| k.min(deadline));
            d.last = Some(due);
            due
        });
        Box::pin(HeadSleep {
            due,
            clock: c.clone(),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        // Only before a head read hyper restarts; a new sleep is simplest.
        *sleep = self.sleep_until(new_deadline);
    }

    /// The loop iteration's clock, as [`seastar_net::hyper::ShardTimer`].
    fn now(&self) -> Instant {
        timer::lowres_now()
    }
}

/// A deadline this close to the loop iteration's time is checked against
/// the clock itself (as `seastar_core::timer::Sleep` does).
const NEAR: Duration = Duration::from_millis(1);

/// A sleep of [`HeadTimer`]: counted alive while hyper holds it; never
/// fires without a header read timeout. Ready once its deadline has
/// passed; it registers no waker (the connection's timer wakes the task,
/// see the [module docs](self)).
struct HeadSleep {
    due: Option<Instant>,
    clock: Arc<Clock>,
}

impl Drop for HeadSleep {
    fn drop(&mut self) {
        self.clock.add_waiting(-1);
    }
}

impl std::future::Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let Some(due) = self.due else {
            return Poll::Pending;
        };
        // The loop iteration's time first (no clock read), the clock
        // itself only for a deadline that close.
        let coarse = timer::lowres_now();
        if due <= coarse || (due - coarse < NEAR && due <= timer::now()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Sleep for HeadSleep {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_alive_means_waiting_and_a_carried_deadline_wins_once() {
        seastar_core::block_on(async {
            let t = HeadTimer::new(Some(Duration::from_secs(10)));
            assert!(!t.waiting());
            let now = t.now();
            t.carry(Some(now + Duration::from_secs(3)));
            let s = t.sleep(Duration::from_secs(10));
            assert!(t.waiting());
            assert_eq!(t.deadline(), Some(now + Duration::from_secs(3)));
            drop(s);
            assert!(!t.waiting());
            let mut s = t.sleep(Duration::from_secs(10));
            assert_eq!(t.deadline(), Some(now + Duration::from_secs(10)), "once");
            t.reset(&mut s, now + Duration::from_secs(20));
            assert!(t.waiting(), "one sleep alive after a reset");
            assert_eq!(t.deadline(), Some(now + Duration::from_secs(20)));
            drop(s);
            assert!(!t.waiting());
        });
    }

    #[test]
    fn a_sleep_is_ready_once_its_deadline_passed() {
        let rt = seastar_core::Runtime::builder()
            .shards(1)
            .manual_clock()
            .build()
            .unwrap();
        rt.run(async {
            let t = HeadTimer::new(Some(Duration::from_secs(10)));
            let mut s = t.sleep(Duration::from_secs(10));
            let mut cx = Context::from_waker(std::task::Waker::noop());
            assert!(s.as_mut().poll(&mut cx).is_pending());
            timer::ManualClock::advance(Duration::from_secs(9)).await;
            assert!(s.as_mut().poll(&mut cx).is_pending(), "one second early");
            timer::ManualClock::advance(Duration::from_secs(1)).await;
            assert!(s.as_mut().poll(&mut cx).is_ready(), "at its deadline");
        });
    }

    #[test]
    fn without_a_timeout_sleeps_only_mark_the_wait() {
        seastar_core::block_on(async {
            let t = HeadTimer::new(None);
            let s = t.sleep(Duration::from_millis(1));
            assert!(t.waiting());
            assert_eq!(t.deadline(), None);
            let fired = seastar_core::timer::timeout(Duration::from_millis(20), s).await;
            assert!(fired.is_err(), "never fires");
            assert!(!t.waiting());
        });
    }
}
