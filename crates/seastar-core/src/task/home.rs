//! Where a spawned task lives: its shard (the reactor's [`Home`]).
//!
//! Home is the shard's thread while the shard is installed there. A task
//! is queued by a plain push onto its shard's run queue; a request from
//! another shard of the runtime travels in that shard's outgoing batch
//! (`smp::transport`), one from any other thread through the shard's
//! remote inbox, which wakes the shard if it sleeps. Either way the shard
//! applies it when it moves its messages into its run queue
//! (`RunQueue::push`).
//!
//! # The anchor
//!
//! Every task of a shard points to one [`Anchor`], made with the shard: the
//! shard's index and an `Arc` of the runtime's shared state (which keeps the
//! shard's inbox alive). The anchor is an `Rc`, whose count only the home
//! thread changes: a spawn takes a reference, a cell's deallocation (always
//! at home) gives it up, and so does the shard when it ends. So a spawn
//! costs no atomic read-modify-write (an `Arc` clone per task cost two, one
//! at the spawn and one at the free), and the anchor, with the runtime's
//! state, outlives every task of the shard: a waker kept by another thread
//! after the runtime ended still reaches a live inbox (closed: the request
//! is leaked there, see [`Home::send`]).
//!
//! Other threads read the anchor's immutable fields only, never the count.

use std::rc::Rc;
use std::sync::Arc;

use super::cell::{self, Home};
use crate::reactor::{self, Runnable, Shared};
use crate::smp::transport::Message;

/// What the tasks of one shard share: shard `shard` of the runtime
/// `shared`. Its address is the shard's identity for
/// [`is_home`](Home::is_home): unique while any task of the shard lives
/// (each holds a reference).
pub(crate) struct Anchor {
    shared: Arc<Shared>,
    shard: usize,
}

impl Anchor {
    /// The anchor of shard `shard` of the runtime `shared`, made once by the
    /// shard (`Shard::new`).
    pub(crate) fn new(shared: Arc<Shared>, shard: usize) -> Rc<Anchor> {
        Rc::new(Anchor { shared, shard })
    }
}

/// A task's shard: a reference to its [`Anchor`].
pub(crate) struct ShardHome(Rc<Anchor>);

// SAFETY: other threads only read the anchor's immutable fields (`shared`,
// an `Arc` of a `Sync` value, and `shard`), through a `ShardHome` that a
// live cell holds; the `Rc` count is changed only on the home thread: the
// `ShardHome` is made there (`of`, at a spawn) and dropped there (a cell is
// freed only at home; `task::cell`'s module doc). The anchor is freed when
// the count reaches 0, after the last task of the shard, when no other
// thread can hold a reference to any of its cells.
unsafe impl Send for ShardHome {}
// SAFETY: as for `Send`: shared access is reads of immutable fields only.
unsafe impl Sync for ShardHome {}

impl std::fmt::Debug for ShardHome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardHome")
            .field("shard", &self.0.shard)
            .finish()
    }
}

impl ShardHome {
    /// The calling thread's `shard`.
    #[inline]
    pub(crate) fn of(shard: &reactor::Shard) -> ShardHome {
        ShardHome(shard.task_anchor().clone())
    }
}

impl cell::Runnable<ShardHome> {
    /// [`Runnable::run`](cell::Runnable::run) by the reactor of `shard`:
    /// the home check is a compare with `shard`'s anchor, which the
    /// reactor holds, instead of a thread-local lookup. A task of another
    /// shard is leaked, as `run` would.
    #[inline(always)]
    pub(crate) fn run_on(self, shard: &reactor::Shard) {
        if Rc::ptr_eq(&self.home().0, shard.task_anchor()) {
            // SAFETY: the task is `shard`'s (its anchor), and `shard` is
            // the calling thread's: a `Shard` never leaves the thread it
            // was made on (neither `Send` nor `Sync`).
            unsafe { self.run_at_home() }
        } else {
            std::mem::forget(self);
        }
    }
}

impl Home for ShardHome {
    #[inline]
    fn is_home(&self) -> bool {
        reactor::try_with(|s| Rc::ptr_eq(s.task_anchor(), &self.0)).unwrap_or(false)
    }

    #[inline]
    fn same(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    // (Inlined whole, closure and push included: a call per wake and
    // per spawn otherwise.)
    #[inline(always)]
    fn schedule(task: cell::Runnable<Self>) {
        // Without a shard here (its teardown) the closure is not called
        // and the task leaks: it may only be dropped at home, and this may
        // not be.
        let task = std::mem::ManuallyDrop::new(task);
        let _ = reactor::try_with(
            #[inline(always)]
            |s| {
                s.queue()
                    .borrow_mut()
                    .push_local(std::mem::ManuallyDrop::into_inner(task));
            },
        );
    }

    #[cold]
    fn send(request: cell::Request<Self>) {
        let anchor = &*request.home().0;
        let (shared, target) = (Arc::as_ptr(&anchor.shared), anchor.shard);
        let mut request = Some(request);
        let _ = reactor::try_with(|s| {
            if std::ptr::eq(Arc::as_ptr(s.shared()), shared) && s.id() != target {
                let r = request.take().expect("present");
                s.transport().push(target, Message::Task(Runnable::Wake(r)));
            }
        });
        let Some(r) = request else { return };
        // Another thread: reach the inbox through an `Arc` of our own, as
        // home may free the cell (and the anchor) once it has the request.
        let remote = r.home().0.shared.remotes[target].clone();
        if let Err(r) = remote.push(Runnable::Wake(r)) {
            // The shard is gone: the request may only be dropped there.
            std::mem::forget(r);
        }
    }
}
