//! Socket ownership and the I/O calls every stream socket shares.
//!
//! [`Socket`] owns a standard-library socket (which gives us addresses,
//! `shutdown` and options for free) and, when dropped, closes it through
//! [`seastar_core::io::close`], which first forgets the shard's epoll
//! registration of the fd. The functions below wrap the core's owned-buffer
//! calls with the loops a stream needs (`write_all`, `writev_all`).

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use seastar_core::io::{IoBuf, IoBufMut};

use crate::BufResult;
use crate::buf::Slice;

/// An owned socket closed through the reactor on drop.
#[derive(Debug)]
pub(crate) struct Socket<T: AsRawFd + Into<OwnedFd>> {
    inner: Option<T>,
    /// The last [`recv_stream`](Self::recv_stream) was short.
    drained: Cell<bool>,
}

impl<T: AsRawFd + Into<OwnedFd>> Socket<T> {
    pub(crate) fn new(inner: T) -> Self {
        crate::stats::register();
        Socket {
            inner: Some(inner),
            drained: Cell::new(false),
        }
    }

    /// Receives on a stream socket: after a short receive, the next one
    /// waits for data instead of trying first (see
    /// [`seastar_core::io::recv_stream`]).
    pub(crate) async fn recv_stream<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        let (r, buf) = recv_stream(self.fd(), buf, self.drained.get()).await;
        match r {
            Ok((n, drained)) => {
                self.drained.set(drained);
                (Ok(n), buf)
            }
            Err(e) => (Err(e), buf),
        }
    }

    pub(crate) fn get(&self) -> &T {
        self.inner.as_ref().expect("socket present until drop")
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.get().as_raw_fd()
    }

    /// Gives the socket up without closing it.
    pub(crate) fn into_inner(mut self) -> T {
        self.inner.take().expect("socket present until drop")
    }
}

impl<T: AsRawFd + Into<OwnedFd>> Drop for Socket<T> {
    fn drop(&mut self) {
        if let Some(s) = self.inner.take() {
            seastar_core::io::close(s.into());
        }
    }
}

/// Whether an error only says "try again".
fn would_block(r: &io::Result<usize>) -> bool {
    matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Receives into `buf`, waiting for readability if the kernel says `EAGAIN`.
pub(crate) async fn recv<B: IoBufMut>(fd: RawFd, mut buf: B) -> BufResult<usize, B> {
    loop {
        let (r, b) = seastar_core::io::recv(fd, buf).await;
        crate::stats::received(&r);
        buf = b;
        if would_block(&r) {
            if let Err(e) = seastar_core::io::readable(fd).await {
                return (Err(e), buf);
            }
            continue;
        }
        return (r, buf);
    }
}

/// Receives into `buf` from a stream socket; `drained`: the previous
/// receive was short. Returns the count and whether this one was short.
pub(crate) async fn recv_stream<B: IoBufMut>(
    fd: RawFd,
    buf: B,
    drained: bool,
) -> BufResult<(usize, bool), B> {
    let (r, buf) = seastar_core::io::recv_stream(fd, buf, drained).await;
    if let Ok((n, _)) = &r {
        crate::stats::received_bytes(*n);
    }
    (r, buf)
}

/// Sends `buf` (possibly short), waiting for writability on `EAGAIN`.
pub(crate) async fn send<B: IoBuf>(fd: RawFd, mut buf: B) -> BufResult<usize, B> {
    loop {
        let (r, b) = seastar_core::io::send(fd, buf).await;
        crate::stats::sent(&r);
        buf = b;
        if would_block(&r) {
            if let Err(e) = seastar_core::io::writable(fd).await {
                return (Err(e), buf);
            }
            continue;
        }
        return (r, buf);
    }
}

/// Gather-writes `bufs` (possibly short), waiting for writability on `EAGAIN`.
pub(crate) async fn writev<B: IoBuf>(fd: RawFd, mut bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
    loop {
        let (r, b) = seastar_core::io::writev(fd, bufs).await;
        crate::stats::sent(&r);
        bufs = b;
        if would_block(&r) {
            if let Err(e) = seastar_core::io::writable(fd).await {
                return (Err(e), bufs);
            }
            continue;
        }
        return (r, bufs);
    }
}

/// Sends all of `buf`, resuming after short writes without copying.
pub(crate) async fn write_all<B: IoBuf>(fd: RawFd, buf: B) -> BufResult<(), B> {
    let len = buf.bytes_init();
    let mut slice = Slice::new(buf, 0..len);
    let mut done = 0;
    while done < len {
        let (r, s) = send(fd, slice).await;
        let buf = s.into_inner();
        match r {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
        slice = Slice::new(buf, done..len);
    }
    (Ok(()), slice.into_inner())
}
