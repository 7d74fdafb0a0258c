//! Where a spawned task lives: its shard (the reactor's [`Home`]).
//!
//! Home is the shard's thread while the shard is installed there. A task
//! is queued by a plain push onto its shard's run queue; a request from
//! another shard of the runtime travels in that shard's outgoing batch
//! (`smp::transport`), one from any other thread through the shard's
//! remote inbox, which wakes the shard if it sleeps. Either way the shard
//! applies it when it moves its messages into its run queue
//! (`RunQueue::push`).

use std::sync::Arc;

use super::cell::{self, Home};
use crate::reactor::{self, Runnable, Shared};
use crate::smp::transport::Message;

/// A task's shard: shard `shard` of the runtime `shared`.
///
/// Holding the runtime's `Arc` keeps its shards' inboxes alive while any
/// task of it is, so the inbox address compared in
/// [`is_home`](Home::is_home) (one per shard) cannot be reused by another
/// shard meanwhile.
pub(crate) struct ShardHome {
    shared: Arc<Shared>,
    /// The address of the shard's inbox (`Shard::remote`), its identity.
    inbox: usize,
    shard: usize,
}

impl std::fmt::Debug for ShardHome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardHome")
            .field("shard", &self.shard)
            .finish()
    }
}

impl ShardHome {
    /// The calling thread's `shard`.
    #[inline]
    pub(crate) fn of(shard: &reactor::Shard) -> ShardHome {
        ShardHome {
            shared: shard.shared.clone(),
            inbox: Arc::as_ptr(&shard.remote).addr(),
            shard: shard.id,
        }
    }
}

impl Home for ShardHome {
    #[inline]
    fn is_home(&self) -> bool {
        reactor::try_with(|s| Arc::as_ptr(&s.remote).addr() == self.inbox).unwrap_or(false)
    }

    #[inline]
    fn schedule(task: cell::Runnable<Self>) {
        let mut task = Some(task);
        let _ = reactor::try_with(|s| {
            if let Some(t) = task.take() {
                s.queue.borrow_mut().push_local(t);
            }
        });
        if let Some(t) = task {
            // No shard here (its teardown): a task may only be dropped at
            // home, and this may not be; leak it.
            std::mem::forget(t);
        }
    }

    #[cold]
    fn send(request: cell::Request<Self>) {
        let home = request.home();
        let (shared, target) = (Arc::as_ptr(&home.shared), home.shard);
        let mut request = Some(request);
        let _ = reactor::try_with(|s| {
            if std::ptr::eq(Arc::as_ptr(&s.shared), shared) && s.id != target {
                let r = request.take().expect("present");
                s.transport.push(target, Message::Task(Runnable::Wake(r)));
            }
        });
        let Some(r) = request else { return };
        // Another thread: reach the inbox through an `Arc` of our own, as
        // home may free the cell (and its `Arc<Shared>`) once it has the
        // request.
        let remote = r.home().shared.remotes[target].clone();
        if let Err(r) = remote.push(Runnable::Wake(r)) {
            // The shard is gone: the request may only be dropped there.
            std::mem::forget(r);
        }
    }
}
