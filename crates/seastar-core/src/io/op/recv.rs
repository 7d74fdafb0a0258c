//! Receives into a buffer of the caller's: [`Recv`] (any socket) and
//! [`RecvStream`] (stream sockets, no doomed attempt after a short one).

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Flow, Operation, result, syscall};
use crate::io::buf::IoBufMut;
use crate::reactor::{self, Interest};

/// `IORING_RECVSEND_POLL_FIRST` (Linux 5.19): arm the poll before trying
/// the receive. Not exported by the `io-uring` crate.
pub(crate) const RECVSEND_POLL_FIRST: u16 = 1;

/// `recv(2)` into `buf`.
pub(crate) struct Recv<B> {
    pub(crate) fd: RawFd,
    pub(crate) buf: B,
}

// SAFETY: the entry points at `buf`'s bytes, heap memory `self` owns.
unsafe impl<B: IoBufMut> Operation for Recv<B> {
    type Output = (io::Result<usize>, B);
    const INTEREST: Interest = Interest::Read;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        let (ptr, len) = (self.buf.stable_mut_ptr(), self.buf.bytes_total());
        opcode::Recv::new(types::Fd(self.fd), ptr, len.min(u32::MAX as usize) as u32).build()
    }

    fn attempt(&mut self) -> isize {
        let (ptr, len) = (self.buf.stable_mut_ptr(), self.buf.bytes_total());
        // SAFETY: `ptr` has `len` writable bytes owned by `buf`.
        syscall(unsafe { libc::recv(self.fd, ptr.cast(), len, libc::MSG_DONTWAIT) })
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

/// A receive on a stream socket that, after a short one (`drained`), arms
/// its poll first on io_uring and waits for the next edge on epoll.
/// Completes with the count and whether it was short.
pub(crate) struct RecvStream<B> {
    pub(crate) fd: RawFd,
    pub(crate) buf: B,
    /// The previous receive was short: the socket's queue was empty.
    pub(crate) drained: bool,
    /// io_uring: `IORING_RECVSEND_POLL_FIRST` (drained, and the kernel
    /// has not refused it).
    pub(crate) poll_first: bool,
}

impl<B: IoBufMut> RecvStream<B> {
    /// A receive into `buf`; `drained`: the previous one was short.
    pub(crate) fn new(fd: RawFd, buf: B, drained: bool) -> RecvStream<B> {
        let poll_first =
            drained && reactor::with_uring_features(|f| f.recv_poll_first).unwrap_or(false);
        RecvStream {
            fd,
            buf,
            drained,
            poll_first,
        }
    }
}

// SAFETY: the entry points at `buf`'s bytes, heap memory `self` owns.
unsafe impl<B: IoBufMut> Operation for RecvStream<B> {
    type Output = (io::Result<(usize, bool)>, B);
    const INTEREST: Interest = Interest::Read;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        let (ptr, len) = (self.buf.stable_mut_ptr(), self.buf.bytes_total());
        let ioprio = if self.poll_first {
            RECVSEND_POLL_FIRST
        } else {
            0
        };
        opcode::Recv::new(types::Fd(self.fd), ptr, len.min(u32::MAX as usize) as u32)
            .ioprio(ioprio)
            .build()
    }

    fn attempt(&mut self) -> isize {
        let (ptr, len) = (self.buf.stable_mut_ptr(), self.buf.bytes_total());
        // SAFETY: `ptr` has `len` writable bytes owned by `buf`.
        let r = syscall(unsafe { libc::recv(self.fd, ptr.cast(), len, libc::MSG_DONTWAIT) });
        if r > 0 && (r as usize) < len {
            // A short read: the queue is empty now (as tokio does).
            reactor::clear_ready_registered(self.fd, Interest::Read);
        }
        r
    }

    fn next(&mut self, res: isize, _flags: u32) -> Flow {
        if res == -(libc::EINVAL as isize) && self.poll_first {
            // Older than 5.19: the flag is refused; off for the shard.
            reactor::with_uring_features(|f| f.recv_poll_first = false);
            self.poll_first = false;
            return Flow::Again;
        }
        Flow::Finish
    }

    fn wait_first(&self) -> bool {
        // Readiness was cleared by the short receive, right after its
        // syscall, so an edge since then is not lost.
        self.drained
    }

    fn output(mut self, res: isize, _flags: u32) -> Self::Output {
        let len = self.buf.bytes_total();
        match result(res) {
            Ok(n) => {
                // SAFETY: the kernel wrote `n <= len` bytes at the start of `buf`.
                unsafe { self.buf.set_init(n) };
                (Ok((n, n > 0 && n < len)), self.buf)
            }
            Err(e) => (Err(e), self.buf),
        }
    }
}
