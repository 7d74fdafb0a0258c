//! [`Connect`]: `connect(2)` on a non-blocking socket.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Operation, syscall};
use crate::io::addr::RawAddr;
use crate::reactor::Interest;

/// Starts connecting `fd` to `addr`. Completes with `0` (connected) or
/// `-errno`; `-EINPROGRESS` means "wait for writability, then read
/// `SO_ERROR`" (see `io::connect`). After `EAGAIN` (a Unix socket's full
/// backlog) it waits for writability and tries again.
pub(crate) struct Connect {
    pub(crate) fd: RawFd,
    /// Boxed: the entry points at it.
    pub(crate) addr: Box<RawAddr>,
    /// Calls made (a repeated call may find the socket connected).
    pub(crate) calls: u8,
}

impl Connect {
    /// A connection of `fd` to `addr`.
    pub(crate) fn new(fd: RawFd, addr: RawAddr) -> Connect {
        Connect {
            fd,
            addr: Box::new(addr),
            calls: 0,
        }
    }
}

// SAFETY: the entry points at the address in the box `self` owns.
unsafe impl Operation for Connect {
    type Output = isize;
    const INTEREST: Interest = Interest::Write;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        self.calls = self.calls.saturating_add(1);
        opcode::Connect::new(types::Fd(self.fd), self.addr.as_ptr(), self.addr.len).build()
    }

    fn attempt(&mut self) -> isize {
        self.calls = self.calls.saturating_add(1);
        // SAFETY: `addr` is a live, initialised socket address.
        syscall(unsafe { libc::connect(self.fd, self.addr.as_ptr(), self.addr.len) } as isize)
    }

    fn output(self, res: isize, _flags: u32) -> isize {
        if res == -(libc::EISCONN as isize) && self.calls > 1 {
            // Connected by the time of the repeated call.
            return 0;
        }
        res
    }
}
