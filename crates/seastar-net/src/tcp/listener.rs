//! [`TcpListener`]: per-shard listening sockets, or one distributing
//! acceptor, with connection counters and an accept loop that survives
//! running out of file descriptors.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use seastar_core::{JoinHandle, shard_count, shard_id, smp};

use super::TcpStream;
use super::group::{self, DistGroup, Mailbox};
use super::options::{ListenOptions, Policy};
use crate::fd::Socket;
use crate::stats::Meter;
use crate::sys;

/// First pause after `accept` ran out of file descriptors; doubles up to
/// [`BACKOFF_MAX`] while the shortage lasts.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// At most one shortage warning per shard in this long: under steady
/// overload, shortages end and start again as connections come and go.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Connection counters of one shard's listener.
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_net::{ListenOptions, TcpListener, TcpStream};
/// let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap();
/// let _client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
/// let (conn, _) = l.accept().await.unwrap();
/// assert_eq!(l.stats().accepted, 1);
/// assert_eq!(l.stats().open, 1);
/// assert!(l.stats().oldest_idle.is_some());
/// drop(conn);
/// assert_eq!(l.stats().open, 0);
/// assert_eq!(l.stats().oldest_idle, None);
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStats {
    /// Connections accepted by this shard's listener so far.
    pub accepted: u64,
    /// Connections accepted by it that are still open.
    pub open: u64,
    /// Times `accept` paused because the process or the system ran out of
    /// file descriptors (`EMFILE`/`ENFILE`) or memory.
    pub backoffs: u64,
    /// How long the longest-idle open connection has moved no byte either
    /// way (since it was accepted, if it never did), on the reactor's
    /// coarse clock; `None` with no connection open. See
    /// [`stats`](crate::stats) for how it is kept.
    pub oldest_idle: Option<Duration>,
}

#[derive(Default)]
pub(crate) struct LocalStats {
    accepted: Cell<u64>,
    open: Cell<u64>,
    backoffs: Cell<u64>,
    /// The open connections' meters (each keeps its connection's last
    /// activity).
    conns: RefCell<Slab>,
    /// Inside an fd shortage.
    starved: Cell<bool>,
    /// When the last shortage warning was logged, and the shortages since.
    warned: Cell<Option<(Instant, u64)>>,
}

/// The open connections of a listener: a slab (a slot a connection, 8
/// bytes, reused), no hashing.
#[derive(Default)]
pub(crate) struct Slab {
    all: Vec<Option<Rc<Meter>>>,
    free: Vec<usize>,
}

impl Slab {
    fn insert(&mut self, m: Rc<Meter>) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.all[i] = Some(m);
                i
            }
            None => {
                self.all.push(Some(m));
                self.all.len() - 1
            }
        }
    }

    fn remove(&mut self, i: usize) {
        if self.all.get_mut(i).and_then(Option::take).is_some() {
            self.free.push(i);
        }
    }
}

/// Keeps a connection counted as open until the stream drops.
pub(crate) struct ConnGuard {
    stats: Rc<LocalStats>,
    /// Its place in the listener's `conns`.
    slot: usize,
    meter: Rc<Meter>,
    dist: Option<(Arc<DistGroup>, usize)>,
}

impl fmt::Debug for ConnGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnGuard").finish_non_exhaustive()
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.stats.open.set(self.stats.open.get() - 1);
        self.stats.conns.borrow_mut().remove(self.slot);
        self.meter.closed();
        if let Some((g, shard)) = &self.dist {
            g.close(*shard);
        }
    }
}

/// A listening socket, shut down and closed on drop.
struct ListenSocket {
    /// Keeps a multishot accept armed on io_uring; dropped (cancelling it)
    /// before the socket closes.
    acceptor: seastar_core::io::Acceptor,
    sock: Socket<std::net::TcpListener>,
}

impl ListenSocket {
    fn new(sock: Socket<std::net::TcpListener>) -> ListenSocket {
        ListenSocket {
            acceptor: seastar_core::io::Acceptor::new(sock.fd()),
            sock,
        }
    }

    fn fd(&self) -> RawFd {
        self.sock.fd()
    }
}

impl Drop for ListenSocket {
    fn drop(&mut self) {
        // Ends accepts still pending in the kernel (an io_uring accept keeps
        // the port bound until the ring is torn down otherwise).
        let _ = sys::shutdown(self.fd(), libc::SHUT_RDWR);
    }
}

enum Source {
    /// This shard's own listening socket.
    Socket(Rc<ListenSocket>),
    /// Connections handed over by shard 0's acceptor.
    Mailbox {
        group: Arc<DistGroup>,
        mailbox: Rc<Mailbox>,
        shard: usize,
        /// Shard 0 only: the acceptor task.
        acceptor: Option<JoinHandle<()>>,
    },
}

/// A TCP listener: one per shard, all on the same address.
///
/// Call [`bind`](Self::bind) on every shard that should serve (the usual
/// way is [`invoke_on_all`](seastar_core::smp::invoke_on_all)), then
/// [`accept`](Self::accept) in a loop on each. See [`Policy`] for how
/// connections reach the shards. Port 0 picks one free port for all shards.
///
/// ```
/// use seastar_core::{Runtime, smp};
/// use seastar_net::{ListenOptions, TcpListener, TcpStream};
///
/// Runtime::builder().shards(2).handle_signals(false).build().unwrap().run(async {
///     let addrs = smp::invoke_on_all(|| async {
///         let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
///             .await
///             .unwrap();
///         let addr = l.local_addr().unwrap();
///         seastar_core::spawn_local(async move {
///             while let Ok((conn, _)) = l.accept().await {
///                 drop(conn);
///             }
///         })
///         .detach();
///         addr
///     })
///     .await
///     .unwrap();
///     assert_eq!(addrs[0], addrs[1]); // one port for all shards
///     let _c = TcpStream::connect(addrs[0]).await.unwrap();
/// });
/// ```
pub struct TcpListener {
    source: Source,
    addr: SocketAddr,
    stats: Rc<LocalStats>,
    nodelay: bool,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.addr)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A socket bound to `addr` (not listening yet), with the options set.
fn bound_socket(addr: SocketAddr, opts: &ListenOptions) -> io::Result<OwnedFd> {
    let fd = sys::socket(sys::domain_of(&addr), libc::SOCK_STREAM)?;
    let raw = fd.as_raw_fd();
    if opts.reuse_address {
        sys::set_int(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    }
    sys::set_int(raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    if addr.is_ipv6() {
        sys::set_int(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    sys::bind(&fd, &addr)?;
    Ok(fd)
}

fn listening(fd: OwnedFd, opts: &ListenOptions) -> io::Result<Rc<ListenSocket>> {
    sys::listen(&fd, opts.backlog.min(i32::MAX as u32) as i32)?;
    Ok(Rc::new(ListenSocket::new(Socket::new(
        std::net::TcpListener::from(fd),
    ))))
}

/// The address `fd` is bound to.
fn local_addr_of(fd: OwnedFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let l = std::net::TcpListener::from(fd);
    let addr = l.local_addr()?;
    Ok((l.into(), addr))
}

/// Joins the group for (`addr`, `policy`) from any shard.
async fn join(addr: SocketAddr, opts: &ListenOptions) -> io::Result<group::Joined> {
    let shard = shard_id();
    let policy = opts.policy;
    let o = opts.clone();
    let bind_new = move || local_addr_of(bound_socket(addr, &o)?);
    if shard == 0 {
        return group::join_on_shard0(addr, policy, 0, bind_new);
    }
    smp::submit_to(0, move || async move {
        group::join_on_shard0(addr, policy, shard, bind_new)
    })
    .await
    .map_err(|e| io::Error::other(format!("joining the listener group on shard 0: {e}")))?
}

impl TcpListener {
    /// Binds this shard's listener to `addr` (see [`Policy`]).
    ///
    /// Sets `SO_REUSEADDR` (unless turned off) and `SO_REUSEPORT`. With port
    /// 0, every shard's listener ends up on the port shard 0 got: the n-th
    /// `bind` of an address on one shard pairs with the n-th on the others
    /// (including shard 0, which must bind too).
    pub async fn bind(addr: SocketAddr, opts: ListenOptions) -> io::Result<TcpListener> {
        let stats = Rc::new(LocalStats::default());
        let nodelay = opts.nodelay;
        match opts.policy {
            // Per shard on a known port, or one shard (nothing to share a
            // port with or distribute to): a plain listener.
            p if shard_count() == 1 || (p == Policy::PerShard && addr.port() != 0) => {
                let sock = listening(bound_socket(addr, &opts)?, &opts)?;
                let addr = sock.sock.get().local_addr()?;
                tracing::debug!(shard = shard_id(), %addr, "listening");
                Ok(TcpListener {
                    source: Source::Socket(sock),
                    addr,
                    stats,
                    nodelay,
                })
            }
            Policy::PerShard => {
                let joined = join(addr, &opts).await?;
                let fd = match joined.socket {
                    Some(fd) => fd,
                    None => bound_socket(joined.addr, &opts)?,
                };
                let sock = listening(fd, &opts)?;
                tracing::debug!(shard = shard_id(), addr = %joined.addr, "listening (per shard)");
                Ok(TcpListener {
                    source: Source::Socket(sock),
                    addr: joined.addr,
                    stats,
                    nodelay,
                })
            }
            Policy::Distribute(_) => {
                let joined = join(addr, &opts).await?;
                let group = joined.dist.expect("distributing group");
                let shard = shard_id();
                let mailbox = group::register_mailbox(group.id);
                group.set_alive(shard, true);
                let acceptor = match joined.socket {
                    Some(fd) => {
                        let sock = listening(fd, &opts)?;
                        tracing::debug!(shard, addr = %joined.addr, "listening (distributing)");
                        Some(seastar_core::spawn_local(acceptor(
                            sock,
                            group.clone(),
                            stats.clone(),
                            mailbox.clone(),
                        )))
                    }
                    None => None,
                };
                Ok(TcpListener {
                    source: Source::Mailbox {
                        group,
                        mailbox,
                        shard,
                        acceptor,
                    },
                    addr: joined.addr,
                    stats,
                    nodelay,
                })
            }
        }
    }

    /// Waits for the next connection to this shard.
    ///
    /// Running out of file descriptors (`EMFILE`, `ENFILE`) or socket memory
    /// does not end the accept loop: the listener logs a warning (at most
    /// once per 10 s per shard), pauses on a timer (5 ms, doubling up to 500 ms), and
    /// retries; the connection waits in the kernel's backlog meanwhile.
    /// Errors about a single aborted connection are skipped.
    ///
    /// On a shard other than 0 of a distributing group, `accept` fails with
    /// `NotConnected` once shard 0's listener is closed (its server is
    /// stopping): the normal end of an accept loop, which
    /// [`is_closed_error`](Self::is_closed_error) tells from a failure.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, peer, dist) = match &self.source {
            Source::Socket(sock) => {
                let (fd, peer) = accept_fd(sock, &self.stats).await?;
                (fd, peer, None)
            }
            Source::Mailbox {
                group,
                mailbox,
                shard,
                ..
            } => {
                let (fd, peer) = poll_fn(|cx| mailbox.poll_pop(cx)).await?;
                (fd, peer, Some((group.clone(), *shard)))
            }
        };
        self.stats.accepted.set(self.stats.accepted.get() + 1);
        self.stats.open.set(self.stats.open.get() + 1);
        let mut stream = TcpStream::from_owned(fd, None);
        let meter = stream.sock.meter().clone();
        meter.accepted();
        let slot = self.stats.conns.borrow_mut().insert(meter.clone());
        stream.guard = Some(ConnGuard {
            stats: self.stats.clone(),
            slot,
            meter,
            dist,
        });
        if self.nodelay {
            stream.set_nodelay(true)?;
        }
        Ok((stream, peer))
    }

    /// Whether an [`accept`](Self::accept) error is the listener's normal
    /// end (shard 0 of its distributing group closed its listener) rather
    /// than a failure worth reporting.
    ///
    /// ```
    /// use seastar_net::TcpListener;
    /// use std::io;
    /// assert!(TcpListener::is_closed_error(&io::ErrorKind::NotConnected.into()));
    /// assert!(!TcpListener::is_closed_error(&io::ErrorKind::InvalidInput.into()));
    /// ```
    pub fn is_closed_error(err: &io::Error) -> bool {
        err.kind() == io::ErrorKind::NotConnected
    }

    /// The address every shard's listener of this group is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    /// This shard's connection counters. Gather all shards' with
    /// [`invoke_on_all`](seastar_core::smp::invoke_on_all).
    pub fn stats(&self) -> ListenerStats {
        ListenerStats {
            accepted: self.stats.accepted.get(),
            open: self.stats.open.get(),
            backoffs: self.stats.backoffs.get(),
            oldest_idle: self.oldest_idle(),
        }
    }

    /// The longest a connection of this shard's listener has been idle:
    /// one pass over its open connections (`None` outside a shard, which
    /// has no clock to measure with).
    fn oldest_idle(&self) -> Option<Duration> {
        seastar_core::ShardId::try_current()?;
        let conns = self.stats.conns.borrow();
        let oldest = conns
            .all
            .iter()
            .flatten()
            .filter_map(|m| m.last_active())
            .min()?;
        Some(seastar_core::timer::lowres_now().saturating_duration_since(oldest))
    }
}

// Runs wherever the listener is dropped, possibly outside a shard (e.g. a
// thread-local destroyed after the runtime): no call here needs a shard.
impl Drop for TcpListener {
    fn drop(&mut self) {
        if let Source::Mailbox {
            group,
            mailbox,
            shard,
            acceptor,
        } = &mut self.source
        {
            group.set_alive(*shard, false);
            group::unregister_mailbox(group.id);
            for (fd, _) in mailbox.drain() {
                group.close(*shard);
                seastar_core::io::close(fd);
            }
            // The acceptor tells the other shards when it is dropped.
            if let Some(task) = acceptor.take() {
                task.abort();
            }
        }
    }
}

/// Owned by shard 0's acceptor task: when the task ends or is dropped (on
/// its shard, also at runtime shutdown), wakes the other shards'
/// listeners of the group, whose `accept` then fails with `NotConnected`.
struct CloseOthers {
    group: u64,
}

impl Drop for CloseOthers {
    fn drop(&mut self) {
        for s in 1..shard_count() {
            let id = self.group;
            seastar_core::spawn_local(async move {
                let _ = smp::submit_to(s, move || async move { group::close_mailbox(id) }).await;
            })
            .detach();
        }
    }
}

/// Whether `accept` failed for want of descriptors or memory.
fn is_starvation(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Whether `accept` failed because of one connection, not the listener.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EINTR
                | libc::EPROTO
                | libc::EPERM
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
        )
    )
}

/// Accepts one connection, riding out descriptor shortages.
async fn accept_fd(sock: &ListenSocket, stats: &LocalStats) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut backoff = BACKOFF_MIN;
    loop {
        match sock.acceptor.accept().await {
            Ok(conn) => {
                if stats.starved.replace(false) {
                    tracing::debug!(
                        shard = shard_id(),
                        "accepting again after a descriptor shortage"
                    );
                }
                return Ok(conn);
            }
            Err(e) if is_starvation(&e) => {
                crate::stats::refused();
                stats.backoffs.set(stats.backoffs.get() + 1);
                if !stats.starved.replace(true) {
                    warn_shortage(stats, &e);
                }
                seastar_core::timer::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) if is_transient(&e) => {
                crate::stats::refused();
                tracing::debug!(shard = shard_id(), error = %e, "accept: connection failed early; skipped");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Logs a new shortage, at most once per [`WARN_EVERY`], counting the
/// shortages it did not log.
fn warn_shortage(stats: &LocalStats, e: &io::Error) {
    let now = seastar_core::timer::lowres_now();
    match stats.warned.get() {
        Some((at, quiet)) if now.saturating_duration_since(at) < WARN_EVERY => {
            stats.warned.set(Some((at, quiet + 1)));
        }
        last => {
            let unlogged = last.map_or(0, |(_, quiet)| quiet);
            tracing::warn!(
                shard = shard_id(),
                error = %e,
                unlogged_shortages = unlogged,
                "accept is out of file descriptors or memory; backing off until some are freed \
                 (logged at most every 10 s)"
            );
            stats.warned.set(Some((now, 0)));
        }
    }
}

/// Shard 0's acceptor of a distributing listener.
async fn acceptor(
    sock: Rc<ListenSocket>,
    group: Arc<DistGroup>,
    stats: Rc<LocalStats>,
    mine: Rc<Mailbox>,
) {
    let _close_others = CloseOthers { group: group.id };
    let mut cursor = 0;
    loop {
        let (fd, peer) = match accept_fd(&sock, &stats).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(shard = 0, error = %e, addr = %group.addr, "acceptor stopped");
                mine.close();
                return;
            }
        };
        let target = group.choose(&mut cursor);
        group.open(target);
        if target == 0 {
            mine.push(fd, peer);
            continue;
        }
        let g = group.clone();
        let call = smp::submit_to(target, move || async move {
            group::deliver(&g, target, fd, peer);
        });
        seastar_core::spawn_local(async move {
            if let Err(e) = call.await {
                tracing::warn!(shard = 0, target, error = %e, "handing a connection over failed");
            }
        })
        .detach();
    }
}
