//! A shard-local free list for cross-shard call cells and task cells
//! (`task/cell.rs`).
//!
//! A shard with 1024 calls in flight allocates 1024 cells, then frees them
//! as the replies come in, batch after batch. The platform allocator's
//! per-thread cache holds only a few blocks per size, so most of those
//! frees and the next batch's allocations went to its slower shared bins
//! (about 300 instructions per call, callgrind). This keeps freed cells in
//! per-size LIFO lists on the thread that allocated them (cells are always
//! freed on their origin shard), bounded in bytes per size class; anything
//! larger or more aligned goes straight to the global allocator.

use std::alloc::Layout;
use std::cell::RefCell;
use std::ptr::NonNull;

/// Size classes are multiples of this.
const GRAIN: usize = 32;
/// Every pooled block starts a cache line: a cell shares no line with
/// another, and call cells lay out their fields by line (`call/`).
const ALIGN: usize = 64;
/// Cells above this size are not pooled.
const MAX_POOLED: usize = 1024;
/// Bytes kept per size class at most.
const CLASS_BYTES: usize = 256 * 1024;

struct Pool {
    /// `lists[i]`: free blocks of `(i + 1) * GRAIN` bytes.
    lists: [Vec<NonNull<u8>>; CLASSES],
}

const CLASSES: usize = MAX_POOLED / GRAIN;

impl Drop for Pool {
    fn drop(&mut self) {
        for (i, list) in self.lists.iter_mut().enumerate() {
            let layout = class_layout(i);
            for block in list.drain(..) {
                // SAFETY: every pooled block was allocated with its class's
                // layout by `alloc` and is owned by the pool.
                unsafe { std::alloc::dealloc(block.as_ptr(), layout) };
            }
        }
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            lists: [const { Vec::new() }; CLASSES],
        })
    };
}

/// The size class of `layout`, if pooled (constant-folded for the
/// cell types, whose layouts are constants).
#[inline]
const fn class(layout: Layout) -> Option<usize> {
    if layout.size() > 0 && layout.size() <= MAX_POOLED && layout.align() <= ALIGN {
        Some(layout.size().div_ceil(GRAIN) - 1)
    } else {
        None
    }
}

fn class_layout(class: usize) -> Layout {
    Layout::from_size_align((class + 1) * GRAIN, ALIGN).expect("valid class layout")
}

/// A block for `layout` (non-zero size), from the pool when it has one.
#[inline]
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    let class = class(layout);
    if let Some(c) = class {
        let reused = POOL.try_with(|p| p.borrow_mut().lists[c].pop());
        if let Ok(Some(block)) = reused {
            return block;
        }
    }
    fresh(layout, class)
}

#[cold]
fn fresh(layout: Layout, class: Option<usize>) -> NonNull<u8> {
    let layout = class.map_or(layout, class_layout);
    assert!(layout.size() > 0, "call cells are never zero-sized");
    // SAFETY: the layout has a non-zero size.
    let block = unsafe { std::alloc::alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
}

/// Gives back a block that [`alloc`] returned for `layout`, on the thread
/// that allocated it.
///
/// # Safety
///
/// `block` came from [`alloc`] with the same `layout` on this thread and is
/// not used afterwards.
#[inline]
pub(crate) unsafe fn free(block: NonNull<u8>, layout: Layout) {
    let class = class(layout);
    if let Some(c) = class {
        let kept = POOL.try_with(|p| {
            let list = &mut p.borrow_mut().lists[c];
            if list.len() < CLASS_BYTES / ((c + 1) * GRAIN) {
                list.push(block);
                true
            } else {
                false
            }
        });
        if kept == Ok(true) {
            return;
        }
    }
    // SAFETY: as documented for this function.
    unsafe { release(block, layout, class) }
}

/// # Safety
/// As for [`free`].
#[cold]
unsafe fn release(block: NonNull<u8>, layout: Layout, class: Option<usize>) {
    let layout = class.map_or(layout, class_layout);
    // SAFETY: allocated by `alloc` with this (class) layout (caller).
    unsafe { std::alloc::dealloc(block.as_ptr(), layout) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_per_class_and_large_ones_are_not_pooled() {
        let small = Layout::from_size_align(40, 8).unwrap();
        let a = alloc(small);
        // SAFETY: from `alloc` with this layout, on this thread.
        unsafe { free(a, small) };
        let b = alloc(Layout::from_size_align(64, 16).unwrap());
        assert_eq!(a, b, "40 and 64 bytes share the 64-byte class (LIFO)");
        // SAFETY: as above.
        unsafe { free(b, Layout::from_size_align(64, 16).unwrap()) };
        let big = Layout::from_size_align(4096, 8).unwrap();
        let c = alloc(big);
        // SAFETY: as above.
        unsafe { free(c, big) };
        let aligned = Layout::from_size_align(64, 64).unwrap();
        let d = alloc(aligned);
        assert_eq!(d.as_ptr() as usize % 64, 0);
        // SAFETY: as above.
        unsafe { free(d, aligned) };
        let over = Layout::from_size_align(128, 128).unwrap();
        assert_eq!(class(over), None, "alignments above a line are not pooled");
        let odd = alloc(Layout::from_size_align(96, 8).unwrap());
        assert_eq!(
            odd.as_ptr() as usize % 64,
            0,
            "every pooled block starts a line"
        );
        // SAFETY: as above.
        unsafe { free(odd, Layout::from_size_align(96, 8).unwrap()) };
    }

    #[test]
    fn a_class_keeps_a_bounded_number_of_blocks() {
        let l = Layout::from_size_align(1024, 8).unwrap();
        let blocks: Vec<_> = (0..1000).map(|_| alloc(l)).collect();
        for b in blocks {
            // SAFETY: from `alloc` with this layout, on this thread.
            unsafe { free(b, l) };
        }
        let kept = POOL.with(|p| p.borrow().lists[class(l).unwrap()].len());
        assert_eq!(kept, CLASS_BYTES / 1024);
    }
}
