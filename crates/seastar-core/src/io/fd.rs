//! Operations on any file descriptor: reads, writes, sync, readiness, close.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::buf::{IoBuf, IoBufMut};
use super::op::{self, CURRENT, Op, ready};
use crate::reactor::{self, Interest};

/// Reads into `buf` from the fd's current position.
pub async fn read<B: IoBufMut>(fd: RawFd, buf: B) -> (io::Result<usize>, B) {
    read_at(fd, buf, CURRENT).await
}

/// Reads into `buf` at byte offset `pos` (files).
pub async fn read_at<B: IoBufMut>(fd: RawFd, buf: B, pos: u64) -> (io::Result<usize>, B) {
    Op::new(op::Read {
        fd,
        buf,
        pos,
        keep: (),
    })
    .await
}

/// Writes `buf` at the fd's current position; returns the count written.
pub async fn write<B: IoBuf>(fd: RawFd, buf: B) -> (io::Result<usize>, B) {
    write_at(fd, buf, CURRENT).await
}

/// Writes `buf` at byte offset `pos` (files).
pub async fn write_at<B: IoBuf>(fd: RawFd, buf: B, pos: u64) -> (io::Result<usize>, B) {
    Op::new(op::Write {
        fd,
        buf,
        pos,
        keep: (),
    })
    .await
}

/// Writes several buffers with one call (gather write); returns the total
/// count written, which may be short.
pub async fn writev<B: IoBuf>(fd: RawFd, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
    Op::new(op::Writev::new(fd, bufs)).await
}

/// Flushes the file's data and metadata to stable storage.
pub async fn fsync(fd: RawFd) -> io::Result<()> {
    op::run_file_op(op::Fsync {
        fd,
        data_only: false,
    })
    .await
}

/// Flushes the file's data (and the metadata needed to read it back).
pub async fn fdatasync(fd: RawFd) -> io::Result<()> {
    op::run_file_op(op::Fsync {
        fd,
        data_only: true,
    })
    .await
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
    let _ = reactor::try_with(|s| s.driver().borrow_mut().forget_fd(raw));
    drop(fd);
}
