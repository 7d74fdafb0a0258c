//! Cancellation: Seastar's `abort_source`.
//!
//! Stopping a service means stopping work that is *waiting*: a sleep in a
//! retry loop, a read with no data, a wait for units. Dropping a future
//! stops it, but the code that decides to stop rarely owns the futures
//! that must stop. An [`AbortSource`] is the shared signal between them:
//! whoever decides calls [`request_abort`](AbortSource::request_abort);
//! code that can be stopped either registers a callback
//! ([`subscribe`](AbortSource::subscribe)), awaits
//! [`aborted`](AbortSource::aborted), or wraps its wait in [`abortable`],
//! which drops the wrapped future and fails with [`Error::Aborted`]. Since
//! dropping a wait on any primitive of this module leaves no trace,
//! `abortable(sem.acquire(1), &abort)` is a safe abortable acquire.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::wait_list::{WaitList, park};
use super::{Error, wake_all};
use crate::timer::{self, Sleep};

type Callback = Box<dyn FnOnce()>;

#[derive(Default)]
struct Inner {
    requested: Cell<bool>,
    callbacks: RefCell<WaitList<Option<Callback>>>,
    waiters: RefCell<WaitList<Option<Waker>>>,
}

/// A one-shot cancellation signal for the tasks of a shard. Clones are
/// handles to the same source.
///
/// ```
/// # seastar_core::block_on(async {
/// use std::time::Duration;
/// use seastar_core::sync::{AbortSource, Error, abortable_sleep};
///
/// let abort = AbortSource::new();
/// let a = abort.clone();
/// seastar_core::spawn_local(async move { a.request_abort() }).detach();
/// let r = abortable_sleep(Duration::from_secs(3600), &abort).await;
/// assert!(matches!(r, Err(Error::Aborted)));
/// # });
/// ```
#[derive(Clone, Default)]
pub struct AbortSource {
    inner: Rc<Inner>,
}

impl fmt::Debug for AbortSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortSource")
            .field("requested", &self.abort_requested())
            .finish()
    }
}

impl AbortSource {
    /// A source on which no abort was requested.
    ///
    /// ```
    /// assert!(!seastar_core::sync::AbortSource::new().abort_requested());
    /// ```
    pub fn new() -> AbortSource {
        AbortSource::default()
    }

    /// Requests the abort: runs every subscribed callback once, in
    /// subscription order, right here, then wakes every
    /// [`aborted`](Self::aborted) future. Later calls do nothing.
    ///
    /// ```
    /// let abort = seastar_core::sync::AbortSource::new();
    /// abort.request_abort();
    /// abort.request_abort(); // idempotent
    /// assert!(abort.abort_requested());
    /// ```
    pub fn request_abort(&self) {
        if self.inner.requested.replace(true) {
            return;
        }
        // One at a time, outside the borrow: a callback may drop its own
        // or another subscription, or look at this source.
        loop {
            let callback = {
                let mut list = self.inner.callbacks.borrow_mut();
                match list.pop_front() {
                    Some(slot) => list.get_mut(slot).take(),
                    None => break,
                }
            };
            if let Some(callback) = callback {
                callback();
            }
        }
        let mut woken = Vec::new();
        {
            let mut list = self.inner.waiters.borrow_mut();
            while let Some(slot) = list.pop_front() {
                woken.extend(list.get_mut(slot).take());
            }
        }
        wake_all(woken);
    }

    /// Whether [`request_abort`](Self::request_abort) was called.
    ///
    /// ```
    /// let abort = seastar_core::sync::AbortSource::new();
    /// assert!(!abort.abort_requested());
    /// ```
    pub fn abort_requested(&self) -> bool {
        self.inner.requested.get()
    }

    /// `Err(Error::Aborted)` once an abort was requested: a check point
    /// for loops that do not wait.
    ///
    /// ```
    /// let abort = seastar_core::sync::AbortSource::new();
    /// assert!(abort.check().is_ok());
    /// abort.request_abort();
    /// assert!(abort.check().is_err());
    /// ```
    pub fn check(&self) -> Result<(), Error> {
        if self.abort_requested() {
            Err(Error::Aborted)
        } else {
            Ok(())
        }
    }

    /// Runs `callback` when the abort is requested, unless the returned
    /// [`Subscription`] is dropped first. If the abort was already
    /// requested, returns `None` and never runs `callback` (Seastar's rule:
    /// check [`abort_requested`](Self::abort_requested) when that matters).
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let abort = seastar_core::sync::AbortSource::new();
    /// let hit = Rc::new(Cell::new(false));
    /// let h = hit.clone();
    /// let _sub = abort.subscribe(move || h.set(true)).unwrap();
    /// abort.request_abort();
    /// assert!(hit.get());
    /// ```
    pub fn subscribe(&self, callback: impl FnOnce() + 'static) -> Option<Subscription> {
        if self.abort_requested() {
            return None;
        }
        let slot = self
            .inner
            .callbacks
            .borrow_mut()
            .push_back(Some(Box::new(callback)));
        Some(Subscription {
            source: self.clone(),
            slot,
        })
    }

    /// A future that resolves once the abort is requested.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// let abort = seastar_core::sync::AbortSource::new();
    /// abort.request_abort();
    /// abort.aborted().await;
    /// # });
    /// ```
    pub fn aborted(&self) -> Aborted {
        Aborted {
            source: self.clone(),
            slot: None,
        }
    }
}

/// A callback registered by [`AbortSource::subscribe`]; dropping it
/// unsubscribes (the callback is dropped without running).
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// let abort = seastar_core::sync::AbortSource::new();
/// let hit = Rc::new(Cell::new(false));
/// let h = hit.clone();
/// drop(abort.subscribe(move || h.set(true)));
/// abort.request_abort();
/// assert!(!hit.get());
/// ```
#[must_use = "dropping the subscription unsubscribes at once"]
#[derive(Debug)]
pub struct Subscription {
    source: AbortSource,
    slot: usize,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let callback = self.source.inner.callbacks.borrow_mut().remove(self.slot);
        drop(callback); // its captures may have destructors: outside the borrow
    }
}

/// The future of [`AbortSource::aborted`].
///
/// ```
/// # seastar_core::block_on(async {
/// let abort = seastar_core::sync::AbortSource::new();
/// let aborted: seastar_core::sync::Aborted = abort.aborted();
/// abort.request_abort();
/// aborted.await;
/// # });
/// ```
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Aborted {
    source: AbortSource,
    slot: Option<usize>,
}

impl Future for Aborted {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut list = this.source.inner.waiters.borrow_mut();
        if this.source.abort_requested() {
            if let Some(slot) = this.slot.take() {
                list.remove(slot);
            }
            return Poll::Ready(());
        }
        match this.slot {
            Some(slot) => park(list.get_mut(slot), cx),
            None => this.slot = Some(list.push_back(Some(cx.waker().clone()))),
        }
        Poll::Pending
    }
}

impl Drop for Aborted {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.source.inner.waiters.borrow_mut().remove(slot);
        }
    }
}

pin_project_lite::pin_project! {
    /// A future that fails with [`Error::Aborted`] when its
    /// [`AbortSource`] is triggered, dropping the inner future. Created by
    /// [`abortable`] and [`abortable_sleep`].
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// use seastar_core::sync::{AbortSource, Abortable, abortable};
    /// let abort = AbortSource::new();
    /// let f: Abortable<_> = abortable(std::future::ready(3), &abort);
    /// assert_eq!(f.await.unwrap(), 3);
    /// # });
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct Abortable<F> {
        #[pin]
        future: F,
        aborted: Aborted,
    }
}

impl<F> fmt::Debug for Abortable<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Abortable")
            .field("aborted", &self.aborted)
            .finish()
    }
}

/// Runs `future` until it completes or `source` is aborted, whichever
/// comes first; an abort requested before the first poll wins at once.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_core::sync::{AbortSource, Error, abortable};
/// let abort = AbortSource::new();
/// assert_eq!(abortable(async { 1 }, &abort).await.unwrap(), 1);
/// abort.request_abort();
/// assert!(matches!(abortable(async { 1 }, &abort).await, Err(Error::Aborted)));
/// # });
/// ```
pub fn abortable<F: Future>(future: F, source: &AbortSource) -> Abortable<F> {
    Abortable {
        future,
        aborted: source.aborted(),
    }
}

/// Sleeps for `duration` on the shard clock unless `source` is aborted
/// first ([`Error::Aborted`]).
///
/// ```
/// # seastar_core::block_on(async {
/// use std::time::Duration;
/// let abort = seastar_core::sync::AbortSource::new();
/// seastar_core::sync::abortable_sleep(Duration::ZERO, &abort).await.unwrap();
/// # });
/// ```
///
/// # Panics
///
/// Outside a shard.
pub fn abortable_sleep(duration: Duration, source: &AbortSource) -> Abortable<Sleep> {
    abortable(timer::sleep(duration), source)
}

impl<F: Future> Future for Abortable<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.aborted.source.abort_requested() {
            return Poll::Ready(Err(Error::Aborted));
        }
        if let Poll::Ready(out) = this.future.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        Pin::new(this.aborted)
            .poll(cx)
            .map(|()| Err(Error::Aborted))
    }
}
