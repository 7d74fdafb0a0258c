//! File-system operations on paths and descriptors: [`OpenAt`],
//! [`Statx`], [`Fallocate`], [`Ftruncate`], [`PathOp`] (unlink, rmdir,
//! mkdir) and [`TwoPathOp`] (rename, link). Their attempt is the plain
//! (blocking) syscall: on epoll they run on the blocking pool
//! (`run_file_op`).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{opcode, squeue, types};

use super::accept::close_orphan;
use super::{Operation, result, syscall};
use crate::io::file::SharedFd;
use crate::reactor::{Interest, Orphan};

/// `openat(AT_FDCWD, path, flags, mode)`: completes with the new fd.
pub(crate) struct OpenAt {
    pub(crate) path: CString,
    pub(crate) flags: i32,
    pub(crate) mode: u32,
}

// SAFETY: the entry points at the path's heap bytes, owned by `self`.
unsafe impl Operation for OpenAt {
    type Output = io::Result<RawFd>;
    const INTEREST: Interest = Interest::Read;
    const ORPHAN: Orphan = Some(close_orphan);

    fn fd(&self) -> RawFd {
        libc::AT_FDCWD
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .mode(self.mode)
            .build()
    }

    fn attempt(&mut self) -> isize {
        // SAFETY: `path` is a valid NUL-terminated string.
        syscall(
            unsafe { libc::open(self.path.as_ptr(), self.flags, self.mode as libc::c_uint) }
                as isize,
        )
    }

    fn output(self, res: isize, _flags: u32) -> io::Result<RawFd> {
        result(res).map(|fd| fd as RawFd)
    }
}

/// The `statx` mask asked for: the basic fields plus direct-I/O alignment.
const STATX_MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME | libc::STATX_DIOALIGN;

/// `statx(dirfd, path, flags)` into a boxed buffer.
pub(crate) struct Statx {
    /// The directory (or, with `AT_EMPTY_PATH`, the file); `None`: the
    /// current directory.
    pub(crate) dir: Option<SharedFd>,
    pub(crate) path: CString,
    pub(crate) flags: i32,
    pub(crate) buf: Box<libc::statx>,
}

impl Statx {
    /// A `statx` of `path` relative to `dir`.
    pub(crate) fn new(dir: Option<SharedFd>, path: CString, flags: i32) -> Statx {
        // SAFETY: `statx` is plain old data; all zeroes is a valid value.
        let buf = Box::new(unsafe { std::mem::zeroed() });
        Statx {
            dir,
            path,
            flags,
            buf,
        }
    }
}

// SAFETY: the entry points at the path's heap bytes and the boxed buffer,
// both owned by `self`.
unsafe impl Operation for Statx {
    type Output = io::Result<libc::statx>;
    const INTEREST: Interest = Interest::Read;

    fn fd(&self) -> RawFd {
        self.dir.as_ref().map_or(libc::AT_FDCWD, |f| f.as_raw_fd())
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        let buf: *mut libc::statx = &mut *self.buf;
        opcode::Statx::new(types::Fd(self.fd()), self.path.as_ptr(), buf.cast())
            .flags(self.flags)
            .mask(STATX_MASK)
            .build()
    }

    fn attempt(&mut self) -> isize {
        let dirfd = self.fd();
        // SAFETY: a valid path and a writable statx buffer; `dir` keeps
        // `dirfd` open.
        syscall(unsafe {
            libc::statx(
                dirfd,
                self.path.as_ptr(),
                self.flags,
                STATX_MASK,
                &mut *self.buf,
            )
        } as isize)
    }

    fn output(self, res: isize, _flags: u32) -> io::Result<libc::statx> {
        result(res).map(|_| *self.buf)
    }
}

/// `fallocate(fd, mode, offset, len)`.
pub(crate) struct Fallocate {
    pub(crate) fd: SharedFd,
    pub(crate) mode: i32,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

// SAFETY: the entry references no memory.
unsafe impl Operation for Fallocate {
    type Output = io::Result<()>;
    const INTEREST: Interest = Interest::Write;

    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Fallocate::new(types::Fd(self.fd()), self.len)
            .offset(self.offset)
            .mode(self.mode)
            .build()
    }

    fn attempt(&mut self) -> isize {
        let (offset, len) = (self.offset as libc::off_t, self.len as libc::off_t);
        // SAFETY: plain syscall on a descriptor `fd` keeps open.
        syscall(unsafe { libc::fallocate(self.fd(), self.mode, offset, len) } as isize)
    }

    fn output(self, res: isize, _flags: u32) -> io::Result<()> {
        result(res).map(drop)
    }
}

/// `ftruncate(fd, len)`. Completes with the raw result: kernels before
/// 6.9 answer `EINVAL` for the opcode (the caller retries on the pool).
pub(crate) struct Ftruncate {
    pub(crate) fd: SharedFd,
    pub(crate) len: u64,
}

// SAFETY: the entry references no memory.
unsafe impl Operation for Ftruncate {
    type Output = isize;
    const INTEREST: Interest = Interest::Write;

    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Ftruncate::new(types::Fd(self.fd()), self.len).build()
    }

    fn attempt(&mut self) -> isize {
        // SAFETY: plain syscall on a descriptor `fd` keeps open.
        syscall(unsafe { libc::ftruncate(self.fd(), self.len as libc::off_t) } as isize)
    }

    fn output(self, res: isize, _flags: u32) -> isize {
        res
    }
}

/// An operation on one path: `unlinkat` (file or, with `AT_REMOVEDIR`,
/// directory) or, with `mkdir: Some(mode)`, `mkdirat`.
pub(crate) struct PathOp {
    pub(crate) path: CString,
    pub(crate) mkdir: Option<u32>,
    pub(crate) unlink_flags: i32,
}

// SAFETY: the entry points at the path's heap bytes, owned by `self`.
unsafe impl Operation for PathOp {
    type Output = io::Result<()>;
    const INTEREST: Interest = Interest::Read;

    fn fd(&self) -> RawFd {
        libc::AT_FDCWD
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        match self.mkdir {
            Some(mode) => opcode::MkDirAt::new(cwd, self.path.as_ptr())
                .mode(mode)
                .build(),
            None => opcode::UnlinkAt::new(cwd, self.path.as_ptr())
                .flags(self.unlink_flags)
                .build(),
        }
    }

    fn attempt(&mut self) -> isize {
        // SAFETY: a valid NUL-terminated path.
        syscall(unsafe {
            match self.mkdir {
                Some(mode) => libc::mkdir(self.path.as_ptr(), mode),
                None => libc::unlinkat(libc::AT_FDCWD, self.path.as_ptr(), self.unlink_flags),
            }
        } as isize)
    }

    fn output(self, res: isize, _flags: u32) -> io::Result<()> {
        result(res).map(drop)
    }
}

/// An operation on two paths: `renameat` or, with `link`, `linkat`.
pub(crate) struct TwoPathOp {
    pub(crate) from: CString,
    pub(crate) to: CString,
    pub(crate) link: bool,
}

// SAFETY: the entry points at both paths' heap bytes, owned by `self`.
unsafe impl Operation for TwoPathOp {
    type Output = io::Result<()>;
    const INTEREST: Interest = Interest::Read;

    fn fd(&self) -> RawFd {
        libc::AT_FDCWD
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        let (from, to) = (self.from.as_ptr(), self.to.as_ptr());
        if self.link {
            opcode::LinkAt::new(cwd, from, cwd, to).build()
        } else {
            opcode::RenameAt::new(cwd, from, cwd, to).build()
        }
    }

    fn attempt(&mut self) -> isize {
        // SAFETY: valid NUL-terminated paths.
        syscall(unsafe {
            if self.link {
                libc::link(self.from.as_ptr(), self.to.as_ptr())
            } else {
                libc::rename(self.from.as_ptr(), self.to.as_ptr())
            }
        } as isize)
    }

    fn output(self, res: isize, _flags: u32) -> io::Result<()> {
        result(res).map(drop)
    }
}
