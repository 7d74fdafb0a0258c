//! A gate: Seastar's `gate`, for shutting a service down without cutting
//! work off mid-flight.
//!
//! A service that spawns background work, or serves requests, must not be
//! torn down while some of that work still runs and touches its state. A
//! gate tracks that work: each piece [enters](Gate::enter) and holds a
//! [`GateGuard`] while it runs. [`Gate::close`] does two things: from the
//! moment it is called no new work may enter (entering fails with
//! [`GateClosed`]), and the future it returns resolves once every guard
//! handed out before has been dropped. Stop new work, know when old work
//! ends.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::wait_list::{WaitList, park};
use super::wake_all;

/// Entering a [`Gate`] that is closed.
///
/// ```
/// assert_eq!(seastar_core::sync::GateClosed.to_string(), "gate closed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("gate closed")]
pub struct GateClosed;

#[derive(Default)]
struct Inner {
    holders: Cell<usize>,
    closed: Cell<bool>,
    closers: RefCell<WaitList<Option<Waker>>>,
}

/// Tracks in-flight work so that shutdown can wait for it. Clones are
/// handles to the same gate.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_core::sync::Gate;
///
/// let gate = Gate::new();
/// let g = gate.clone();
/// let guard = gate.enter().unwrap();
/// seastar_core::spawn_local(async move {
///     let _guard = guard; // held while the work runs
///     seastar_core::yield_now().await;
/// })
/// .detach();
/// g.close().await; // resolves after the task dropped its guard
/// assert_eq!(g.holders(), 0);
/// # });
/// ```
#[derive(Clone, Default)]
pub struct Gate {
    inner: Rc<Inner>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("holders", &self.holders())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Gate {
    /// An open gate with no holders.
    ///
    /// ```
    /// assert!(!seastar_core::sync::Gate::new().is_closed());
    /// ```
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Enters the gate: the guard keeps [`close`](Self::close) waiting
    /// until it is dropped. Fails once the gate is closed.
    ///
    /// ```
    /// let gate = seastar_core::sync::Gate::new();
    /// let guard = gate.enter().unwrap();
    /// assert_eq!(gate.holders(), 1);
    /// drop(guard);
    /// assert_eq!(gate.holders(), 0);
    /// ```
    pub fn enter(&self) -> Result<GateGuard, GateClosed> {
        self.check()?;
        self.inner.holders.set(self.inner.holders.get() + 1);
        Ok(GateGuard { gate: self.clone() })
    }

    /// Closes the gate *now* (later [`enter`](Self::enter)s fail) and
    /// returns a future that resolves once every guard is dropped. Closing
    /// again is allowed and returns another such future.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// let gate = seastar_core::sync::Gate::new();
    /// let closing = gate.close();
    /// assert!(gate.is_closed() && gate.enter().is_err());
    /// closing.await;
    /// # });
    /// ```
    pub fn close(&self) -> Closing {
        self.inner.closed.set(true);
        Closing {
            gate: self.clone(),
            slot: None,
        }
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// ```
    /// let gate = seastar_core::sync::Gate::new();
    /// drop(gate.close());
    /// assert!(gate.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Number of guards alive: the work still in flight.
    ///
    /// ```
    /// let gate = seastar_core::sync::Gate::new();
    /// let (_a, _b) = (gate.enter().unwrap(), gate.enter().unwrap());
    /// assert_eq!(gate.holders(), 2);
    /// ```
    pub fn holders(&self) -> usize {
        self.inner.holders.get()
    }

    /// `Err(GateClosed)` if the gate is closed: lets long-running work
    /// that already holds a guard notice a shutdown and stop early.
    ///
    /// ```
    /// let gate = seastar_core::sync::Gate::new();
    /// assert!(gate.check().is_ok());
    /// drop(gate.close());
    /// assert!(gate.check().is_err());
    /// ```
    pub fn check(&self) -> Result<(), GateClosed> {
        if self.is_closed() {
            Err(GateClosed)
        } else {
            Ok(())
        }
    }

    fn leave(&self) {
        let left = self.inner.holders.get() - 1;
        self.inner.holders.set(left);
        if left == 0 && self.is_closed() {
            let mut woken = Vec::new();
            {
                let mut closers = self.inner.closers.borrow_mut();
                while let Some(slot) = closers.pop_front() {
                    woken.extend(closers.get_mut(slot).take());
                }
            }
            wake_all(woken);
        }
    }
}

/// Runs `future` inside `gate`: enters now (so a later
/// [`close`](Gate::close) waits for it), leaves when it finishes or is
/// dropped. Seastar's `with_gate`.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_core::sync::{Gate, GateClosed, with_gate};
/// let gate = Gate::new();
/// assert_eq!(with_gate(&gate, async { 7 }).await, Ok(7));
/// gate.close().await;
/// assert_eq!(with_gate(&gate, async { 7 }).await, Err(GateClosed));
/// # });
/// ```
pub fn with_gate<F: Future>(
    gate: &Gate,
    future: F,
) -> impl Future<Output = Result<F::Output, GateClosed>> + use<F> {
    let guard = gate.enter();
    async move {
        let _guard = guard?;
        Ok(future.await)
    }
}

/// Proof of having entered a [`Gate`]; dropping it leaves.
///
/// ```
/// let gate = seastar_core::sync::Gate::new();
/// let guard = gate.enter().unwrap();
/// assert_eq!(guard.gate().holders(), 1);
/// ```
#[must_use = "dropping the guard leaves the gate at once"]
#[derive(Debug)]
pub struct GateGuard {
    gate: Gate,
}

impl GateGuard {
    /// The gate this guard holds open.
    ///
    /// ```
    /// let gate = seastar_core::sync::Gate::new();
    /// assert!(!gate.enter().unwrap().gate().is_closed());
    /// ```
    pub fn gate(&self) -> &Gate {
        &self.gate
    }
}

impl Drop for GateGuard {
    fn drop(&mut self) {
        self.gate.leave();
    }
}

/// The future of [`Gate::close`]: resolves when the gate has no holders.
///
/// ```
/// # seastar_core::block_on(async {
/// let gate = seastar_core::sync::Gate::new();
/// let closing: seastar_core::sync::Closing = gate.close();
/// closing.await;
/// # });
/// ```
#[must_use = "the gate is closed already; await this to wait for its holders"]
#[derive(Debug)]
pub struct Closing {
    gate: Gate,
    slot: Option<usize>,
}

impl Future for Closing {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut closers = this.gate.inner.closers.borrow_mut();
        if this.gate.holders() == 0 {
            if let Some(slot) = this.slot.take() {
                closers.remove(slot);
            }
            return Poll::Ready(());
        }
        match this.slot {
            Some(slot) => park(closers.get_mut(slot), cx),
            None => this.slot = Some(closers.push_back(Some(cx.waker().clone()))),
        }
        Poll::Pending
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.gate.inner.closers.borrow_mut().remove(slot);
        }
    }
}
