//! The shard's pool of I/O buffers: plain `Vec<u8>`s of [`BUF_SIZE`]
//! capacity, taken for one receive or send and given back after it.
//!
//! A connection that keeps its own buffers between requests pays for them
//! while idle; one that takes them from here only while it has bytes to
//! move holds nothing in between. The pool is per thread (a shard is one
//! thread), bounded to [`MAX_POOLED`] buffers, and never shared: no atomics,
//! no locks. Buffers of another capacity are simply dropped when given back.
//!
//! ```
//! use seastar_core::io::pool;
//!
//! let mut b = pool::take();
//! assert!(b.is_empty() && b.capacity() >= pool::BUF_SIZE);
//! b.extend_from_slice(b"reply");
//! pool::give(b); // cleared and kept for the next taker
//! ```

use std::cell::RefCell;

/// Capacity of a pooled buffer.
pub const BUF_SIZE: usize = 16 * 1024;

/// Most buffers kept per shard (1 MiB): beyond it, given buffers are freed.
pub const MAX_POOLED: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer of [`BUF_SIZE`] capacity: a pooled one, or a new one.
pub fn take() -> Vec<u8> {
    FREE.with(|f| f.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(BUF_SIZE))
}

/// Gives `buf` back for reuse (cleared), or frees it when the pool is full
/// or its capacity is not [`BUF_SIZE`] (a buffer that grew).
pub fn give(mut buf: Vec<u8>) {
    if buf.capacity() != BUF_SIZE {
        return;
    }
    buf.clear();
    let _ = FREE.try_with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < MAX_POOLED {
            f.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_buffers_are_reused_and_grown_ones_dropped() {
        let a = take();
        let ptr = a.as_ptr();
        give(a);
        let b = take();
        assert_eq!(b.as_ptr(), ptr, "the same allocation came back");
        let mut grown = b;
        grown.reserve(BUF_SIZE + 1);
        give(grown);
        assert_eq!(take().capacity(), BUF_SIZE, "a grown buffer is not pooled");
    }

    #[test]
    fn the_pool_is_bounded() {
        let bufs: Vec<_> = (0..MAX_POOLED + 10).map(|_| take()).collect();
        bufs.into_iter().for_each(give);
        FREE.with(|f| assert_eq!(f.borrow().len(), MAX_POOLED));
    }
}
