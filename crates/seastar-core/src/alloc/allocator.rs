//! The `GlobalAlloc` wrapper and the owner header in front of each block.

use std::alloc::{GlobalAlloc, Layout, System};

use super::account::{self, Tag};

/// Size of the owner header stored just before each returned pointer.
const HEADER: usize = size_of::<Tag>();

/// A global allocator that forwards to a proven allocator ([`System`] by
/// default) and keeps per-shard accounting; see the [module docs](super)
/// for the design.
///
/// ```
/// use seastar_core::alloc::ShardAllocator;
///
/// #[global_allocator]
/// static ALLOC: ShardAllocator = ShardAllocator::new();
///
/// let v = vec![0u8; 1 << 20];
/// drop(v);
/// // Only shard threads (or threads that called `set_shard_limit`) count.
/// assert_eq!(seastar_core::alloc::stats().shard, None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ShardAllocator<A = System> {
    inner: A,
}

impl ShardAllocator<System> {
    /// Accounting on top of [`System`], the platform's `malloc`.
    ///
    /// ```
    /// static ALLOC: seastar_core::alloc::ShardAllocator =
    ///     seastar_core::alloc::ShardAllocator::new();
    /// ```
    pub const fn new() -> Self {
        ShardAllocator { inner: System }
    }
}

impl<A> ShardAllocator<A> {
    /// Accounting on top of another global allocator.
    ///
    /// ```
    /// use std::alloc::System;
    /// static ALLOC: seastar_core::alloc::ShardAllocator<System> =
    ///     seastar_core::alloc::ShardAllocator::wrap(System);
    /// ```
    pub const fn wrap(inner: A) -> Self {
        ShardAllocator { inner }
    }
}

/// The layout requested from the inner allocator for `layout`, and the
/// offset of the caller's pointer in it. The offset is `max(8, align)`, so
/// the caller's pointer keeps its alignment and the 8 bytes before it (the
/// header) are 8-aligned.
#[inline]
fn outer(layout: Layout) -> Option<(Layout, usize)> {
    let align = layout.align().max(HEADER);
    let size = layout.size().checked_add(align)?;
    Layout::from_size_align(size, align)
        .ok()
        .map(|l| (l, align))
}

/// [`outer`] for a layout that was already accepted once.
///
/// # Safety
///
/// `layout` must be the layout of a block this allocator returned.
#[inline]
unsafe fn outer_of_live(layout: Layout) -> (Layout, usize) {
    // SAFETY: `outer` succeeded for this layout when the block was
    // allocated, and it is a pure function of the layout.
    unsafe { outer(layout).unwrap_unchecked() }
}

/// Finishes an allocation: writes the header, or undoes the charge if the
/// inner allocator failed.
///
/// # Safety
///
/// `base` is null or valid for `off + n` bytes for some `n`, aligned to
/// `off`, which is a multiple of [`HEADER`] and at least [`HEADER`].
#[inline]
unsafe fn finish(base: *mut u8, off: usize, tag: Tag, bytes: usize) -> *mut u8 {
    if base.is_null() {
        account::uncharge(tag, bytes);
        return base;
    }
    // SAFETY: `base + off` is inside the block (see above), and the
    // `HEADER` bytes before it are inside it too and 8-aligned.
    unsafe {
        let user = base.add(off);
        user.cast::<Tag>().sub(1).write(tag);
        user
    }
}

/// Reads a block's owner tag.
///
/// # Safety
///
/// `ptr` was returned by this allocator and is not yet freed.
#[inline]
unsafe fn tag_of(ptr: *mut u8) -> Tag {
    // SAFETY: `finish` wrote the tag just before `ptr`, 8-aligned.
    unsafe { ptr.cast::<Tag>().sub(1).read() }
}

// The methods are never inlined. The header sits *before* the pointer
// handed out, and the compiler treats what the global allocator returns as
// the start of a fresh object: were `dealloc` inlined into a caller that
// can see the allocation, reading `ptr - 8` would be out of bounds in the
// optimizer's model, i.e. undefined behaviour (observed: release builds
// with LTO crashing in unrelated code). Out of line, the pointer is just an
// argument. The cost is one call per operation.
//
// SAFETY: every method forwards to `inner` with a layout that only grows
// the block by the header and keeps its alignment, and hands the caller a
// pointer `off` bytes into it, aligned to the caller's alignment and valid
// for the caller's size. Nothing here unwinds: the accounting is plain
// arithmetic on cells and atomics, and reclaimer panics are caught.
unsafe impl<A: GlobalAlloc> GlobalAlloc for ShardAllocator<A> {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((outer, off)) = outer(layout) else {
            return std::ptr::null_mut();
        };
        let tag = account::charge(outer.size(), None);
        // SAFETY: `outer` has a non-zero size (it includes the header).
        let base = unsafe { self.inner.alloc(outer) };
        // SAFETY: the inner allocator honours `outer`: `off` bytes plus
        // the caller's size, aligned to `off`.
        unsafe { finish(base, off, tag, outer.size()) }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some((outer, off)) = outer(layout) else {
            return std::ptr::null_mut();
        };
        let tag = account::charge(outer.size(), None);
        // SAFETY: `outer` has a non-zero size (it includes the header).
        let base = unsafe { self.inner.alloc_zeroed(outer) };
        // SAFETY: as in `alloc`.
        unsafe { finish(base, off, tag, outer.size()) }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a live block of ours with its layout.
        let (outer, off) = unsafe { outer_of_live(layout) };
        // SAFETY: as above.
        let tag = unsafe { tag_of(ptr) };
        // SAFETY: `ptr - off` is what the inner allocator returned for
        // `outer`.
        unsafe { self.inner.dealloc(ptr.sub(off), outer) };
        account::credit(tag, outer.size());
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a live block of ours with its layout.
        let (old, off) = unsafe { outer_of_live(layout) };
        let Some(new_total) = new_size
            .checked_add(off)
            .filter(|&n| Layout::from_size_align(n, old.align()).is_ok())
        else {
            return std::ptr::null_mut();
        };
        // SAFETY: as above.
        let old_tag = unsafe { tag_of(ptr) };
        // Counted as a free of the old block and an allocation by this
        // thread (which becomes the owner) of the new one.
        let tag = account::charge(new_total, Some((old_tag, old.size())));
        // SAFETY: `ptr - off` was returned by the inner allocator for
        // `old`; `new_total` is non-zero and, rounded to the alignment,
        // fits in `isize` (checked above).
        let base = unsafe { self.inner.realloc(ptr.sub(off), old, new_total) };
        if base.is_null() {
            account::uncharge(tag, new_total);
            return base;
        }
        account::credit(old_tag, old.size());
        // SAFETY: `base` is valid for `new_total = off + new_size` bytes
        // with the old alignment, `off`.
        unsafe { finish(base, off, tag, new_total) }
    }
}
