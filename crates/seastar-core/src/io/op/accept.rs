//! Accepting connections: [`Accept`] (one, with the peer's address) and
//! [`AcceptMulti`] (multishot: a completion per connection).

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::multi::Multishot;
use super::{Operation, syscall};
use crate::io::addr::RawAddr;
use crate::reactor::{self, Cqe, Interest, Orphan};

/// Flags of every accepted socket.
const FLAGS: i32 = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;

/// Closes the connection a completion nobody waits for produced.
pub(crate) fn close_orphan(res: i32) {
    if res >= 0 {
        // SAFETY: the kernel handed us this new fd and nobody else knows it.
        unsafe { libc::close(res) };
    }
}

/// `accept4(2)` on listening socket `fd`: completes with the new fd (or
/// `-errno`) and the peer's address.
pub(crate) struct Accept {
    pub(crate) fd: RawFd,
    /// Boxed: the entry points at it and at its length.
    pub(crate) addr: Box<RawAddr>,
}

impl Accept {
    /// An accept on `fd`.
    pub(crate) fn new(fd: RawFd) -> Accept {
        Accept {
            fd,
            addr: Box::new(RawAddr::empty()),
        }
    }
}

// SAFETY: the entry points at the address and its length, in the box
// `self` owns.
unsafe impl Operation for Accept {
    type Output = (isize, Box<RawAddr>);
    const INTEREST: Interest = Interest::Read;
    const ORPHAN: Orphan = Some(close_orphan);

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        self.addr.len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        opcode::Accept::new(
            types::Fd(self.fd),
            self.addr.as_mut_ptr(),
            &raw mut self.addr.len,
        )
        .flags(FLAGS)
        .build()
    }

    fn attempt(&mut self) -> isize {
        self.addr.len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let (p, l) = (self.addr.as_mut_ptr(), &raw mut self.addr.len);
        // SAFETY: `p` and `l` point into the live box `addr`.
        syscall(unsafe { libc::accept4(self.fd, p, l, FLAGS) } as isize)
    }

    fn output(self, res: isize, _flags: u32) -> Self::Output {
        (res, self.addr)
    }
}

/// A multishot accept on listening socket `fd` (no address buffer: the
/// peer is read with `getpeername`). Items are the new fds or `-errno`.
pub(crate) struct AcceptMulti {
    pub(crate) fd: RawFd,
}

// SAFETY: the entry references no memory.
unsafe impl Multishot for AcceptMulti {
    type Item = i32;
    const ORPHAN: Orphan = Some(close_orphan);

    fn enabled() -> bool {
        reactor::with_uring_features(|f| f.multishot_accept).unwrap_or(false)
    }

    fn refuse() {
        reactor::with_uring_features(|f| f.multishot_accept = false);
        tracing::debug!(
            shard = crate::shard_id(),
            "multishot accept refused; using one-shot accept"
        );
    }

    fn multishot_entry(&mut self) -> squeue::Entry {
        opcode::AcceptMulti::new(types::Fd(self.fd))
            .flags(FLAGS)
            .build()
    }

    fn item(&mut self, cqe: Cqe) -> i32 {
        cqe.res
    }
}
