//! A shard's timer queue: a binary heap of deadlines over a slab of timers.
//!
//! Arm is O(log n); cancel is O(1) (the slab slot is freed and the heap
//! entry goes stale, recognised by a sequence number that no longer
//! matches). Stale entries are dropped as they reach the top, and the heap
//! is rebuilt when they outnumber live ones, so a workload that arms and
//! cancels far-future timeouts at a high rate keeps a bounded heap. Firing
//! pops only due entries: no step of a tick is O(number of timers).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Waker;

use slab::Slab;

use super::TimerInner;

/// Identifies an armed timer: its queue, its slab slot and the arming's
/// sequence. The queue's number keeps a timer kept past its runtime from
/// naming a timer of a later runtime on the same thread (whose sequence
/// starts over): cancelling it there touches nothing, polling it panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: usize,
    seq: u64,
    queue: u32,
}

/// Numbers the timer queues of the process.
static NEXT_QUEUE: AtomicU32 = AtomicU32::new(1);

/// What an expiring timer does.
pub(crate) enum Action {
    /// Wake a task (a `Sleep`); `fired` tells the sleeper it is due.
    Wake { waker: Option<Waker>, fired: bool },
    /// Run a [`Timer`](super::Timer)'s callback.
    Callback(Rc<TimerInner>),
}

struct Entry {
    seq: u64,
    action: Action,
}

/// The timers of one shard.
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    slots: Slab<Entry>,
    next_seq: u64,
    /// This queue's number (in every key it makes).
    id: u32,
}

impl Default for TimerQueue {
    fn default() -> TimerQueue {
        TimerQueue {
            heap: BinaryHeap::new(),
            slots: Slab::new(),
            next_seq: 0,
            id: NEXT_QUEUE.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl TimerQueue {
    /// Arms a timer at `deadline` (nanoseconds on the shard's clock).
    pub(crate) fn insert(&mut self, deadline: u64, action: Action) -> TimerKey {
        self.next_seq += 1;
        let seq = self.next_seq;
        let slot = self.slots.insert(Entry { seq, action });
        self.heap.push(Reverse((deadline, seq, slot)));
        self.compact_if_stale();
        TimerKey {
            slot,
            seq,
            queue: self.id,
        }
    }

    /// Cancels an armed timer; returns its action if it was still armed.
    /// A key another queue made: `None`, nothing touched.
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<Action> {
        if key.queue != self.id {
            return None;
        }
        match self.slots.get(key.slot) {
            Some(e) if e.seq == key.seq => Some(self.slots.remove(key.slot).action),
            _ => None,
        }
    }

    /// The sleeper's view of its timer: `true` once it fired; otherwise
    /// stores the waker to use.
    ///
    /// # Panics
    ///
    /// For a key another queue made (a sleep kept past its runtime and
    /// polled under another one on the same thread).
    pub(crate) fn poll_fired(&mut self, key: TimerKey, waker: &Waker) -> bool {
        if key.queue != self.id {
            foreign_timer();
        }
        match self.slots.get_mut(key.slot) {
            Some(Entry {
                seq,
                action: Action::Wake { waker: w, fired },
            }) if *seq == key.seq => {
                if *fired {
                    return true;
                }
                match w {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *w = Some(waker.clone()),
                }
                false
            }
            _ => true,
        }
    }

    /// Whether [`expire`](Self::expire) at the time `now` gives has
    /// anything to pop (a due timer, or a cancelled one's stale entry): one
    /// peek, so that the reactor's idle iterations skip the rest, and no
    /// call of `now` (a clock read) when the queue is empty.
    #[inline]
    pub(crate) fn has_due(&self, now: impl FnOnce() -> u64) -> bool {
        self.heap.peek().is_some_and(|e| e.0.0 <= now())
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<u64> {
        while let Some(&Reverse((deadline, seq, slot))) = self.heap.peek() {
            if self.is_live(seq, slot) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Pops every timer due at `now`: wakes sleepers directly and returns
    /// the callback timers for the caller to run outside this borrow.
    pub(crate) fn expire(&mut self, now: u64, callbacks: &mut Vec<Rc<TimerInner>>) {
        while let Some(&Reverse((deadline, seq, slot))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            if !self.is_live(seq, slot) {
                continue;
            }
            let fire_callback = match &mut self.slots[slot].action {
                Action::Wake { waker, fired } => {
                    *fired = true;
                    if let Some(w) = waker.take() {
                        w.wake();
                    }
                    false
                }
                Action::Callback(_) => true,
            };
            if fire_callback {
                if let Action::Callback(t) = self.slots.remove(slot).action {
                    callbacks.push(t);
                }
            }
        }
    }

    /// Number of armed timers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    fn is_live(&self, seq: u64, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|e| e.seq == seq)
    }

    fn compact_if_stale(&mut self) {
        // Fired sleepers keep their slot until polled, with no heap entry:
        // slots may outnumber heap entries.
        let stale = self.heap.len().saturating_sub(self.slots.len());
        if stale > 1024 && stale > self.slots.len() {
            let slots = &self.slots;
            self.heap
                .retain(|&Reverse((_, seq, slot))| slots.get(slot).is_some_and(|e| e.seq == seq));
        }
    }

    /// Drops every timer (at shard shutdown), returning their wakers and
    /// callbacks so they can be dropped outside the queue's borrow.
    pub(crate) fn clear(&mut self) -> Vec<Action> {
        self.heap.clear();
        self.slots.drain().map(|e| e.action).collect()
    }
}

#[cold]
#[inline(never)]
fn foreign_timer() -> ! {
    panic!(
        "timer polled under a runtime other than the one that armed it \
         (a sleep kept past its runtime, or moved into another)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn noop() -> Waker {
        Waker::noop().clone()
    }

    #[test]
    fn cancelled_entries_do_not_fire_and_heap_stays_bounded() {
        let mut q = TimerQueue::default();
        let n: u64 = if cfg!(miri) { 3_000 } else { 100_000 };
        for i in 0..n {
            let k = q.insert(
                1_000_000 + i,
                Action::Wake {
                    waker: Some(noop()),
                    fired: false,
                },
            );
            assert!(q.remove(k).is_some());
        }
        assert_eq!(q.len(), 0);
        assert!(
            q.heap.len() <= 2048,
            "heap kept {} stale entries",
            q.heap.len()
        );
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn expire_marks_due_sleepers_in_deadline_order_only() {
        let mut q = TimerQueue::default();
        let late = q.insert(
            30,
            Action::Wake {
                waker: None,
                fired: false,
            },
        );
        let early = q.insert(
            10,
            Action::Wake {
                waker: None,
                fired: false,
            },
        );
        assert_eq!(q.next_deadline(), Some(10));
        q.expire(20, &mut Vec::new());
        assert!(q.poll_fired(early, &noop()));
        assert!(!q.poll_fired(late, &noop()));
        assert_eq!(q.next_deadline(), Some(30));
    }
}
