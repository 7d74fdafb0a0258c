//! Reads and writes at a position (or the file position): [`Read`],
//! [`Write`], [`Writev`], and [`Fsync`].

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Operation, result, syscall};
use crate::io::buf::{IoBuf, IoBufMut};
use crate::reactor::Interest;

/// Offset meaning "the file position" (and required for non-seekable fds).
pub(crate) const CURRENT: u64 = u64::MAX;

/// What keeps an operation's descriptor open: `()` (the caller does) or a
/// regular file's `SharedFd` (whose reads and writes io_uring submits in
/// groups).
pub(crate) trait Keep: 'static {
    /// A regular file.
    const FILE: bool;
}

impl Keep for () {
    const FILE: bool = false;
}

impl Keep for crate::io::file::SharedFd {
    const FILE: bool = true;
}

/// `read(2)`/`pread(2)` into `buf`; `F` keeps the descriptor alive (a
/// `SharedFd` for files, `()` for a descriptor the caller keeps open).
pub(crate) struct Read<B, F = ()> {
    pub(crate) fd: RawFd,
    pub(crate) buf: B,
    pub(crate) pos: u64,
    /// Held, never read: keeps the descriptor open while the kernel uses it.
    #[allow(dead_code)]
    pub(crate) keep: F,
}

// SAFETY: the entry points at `buf`'s bytes, heap memory `self` owns.
unsafe impl<B: IoBufMut, F: Keep> Operation for Read<B, F> {
    type Output = (io::Result<usize>, B);
    const INTEREST: Interest = Interest::Read;
    const FILE_IO: bool = F::FILE;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        let (ptr, len) = (self.buf.stable_mut_ptr(), self.buf.bytes_total());
        opcode::Read::new(types::Fd(self.fd), ptr, len.min(u32::MAX as usize) as u32)
            .offset(self.pos)
            .build()
    }

    fn attempt(&mut self) -> isize {
        let (ptr, len) = (self.buf.stable_mut_ptr(), self.buf.bytes_total());
        // SAFETY: `ptr` has `len` writable bytes owned by `buf`.
        syscall(unsafe {
            if self.pos == CURRENT {
                libc::read(self.fd, ptr.cast(), len)
            } else {
                libc::pread(self.fd, ptr.cast(), len, self.pos as libc::off_t)
            }
        })
    }

    fn output(mut self, res: isize, _flags: u32) -> Self::Output {
        let res = result(res);
        if let Ok(n) = res {
            // SAFETY: the kernel wrote `n <= len` bytes at the start of `buf`.
            unsafe { self.buf.set_init(n) };
        }
        (res, self.buf)
    }
}

/// `write(2)`/`pwrite(2)` of `buf`'s bytes; `F` as for [`Read`].
pub(crate) struct Write<B, F = ()> {
    pub(crate) fd: RawFd,
    pub(crate) buf: B,
    pub(crate) pos: u64,
    /// Held, never read: keeps the descriptor open while the kernel uses it.
    #[allow(dead_code)]
    pub(crate) keep: F,
}

// SAFETY: the entry points at `buf`'s bytes, heap memory `self` owns.
unsafe impl<B: IoBuf, F: Keep> Operation for Write<B, F> {
    type Output = (io::Result<usize>, B);
    const INTEREST: Interest = Interest::Write;
    const FILE_IO: bool = F::FILE;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        let (ptr, len) = (self.buf.stable_ptr(), self.buf.bytes_init());
        opcode::Write::new(types::Fd(self.fd), ptr, len.min(u32::MAX as usize) as u32)
            .offset(self.pos)
            .build()
    }

    fn attempt(&mut self) -> isize {
        let (ptr, len) = (self.buf.stable_ptr(), self.buf.bytes_init());
        // SAFETY: `ptr` has `len` initialised bytes owned by `buf`.
        syscall(unsafe {
            if self.pos == CURRENT {
                libc::write(self.fd, ptr.cast(), len)
            } else {
                libc::pwrite(self.fd, ptr.cast(), len, self.pos as libc::off_t)
            }
        })
    }

    fn output(self, res: isize, _flags: u32) -> Self::Output {
        (result(res), self.buf)
    }
}

/// `writev(2)` of several buffers (gather write); may be short.
pub(crate) struct Writev<B> {
    fd: RawFd,
    bufs: Vec<B>,
    /// Boxed: the entry points at them.
    iovecs: Box<[libc::iovec]>,
}

impl<B: IoBuf> Writev<B> {
    /// A gather write of `bufs` on `fd`.
    pub(crate) fn new(fd: RawFd, bufs: Vec<B>) -> Writev<B> {
        let iovecs = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr() as *mut _,
                iov_len: b.bytes_init(),
            })
            .collect();
        Writev { fd, bufs, iovecs }
    }

    fn count(&self) -> usize {
        self.iovecs.len().min(libc::UIO_MAXIOV as usize)
    }
}

// SAFETY: the iovecs and the memory they point at are heap memory owned
// by `self`.
unsafe impl<B: IoBuf> Operation for Writev<B> {
    type Output = (io::Result<usize>, Vec<B>);
    const INTEREST: Interest = Interest::Write;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Writev::new(
            types::Fd(self.fd),
            self.iovecs.as_ptr(),
            self.count() as u32,
        )
        .offset(CURRENT)
        .build()
    }

    fn attempt(&mut self) -> isize {
        // SAFETY: `count` iovecs owned by `self` point at initialised bytes owned by `self`.
        syscall(unsafe { libc::writev(self.fd, self.iovecs.as_ptr(), self.count() as libc::c_int) })
    }

    fn output(self, res: isize, _flags: u32) -> Self::Output {
        (result(res), self.bufs)
    }
}

/// `fsync(2)` or `fdatasync(2)`.
pub(crate) struct Fsync {
    pub(crate) fd: RawFd,
    pub(crate) data_only: bool,
}

// SAFETY: the entry references no memory.
unsafe impl Operation for Fsync {
    type Output = io::Result<()>;
    const INTEREST: Interest = Interest::Write;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        let flags = if self.data_only {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        opcode::Fsync::new(types::Fd(self.fd)).flags(flags).build()
    }

    fn attempt(&mut self) -> isize {
        // SAFETY: plain syscall on an fd the caller keeps open.
        syscall(unsafe {
            if self.data_only {
                libc::fdatasync(self.fd)
            } else {
                libc::fsync(self.fd)
            }
        } as isize)
    }

    fn output(self, res: isize, _flags: u32) -> io::Result<()> {
        result(res).map(drop)
    }
}
