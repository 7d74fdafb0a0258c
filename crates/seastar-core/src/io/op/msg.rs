//! Datagrams: [`RecvMsg`] (with the sender's address) and [`SendMsg`]
//! (to an address), over a boxed message header ([`Msg`]).

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Operation, result, syscall};
use crate::io::addr::RawAddr;
use crate::io::buf::{IoBuf, IoBufMut};
use crate::reactor::Interest;

/// A message header and what it points at, boxed so it stays put.
pub(crate) struct Msg<B> {
    buf: B,
    iov: libc::iovec,
    addr: RawAddr,
    hdr: libc::msghdr,
}

impl<B> Msg<B> {
    fn new(buf: B, ptr: *mut u8, len: usize, addr: RawAddr) -> Box<Self> {
        // SAFETY: msghdr is plain data; all-zero is valid and filled below.
        let hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        let mut m = Box::new(Msg {
            buf,
            iov: libc::iovec {
                iov_base: ptr.cast(),
                iov_len: len,
            },
            addr,
            hdr,
        });
        m.hdr.msg_iov = &raw mut m.iov;
        m.hdr.msg_iovlen = 1;
        m.hdr.msg_name = (&raw mut m.addr.storage).cast();
        m.hdr.msg_namelen = m.addr.len;
        m
    }
}

/// `recvmsg(2)` of one datagram into a buffer, with its sender.
pub(crate) struct RecvMsg<B> {
    fd: RawFd,
    msg: Box<Msg<B>>,
}

impl<B: IoBufMut> RecvMsg<B> {
    /// A receive on `fd` into `buf`.
    pub(crate) fn new(fd: RawFd, mut buf: B) -> RecvMsg<B> {
        let (ptr, len) = (buf.stable_mut_ptr(), buf.bytes_total());
        RecvMsg {
            fd,
            msg: Msg::new(buf, ptr, len, RawAddr::empty()),
        }
    }
}

// SAFETY: the header, iovec, address and buffer all live in the box (and
// the buffer's heap memory) `self` owns.
unsafe impl<B: IoBufMut> Operation for RecvMsg<B> {
    type Output = (io::Result<(usize, SocketAddr)>, B);
    const INTEREST: Interest = Interest::Read;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::RecvMsg::new(types::Fd(self.fd), &raw mut self.msg.hdr).build()
    }

    fn attempt(&mut self) -> isize {
        // SAFETY: the header points into the live box `msg`.
        syscall(unsafe { libc::recvmsg(self.fd, &raw mut self.msg.hdr, libc::MSG_DONTWAIT) })
    }

    fn output(self, res: isize, _flags: u32) -> Self::Output {
        let mut msg = *self.msg;
        msg.addr.len = msg.hdr.msg_namelen;
        let res = result(res).and_then(|n| Ok((n, msg.addr.to_std()?)));
        if let Ok((n, _)) = res {
            // SAFETY: the kernel wrote `n <= len` bytes at the start of `buf`.
            unsafe { msg.buf.set_init(n) };
        }
        (res, msg.buf)
    }
}

/// `sendmsg(2)` of a buffer as one datagram to an address.
pub(crate) struct SendMsg<B> {
    fd: RawFd,
    msg: Box<Msg<B>>,
}

impl<B: IoBuf> SendMsg<B> {
    /// A send on `fd` of `buf` to `addr`.
    pub(crate) fn new(fd: RawFd, buf: B, addr: &SocketAddr) -> SendMsg<B> {
        let (ptr, len) = (buf.stable_ptr(), buf.bytes_init());
        SendMsg {
            fd,
            msg: Msg::new(buf, ptr as *mut u8, len, RawAddr::from_std(addr)),
        }
    }
}

// SAFETY: the header, iovec, address and buffer all live in the box (and
// the buffer's heap memory) `self` owns.
unsafe impl<B: IoBuf> Operation for SendMsg<B> {
    type Output = (io::Result<usize>, B);
    const INTEREST: Interest = Interest::Write;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::SendMsg::new(types::Fd(self.fd), &raw const self.msg.hdr)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }

    fn attempt(&mut self) -> isize {
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: the header points into the live box `msg`.
        syscall(unsafe { libc::sendmsg(self.fd, &raw const self.msg.hdr, flags) })
    }

    fn output(self, res: isize, _flags: u32) -> Self::Output {
        (result(res), self.msg.buf)
    }
}
