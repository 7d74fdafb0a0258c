//! A counting semaphore with strict FIFO waiters: Seastar's `semaphore`.
//!
//! A semaphore bounds a resource that work consumes in units: requests in
//! flight, bytes of memory, open files. [`Semaphore::acquire`] waits until
//! `n` units are free and returns them as [`SemaphoreUnits`], which give
//! them back when dropped, so an early return or a cancelled task cannot
//! leak capacity. Service is strictly FIFO: a waiter that cannot be served
//! blocks every waiter behind it, even ones that would fit, so a large
//! request is never starved by a stream of small ones. The count is
//! signed: [`consume`](Semaphore::consume) may take units the semaphore
//! does not have, and waiters then wait until the debt is repaid.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::wait_list::{WaitList, park};
use super::{Cause, Error, SemaphoreUnits, wake_all};
use crate::timer;

enum Status {
    Waiting,
    Granted,
    Failed,
}

struct Node {
    units: usize,
    waker: Option<Waker>,
    status: Status,
}

struct State {
    count: isize,
    waiters: WaitList<Node>,
    broken: Option<Cause>,
}

impl State {
    fn fits(&self, units: usize) -> bool {
        usize::try_from(self.count).is_ok_and(|c| c >= units)
    }

    /// Serves waiters from the head while the head fits.
    fn serve(&mut self) -> Vec<Waker> {
        let mut woken = Vec::new();
        while let Some(slot) = self.waiters.front() {
            let units = self.waiters.get_mut(slot).units;
            if !self.fits(units) {
                break;
            }
            self.count -= units as isize;
            self.waiters.pop_front();
            let node = self.waiters.get_mut(slot);
            node.status = Status::Granted;
            woken.extend(node.waker.take());
        }
        woken
    }
}

/// A shard-local counting semaphore with FIFO waiters. Clones are handles
/// to the same semaphore.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_core::sync::Semaphore;
///
/// let sem = Semaphore::new(3);
/// let a = sem.acquire(2).await.unwrap();
/// assert_eq!(sem.available_units(), 1);
/// assert!(sem.try_acquire(2).is_none());
/// drop(a);
/// assert_eq!(sem.available_units(), 3);
/// # });
/// ```
#[derive(Clone)]
pub struct Semaphore {
    state: Rc<RefCell<State>>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("Semaphore")
            .field("available", &st.count)
            .field("waiters", &st.waiters.len())
            .field("broken", &st.broken.is_some())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore holding `units` units (at most `isize::MAX`).
    ///
    /// ```
    /// assert_eq!(seastar_core::sync::Semaphore::new(4).available_units(), 4);
    /// ```
    pub fn new(units: usize) -> Semaphore {
        Semaphore {
            state: Rc::new(RefCell::new(State {
                count: isize::try_from(units).unwrap_or(isize::MAX),
                waiters: WaitList::default(),
                broken: None,
            })),
        }
    }

    /// Waits for `units` units, behind every earlier waiter. Fails with
    /// [`Error::Broken`] once the semaphore is [broken](Self::broken).
    /// Dropping the future gives up its place (see the module doc).
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// let sem = seastar_core::sync::Semaphore::new(1);
    /// let units = sem.acquire(1).await.unwrap();
    /// assert_eq!(units.count(), 1);
    /// # });
    /// ```
    pub fn acquire(&self, units: usize) -> Acquire {
        Acquire {
            sem: self.clone(),
            units,
            slot: None,
            done: false,
        }
    }

    /// Takes `units` units now if that needs no waiting: none are queued
    /// and enough are free. `None` otherwise, and once broken.
    ///
    /// ```
    /// let sem = seastar_core::sync::Semaphore::new(1);
    /// let u = sem.try_acquire(1).unwrap();
    /// assert!(sem.try_acquire(1).is_none());
    /// drop(u);
    /// assert!(sem.try_acquire(1).is_some());
    /// ```
    pub fn try_acquire(&self, units: usize) -> Option<SemaphoreUnits> {
        let mut st = self.state.borrow_mut();
        if st.broken.is_some() || !st.waiters.is_empty() || !st.fits(units) {
            return None;
        }
        st.count -= units as isize;
        Some(self.units(units))
    }

    /// [`acquire`](Self::acquire) bounded by `timeout` on the shard clock
    /// (from this call): [`Error::Timeout`] if the units did not come in
    /// time, and the waiter leaves the line.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// use std::time::Duration;
    /// use seastar_core::sync::{Error, Semaphore};
    /// let sem = Semaphore::new(0);
    /// let r = sem.acquire_timeout(1, Duration::ZERO).await;
    /// assert!(matches!(r, Err(Error::Timeout)));
    /// assert_eq!(sem.waiters(), 0);
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub fn acquire_timeout(
        &self,
        units: usize,
        timeout: Duration,
    ) -> impl Future<Output = Result<SemaphoreUnits, Error>> + use<> {
        let wait = timer::timeout(timeout, self.acquire(units));
        async move { wait.await.map_err(|_| Error::Timeout)? }
    }

    /// Adds `units` units and serves the waiters that now fit, in order.
    /// Works on a broken semaphore too (the count still moves).
    ///
    /// ```
    /// let sem = seastar_core::sync::Semaphore::new(0);
    /// sem.signal(2);
    /// assert_eq!(sem.available_units(), 2);
    /// ```
    pub fn signal(&self, units: usize) {
        let woken = {
            let mut st = self.state.borrow_mut();
            let add = isize::try_from(units).unwrap_or(isize::MAX);
            st.count = st.count.saturating_add(add);
            st.serve()
        };
        wake_all(woken);
    }

    /// Takes `units` units without waiting, even if that drives the count
    /// below zero; they come back with [`signal`](Self::signal). For work
    /// that has already happened and must be accounted for.
    ///
    /// ```
    /// let sem = seastar_core::sync::Semaphore::new(1);
    /// sem.consume(3);
    /// assert_eq!(sem.available_units(), -2);
    /// ```
    pub fn consume(&self, units: usize) {
        let mut st = self.state.borrow_mut();
        let take = isize::try_from(units).unwrap_or(isize::MAX);
        st.count = st.count.saturating_sub(take);
    }

    /// Breaks the semaphore: every waiter, current and future, fails with
    /// [`Error::Broken`] carrying `cause`. Units already held stay valid
    /// and are returned as usual. A second call replaces the cause.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// use seastar_core::sync::{Cause, Error, Semaphore};
    /// let sem = Semaphore::new(0);
    /// sem.broken(Cause::msg("shutting down"));
    /// let e = sem.acquire(1).await.unwrap_err();
    /// assert_eq!(e.to_string(), "broken: shutting down");
    /// # });
    /// ```
    pub fn broken(&self, cause: impl Into<Cause>) {
        let woken = {
            let mut st = self.state.borrow_mut();
            st.broken = Some(cause.into());
            let mut woken = Vec::new();
            while let Some(slot) = st.waiters.pop_front() {
                let node = st.waiters.get_mut(slot);
                node.status = Status::Failed;
                woken.extend(node.waker.take());
            }
            woken
        };
        wake_all(woken);
    }

    /// Whether [`broken`](Self::broken) was called.
    ///
    /// ```
    /// let sem = seastar_core::sync::Semaphore::new(0);
    /// sem.broken(seastar_core::sync::Cause::msg("x"));
    /// assert!(sem.is_broken());
    /// ```
    pub fn is_broken(&self) -> bool {
        self.state.borrow().broken.is_some()
    }

    /// Free units now; negative after [`consume`](Self::consume) overdrew.
    ///
    /// ```
    /// assert_eq!(seastar_core::sync::Semaphore::new(2).available_units(), 2);
    /// ```
    pub fn available_units(&self) -> isize {
        self.state.borrow().count
    }

    /// Number of tasks waiting in [`acquire`](Self::acquire).
    ///
    /// ```
    /// assert_eq!(seastar_core::sync::Semaphore::new(2).waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.state.borrow().waiters.len()
    }

    pub(super) fn same_as(&self, other: &Semaphore) -> bool {
        Rc::ptr_eq(&self.state, &other.state)
    }

    pub(super) fn units(&self, units: usize) -> SemaphoreUnits {
        SemaphoreUnits {
            sem: self.clone(),
            units,
        }
    }
}

/// The future of [`Semaphore::acquire`]: the units, or why not.
///
/// ```
/// # seastar_core::block_on(async {
/// let sem = seastar_core::sync::Semaphore::new(1);
/// let acquire: seastar_core::sync::Acquire = sem.acquire(1);
/// assert_eq!(acquire.await.unwrap().count(), 1);
/// # });
/// ```
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Acquire {
    sem: Semaphore,
    units: usize,
    slot: Option<usize>,
    done: bool,
}

impl Future for Acquire {
    type Output = Result<SemaphoreUnits, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(!self.done, "Acquire polled after completion");
        let this = &mut *self;
        let mut st = this.sem.state.borrow_mut();
        let outcome = match this.slot {
            None => {
                if let Some(cause) = &st.broken {
                    Err(Error::Broken(cause.clone()))
                } else if st.waiters.is_empty() && st.fits(this.units) {
                    st.count -= this.units as isize;
                    Ok(())
                } else {
                    let node = Node {
                        units: this.units,
                        waker: Some(cx.waker().clone()),
                        status: Status::Waiting,
                    };
                    this.slot = Some(st.waiters.push_back(node));
                    return Poll::Pending;
                }
            }
            Some(slot) => {
                let node = st.waiters.get_mut(slot);
                match node.status {
                    Status::Waiting => {
                        park(&mut node.waker, cx);
                        return Poll::Pending;
                    }
                    Status::Granted => Ok(()),
                    Status::Failed => Err(Error::Broken(st.broken.clone().expect("broken"))),
                }
            }
        };
        if let Some(slot) = this.slot.take() {
            st.waiters.remove(slot);
        }
        drop(st);
        this.done = true;
        Poll::Ready(outcome.map(|()| this.sem.units(this.units)))
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        let woken = {
            let mut st = self.sem.state.borrow_mut();
            let node = st.waiters.remove(slot);
            if let Status::Granted = node.status {
                st.count += self.units as isize;
            }
            // Granted units go on to the next in line; a waiting head that
            // leaves may unblock smaller requests behind it.
            st.serve()
        };
        wake_all(woken);
    }
}
