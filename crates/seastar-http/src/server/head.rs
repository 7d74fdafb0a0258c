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
//! hyper wants its timer `Send + Sync` and boxes each sleep. So the
//! state is not in the timer: the driver keeps it ([`HeadState`], plain
//! fields of the connection's burst) and lends it to the shard's thread
//! for each poll of the hyper connection ([`HeadState::lend`]), which is
//! the only time hyper asks its timer for a sleep or polls one. The timer
//! and its sleeps are then empty: a sleep is a zero-sized box, which
//! allocates nothing (a `malloc` and a `free` per request before, and an
//! `Arc` and a lock: about 150 instructions, callgrind). "A sleep alive"
//! is told by its polls: hyper polls its header sleep each time a head
//! read finds nothing more to read, so a poll of hyper's that polled it
//! ended with hyper waiting for a head.
//!
//! A sleep arms no timer of its own: it only compares its deadline with
//! the clock when hyper polls it. What wakes hyper at the deadline is the
//! connection's one timer, which the driver never sets past the deadline
//! of the head hyper waits for (see `http1`, `tick`). A timer per request
//! (armed at each head, cancelled when it is parsed) cost about 300
//! instructions per keep-alive request (callgrind, HTTPS hello).

use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use seastar_core::timer;

/// What hyper is given as its header read timeout when the server has
/// none: the sleeps must exist to tell when hyper waits for a head, but
/// these never fire (see [`HeadSleep`]).
pub(crate) const NO_TIMEOUT: Duration = Duration::from_secs(86400 * 365 * 30);

/// The head deadlines of one hyper connection and whether hyper waits
/// for a head; kept by the driver, lent for each poll of the connection.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HeadState {
    /// The deadline of the last head read hyper started.
    last: Option<Instant>,
    /// A deadline the next head read keeps if it is earlier than its own.
    carry: Option<Instant>,
    /// hyper polled its header sleep in the last poll: it waits for a head.
    waiting: bool,
}

thread_local! {
    /// The [`HeadState`] of the connection being polled on this thread.
    static LENT: Cell<HeadState> = const {
        Cell::new(HeadState { last: None, carry: None, waiting: false })
    };
}

/// Changes the lent state.
fn with_lent<R>(f: impl FnOnce(&mut HeadState) -> R) -> R {
    LENT.with(|c| {
        let mut st = c.get();
        let r = f(&mut st);
        c.set(st);
        r
    })
}

impl HeadState {
    /// Whether hyper waited for a request head at the end of its last poll.
    pub(crate) fn waiting(&self) -> bool {
        self.waiting
    }

    /// The deadline of the head read hyper started last (`None` without a
    /// header read timeout).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.last
    }

    /// Makes `deadline` the latest the next head read may end at.
    pub(crate) fn carry(&mut self, deadline: Option<Instant>) {
        self.carry = deadline;
    }

    /// Runs `poll`, a poll of the hyper connection whose timer this state
    /// belongs to, with the state lent to that timer.
    pub(crate) fn lend<R>(&mut self, poll: impl FnOnce() -> R) -> R {
        LENT.set(HeadState {
            waiting: false,
            ..*self
        });
        let r = poll();
        *self = LENT.replace(HeadState::default());
        r
    }
}

/// hyper's [`Timer`] for one HTTP/1 connection; see the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadTimer {
    /// Whether the server has a header read timeout.
    timed: bool,
}

impl HeadTimer {
    /// A timer for a server whose header read timeout is `timeout`.
    pub(crate) fn new(timeout: Option<Duration>) -> HeadTimer {
        HeadTimer {
            timed: timeout.is_some(),
        }
    }
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        let now = self.now();
        self.sleep_until(now.checked_add(duration).unwrap_or(now + NO_TIMEOUT))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        if self.timed {
            with_lent(|st| {
                st.last = Some(st.carry.take().map_or(deadline, |k| k.min(deadline)));
            });
        }
        Box::pin(HeadSleep)
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

/// A sleep of [`HeadTimer`], empty: its deadline is the lent state's
/// (hyper holds one sleep at a time). Marks the lent state waiting when
/// polled; never fires without a header read timeout. Ready once its
/// deadline has passed; it registers no waker (the connection's timer
/// wakes the task, see the [module docs](self)).
struct HeadSleep;

impl std::future::Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let due = with_lent(|st| {
            st.waiting = true;
            st.last
        });
        let Some(due) = due else {
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

    fn poll(s: &mut Pin<Box<dyn Sleep>>) -> Poll<()> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        s.as_mut().poll(&mut cx)
    }

    #[test]
    fn a_polled_sleep_means_waiting_and_a_carried_deadline_wins_once() {
        seastar_core::block_on(async {
            let t = HeadTimer::new(Some(Duration::from_secs(10)));
            let mut st = HeadState::default();
            assert!(!st.waiting());
            let now = t.now();
            st.carry(Some(now + Duration::from_secs(3)));
            let mut s = st.lend(|| t.sleep(Duration::from_secs(10)));
            assert!(!st.waiting(), "made, not polled: hyper read a head at once");
            assert_eq!(st.deadline(), Some(now + Duration::from_secs(3)));
            assert!(st.lend(|| poll(&mut s)).is_pending());
            assert!(st.waiting(), "polled: hyper waits for the head");
            st.lend(|| ());
            assert!(!st.waiting(), "a poll that did not poll it");
            let mut s = st.lend(|| t.sleep(Duration::from_secs(10)));
            assert_eq!(st.deadline(), Some(now + Duration::from_secs(10)), "once");
            st.lend(|| t.reset(&mut s, now + Duration::from_secs(20)));
            assert_eq!(st.deadline(), Some(now + Duration::from_secs(20)));
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
            let mut st = HeadState::default();
            let mut s = st.lend(|| t.sleep(Duration::from_secs(10)));
            assert!(st.lend(|| poll(&mut s)).is_pending());
            timer::ManualClock::advance(Duration::from_secs(9)).await;
            assert!(st.lend(|| poll(&mut s)).is_pending(), "one second early");
            timer::ManualClock::advance(Duration::from_secs(1)).await;
            assert!(st.lend(|| poll(&mut s)).is_ready(), "at its deadline");
        });
    }

    #[test]
    fn each_connection_sees_its_own_deadline() {
        seastar_core::block_on(async {
            let t = HeadTimer::new(Some(Duration::from_secs(10)));
            let now = t.now();
            let (mut a, mut b) = (HeadState::default(), HeadState::default());
            let _sa = a.lend(|| t.sleep_until(now + Duration::from_secs(5)));
            let _sb = b.lend(|| t.sleep_until(now + Duration::from_secs(7)));
            assert_eq!(a.deadline(), Some(now + Duration::from_secs(5)));
            assert_eq!(b.deadline(), Some(now + Duration::from_secs(7)));
        });
    }

    #[test]
    fn without_a_timeout_sleeps_only_mark_the_wait() {
        seastar_core::block_on(async {
            let t = HeadTimer::new(None);
            let mut st = HeadState::default();
            let mut s = st.lend(|| t.sleep(Duration::from_millis(1)));
            assert_eq!(st.deadline(), None);
            seastar_core::timer::sleep(Duration::from_millis(20)).await;
            assert!(st.lend(|| poll(&mut s)).is_pending(), "never fires");
            assert!(st.waiting());
        });
    }
}
