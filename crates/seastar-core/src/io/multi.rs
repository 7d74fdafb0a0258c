//! A multishot io_uring operation: one submission, a completion per event
//! (an accepted connection) until the kernel ends it.

use std::task::{Context, Poll};

use io_uring::squeue;

use crate::reactor::{self, Driver, Multi, Slot};

/// An armed multishot operation. Its results queue in the reactor's slot;
/// [`MultiOp::poll_next`] takes them in order. Dropping it cancels the
/// operation; results that arrive afterwards (or were queued and not taken)
/// go to the `on_orphan` hook, which releases what they created.
pub(crate) struct MultiOp {
    key: usize,
    on_orphan: fn(i32),
}

impl MultiOp {
    /// Submits `entry` (its user data is set here).
    ///
    /// # Safety
    ///
    /// `entry` must reference no memory, or only `'static` memory: the
    /// kernel may complete it at any time until the cancellation lands.
    ///
    /// # Panics
    ///
    /// Outside a shard, or on a shard not running io_uring.
    pub(crate) unsafe fn submit(entry: squeue::Entry, on_orphan: fn(i32)) -> MultiOp {
        reactor::with(|cx| {
            let mut driver = cx.driver.borrow_mut();
            let Driver::Uring(ring) = &mut *driver else {
                unreachable!("io_uring op on an epoll shard")
            };
            let key = ring.ops.insert(Slot::Multi(Multi::default()));
            // SAFETY: forwarded from this function's contract.
            unsafe { ring.push(&entry.user_data(key as u64)) };
            MultiOp { key, on_orphan }
        })
    }

    /// The next result (`-errno` on failure), or `None` once the kernel has
    /// ended the operation and every result was taken.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<i32>> {
        reactor::with(|shard| {
            let mut driver = shard.driver.borrow_mut();
            let Driver::Uring(ring) = &mut *driver else {
                unreachable!()
            };
            let Some(Slot::Multi(m)) = ring.ops.get_mut(self.key) else {
                unreachable!("live MultiOp without its slot")
            };
            if let Some(res) = m.results.pop_front() {
                return Poll::Ready(Some(res));
            }
            if m.ended {
                return Poll::Ready(None);
            }
            if !m.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                m.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

impl Drop for MultiOp {
    fn drop(&mut self) {
        let _ = reactor::try_with(|cx| {
            let mut driver = cx.driver.borrow_mut();
            let Driver::Uring(ring) = &mut *driver else {
                return;
            };
            let Some(Slot::Multi(m)) = ring.ops.get_mut(self.key) else {
                return;
            };
            let queued: Vec<i32> = m.results.drain(..).collect();
            if m.ended {
                ring.ops.remove(self.key);
            } else {
                ring.ops[self.key] = Slot::Abandoned(Box::new(()), Some(self.on_orphan));
                ring.cancel(self.key);
            }
            drop(driver);
            for res in queued {
                (self.on_orphan)(res);
            }
        });
    }
}
