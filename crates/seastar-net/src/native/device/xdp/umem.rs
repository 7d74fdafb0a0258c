//! The UMEM: the memory the kernel copies received frames into and sends
//! frames from, split into fixed-size frames ("chunks") addressed by their
//! offset from its start.
//!
//! Half of the frames belong to the fill ring (receive), half to a free
//! list for transmission; a frame's address is always in exactly one
//! place: a ring, the free list, or lent to the caller of `receive`.

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

/// The mapped and registered memory.
#[derive(Debug)]
pub(crate) struct Umem {
    base: NonNull<u8>,
    len: usize,
    frame_size: u32,
}

impl Umem {
    /// Maps `frames` frames of `frame_size` bytes (a power of two from 2048
    /// to 4096) and registers them with the AF_XDP socket `fd`.
    pub(crate) fn new(fd: RawFd, frames: u32, frame_size: u32) -> io::Result<Self> {
        let len = frames as usize * frame_size as usize;
        // SAFETY: a fresh private anonymous mapping; nothing aliases it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let umem = Umem {
            // SAFETY: mmap succeeded, so `p` is not null.
            base: unsafe { NonNull::new_unchecked(p as *mut u8) },
            len,
            frame_size,
        };
        let reg = libc::xdp_umem_reg {
            addr: p as u64,
            len: len as u64,
            chunk_size: frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        // SAFETY: `reg` is a valid `xdp_umem_reg` whose size is passed; the
        // region it names stays mapped for the socket's life (the socket is
        // closed before `Umem` is dropped: see the device's field order).
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_XDP,
                libc::XDP_UMEM_REG,
                &reg as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::xdp_umem_reg>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(umem)
    }

    /// The frame size in bytes.
    pub(crate) fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// The bytes at `addr..addr + len`, `None` when outside the UMEM (a
    /// descriptor we cannot trust is never turned into a slice).
    pub(crate) fn slice(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let end = (addr as usize).checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: in bounds (checked); the frame is ours while its
        // descriptor is lent to us by the RX ring, and the kernel does not
        // write it until we hand it back through the fill ring.
        Some(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(addr as usize), len) })
    }

    /// The bytes at `addr..addr + len` for writing a frame to send.
    pub(crate) fn slice_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        let end = (addr as usize).checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: in bounds (checked); the frame came from our free list,
        // so neither the kernel nor another slice uses it.
        Some(unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(addr as usize), len) })
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once, after the socket that
        // registered it was closed.
        unsafe { libc::munmap(self.base.as_ptr() as *mut libc::c_void, self.len) };
    }
}

// SAFETY: the UMEM is owned by one device; moving it to another thread
// moves that ownership (the kernel's side does not care which thread).
unsafe impl Send for Umem {}
