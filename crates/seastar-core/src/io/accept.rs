//! Accepting connections: one-shot [`accept`], and [`Acceptor`], which keeps
//! a multishot accept armed on io_uring.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::addr::RawAddr;
use super::op::multi::MultiOp;
use super::op::{self, Accept, AcceptMulti, Op};
use crate::reactor;

/// Accepts a connection on a listening socket. The new socket is
/// non-blocking and close-on-exec.
///
/// ```
/// # seastar_core::block_on(async {
/// use std::os::fd::AsRawFd;
/// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// l.set_nonblocking(true).unwrap();
/// let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
/// let (_fd, peer) = seastar_core::io::accept(l.as_raw_fd()).await.unwrap();
/// assert!(peer.ip().is_loopback());
/// # });
/// ```
pub async fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let (res, addr) = Op::new(Accept::new(fd)).await;
    let owned = owned(res)?;
    let peer = addr.to_std().unwrap_or_else(|_| unspecified());
    Ok((owned, peer))
}

/// The accepted fd of result `res`.
fn owned(res: isize) -> io::Result<OwnedFd> {
    let newfd = op::result(res)? as RawFd;
    // SAFETY: the kernel returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(newfd) })
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// Accepts connections on one listening socket, for as long as it lives.
///
/// On io_uring it keeps one multishot accept armed: a single submission
/// yields a completion per connection, re-armed only when the kernel ends
/// it (after an error such as `EMFILE`). The peer address is then read
/// with `getpeername` (a multishot accept has no per-connection address
/// buffer). If the kernel refuses multishot accept, the shard falls back to
/// one-shot [`accept`] for good; `SEASTAR_URING_MULTISHOT_ACCEPT=0` in the
/// environment does the same from the start (for measuring it). On epoll,
/// `accept` is `accept4` on readiness.
///
/// Drop the acceptor before closing the socket: dropping cancels the armed
/// accept, and connections that completed meanwhile are closed.
///
/// ```
/// # seastar_core::block_on(async {
/// use std::os::fd::AsRawFd;
/// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// l.set_nonblocking(true).unwrap();
/// let acceptor = seastar_core::io::Acceptor::new(l.as_raw_fd());
/// for _ in 0..2 {
///     let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
///     let (_fd, peer) = acceptor.accept().await.unwrap();
///     assert!(peer.ip().is_loopback());
/// }
/// # });
/// ```
///
/// Bound to the shard that made it:
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// send(seastar_core::io::Acceptor::new(0));
/// ```
pub struct Acceptor {
    fd: RawFd,
    multi: RefCell<MultiOp<AcceptMulti>>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor").field("fd", &self.fd).finish()
    }
}

impl Acceptor {
    /// An acceptor for the non-blocking listening socket `fd` (which must
    /// outlive it).
    pub fn new(fd: RawFd) -> Acceptor {
        Acceptor {
            fd,
            multi: RefCell::new(MultiOp::new(AcceptMulti { fd })),
        }
    }

    /// Waits for the next connection; errors as [`accept`]'s.
    pub async fn accept(&self) -> io::Result<(OwnedFd, SocketAddr)> {
        let Some(res) = poll_fn(|cx| self.multi.borrow_mut().poll_next(cx)).await else {
            // No multishot on this shard: one-shot accepts.
            return accept(self.fd).await;
        };
        let owned = owned(res as isize)?;
        let mut addr = RawAddr::empty();
        let newfd = std::os::fd::AsRawFd::as_raw_fd(&owned);
        // SAFETY: `addr` is a writable socket address buffer of `addr.len` bytes.
        let r = unsafe { libc::getpeername(newfd, addr.as_mut_ptr(), &raw mut addr.len) };
        let peer = if r == 0 { addr.to_std().ok() } else { None };
        Ok((owned, peer.unwrap_or_else(unspecified)))
    }
}

/// The io_uring features of the calling shard's ring, or `None` on the epoll
/// backend. Apps print them at start; benchmarks report them.
///
/// ```
/// # seastar_core::block_on(async {
/// match seastar_core::io::uring_features() {
///     Some(f) => println!("io_uring, deferred task work: {}", f.defer_taskrun),
///     None => println!("epoll"),
/// }
/// # });
/// ```
///
/// # Panics
///
/// Outside a shard.
pub fn uring_features() -> Option<reactor::UringFeatures> {
    reactor::with_uring_features(|f| *f)
}
