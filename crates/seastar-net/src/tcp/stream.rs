//! [`TcpStream`]: a connected TCP socket with owned-buffer I/O (the
//! shared calls live in [`SocketStream`](crate::SocketStream); TCP adds
//! connecting and its socket options).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use super::listener::ConnGuard;
use crate::socket_stream::{SocketStream, Tcp};
use crate::sys;

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
pub type TcpStream = SocketStream<Tcp>;

impl SocketStream<Tcp> {
    pub(crate) fn from_owned(fd: OwnedFd, guard: Option<ConnGuard>) -> TcpStream {
        SocketStream::from_parts(std::net::TcpStream::from(fd), guard)
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
        let SocketStream { poll, guard, sock } = self;
        drop(poll);
        drop(guard);
        sock.into_inner()
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
}

fn clamp(bytes: usize) -> libc::c_int {
    bytes.min(i32::MAX as usize) as libc::c_int
}
