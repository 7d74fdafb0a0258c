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
//! The registry lives in a thread-local of shard 0's thread, which may host
//! several runtimes one after the other; a marker owned by a task of the
//! current runtime (dropped with the runtime's tasks at shutdown) tells
//! whether the registry belongs to this runtime or is stale.
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
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

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

#[derive(Default)]
struct Registry {
    marker: Weak<()>,
    entries: Vec<Entry>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Keeps the registry marker alive as long as the runtime's tasks live.
async fn keep(marker: Rc<()>) {
    let _marker = marker;
    loop {
        seastar_core::timer::sleep(Duration::from_secs(86_400 * 365)).await;
    }
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
    REGISTRY.with(|r| {
        let mut reg = r.borrow_mut();
        if reg.marker.upgrade().is_none() {
            reg.entries.clear();
            let marker = Rc::new(());
            reg.marker = Rc::downgrade(&marker);
            seastar_core::spawn_local(keep(marker)).detach();
        }
        let pos = reg
            .entries
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
                reg.entries.push(Entry {
                    requested,
                    policy,
                    joined: vec![false; shards],
                    addr,
                    socket: Some(socket),
                    dist,
                });
                reg.entries.len() - 1
            }
        };
        let e = &mut reg.entries[pos];
        e.joined[shard] = true;
        let joined = Joined {
            addr: e.addr,
            socket: if shard == 0 { e.socket.take() } else { None },
            dist: e.dist.clone(),
        };
        if e.joined.iter().all(|&j| j) {
            reg.entries.remove(pos);
        }
        Ok(joined)
    })
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

thread_local! {
    /// This shard's mailboxes, by group id.
    static MAILBOXES: RefCell<HashMap<u64, Rc<Mailbox>>> = RefCell::new(HashMap::new());
}

pub(crate) fn register_mailbox(group: u64) -> Rc<Mailbox> {
    let mb = Rc::new(Mailbox::default());
    MAILBOXES.with(|m| m.borrow_mut().insert(group, mb.clone()));
    mb
}

pub(crate) fn unregister_mailbox(group: u64) {
    MAILBOXES.with(|m| m.borrow_mut().remove(&group));
}

/// Runs on the target shard: queues `fd` for the group's listener there,
/// or closes it if that listener is gone.
pub(crate) fn deliver(group: &DistGroup, shard: usize, fd: OwnedFd, peer: SocketAddr) {
    let mb = MAILBOXES.with(|m| m.borrow().get(&group.id).cloned());
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
    if let Some(mb) = MAILBOXES.with(|m| m.borrow().get(&group).cloned()) {
        mb.close();
    }
}
