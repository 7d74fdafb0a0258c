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
    // The block's provenance is exposed so that `base_of` can find the
    // block again from the caller's pointer (see the comment above the
    // `GlobalAlloc` impl).
    let _ = base.expose_provenance();
    // SAFETY: `base + off` is inside the block (see above), and the
    // `HEADER` bytes before it are inside it too and 8-aligned.
    unsafe {
        let user = base.add(off);
        user.cast::<Tag>().sub(1).write(tag);
        user
    }
}

/// The start of the inner allocator's block holding `ptr`, handed out
/// `off` bytes into it: computed on the address and given the block's
/// exposed provenance, never by pointer arithmetic on `ptr` (whose
/// allocation, for the optimizer, starts at `ptr`).
#[inline]
fn base_of(ptr: *mut u8, off: usize) -> *mut u8 {
    std::ptr::with_exposed_provenance_mut(ptr.addr() - off)
}

/// Reads the owner tag of the block whose inner allocation starts at
/// `base` and is handed out at `base + off`.
///
/// # Safety
///
/// `base` is [`base_of`] a pointer this allocator returned with offset
/// `off`, not yet freed.
#[inline]
unsafe fn tag_of(base: *mut u8, off: usize) -> Tag {
    // SAFETY: `finish` wrote the tag at `base + off - 8`, 8-aligned, inside
    // the block, whose provenance `base` carries.
    unsafe { base.add(off - HEADER).cast::<Tag>().read() }
}

// The header sits *before* the pointer handed out. To the compiler, what
// `__rust_alloc` returns is the start of a fresh allocated object (the
// allocator shim's calls are marked as allocation functions), so once
// `dealloc` is inlined into code that also sees the allocation (release
// builds with LTO do inline it), `ptr.sub(1)` is an in-bounds offset
// *before* the start of that object: poison in LLVM's model, and the code
// after it was deleted as unreachable (observed: a release+LTO test binary
// crashed at start, in `std::path::PathBuf::push` called with a garbage
// pointer, right after an inlined `free(ptr - 8)`). The first fix kept the
// methods `#[inline(never)]`, which hid the bug without removing it. The
// header is now reached without deriving its pointer from `ptr`: `finish`
// exposes the inner block's provenance and `base_of` rebuilds the block's
// start from `ptr`'s address with that provenance (an integer-to-pointer
// cast, which the optimizer cannot tie to the object starting at `ptr`).
// `cargo xtask test` runs `tests/alloc.rs` built in release with fat LTO
// (step `alloc-lto`), where the methods are inlined: it crashed at start
// with the old header read.
//
// SAFETY: every method forwards to `inner` with a layout that only grows
// the block by the header and keeps its alignment, and hands the caller a
// pointer `off` bytes into it, aligned to the caller's alignment and valid
// for the caller's size. Nothing here unwinds: the accounting is plain
// arithmetic on cells and atomics, and reclaimer panics are caught.
unsafe impl<A: GlobalAlloc> GlobalAlloc for ShardAllocator<A> {
    /// # Safety
    ///
    /// The [`GlobalAlloc::alloc`] contract.
    #[inline]
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

    /// # Safety
    ///
    /// The [`GlobalAlloc::alloc_zeroed`] contract.
    #[inline]
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

    /// # Safety
    ///
    /// The [`GlobalAlloc::dealloc`] contract.
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a live block of ours with its layout.
        let (outer, off) = unsafe { outer_of_live(layout) };
        let base = base_of(ptr, off);
        // SAFETY: as above.
        let tag = unsafe { tag_of(base, off) };
        // SAFETY: `base` is what the inner allocator returned for `outer`.
        unsafe { self.inner.dealloc(base, outer) };
        account::credit(tag, outer.size());
    }

    /// # Safety
    ///
    /// The [`GlobalAlloc::realloc`] contract.
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a live block of ours with its layout.
        let (old, off) = unsafe { outer_of_live(layout) };
        let Some(new_total) = new_size
            .checked_add(off)
            .filter(|&n| Layout::from_size_align(n, old.align()).is_ok())
        else {
            return std::ptr::null_mut();
        };
        let base = base_of(ptr, off);
        // SAFETY: as above.
        let old_tag = unsafe { tag_of(base, off) };
        // Counted as a free of the old block and an allocation by this
        // thread (which becomes the owner) of the new one.
        let tag = account::charge(new_total, Some((old_tag, old.size())));
        // SAFETY: `base` was returned by the inner allocator for `old`;
        // `new_total` is non-zero and, rounded to the alignment, fits in
        // `isize` (checked above).
        let base = unsafe { self.inner.realloc(base, old, new_total) };
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
