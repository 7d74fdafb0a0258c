//! Per-thread counters and the table of owner slots that foreign frees are
//! credited to. Everything the allocator calls here is allocation-free.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// How many threads can be accounted shards at once. Further threads run
/// unaccounted (and [`set_shard_limit`] logs a warning).
pub const MAX_SHARDS: usize = 1024;

/// Identifies the owner of a block: `(slot index + 1) << 32 | generation`.
/// Zero means "no owner" (allocated by an unaccounted thread).
pub(super) type Tag = u64;

/// One owner's inbox for frees done by other threads. Its own cache line,
/// so foreign frees to different shards do not contend.
#[repr(align(64))]
struct Slot {
    in_use: AtomicBool,
    generation: AtomicU32,
    freed_bytes: AtomicU64,
    freed_blocks: AtomicU64,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            in_use: AtomicBool::new(false),
            generation: AtomicU32::new(0),
            freed_bytes: AtomicU64::new(0),
            freed_blocks: AtomicU64::new(0),
        }
    }
}

static SLOTS: [Slot; MAX_SHARDS] = [const { Slot::new() }; MAX_SHARDS];

#[inline]
fn slot_of(tag: Tag) -> Option<&'static Slot> {
    let index = (tag >> 32) as usize;
    index.checked_sub(1).and_then(|i| SLOTS.get(i))
}

/// The calling thread's figures. `Cell`s only, `const`-initialised and
/// without a destructor: usable at any point of the thread's life.
pub(super) struct Local {
    /// This thread's owner tag; 0 while it is not an accounted shard.
    pub(super) tag: Cell<Tag>,
    pub(super) allocated: Cell<u64>,
    pub(super) allocations: Cell<u64>,
    pub(super) frees: Cell<u64>,
    pub(super) foreign_frees: Cell<u64>,
    /// `u64::MAX` when there is no limit.
    pub(super) limit: Cell<u64>,
    pub(super) reclaims: Cell<u64>,
    pub(super) reclaimed: Cell<u64>,
    pub(super) over_limit: Cell<u64>,
    /// Set while reclaimers run: allocations they make skip reclaim.
    pub(super) in_reclaim: Cell<bool>,
    /// Set once a reclaimer was registered on this thread, so that the
    /// allocator never touches the registry before it exists.
    pub(super) has_reclaimers: Cell<bool>,
}

impl Local {
    const fn new() -> Self {
        Local {
            tag: Cell::new(0),
            allocated: Cell::new(0),
            allocations: Cell::new(0),
            frees: Cell::new(0),
            foreign_frees: Cell::new(0),
            limit: Cell::new(u64::MAX),
            reclaims: Cell::new(0),
            reclaimed: Cell::new(0),
            over_limit: Cell::new(0),
            in_reclaim: Cell::new(false),
            has_reclaimers: Cell::new(false),
        }
    }
}

/// Releases the thread's slot when the thread exits.
struct SlotRelease;

impl Drop for SlotRelease {
    fn drop(&mut self) {
        let _ = LOCAL.try_with(|l| {
            if let Some(slot) = slot_of(l.tag.replace(0)) {
                // Later frees of this thread's blocks no longer match.
                slot.generation.fetch_add(1, Ordering::AcqRel);
                slot.in_use.store(false, Ordering::Release);
            }
        });
    }
}

thread_local! {
    pub(super) static LOCAL: Local = const { Local::new() };
    static RELEASE: SlotRelease = const { SlotRelease };
}

fn claim() -> Option<Tag> {
    SLOTS.iter().enumerate().find_map(|(i, slot)| {
        let free = !slot.in_use.load(Ordering::Relaxed)
            && slot
                .in_use
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
        free.then(|| {
            slot.freed_bytes.store(0, Ordering::Relaxed);
            slot.freed_blocks.store(0, Ordering::Relaxed);
            ((i as u64 + 1) << 32) | u64::from(slot.generation.load(Ordering::Acquire))
        })
    })
}

/// Makes the calling thread an accounted shard (on first call) and sets its
/// soft limit in bytes (`None`: no limit).
///
/// The runtime calls this on every shard thread as it starts, with
/// [`RuntimeBuilder::memory`](crate::RuntimeBuilder::memory) divided by the
/// shard count; call it yourself only to account a thread of your own. The
/// thread keeps its slot, and its counters, until it exits: shard 0 of a
/// second runtime on the same thread continues the first one's figures.
/// Without [`ShardAllocator`](super::ShardAllocator) installed as the global
/// allocator nothing is counted.
///
/// ```
/// use seastar_core::alloc;
///
/// std::thread::spawn(|| {
///     assert_eq!(alloc::stats().limit, None);
///     alloc::set_shard_limit(Some(64 << 20));
///     assert_eq!(alloc::stats().limit, Some(64 << 20));
/// })
/// .join()
/// .unwrap();
/// ```
pub fn set_shard_limit(limit: Option<u64>) {
    let _ = LOCAL.try_with(|l| {
        if l.tag.get() == 0 {
            // Register the release before taking the slot; this may
            // allocate, so it must not run inside the allocator.
            if RELEASE.try_with(|_| ()).is_err() {
                return;
            }
            match claim() {
                Some(tag) => l.tag.set(tag),
                None => tracing::warn!(
                    max = MAX_SHARDS,
                    "alloc: every slot taken; this thread is not accounted"
                ),
            }
        }
        l.limit.set(limit.unwrap_or(u64::MAX));
    });
}

/// Moves frees done by other threads into the owner's counters.
pub(super) fn drain(l: &Local) {
    let Some(slot) = slot_of(l.tag.get()) else {
        return;
    };
    if slot.freed_blocks.load(Ordering::Relaxed) == 0 {
        return;
    }
    // Blocks before bytes (foreign frees add bytes first): a free caught
    // in between shows up in the figures at the next drain.
    let blocks = slot.freed_blocks.swap(0, Ordering::Relaxed);
    let bytes = slot.freed_bytes.swap(0, Ordering::Relaxed);
    l.allocated.set(l.allocated.get().saturating_sub(bytes));
    l.frees.set(l.frees.get() + blocks);
    l.foreign_frees.set(l.foreign_frees.get() + blocks);
}

/// Counts an allocation of `bytes` by the calling thread, first running
/// reclaim if it would cross the limit. `replaced` is the block a realloc
/// replaces (its tag and size), which the limit check discounts when this
/// thread owns it. Returns the tag to store in the block's header.
#[inline]
pub(super) fn charge(bytes: usize, replaced: Option<(Tag, usize)>) -> Tag {
    LOCAL
        .try_with(|l| {
            let tag = l.tag.get();
            if tag == 0 {
                return 0;
            }
            let bytes = bytes as u64;
            let released = match replaced {
                Some((t, n)) if t == tag => n as u64,
                _ => 0,
            };
            if l.allocated
                .get()
                .saturating_add(bytes)
                .saturating_sub(released)
                > l.limit.get()
            {
                pressure(l, bytes, released);
            }
            l.allocated.set(l.allocated.get().saturating_add(bytes));
            l.allocations.set(l.allocations.get() + 1);
            tag
        })
        .unwrap_or(0)
}

/// Undoes a [`charge`] whose allocation failed.
#[inline]
pub(super) fn uncharge(tag: Tag, bytes: usize) {
    if tag == 0 {
        return;
    }
    let _ = LOCAL.try_with(|l| {
        if l.tag.get() == tag {
            l.allocated
                .set(l.allocated.get().saturating_sub(bytes as u64));
            l.allocations.set(l.allocations.get().saturating_sub(1));
        }
    });
}

/// Counts the free of a block of `bytes` owned by `tag`: in the calling
/// thread's cells if it is the owner, else in the owner's slot.
#[inline]
pub(super) fn credit(tag: Tag, bytes: usize) {
    if tag == 0 {
        return;
    }
    let local = LOCAL
        .try_with(|l| {
            let own = l.tag.get() == tag;
            if own {
                l.allocated
                    .set(l.allocated.get().saturating_sub(bytes as u64));
                l.frees.set(l.frees.get() + 1);
            }
            own
        })
        .unwrap_or(false);
    if !local {
        credit_foreign(tag, bytes);
    }
}

#[cold]
fn credit_foreign(tag: Tag, bytes: usize) {
    if let Some(slot) = slot_of(tag) {
        // A stale generation means the owner exited: count nothing.
        if slot.generation.load(Ordering::Acquire) == tag as u32 {
            slot.freed_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            slot.freed_blocks.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The slow path of [`charge`]: the allocation would cross the limit.
#[cold]
#[inline(never)]
fn pressure(l: &Local, bytes: u64, released: u64) {
    let over = || {
        l.allocated
            .get()
            .saturating_add(bytes)
            .saturating_sub(released)
            .saturating_sub(l.limit.get())
    };
    drain(l);
    if over() > 0 && !l.in_reclaim.get() && l.has_reclaimers.get() {
        l.in_reclaim.set(true);
        let slack = (l.limit.get() / 64).min(1 << 20);
        let wanted = || match over() {
            0 => 0,
            n => usize::try_from(n.saturating_add(slack)).unwrap_or(usize::MAX),
        };
        if let Some(freed) = super::reclaim::run(&wanted) {
            l.reclaims.set(l.reclaims.get() + 1);
            l.reclaimed
                .set(l.reclaimed.get().saturating_add(freed as u64));
        }
        l.in_reclaim.set(false);
    }
    if over() > 0 {
        l.over_limit.set(l.over_limit.get() + 1);
    }
}

/// The accounting on its own, without installing the allocator (the lib
/// tests use the system one), so it runs under Miri (`cargo xtask test`,
/// step `miri`). Each test runs on a thread of its own.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::{register_reclaimer, stats};

    #[test]
    fn an_unaccounted_thread_counts_nothing() {
        std::thread::spawn(|| {
            assert_eq!(charge(100, None), 0);
            credit(0, 100);
            assert_eq!(stats().allocations, 0);
            assert_eq!(stats().allocated, 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_owner_counts_its_allocations_and_frees() {
        std::thread::spawn(|| {
            set_shard_limit(None);
            let tag = charge(100, None);
            assert_ne!(tag, 0);
            let a = charge(28, None);
            assert_eq!(a, tag);
            assert_eq!((stats().allocated, stats().allocations), (128, 2));
            credit(tag, 100);
            uncharge(tag, 28);
            let s = stats();
            assert_eq!((s.allocated, s.allocations, s.frees), (0, 1, 1));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_free_on_another_thread_is_credited_to_the_owner_at_its_next_look() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (back, done) = std::sync::mpsc::channel::<()>();
        let owner = std::thread::spawn(move || {
            set_shard_limit(None);
            let tag = charge(4096, None);
            tx.send(tag).unwrap();
            done.recv().unwrap();
            let s = stats();
            assert_eq!((s.allocated, s.frees, s.foreign_frees), (0, 1, 1));
        });
        let tag = rx.recv().unwrap();
        credit(tag, 4096);
        back.send(()).unwrap();
        owner.join().unwrap();
    }

    #[test]
    fn a_free_after_the_owner_exited_counts_nowhere() {
        let tag = std::thread::spawn(|| {
            set_shard_limit(None);
            charge(64, None)
        })
        .join()
        .unwrap();
        let slot = slot_of(tag).unwrap();
        credit(tag, 64);
        assert_eq!(slot.freed_blocks.load(Ordering::Relaxed), 0);
        assert_ne!(slot.generation.load(Ordering::Relaxed), tag as u32);
    }

    #[test]
    fn crossing_the_limit_runs_the_reclaimers_once_per_crossing() {
        std::thread::spawn(|| {
            set_shard_limit(Some(1 << 20));
            let tag = charge(1 << 20, None);
            let asked = std::rc::Rc::new(std::cell::Cell::new(0));
            let a = asked.clone();
            let _r = register_reclaimer(move |wanted| {
                a.set(wanted);
                // Frees what was charged first (as a cache would).
                credit(tag, 1 << 20);
                1 << 20
            });
            charge(4096, None);
            // The overshoot plus 1/64 of the limit of slack.
            assert_eq!(asked.get(), 4096 + (1 << 20) / 64);
            let s = stats();
            assert_eq!((s.reclaims, s.reclaimed, s.over_limit), (1, 1 << 20, 0));
            assert_eq!(s.allocated, 4096);
        })
        .join()
        .unwrap();
    }
}
