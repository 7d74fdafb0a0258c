//! Accepting connections: one-shot [`accept`], and [`Acceptor`], which keeps
//! a multishot accept armed on io_uring.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll};

use io_uring::{opcode, types};

use super::addr::RawAddr;
use super::multi::MultiOp;
use super::op::{Op, cqe_result, ready, retry};
use crate::BackendKind;
use crate::reactor::{self, Driver, Interest};

const FLAGS: i32 = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;

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
    let (res, addr) = match reactor::backend() {
        BackendKind::IoUring => loop {
            let mut addr = Box::new(RawAddr::empty());
            let entry = opcode::Accept::new(types::Fd(fd), addr.as_mut_ptr(), &raw mut addr.len)
                .flags(FLAGS)
                .build();
            // SAFETY: the address and its length live in the box the Op owns.
            let op = unsafe { Op::submit(entry, addr) }.on_orphan(close_orphan);
            let (res, addr) = op.await;
            if res == -libc::EAGAIN {
                ready(fd, Interest::Read).await?;
                continue;
            }
            break (cqe_result(res), addr);
        },
        BackendKind::Epoll => {
            let mut addr = Box::new(RawAddr::empty());
            let (p, l) = (addr.as_mut_ptr(), &raw mut addr.len);
            let res = retry(fd, Interest::Read, || {
                // SAFETY: `p` and `l` point into the live box `addr`.
                unsafe { libc::accept4(fd, p, l, FLAGS) as isize }
            })
            .await;
            (res, addr)
        }
    };
    let newfd = res? as RawFd;
    // SAFETY: the kernel returned a new fd that nobody else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(newfd) };
    let peer = addr
        .to_std()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    Ok((owned, peer))
}

/// Closes the connection an abandoned accept produced.
pub(super) fn close_orphan(res: i32) {
    if res >= 0 {
        // SAFETY: the kernel handed us this new fd and nobody else knows it.
        unsafe { libc::close(res) };
    }
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
#[derive(Debug)]
pub struct Acceptor {
    fd: RawFd,
    armed: RefCell<Option<MultiOpHandle>>,
}

/// `MultiOp` has no `Debug`; the acceptor shows only whether one is armed.
struct MultiOpHandle(MultiOp);

impl std::fmt::Debug for MultiOpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MultishotAccept")
    }
}

impl Acceptor {
    /// An acceptor for the non-blocking listening socket `fd` (which must
    /// outlive it).
    pub fn new(fd: RawFd) -> Acceptor {
        Acceptor {
            fd,
            armed: RefCell::new(None),
        }
    }

    /// Waits for the next connection; errors as [`accept`]'s.
    pub async fn accept(&self) -> io::Result<(OwnedFd, SocketAddr)> {
        if !multishot_enabled() {
            return accept(self.fd).await;
        }
        let res = poll_fn(|cx| self.poll_multishot(cx)).await;
        if res == -libc::EINVAL {
            // Refused (an old kernel): one-shot accepts from now on.
            disable_multishot();
            tracing::debug!(
                shard = crate::shard_id(),
                "multishot accept refused; using one-shot accept"
            );
            return accept(self.fd).await;
        }
        let newfd = cqe_result(res)? as RawFd;
        // SAFETY: the kernel returned a new fd that nobody else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(newfd) };
        let mut addr = RawAddr::empty();
        // SAFETY: `addr` is a writable socket address buffer of `addr.len` bytes.
        let r = unsafe { libc::getpeername(newfd, addr.as_mut_ptr(), &raw mut addr.len) };
        let peer = if r == 0 { addr.to_std().ok() } else { None };
        Ok((
            owned,
            peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        ))
    }

    /// The next multishot result, arming (or re-arming) the accept first.
    fn poll_multishot(&self, cx: &mut Context<'_>) -> Poll<i32> {
        let mut armed = self.armed.borrow_mut();
        loop {
            let op = armed.get_or_insert_with(|| {
                let entry = opcode::AcceptMulti::new(types::Fd(self.fd))
                    .flags(FLAGS)
                    .build();
                // SAFETY: a multishot accept without an address buffer
                // references no memory.
                MultiOpHandle(unsafe { MultiOp::submit(entry, close_orphan) })
            });
            match op.0.poll_next(cx) {
                Poll::Ready(Some(res)) => return Poll::Ready(res),
                // Ended by the kernel with every result taken: re-arm.
                Poll::Ready(None) => *armed = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn multishot_enabled() -> bool {
    reactor::with_uring_features(|f| f.multishot_accept).unwrap_or(false)
}

fn disable_multishot() {
    reactor::with_uring_features(|f| f.multishot_accept = false);
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
    reactor::with(|s| match &*s.driver.borrow() {
        Driver::Uring(u) => Some(u.features),
        Driver::Epoll(_) => None,
    })
}
