//! Socket operations: receive, send, connect, datagrams (accept: `accept.rs`).
//! Each is one [`Operation`](super::op::Operation) (in `op/`) driven by
//! the generic [`Op`] future.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::addr::RawAddr;
use super::buf::{IoBuf, IoBufMut};
use super::op::{self, Op, ready};
use crate::reactor::Interest;

/// Receives into `buf` from a connected socket; `Ok(0)` is end of stream.
///
/// Dropping the future before it completes cancels the receive. On
/// io_uring the cancellation is asynchronous: bytes that arrive before the
/// kernel has processed it may complete the abandoned receive and be lost
/// with its buffer. Keep a receive running rather than dropping and
/// restarting it when the data matters (the streams of `seastar-net` do).
pub async fn recv<B: IoBufMut>(fd: RawFd, buf: B) -> (io::Result<usize>, B) {
    Op::new(op::Recv { fd, buf }).await
}

/// Receives into `buf` from a **stream** socket (TCP, Unix stream), as
/// [`recv`], without the receive attempt that is bound to fail.
///
/// `drained` tells that the caller's previous receive on `fd` returned
/// fewer bytes than it asked for: the socket's queue was empty then, so a
/// receive now most likely finds nothing. io_uring then arms its poll
/// before receiving (`IORING_RECVSEND_POLL_FIRST`) instead of trying,
/// failing and arming; epoll waits for the next readiness edge instead of
/// calling `recv` for an `EAGAIN` (a short read clears the fd's cached
/// readiness, as tokio does). Either way a byte already queued is received
/// at once. Returns the count and whether this receive was short, the
/// `drained` of the next call. Not for datagram sockets: there a short
/// read says nothing about the queue.
///
/// ```
/// # seastar_core::block_on(async {
/// use std::os::fd::AsRawFd;
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// b.set_nonblocking(true).unwrap();
/// std::io::Write::write_all(&mut &b, b"hi").unwrap();
/// let (r, buf) = seastar_core::io::recv_stream(a.as_raw_fd(), vec![0u8; 16], false).await;
/// let (n, drained) = r.unwrap();
/// assert_eq!((n, drained, &buf[..n]), (2, true, &b"hi"[..]));
/// # });
/// ```
pub async fn recv_stream<B: IoBufMut>(
    fd: RawFd,
    buf: B,
    drained: bool,
) -> (io::Result<(usize, bool)>, B) {
    Op::new(op::RecvStream::new(fd, buf, drained)).await
}

/// Sends `buf` on a connected socket; returns the count sent (may be short).
/// Never raises `SIGPIPE`: a closed peer is an `EPIPE` error.
pub async fn send<B: IoBuf>(fd: RawFd, buf: B) -> (io::Result<usize>, B) {
    Op::new(op::Send { fd, buf }).await
}

/// Connects a non-blocking socket to `addr`.
pub async fn connect(fd: RawFd, addr: SocketAddr) -> io::Result<()> {
    let res = Op::new(op::Connect::new(fd, RawAddr::from_std(&addr))).await;
    if res == -(libc::EINPROGRESS as isize) {
        return finish_connect(fd).await;
    }
    op::result(res).map(drop)
}

/// Waits for a connection in progress to finish and reads its outcome.
async fn finish_connect(fd: RawFd) -> io::Result<()> {
    ready(fd, Interest::Write).await?;
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are live locals of the sizes passed.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut len,
        )
    };
    crate::sys::cvt(r)?;
    if err != 0 {
        Err(io::Error::from_raw_os_error(err))
    } else {
        Ok(())
    }
}

/// Receives one datagram into `buf`; returns its length and sender.
pub async fn recv_from<B: IoBufMut>(fd: RawFd, buf: B) -> (io::Result<(usize, SocketAddr)>, B) {
    Op::new(op::RecvMsg::new(fd, buf)).await
}

/// Sends `buf` as one datagram to `addr`.
pub async fn send_to<B: IoBuf>(fd: RawFd, buf: B, addr: SocketAddr) -> (io::Result<usize>, B) {
    Op::new(op::SendMsg::new(fd, buf, &addr)).await
}
