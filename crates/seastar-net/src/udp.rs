//! [`UdpSocket`]: datagrams with owned buffers.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use seastar_core::io::{IoBuf, IoBufMut};

use crate::fd::Socket;
use crate::{BufResult, sys};

/// A UDP socket on the calling shard.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_net::UdpSocket;
/// let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let (n, _) = a.send_to(b"ping".to_vec(), b.local_addr().unwrap()).await;
/// assert_eq!(n.unwrap(), 4);
/// let (r, buf) = b.recv_from(Vec::with_capacity(64)).await;
/// let (n, from) = r.unwrap();
/// assert_eq!(&buf[..n], b"ping");
/// assert_eq!(from, a.local_addr().unwrap());
/// # });
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    sock: Socket<std::net::UdpSocket>,
}

impl UdpSocket {
    /// A socket bound to `addr` (port 0: any free port).
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let fd = sys::socket(sys::domain_of(&addr), libc::SOCK_DGRAM)?;
        sys::bind(&fd, &addr)?;
        Ok(UdpSocket {
            sock: Socket::new(std::net::UdpSocket::from(fd)),
        })
    }

    /// Wraps a standard-library socket (made non-blocking here).
    pub fn from_std(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        s.set_nonblocking(true)?;
        Ok(UdpSocket {
            sock: Socket::new(s),
        })
    }

    /// Sets the default peer for [`send`](Self::send) and filters
    /// [`recv`](Self::recv) to datagrams from it.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        seastar_core::io::connect(self.fd(), addr).await
    }

    /// Sends `buf` as one datagram to `addr`.
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: SocketAddr) -> BufResult<usize, B> {
        let (r, buf) = seastar_core::io::send_to(self.fd(), buf, addr).await;
        self.sock.meter().sent_result(&r);
        (r, buf)
    }

    /// Receives one datagram into `buf` (from its start, up to its
    /// capacity; the rest of a longer datagram is lost); returns its length
    /// and sender.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let (r, buf) = seastar_core::io::recv_from(self.fd(), buf).await;
        if let Ok((n, _)) = &r {
            self.sock.meter().received(*n);
        }
        (r, buf)
    }

    /// Sends `buf` as one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        crate::fd::send(self.sock.io(), buf).await
    }

    /// Receives one datagram from the connected peer.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        crate::fd::recv(self.sock.io(), buf).await
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().peer_addr()
    }

    /// Allows sending to broadcast addresses.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.sock.get().set_broadcast(on)
    }

    fn fd(&self) -> RawFd {
        self.sock.fd()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd()
    }
}
