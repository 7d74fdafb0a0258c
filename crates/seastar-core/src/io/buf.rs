//! Owned buffers for completion-style I/O.
//!
//! An operation takes its buffer by value and hands it back with the
//! result: the kernel (io_uring) may write into the memory after the future
//! that started the read was dropped, so the memory must belong to the
//! operation, not to a borrow. Implementing the traits is `unsafe` because
//! the pointer they return must stay valid and fixed while the buffer value
//! is moved around (heap memory, not inline bytes); the crate implements
//! them for the usual owned buffers, so users rarely need to.

use bytes::{Bytes, BytesMut};

/// A buffer I/O can read from (the source of a write).
///
/// # Safety
///
/// `stable_ptr` must point at `bytes_init` initialised bytes that stay at
/// the same address, unchanged, for as long as the value lives (even when
/// the value itself is moved), unless `&mut` methods are called.
pub unsafe trait IoBuf: 'static {
    /// Start of the bytes.
    fn stable_ptr(&self) -> *const u8;
    /// Number of initialised bytes to write.
    fn bytes_init(&self) -> usize;

    /// The initialised bytes.
    ///
    /// ```
    /// use seastar_core::io::IoBuf;
    /// assert_eq!(b"abc".to_vec().init_slice(), b"abc");
    /// ```
    fn init_slice(&self) -> &[u8] {
        // SAFETY: the trait's contract: `stable_ptr` points at `bytes_init`
        // initialised bytes that stay put and unchanged while `self` is
        // borrowed shared.
        unsafe { std::slice::from_raw_parts(self.stable_ptr(), self.bytes_init()) }
    }
}

/// A buffer I/O can read into (the destination of a read).
///
/// A read writes at the start of the buffer, up to `bytes_total` bytes, and
/// then calls [`set_init`](IoBufMut::set_init) with the count.
///
/// # Safety
///
/// `stable_mut_ptr` must point at `bytes_total` writable bytes that stay at
/// the same address while the value lives (even when moved).
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the writable memory.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// Capacity available to a read.
    fn bytes_total(&mut self) -> usize;
    /// Marks the first `n` bytes initialised.
    ///
    /// # Safety
    ///
    /// The first `n` bytes (`n <= bytes_total`) must have been written.
    unsafe fn set_init(&mut self, n: usize);

    /// Copies as much of `data` as fits to the start of the buffer, marks
    /// it initialised and returns the count (what a read of `data` would
    /// do).
    ///
    /// ```
    /// use seastar_core::io::IoBufMut;
    /// let mut buf = Vec::with_capacity(3);
    /// assert_eq!(buf.put_slice(b"abcdef"), 3);
    /// assert_eq!(buf, b"abc");
    /// ```
    fn put_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.bytes_total());
        // SAFETY: `n <= bytes_total()` writable bytes of the buffer's own
        // (the contract), unaliased by the borrow `data`, written first.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.stable_mut_ptr(), n);
            self.set_init(n);
        }
        n
    }
}

// SAFETY: a Vec's heap buffer does not move when the Vec value moves.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: as above; the capacity is allocated and writable.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.capacity()
    }
    unsafe fn set_init(&mut self, n: usize) {
        if self.len() < n {
            // SAFETY: the caller wrote `n <= capacity` bytes.
            unsafe { self.set_len(n) };
        }
    }
}

// SAFETY: a boxed slice's heap memory does not move with the box.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: as above; every byte of a boxed slice is initialised.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.len()
    }
    unsafe fn set_init(&mut self, _n: usize) {}
}

// SAFETY: `Bytes` points at shared heap (or static) memory it never mutates.
unsafe impl IoBuf for Bytes {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: `BytesMut` owns a unique heap region that moves only on `&mut`
// calls that reallocate, none of which run during an operation.
unsafe impl IoBuf for BytesMut {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: as above; the spare capacity is allocated and writable.
unsafe impl IoBufMut for BytesMut {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.capacity()
    }
    unsafe fn set_init(&mut self, n: usize) {
        if self.len() < n {
            // SAFETY: the caller wrote `n <= capacity` bytes.
            unsafe { self.set_len(n) };
        }
    }
}

// SAFETY: static memory never moves or changes.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: a String's heap buffer does not move when the String moves.
unsafe impl IoBuf for String {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}
