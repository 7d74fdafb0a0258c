//! File and file-system operations: positioned reads and writes on regular
//! files, `openat`, `statx`, `fallocate`, `ftruncate`, `renameat`,
//! `unlinkat`, `mkdirat`, `linkat`.
//!
//! On io_uring each call is one submission (an `ftruncate` the kernel does
//! not know, before Linux 6.9, is retried on the blocking pool); reads and
//! writes enter the kernel in small groups as they are issued
//! (`RuntimeBuilder::file_submit_batch`), not only at the end of the loop
//! iteration. On epoll,
//! readiness means nothing for regular files (a `pread` on a cold page
//! blocks whatever `O_NONBLOCK` says), so every call runs on the runtime's
//! small blocking pool ([`spawn_blocking`]): at most
//! that pool's threads (four) are in flight at once.
//!
//! Descriptors are passed as [`SharedFd`] (`Arc<OwnedFd>`): an operation
//! keeps its own reference, so a helper thread never works on a number the
//! caller has closed and the kernel has reused. Paths are copied into the
//! operation.
//!
//! ```
//! # seastar_core::block_on(async {
//! use seastar_core::io::file;
//! let dir = std::env::temp_dir().join(format!("sc-file-doc-{}", std::process::id()));
//! file::mkdir(&dir, 0o755).await.unwrap();
//! let path = dir.join("a");
//! let fd = file::open(&path, libc::O_RDWR | libc::O_CREAT, 0o644).await.unwrap();
//! let (n, _) = file::write_at(&fd, b"hello".to_vec(), 0).await;
//! assert_eq!(n.unwrap(), 5);
//! let (n, buf) = file::read_at(&fd, Vec::with_capacity(16), 1).await;
//! assert_eq!(&buf[..n.unwrap()], b"ello");
//! assert_eq!(file::statx(&fd).await.unwrap().stx_size, 5);
//! file::unlink(&path).await.unwrap();
//! file::rmdir(&dir).await.unwrap();
//! # });
//! ```

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use io_uring::{opcode, types};

use super::buf::{IoBuf, IoBufMut};
use super::op::{Op, cqe_result};
use super::spawn_blocking;
use crate::BackendKind;
use crate::reactor;

/// A file descriptor shared by its owner and the operations in flight on it.
pub type SharedFd = Arc<OwnedFd>;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains an interior NUL byte",
        )
    })
}

fn cvt(r: libc::c_int) -> io::Result<()> {
    crate::sys::cvt(r).map(drop)
}

fn uring() -> bool {
    reactor::backend() == BackendKind::IoUring
}

/// Reads into `buf` at byte offset `pos` of a regular file; returns the
/// count read (0 at end of file) and the buffer.
pub async fn read_at<B: IoBufMut + Send>(
    fd: &SharedFd,
    mut buf: B,
    pos: u64,
) -> (io::Result<usize>, B) {
    let (ptr, len) = (buf.stable_mut_ptr(), buf.bytes_total());
    let (res, mut buf) = if uring() {
        let entry = opcode::Read::new(types::Fd(fd.as_raw_fd()), ptr, len as u32)
            .offset(pos)
            .build();
        // SAFETY: `ptr..ptr+len` is heap memory owned by `buf`, which the Op
        // owns together with a reference to the descriptor.
        let (res, (buf, _fd)) = unsafe { Op::submit_file_io(entry, (buf, fd.clone())) }.await;
        (cqe_result(res), buf)
    } else {
        let fd = fd.clone();
        let ptr = ptr as usize;
        spawn_blocking(move || {
            // SAFETY: `ptr` has `len` writable bytes owned by `buf`, which this
            // closure owns for the duration of the call.
            let r = unsafe { libc::pread(fd.as_raw_fd(), ptr as *mut _, len, pos as libc::off_t) };
            let res = if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r as usize)
            };
            (res, buf)
        })
        .await
    };
    if let Ok(n) = res {
        // SAFETY: the kernel wrote `n <= len` bytes at the start of `buf`.
        unsafe { buf.set_init(n) };
    }
    (res, buf)
}

/// Writes `buf` at byte offset `pos` of a regular file; returns the count
/// written (possibly short, e.g. when the disk fills) and the buffer.
pub async fn write_at<B: IoBuf + Send>(fd: &SharedFd, buf: B, pos: u64) -> (io::Result<usize>, B) {
    let (ptr, len) = (buf.stable_ptr(), buf.bytes_init());
    if uring() {
        let entry = opcode::Write::new(types::Fd(fd.as_raw_fd()), ptr, len as u32)
            .offset(pos)
            .build();
        // SAFETY: `ptr..ptr+len` is heap memory owned by `buf`, which the Op owns.
        let (res, (buf, _fd)) = unsafe { Op::submit_file_io(entry, (buf, fd.clone())) }.await;
        (cqe_result(res), buf)
    } else {
        let fd = fd.clone();
        let ptr = ptr as usize;
        spawn_blocking(move || {
            // SAFETY: `ptr` has `len` initialised bytes owned by `buf`, which
            // this closure owns for the duration of the call.
            let r =
                unsafe { libc::pwrite(fd.as_raw_fd(), ptr as *const _, len, pos as libc::off_t) };
            let res = if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r as usize)
            };
            (res, buf)
        })
        .await
    }
}

/// Opens `path` with `flags` (`O_CLOEXEC` is added) and `mode` for created
/// files.
pub async fn open(path: &Path, flags: i32, mode: u32) -> io::Result<SharedFd> {
    let path = c_path(path)?;
    let flags = flags | libc::O_CLOEXEC;
    let fd = if uring() {
        let entry = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
            .flags(flags)
            .mode(mode)
            .build();
        // SAFETY: the path is heap memory owned by the Op's data.
        let (res, _path) = unsafe { Op::submit(entry, path) }
            .on_orphan(close_orphan)
            .await;
        cqe_result(res)? as i32
    } else {
        spawn_blocking(move || {
            // SAFETY: `path` is a valid NUL-terminated string.
            let fd = unsafe { libc::open(path.as_ptr(), flags, mode as libc::c_uint) };
            crate::sys::cvt(fd)
        })
        .await?
    };
    // SAFETY: the kernel just returned this descriptor to us alone.
    Ok(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Closes the descriptor an abandoned open produced.
fn close_orphan(res: i32) {
    if res >= 0 {
        // SAFETY: nobody else knows this descriptor.
        unsafe { libc::close(res) };
    }
}

/// An all-zero `statx` buffer.
fn zeroed_statx() -> Box<libc::statx> {
    // SAFETY: `statx` is plain old data; all zeroes is a valid value.
    Box::new(unsafe { std::mem::zeroed() })
}

/// The `statx` mask asked for: the basic fields plus direct-I/O alignment.
const STATX_MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME | libc::STATX_DIOALIGN;

async fn statx_impl(fd: Option<SharedFd>, path: CString, flags: i32) -> io::Result<libc::statx> {
    let dirfd = fd.as_ref().map_or(libc::AT_FDCWD, |f| f.as_raw_fd());
    if uring() {
        let mut buf = zeroed_statx();
        let entry = opcode::Statx::new(
            types::Fd(dirfd),
            path.as_ptr(),
            (&mut *buf as *mut libc::statx).cast(),
        )
        .flags(flags)
        .mask(STATX_MASK)
        .build();
        // SAFETY: the path and the statx buffer are heap memory owned by the Op.
        let (res, (buf, _path, _fd)) = unsafe { Op::submit(entry, (buf, path, fd)) }.await;
        cqe_result(res)?;
        Ok(*buf)
    } else {
        spawn_blocking(move || {
            let mut buf = zeroed_statx();
            // SAFETY: valid path, a writable statx buffer; `fd` keeps `dirfd` open.
            let r = unsafe { libc::statx(dirfd, path.as_ptr(), flags, STATX_MASK, &mut *buf) };
            drop(fd);
            cvt(r).map(|()| *buf)
        })
        .await
    }
}

/// `statx` of an open descriptor (`AT_EMPTY_PATH`), with the basic fields,
/// the birth time and the direct-I/O alignment (`STATX_DIOALIGN`, zero when
/// the file system does not report it).
pub async fn statx(fd: &SharedFd) -> io::Result<libc::statx> {
    statx_impl(Some(fd.clone()), CString::default(), libc::AT_EMPTY_PATH).await
}

/// `statx` of a path; `follow` follows a final symbolic link.
pub async fn statx_path(path: &Path, follow: bool) -> io::Result<libc::statx> {
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    statx_impl(None, c_path(path)?, flags).await
}

/// `fallocate(fd, mode, offset, len)`: preallocates (or with `mode` flags
/// such as `FALLOC_FL_PUNCH_HOLE`, deallocates) a range.
pub async fn fallocate(fd: &SharedFd, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    if uring() {
        let entry = opcode::Fallocate::new(types::Fd(fd.as_raw_fd()), len)
            .offset(offset)
            .mode(mode)
            .build();
        // SAFETY: fallocate references no memory.
        let (res, _fd) = unsafe { Op::submit(entry, fd.clone()) }.await;
        cqe_result(res).map(drop)
    } else {
        let fd = fd.clone();
        spawn_blocking(move || {
            // SAFETY: plain syscall on a descriptor `fd` keeps open.
            cvt(unsafe {
                libc::fallocate(
                    fd.as_raw_fd(),
                    mode,
                    offset as libc::off_t,
                    len as libc::off_t,
                )
            })
        })
        .await
    }
}

/// `ftruncate(fd, len)`: sets the file's size.
pub async fn ftruncate(fd: &SharedFd, len: u64) -> io::Result<()> {
    if uring() {
        let entry = opcode::Ftruncate::new(types::Fd(fd.as_raw_fd()), len).build();
        // SAFETY: ftruncate references no memory.
        let (res, _fd) = unsafe { Op::submit(entry, fd.clone()) }.await;
        // Kernels before 6.9 answer EINVAL for the unknown opcode; so does a
        // bad descriptor type, for which the blocking call fails the same way.
        if res != -libc::EINVAL {
            return cqe_result(res).map(drop);
        }
    }
    let fd = fd.clone();
    spawn_blocking(move || {
        // SAFETY: plain syscall on a descriptor `fd` keeps open.
        cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })
    })
    .await
}

/// An operation on one path: `unlinkat` (file or, with `AT_REMOVEDIR`,
/// directory) or `mkdirat`.
async fn path_op(path: &Path, mkdir: Option<u32>, unlink_flags: i32) -> io::Result<()> {
    let path = c_path(path)?;
    if uring() {
        let entry = match mkdir {
            Some(mode) => opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
                .mode(mode)
                .build(),
            None => opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
                .flags(unlink_flags)
                .build(),
        };
        // SAFETY: the path is heap memory owned by the Op.
        let (res, _path) = unsafe { Op::submit(entry, path) }.await;
        cqe_result(res).map(drop)
    } else {
        spawn_blocking(move || {
            // SAFETY: valid NUL-terminated path.
            cvt(unsafe {
                match mkdir {
                    Some(mode) => libc::mkdir(path.as_ptr(), mode),
                    None => libc::unlinkat(libc::AT_FDCWD, path.as_ptr(), unlink_flags),
                }
            })
        })
        .await
    }
}

/// Removes a file (or symbolic link).
pub async fn unlink(path: &Path) -> io::Result<()> {
    path_op(path, None, 0).await
}

/// Removes an empty directory.
pub async fn rmdir(path: &Path) -> io::Result<()> {
    path_op(path, None, libc::AT_REMOVEDIR).await
}

/// Creates a directory with `mode` (before the umask).
pub async fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    path_op(path, Some(mode), 0).await
}

/// An operation on two paths: `renameat` or `linkat`.
async fn two_path_op(from: &Path, to: &Path, link: bool) -> io::Result<()> {
    let (from, to) = (c_path(from)?, c_path(to)?);
    if uring() {
        let cwd = types::Fd(libc::AT_FDCWD);
        let entry = if link {
            opcode::LinkAt::new(cwd, from.as_ptr(), cwd, to.as_ptr()).build()
        } else {
            opcode::RenameAt::new(cwd, from.as_ptr(), cwd, to.as_ptr()).build()
        };
        // SAFETY: both paths are heap memory owned by the Op.
        let (res, _paths) = unsafe { Op::submit(entry, (from, to)) }.await;
        cqe_result(res).map(drop)
    } else {
        spawn_blocking(move || {
            // SAFETY: valid NUL-terminated paths.
            cvt(unsafe {
                if link {
                    libc::link(from.as_ptr(), to.as_ptr())
                } else {
                    libc::rename(from.as_ptr(), to.as_ptr())
                }
            })
        })
        .await
    }
}

/// Renames `from` to `to`, replacing `to` if it exists.
pub async fn rename(from: &Path, to: &Path) -> io::Result<()> {
    two_path_op(from, to, false).await
}

/// Creates a hard link `to` naming the file `from` names.
pub async fn link(from: &Path, to: &Path) -> io::Result<()> {
    two_path_op(from, to, true).await
}
