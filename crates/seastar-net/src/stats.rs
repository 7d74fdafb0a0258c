//! This shard's network counters: connections and bytes.
//!
//! Plain thread-local `Cell`s bumped by the accept loop and the socket I/O
//! calls: a load, an add and a store on this thread's memory, no atomic.
//! [`local`] reads them on the calling shard; with the `metrics` feature
//! they are also exported (per shard, read there by message passing) as:
//!
//! | name | type | what |
//! |---|---|---|
//! | `seastar_net_connections_accepted_total` | counter | TCP connections accepted by this shard's listeners |
//! | `seastar_net_connections_open` | gauge | of those, still open |
//! | `seastar_net_connections_refused_total` | counter | accept failures: out of descriptors or memory (each back-off), or a connection aborted before it was accepted |
//! | `seastar_net_bytes_received_total` | counter | bytes read from sockets (TCP, Unix, UDP) |
//! | `seastar_net_bytes_sent_total` | counter | bytes written to sockets |
//!
//! # Idle connections
//!
//! Each shard also keeps, per accepted connection (indexed by its file
//! descriptor), when it last moved bytes either way: the same calls that
//! count bytes store the reactor's coarse clock
//! ([`lowres_now`](seastar_core::timer::lowres_now): a thread-local load,
//! no syscall) there, one store per I/O call. A listener reads the oldest
//! of its open connections' times when asked
//! ([`ListenerStats::oldest_idle`](crate::ListenerStats::oldest_idle)), so
//! the figure costs nothing between reads. Under a manual clock it is
//! measured on the manual time.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::time::Instant;

/// A shard's network counters, from [`local`].
///
/// ```
/// # seastar_core::block_on(async {
/// use seastar_net::{ListenOptions, TcpListener, TcpStream, stats};
/// let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).await.unwrap();
/// let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
/// let (conn, _) = l.accept().await.unwrap();
/// client.write_all(b"hello".to_vec()).await.0.unwrap();
/// let before = stats::local().bytes_received;
/// let (n, _) = conn.read(vec![0; 16]).await;
/// assert_eq!(n.unwrap(), 5);
/// assert_eq!(stats::local().bytes_received - before, 5);
/// assert!(stats::local().accepted >= 1);
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetStats {
    /// TCP connections accepted on this shard.
    pub accepted: u64,
    /// Accepted connections still open (dropped elsewhere: may go below 0).
    pub open: i64,
    /// Accept failures (descriptor or memory shortage back-offs, aborted
    /// connections).
    pub refused: u64,
    /// Bytes read from sockets on this shard.
    pub bytes_received: u64,
    /// Bytes written to sockets on this shard.
    pub bytes_sent: u64,
}

struct Local {
    accepted: Cell<u64>,
    open: Cell<i64>,
    refused: Cell<u64>,
    received: Cell<u64>,
    sent: Cell<u64>,
    /// Per file descriptor: when an accepted connection last moved bytes
    /// (`None`: not an accepted connection of this shard).
    last_active: RefCell<Vec<Cell<Option<Instant>>>>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            accepted: Cell::new(0),
            open: Cell::new(0),
            refused: Cell::new(0),
            received: Cell::new(0),
            sent: Cell::new(0),
            last_active: RefCell::new(Vec::new()),
        }
    };
}

/// The calling thread's counters (all zero on a thread that did no I/O).
pub fn local() -> NetStats {
    LOCAL
        .try_with(|l| NetStats {
            accepted: l.accepted.get(),
            open: l.open.get(),
            refused: l.refused.get(),
            bytes_received: l.received.get(),
            bytes_sent: l.sent.get(),
        })
        .unwrap_or_default()
}

#[inline]
fn bump<T: Copy>(f: impl FnOnce(&Local) -> (&Cell<T>, T), add: impl FnOnce(T, T) -> T) {
    let _ = LOCAL.try_with(|l| {
        let (c, n) = f(l);
        c.set(add(c.get(), n));
    });
}

/// A connection was accepted (and is open).
pub(crate) fn accepted() {
    bump(|l| (&l.accepted, 1), u64::wrapping_add);
    bump(|l| (&l.open, 1), i64::wrapping_add);
}

/// An accepted connection closed.
pub(crate) fn closed() {
    bump(|l| (&l.open, 1), i64::wrapping_sub);
}

/// `accept` failed for want of resources, or a connection died before it.
pub(crate) fn refused() {
    bump(|l| (&l.refused, 1), u64::wrapping_add);
}

/// Connection `fd` moved bytes now (if it is followed: see the module
/// doc). One store of the coarse clock.
#[inline]
fn touch(l: &Local, fd: RawFd) {
    if let Some(c) = l.last_active.borrow().get(fd as usize) {
        if c.get().is_some() {
            c.set(Some(seastar_core::timer::lowres_now()));
        }
    }
}

/// `r` bytes were read from `fd` (when `r` is a success).
#[inline]
pub(crate) fn received(fd: RawFd, r: &std::io::Result<usize>) {
    if let Ok(n) = r {
        received_bytes(fd, *n);
    }
}

/// `n` bytes were read from `fd`.
#[inline]
pub(crate) fn received_bytes(fd: RawFd, n: usize) {
    let _ = LOCAL.try_with(|l| {
        l.received.set(l.received.get().wrapping_add(n as u64));
        touch(l, fd);
    });
}

/// `r` bytes were written to `fd` (when `r` is a success).
#[inline]
pub(crate) fn sent(fd: RawFd, r: &std::io::Result<usize>) {
    if let Ok(n) = r {
        let _ = LOCAL.try_with(|l| {
            l.sent.set(l.sent.get().wrapping_add(*n as u64));
            touch(l, fd);
        });
    }
}

/// Starts following the activity of connection `fd`, accepted on this
/// shard now.
pub(crate) fn follow(fd: RawFd) {
    let Ok(i) = usize::try_from(fd) else { return };
    let now = seastar_core::timer::lowres_now();
    let _ = LOCAL.try_with(|l| {
        let mut t = l.last_active.borrow_mut();
        if t.len() <= i {
            t.resize(i + 1, Cell::new(None));
        }
        t[i].set(Some(now));
    });
}

/// Stops following connection `fd` (it is closing).
pub(crate) fn unfollow(fd: RawFd) {
    let _ = LOCAL.try_with(|l| {
        if let Some(c) = l.last_active.borrow().get(fd as usize) {
            c.set(None);
        }
    });
}

/// When followed connection `fd` last moved bytes (or was accepted).
pub(crate) fn last_active(fd: RawFd) -> Option<Instant> {
    LOCAL
        .try_with(|l| l.last_active.borrow().get(fd as usize).and_then(Cell::get))
        .ok()
        .flatten()
}

/// Registers the exporter of these counters (once per process).
#[cfg(feature = "metrics")]
pub(crate) fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| seastar_core::metrics::register_collector("seastar-net", collect));
}

#[cfg(not(feature = "metrics"))]
pub(crate) fn register() {}

#[cfg(feature = "metrics")]
fn collect(c: &mut seastar_core::metrics::Collector<'_>) {
    let s = local();
    c.counter(
        "seastar_net_connections_accepted_total",
        "TCP connections accepted by this shard's listeners.",
        &[],
        s.accepted,
    );
    c.gauge(
        "seastar_net_connections_open",
        "Accepted TCP connections still open.",
        &[],
        s.open as f64,
    );
    c.counter(
        "seastar_net_connections_refused_total",
        "Accept failures: descriptor or memory shortage back-offs, connections aborted before accept.",
        &[],
        s.refused,
    );
    c.counter(
        "seastar_net_bytes_received_total",
        "Bytes read from sockets.",
        &[],
        s.bytes_received,
    );
    c.counter(
        "seastar_net_bytes_sent_total",
        "Bytes written to sockets.",
        &[],
        s.bytes_sent,
    );
}
