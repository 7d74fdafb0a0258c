//! Socket ownership and the I/O calls every stream socket shares.
//!
//! [`Socket`] owns a standard-library socket (which gives us addresses,
//! `shutdown` and options for free) and, when dropped, closes it through
//! [`seastar_core::io::close`], which first forgets the shard's epoll
//! registration of the fd. The functions below wrap the core's owned-buffer
//! calls with the loops a stream needs (`write_all`, `writev_all`).

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use seastar_core::io::{IoBuf, IoBufMut, PooledBuf, PooledRecv, PooledRecvStream, StreamRecv};

use crate::stats::Meter;
use crate::{BufResult, SendBehind};

/// A socket's descriptor with its [`Meter`]: what the calls that move
/// bytes need (the meter counts them and marks the connection active).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SockIo<'a> {
    /// The descriptor.
    pub(crate) fd: RawFd,
    /// The socket's meter.
    pub(crate) meter: &'a Rc<Meter>,
}

/// An owned socket closed through the reactor on drop.
#[derive(Debug)]
pub(crate) struct Socket<T: AsRawFd + Into<OwnedFd>> {
    inner: Option<T>,
    /// The last [`recv_stream`](Self::recv_stream) was short.
    drained: Cell<bool>,
    /// With `SEASTAR_NET_MULTISHOT_RECV=1`: the multishot receive serving
    /// [`recv_pooled`](Self::recv_pooled), made on first use.
    multishot: RefCell<Option<Box<PooledRecvStream>>>,
    /// Counts its bytes and keeps its last activity.
    meter: Rc<Meter>,
}

/// Whether pooled receives use one multishot receive per socket
/// (`SEASTAR_NET_MULTISHOT_RECV=1`; off by default: not shown faster).
fn multishot_recv() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("SEASTAR_NET_MULTISHOT_RECV").as_deref() == Ok("1"))
}

impl<T: AsRawFd + Into<OwnedFd>> Socket<T> {
    pub(crate) fn new(inner: T) -> Self {
        crate::stats::register();
        Socket {
            inner: Some(inner),
            drained: Cell::new(false),
            multishot: RefCell::new(None),
            meter: Meter::new(),
        }
    }

    /// Receives on a stream socket: after a short receive, the next one
    /// waits for data instead of trying first (see
    /// [`seastar_core::io::recv_stream`]).
    ///
    /// Polls the [`StreamRecv`] itself: awaiting
    /// [`seastar_core::io::recv_stream`] (the same operation) adds a future
    /// layer, moved into place on every call (callgrind, memcached: about
    /// 70 instructions per op).
    pub(crate) async fn recv_stream<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        let mut op = StreamRecv::start(self.fd(), buf, self.drained.get());
        let (r, buf) = std::future::poll_fn(|cx| op.poll(cx)).await;
        if let Ok((n, _)) = &r {
            self.meter.received(*n);
        }
        match r {
            Ok((n, drained)) => {
                self.drained.set(drained);
                (Ok(n), buf)
            }
            Err(e) => (Err(e), buf),
        }
    }

    /// A receive into a buffer lent by the shard, holding none while it
    /// waits ([`seastar_core::io::PooledRecv`]); empty: end of stream.
    pub(crate) async fn recv_pooled(&self) -> std::io::Result<PooledBuf> {
        if multishot_recv() {
            // Kept in the socket, borrowed only while polled: a read
            // future dropped midway loses nothing received ahead.
            let buf = std::future::poll_fn(|cx| {
                self.multishot
                    .borrow_mut()
                    .get_or_insert_with(|| Box::new(PooledRecvStream::new(self.fd())))
                    .poll_next(cx)
            })
            .await?;
            self.meter.received(buf.len());
            return Ok(buf);
        }
        let mut op = PooledRecv::start(self.fd(), self.drained.get());
        let (buf, drained) = std::future::poll_fn(|cx| op.poll(cx)).await?;
        self.meter.received(buf.len());
        self.drained.set(drained);
        Ok(buf)
    }

    pub(crate) fn get(&self) -> &T {
        self.inner.as_ref().expect("socket present until drop")
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.get().as_raw_fd()
    }

    /// The socket's meter.
    pub(crate) fn meter(&self) -> &Rc<Meter> {
        &self.meter
    }

    /// The descriptor and the meter, for the calls below.
    pub(crate) fn io(&self) -> SockIo<'_> {
        SockIo {
            fd: self.fd(),
            meter: &self.meter,
        }
    }

    /// Gives the socket up without closing it.
    pub(crate) fn into_inner(mut self) -> T {
        drop(self.multishot.get_mut().take());
        self.inner.take().expect("socket present until drop")
    }
}

impl<T: AsRawFd + Into<OwnedFd>> Drop for Socket<T> {
    fn drop(&mut self) {
        // Its receive is cancelled before the fd closes.
        drop(self.multishot.get_mut().take());
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
pub(crate) async fn recv<B: IoBufMut>(io: SockIo<'_>, mut buf: B) -> BufResult<usize, B> {
    let fd = io.fd;
    loop {
        let (r, b) = seastar_core::io::recv(fd, buf).await;
        io.meter.received_result(&r);
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

/// Sends `buf` (possibly short), waiting for writability on `EAGAIN`.
pub(crate) async fn send<B: IoBuf>(io: SockIo<'_>, mut buf: B) -> BufResult<usize, B> {
    let fd = io.fd;
    loop {
        let (r, b) = seastar_core::io::send(fd, buf).await;
        io.meter.sent_result(&r);
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
pub(crate) async fn writev<B: IoBuf>(io: SockIo<'_>, mut bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
    let fd = io.fd;
    loop {
        let (r, b) = seastar_core::io::writev(fd, bufs).await;
        io.meter.sent_result(&r);
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

/// Sends all of `buf`, resuming after short writes without copying (a
/// [`SendBehind`] awaited at once: no nested futures to move per send).
pub(crate) async fn write_all<B: IoBuf>(io: SockIo<'_>, buf: B) -> BufResult<(), B> {
    let mut send = SendBehind::start(io.fd, buf);
    let (r, buf) = std::future::poll_fn(|cx| send.poll(cx)).await;
    // What went out, also when the send failed midway.
    io.meter.sent(send.sent());
    (r.map(drop), buf)
}
