//! The operation table of the io_uring backend: one slot per operation in
//! flight, keyed by its submission's user data. Private to the backend:
//! the I/O layer holds an [`OpKey`] and goes through [`Uring`](super::Uring)'s
//! methods.
//!
//! A slot is `Waiting` (the task's waker), `Quiet` (a waker to use only
//! for an unexpected result), `Done` (result posted, not yet collected),
//! `Abandoned` (the future was dropped: the slot keeps the operation's
//! resources alive until the kernel's completion arrives, because the
//! kernel may still write into them) or `Multi` (a multishot operation's
//! queued completions).

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Poll, Waker};

use io_uring::cqueue;
use slab::Slab;

/// The key of one operation in flight on this shard's ring. Not `Clone`:
/// one owner, which collects or abandons it. Made only by the backend.
///
/// It names its table as well as its slot: an operation kept past its
/// runtime and polled or dropped under another runtime on the same thread
/// (one started after the first ended) must not reach that runtime's
/// slot of the same index. Polling it there panics; dropping it leaks its
/// resources (the kernel of the first ring may still hold them) and
/// touches nothing.
#[derive(Debug)]
pub(crate) struct OpKey {
    slot: usize,
    table: u32,
}

impl OpKey {
    /// The submission's user data.
    pub(super) fn user_data(&self) -> u64 {
        self.slot as u64
    }
}

/// Numbers the operation tables of the process, so a key knows its own.
static NEXT_TABLE: AtomicU32 = AtomicU32::new(1);

/// Panics for a key another table made.
#[cold]
#[inline(never)]
pub(crate) fn foreign_key() -> ! {
    panic!(
        "I/O operation polled under a runtime other than the one that started it \
         (a future kept past its runtime, or moved into another)"
    )
}

/// A completion: the result (`-errno` on failure) and its flags (a
/// provided buffer's id, `IORING_CQE_F_MORE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cqe {
    /// Count or `-errno`.
    pub(crate) res: i32,
    /// `IORING_CQE_F_*` flags.
    pub(crate) flags: u32,
}

impl Cqe {
    /// The provided buffer the kernel picked for this completion, if any.
    pub(crate) fn buffer(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }
}

/// What releases a result nobody collects (closes an accepted fd).
pub(crate) type Orphan = Option<fn(i32)>;

/// The state of one in-flight operation.
enum Slot {
    /// Submitted; the task to wake on completion, once polled.
    Waiting(Option<Waker>),
    /// Submitted; the task to wake only if the result is not this one
    /// (a send behind that took its whole buffer needs nobody).
    Quiet(Waker, i32),
    /// Completed, not yet collected.
    Done(Cqe),
    /// The waiting future was dropped; these are its resources, kept until
    /// the completion arrives, and the hook that releases what the
    /// completion created.
    Abandoned(#[allow(dead_code)] Box<dyn Any>, Orphan),
    /// A multishot operation: many completions for one submission.
    Multi(Multi),
}

impl Slot {
    /// Drops a slot replaced or removed on the hot path. The variants that
    /// own nothing (every completion passes through them) are forgotten
    /// instead: the drop glue is an out-of-line call that matches all five
    /// variants, about 28 instructions each time (callgrind, 3-4 per I/O
    /// request).
    #[inline]
    fn discard(self) {
        match self {
            Slot::Waiting(None) | Slot::Done(_) => std::mem::forget(self),
            other => drop(other),
        }
    }

    /// Whether the kernel will post nothing more for this slot.
    fn finished(&self) -> bool {
        matches!(self, Slot::Done(_) | Slot::Multi(Multi { ended: true, .. }))
    }
}

/// The completions of a multishot operation not yet taken by its owner.
#[derive(Default)]
struct Multi {
    /// Completions in arrival order.
    results: VecDeque<Cqe>,
    /// Tasks to wake on the next completion.
    wakers: Vec<Waker>,
    /// The kernel posted the last completion (no `IORING_CQE_F_MORE`).
    ended: bool,
}

/// The slots of the operations in flight.
pub(super) struct OpTable {
    slots: Slab<Slot>,
    /// This table's number (in every key it makes).
    id: u32,
}

impl OpTable {
    pub(super) fn new() -> OpTable {
        OpTable {
            slots: Slab::with_capacity(256),
            // (Wrapping after 4 billion rings: a key would have to outlive
            // that many runtimes to meet a table of its number.)
            id: NEXT_TABLE.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The key of `slot` in this table.
    fn key(&self, slot: usize) -> OpKey {
        OpKey {
            slot,
            table: self.id,
        }
    }

    /// Whether this table made `key`.
    #[inline]
    pub(super) fn owns(&self, key: &OpKey) -> bool {
        key.table == self.id
    }

    /// A slot for a one-shot operation about to be submitted.
    pub(super) fn insert(&mut self) -> OpKey {
        let slot = self.slots.insert(Slot::Waiting(None));
        self.key(slot)
    }

    /// A slot for a multishot operation about to be submitted.
    pub(super) fn insert_multi(&mut self) -> OpKey {
        let slot = self.slots.insert(Slot::Multi(Multi::default()));
        self.key(slot)
    }

    /// The completion of `key` if it arrived (freeing the slot), else
    /// registers `waker`; `quiet`: a completion with exactly this result
    /// does not wake it. A key this table does not hold as a one-shot
    /// operation (not possible for a key this shard made) answers `EBADF`.
    ///
    /// # Panics
    ///
    /// For a key another table made.
    pub(super) fn poll(&mut self, key: &OpKey, waker: &Waker, quiet: Option<i32>) -> Poll<Cqe> {
        if !self.owns(key) {
            foreign_key();
        }
        let Some(slot) = self.slots.get_mut(key.slot) else {
            return Poll::Ready(bad_key());
        };
        match slot {
            Slot::Done(cqe) => {
                let cqe = *cqe;
                self.slots.remove(key.slot).discard();
                Poll::Ready(cqe)
            }
            // Same mode: the waker and the quiet result updated in place.
            Slot::Waiting(w) if quiet.is_none() => {
                if !w.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *w = Some(waker.clone());
                }
                Poll::Pending
            }
            Slot::Quiet(w, q) if quiet.is_some() => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                *q = quiet.unwrap_or_default();
                Poll::Pending
            }
            Slot::Waiting(_) | Slot::Quiet(..) => {
                let next = match quiet {
                    Some(q) => Slot::Quiet(waker.clone(), q),
                    None => Slot::Waiting(Some(waker.clone())),
                };
                std::mem::replace(slot, next).discard();
                Poll::Pending
            }
            Slot::Abandoned(..) | Slot::Multi(_) => Poll::Ready(bad_key()),
        }
    }

    /// The next completion of multishot `key`, or `None` once the kernel
    /// ended it and every completion was taken (its slot is then freed:
    /// the key is spent); else registers `waker`.
    ///
    /// # Panics
    ///
    /// For a key another table made.
    pub(super) fn poll_multi(&mut self, key: &OpKey, waker: &Waker) -> Poll<Option<Cqe>> {
        if !self.owns(key) {
            foreign_key();
        }
        let Some(Slot::Multi(m)) = self.slots.get_mut(key.slot) else {
            return Poll::Ready(None);
        };
        if let Some(cqe) = m.results.pop_front() {
            return Poll::Ready(Some(cqe));
        }
        if m.ended {
            self.slots.remove(key.slot);
            return Poll::Ready(None);
        }
        if !m.wakers.iter().any(|w| w.will_wake(waker)) {
            m.wakers.push(waker.clone());
        }
        Poll::Pending
    }

    /// Gives up on `key`: its resources `data` stay in the slot until the
    /// kernel is done. Returns the completions that arrived and nobody
    /// took (to release), and whether a cancellation must be submitted.
    /// A key another table made touches nothing here: its `data` is
    /// leaked (that table's kernel ring may still write into it).
    pub(super) fn abandon(
        &mut self,
        key: &OpKey,
        data: Box<dyn Any>,
        orphan: Orphan,
        taken: &mut Vec<Cqe>,
    ) -> bool {
        if !self.owns(key) {
            std::mem::forget(data);
            return false;
        }
        let Some(slot) = self.slots.get_mut(key.slot) else {
            return false;
        };
        match slot {
            Slot::Done(cqe) => {
                taken.push(*cqe);
                self.slots.remove(key.slot);
                false
            }
            Slot::Multi(m) => {
                taken.extend(m.results.drain(..));
                if m.ended {
                    self.slots.remove(key.slot);
                    false
                } else {
                    *slot = Slot::Abandoned(data, orphan);
                    true
                }
            }
            Slot::Waiting(_) | Slot::Quiet(..) => {
                *slot = Slot::Abandoned(data, orphan);
                true
            }
            Slot::Abandoned(..) => false,
        }
    }

    /// Files the completion `cqe` of `key`, pushing the task to wake onto
    /// `woken`. Returns the hook to run when nobody waits for it (the
    /// caller also gives its provided buffer back).
    #[inline]
    pub(super) fn complete(
        &mut self,
        key: usize,
        cqe: Cqe,
        woken: &mut Vec<Waker>,
    ) -> Option<Orphan> {
        let slot = self.slots.get_mut(key)?;
        let more = cqueue::more(cqe.flags);
        match slot {
            Slot::Abandoned(_, orphan) => {
                let orphan = *orphan;
                if !more {
                    self.slots.remove(key);
                }
                return Some(orphan);
            }
            Slot::Waiting(w) => {
                if let Some(w) = w.take() {
                    woken.push(w);
                }
                std::mem::replace(slot, Slot::Done(cqe)).discard();
            }
            Slot::Quiet(..) => match std::mem::replace(slot, Slot::Done(cqe)) {
                Slot::Quiet(w, quiet) if cqe.res != quiet => woken.push(w),
                old => old.discard(),
            },
            Slot::Done(_) => std::mem::replace(slot, Slot::Done(cqe)).discard(),
            Slot::Multi(m) => {
                m.results.push_back(cqe);
                m.ended |= !more;
                woken.append(&mut m.wakers);
            }
        }
        None
    }

    /// Takes every waker the table holds (shard shutdown: the tasks are
    /// dropped, and their wakers with them).
    pub(super) fn take_wakers(&mut self) -> Vec<Waker> {
        let mut out = Vec::new();
        for (_, s) in self.slots.iter_mut() {
            match s {
                Slot::Waiting(w) => out.extend(w.take()),
                Slot::Quiet(..) => {
                    if let Slot::Quiet(w, _) = std::mem::replace(s, Slot::Waiting(None)) {
                        out.push(w);
                    }
                }
                Slot::Multi(m) => out.append(&mut m.wakers),
                Slot::Done(_) | Slot::Abandoned(..) => {}
            }
        }
        out
    }

    /// Keys of the operations the kernel may still complete (shutdown).
    pub(super) fn unfinished(&self) -> Vec<OpKey> {
        self.slots
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s,
                    Slot::Waiting(_) | Slot::Quiet(..) | Slot::Multi(Multi { ended: false, .. })
                )
            })
            .map(|(k, _)| self.key(k))
            .collect()
    }

    /// Frees the slots of finished operations; true if none is left.
    pub(super) fn sweep_finished(&mut self) -> bool {
        self.slots.retain(|_, s| !s.finished());
        self.slots.is_empty()
    }

    /// Slots in use.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Leaks every slot (their resources may still be written by the
    /// kernel at shutdown).
    pub(super) fn leak(&mut self) {
        std::mem::forget(std::mem::take(&mut self.slots));
    }
}

/// The answer to a key this table does not hold.
fn bad_key() -> Cqe {
    Cqe {
        res: -libc::EBADF,
        flags: 0,
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
