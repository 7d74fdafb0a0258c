//! Shard-local synchronization: [`Semaphore`], [`Gate`],
//! [`ConditionVariable`], a bounded [`Queue`] and an [`AbortSource`].
//!
//! Tasks of one shard run one at a time on one thread, so they never race
//! for memory; they still have to *wait for each other*: bound the work in
//! flight, let a shutdown wait for requests already accepted, sleep until
//! some state changes, pass items between producers and consumers at a
//! bounded rate, and cancel a group of operations at once. These are
//! Seastar's answers to those needs, built on `Rc`, `Cell` and `RefCell`:
//! no atomics, no locks, and every type is `!Send`. A primitive belongs to
//! the shard that created it; to wait on another shard's, send it a
//! message ([`smp::submit_to`](crate::smp::submit_to)).
//!
//! # Handles
//!
//! Each primitive is a cheap handle around one shared state: cloning it
//! (one non-atomic increment) gives another handle to *the same* semaphore,
//! gate or queue, and the futures it returns own a handle too, so they are
//! `'static` and can be moved into [`spawn_local`](crate::spawn_local).
//!
//! # Waiting, fairness and cancellation
//!
//! Waiters are served in FIFO order. Futures are lazy, as everywhere in
//! Rust: a waiter takes its place in line the first time it is polled.
//! Whoever serves a waiter completes its part of the bargain before waking
//! it (the semaphore deducts the units, the queue moves the item), so a
//! woken task never finds that someone else took what it was woken for.
//!
//! **Dropping a waiting future leaves the primitive as if it had never
//! waited.** Its place in line is given up at once, and whatever it had
//! been handed but not yet returned goes on to the next in line: units
//! return to the semaphore, a popped item goes to the next consumer (or
//! back to the head of the queue), a condition-variable signal goes to the
//! next waiter. That is what makes every wait composable with
//! [`timer::timeout`](crate::timer::timeout), [`abortable`] and `select`:
//! the losing branch is dropped and nothing leaks.
//!
//! # Errors
//!
//! One [`Error`] enum covers every way a wait can fail ([`Error::Timeout`],
//! [`Error::Broken`], [`Error::Aborted`], [`Error::GateClosed`]), so code
//! that combines several primitives propagates with `?` into one type. Two
//! narrower types exist where a wider one would lie: [`Gate::enter`] can
//! only fail with [`GateClosed`], and a refused push gives the item back
//! in a [`PushError`]. A primitive that is *broken* (semaphore, condition
//! variable) or *aborted* (queue) fails every current and future waiter
//! with [`Error::Broken`] carrying the [`Cause`] its owner gave.
//!
//! ```
//! # seastar_core::block_on(async {
//! use seastar_core::sync::{Gate, Semaphore};
//!
//! let gate = Gate::new();
//! let limit = Semaphore::new(2); // at most two requests at a time
//! let guard = gate.enter().unwrap();
//! let units = limit.acquire(1).await.unwrap();
//! assert_eq!(limit.available_units(), 1);
//! drop((units, guard));
//! gate.close().await; // no request left in flight
//! assert!(gate.enter().is_err());
//! # });
//! ```

mod abort;
mod condvar;
mod gate;
mod queue;
mod queue_futures;
mod semaphore;
mod semaphore_units;
mod wait_list;

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

pub use abort::{AbortSource, Abortable, Aborted, Subscription, abortable, abortable_sleep};
pub use condvar::{ConditionVariable, Wait};
pub use gate::{Closing, Gate, GateClosed, GateGuard, with_gate};
pub use queue::{PushError, Queue};
pub use queue_futures::{Pop, Push};
pub use semaphore::{Acquire, Semaphore};
pub use semaphore_units::SemaphoreUnits;

/// Why a wait on a primitive of this module failed.
///
/// ```
/// use seastar_core::sync::{Cause, Error};
///
/// let e = Error::Broken(Cause::msg("shutting down"));
/// assert_eq!(e.to_string(), "broken: shutting down");
/// assert_eq!(Error::Timeout.to_string(), "timed out");
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The deadline of a `*_timeout` wait passed first.
    #[error("timed out")]
    Timeout,
    /// The primitive was broken ([`Semaphore::broken`],
    /// [`ConditionVariable::broken`]) or aborted ([`Queue::abort`]).
    #[error("broken: {0}")]
    Broken(Cause),
    /// The [`AbortSource`] guarding the wait was triggered.
    #[error("abort requested")]
    Aborted,
    /// The [`Gate`] is closed.
    #[error(transparent)]
    GateClosed(#[from] GateClosed),
}

/// The reason a primitive was broken, as given to `broken`/`abort`. Cheap
/// to clone: every failed waiter gets a clone.
///
/// It is kept behind an `Arc` so that [`Error`] is `Send + Sync` and
/// converts into `Box<dyn Error + Send + Sync>` or `anyhow::Error`; its
/// count is touched only when a broken primitive fails a waiter, never on
/// the acquire/release paths, which stay free of atomics.
///
/// ```
/// use seastar_core::sync::Cause;
///
/// let c = Cause::from(std::io::Error::other("disk gone"));
/// assert_eq!(c.to_string(), "disk gone");
/// assert!(c.downcast_ref::<std::io::Error>().is_some());
/// ```
#[derive(Clone)]
pub struct Cause(Arc<dyn StdError + Send + Sync>);

impl Cause {
    /// A cause that is just a message.
    ///
    /// ```
    /// assert_eq!(seastar_core::sync::Cause::msg("stopping").to_string(), "stopping");
    /// ```
    pub fn msg(message: impl Into<String>) -> Cause {
        Cause(Arc::new(Message(message.into())))
    }

    /// The cause as the error type it was created from, if it is an `E`.
    ///
    /// ```
    /// use seastar_core::sync::Cause;
    /// let c = Cause::from(std::fmt::Error);
    /// assert!(c.downcast_ref::<std::fmt::Error>().is_some());
    /// ```
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }

    /// The cause as a plain error.
    ///
    /// ```
    /// let c = seastar_core::sync::Cause::msg("x");
    /// assert!(c.as_error().source().is_none());
    /// ```
    pub fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.0
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for Cause {
    fn from(err: E) -> Cause {
        Cause(Arc::new(err))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

/// Wakes collected wakers after the caller released its borrow of the
/// primitive, so a waker that runs code cannot re-enter a held `RefCell`.
fn wake_all(wakers: Vec<std::task::Waker>) {
    wakers.into_iter().for_each(std::task::Waker::wake);
}
