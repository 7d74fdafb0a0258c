//! A condition variable without a mutex: Seastar's `condition_variable`.
//!
//! Tasks on a shard never run at the same time, so shared state needs no
//! lock; what they need is a way to *sleep until it changes*. A task checks
//! its condition, and if it does not hold, waits; whoever changes the
//! state [signals](ConditionVariable::signal) one waiter or
//! [broadcasts](ConditionVariable::broadcast) to all. Because nothing runs
//! between the check and the wait, no wake-up can be missed, and a
//! [`signal`](ConditionVariable::signal) sent while nobody waits is kept
//! for the next waiter (Seastar's rule). Wake-ups may still be stale by
//! the time a task runs, so [`wait_until`](ConditionVariable::wait_until)
//! re-checks a predicate. [`broken`](ConditionVariable::broken) releases
//! every waiter with an error, for shutdown.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::wait_list::{WaitList, park};
use super::{Cause, Error, wake_all};
use crate::timer;

enum Status {
    Waiting,
    /// Woken by `signal` (`true`: its signal is passed on if dropped) or
    /// by `broadcast` (`false`).
    Signalled(bool),
    Failed,
}

struct Node {
    waker: Option<Waker>,
    status: Status,
}

#[derive(Default)]
struct State {
    waiters: WaitList<Node>,
    /// A `signal` that found nobody waiting, kept for the next waiter.
    pending: bool,
    broken: Option<Cause>,
}

impl State {
    fn signal_one(&mut self) -> Option<Waker> {
        match self.waiters.pop_front() {
            Some(slot) => {
                let node = self.waiters.get_mut(slot);
                node.status = Status::Signalled(true);
                node.waker.take()
            }
            None => {
                self.pending = true;
                None
            }
        }
    }

    fn release_all(&mut self, status: fn() -> Status) -> Vec<Waker> {
        let mut woken = Vec::new();
        while let Some(slot) = self.waiters.pop_front() {
            let node = self.waiters.get_mut(slot);
            node.status = status();
            woken.extend(node.waker.take());
        }
        woken
    }
}

/// A shard-local condition variable. Clones are handles to the same one.
///
/// ```
/// # seastar_core::block_on(async {
/// use std::{cell::Cell, rc::Rc};
/// use seastar_core::sync::ConditionVariable;
///
/// let cv = ConditionVariable::new();
/// let ready = Rc::new(Cell::new(false));
/// let (c, r) = (cv.clone(), ready.clone());
/// seastar_core::spawn_local(async move {
///     r.set(true);
///     c.broadcast();
/// })
/// .detach();
/// cv.wait_until(|| ready.get()).await.unwrap();
/// # });
/// ```
#[derive(Clone, Default)]
pub struct ConditionVariable {
    state: Rc<RefCell<State>>,
}

impl fmt::Debug for ConditionVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("ConditionVariable")
            .field("waiters", &st.waiters.len())
            .field("broken", &st.broken.is_some())
            .finish()
    }
}

impl ConditionVariable {
    /// A condition variable with no waiters and no pending signal.
    ///
    /// ```
    /// assert_eq!(seastar_core::sync::ConditionVariable::new().waiters(), 0);
    /// ```
    pub fn new() -> ConditionVariable {
        ConditionVariable::default()
    }

    /// Waits for a [`signal`](Self::signal) or [`broadcast`](Self::broadcast)
    /// (or takes the signal kept from when nobody waited). Fails with
    /// [`Error::Broken`] once broken. The condition may no longer hold when
    /// this returns: prefer [`wait_until`](Self::wait_until).
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// let cv = seastar_core::sync::ConditionVariable::new();
    /// cv.signal(); // nobody waits: kept for the next wait
    /// cv.wait().await.unwrap();
    /// # });
    /// ```
    pub fn wait(&self) -> Wait {
        Wait {
            cv: self.clone(),
            slot: None,
        }
    }

    /// Waits until `pred()` is true, checking it first and after every
    /// wake-up. Returns at once, consuming nothing, if it already holds.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// let cv = seastar_core::sync::ConditionVariable::new();
    /// cv.wait_until(|| true).await.unwrap();
    /// # });
    /// ```
    pub fn wait_until<P: FnMut() -> bool>(
        &self,
        mut pred: P,
    ) -> impl Future<Output = Result<(), Error>> + use<P> {
        let cv = self.clone();
        async move {
            while !pred() {
                cv.wait().await?;
            }
            Ok(())
        }
    }

    /// [`wait`](Self::wait) bounded by `timeout` (from this call):
    /// [`Error::Timeout`] if no signal came in time.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// use seastar_core::sync::{ConditionVariable, Error};
    /// let cv = ConditionVariable::new();
    /// let r = cv.wait_timeout(std::time::Duration::ZERO).await;
    /// assert!(matches!(r, Err(Error::Timeout)));
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub fn wait_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), Error>> + use<> {
        let wait = timer::timeout(timeout, self.wait());
        async move { wait.await.map_err(|_| Error::Timeout)? }
    }

    /// [`wait_until`](Self::wait_until) with one deadline, `timeout` from
    /// this call, across all its wake-ups. The predicate is checked first,
    /// so a condition that already holds never times out.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// use seastar_core::sync::{ConditionVariable, Error};
    /// let cv = ConditionVariable::new();
    /// let r = cv.wait_until_timeout(|| false, std::time::Duration::ZERO).await;
    /// assert!(matches!(r, Err(Error::Timeout)));
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub fn wait_until_timeout<P: FnMut() -> bool>(
        &self,
        mut pred: P,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), Error>> + use<P> {
        let cv = self.clone();
        let mut sleep = timer::sleep(timeout);
        async move {
            while !pred() {
                let mut wait = pin!(cv.wait());
                std::future::poll_fn(|cx| match wait.as_mut().poll(cx) {
                    Poll::Ready(r) => Poll::Ready(r),
                    Poll::Pending => Pin::new(&mut sleep).poll(cx).map(|()| Err(Error::Timeout)),
                })
                .await?;
            }
            Ok(())
        }
    }

    /// Wakes the longest waiter; if nobody waits, the next
    /// [`wait`](Self::wait) returns at once (one signal is kept, not
    /// counted). A woken waiter dropped before it runs passes the signal on.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// let cv = seastar_core::sync::ConditionVariable::new();
    /// cv.signal();
    /// cv.signal(); // still one pending signal
    /// cv.wait().await.unwrap();
    /// assert!(cv.wait_timeout(std::time::Duration::ZERO).await.is_err());
    /// # });
    /// ```
    pub fn signal(&self) {
        let woken = self.state.borrow_mut().signal_one();
        woken.into_iter().for_each(Waker::wake);
    }

    /// Wakes every current waiter. Nothing is kept for later waiters.
    ///
    /// ```
    /// let cv = seastar_core::sync::ConditionVariable::new();
    /// cv.broadcast();
    /// assert_eq!(cv.waiters(), 0);
    /// ```
    pub fn broadcast(&self) {
        let woken = self
            .state
            .borrow_mut()
            .release_all(|| Status::Signalled(false));
        wake_all(woken);
    }

    /// Breaks the condition variable: every waiter, current and future,
    /// fails with [`Error::Broken`] ("condition variable broken").
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// let cv = seastar_core::sync::ConditionVariable::new();
    /// cv.broken();
    /// let e = cv.wait().await.unwrap_err();
    /// assert_eq!(e.to_string(), "broken: condition variable broken");
    /// # });
    /// ```
    pub fn broken(&self) {
        self.broken_with(Cause::msg("condition variable broken"));
    }

    /// [`broken`](Self::broken) with a cause of the caller's choosing.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// let cv = seastar_core::sync::ConditionVariable::new();
    /// cv.broken_with(std::io::Error::other("stopping"));
    /// assert_eq!(cv.wait().await.unwrap_err().to_string(), "broken: stopping");
    /// # });
    /// ```
    pub fn broken_with(&self, cause: impl Into<Cause>) {
        let woken = {
            let mut st = self.state.borrow_mut();
            st.broken = Some(cause.into());
            st.release_all(|| Status::Failed)
        };
        wake_all(woken);
    }

    /// Number of tasks waiting.
    ///
    /// ```
    /// assert_eq!(seastar_core::sync::ConditionVariable::new().waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.state.borrow().waiters.len()
    }
}

/// The future of [`ConditionVariable::wait`].
///
/// ```
/// # seastar_core::block_on(async {
/// let cv = seastar_core::sync::ConditionVariable::new();
/// let wait: seastar_core::sync::Wait = cv.wait();
/// cv.signal();
/// wait.await.unwrap();
/// # });
/// ```
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Wait {
    cv: ConditionVariable,
    slot: Option<usize>,
}

impl Future for Wait {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut st = this.cv.state.borrow_mut();
        let Some(slot) = this.slot else {
            if let Some(cause) = &st.broken {
                return Poll::Ready(Err(Error::Broken(cause.clone())));
            }
            if std::mem::take(&mut st.pending) {
                return Poll::Ready(Ok(()));
            }
            let node = Node {
                waker: Some(cx.waker().clone()),
                status: Status::Waiting,
            };
            this.slot = Some(st.waiters.push_back(node));
            return Poll::Pending;
        };
        let node = st.waiters.get_mut(slot);
        let outcome = match node.status {
            Status::Waiting => {
                park(&mut node.waker, cx);
                return Poll::Pending;
            }
            Status::Signalled(_) => Ok(()),
            Status::Failed => Err(Error::Broken(st.broken.clone().expect("broken"))),
        };
        st.waiters.remove(slot);
        this.slot = None;
        Poll::Ready(outcome)
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        let woken = {
            let mut st = self.cv.state.borrow_mut();
            match st.waiters.remove(slot).status {
                Status::Signalled(true) => st.signal_one(),
                _ => None,
            }
        };
        woken.into_iter().for_each(Waker::wake);
    }
}
