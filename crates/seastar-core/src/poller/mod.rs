//! Reactor pollers: work a crate outside the core adds to every iteration
//! of its shard's loop, as Seastar's `reactor::poller`.
//!
//! A device driven from user space (an AF_XDP socket's rings, a TAP queue,
//! a shared-memory channel) has no completion to wait for: somebody must
//! look at its rings. A [`Poller`] is that somebody. The reactor calls
//! [`Poller::poll`] once per loop iteration, before the task batch, so the
//! tasks woken by what it found run in the same iteration. When the shard
//! has nothing left to do it asks every poller, through
//! [`Poller::try_sleep`], whether it may sleep: a poller with work pending
//! refuses; one that is idle arranges to be woken (an [`FdWatch`] on its
//! device's file descriptor, or any future polled with the given context)
//! and agrees. A poller that reports the work it handled
//! ([`Poller::handled`]) lets a loaded shard's sleeps wait for a batch, as a
//! burst of io_uring completions does (`RuntimeBuilder::sleep_batch`).
//!
//! Pollers are per shard and never cross threads: [`add_poller`] returns a
//! `!Send` [`PollerHandle`] that removes the poller when dropped.
//!
//! # Example
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use seastar_core::poller::{Poller, add_poller};
//!
//! struct Count(Rc<Cell<u32>>);
//! impl Poller for Count {
//!     fn poll(&mut self) -> bool {
//!         self.0.set(self.0.get() + 1);
//!         false // found no work: the shard may sleep
//!     }
//! }
//!
//! seastar_core::block_on(async {
//!     let polls = Rc::new(Cell::new(0));
//!     let handle = add_poller(Count(polls.clone()));
//!     // Two loop iterations (a timer fires in each).
//!     seastar_core::timer::sleep(Duration::from_millis(1)).await;
//!     seastar_core::timer::sleep(Duration::from_millis(1)).await;
//!     assert!(polls.get() >= 2, "polled every iteration");
//!     drop(handle);
//!     let seen = polls.get();
//!     seastar_core::timer::sleep(Duration::from_millis(1)).await;
//!     assert_eq!(polls.get(), seen, "removed with its handle");
//! });
//! ```

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use crate::io::op::ReadyWait;
use crate::reactor::{self, Interest, ShardRemote};

/// Work the reactor does on every iteration of its shard's loop.
///
/// All methods run on the shard's thread, between tasks: they must not
/// block and should bound their work per call (a batch of frames, not
/// every frame there is), so that tasks keep their latency.
pub trait Poller: 'static {
    /// Looks for work and does it. Returns whether it did any: `true`
    /// keeps the shard awake for another iteration.
    fn poll(&mut self) -> bool;

    /// The shard has nothing else to do and is about to sleep. Return
    /// `false` to stay awake (work arrived since the last
    /// [`poll`](Self::poll)); otherwise arrange to be woken before
    /// returning `true`: any future polled with `cx` (an [`FdWatch`], a
    /// timer) wakes the shard when it is ready, from any thread. A poller
    /// that needs no wake-up (it only reacts to its shard's own tasks)
    /// keeps the default.
    fn try_sleep(&mut self, cx: &mut Context<'_>) -> bool {
        let _ = cx;
        true
    }

    /// The shard woke from a sleep that [`try_sleep`](Self::try_sleep)
    /// agreed to.
    fn woke(&mut self) {}

    /// How many items of work (frames received and sent, messages) this
    /// poller handled since the last call; asked after it agreed to sleep.
    ///
    /// On io_uring a shard whose last wake-up was followed by a burst
    /// (16 items or more, pollers' and completions together) waits for a
    /// batch in its next sleep: the kernel wakes it when that many
    /// completions are there or after the batch's wait (50 µs by default,
    /// `RuntimeBuilder::sleep_batch`), as a NIC moderates its interrupts.
    /// A device woken through one poll of its fd thus has its next burst
    /// handled in one wake-up instead of several. The default, 0, leaves
    /// the shard's sleeps to its completions.
    ///
    /// ```
    /// use std::task::Context;
    /// use seastar_core::poller::Poller;
    ///
    /// struct Frames { seen: u32 }
    /// impl Poller for Frames {
    ///     fn poll(&mut self) -> bool { false }
    ///     fn handled(&mut self) -> u32 { std::mem::take(&mut self.seen) }
    /// }
    /// let mut p = Frames { seen: 20 };
    /// assert_eq!(p.handled(), 20);
    /// assert_eq!(p.handled(), 0);
    /// ```
    fn handled(&mut self) -> u32 {
        0
    }
}

/// Keeps a poller on its shard; dropping it removes the poller.
///
/// `!Send`: it names a slot of one shard's poller list.
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// struct Idle;
/// impl seastar_core::poller::Poller for Idle {
///     fn poll(&mut self) -> bool { false }
/// }
/// seastar_core::block_on(async { send(seastar_core::poller::add_poller(Idle)) });
/// ```
#[derive(Debug)]
#[must_use = "dropping the handle removes the poller; call detach() to keep it"]
pub struct PollerHandle {
    key: usize,
    _shard_bound: PhantomData<*const ()>,
}

impl PollerHandle {
    /// Keeps the poller for the rest of the shard's life.
    pub fn detach(self) {
        std::mem::forget(self);
    }
}

impl Drop for PollerHandle {
    fn drop(&mut self) {
        let key = self.key;
        let _ = reactor::try_with(|s| s.pollers().remove(key));
    }
}

/// Adds `poller` to the calling shard's loop.
///
/// # Panics
/// Outside a shard (no runtime on this thread).
pub fn add_poller(poller: impl Poller) -> PollerHandle {
    let key = reactor::with(|s| s.pollers().add(Box::new(poller)));
    PollerHandle {
        key,
        _shard_bound: PhantomData,
    }
}

/// Waits, while its shard sleeps, for a file descriptor to turn readable.
///
/// Call [`arm`](Self::arm) from [`Poller::try_sleep`] once the device is
/// drained. On io_uring it keeps one poll request in flight until the fd
/// is readable; on epoll it forgets the readiness it saw before (the
/// caller drained the fd) and waits for the next edge.
pub struct FdWatch {
    fd: RawFd,
    /// The wait in flight, by value (a boxed `readable` future cost an
    /// allocation and its state machine per sleep: callgrind, about 150
    /// instructions of the ~650 of a native-stack shard's arm and collect).
    wait: Option<ReadyWait>,
}

impl std::fmt::Debug for FdWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FdWatch")
            .field("fd", &self.fd)
            .field("armed", &self.wait.is_some())
            .finish()
    }
}

impl FdWatch {
    /// A watch on `fd`, which the caller keeps open for as long as the
    /// watch lives.
    pub fn new(fd: RawFd) -> FdWatch {
        FdWatch { fd, wait: None }
    }

    /// Whether a wait is in flight (armed and not yet seen to fire): the
    /// next [`arm`](Self::arm) starts none. On io_uring, an `arm` that
    /// starts one submits a poll request, whose submission calls the fd's
    /// poll handler at the next entry into the kernel.
    pub fn is_armed(&self) -> bool {
        self.wait.is_some()
    }

    /// Arms the watch so that `cx`'s task (the shard, from
    /// [`Poller::try_sleep`]) is woken when `fd` turns readable. Returns
    /// `true` when it already is (or its readiness cannot be waited for):
    /// the caller should not sleep then.
    pub fn arm(&mut self, cx: &mut Context<'_>) -> bool {
        if self.wait.is_none() {
            reactor::clear_ready_registered(self.fd, Interest::Read);
            self.wait = Some(ReadyWait::arm(self.fd, Interest::Read));
        }
        let wait = self.wait.as_mut().expect("armed above");
        match wait.poll(cx) {
            Poll::Pending => false,
            Poll::Ready(_) => {
                self.wait = None;
                true
            }
        }
    }
}

/// One shard's pollers (a field of the shard).
pub(crate) struct Pollers {
    /// `None`: a free slot, or a poller taken out while it runs.
    slots: RefCell<Vec<Option<Box<dyn Poller>>>>,
    /// Slots removed while their poller was running (it is dropped when it
    /// comes back).
    removed: RefCell<Vec<usize>>,
    free: RefCell<Vec<usize>>,
    /// A poller was added since the last round: it has not been polled
    /// yet, so the shard may not sleep before it is.
    fresh: Cell<bool>,
    /// Work the pollers handled (`Poller::handled`) since the shard last
    /// slept.
    handled: Cell<u32>,
    wake: Arc<PollerWake>,
    waker: Waker,
}

impl Pollers {
    pub(crate) fn new(remote: Arc<ShardRemote>) -> Pollers {
        let wake = Arc::new(PollerWake {
            woken: AtomicBool::new(false),
            remote,
        });
        Pollers {
            slots: RefCell::new(Vec::new()),
            removed: RefCell::new(Vec::new()),
            handled: Cell::new(0),
            free: RefCell::new(Vec::new()),
            fresh: Cell::new(false),
            waker: Waker::from(wake.clone()),
            wake,
        }
    }

    fn add(&self, poller: Box<dyn Poller>) -> usize {
        self.fresh.set(true);
        let mut slots = self.slots.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(key) => {
                slots[key] = Some(poller);
                key
            }
            None => {
                slots.push(Some(poller));
                slots.len() - 1
            }
        }
    }

    fn remove(&self, key: usize) {
        let taken = self.slots.borrow_mut().get_mut(key).and_then(Option::take);
        match taken {
            // Dropped outside the borrow: its drop may add or remove pollers.
            Some(p) => {
                self.free.borrow_mut().push(key);
                drop(p);
            }
            None => self.removed.borrow_mut().push(key),
        }
    }

    /// Runs `f` on every poller, each taken out of its slot meanwhile (so
    /// that it may add or remove pollers). Returns whether any `f` said
    /// true.
    fn each(&self, mut f: impl FnMut(&mut dyn Poller) -> bool) -> bool {
        let n = self.slots.borrow().len();
        let mut any = false;
        for key in 0..n {
            let taken = self.slots.borrow_mut()[key].take();
            let Some(mut p) = taken else { continue };
            any |= f(&mut *p);
            let mut removed = self.removed.borrow_mut();
            if let Some(i) = removed.iter().position(|&k| k == key) {
                removed.swap_remove(i);
                drop(removed);
                self.free.borrow_mut().push(key);
                drop(p);
            } else {
                drop(removed);
                self.slots.borrow_mut()[key] = Some(p);
            }
        }
        any
    }

    /// Polls every poller; whether any did work.
    #[inline]
    pub(crate) fn poll(&self) -> bool {
        if self.slots.borrow().is_empty() {
            return false;
        }
        self.fresh.set(false);
        self.each(|p| p.poll())
    }

    /// Whether a poller was added since the last [`poll`](Self::poll)
    /// (the shard must not sleep before it has been polled once).
    #[inline]
    pub(crate) fn has_fresh(&self) -> bool {
        self.fresh.get()
    }

    /// Whether every poller agrees to sleep (each arranging its wake-up)
    /// and none was woken meanwhile.
    pub(crate) fn try_sleep(&self) -> bool {
        if self.slots.borrow().is_empty() {
            return true;
        }
        self.wake.woken.store(false, Ordering::Relaxed);
        let mut cx = Context::from_waker(&self.waker);
        let mut handled = self.handled.get();
        let refused = self.each(|p| {
            if !p.try_sleep(&mut cx) {
                return true;
            }
            handled = handled.saturating_add(p.handled());
            false
        });
        self.handled.set(handled);
        !refused && !self.wake.woken.load(Ordering::Acquire)
    }

    /// Takes the work the pollers handled since the shard last slept (on
    /// the way to a sleep).
    #[inline]
    pub(crate) fn take_handled(&self) -> u32 {
        self.handled.take()
    }

    /// Tells every poller the shard woke.
    pub(crate) fn woke(&self) {
        if !self.slots.borrow().is_empty() {
            self.each(|p| {
                p.woke();
                false
            });
        }
    }

    /// Drops every poller (at shutdown, on the shard's thread).
    pub(crate) fn clear(&self) {
        let all: Vec<_> = self.slots.borrow_mut().drain(..).collect();
        drop(all);
    }
}

/// The waker pollers arm their wake-ups with: on the shard's own thread a
/// flag (the shard is awake, it will poll again), from any other thread
/// the flag and a signal that wakes the sleeping shard.
struct PollerWake {
    woken: AtomicBool,
    remote: Arc<ShardRemote>,
}

impl Wake for PollerWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let on_owner = reactor::try_with(|s| Arc::ptr_eq(s.remote(), &self.remote));
        if on_owner != Ok(true) {
            self.remote.signal();
        }
    }
}

#[cfg(test)]
mod tests;
