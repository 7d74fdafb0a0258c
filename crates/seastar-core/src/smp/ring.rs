//! The bounded single-producer single-consumer ring between two shards.
//!
//! One ring per ordered pair of shards carries tasks from the producer
//! shard to the consumer shard. Exactly one thread pushes (the producer
//! shard) and exactly one pops (the consumer shard).
//!
//! The rule is held by type: [`channel`] returns the ring's only
//! [`Producer`] and only [`Consumer`], each `Send` (it moves to its thread)
//! but neither `Clone` nor `Sync` (no second thread can use the same side),
//! and only they reach the ring.
//!
//! Protocol: positions grow without bound (wrapping) and are masked to a
//! power-of-two capacity. Each slot carries a stamp beside its item: the
//! producer writes the item at position `p` and then publishes it with a
//! `Release` store of `p + 1` into the slot's stamp; the consumer, at
//! position `h`, loads the stamp with `Acquire` and takes the item only if
//! it reads `h + 1` (a stale stamp from the previous lap is `h + 1 -
//! capacity`), then frees it with a `Release` store of `head`; the
//! producer reads `head` with `Acquire` before reusing a slot. A slot is
//! therefore never read before it is written nor overwritten before it is
//! read.
//!
//! Why stamps and not a shared `tail` index (the first design): the
//! consumer finds an item and its contents on one cache line, so one
//! message costs one cache-line transfer instead of two (the index's line,
//! then the slot's). With one message in flight that is most of the cost
//! of a hop (numbers in `smp/mod.rs`). Slots are 32-byte aligned so that a
//! three-word item (a call message, `call_msg.rs`) and its stamp fill one
//! slot, never straddling two lines.
//!
//! The producer keeps its own copy of `head` (`head_seen`) on its own
//! cache line and reloads the shared index only when the copy says the
//! ring is full: reading the other core's index on every push would pull
//! its cache line across on every item. A stale copy is only ever behind,
//! so it can only under-report room, never over-report.
//!
//! Waking the consumer is not the ring's job: the consumer looks at its
//! rings on every loop iteration, and after publishing a batch the producer
//! wakes it only if it sleeps (`Remote::signal_if_sleeping` in
//! `reactor/remote.rs`); a consumer about to sleep looks at the rings once
//! more after raising its sleeping flag ([`Consumer::is_empty`]), and that
//! handshake loses no wake-up. When the ring is full the producer sets
//! `producer_waiting`; the consumer, after making room, clears it and
//! signals the producer, so a blocked producer sleeps rather than spins.
//! The loom models at the bottom check both handshakes together
//! (`RUSTFLAGS="--cfg loom" cargo test -p seastar-core --release --lib loom`,
//! run by `cargo xtask test`), and the unit tests run under Miri
//! (`cargo +nightly miri test -p seastar-core --lib -- smp::ring`).

#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

use std::mem::MaybeUninit;

#[cfg(loom)]
use loom::cell::UnsafeCell;
#[cfg(loom)]
use loom::sync::Arc;
#[cfg(not(loom))]
use std::sync::Arc;

use std::cell::Cell;
use std::marker::PhantomData;

/// `std`'s cell with loom's `with_mut` shape, so one body serves both.
#[cfg(not(loom))]
struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    fn new(v: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(v))
    }
    fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Keeps the two sides' words on separate cache lines.
#[repr(align(128))]
struct Padded<T>(T);

/// One slot: the stamp that publishes it (see the module doc) and the item.
#[repr(align(32))]
struct Slot<T> {
    stamp: AtomicUsize,
    item: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded SPSC ring, shared by its [`Producer`] and its [`Consumer`].
/// See the module doc for the protocol.
struct Ring<T> {
    slots: Box<[Slot<T>]>,
    mask: usize,
    /// Consumer's line: `head`, the next position to pop.
    head: Padded<AtomicUsize>,
    /// Producer's line: the next position to publish (`tail`), the last
    /// `head` it loaded, and the end of the slots written but not yet
    /// published (see [`stage`](Self::stage)). Only the producer touches
    /// it (atomics so that the ring is `Sync`, all `Relaxed`).
    tail: Padded<(AtomicUsize, AtomicUsize, AtomicUsize)>,
    /// Set by the producer when it found the ring full.
    producer_waiting: AtomicBool,
}

// SAFETY: items move from the producer thread to the consumer thread, so
// `T: Send` suffices; the slot protocol gives each slot one owner at a time.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: the ring is reachable only through its one `Producer` and its one
// `Consumer` (private type, built only by `channel`), neither `Clone` nor
// `Sync`: at most two threads use it, one per side, and each side's
// methods touch only that side's fields plus the atomics of the protocol.
unsafe impl<T: Send> Sync for Ring<T> {}

/// Makes `T: Send` handles `Send` but neither `Sync` nor (without a
/// derive) `Clone`: a `Cell` is `Send` and `!Sync`.
type NotSync = PhantomData<Cell<()>>;

/// The pushing side of a ring: the only one, used by one thread at a time.
pub(crate) struct Producer<T> {
    ring: Arc<Ring<T>>,
    _not_sync: NotSync,
}

/// The popping side of a ring: the only one, used by one thread at a time.
pub(crate) struct Consumer<T> {
    ring: Arc<Ring<T>>,
    _not_sync: NotSync,
}

/// A ring holding at least `capacity` items (rounded up to a power of
/// two), as its two ends.
pub(crate) fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let ring = Arc::new(Ring::new(capacity));
    (
        Producer {
            ring: ring.clone(),
            _not_sync: PhantomData,
        },
        Consumer {
            ring,
            _not_sync: PhantomData,
        },
    )
}

impl<T> Producer<T> {
    /// Appends `item` and publishes it, or hands it back if the ring is full.
    #[cfg(any(test, loom))]
    pub(crate) fn push(&mut self, item: T) -> Result<(), T> {
        self.ring.push(item)
    }

    /// Writes `item` into the next slot without publishing it (the
    /// consumer sees it after the next [`publish`](Self::publish)), or
    /// hands it back if the ring is full. A batch is staged and then
    /// published at once: the consumer starts on it only when it is whole,
    /// and the producer writes its stamps on lines it already holds.
    #[inline]
    pub(crate) fn stage(&mut self, item: T) -> Result<(), T> {
        self.ring.stage(item)
    }

    /// Items staged and not yet published.
    #[inline]
    pub(crate) fn staged(&self) -> usize {
        self.ring.staged()
    }

    /// Makes every staged item visible to the consumer; returns how many
    /// were published.
    #[inline]
    pub(crate) fn publish(&mut self) -> usize {
        self.ring.publish()
    }

    /// After a refused push: announces that the producer waits for room.
    /// Retry the push afterwards before sleeping: the consumer may have
    /// made room before it could see the flag.
    pub(crate) fn set_waiting(&mut self) {
        self.ring.set_producer_waiting()
    }
}

impl<T> Consumer<T> {
    /// Removes the oldest published item.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.ring.pop()
    }

    /// After popping: whether the producer waits for room (and must be
    /// signalled). Clears the flag.
    #[inline]
    pub(crate) fn take_producer_waiting(&mut self) -> bool {
        self.ring.take_producer_waiting()
    }

    /// Whether the ring holds no published item right now (reloads the
    /// producer's index: for the look before sleeping, not for every pop).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

// The methods below are called only through `Producer` (the "producer
// only" ones) or `Consumer` (the "consumer only" ones), so each side runs
// on one thread at a time.
impl<T> Ring<T> {
    /// A ring holding at least `capacity` items (rounded up to a power of two).
    fn new(capacity: usize) -> Ring<T> {
        let cap = capacity.max(2).next_power_of_two();
        Ring {
            slots: (0..cap)
                .map(|_| Slot {
                    stamp: AtomicUsize::new(0),
                    item: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect(),
            mask: cap - 1,
            head: Padded(AtomicUsize::new(0)),
            tail: Padded((
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            )),
            producer_waiting: AtomicBool::new(false),
        }
    }

    /// Producer only: appends `item` and publishes it, or hands it back if
    /// the ring is full.
    #[cfg(any(test, loom))]
    fn push(&self, item: T) -> Result<(), T> {
        self.stage(item)?;
        self.publish();
        Ok(())
    }

    /// Producer only: writes `item` into the next slot without publishing
    /// it (the consumer sees it after the next [`publish`](Self::publish)),
    /// or hands it back if the ring is full.
    fn stage(&self, item: T) -> Result<(), T> {
        let (_, head_seen, written_a) = &self.tail.0;
        let written = written_a.load(Ordering::Relaxed);
        if written.wrapping_sub(head_seen.load(Ordering::Relaxed)) > self.mask {
            // Looks full: see how far the consumer really got.
            let head = self.head.0.load(Ordering::Acquire);
            head_seen.store(head, Ordering::Relaxed);
            if written.wrapping_sub(head) > self.mask {
                return Err(item);
            }
        }
        // Slot `written` is free: the consumer released it (head moved past
        // it, seen with Acquire now or when `head_seen` was loaded), and its
        // stamp is not this lap's yet, so the consumer does not read it.
        // SAFETY: a free slot, and only this producer writes slots.
        self.slots[written & self.mask]
            .item
            .with_mut(|p| unsafe { (*p).write(item) });
        written_a.store(written.wrapping_add(1), Ordering::Relaxed);
        Ok(())
    }

    /// Producer only: items staged and not yet published.
    fn staged(&self) -> usize {
        let (tail_a, _, written_a) = &self.tail.0;
        written_a
            .load(Ordering::Relaxed)
            .wrapping_sub(tail_a.load(Ordering::Relaxed))
    }

    /// Producer only: makes every staged item visible to the consumer, in
    /// order (each slot's stamp, on the slot's own line). Returns how many
    /// were published.
    fn publish(&self) -> usize {
        let (tail_a, _, written_a) = &self.tail.0;
        let (tail, written) = (
            tail_a.load(Ordering::Relaxed),
            written_a.load(Ordering::Relaxed),
        );
        let mut p = tail;
        while p != written {
            let next = p.wrapping_add(1);
            self.slots[p & self.mask]
                .stamp
                .store(next, Ordering::Release);
            p = next;
        }
        tail_a.store(written, Ordering::Relaxed);
        written.wrapping_sub(tail)
    }

    /// Consumer only: removes the oldest item.
    fn pop(&self) -> Option<T> {
        let head = self.head.0.load(Ordering::Relaxed);
        let slot = &self.slots[head & self.mask];
        if slot.stamp.load(Ordering::Acquire) != head.wrapping_add(1) {
            return None;
        }
        // SAFETY: slot `head` was written and then published (its stamp,
        // seen with Acquire, is this lap's); only this consumer reads slots.
        let item = slot.item.with_mut(|p| unsafe { (*p).assume_init_read() });
        self.head.0.store(head.wrapping_add(1), Ordering::Release);
        Some(item)
    }

    /// Producer only, after a refused push: announces that it waits for
    /// room. Retry the push afterwards before sleeping: the consumer may
    /// have made room before it could see the flag.
    fn set_producer_waiting(&self) {
        self.producer_waiting.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Consumer only, after popping: whether the producer waits for room
    /// (and must be signalled). Clears the flag.
    fn take_producer_waiting(&self) -> bool {
        fence(Ordering::SeqCst);
        self.producer_waiting.load(Ordering::SeqCst)
            && self.producer_waiting.swap(false, Ordering::SeqCst)
    }

    /// Consumer only: whether no published item waits right now.
    fn is_empty(&self) -> bool {
        let head = self.head.0.load(Ordering::Relaxed);
        self.slots[head & self.mask].stamp.load(Ordering::Acquire) != head.wrapping_add(1)
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Items left behind belong to a shard that has stopped (tasks must
        // only be dropped on their own shard): leak them.
        while let Some(item) = self.pop() {
            std::mem::forget(item);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The one-producer/one-consumer rule by type, checked at compile
    /// time: each end is `Send` but neither `Sync` nor `Clone` (a second
    /// impl of `Ambiguous` makes the path ambiguous, a compile error, if
    /// the type were `Sync`, resp. `Clone`).
    #[allow(dead_code)]
    const _: () = {
        trait AmbiguousIfSync<A> {
            fn check() {}
        }
        impl<T: ?Sized> AmbiguousIfSync<()> for T {}
        impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
        trait AmbiguousIfClone<A> {
            fn check() {}
        }
        impl<T: ?Sized> AmbiguousIfClone<()> for T {}
        impl<T: Clone> AmbiguousIfClone<u8> for T {}
        fn send<T: Send>() {}
        fn checks() {
            send::<Producer<u32>>();
            send::<Consumer<u32>>();
            <Producer<u32> as AmbiguousIfSync<_>>::check();
            <Consumer<u32> as AmbiguousIfSync<_>>::check();
            <Producer<u32> as AmbiguousIfClone<_>>::check();
            <Consumer<u32> as AmbiguousIfClone<_>>::check();
        }
    };

    #[test]
    fn fifo_until_full_then_refuses() {
        let (mut p, mut c) = channel(4);
        for i in 0..4 {
            p.push(i).unwrap();
        }
        assert_eq!(p.push(9), Err(9));
        assert_eq!(c.pop(), Some(0));
        p.push(4).unwrap();
        assert_eq!(
            (1..=4).map(|_| c.pop().unwrap()).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(c.pop(), None);
        assert!(c.is_empty());
    }

    #[test]
    fn staged_items_are_invisible_until_published() {
        let (mut p, mut c) = channel(4);
        p.stage(1).unwrap();
        p.stage(2).unwrap();
        assert_eq!(p.staged(), 2);
        assert_eq!(c.pop(), None);
        assert_eq!(p.publish(), 2);
        assert_eq!(p.staged(), 0);
        assert_eq!(p.publish(), 0);
        assert_eq!((c.pop(), c.pop(), c.pop()), (Some(1), Some(2), None));
    }

    #[test]
    fn producer_waiting_flag_is_taken_once() {
        let (mut p, mut c) = channel::<u8>(2);
        assert!(!c.take_producer_waiting());
        p.set_waiting();
        assert!(c.take_producer_waiting());
        assert!(!c.take_producer_waiting());
    }

    #[test]
    fn items_left_in_a_dropped_ring_are_leaked_not_dropped() {
        thread_local!(static DROPS: Cell<u32> = const { Cell::new(0) });
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.with(|d| d.set(d.get() + 1));
            }
        }
        let (mut p, c) = channel(2);
        assert!(p.push(Counted).is_ok());
        drop(Counted);
        drop((p, c));
        // Tasks of a stopped shard must not be dropped on another thread.
        assert_eq!(DROPS.with(Cell::get), 1);
    }

    #[test]
    fn two_threads_transfer_a_million_items_in_order() {
        let (mut p, mut r) = channel(64);
        // Miri interprets: fewer items, same interleavings of interest.
        const N: u64 = if cfg!(miri) { 2_000 } else { 1_000_000 };
        let producer = std::thread::spawn(move || {
            for i in 0..N {
                let mut v = i;
                while let Err(back) = p.push(v) {
                    v = back;
                    std::hint::spin_loop();
                }
            }
        });
        let mut next = 0;
        while next < N {
            if let Some(v) = r.pop() {
                assert_eq!(v, next);
                next += 1;
            }
        }
        producer.join().unwrap();
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::reactor::remote::Remote;
    use crate::reactor::remote::loom_tests::Counter;
    use loom::sync::Arc;
    use loom::thread;

    /// One reactor-style wait: sleep unless something was signalled or,
    /// once the sleeping flag is up, `ready()` finds work (the reactor's
    /// second look at its rings before sleeping).
    fn sleep(remote: &Remote<(), Counter>, ready: impl FnOnce() -> bool) {
        if remote.prepare_sleep() {
            fence(Ordering::SeqCst);
            if !ready() {
                remote.notifier().wait();
            }
            remote.woke();
        }
    }

    /// Producer publishes items and signals the consumer only if it sleeps;
    /// the consumer drains and sleeps between, looking at the ring once
    /// more after raising its flag: every item arrives, in order, and
    /// nobody sleeps forever.
    /// The ring holds 2 items, so the producer also waits for space.
    #[test]
    fn loom_ring_with_sleep_flag_loses_nothing() {
        loom::model(|| {
            let (mut r, mut ring) = channel::<u32>(2);
            let consumer = Arc::new(Remote::new(Counter::new()));
            let producer = Arc::new(Remote::new(Counter::new()));
            let (c, p) = (consumer.clone(), producer.clone());
            let t = thread::spawn(move || {
                for i in 0..3 {
                    let mut v = i;
                    // The producer's loop: publish, or announce it waits for
                    // room, retry, and sleep until the consumer signals.
                    loop {
                        p.drain(&mut Vec::new());
                        match r.push(v) {
                            Ok(()) => break,
                            Err(back) => v = back,
                        }
                        r.set_waiting();
                        match r.push(v) {
                            Ok(()) => break,
                            Err(back) => v = back,
                        }
                        sleep(&p, || false);
                    }
                    // As `Transport::publish`: only a sleeping consumer is
                    // signalled.
                    c.signal_if_sleeping();
                }
            });
            // The consumer's loop, as the reactor runs it: drain the ring
            // and the inbox, signal a waiting producer if room was made,
            // sleep.
            let mut got = Vec::new();
            loop {
                let before = got.len();
                while let Some(v) = ring.pop() {
                    got.push(v);
                }
                consumer.drain(&mut Vec::new());
                if got.len() > before && ring.take_producer_waiting() {
                    producer.signal();
                }
                if got.len() == 3 {
                    break;
                }
                sleep(&consumer, || !ring.is_empty());
            }
            assert_eq!(got, vec![0, 1, 2]);
            t.join().unwrap();
        });
    }
}
