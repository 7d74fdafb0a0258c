//! Unix domain stream sockets: [`UnixListener`] and [`UnixStream`].

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use seastar_core::io::{IoBuf, IoBufMut, PooledBuf};

use crate::fd::{self, Socket};
use crate::poll::PollIo;
use crate::stream::{InputStream, OutputStream};
use crate::{BufResult, sys};

/// A listening Unix stream socket on the calling shard.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_net::unix::{UnixListener, UnixStream};
/// let path = std::env::temp_dir().join(format!("seastar-net-doc-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path).unwrap();
/// let client = UnixStream::connect(&path).await.unwrap();
/// let (server, _) = listener.accept().await.unwrap();
/// client.write_all(b"hi".to_vec()).await.0.unwrap();
/// let (n, buf) = server.read(vec![0; 8]).await;
/// assert_eq!(&buf[..n.unwrap()], b"hi");
/// std::fs::remove_file(&path).unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct UnixListener {
    sock: Socket<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    /// Binds and listens on `path` (which must not exist).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let l = std::os::unix::net::UnixListener::bind(path)?;
        l.set_nonblocking(true)?;
        Ok(UnixListener {
            sock: Socket::new(l),
        })
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (fd, _) = seastar_core::io::accept(self.sock.fd()).await?;
        let stream = UnixStream::from_socket(std::os::unix::net::UnixStream::from(fd));
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        let _ = sys::shutdown(self.sock.fd(), libc::SHUT_RDWR);
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.fd()
    }
}

/// A connected Unix stream socket, with the same owned-buffer API as
/// [`TcpStream`](crate::TcpStream).
#[derive(Debug)]
pub struct UnixStream {
    poll: PollIo,
    sock: Socket<std::os::unix::net::UnixStream>,
}

impl UnixStream {
    fn from_socket(s: std::os::unix::net::UnixStream) -> UnixStream {
        UnixStream {
            poll: PollIo::default(),
            sock: Socket::new(s),
        }
    }

    /// Connects to the socket at `path`. A full backlog is waited out
    /// (retried every millisecond) rather than reported.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let fd = sys::socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
        loop {
            match sys::connect_unix(&fd, path.as_ref()) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    seastar_core::timer::sleep(Duration::from_millis(1)).await;
                }
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    seastar_core::io::writable(fd.as_raw_fd()).await?;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(UnixStream::from_socket(fd.into()))
    }

    /// A connected pair (like `socketpair(2)`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Wraps a connected standard-library stream (made non-blocking here).
    pub fn from_std(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        s.set_nonblocking(true)?;
        Ok(UnixStream::from_socket(s))
    }

    /// Reads into `buf` from its start (see [`TcpStream::read`](crate::TcpStream::read)).
    pub async fn read<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        self.sock.recv_stream(buf).await
    }

    /// Reads whatever arrives next into a buffer lent by the shard,
    /// holding none while waiting (see
    /// [`TcpStream::read_pooled`](crate::TcpStream::read_pooled)); empty:
    /// end of stream.
    pub async fn read_pooled(&self) -> io::Result<PooledBuf> {
        self.sock.recv_pooled().await
    }

    /// Writes some of `buf`.
    pub async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        fd::send(self.fd(), buf).await
    }

    /// Writes all of `buf`.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        fd::write_all(self.fd(), buf).await
    }

    /// Starts sending all of `buf` and returns at once (see
    /// [`TcpStream::send_behind`](crate::TcpStream::send_behind)).
    pub fn send_behind<B: IoBuf>(&self, buf: B) -> crate::SendBehind<B> {
        crate::SendBehind::start(self.fd(), buf)
    }

    /// Writes some of `bufs` with one gather write.
    pub async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        fd::writev(self.fd(), bufs).await
    }

    /// Writes every byte of `chunks` (see [`TcpStream::writev_all`](crate::TcpStream::writev_all)).
    pub async fn writev_all(&self, chunks: &mut Vec<Bytes>) -> io::Result<()> {
        crate::stream::write_chunks(&mut &*self, chunks).await
    }

    /// Shuts down one direction or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.get().shutdown(how)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// A buffered input and output stream sharing the socket.
    pub fn into_streams(self) -> (InputStream<Rc<UnixStream>>, OutputStream<Rc<UnixStream>>) {
        let rc = Rc::new(self);
        (InputStream::new(rc.clone()), OutputStream::new(rc))
    }

    /// Poll-style read (one copy; see [`TcpStream::poll_read`](crate::TcpStream::poll_read)).
    pub fn poll_read(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        let fd = self.sock.fd();
        self.poll.poll_read(fd, cx, dst)
    }

    /// Poll-style write (see [`TcpStream::poll_write`](crate::TcpStream::poll_write)).
    pub fn poll_write(&mut self, cx: &mut Context<'_>, src: &[u8]) -> Poll<io::Result<usize>> {
        let fd = self.sock.fd();
        self.poll.poll_write(fd, cx, src)
    }

    /// Poll-style gather write.
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

    pub(crate) fn fd(&self) -> RawFd {
        self.sock.fd()
    }

    #[allow(dead_code)] // used by the adapters behind features
    pub(crate) fn poll_parts(&mut self) -> (&mut PollIo, RawFd) {
        let fd = self.sock.fd();
        (&mut self.poll, fd)
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd()
    }
}

crate::stream::impl_data_traits!(UnixStream);
