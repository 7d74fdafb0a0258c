//! This shard's network counters: connections and bytes.
//!
//! Kept in the shard's slots ([`seastar_core::shard_local`]), so each
//! runtime starts from zero, and bumped through the socket: every socket
//! holds a `Meter` with a pointer to them, so counting the bytes of an
//! I/O call is a load, an add and a store, no lookup and no atomic.
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
//! A send behind ([`SocketStream::send_behind`](crate::SocketStream::send_behind),
//! and the poll-style writes) counts its buffer as it starts: it holds no
//! reference to the socket, so a send that then fails counts bytes it did
//! not send. The other writes count what the kernel took.
//!
//! # Idle connections
//!
//! Each accepted connection's `Meter` also keeps when it last moved bytes
//! either way: the same calls that count bytes store the reactor's coarse
//! clock ([`lowres_now`](seastar_core::timer::lowres_now): the loop
//! iteration's cached reading, no syscall) in the socket itself, one store
//! per I/O call. A listener walks its open connections and takes the oldest
//! of their times only when asked
//! ([`ListenerStats::oldest_idle`](crate::ListenerStats::oldest_idle)), so
//! the figure costs nothing between reads. Under a manual clock it is
//! measured on the manual time. (An earlier version kept the times in a
//! per-descriptor table in a thread-local: about 100 instructions per
//! request and reply, callgrind on memcached.)

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use seastar_core::shard_local::{self, SlotKey};

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

/// A shard's counters, in its slots.
#[derive(Default)]
pub(crate) struct Counters {
    accepted: Cell<u64>,
    open: Cell<i64>,
    refused: Cell<u64>,
    received: Cell<u64>,
    sent: Cell<u64>,
}

/// The calling shard's counters; off a shard, a detached set nobody reads.
fn counters() -> Rc<Counters> {
    if seastar_core::ShardId::try_current().is_none() {
        return Rc::default();
    }
    shard_local::get_or_init(SlotKey::SINGLETON, Counters::default)
}

/// The calling shard's counters (all zero on a shard that did no I/O, and
/// outside a shard).
pub fn local() -> NetStats {
    if seastar_core::ShardId::try_current().is_none() {
        return NetStats::default();
    }
    let Some(l) = shard_local::get::<Counters>(SlotKey::SINGLETON) else {
        return NetStats::default();
    };
    NetStats {
        accepted: l.accepted.get(),
        open: l.open.get(),
        refused: l.refused.get(),
        bytes_received: l.received.get(),
        bytes_sent: l.sent.get(),
    }
}

/// `accept` failed for want of resources, or a connection died before it.
pub(crate) fn refused() {
    let c = counters();
    c.refused.set(c.refused.get().wrapping_add(1));
}

/// One socket's share of the counters: where its I/O calls count bytes,
/// and, for an accepted connection, when it last moved any (see the
/// module doc). Made with the socket, on its shard.
pub(crate) struct Meter {
    shard: Rc<Counters>,
    /// When the connection last moved bytes (or was accepted); `None`: not
    /// an accepted connection that is followed.
    last_active: Cell<Option<Instant>>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("last_active", &self.last_active.get())
            .finish_non_exhaustive()
    }
}

impl Meter {
    /// A meter counting into the calling shard's counters.
    pub(crate) fn new() -> Rc<Meter> {
        Rc::new(Meter {
            shard: counters(),
            last_active: Cell::new(None),
        })
    }

    /// `n` bytes were read.
    #[inline]
    pub(crate) fn received(&self, n: usize) {
        let c = &self.shard.received;
        c.set(c.get().wrapping_add(n as u64));
        self.touch();
    }

    /// `n` bytes were written.
    #[inline]
    pub(crate) fn sent(&self, n: usize) {
        let c = &self.shard.sent;
        c.set(c.get().wrapping_add(n as u64));
        self.touch();
    }

    /// `r` bytes were read (when `r` is a success).
    #[inline]
    pub(crate) fn received_result(&self, r: &std::io::Result<usize>) {
        if let Ok(n) = r {
            self.received(*n);
        }
    }

    /// `r` bytes were written (when `r` is a success).
    #[inline]
    pub(crate) fn sent_result(&self, r: &std::io::Result<usize>) {
        if let Ok(n) = r {
            self.sent(*n);
        }
    }

    /// The connection moved bytes now (if it is followed): one load of the
    /// coarse clock, one store.
    #[inline]
    fn touch(&self) {
        if self.last_active.get().is_some() {
            self.last_active
                .set(Some(seastar_core::timer::lowres_now()));
        }
    }

    /// Counts this socket's connection, accepted on this shard now, and
    /// starts following its activity.
    pub(crate) fn accepted(&self) {
        let c = &self.shard;
        c.accepted.set(c.accepted.get().wrapping_add(1));
        c.open.set(c.open.get().wrapping_add(1));
        self.last_active
            .set(Some(seastar_core::timer::lowres_now()));
    }

    /// The accepted connection is closing: stops following it.
    pub(crate) fn closed(&self) {
        let c = &self.shard;
        c.open.set(c.open.get().wrapping_sub(1));
        self.last_active.set(None);
    }

    /// When the followed connection last moved bytes (or was accepted).
    pub(crate) fn last_active(&self) -> Option<Instant> {
        self.last_active.get()
    }
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
