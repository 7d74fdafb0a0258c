//! Socket operations: receive, send, connect, datagrams (accept: `accept.rs`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use io_uring::{opcode, types};

use super::addr::RawAddr;
use super::buf::{IoBuf, IoBufMut};
use super::op::{Op, cqe_result, ready, retry, submit_ready};
use crate::BackendKind;
use crate::reactor::{self, Interest};

/// Receives into `buf` from a connected socket; `Ok(0)` is end of stream.
///
/// Dropping the future before it completes cancels the receive. On
/// io_uring the cancellation is asynchronous: bytes that arrive before the
/// kernel has processed it may complete the abandoned receive and be lost
/// with its buffer. Keep a receive running rather than dropping and
/// restarting it when the data matters (the streams of `seastar-net` do).
pub async fn recv<B: IoBufMut>(fd: RawFd, mut buf: B) -> (io::Result<usize>, B) {
    let (ptr, len) = (buf.stable_mut_ptr(), buf.bytes_total());
    let res = match reactor::backend() {
        BackendKind::IoUring => {
            let entry = || opcode::Recv::new(types::Fd(fd), ptr, len as u32).build();
            // SAFETY: `ptr..ptr+len` is heap memory owned by `buf`, which the Op owns.
            let (res, back) = unsafe { submit_ready(fd, Interest::Read, buf, entry) }.await;
            buf = back;
            res
        }
        BackendKind::Epoll => {
            retry(fd, Interest::Read, || {
                // SAFETY: `ptr` has `len` writable bytes owned by `buf`.
                unsafe { libc::recv(fd, ptr.cast(), len, libc::MSG_DONTWAIT) }
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

/// `IORING_RECVSEND_POLL_FIRST` (Linux 5.19): arm the poll before trying
/// the receive. Not exported by the `io-uring` crate.
pub(super) const RECVSEND_POLL_FIRST: u16 = 1;

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
    let mut op = super::StreamRecv::start(fd, buf, drained);
    std::future::poll_fn(|cx| op.poll(cx)).await
}

/// Sends `buf` on a connected socket; returns the count sent (may be short).
/// Never raises `SIGPIPE`: a closed peer is an `EPIPE` error.
pub async fn send<B: IoBuf>(fd: RawFd, buf: B) -> (io::Result<usize>, B) {
    let (ptr, len) = (buf.stable_ptr(), buf.bytes_init());
    match reactor::backend() {
        BackendKind::IoUring => {
            let entry = || {
                opcode::Send::new(types::Fd(fd), ptr, len as u32)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
            };
            // SAFETY: `ptr..ptr+len` is heap memory owned by `buf`, which the Op owns.
            unsafe { submit_ready(fd, Interest::Write, buf, entry) }.await
        }
        BackendKind::Epoll => {
            let res = retry(fd, Interest::Write, || {
                // SAFETY: `ptr` has `len` initialised bytes owned by `buf`.
                unsafe { libc::send(fd, ptr.cast(), len, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) }
            })
            .await;
            (res, buf)
        }
    }
}

/// Connects a non-blocking socket to `addr`.
pub async fn connect(fd: RawFd, addr: SocketAddr) -> io::Result<()> {
    let raw = Box::new(RawAddr::from_std(&addr));
    match reactor::backend() {
        BackendKind::IoUring => {
            let entry = opcode::Connect::new(types::Fd(fd), raw.as_ptr(), raw.len).build();
            // SAFETY: the address lives in the box the Op owns.
            let (res, _raw) = unsafe { Op::submit(entry, raw) }.await;
            if res == -libc::EINPROGRESS || res == -libc::EAGAIN {
                return finish_connect(fd).await;
            }
            cqe_result(res).map(drop)
        }
        BackendKind::Epoll => {
            // SAFETY: `raw` is a live, initialised socket address.
            let r = unsafe { libc::connect(fd, raw.as_ptr(), raw.len) };
            if r == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
            finish_connect(fd).await
        }
    }
}

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

/// A message header and what it points at, boxed so it stays put.
struct Msg<B> {
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

/// Receives one datagram into `buf`; returns its length and sender.
pub async fn recv_from<B: IoBufMut>(fd: RawFd, mut buf: B) -> (io::Result<(usize, SocketAddr)>, B) {
    let (ptr, len) = (buf.stable_mut_ptr(), buf.bytes_total());
    let mut msg = Msg::new(buf, ptr, len, RawAddr::empty());
    let hdr: *mut libc::msghdr = &raw mut msg.hdr;
    let res = match reactor::backend() {
        BackendKind::IoUring => {
            let entry = opcode::RecvMsg::new(types::Fd(fd), hdr).build();
            // SAFETY: the header, iovec, address and buffer all live in the box the Op owns.
            let (res, m) = unsafe { Op::submit(entry, msg) }.await;
            msg = m;
            cqe_result(res)
        }
        BackendKind::Epoll => {
            retry(fd, Interest::Read, || {
                // SAFETY: `hdr` points into the live box `msg`.
                unsafe { libc::recvmsg(fd, hdr, libc::MSG_DONTWAIT) }
            })
            .await
        }
    };
    msg.addr.len = msg.hdr.msg_namelen;
    let res = res.and_then(|n| Ok((n, msg.addr.to_std()?)));
    let mut buf = msg.buf;
    if let Ok((n, _)) = res {
        // SAFETY: the kernel wrote `n <= len` bytes at the start of `buf`.
        unsafe { buf.set_init(n) };
    }
    (res, buf)
}

/// Sends `buf` as one datagram to `addr`.
pub async fn send_to<B: IoBuf>(fd: RawFd, buf: B, addr: SocketAddr) -> (io::Result<usize>, B) {
    let (ptr, len) = (buf.stable_ptr(), buf.bytes_init());
    let mut msg = Msg::new(buf, ptr as *mut u8, len, RawAddr::from_std(&addr));
    let hdr: *const libc::msghdr = &raw const msg.hdr;
    let res = match reactor::backend() {
        BackendKind::IoUring => {
            let entry = opcode::SendMsg::new(types::Fd(fd), hdr)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build();
            // SAFETY: the header, iovec, address and buffer all live in the box the Op owns.
            let (res, m) = unsafe { Op::submit(entry, msg) }.await;
            msg = m;
            cqe_result(res)
        }
        BackendKind::Epoll => {
            retry(fd, Interest::Write, || {
                // SAFETY: `hdr` points into the live box `msg`.
                unsafe { libc::sendmsg(fd, hdr, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) }
            })
            .await
        }
    };
    (res, msg.buf)
}
