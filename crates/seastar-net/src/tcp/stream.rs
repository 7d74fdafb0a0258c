//! [`TcpStream`]: a connected TCP socket with owned-buffer I/O.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use seastar_core::io::{IoBuf, IoBufMut, PooledBuf};

use super::listener::ConnGuard;
use crate::SendBehind;
use crate::fd::{self, Socket};
use crate::poll::PollIo;
use crate::stream::{InputStream, OutputStream};
use crate::{BufResult, sys};

/// A TCP connection on the calling shard.
///
/// Reads and writes move an owned buffer in and hand it back with the
/// result, `(io::Result<T>, B)`: on io_uring the kernel may still write into
/// a buffer after the future that started the read was dropped, so the
/// buffer must belong to the operation. The calls take `&self`, so one task
/// can read while another writes (see [`into_streams`](Self::into_streams)).
///
/// Dropping the stream closes the socket. A stream belongs to the shard
/// that created or accepted it; to move a connection to another shard, move
/// its fd (see [`into_std`](Self::into_std) and [`from_std`](Self::from_std)).
///
/// ```
/// use seastar_net::{ListenOptions, TcpListener, TcpStream};
///
/// seastar_core::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
///         .await
///         .unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = seastar_core::spawn_local(async move {
///         let (conn, _peer) = listener.accept().await.unwrap();
///         let (n, buf) = conn.read(Vec::with_capacity(64)).await;
///         let (r, _) = conn.write_all(buf[..n.unwrap()].to_vec()).await;
///         r.unwrap();
///     });
///     let client = TcpStream::connect(addr).await.unwrap();
///     client.write_all(b"ping".to_vec()).await.0.unwrap();
///     let (n, buf) = client.read(vec![0; 64]).await;
///     assert_eq!(&buf[..n.unwrap()], b"ping");
///     server.await.unwrap();
/// });
/// ```
#[derive(Debug)]
pub struct TcpStream {
    // Field order is drop order: in-flight poll-style operations go first,
    // then the connection counters, then the socket.
    poll: PollIo,
    _guard: Option<ConnGuard>,
    sock: Socket<std::net::TcpStream>,
}

impl TcpStream {
    pub(crate) fn from_owned(fd: OwnedFd, guard: Option<ConnGuard>) -> TcpStream {
        TcpStream {
            poll: PollIo::default(),
            _guard: guard,
            sock: Socket::new(std::net::TcpStream::from(fd)),
        }
    }

    /// Connects to `addr`.
    ///
    /// A refused connection is an `io::ErrorKind::ConnectionRefused` error.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = sys::socket(sys::domain_of(&addr), libc::SOCK_STREAM)?;
        let raw = fd.as_raw_fd();
        // Owned from here on, so a failure or a cancelled future closes it.
        let stream = TcpStream::from_owned(fd, None);
        seastar_core::io::connect(raw, addr).await?;
        Ok(stream)
    }

    /// Connects to `addr`, giving up after `timeout` with an
    /// `io::ErrorKind::TimedOut` error.
    ///
    /// ```
    /// # seastar_core::block_on(async {
    /// use std::time::Duration;
    /// // Nothing listens on port 1 of the loopback: refused long before the timeout.
    /// let err = seastar_net::TcpStream::connect_timeout(
    ///     "127.0.0.1:1".parse().unwrap(),
    ///     Duration::from_secs(5),
    /// )
    /// .await
    /// .unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    /// # });
    /// ```
    pub async fn connect_timeout(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        match seastar_core::timer::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {addr} timed out after {timeout:?}"),
            )),
        }
    }

    /// Wraps a connected standard-library stream (made non-blocking here).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream::from_owned(stream.into(), None))
    }

    /// The underlying standard-library stream, still non-blocking, e.g. to
    /// hand the connection to another shard. Pending poll-style writes are
    /// dropped: flush first.
    pub fn into_std(self) -> std::net::TcpStream {
        let TcpStream { poll, _guard, sock } = self;
        drop(poll);
        drop(_guard);
        sock.into_inner()
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
        fd::send(self.fd(), buf).await
    }

    /// Writes all of `buf`, resuming after short writes without copying.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        fd::write_all(self.fd(), buf).await
    }

    /// Starts sending all of `buf` and returns at once: the send runs while
    /// the caller goes on (reads the next request), and its completion wakes
    /// the task only if polled with [`SendBehind::poll`] or if it needs
    /// continuing (see [`SendBehind`]).
    ///
    /// # Panics
    ///
    /// Outside the stream's shard.
    pub fn send_behind<B: IoBuf>(&self, buf: B) -> SendBehind<B> {
        SendBehind::start(self.fd(), buf)
    }

    /// Writes some of `bufs` with one gather write; returns the total sent.
    pub async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        fd::writev(self.fd(), bufs).await
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
        self.sock.get().shutdown(how)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm when `true`).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.sock.get().set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.get().nodelay()
    }

    /// Turns TCP keepalive on, probing after `idle` without traffic
    /// (`TCP_KEEPIDLE`, whole seconds, at least one), or off with `None`.
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        let fd = self.fd();
        match idle {
            None => sys::set_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0),
            Some(idle) => {
                let secs = idle.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
                sys::set_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)?;
                sys::set_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)
            }
        }
    }

    /// The keepalive idle time, or `None` when keepalive is off.
    pub fn keepalive(&self) -> io::Result<Option<Duration>> {
        let fd = self.fd();
        if sys::get_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE)? == 0 {
            return Ok(None);
        }
        let secs = sys::get_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE)?;
        Ok(Some(Duration::from_secs(secs as u64)))
    }

    /// Sets `SO_LINGER`: with `Some(Duration::ZERO)`, closing the socket
    /// resets the connection (the peer sees `ConnectionReset`).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        sys::set_linger(self.fd(), linger)
    }

    /// Sets the kernel send buffer size (`SO_SNDBUF`; Linux doubles it).
    pub fn set_send_buffer_size(&self, bytes: usize) -> io::Result<()> {
        sys::set_int(self.fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, clamp(bytes))
    }

    /// The kernel send buffer size (`SO_SNDBUF`).
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        sys::get_int(self.fd(), libc::SOL_SOCKET, libc::SO_SNDBUF).map(|v| v as usize)
    }

    /// Sets the kernel receive buffer size (`SO_RCVBUF`; Linux doubles it).
    pub fn set_recv_buffer_size(&self, bytes: usize) -> io::Result<()> {
        sys::set_int(self.fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, clamp(bytes))
    }

    /// The kernel receive buffer size (`SO_RCVBUF`).
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        sys::get_int(self.fd(), libc::SOL_SOCKET, libc::SO_RCVBUF).map(|v| v as usize)
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
    pub fn into_streams(self) -> (InputStream<Rc<TcpStream>>, OutputStream<Rc<TcpStream>>) {
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
        let fd = self.sock.fd();
        self.poll.poll_read(fd, cx, dst)
    }

    /// Poll-style write: copies up to 64 KiB of `src`, reports them written
    /// and sends them behind; a failed send is reported by the next poll
    /// call. [`poll_flush`](Self::poll_flush) waits for the send.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, src: &[u8]) -> Poll<io::Result<usize>> {
        let fd = self.sock.fd();
        self.poll.poll_write(fd, cx, src)
    }

    /// Poll-style gather write (see [`poll_write`](Self::poll_write)).
    pub fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let fd = self.sock.fd();
        self.poll.poll_write_vectored(fd, cx, bufs)
    }

    /// Completes when every byte accepted by `poll_write` is sent.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll.poll_flush(cx)
    }

    /// Flushes, then shuts the write side down.
    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let fd = self.sock.fd();
        self.poll.poll_shutdown(fd, cx)
    }

    #[allow(dead_code)] // used by the adapters behind features
    pub(crate) fn poll_parts(&mut self) -> (&mut PollIo, RawFd) {
        let fd = self.sock.fd();
        (&mut self.poll, fd)
    }
}

fn clamp(bytes: usize) -> libc::c_int {
    bytes.min(i32::MAX as usize) as libc::c_int
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd()
    }
}
