//! The remote inbox of a shard and the sleep/wake protocol.
//!
//! Everything another thread may do to a shard goes through its [`Remote`]:
//! push a woken task (a [`Waker`](std::task::Waker) fired off-shard), signal
//! that other cross-shard work is pending, or ask it to stop. The owner
//! drains the inbox once per loop iteration.
//!
//! # Protocol
//!
//! One atomic word holds two bits, so every step is a single
//! read-modify-write on one location and their total (modification) order
//! is the whole argument:
//!
//! * `PENDING`: set by a sender *after* publishing its work
//!   (`fetch_or`); cleared by the owner *before* it drains (`fetch_and`).
//! * `SLEEPING`: set by the owner only if nothing is pending
//!   (`compare_exchange(0, SLEEPING)`), cleared when it wakes.
//!
//! If the owner's compare-exchange comes first in the word's order, the
//! first later sender sees `SLEEPING` without `PENDING` and is the one (and
//! only one) that writes the notifier (an eventfd the backend waits on).
//! If a sender's `fetch_or` comes first, the compare-exchange fails and the
//! owner does not sleep. The notifier is level-triggered, so a write that
//! lands before the owner actually enters the kernel is not lost. Because
//! the owner clears `PENDING` with a read-modify-write that reads the latest
//! value, it synchronises with every sender that set it, and then sees all
//! they published. Loom models of this handshake live at the bottom of this
//! file (and of the smp ring in `smp/ring.rs`).
//!
//! # Queues the owner polls anyway
//!
//! The smp rings are looked at on every iteration, signalled or not, so
//! their producers skip the read-modify-write while the owner is awake
//! ([`signal_if_sleeping`](Remote::signal_if_sleeping)): in poll mode the
//! word then never leaves the owner's cache, which took two cache-line
//! transfers off each direction of a cross-shard call. That is a
//! store-buffer (Dekker) handshake instead of the word's order: the
//! producer publishes, fences and reads `SLEEPING`; the owner sets
//! `SLEEPING`, fences and looks at the rings once more before it sleeps.
//! With both fences sequentially consistent, at least one of the two sees
//! the other's write: the producer notifies, or the owner finds the item.

#[cfg(loom)]
use loom::sync::{
    Mutex,
    atomic::{
        AtomicBool, AtomicU8,
        Ordering::{Relaxed, SeqCst},
        fence,
    },
};
#[cfg(not(loom))]
use std::sync::{
    Mutex,
    atomic::{
        AtomicBool, AtomicU8,
        Ordering::{Relaxed, SeqCst},
        fence,
    },
};

const PENDING: u8 = 1;
const SLEEPING: u8 = 2;

/// Wakes a sleeping owner thread.
pub(crate) trait Notify: Send + Sync {
    /// Makes the owner's next (or current) blocking wait return.
    fn notify(&self);
}

/// A shard's inbox for items sent from other threads.
pub(crate) struct Remote<T, N> {
    queue: Mutex<Inbox<T>>,
    /// `PENDING | SLEEPING` bits; see the module doc.
    state: AtomicU8,
    stop: AtomicBool,
    notifier: N,
}

struct Inbox<T> {
    items: Vec<T>,
    closed: bool,
}

impl<T> Drop for Inbox<T> {
    /// Items left in an inbox its owner never closed (its thread ended
    /// without the shutdown) are leaked: they are tasks that may only be
    /// dropped on their own shard, and the last reference to the inbox may
    /// go on any thread.
    fn drop(&mut self) {
        std::mem::take(&mut self.items)
            .into_iter()
            .for_each(std::mem::forget);
    }
}

impl<T, N: Notify> Remote<T, N> {
    /// An empty, open inbox waking its owner through `notifier`.
    pub(crate) fn new(notifier: N) -> Self {
        Remote {
            queue: Mutex::new(Inbox {
                items: Vec::new(),
                closed: false,
            }),
            state: AtomicU8::new(0),
            stop: AtomicBool::new(false),
            notifier,
        }
    }

    /// The notifier, for the owner's backend to wait on.
    pub(crate) fn notifier(&self) -> &N {
        &self.notifier
    }

    /// Queues `item` for the owner and wakes it. Returns the item back if
    /// the owner has shut down and will never drain it again.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        {
            let mut q = self.queue.lock().unwrap();
            if q.closed {
                return Err(item);
            }
            q.items.push(item);
        }
        self.signal();
        Ok(())
    }

    /// Tells the owner that cross-thread work is pending (its inbox, or any
    /// other queue it drains), waking it if it sleeps.
    pub(crate) fn signal(&self) {
        if self.state.fetch_or(PENDING, SeqCst) == SLEEPING {
            self.notifier.notify();
        }
    }

    /// Wakes the owner only if it sleeps (or is about to), for work in a
    /// queue the owner polls on every iteration anyway (the smp rings; see
    /// the module doc): call it after publishing. The owner, after
    /// [`prepare_sleep`](Self::prepare_sleep) succeeds, must fence
    /// (`SeqCst`) and look at those queues again before sleeping.
    #[inline]
    pub(crate) fn signal_if_sleeping(&self) {
        fence(SeqCst);
        if self.state.load(Relaxed) & SLEEPING != 0 {
            self.signal();
        }
    }

    /// Asks the owner to stop its loop.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, SeqCst);
        self.signal();
    }

    /// Whether [`request_stop`](Self::request_stop) was called.
    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.load(SeqCst)
    }

    /// Owner only: whether anything was signalled since the last drain.
    pub(crate) fn is_pending(&self) -> bool {
        self.state.load(SeqCst) & PENDING != 0
    }

    /// Owner only: moves every queued item into `out`. Returns whether any
    /// cross-thread work was signalled (even if the inbox itself was empty).
    pub(crate) fn drain(&self, out: &mut impl Extend<T>) -> bool {
        if !self.is_pending() {
            return false;
        }
        // A read-modify-write: it reads the latest `PENDING` and so
        // synchronises with every sender that set it.
        self.state.fetch_and(!PENDING, SeqCst);
        let items = std::mem::take(&mut self.queue.lock().unwrap().items);
        out.extend(items);
        true
    }

    /// Owner only: announces the owner is about to block. Returns `false`
    /// (and stays awake) if work arrived in the meantime; the owner must then
    /// not block. After a `true`, the owner blocks and calls
    /// [`woke`](Self::woke) when it returns.
    pub(crate) fn prepare_sleep(&self) -> bool {
        self.state
            .compare_exchange(0, SLEEPING, SeqCst, SeqCst)
            .is_ok()
    }

    /// Whether the owner is (about to be) blocked in the kernel.
    pub(crate) fn is_sleeping(&self) -> bool {
        self.state.load(SeqCst) & SLEEPING != 0
    }

    /// Owner only: the blocking wait returned.
    pub(crate) fn woke(&self) {
        self.state.fetch_and(!SLEEPING, SeqCst);
    }

    /// Owner only, at shutdown: refuses further items and returns those
    /// still queued.
    pub(crate) fn close(&self) -> Vec<T> {
        let mut q = self.queue.lock().unwrap();
        q.closed = true;
        std::mem::take(&mut q.items)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::cell::Cell;

    use super::*;

    struct Silent;
    impl Notify for Silent {
        fn notify(&self) {}
    }

    #[test]
    fn items_left_in_a_dropped_inbox_are_leaked_not_dropped() {
        thread_local!(static DROPS: Cell<u32> = const { Cell::new(0) });
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.with(|d| d.set(d.get() + 1));
            }
        }
        let closed = Remote::new(Silent);
        assert!(closed.push(Counted).is_ok());
        // Closing hands them to the owner, which drops them on its shard.
        drop(closed.close());
        assert_eq!(DROPS.with(Cell::get), 1);
        let open = Remote::new(Silent);
        assert!(open.push(Counted).is_ok());
        drop(open);
        // Tasks of a shard that never closed its inbox (its thread
        // unwound) must not be dropped on whichever thread drops the inbox.
        assert_eq!(DROPS.with(Cell::get), 1);
    }
}

#[cfg(all(test, loom))]
pub(crate) mod loom_tests {
    use super::*;
    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;

    /// The eventfd, modelled: a counter the owner blocks on until non-zero.
    /// Shared with the smp ring's model.
    pub(crate) struct Counter {
        count: Mutex<u64>,
        cv: Condvar,
    }

    impl Notify for Counter {
        fn notify(&self) {
            *self.count.lock().unwrap() += 1;
            self.cv.notify_one();
        }
    }

    impl Counter {
        pub(crate) fn new() -> Counter {
            Counter {
                count: Mutex::new(0),
                cv: Condvar::new(),
            }
        }

        pub(crate) fn wait(&self) {
            let mut c = self.count.lock().unwrap();
            while *c == 0 {
                c = self.cv.wait(c).unwrap();
            }
            *c = 0;
        }
    }

    fn owner_receives(remote: &Remote<u32, Counter>, want: usize) {
        let mut got = Vec::new();
        while got.len() < want {
            remote.drain(&mut got);
            if got.len() < want && remote.prepare_sleep() {
                remote.notifier().wait();
                remote.woke();
            }
        }
    }

    #[test]
    fn loom_wake_is_never_lost() {
        loom::model(|| {
            let remote = Arc::new(Remote::new(Counter::new()));
            let sender = remote.clone();
            let t = thread::spawn(move || sender.push(7).unwrap());
            owner_receives(&remote, 1);
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_two_senders_both_delivered() {
        loom::model(|| {
            let remote = Arc::new(Remote::new(Counter::new()));
            let (a, b) = (remote.clone(), remote.clone());
            let ta = thread::spawn(move || a.push(1).unwrap());
            let tb = thread::spawn(move || b.push(2).unwrap());
            owner_receives(&remote, 2);
            ta.join().unwrap();
            tb.join().unwrap();
        });
    }
}
