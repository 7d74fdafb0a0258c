//! Sends from a buffer of the caller's: [`Send`] (one call, may be short)
//! and [`SendAllOp`] (until the whole buffer is sent).

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Flow, Operation, result, syscall};
use crate::io::buf::IoBuf;
use crate::reactor::Interest;

/// `send(2)` of `buf`'s bytes; never raises `SIGPIPE`.
pub(crate) struct Send<B> {
    pub(crate) fd: RawFd,
    pub(crate) buf: B,
}

// SAFETY: the entry points at `buf`'s bytes, heap memory `self` owns.
unsafe impl<B: IoBuf> Operation for Send<B> {
    type Output = (io::Result<usize>, B);
    const INTEREST: Interest = Interest::Write;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        let (ptr, len) = (self.buf.stable_ptr(), self.buf.bytes_init());
        opcode::Send::new(types::Fd(self.fd), ptr, len.min(u32::MAX as usize) as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn attempt(&mut self) -> isize {
        let (ptr, len) = (self.buf.stable_ptr(), self.buf.bytes_init());
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: `ptr` has `len` initialised bytes owned by `buf`.
        syscall(unsafe { libc::send(self.fd, ptr.cast(), len, flags) })
    }

    fn output(self, res: isize, _flags: u32) -> Self::Output {
        (result(res), self.buf)
    }
}

/// Sends all of `buf`, continuing after short sends. Completes with the
/// buffer's length, or the error that stopped it (`WriteZero` if the
/// socket took nothing), the buffer, and the count sent.
pub(crate) struct SendAllOp<B> {
    pub(crate) fd: RawFd,
    pub(crate) buf: B,
    /// The buffer's length.
    pub(crate) len: usize,
    /// Bytes sent so far.
    pub(crate) sent: usize,
}

impl<B: IoBuf> SendAllOp<B> {
    /// The length of the next send: the unsent bytes, as many as a
    /// completion's `i32` result can count.
    fn chunk_len(&self) -> usize {
        (self.len - self.sent).min(i32::MAX as usize)
    }
}

// SAFETY: the entry points at `buf`'s bytes, heap memory `self` owns.
unsafe impl<B: IoBuf> Operation for SendAllOp<B> {
    type Output = (io::Result<usize>, B, usize);
    const INTEREST: Interest = Interest::Write;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        // SAFETY: `sent < len <= bytes_init`: the pointer stays in `buf`.
        let ptr = unsafe { self.buf.stable_ptr().add(self.sent) };
        opcode::Send::new(types::Fd(self.fd), ptr, self.chunk_len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn attempt(&mut self) -> isize {
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: `sent < len`: the rest of `buf`'s initialised bytes.
        syscall(unsafe {
            libc::send(
                self.fd,
                self.buf.stable_ptr().add(self.sent).cast(),
                self.len - self.sent,
                flags,
            )
        })
    }

    fn next(&mut self, res: isize, _flags: u32) -> Flow {
        if res > 0 {
            self.sent += res as usize;
            if self.sent < self.len {
                return Flow::Again;
            }
        }
        Flow::Finish
    }

    fn known_result(&self) -> Option<isize> {
        (self.len == 0).then_some(0)
    }

    fn quiet_result(&self) -> Option<i32> {
        Some(self.chunk_len() as i32)
    }

    fn output(self, res: isize, _flags: u32) -> Self::Output {
        let res = match res {
            r if r < 0 => result(r),
            // All sent (an empty buffer: at once).
            _ if self.sent == self.len => Ok(self.sent),
            _ => Err(io::ErrorKind::WriteZero.into()),
        };
        (res, self.buf, self.sent)
    }
}
