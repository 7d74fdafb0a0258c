//! Unix domain stream sockets: [`UnixListener`] and [`UnixStream`].

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::fd::Socket;
use crate::socket_stream::{SocketStream, Unix};
use crate::sys;

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
/// [`TcpStream`](crate::TcpStream) (both are a [`SocketStream`]).
pub type UnixStream = SocketStream<Unix>;

impl SocketStream<Unix> {
    fn from_socket(s: std::os::unix::net::UnixStream) -> UnixStream {
        SocketStream::from_parts(s, None)
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
}
