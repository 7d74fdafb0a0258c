//! [`SocketStream`]: one implementation of a connected stream socket, for
//! every kind ([`TcpStream`](crate::TcpStream) is `SocketStream<Tcp>`,
//! [`UnixStream`](crate::UnixStream) is `SocketStream<Unix>`).
//!
//! The owned-buffer calls, the pooled read, the poll-style calls for the
//! adapters and the buffered split are written once here; a kind adds only
//! what differs (connecting, addresses, socket options).

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use seastar_core::io::{IoBuf, IoBufMut, PooledBuf};

use crate::fd::{self, SockIo, Socket};
use crate::poll::PollIo;
use crate::stream::{DataSink, DataSource, InputStream, OutputStream};
use crate::tcp::ConnGuard;
use crate::{BufResult, SendBehind};

/// What a kind of stream socket brings: its standard-library type and how
/// to read its addresses. Sealed: [`Tcp`] and [`Unix`].
pub trait StreamKind: sealed::Sealed + 'static {
    /// The standard-library socket (addresses, `shutdown`, options).
    type Std: AsRawFd + From<OwnedFd> + Into<OwnedFd> + fmt::Debug;
    /// An address of this kind.
    type Addr: fmt::Debug;
    /// The peer's address.
    fn peer_addr(s: &Self::Std) -> io::Result<Self::Addr>;
    /// The local address.
    fn local_addr(s: &Self::Std) -> io::Result<Self::Addr>;
    /// Shuts one direction or both.
    fn shutdown(s: &Self::Std, how: Shutdown) -> io::Result<()>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Tcp {}
    impl Sealed for super::Unix {}
}

/// TCP over IPv4 or IPv6.
#[derive(Debug)]
pub enum Tcp {}

impl StreamKind for Tcp {
    type Std = std::net::TcpStream;
    type Addr = std::net::SocketAddr;
    fn peer_addr(s: &Self::Std) -> io::Result<Self::Addr> {
        s.peer_addr()
    }
    fn local_addr(s: &Self::Std) -> io::Result<Self::Addr> {
        s.local_addr()
    }
    fn shutdown(s: &Self::Std, how: Shutdown) -> io::Result<()> {
        s.shutdown(how)
    }
}

/// Unix domain stream sockets.
#[derive(Debug)]
pub enum Unix {}

impl StreamKind for Unix {
    type Std = std::os::unix::net::UnixStream;
    type Addr = std::os::unix::net::SocketAddr;
    fn peer_addr(s: &Self::Std) -> io::Result<Self::Addr> {
        s.peer_addr()
    }
    fn local_addr(s: &Self::Std) -> io::Result<Self::Addr> {
        s.local_addr()
    }
    fn shutdown(s: &Self::Std, how: Shutdown) -> io::Result<()> {
        s.shutdown(how)
    }
}

/// A connected stream socket on the calling shard (see
/// [`TcpStream`](crate::TcpStream) for the whole story and an example).
///
/// Reads and writes move an owned buffer in and hand it back with the
/// result, `(io::Result<T>, B)`; the calls take `&self`, so one task can
/// read while another writes. Dropping the stream closes the socket.
pub struct SocketStream<K: StreamKind> {
    // Field order is drop order: in-flight poll-style operations go first,
    // then the connection counters, then the socket.
    pub(crate) poll: PollIo,
    pub(crate) guard: Option<ConnGuard>,
    pub(crate) sock: Socket<K::Std>,
}

impl<K: StreamKind> fmt::Debug for SocketStream<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketStream")
            .field("fd", &self.sock.fd())
            .field("poll", &self.poll)
            .finish()
    }
}

impl<K: StreamKind> SocketStream<K> {
    pub(crate) fn from_parts(sock: K::Std, guard: Option<ConnGuard>) -> Self {
        SocketStream {
            poll: PollIo::default(),
            guard,
            sock: Socket::new(sock),
        }
    }

    /// Reads into `buf`, overwriting it from its start with up to its
    /// capacity (`Vec`: `capacity()`, not `len()`); `Ok(0)` is end of stream.
    ///
    /// Dropping the future before it completes may lose bytes the kernel
    /// already received (on io_uring): prefer ending the connection over
    /// racing reads against other futures.
    pub async fn read<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        self.sock.recv_stream(buf).await
    }

    /// Reads whatever arrives next into a buffer lent by the shard, and
    /// holds no buffer while waiting: the way to serve many idle
    /// connections cheaply (10,000 waiting reads hold no 10,000 buffers).
    /// The [`PooledBuf`] goes back to the shard when dropped, so parse it
    /// and copy out what must stay; an empty one is end of stream.
    ///
    /// On io_uring the kernel picks the buffer from the shard's
    /// provided-buffer ring when bytes arrive; on epoll the read happens
    /// on readiness, into the shard's buffer pool.
    ///
    /// ```no_run
    /// # async fn f(conn: seastar_net::TcpStream) -> std::io::Result<()> {
    /// loop {
    ///     let bytes = conn.read_pooled().await?;
    ///     if bytes.is_empty() {
    ///         return Ok(()); // end of stream
    ///     }
    ///     // ... parse `bytes`, keep what is incomplete ...
    /// }
    /// # }
    /// ```
    pub async fn read_pooled(&self) -> io::Result<PooledBuf> {
        self.sock.recv_pooled().await
    }

    /// Writes some of `buf`; returns how many bytes were sent.
    pub async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        fd::send(self.sock.io(), buf).await
    }

    /// Writes all of `buf`, resuming after short writes without copying.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        fd::write_all(self.sock.io(), buf).await
    }

    /// Starts sending all of `buf` and returns at once: the send runs while
    /// the caller goes on (reads the next request), and its completion wakes
    /// the task only if polled with [`SendBehind::poll`] or if it needs
    /// continuing (see [`SendBehind`]).
    ///
    /// The bytes count as sent (in [`stats`](crate::stats)) when the send
    /// starts, so a send that then fails counts bytes it did not send: the
    /// send holds no reference to the socket's counters (one reference
    /// count per send saved on the hot path).
    ///
    /// # Panics
    ///
    /// Outside the stream's shard.
    pub fn send_behind<B: IoBuf>(&self, buf: B) -> SendBehind<B> {
        self.sock.meter().sent(buf.bytes_init());
        SendBehind::start(self.fd(), buf)
    }

    /// Writes some of `bufs` with one gather write; returns the total sent.
    pub async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        fd::writev(self.sock.io(), bufs).await
    }

    /// Writes every byte of `chunks`, with one `writev` per round trip to the
    /// kernel; fully sent chunks are removed, so on error `chunks` holds the
    /// unsent rest.
    pub async fn writev_all(&self, chunks: &mut Vec<Bytes>) -> io::Result<()> {
        crate::stream::write_chunks(&mut &*self, chunks).await
    }

    /// Shuts down the read side, the write side (the peer reads end of
    /// stream), or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        K::shutdown(self.sock.get(), how)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<K::Addr> {
        K::peer_addr(self.sock.get())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<K::Addr> {
        K::local_addr(self.sock.get())
    }

    /// Splits the connection into a buffered [`InputStream`] and
    /// [`OutputStream`] sharing the socket, which closes when both are gone.
    ///
    /// ```
    /// # use seastar_net::{ListenOptions, TcpListener, TcpStream};
    /// # seastar_core::block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap();
    /// # let addr = listener.local_addr().unwrap();
    /// # let server = seastar_core::spawn_local(async move {
    /// #     let (conn, _) = listener.accept().await.unwrap();
    /// #     let (mut input, mut output) = conn.into_streams();
    /// #     let line = input.read_until(b'\n', 1024).await.unwrap();
    /// #     output.write(&line).await.unwrap();
    /// #     output.close().await.unwrap();
    /// # });
    /// let (mut input, mut output) = TcpStream::connect(addr).await.unwrap().into_streams();
    /// output.write(b"hello\n").await.unwrap();
    /// output.flush().await.unwrap();
    /// assert_eq!(&input.read_until(b'\n', 1024).await.unwrap()[..], b"hello\n");
    /// # server.await.unwrap();
    /// # });
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn into_streams(self) -> (InputStream<Rc<Self>>, OutputStream<Rc<Self>>) {
        let rc = Rc::new(self);
        (InputStream::new(rc.clone()), OutputStream::new(rc))
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.sock.fd()
    }

    /// Poll-style read, for adapters to `poll_read`-based traits: bytes
    /// are received into an internal buffer and copied into `dst` (one
    /// copy; the owned-buffer [`read`](Self::read) has none).
    pub fn poll_read(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        self.poll.poll_read(self.sock.io(), cx, dst)
    }

    /// Poll-style write: copies up to 64 KiB of `src`, reports them written
    /// and sends them behind; a failed send is reported by the next poll
    /// call. [`poll_flush`](Self::poll_flush) waits for the send.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, src: &[u8]) -> Poll<io::Result<usize>> {
        self.poll.poll_write(self.sock.io(), cx, src)
    }

    /// Poll-style gather write (see [`poll_write`](Self::poll_write)).
    pub fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll.poll_write_vectored(self.sock.io(), cx, bufs)
    }

    /// Poll-style write of a whole buffer without copying it: takes every
    /// byte of `buf` and sends it behind (as [`poll_write`](Self::poll_write)),
    /// leaving `buf` empty. In its place `buf` gets the buffer of an earlier
    /// send when the stream kept one, so a caller that fills `buf` again
    /// and again passes two buffers back and forth without allocating.
    /// `Pending` while an earlier send still runs.
    ///
    /// ```
    /// # use seastar_net::{ListenOptions, TcpListener, TcpStream};
    /// # seastar_core::block_on(async {
    /// # let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap();
    /// # let addr = l.local_addr().unwrap();
    /// let mut conn = TcpStream::connect(addr).await.unwrap();
    /// let (peer, _) = l.accept().await.unwrap();
    /// let mut buf = b"ping".to_vec();
    /// std::future::poll_fn(|cx| conn.poll_write_owned(cx, &mut buf)).await.unwrap();
    /// assert!(buf.is_empty());
    /// std::future::poll_fn(|cx| conn.poll_flush(cx)).await.unwrap();
    /// let (n, got) = peer.read(vec![0; 16]).await;
    /// assert_eq!(&got[..n.unwrap()], b"ping");
    /// # });
    /// ```
    pub fn poll_write_owned(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<()>> {
        self.poll.poll_write_owned(self.sock.io(), cx, buf)
    }

    /// Completes when every byte accepted by `poll_write` is sent.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll.poll_flush(cx)
    }

    /// Flushes, then shuts the write side down.
    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll.poll_shutdown(self.sock.io(), cx)
    }

    #[allow(dead_code)] // used by the adapters behind features
    pub(crate) fn poll_parts(&mut self) -> (&mut PollIo, SockIo<'_>) {
        (&mut self.poll, self.sock.io())
    }
}

impl<K: StreamKind> AsRawFd for SocketStream<K> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd()
    }
}

/// The buffered streams' source: reads like [`SocketStream::read`].
impl<K: StreamKind> DataSource for &SocketStream<K> {
    async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
        SocketStream::read(self, buf).await
    }
}

/// The buffered streams' sink; `shutdown` closes the write side (a socket
/// the peer already closed counts as shut).
impl<K: StreamKind> DataSink for &SocketStream<K> {
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        fd::send(self.sock.io(), buf).await
    }
    async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        fd::writev(self.sock.io(), bufs).await
    }
    async fn shutdown(&mut self) -> io::Result<()> {
        match crate::sys::shutdown(self.fd(), libc::SHUT_WR) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
            r => r,
        }
    }
}

/// Forwards both traits from the stream itself to `&SocketStream<K>` (an
/// `Rc` of it forwards through seastar-core's blanket impls for `Rc<S>`).
macro_rules! forward {
    ($outer:ty) => {
        impl<K: StreamKind> DataSource for $outer {
            async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
                let mut r: &SocketStream<K> = &*self;
                DataSource::read(&mut r, buf).await
            }
        }
        impl<K: StreamKind> DataSink for $outer {
            async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
                let mut r: &SocketStream<K> = &*self;
                DataSink::write(&mut r, buf).await
            }
            async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
                let mut r: &SocketStream<K> = &*self;
                DataSink::writev(&mut r, bufs).await
            }
            async fn shutdown(&mut self) -> io::Result<()> {
                let mut r: &SocketStream<K> = &*self;
                DataSink::shutdown(&mut r).await
            }
        }
    };
}

forward!(SocketStream<K>);
