//! The wait list under every primitive of this module: a FIFO of waiters
//! in a slab, linked both ways so that any waiter leaves in O(1).
//!
//! The protocol is "the waker unlinks, the waiter frees". A primitive that
//! serves a waiter (grants units, hands over an item, signals) *unlinks*
//! its node and records the outcome in it; the node's slot stays allocated
//! until the waiter's future reads the outcome and *removes* it, or is
//! dropped and removes it. Only the owning future ever frees a slot, so a
//! slot index never changes hands while a future still holds it, and a
//! future dropped between being served and being polled finds what it was
//! given and can pass it on (the cancellation rule of `sync/mod.rs`).

use std::task::{Context, Waker};

use slab::Slab;

const NIL: usize = usize::MAX;

struct Node<T> {
    prev: usize,
    next: usize,
    linked: bool,
    value: T,
}

/// A FIFO of waiters; see the module doc for who may unlink and who frees.
pub(crate) struct WaitList<T> {
    nodes: Slab<Node<T>>,
    head: usize,
    tail: usize,
    len: usize,
}

impl<T> Default for WaitList<T> {
    fn default() -> Self {
        WaitList {
            nodes: Slab::new(),
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl<T> WaitList<T> {
    /// Number of linked (still waiting) nodes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a waiter; returns the slot its future keeps.
    pub(crate) fn push_back(&mut self, value: T) -> usize {
        let slot = self.nodes.insert(Node {
            prev: self.tail,
            next: NIL,
            linked: true,
            value,
        });
        match self.tail {
            NIL => self.head = slot,
            t => self.nodes[t].next = slot,
        }
        self.tail = slot;
        self.len += 1;
        slot
    }

    /// The slot of the oldest linked waiter.
    pub(crate) fn front(&self) -> Option<usize> {
        (self.head != NIL).then_some(self.head)
    }

    /// Unlinks the oldest waiter, keeping its slot for its future.
    pub(crate) fn pop_front(&mut self) -> Option<usize> {
        let slot = self.front()?;
        self.unlink(slot);
        Some(slot)
    }

    /// Takes `slot` out of the FIFO (no-op if already out).
    pub(crate) fn unlink(&mut self, slot: usize) {
        let node = &mut self.nodes[slot];
        if !node.linked {
            return;
        }
        node.linked = false;
        let (prev, next) = (node.prev, node.next);
        match prev {
            NIL => self.head = next,
            p => self.nodes[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n].prev = prev,
        }
        self.len -= 1;
    }

    pub(crate) fn is_linked(&self, slot: usize) -> bool {
        self.nodes[slot].linked
    }

    /// Unlinks and frees `slot`, returning its value. Only the future that
    /// owns the slot calls this.
    pub(crate) fn remove(&mut self, slot: usize) -> T {
        self.unlink(slot);
        self.nodes.remove(slot).value
    }

    pub(crate) fn get_mut(&mut self, slot: usize) -> &mut T {
        &mut self.nodes[slot].value
    }
}

/// Stores the task's waker in a waiter, cloning only when it changed.
pub(crate) fn park(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlink_from_middle_keeps_fifo_order_and_slot() {
        let mut l = WaitList::default();
        let a = l.push_back('a');
        let b = l.push_back('b');
        let c = l.push_back('c');
        l.unlink(b);
        assert_eq!(l.len(), 2);
        assert!(!l.is_linked(b));
        assert_eq!(*l.get_mut(b), 'b');
        assert_eq!(l.pop_front(), Some(a));
        assert_eq!(l.pop_front(), Some(c));
        assert_eq!(l.pop_front(), None);
        assert!(l.is_empty());
        for s in [a, b, c] {
            l.remove(s);
        }
        let d = l.push_back('d');
        assert_eq!(l.front(), Some(d));
        assert_eq!(l.remove(d), 'd');
        assert_eq!(l.front(), None);
    }
}
