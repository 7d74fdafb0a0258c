//! [`AlignedBuf`]: heap memory aligned for direct I/O.
//!
//! `O_DIRECT` transfers go straight between the device and user memory, so
//! the kernel requires the buffer's address (and the transfer's offset and
//! length) to be multiples of the device's alignment. An `AlignedBuf` is a
//! fixed-capacity byte buffer whose start is aligned as asked, with a
//! length (the initialised, visible bytes) like a `Vec`. It dereferences to
//! `[u8]` for slice views, and [`freeze`](AlignedBuf::freeze) turns it into
//! [`Bytes`] without copying.
//!
//! This module owns the allocation invariant: `ptr` points at `cap` bytes
//! allocated with `Layout(cap, align)`, of which the first `len` are
//! initialised.

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc, handle_alloc_error};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use bytes::Bytes;
use seastar_core::io::{IoBuf, IoBufMut};

/// A heap buffer whose start is aligned to `align` bytes and whose
/// capacity is a multiple of `align`.
///
/// ```
/// use seastar_io::AlignedBuf;
/// let mut buf = AlignedBuf::with_capacity(100, 4096);
/// assert_eq!(buf.capacity(), 4096);
/// assert_eq!(buf.as_ptr() as usize % 4096, 0);
/// buf.extend_from_slice(b"hello");
/// assert_eq!(&buf[1..3], b"el");
/// let bytes = buf.freeze();
/// assert_eq!(&bytes[..], b"hello");
/// ```
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
    align: usize,
}

// SAFETY: an AlignedBuf uniquely owns its allocation, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    fn layout(cap: usize, align: usize) -> Layout {
        assert!(
            align.is_power_of_two(),
            "alignment {align} is not a power of two"
        );
        Layout::from_size_align(cap, align).expect("buffer size overflows")
    }

    fn allocate(capacity: usize, align: usize, zeroed: bool) -> AlignedBuf {
        let align = align.max(1);
        let cap = capacity.max(1).next_multiple_of(align);
        let layout = Self::layout(cap, align);
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe {
            if zeroed {
                alloc_zeroed(layout)
            } else {
                alloc(layout)
            }
        };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        AlignedBuf {
            ptr,
            cap,
            len: 0,
            align,
        }
    }

    /// An empty buffer with room for at least `capacity` bytes (rounded up
    /// to a multiple of `align`, a power of two).
    pub fn with_capacity(capacity: usize, align: usize) -> AlignedBuf {
        Self::allocate(capacity, align, false)
    }

    /// A buffer of `len` zero bytes (capacity rounded up to `align`).
    ///
    /// ```
    /// let buf = seastar_io::AlignedBuf::zeroed(10, 512);
    /// assert_eq!(&buf[..], &[0; 10]);
    /// ```
    pub fn zeroed(len: usize, align: usize) -> AlignedBuf {
        let mut buf = Self::allocate(len, align, true);
        buf.len = len;
        buf
    }

    /// A copy of `data` in a buffer aligned to `align`.
    ///
    /// ```
    /// let buf = seastar_io::AlignedBuf::from_slice(b"abc", 512);
    /// assert_eq!((&buf[..], buf.capacity()), (&b"abc"[..], 512));
    /// ```
    pub fn from_slice(data: &[u8], align: usize) -> AlignedBuf {
        let mut buf = Self::with_capacity(data.len(), align);
        buf.extend_from_slice(data);
        buf
    }

    /// Number of visible (initialised) bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is visible.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total room, a multiple of [`align`](Self::align).
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The alignment of the start of the buffer.
    pub fn align(&self) -> usize {
        self.align
    }

    /// Room left after the visible bytes.
    pub fn remaining(&self) -> usize {
        self.cap - self.len
    }

    /// Appends as much of `data` as fits; returns the count appended.
    ///
    /// ```
    /// let mut buf = seastar_io::AlignedBuf::with_capacity(4, 4);
    /// assert_eq!(buf.extend_from_slice(b"abcdef"), 4);
    /// assert_eq!(&buf[..], b"abcd");
    /// ```
    pub fn extend_from_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.remaining());
        // SAFETY: `n` bytes fit after `len` in the allocation; `data` is a
        // separate borrow, so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(self.len), n);
        }
        self.len += n;
        n
    }

    /// Shortens the visible bytes to `len` (no effect if already shorter).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Makes no byte visible; keeps the memory.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Grows the visible bytes to `len` with zeroes (or truncates).
    ///
    /// # Panics
    ///
    /// If `len` exceeds the capacity.
    pub fn resize(&mut self, len: usize) {
        assert!(
            len <= self.cap,
            "resize({len}) beyond capacity {}",
            self.cap
        );
        if len > self.len {
            // SAFETY: `len..new len` lies inside the allocation.
            unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(self.len), 0, len - self.len) };
        }
        self.len = len;
    }

    /// Drops the first `n` visible bytes, moving the rest to the start.
    ///
    /// ```
    /// let mut buf = seastar_io::AlignedBuf::from_slice(b"abcdef", 8);
    /// buf.consume_front(2);
    /// assert_eq!(&buf[..], b"cdef");
    /// ```
    pub fn consume_front(&mut self, n: usize) {
        let n = n.min(self.len);
        let len = self.len;
        self.copy_within(n..len, 0);
        self.len -= n;
    }

    /// A zero-copy, reference-counted [`Bytes`] of the visible bytes.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `allocate` with exactly this layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.cap, self.align)) };
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialised (module invariant).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` gives unique access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Clone for AlignedBuf {
    fn clone(&self) -> AlignedBuf {
        let mut b = AlignedBuf::with_capacity(self.cap, self.align);
        b.extend_from_slice(self);
        b
    }
}

impl PartialEq for AlignedBuf {
    fn eq(&self, other: &AlignedBuf) -> bool {
        self[..] == other[..]
    }
}

impl Eq for AlignedBuf {}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("capacity", &self.cap)
            .field("align", &self.align)
            .finish()
    }
}

// SAFETY: the allocation never moves while the value lives, whatever
// happens to the value; `len` bytes are initialised.
unsafe impl IoBuf for AlignedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
}

// SAFETY: `cap` bytes are allocated and writable, at a fixed address.
unsafe impl IoBufMut for AlignedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.cap
    }
    unsafe fn set_init(&mut self, n: usize) {
        self.len = self.len.max(n.min(self.cap));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_rounds_up_to_alignment_and_start_is_aligned() {
        for align in [1, 512, 4096, 65536] {
            let b = AlignedBuf::with_capacity(1000, align);
            assert_eq!(b.as_ptr() as usize % align, 0);
            assert_eq!(b.capacity(), 1000usize.next_multiple_of(align));
            assert!(b.is_empty());
        }
        assert_eq!(AlignedBuf::with_capacity(0, 512).capacity(), 512);
    }

    #[test]
    fn resize_zero_fills_and_truncate_shrinks() {
        let mut b = AlignedBuf::from_slice(b"xy", 16);
        b.resize(5);
        assert_eq!(&b[..], b"xy\0\0\0");
        b.truncate(1);
        assert_eq!(&b[..], b"x");
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.remaining(), 16);
    }

    #[test]
    #[should_panic(expected = "beyond capacity")]
    fn resize_past_capacity_panics() {
        AlignedBuf::with_capacity(8, 8).resize(9);
    }

    #[test]
    fn freeze_keeps_bytes_and_clone_is_deep() {
        let b = AlignedBuf::from_slice(b"hello world", 512);
        let mut c = b.clone();
        c[0] = b'j';
        assert_eq!(&b.freeze().slice(6..)[..], b"world");
        assert_eq!(&c[..5], b"jello");
        assert_eq!(c.align(), 512);
    }
}
