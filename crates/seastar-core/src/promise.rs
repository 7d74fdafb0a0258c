//! Shard-local promise/future pairs: Seastar's `promise<T>` in Rust.
//!
//! [`promise()`] returns a [`Promise`] (the producer) and a [`Future`] (the
//! consumer). Both live on one shard, so the shared state is an `Rc` with a
//! `RefCell` and no atomics: setting and awaiting cost a few plain loads and
//! stores. Dropping the promise without a value resolves the future to
//! [`BrokenPromise`] rather than leaving it pending forever. A future can be
//! turned into a [`SharedFuture`] that any number of clones await, each
//! receiving a clone of the value.
//!
//! ```
//! # seastar_core::block_on(async {
//! use seastar_core::promise::{promise, BrokenPromise};
//!
//! let (p, f) = promise::<u32>();
//! seastar_core::spawn_local(async move { p.set_value(42) }).detach();
//! assert_eq!(f.await, Ok(42));
//!
//! let (p, f) = promise::<u32>();
//! drop(p);
//! assert_eq!(f.await, Err(BrokenPromise));
//! # });
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The error of a future whose promise was dropped without a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("broken promise: dropped without a value")]
pub struct BrokenPromise;

/// The shared state. `value` is `Some` from `set_value` until the future
/// takes it; `done` is set when the promise resolved (with a value or
/// broken); `waker` is the single future's waiter and `shared` the waiters
/// of [`SharedFuture`] clones. Plain `Cell`s: one shard, no atomics.
struct Inner<T> {
    value: Cell<Option<T>>,
    done: Cell<bool>,
    waker: Cell<Option<Waker>>,
    shared: RefCell<Vec<Waker>>,
}

/// Creates a connected promise and future.
pub fn promise<T>() -> (Promise<T>, Future<T>) {
    let inner = Rc::new(Inner {
        value: Cell::new(None),
        done: Cell::new(false),
        waker: Cell::new(None),
        shared: RefCell::new(Vec::new()),
    });
    (
        Promise {
            inner: Some(inner.clone()),
        },
        Future { inner },
    )
}

/// The producing half: set a value once.
pub struct Promise<T> {
    inner: Option<Rc<Inner<T>>>,
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Promise { .. }")
    }
}

impl<T> Promise<T> {
    /// Resolves the future with `value`, waking its waiter(s).
    pub fn set_value(mut self, value: T) {
        if let Some(inner) = self.inner.take() {
            inner.value.set(Some(value));
            resolve(&inner);
        }
    }

    /// Whether the consuming side is gone (nobody will read a value).
    pub fn is_abandoned(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| Rc::strong_count(i) == 1)
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            resolve(&inner);
        }
    }
}

fn resolve<T>(inner: &Inner<T>) {
    inner.done.set(true);
    if let Some(w) = inner.waker.take() {
        w.wake();
    }
    if let Ok(mut shared) = inner.shared.try_borrow_mut() {
        if !shared.is_empty() {
            std::mem::take(&mut *shared)
                .into_iter()
                .for_each(Waker::wake);
        }
    }
}

/// The consuming half: resolves to the value or [`BrokenPromise`].
#[must_use = "futures do nothing unless awaited"]
pub struct Future<T> {
    inner: Rc<Inner<T>>,
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Future")
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl<T> Future<T> {
    /// Whether a value (or a broken promise) is available without waiting.
    pub fn is_ready(&self) -> bool {
        self.inner.done.get()
    }
}

impl<T: Clone> Future<T> {
    /// Turns this future into one that many clones can await.
    pub fn shared(self) -> SharedFuture<T> {
        SharedFuture {
            inner: self.inner.clone(),
            registered: false,
        }
    }
}

impl<T> StdFuture for Future<T> {
    type Output = Result<T, BrokenPromise>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &*self.inner;
        if inner.done.get() {
            return Poll::Ready(inner.value.take().ok_or(BrokenPromise));
        }
        let w = inner.waker.take();
        match w {
            Some(w) if w.will_wake(cx.waker()) => inner.waker.set(Some(w)),
            _ => inner.waker.set(Some(cx.waker().clone())),
        }
        Poll::Pending
    }
}

/// A promise's future that any number of clones can await; each gets a
/// clone of the value.
///
/// ```
/// # seastar_core::block_on(async {
/// let (p, f) = seastar_core::promise::promise::<String>();
/// let a = f.shared();
/// let b = a.clone();
/// p.set_value("hi".into());
/// assert_eq!(a.await.unwrap(), "hi");
/// assert_eq!(b.await.unwrap(), "hi");
/// # });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct SharedFuture<T> {
    inner: Rc<Inner<T>>,
    registered: bool,
}

impl<T> fmt::Debug for SharedFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedFuture { .. }")
    }
}

impl<T> Clone for SharedFuture<T> {
    fn clone(&self) -> Self {
        SharedFuture {
            inner: self.inner.clone(),
            registered: false,
        }
    }
}

impl<T: Clone> StdFuture for SharedFuture<T> {
    type Output = Result<T, BrokenPromise>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &*self.inner;
        if inner.done.get() {
            let v = inner.value.take();
            let out = v.clone().ok_or(BrokenPromise);
            inner.value.set(v);
            return Poll::Ready(out);
        }
        let mut shared = inner.shared.borrow_mut();
        // One entry per clone; a spurious re-poll just adds a wake.
        if !self.registered || !shared.iter().any(|w| w.will_wake(cx.waker())) {
            shared.push(cx.waker().clone());
        }
        drop(shared);
        self.registered = true;
        Poll::Pending
    }
}

/// Without a reactor (the futures are polled by hand), so they run under
/// Miri (`cargo xtask test`, step `miri`).
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A waker counting its wakes.
    fn counting() -> (Waker, Arc<AtomicUsize>) {
        struct W(Arc<AtomicUsize>);
        impl std::task::Wake for W {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let n = Arc::new(AtomicUsize::new(0));
        (Waker::from(Arc::new(W(n.clone()))), n)
    }

    fn poll<F: StdFuture + Unpin>(f: &mut F, w: &Waker) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(w))
    }

    #[test]
    fn a_value_set_later_wakes_the_waiter_once_and_is_delivered() {
        let (p, mut f) = promise::<String>();
        let (w, woken) = counting();
        assert!(poll(&mut f, &w).is_pending());
        assert!(poll(&mut f, &w).is_pending(), "re-poll keeps one waker");
        assert!(!f.is_ready());
        p.set_value("v".into());
        assert_eq!(woken.load(Ordering::Relaxed), 1);
        assert!(f.is_ready());
        assert_eq!(poll(&mut f, &w), Poll::Ready(Ok("v".to_string())));
    }

    #[test]
    fn a_dropped_promise_breaks_the_future_and_wakes_it() {
        let (p, mut f) = promise::<Vec<u8>>();
        let (w, woken) = counting();
        assert!(poll(&mut f, &w).is_pending());
        drop(p);
        assert_eq!(woken.load(Ordering::Relaxed), 1);
        assert_eq!(poll(&mut f, &w), Poll::Ready(Err(BrokenPromise)));
    }

    #[test]
    fn an_unawaited_value_is_dropped_with_the_pair() {
        let (p, f) = promise::<Box<u64>>();
        p.set_value(Box::new(7));
        drop(f);
        let (p, f) = promise::<Box<u64>>();
        drop(f);
        assert!(p.is_abandoned());
        p.set_value(Box::new(8));
    }

    #[test]
    fn every_shared_clone_gets_the_value() {
        let (p, f) = promise::<Rc<str>>();
        let mut a = f.shared();
        let mut b = a.clone();
        let (w, woken) = counting();
        assert!(poll(&mut a, &w).is_pending());
        assert!(poll(&mut b, &w).is_pending());
        p.set_value("x".into());
        assert_eq!(woken.load(Ordering::Relaxed), 2);
        assert_eq!(poll(&mut a, &w), Poll::Ready(Ok("x".into())));
        assert_eq!(poll(&mut b, &w), Poll::Ready(Ok("x".into())));
        let mut late = a.clone();
        assert_eq!(poll(&mut late, &w), Poll::Ready(Ok("x".into())));
    }
}
