//! Receives whose buffer is picked only when bytes arrive: [`RecvRing`]
//! (one receive; io_uring: from the shard's provided-buffer ring, epoll:
//! from the shard's buffer pool once readable) and [`RecvMulti`] (a
//! multishot receive from the ring: a completion per chunk received).

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use super::multi::Multishot;
use super::recv::RECVSEND_POLL_FIRST;
use super::{Flow, Operation, result, syscall};
use crate::io::PooledBuf;
use crate::io::pool;
use crate::reactor::buf_ring::{BGID, RingMem};
use crate::reactor::{self, Cqe, Interest};

/// What a ring receive completes with: the bytes (empty: end of stream)
/// and whether the receive was short; `ENOBUFS` when the ring was empty
/// (the caller receives into a buffer of its own instead).
pub(crate) type Received = io::Result<(PooledBuf, bool)>;

/// The error of a ring with no buffer left.
pub(crate) fn is_no_buffers(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOBUFS)
}

/// The bytes of completion `cqe` from the ring `mem` of `size`-byte
/// buffers: a ring buffer, end of stream, or the error.
fn ring_item(mem: &Rc<RingMem>, size: usize, cqe: Cqe) -> Received {
    let picked = cqe.buffer();
    if cqe.res > 0 {
        let Some(bid) = picked else {
            return Err(io::Error::other("receive completed without a buffer"));
        };
        let n = cqe.res as usize;
        let buf = PooledBuf::ring(mem.clone(), bid, size, n.min(size));
        return Ok((buf, n < size));
    }
    if let Some(bid) = picked {
        reactor::with(|s| s.driver().borrow_mut().recycle(mem, bid));
    }
    result(cqe.res as isize).map(|_| (PooledBuf::eof(), false))
}

/// One receive on stream socket `fd` into a buffer lent by the shard.
pub(crate) struct RecvRing {
    fd: RawFd,
    /// The previous receive was short (epoll: wait for the edge first).
    drained: bool,
    /// io_uring: `IORING_RECVSEND_POLL_FIRST`.
    poll_first: bool,
    /// io_uring: the ring's memory and buffer size (`None` on epoll).
    ring: Option<(Rc<RingMem>, usize)>,
    /// Epoll: the pooled buffer the attempt received into.
    heap: Option<Vec<u8>>,
}

impl RecvRing {
    /// A receive from ring `ring` (io_uring; `None`: epoll, from the
    /// pool); `poll_first`: io_uring arms its poll first (the previous
    /// receive was short and the shard has the flag).
    pub(crate) fn new(
        fd: RawFd,
        drained: bool,
        poll_first: bool,
        ring: Option<(Rc<RingMem>, usize)>,
    ) -> RecvRing {
        RecvRing {
            fd,
            drained,
            poll_first,
            ring,
            heap: None,
        }
    }
}

// SAFETY: the entry points at no memory of its own; the buffer the kernel
// picks belongs to the shard's ring, which outlives every operation in
// flight (`reactor::buf_ring`).
unsafe impl Operation for RecvRing {
    type Output = Received;
    const INTEREST: Interest = Interest::Read;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        let size = self.ring.as_ref().map_or(pool::BUF_SIZE, |(_, size)| *size);
        let ioprio = if self.poll_first {
            RECVSEND_POLL_FIRST
        } else {
            0
        };
        opcode::Recv::new(types::Fd(self.fd), std::ptr::null_mut(), size as u32)
            .buf_group(BGID)
            .ioprio(ioprio)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
    }

    fn attempt(&mut self) -> isize {
        let mut buf = pool::take();
        let len = buf.capacity();
        // SAFETY: `buf` has `len` writable bytes of spare capacity.
        let r = syscall(unsafe {
            libc::recv(self.fd, buf.as_mut_ptr().cast(), len, libc::MSG_DONTWAIT)
        });
        if r <= 0 {
            pool::give(buf);
            return r;
        }
        let n = r as usize;
        if n < len {
            reactor::clear_ready_registered(self.fd, Interest::Read);
        }
        // SAFETY: the kernel initialised the first `n <= len` bytes.
        unsafe { buf.set_len(n) };
        self.heap = Some(buf);
        r
    }

    fn next(&mut self, res: isize, flags: u32) -> Flow {
        if res == -(libc::EINVAL as isize) && self.poll_first {
            // Older than 5.19: the flag is refused; off for the shard.
            if let (Some((mem, _)), Some(bid)) =
                (&self.ring, io_uring::cqueue::buffer_select(flags))
            {
                reactor::with(|s| s.driver().borrow_mut().recycle(mem, bid));
            }
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

    fn output(self, res: isize, flags: u32) -> Received {
        if let Some(buf) = self.heap {
            let len = buf.capacity();
            let n = buf.len();
            return Ok((PooledBuf::heap(buf), n < len));
        }
        match &self.ring {
            Some((mem, size)) => ring_item(
                mem,
                *size,
                Cqe {
                    res: res as i32,
                    flags,
                },
            ),
            None => result(res).map(|_| (PooledBuf::eof(), false)),
        }
    }
}

/// A multishot receive on stream socket `fd` from the shard's ring.
pub(crate) struct RecvMulti {
    fd: RawFd,
    mem: Rc<RingMem>,
    size: usize,
}

impl RecvMulti {
    /// A multishot receive on `fd` from ring `mem` of `size`-byte buffers.
    pub(crate) fn new(fd: RawFd, mem: Rc<RingMem>, size: usize) -> RecvMulti {
        RecvMulti { fd, mem, size }
    }
}

// SAFETY: the entry points at no memory of its own (the ring's buffers
// outlive every operation in flight).
unsafe impl Multishot for RecvMulti {
    type Item = Received;

    fn enabled() -> bool {
        reactor::with_uring_features(|f| f.multishot_recv).unwrap_or(false)
    }

    fn refuse() {
        reactor::with_uring_features(|f| f.multishot_recv = false);
        tracing::debug!(
            shard = crate::shard_id(),
            "multishot receive refused; using single-shot receives"
        );
    }

    fn multishot_entry(&mut self) -> squeue::Entry {
        opcode::RecvMulti::new(types::Fd(self.fd), BGID).build()
    }

    fn item(&mut self, cqe: Cqe) -> Received {
        // A multishot chunk says nothing about the queue: never "short".
        ring_item(&self.mem, self.size, cqe).map(|(buf, _)| (buf, false))
    }
}
