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

use super::buf::{IoBuf, IoBufMut};
use super::op::{self, run_file_op};
use super::spawn_blocking;

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

/// Reads into `buf` at byte offset `pos` of a regular file; returns the
/// count read (0 at end of file) and the buffer.
pub async fn read_at<B: IoBufMut + Send>(
    fd: &SharedFd,
    buf: B,
    pos: u64,
) -> (io::Result<usize>, B) {
    run_file_op(op::Read {
        fd: fd.as_raw_fd(),
        buf,
        pos,
        keep: fd.clone(),
    })
    .await
}

/// Writes `buf` at byte offset `pos` of a regular file; returns the count
/// written (possibly short, e.g. when the disk fills) and the buffer.
pub async fn write_at<B: IoBuf + Send>(fd: &SharedFd, buf: B, pos: u64) -> (io::Result<usize>, B) {
    run_file_op(op::Write {
        fd: fd.as_raw_fd(),
        buf,
        pos,
        keep: fd.clone(),
    })
    .await
}

/// Opens `path` with `flags` (`O_CLOEXEC` is added) and `mode` for created
/// files.
pub async fn open(path: &Path, flags: i32, mode: u32) -> io::Result<SharedFd> {
    let path = c_path(path)?;
    let flags = flags | libc::O_CLOEXEC;
    let fd = run_file_op(op::OpenAt { path, flags, mode }).await?;
    // SAFETY: the kernel just returned this descriptor to us alone.
    Ok(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `statx` of an open descriptor (`AT_EMPTY_PATH`), with the basic fields,
/// the birth time and the direct-I/O alignment (`STATX_DIOALIGN`, zero when
/// the file system does not report it).
pub async fn statx(fd: &SharedFd) -> io::Result<libc::statx> {
    let op = op::Statx::new(Some(fd.clone()), CString::default(), libc::AT_EMPTY_PATH);
    run_file_op(op).await
}

/// `statx` of a path; `follow` follows a final symbolic link.
pub async fn statx_path(path: &Path, follow: bool) -> io::Result<libc::statx> {
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    run_file_op(op::Statx::new(None, c_path(path)?, flags)).await
}

/// `fallocate(fd, mode, offset, len)`: preallocates (or with `mode` flags
/// such as `FALLOC_FL_PUNCH_HOLE`, deallocates) a range.
pub async fn fallocate(fd: &SharedFd, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    run_file_op(op::Fallocate {
        fd: fd.clone(),
        mode,
        offset,
        len,
    })
    .await
}

/// `ftruncate(fd, len)`: sets the file's size.
pub async fn ftruncate(fd: &SharedFd, len: u64) -> io::Result<()> {
    let res = run_file_op(op::Ftruncate {
        fd: fd.clone(),
        len,
    })
    .await;
    // Kernels before 6.9 answer EINVAL for the unknown opcode; so does a
    // bad descriptor type, for which the blocking call fails the same way.
    if res != -(libc::EINVAL as isize) {
        return op::result(res).map(drop);
    }
    let fd = fd.clone();
    spawn_blocking(move || {
        // SAFETY: plain syscall on a descriptor `fd` keeps open.
        crate::sys::cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) }).map(drop)
    })
    .await
}

/// An operation on one path: `unlinkat` (file or, with `AT_REMOVEDIR`,
/// directory) or `mkdirat`.
async fn path_op(path: &Path, mkdir: Option<u32>, unlink_flags: i32) -> io::Result<()> {
    let path = c_path(path)?;
    run_file_op(op::PathOp {
        path,
        mkdir,
        unlink_flags,
    })
    .await
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
    run_file_op(op::TwoPathOp { from, to, link }).await
}

/// Renames `from` to `to`, replacing `to` if it exists.
pub async fn rename(from: &Path, to: &Path) -> io::Result<()> {
    two_path_op(from, to, false).await
}

/// Creates a hard link `to` naming the file `from` names.
pub async fn link(from: &Path, to: &Path) -> io::Result<()> {
    two_path_op(from, to, true).await
}
