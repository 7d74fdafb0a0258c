//! The four rings an AF_XDP socket shares with the kernel.
//!
//! Each ring is a power-of-two array of entries in memory mapped from the
//! socket, with a producer and a consumer index (free-running `u32`s) and a
//! flags word. One side only ever writes the producer index, the other the
//! consumer index:
//!
//! | ring | entries | we are |
//! |---|---|---|
//! | fill | UMEM addresses for the kernel to receive into | producer |
//! | RX | descriptors of received frames | consumer |
//! | TX | descriptors of frames to send | producer |
//! | completion | UMEM addresses of frames sent | consumer |
//!
//! Entries are written before the producer index is stored with `Release`
//! and read after it is loaded with `Acquire` (and mirrored for the
//! consumer index), so an entry is never read half-written. Both indices
//! are cached locally: the shared ones are touched once per batch.
//!
//! With `XDP_USE_NEED_WAKEUP` the kernel sets `XDP_RING_NEED_WAKEUP` in a
//! ring's flags when it wants a system call before it looks at the ring
//! again ([`Ring::needs_wakeup`]).

use std::io;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// One mapped ring of entries `T` (`xdp_desc` or a `u64` address).
#[derive(Debug)]
pub(crate) struct Ring<T: Copy> {
    map: NonNull<u8>,
    map_len: usize,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    desc: NonNull<T>,
    mask: u32,
    /// Our copy of the index we write.
    cached_own: u32,
    /// Our last view of the index the kernel writes.
    cached_peer: u32,
    /// Whether we are the producer.
    producer_side: bool,
    _t: PhantomData<T>,
}

impl<T: Copy> Ring<T> {
    /// Maps the ring of `size` entries at page offset `pgoff` of socket `fd`,
    /// laid out as `off` says.
    pub(crate) fn map(
        fd: RawFd,
        pgoff: u64,
        off: &libc::xdp_ring_offset,
        size: u32,
        producer_side: bool,
    ) -> io::Result<Self> {
        debug_assert!(size.is_power_of_two());
        let map_len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: a fresh shared mapping of the socket's ring; the kernel
        // checks the offset and length against the ring it created.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = p as *mut u8;
        // SAFETY: the offsets come from XDP_MMAP_OFFSETS for this ring and
        // lie inside the mapping; the kernel aligns them for their types.
        let (producer, consumer, flags, desc) = unsafe {
            (
                NonNull::new_unchecked(base.add(off.producer as usize) as *mut AtomicU32),
                NonNull::new_unchecked(base.add(off.consumer as usize) as *mut AtomicU32),
                NonNull::new_unchecked(base.add(off.flags as usize) as *mut AtomicU32),
                NonNull::new_unchecked(base.add(off.desc as usize) as *mut T),
            )
        };
        let mut ring = Ring {
            // SAFETY: mmap succeeded, so `base` is not null.
            map: unsafe { NonNull::new_unchecked(base) },
            map_len,
            producer,
            consumer,
            flags,
            desc,
            mask: size - 1,
            cached_own: 0,
            cached_peer: 0,
            producer_side,
            _t: PhantomData,
        };
        if producer_side {
            ring.cached_own = ring.producer().load(Ordering::Relaxed);
            ring.cached_peer = ring.consumer().load(Ordering::Acquire);
        } else {
            ring.cached_own = ring.consumer().load(Ordering::Relaxed);
            ring.cached_peer = ring.producer().load(Ordering::Acquire);
        }
        Ok(ring)
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into our live mapping, aligned (see `map`).
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: points into our live mapping, aligned (see `map`).
        unsafe { self.consumer.as_ref() }
    }

    /// Entries in the ring.
    pub(crate) fn size(&self) -> u32 {
        self.mask + 1
    }

    /// Whether the kernel asked for a wake-up call for this ring.
    pub(crate) fn needs_wakeup(&self) -> bool {
        // SAFETY: points into our live mapping, aligned (see `map`).
        let flags = unsafe { self.flags.as_ref() };
        flags.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    // ---- producer side (fill, TX) ----

    /// Free entries (refreshing our view of the kernel's consumer index
    /// when fewer than `want` look free).
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        debug_assert!(self.producer_side);
        let free = self.size() - self.cached_own.wrapping_sub(self.cached_peer);
        if free >= want {
            return free;
        }
        self.cached_peer = self.consumer().load(Ordering::Acquire);
        self.size() - self.cached_own.wrapping_sub(self.cached_peer)
    }

    /// Writes `v` into the next entry; the caller checked [`Ring::free`].
    /// The kernel sees it at the next [`Ring::submit`].
    pub(crate) fn push(&mut self, v: T) {
        debug_assert!(self.producer_side);
        let i = (self.cached_own & self.mask) as usize;
        // SAFETY: `i` is within the ring; the entry is ours until we
        // publish it (the caller checked that it is free).
        unsafe { self.desc.as_ptr().add(i).write(v) };
        self.cached_own = self.cached_own.wrapping_add(1);
    }

    /// Entries pushed but not yet submitted.
    pub(crate) fn unsubmitted(&self) -> u32 {
        self.cached_own
            .wrapping_sub(self.producer().load(Ordering::Relaxed))
    }

    /// Publishes every pushed entry to the kernel.
    pub(crate) fn submit(&mut self) {
        debug_assert!(self.producer_side);
        self.producer().store(self.cached_own, Ordering::Release);
    }

    /// Entries submitted that the kernel has not consumed yet.
    pub(crate) fn outstanding(&mut self) -> u32 {
        self.cached_peer = self.consumer().load(Ordering::Acquire);
        self.producer()
            .load(Ordering::Relaxed)
            .wrapping_sub(self.cached_peer)
    }

    // ---- consumer side (RX, completion) ----

    /// Entries ready to read, at most `max`.
    pub(crate) fn available(&mut self, max: u32) -> u32 {
        debug_assert!(!self.producer_side);
        let mut n = self.cached_peer.wrapping_sub(self.cached_own);
        if n == 0 {
            self.cached_peer = self.producer().load(Ordering::Acquire);
            n = self.cached_peer.wrapping_sub(self.cached_own);
        }
        n.min(max)
    }

    /// The entry `k` places after the next unread one (`k` below what
    /// [`Ring::available`] returned).
    pub(crate) fn peek(&self, k: u32) -> T {
        let i = (self.cached_own.wrapping_add(k) & self.mask) as usize;
        // SAFETY: `i` is within the ring and the kernel published the entry
        // (Acquire load of its producer index in `available`).
        unsafe { self.desc.as_ptr().add(i).read() }
    }

    /// Gives `n` read entries back to the kernel.
    pub(crate) fn release(&mut self, n: u32) {
        debug_assert!(!self.producer_side);
        self.cached_own = self.cached_own.wrapping_add(n);
        self.consumer().store(self.cached_own, Ordering::Release);
    }
}

impl<T: Copy> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once; no reference into it
        // outlives `self`.
        unsafe { libc::munmap(self.map.as_ptr() as *mut libc::c_void, self.map_len) };
    }
}

// SAFETY: a ring is owned by one device; its pointers reach only into the
// mapping it owns, so moving it to another thread moves that ownership.
unsafe impl<T: Copy> Send for Ring<T> {}
