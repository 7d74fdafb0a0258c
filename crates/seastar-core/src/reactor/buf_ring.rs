//! The shard's provided-buffer ring (io_uring `IORING_REGISTER_PBUF_RING`).
//!
//! # Why
//!
//! A receive that owns its buffer holds it for as long as the peer is
//! silent: 10,000 idle keep-alive connections would pin 10,000 buffers.
//! With a provided-buffer ring the receive names a *group* instead of a
//! buffer, and the kernel picks one from the ring only when bytes arrive.
//! So a waiting receive holds nothing, and the shard's buffers are shared
//! by whichever connections have data at the moment.
//!
//! # Protocol
//!
//! The ring is an array of `count` entries (address, length, buffer id) in
//! page-aligned memory shared with the kernel, plus a tail index that we
//! advance and the kernel reads (the head is the kernel's). We publish a
//! buffer by writing the entry at `tail & mask`, then storing `tail + 1`
//! with release ordering, so the kernel never sees a tail that covers an
//! entry not yet written. A completion carrying `IORING_CQE_F_BUFFER`
//! names the buffer the kernel filled; from then on the buffer is ours
//! (the kernel will not touch it again) until we publish it once more.
//! Each buffer id is therefore either *in the ring* (the kernel may write
//! it at any time) or *handed out* (exactly one `PooledBuf` reads it), never
//! both: [`BufRing::recycle`] is called once per handed-out id.
//!
//! # Memory
//!
//! The buffers are one heap block ([`RingMem`]) shared by `Rc` with every
//! handed-out buffer, so a buffer dropped after the ring (at shard exit)
//! still points into live memory. The kernel may write into any buffer in
//! the ring while a buffer-selecting receive is in flight, so the reactor
//! drops the ring only after every operation completed, and leaks it
//! ([`BufRing::leak`]) when some never did, as it does their buffers.

use std::cell::RefCell;
use std::io;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::IoUring;
use io_uring::types::BufRingEntry;

/// The group id of the shard's one buffer ring.
pub(crate) const BGID: u16 = 0;

thread_local! {
    /// Buffers handed out and dropped while the reactor's driver was
    /// borrowed (by the reactor itself, reaping an abandoned send of one):
    /// recycled at the ring's next use.
    static DEFERRED: RefCell<Vec<(Rc<RingMem>, u16)>> = const { RefCell::new(Vec::new()) };
}

/// Queues handed-out buffer `bid` of `mem` for recycling at the ring's
/// next use (see [`BufRing::recycle_deferred`]).
pub(crate) fn defer_recycle(mem: Rc<RingMem>, bid: u16) {
    let _ = DEFERRED.try_with(|d| d.borrow_mut().push((mem, bid)));
}

/// The heap block holding every buffer of a ring.
pub(crate) struct RingMem {
    ptr: NonNull<u8>,
    len: usize,
}

impl RingMem {
    fn new(len: usize) -> RingMem {
        // Zeroed: a large calloc is fresh mmap'd pages, so memory is only
        // resident once a buffer is first filled.
        let block: Box<[u8]> = vec![0u8; len].into_boxed_slice();
        let ptr = NonNull::new(Box::into_raw(block).cast::<u8>()).expect("Box is non-null");
        RingMem { ptr, len }
    }

    /// The first `len` bytes of buffer `bid` of `size` bytes.
    ///
    /// # Safety
    ///
    /// Buffer `bid` must be handed out (not in the ring: the kernel is not
    /// writing it) and its first `len <= size` bytes written by the kernel.
    pub(crate) unsafe fn slice(&self, bid: u16, size: usize, len: usize) -> &[u8] {
        let start = bid as usize * size;
        assert!(
            len <= size && start + size <= self.len,
            "buffer out of range"
        );
        // SAFETY: in bounds (checked above); initialised (zeroed at
        // allocation, then written only by the kernel); not written while
        // handed out (the caller's contract).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(start), len) }
    }
}

impl Drop for RingMem {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        // SAFETY: `ptr`/`len` came from `Box::into_raw` of a `[u8]` of this
        // length in `new`, and this is the only place that frees it.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// A provided-buffer ring registered with the shard's io_uring.
pub(crate) struct BufRing {
    /// The entries, `count` of them, in page-aligned anonymous memory.
    entries: NonNull<BufRingEntry>,
    map_len: usize,
    mask: u16,
    /// Our copy of the tail (the shared one is written, never read back).
    tail: u16,
    count: u16,
    size: usize,
    mem: Rc<RingMem>,
}

impl BufRing {
    /// Maps, registers and fills a ring of `count` (a power of two, at most
    /// 32768) buffers of `size` bytes each with `ring`.
    pub(crate) fn new(ring: &IoUring, count: u16, size: usize) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && count <= 1 << 15, "ring size");
        let map_len = (count as usize * std::mem::size_of::<BufRingEntry>()).max(page_size());
        // SAFETY: an anonymous private mapping; no pointer is passed in.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let entries =
            NonNull::new(addr.cast::<BufRingEntry>()).expect("mmap gave a non-null address");
        // The entries are written below, before the kernel sees a tail.
        let mut r = BufRing {
            entries,
            map_len,
            mask: count - 1,
            tail: 0,
            count,
            size,
            mem: Rc::new(RingMem::new(count as usize * size)),
        };
        // `r` owns the mapping and is dropped only after the io_uring
        // instance, with no operation in flight (module docs); on failure
        // `r` is dropped: unmapped, never registered.
        // SAFETY: the mapping of `count` entries stays valid while registered.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(addr as u64, count, BGID, 0)
        }?;
        for bid in 0..count {
            r.recycle(bid);
        }
        Ok(r)
    }

    /// Size of each buffer.
    pub(crate) fn buf_size(&self) -> usize {
        self.size
    }

    /// The memory every buffer lives in.
    pub(crate) fn mem(&self) -> &Rc<RingMem> {
        &self.mem
    }

    /// Publishes buffer `bid` to the kernel again. Each handed-out id is
    /// recycled exactly once (module docs); an id out of range is ignored.
    pub(crate) fn recycle(&mut self, bid: u16) {
        if bid >= self.count {
            return;
        }
        let idx = (self.tail & self.mask) as usize;
        // SAFETY: `idx < count`, within the mapping; the kernel reads only
        // entries below the published tail, and this one is at or past it.
        let entry = unsafe { &mut *self.entries.as_ptr().add(idx) };
        let start = bid as usize * self.size;
        entry.set_addr(self.mem.ptr.as_ptr() as u64 + start as u64);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field lives in the first entry of the mapping,
        // which is valid and initialised; the kernel reads it concurrently,
        // hence the atomic store (release: the entry above is written first).
        let tail = unsafe { &*BufRingEntry::tail(self.entries.as_ptr()).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    /// Recycles the buffers whose drop had to be deferred.
    pub(crate) fn recycle_deferred(&mut self) {
        let deferred = DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()));
        for (mem, bid) in deferred {
            if Rc::ptr_eq(&mem, &self.mem) {
                self.recycle(bid);
            }
        }
    }

    /// Forgets the ring without unmapping or freeing anything: for a
    /// shutdown with operations still in flight, which may still write.
    pub(crate) fn leak(self) {
        std::mem::forget(self.mem.clone());
        std::mem::forget(self);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once. The kernel no
        // longer uses it: the reactor drops the ring after the io_uring
        // instance (field order) with no operation in flight (module docs).
        unsafe { libc::munmap(self.entries.as_ptr().cast(), self.map_len) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}
