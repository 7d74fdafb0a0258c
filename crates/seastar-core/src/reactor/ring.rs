//! The FIFO a scheduling group's ready tasks wait in (`run_queue`): a
//! ring of a power-of-two capacity indexed by masked counters. Its one
//! `unsafe` skips the bounds check the mask makes redundant (a compare
//! and a branch per push and per pop; two of each per spawn+await).

/// A FIFO of a power-of-two capacity: what a group's ready tasks wait in.
///
/// `VecDeque` wraps its indices with a compare and a conditional move and
/// keeps a length besides its head; this ring masks two counters instead:
/// a push or a pop is a few instructions fewer (callgrind, spawn+await:
/// two of each per operation).
pub(super) struct Ring<T> {
    /// `len` a power of two; slots in `head..tail` (masked) are `Some`,
    /// the others `None`.
    slots: Box<[Option<T>]>,
    /// Index of the oldest element (wrapping, masked on use).
    head: usize,
    /// Index one past the newest element (wrapping, masked on use).
    tail: usize,
}

impl<T> Ring<T> {
    /// An empty ring for `n` elements (rounded up to a power of two).
    pub(super) fn with_capacity(n: usize) -> Ring<T> {
        Ring {
            slots: (0..n.max(1).next_power_of_two()).map(|_| None).collect(),
            head: 0,
            tail: 0,
        }
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.tail.wrapping_sub(self.head)
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot of the wrapping index `i` (masked): no bounds check, the
    /// mask keeps it in range.
    #[inline(always)]
    fn slot(&mut self, i: usize) -> &mut Option<T> {
        let j = i & self.mask();
        // SAFETY: `slots.len()` is a power of two (at least 1: made so by
        // `with_capacity`, doubled by `grow`), so `j <= len - 1`.
        unsafe { self.slots.get_unchecked_mut(j) }
    }

    #[inline(always)]
    pub(super) fn push_back(&mut self, value: T) {
        if self.len() == self.slots.len() {
            self.grow();
        }
        // The slot is free (`None`): nothing to drop.
        std::mem::forget(self.slot(self.tail).replace(value));
        self.tail = self.tail.wrapping_add(1);
    }

    #[inline]
    pub(super) fn pop_front(&mut self) -> Option<T> {
        if self.is_empty() {
            return None;
        }
        let slot = self.slot(self.head);
        let v = slot.take();
        self.head = self.head.wrapping_add(1);
        v
    }

    /// Doubles the capacity, the elements kept in order.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let n = self.len();
        let mut slots: Box<[Option<T>]> = (0..self.slots.len() * 2).map(|_| None).collect();
        for (i, slot) in slots.iter_mut().take(n).enumerate() {
            let j = self.head.wrapping_add(i) & self.mask();
            *slot = self.slots[j].take();
        }
        self.slots = slots;
        self.head = 0;
        self.tail = n;
    }

    /// The element `i` places from the front (`i < len`).
    #[cfg(debug_assertions)]
    pub(super) fn get(&self, i: usize) -> &T {
        let j = self.head.wrapping_add(i) & self.mask();
        self.slots[j].as_ref().expect("an element")
    }

    /// Removes the element `i` places from the front (`i < len`), the
    /// ones behind it moving up.
    #[cfg(debug_assertions)]
    pub(super) fn remove(&mut self, i: usize) -> T {
        let (head, m) = (self.head, self.mask());
        let at = |k: usize| head.wrapping_add(k) & m;
        let v = self.slots[at(i)].take().expect("an element");
        for k in i + 1..self.len() {
            let moved = self.slots[at(k)].take();
            self.slots[at(k - 1)] = moved;
        }
        self.tail = self.tail.wrapping_sub(1);
        v
    }

    /// Removes every element, oldest first.
    pub(super) fn drain_all(&mut self) -> Vec<T> {
        std::iter::from_fn(|| self.pop_front()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn fifo_across_wraps_and_growth() {
        let mut r = Ring::with_capacity(2);
        let mut next_in = 0u32;
        let mut next_out = 0u32;
        // Interleaved pushes and pops wrap the counters; bursts grow it.
        for burst in [1, 3, 2, 9, 1, 17, 4] {
            for _ in 0..burst {
                r.push_back(next_in);
                next_in += 1;
            }
            for _ in 0..burst / 2 + 1 {
                if let Some(v) = r.pop_front() {
                    assert_eq!(v, next_out);
                    next_out += 1;
                }
            }
        }
        assert_eq!(r.len() as u32, next_in - next_out);
        let rest = r.drain_all();
        assert_eq!(rest, (next_out..next_in).collect::<Vec<_>>());
        assert!(r.is_empty() && r.pop_front().is_none());
    }

    #[test]
    fn dropping_a_ring_drops_its_elements() {
        let counted = std::rc::Rc::new(());
        let mut r = Ring::with_capacity(1);
        for _ in 0..5 {
            r.push_back(counted.clone());
        }
        drop(r.pop_front());
        assert_eq!(std::rc::Rc::strong_count(&counted), 5);
        drop(r);
        assert_eq!(std::rc::Rc::strong_count(&counted), 1);
    }
}
