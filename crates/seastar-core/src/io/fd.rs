//! Operations on any file descriptor: reads, writes, sync, readiness, close.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use io_uring::{opcode, types};

use super::buf::{IoBuf, IoBufMut};
use super::op::{Op, cqe_result, ready, retry, submit_ready};
use crate::BackendKind;
use crate::reactor::{self, Interest};

/// Offset meaning "the file position" (and required for non-seekable fds).
const CURRENT: u64 = u64::MAX;

/// Reads into `buf` from the fd's current position.
pub async fn read<B: IoBufMut>(fd: RawFd, buf: B) -> (io::Result<usize>, B) {
    read_impl(fd, buf, CURRENT).await
}

/// Reads into `buf` at byte offset `pos` (files).
pub async fn read_at<B: IoBufMut>(fd: RawFd, buf: B, pos: u64) -> (io::Result<usize>, B) {
    read_impl(fd, buf, pos).await
}

async fn read_impl<B: IoBufMut>(fd: RawFd, mut buf: B, pos: u64) -> (io::Result<usize>, B) {
    let (ptr, len) = (buf.stable_mut_ptr(), buf.bytes_total());
    let res = match reactor::backend() {
        BackendKind::IoUring => {
            let entry = || {
                opcode::Read::new(types::Fd(fd), ptr, len as u32)
                    .offset(pos)
                    .build()
            };
            // SAFETY: `ptr..ptr+len` is heap memory owned by `buf`, which the Op owns.
            let (res, back) = unsafe { submit_ready(fd, Interest::Read, buf, entry) }.await;
            buf = back;
            res
        }
        BackendKind::Epoll => {
            retry(fd, Interest::Read, || {
                // SAFETY: `ptr` has `len` writable bytes owned by `buf`, alive across this call.
                unsafe {
                    if pos == CURRENT {
                        libc::read(fd, ptr.cast(), len)
                    } else {
                        libc::pread(fd, ptr.cast(), len, pos as libc::off_t)
                    }
                }
            })
            .await
        }
    };
    if let Ok(n) = res {
        // SAFETY: the kernel wrote `n <= len` bytes at the start of `buf`.
        unsafe { buf.set_init(n) };
    }
    (res, buf)
}

/// Writes `buf` at the fd's current position; returns the count written.
pub async fn write<B: IoBuf>(fd: RawFd, buf: B) -> (io::Result<usize>, B) {
    write_impl(fd, buf, CURRENT).await
}

/// Writes `buf` at byte offset `pos` (files).
pub async fn write_at<B: IoBuf>(fd: RawFd, buf: B, pos: u64) -> (io::Result<usize>, B) {
    write_impl(fd, buf, pos).await
}

async fn write_impl<B: IoBuf>(fd: RawFd, mut buf: B, pos: u64) -> (io::Result<usize>, B) {
    let (ptr, len) = (buf.stable_ptr(), buf.bytes_init());
    let res = match reactor::backend() {
        BackendKind::IoUring => {
            let entry = || {
                opcode::Write::new(types::Fd(fd), ptr, len as u32)
                    .offset(pos)
                    .build()
            };
            // SAFETY: `ptr..ptr+len` is heap memory owned by `buf`, which the Op owns.
            let (res, back) = unsafe { submit_ready(fd, Interest::Write, buf, entry) }.await;
            buf = back;
            res
        }
        BackendKind::Epoll => {
            retry(fd, Interest::Write, || {
                // SAFETY: `ptr` has `len` initialised bytes owned by `buf`.
                unsafe {
                    if pos == CURRENT {
                        libc::write(fd, ptr.cast(), len)
                    } else {
                        libc::pwrite(fd, ptr.cast(), len, pos as libc::off_t)
                    }
                }
            })
            .await
        }
    };
    (res, buf)
}

/// Iovecs pointing into a vector of buffers; boxed so they stay put.
struct Vectored<B> {
    bufs: Vec<B>,
    iovecs: Box<[libc::iovec]>,
}

impl<B: IoBuf> Vectored<B> {
    fn new(bufs: Vec<B>) -> Self {
        let iovecs = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr() as *mut _,
                iov_len: b.bytes_init(),
            })
            .collect();
        Vectored { bufs, iovecs }
    }
}

/// Writes several buffers with one call (gather write); returns the total
/// count written, which may be short.
pub async fn writev<B: IoBuf>(fd: RawFd, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
    let mut v = Vectored::new(bufs);
    let (ptr, cnt) = (
        v.iovecs.as_ptr(),
        v.iovecs.len().min(libc::UIO_MAXIOV as usize),
    );
    let res = match reactor::backend() {
        BackendKind::IoUring => {
            let entry = || {
                opcode::Writev::new(types::Fd(fd), ptr, cnt as u32)
                    .offset(CURRENT)
                    .build()
            };
            // SAFETY: the iovecs and the memory they point at are heap memory owned by `v`.
            let (res, back) = unsafe { submit_ready(fd, Interest::Write, v, entry) }.await;
            v = back;
            res
        }
        BackendKind::Epoll => {
            retry(fd, Interest::Write, || {
                // SAFETY: `cnt` iovecs owned by `v` point at initialised bytes owned by `v`.
                unsafe { libc::writev(fd, ptr, cnt as libc::c_int) }
            })
            .await
        }
    };
    (res, v.bufs)
}

/// Flushes the file's data and metadata to stable storage.
pub async fn fsync(fd: RawFd) -> io::Result<()> {
    sync(fd, false).await
}

/// Flushes the file's data (and the metadata needed to read it back).
pub async fn fdatasync(fd: RawFd) -> io::Result<()> {
    sync(fd, true).await
}

async fn sync(fd: RawFd, data_only: bool) -> io::Result<()> {
    match reactor::backend() {
        BackendKind::IoUring => {
            let flags = if data_only {
                types::FsyncFlags::DATASYNC
            } else {
                types::FsyncFlags::empty()
            };
            let entry = opcode::Fsync::new(types::Fd(fd)).flags(flags).build();
            // SAFETY: fsync references no memory.
            let (res, ()) = unsafe { Op::submit(entry, ()) }.await;
            cqe_result(res).map(drop)
        }
        BackendKind::Epoll => {
            super::spawn_blocking(move || {
                // SAFETY: plain syscall on an fd the caller keeps open.
                let r = unsafe {
                    if data_only {
                        libc::fdatasync(fd)
                    } else {
                        libc::fsync(fd)
                    }
                };
                crate::sys::cvt(r).map(drop)
            })
            .await
        }
    }
}

/// Waits until `fd` is readable.
pub async fn readable(fd: RawFd) -> io::Result<()> {
    ready(fd, Interest::Read).await
}

/// Waits until `fd` is writable.
pub async fn writable(fd: RawFd) -> io::Result<()> {
    ready(fd, Interest::Write).await
}

/// Closes `fd`, first forgetting its epoll registration (waking anyone
/// still waiting on it). Operations still in flight on io_uring complete
/// with an error or their result; their buffers stay owned by them.
pub fn close(fd: OwnedFd) {
    let raw = fd.as_raw_fd();
    let _ = reactor::try_with(|cx| {
        if let crate::reactor::Driver::Epoll(ep) = &mut *cx.driver.borrow_mut() {
            ep.deregister(raw);
        }
    });
    drop(fd);
}
