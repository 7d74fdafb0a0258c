//! How the shards' listeners of one address find each other.
//!
//! # Port 0 and listener groups
//!
//! [`TcpListener::bind`](super::TcpListener::bind) runs on every shard, but
//! all shards must end up on one port, also when the caller asked for port
//! 0 (any free port). Shard 0 keeps a *registry* of groups being formed,
//! keyed by the requested address and the policy. A shard joining binds
//! into the oldest group of its key that it has not joined yet, creating
//! the group if there is none; so the n-th `bind` of an address on one
//! shard meets the n-th `bind` of it on every other shard, whatever order
//! the shards run in. Creating a group binds shard 0's socket (not yet
//! listening) to learn the concrete port; shard 0's own `bind` takes that
//! socket and listens on it, the other shards bind their own sockets to
//! the concrete address (`SO_REUSEPORT`) or, for
//! [`Policy::Distribute`](super::Policy::Distribute), receive connections
//! from shard 0's acceptor. A group leaves the registry once every shard
//! has joined it. Other shards reach the registry with
//! [`submit_to`](seastar_core::smp::submit_to).
//!
//! The registry lives in shard 0's [`shard_local`] slots, so it belongs to
//! that shard of that runtime and dies with it (a thread hosts several
//! runtimes one after the other; a thread-local would be shared by them).
//!
//! # Distribution
//!
//! A [`DistGroup`] is shared by the shards of one distributing listener:
//! per shard, whether it has a live listener and how many connections it
//! has open (counted up by the acceptor when it hands a connection over,
//! down by the connection's drop on its shard). These are the only atomics
//! on the connection path, touched once per connection, never per byte.
//! Accepted sockets travel to their shard as `OwnedFd`s inside a
//! `submit_to` call and land in that shard's [`Mailbox`] for the group.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use seastar_core::shard_local::{self, SlotKey};

use super::options::{Balance, Policy};

/// What a shard gets from joining a group.
pub(crate) struct Joined {
    /// The concrete address of the group.
    pub(crate) addr: SocketAddr,
    /// Shard 0's socket, bound and not listening (shard 0 only).
    pub(crate) socket: Option<OwnedFd>,
    /// The distribution state ([`Policy::Distribute`] only).
    pub(crate) dist: Option<Arc<DistGroup>>,
}

struct Entry {
    requested: SocketAddr,
    policy: Policy,
    joined: Vec<bool>,
    addr: SocketAddr,
    socket: Option<OwnedFd>,
    dist: Option<Arc<DistGroup>>,
}

/// Shard 0's groups being formed (in its `shard_local` slots).
#[derive(Default)]
struct Registry {
    entries: RefCell<Vec<Entry>>,
}

/// Joins `shard` to the group for (`requested`, `policy`). Runs on shard 0.
/// `bind_new` creates shard 0's bound socket when a group is created.
pub(crate) fn join_on_shard0(
    requested: SocketAddr,
    policy: Policy,
    shard: usize,
    bind_new: impl FnOnce() -> io::Result<(OwnedFd, SocketAddr)>,
) -> io::Result<Joined> {
    let shards = seastar_core::shard_count();
    let registry = shard_local::get_or_init(SlotKey::SINGLETON, Registry::default);
    {
        let mut entries = registry.entries.borrow_mut();
        let pos = entries
            .iter()
            .position(|e| e.requested == requested && e.policy == policy && !e.joined[shard]);
        let pos = match pos {
            Some(p) => p,
            None => {
                let (socket, addr) = bind_new()?;
                let dist = match policy {
                    Policy::PerShard => None,
                    Policy::Distribute(balance) => {
                        Some(Arc::new(DistGroup::new(addr, balance, shards)))
                    }
                };
                entries.push(Entry {
                    requested,
                    policy,
                    joined: vec![false; shards],
                    addr,
                    socket: Some(socket),
                    dist,
                });
                entries.len() - 1
            }
        };
        let e = &mut entries[pos];
        e.joined[shard] = true;
        let joined = Joined {
            addr: e.addr,
            socket: if shard == 0 { e.socket.take() } else { None },
            dist: e.dist.clone(),
        };
        if e.joined.iter().all(|&j| j) {
            entries.remove(pos);
        }
        Ok(joined)
    }
}

/// Per-shard state of a distributing listener, on its own cache line.
#[repr(align(64))]
#[derive(Default)]
struct Slot {
    alive: AtomicBool,
    open: AtomicUsize,
}

/// State shared by the shards of one distributing listener.
pub(crate) struct DistGroup {
    pub(crate) id: u64,
    pub(crate) addr: SocketAddr,
    balance: Balance,
    slots: Box<[Slot]>,
}

static NEXT_GROUP: AtomicU64 = AtomicU64::new(1);

impl DistGroup {
    fn new(addr: SocketAddr, balance: Balance, shards: usize) -> DistGroup {
        DistGroup {
            id: NEXT_GROUP.fetch_add(1, Ordering::Relaxed),
            addr,
            balance,
            slots: (0..shards).map(|_| Slot::default()).collect(),
        }
    }

    pub(crate) fn set_alive(&self, shard: usize, alive: bool) {
        self.slots[shard].alive.store(alive, Ordering::Release);
    }

    pub(crate) fn is_alive(&self, shard: usize) -> bool {
        self.slots[shard].alive.load(Ordering::Acquire)
    }

    /// Counts a connection handed to `shard`.
    pub(crate) fn open(&self, shard: usize) {
        self.slots[shard].open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection of `shard` closed.
    pub(crate) fn close(&self, shard: usize) {
        self.slots[shard].open.fetch_sub(1, Ordering::Relaxed);
    }

    /// The shard for the next connection, among the live ones; `cursor`
    /// is the acceptor's round-robin position.
    pub(crate) fn choose(&self, cursor: &mut usize) -> usize {
        let n = self.slots.len();
        let mut best: Option<(usize, usize)> = None;
        for i in 0..n {
            let s = (*cursor + i) % n;
            if !self.is_alive(s) {
                continue;
            }
            let load = self.slots[s].open.load(Ordering::Relaxed);
            match self.balance {
                Balance::RoundRobin => {
                    best = Some((s, load));
                    break;
                }
                Balance::LeastConnections => {
                    if best.is_none_or(|(_, l)| load < l) {
                        best = Some((s, load));
                    }
                }
            }
        }
        let shard = best.map_or(0, |(s, _)| s);
        *cursor = (shard + 1) % n;
        shard
    }
}

/// Connections handed to one shard's listener of a distributing group.
#[derive(Default)]
pub(crate) struct Mailbox {
    queue: RefCell<VecDeque<(OwnedFd, SocketAddr)>>,
    waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
}

impl Mailbox {
    pub(crate) fn push(&self, fd: OwnedFd, peer: SocketAddr) {
        self.queue.borrow_mut().push_back((fd, peer));
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Ends the mailbox: pending and later `accept`s fail.
    pub(crate) fn close(&self) {
        self.closed.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<io::Result<(OwnedFd, SocketAddr)>> {
        if let Some(c) = self.queue.borrow_mut().pop_front() {
            return Poll::Ready(Ok(c));
        }
        if self.closed.get() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the distributing listener on shard 0 was closed",
            )));
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Takes every queued connection (to close them).
    pub(crate) fn drain(&self) -> Vec<(OwnedFd, SocketAddr)> {
        self.queue.borrow_mut().drain(..).collect()
    }
}

/// This shard's mailboxes, by group id (in its `shard_local` slots).
#[derive(Default)]
struct Mailboxes(RefCell<HashMap<u64, Rc<Mailbox>>>);

fn with_mailboxes<R>(f: impl FnOnce(&mut HashMap<u64, Rc<Mailbox>>) -> R) -> R {
    let boxes = shard_local::get_or_init(SlotKey::SINGLETON, Mailboxes::default);
    let mut map = boxes.0.borrow_mut();
    f(&mut map)
}

pub(crate) fn register_mailbox(group: u64) -> Rc<Mailbox> {
    let mb = Rc::new(Mailbox::default());
    with_mailboxes(|m| m.insert(group, mb.clone()));
    mb
}

pub(crate) fn unregister_mailbox(group: u64) {
    // A listener dropped after its runtime ended has no slots to leave.
    if seastar_core::ShardId::try_current().is_some() {
        with_mailboxes(|m| m.remove(&group));
    }
}

/// Runs on the target shard: queues `fd` for the group's listener there,
/// or closes it if that listener is gone.
pub(crate) fn deliver(group: &DistGroup, shard: usize, fd: OwnedFd, peer: SocketAddr) {
    let mb = with_mailboxes(|m| m.get(&group.id).cloned());
    match mb {
        Some(mb) => mb.push(fd, peer),
        None => {
            group.close(shard);
            seastar_core::io::close(fd);
        }
    }
}

/// Runs on a shard when shard 0's listener closes.
pub(crate) fn close_mailbox(group: u64) {
    if let Some(mb) = with_mailboxes(|m| m.get(&group).cloned()) {
        mb.close();
    }
}
