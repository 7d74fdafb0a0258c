//! Multishot operations: one io_uring submission, a completion per event
//! (an accepted connection, a received chunk) until the kernel ends it.
//!
//! A [`Multishot`] describes the submission and how a completion becomes
//! an item; [`MultiOp`] keeps it armed, re-arms it when the kernel ends it,
//! and says `None` when the shard cannot use it (epoll, the feature off,
//! or the kernel refused it with `EINVAL`): the caller then falls back to
//! the single-shot form of the operation.

use std::marker::PhantomData;
use std::task::{Context, Poll, ready};

use io_uring::squeue;

use crate::reactor::{self, Cqe, OpKey, Orphan};

/// An operation the kernel repeats.
///
/// # Safety
///
/// The entry [`multishot_entry`](Self::multishot_entry) builds must point
/// into no memory but `'static` memory (the shard's provided-buffer ring
/// counts): the kernel may post completions until the cancellation of a
/// dropped [`MultiOp`] lands.
pub(crate) unsafe trait Multishot: 'static {
    /// What each completion becomes.
    type Item;
    /// Releases what a completion nobody takes created (an accepted fd;
    /// provided buffers go back to the ring by themselves).
    const ORPHAN: Orphan = None;

    /// Whether the shard uses this multishot operation (io_uring, and the
    /// feature is on).
    fn enabled() -> bool;

    /// The kernel refused it: off for the shard.
    fn refuse();

    /// io_uring: the multishot entry (user data set by the driver).
    fn multishot_entry(&mut self) -> squeue::Entry;

    /// The item for completion `cqe`.
    fn item(&mut self, cqe: Cqe) -> Self::Item;
}

/// A [`Multishot`] operation, armed on first poll. Dropping it cancels the
/// operation; completions that arrive afterwards (or were queued and not
/// taken) are released (`ORPHAN`, provided buffers recycled). `!Send`.
pub(crate) struct MultiOp<M: Multishot> {
    m: M,
    key: Option<OpKey>,
    _shard: PhantomData<*const ()>,
}

impl<M: Multishot> MultiOp<M> {
    /// `m`, not yet armed.
    pub(crate) fn new(m: M) -> MultiOp<M> {
        MultiOp {
            m,
            key: None,
            _shard: PhantomData,
        }
    }

    /// The next item; `Ready(None)`: the shard cannot use the multishot
    /// form (epoll, off, or just refused), use the single-shot one.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<M::Item>> {
        loop {
            let Some(key) = &self.key else {
                if !M::enabled() {
                    return Poll::Ready(None);
                }
                let m = &mut self.m;
                // SAFETY: the entry points into no memory but `'static`
                // memory (the trait's contract).
                self.key = reactor::with(|s| unsafe {
                    s.driver().borrow_mut().submit_multi(|| m.multishot_entry())
                });
                if self.key.is_none() {
                    return Poll::Ready(None);
                }
                continue;
            };
            let next = ready!(reactor::with(|s| s
                .driver()
                .borrow_mut()
                .poll_multi(key, cx.waker())));
            match next {
                // Refused (an old kernel): single-shot from now on.
                Some(cqe) if cqe.res == -libc::EINVAL => {
                    M::refuse();
                    self.disarm();
                    return Poll::Ready(None);
                }
                Some(cqe) => return Poll::Ready(Some(self.m.item(cqe))),
                // Ended by the kernel with every completion taken (its
                // slot is gone): re-arm.
                None => self.key = None,
            }
        }
    }

    /// Cancels the armed operation, if any.
    fn disarm(&mut self) {
        if let Some(key) = self.key.take() {
            let _ = reactor::try_with(|s| {
                s.driver()
                    .borrow_mut()
                    .abandon(key, Box::new(()), M::ORPHAN)
            });
        }
    }
}

impl<M: Multishot> Drop for MultiOp<M> {
    fn drop(&mut self) {
        self.disarm();
    }
}
