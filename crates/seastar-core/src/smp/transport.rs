//! The cross-shard transport of one shard: its ends of the SPSC rings, the
//! batching and publishing of outgoing messages, back-pressure, and the
//! draining of incoming messages (see the [module doc](super) for the
//! design and the measurements behind it).
//!
//! The reactor loop owns one [`Transport`] per shard and calls it at fixed
//! points of each iteration: [`drain`](Transport::drain) with the remote
//! inbox, [`next_call`](Transport::next_call) at the start of the task
//! batch, [`flush`](Transport::flush) after it, [`close`](Transport::close)
//! and [`drain_for_shutdown`](Transport::drain_for_shutdown) when the shard
//! stops. Everything else reaches it through the shard.
//!
//! Layering: this file and `call/`, `ring.rs`, `pool.rs` sit *below* the
//! reactor (it uses them; they name no reactor item but the leaf modules
//! `reactor::remote` and `reactor::stats`), while `smp/mod.rs`
//! ([`submit_to`](super::submit_to) and friends) sits above it and finds
//! the calling shard's transport through the reactor.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::Waker;

use super::call;
use super::call_msg::{CallMsg, Op};
use super::ring::{self, Consumer, Producer};
use crate::reactor::remote::{Notify, Remote};
use crate::reactor::stats::{self, ReactorStats};

/// A task ready to run (the reactor's `Runnable`).
pub(crate) type Task = crate::reactor::Runnable;

/// How a shard's tasks are scheduled from any thread (the reactor's
/// schedule function for that shard); the drivers of cross-shard calls use
/// it.
pub(crate) type Scheduler = Arc<dyn Fn(Task) + Send + Sync>;

/// Messages queued for one shard that are published at once, without
/// waiting for the end of the task batch.
const PUBLISH_BATCH: usize = 32;

/// What travels through a ring between two shards.
pub(crate) enum Message {
    /// A task of the destination shard woken elsewhere.
    Task(Task),
    /// A step of a cross-shard call (`call/`, `call_msg.rs`).
    Call(CallMsg),
}

// Three words (a task fits beside the call message's non-null cell
// pointer, which tells the two apart): with its stamp a message fills a
// ring slot's 32 bytes (`ring.rs`), two slots to a cache line.
const _: () = assert!(std::mem::size_of::<Message>() <= 24);

/// Wakes a shard (its remote inbox's signal).
pub(crate) trait Signal: Send + Sync {
    /// Wakes the shard if it sleeps, or makes its next sleep return at once.
    fn signal(&self);

    /// After publishing into a ring towards the shard: wakes it only if it
    /// sleeps, since an awake shard looks at its rings anyway (the
    /// handshake is in `reactor/remote.rs`).
    fn signal_if_sleeping(&self);
}

impl<T: Send, N: Notify + Send + Sync> Signal for Remote<T, N> {
    fn signal(&self) {
        Remote::signal(self)
    }

    fn signal_if_sleeping(&self) {
        Remote::signal_if_sleeping(self)
    }
}

/// One shard's ends of the rings: `to[d]` produces into the ring towards
/// shard `d`, `from[s]` consumes the ring from shard `s` (`None` for the
/// shard itself).
pub(crate) struct Links {
    to: Vec<Option<Producer<Message>>>,
    from: Vec<Option<Consumer<Message>>>,
    capacity: usize,
}

/// The rings of a runtime, one per ordered pair of shards, until each
/// shard takes its [`Links`].
pub(crate) struct Mesh {
    links: Mutex<Vec<Option<Links>>>,
}

impl Mesh {
    /// Rings of at least `capacity` messages between every two of `n` shards.
    pub(crate) fn new(n: usize, capacity: usize) -> Mesh {
        let capacity = capacity.max(2).next_power_of_two();
        let mut links: Vec<Links> = (0..n)
            .map(|_| Links {
                to: (0..n).map(|_| None).collect(),
                from: (0..n).map(|_| None).collect(),
                capacity,
            })
            .collect();
        for from in 0..n {
            for to in (0..n).filter(|&t| t != from) {
                let (p, c) = ring::channel(capacity);
                links[from].to[to] = Some(p);
                links[to].from[from] = Some(c);
            }
        }
        Mesh {
            links: Mutex::new(links.into_iter().map(Some).collect()),
        }
    }

    /// Shard `id`'s ends of the rings.
    ///
    /// # Panics
    ///
    /// If they were taken already.
    pub(crate) fn take(&self, id: usize) -> Links {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        links[id].take().expect("each shard takes its links once")
    }
}

/// A cross-shard call step received from shard `.1`, to run in the task
/// batch.
pub(crate) struct Incoming(CallMsg, usize);

impl Incoming {
    /// The call's scheduling group if this step runs user code (a start;
    /// an inline one is always in the default group, see `call/`).
    pub(crate) fn starts(&self) -> Option<usize> {
        match self.0.op() {
            Op::Start => Some(self.0.call().group()),
            Op::StartInline => Some(0),
            _ => None,
        }
    }

    /// Handles the step.
    pub(crate) fn run(self, t: &Transport) {
        call::deliver(self.0.open(), self.1, t)
    }
}

/// One shard's side of the cross-shard transport. Shard-local (`!Sync`).
pub(crate) struct Transport {
    id: usize,
    /// Producer ends, per destination. Borrowed by one push or publish at a
    /// time (a push never re-enters the transport).
    to: RefCell<Vec<Option<Producer<Message>>>>,
    /// Consumer ends, per source. Borrowed by one drain at a time.
    from: RefCell<Vec<Option<Consumer<Message>>>>,
    /// Messages for other shards (tasks woken here, cross-shard call
    /// steps) that did not fit their ring yet; per destination shard.
    outgoing: RefCell<Vec<VecDeque<Message>>>,
    /// Cross-shard call steps received to run here, handled at the start
    /// of the task batch. (Popping the rings empty first, rather than
    /// running each call as it is popped, gives the producer its room back
    /// at once: measured 75 against 130 ns per call with 1024 in flight.)
    calls: RefCell<VecDeque<Incoming>>,
    outgoing_dirty: Cell<bool>,
    /// Cross-shard messages were sent or received since the last
    /// [`take_activity`](Self::take_activity).
    activity: Cell<bool>,
    /// Tasks waiting for a destination's backlog to drain (back-pressure).
    space_waiters: RefCell<Vec<Vec<Waker>>>,
    /// Calls queued towards one shard beyond what its ring holds, before
    /// `submit_to` makes callers wait: a few rings' worth, so a burst keeps
    /// flowing while the target drains, yet memory stays bounded when the
    /// target falls behind.
    backlog_limit: usize,
    /// Every shard's wake signal, by shard index.
    signals: Vec<Arc<dyn Signal>>,
    /// This shard's schedule function.
    scheduler: Scheduler,
    /// The shard's counters (messages sent, rings found full, waits).
    stats: Rc<ReactorStats>,
    /// Set when the shard stopped: nothing is sent any more.
    closed: Cell<bool>,
    /// The other shards never sleep (poll mode): publishing needs no look
    /// at their sleeping flags (nor the fence before it).
    peers_poll: bool,
}

impl Drop for Transport {
    /// A transport dropped without [`close`](Transport::close) (its shard's
    /// thread unwound) leaks what it holds for other shards, as `close`
    /// does: their tasks may only be dropped on their own shard.
    fn drop(&mut self) {
        for pending in self.outgoing.get_mut().iter_mut() {
            pending.drain(..).for_each(std::mem::forget);
        }
    }
}

impl Transport {
    /// Shard `id`'s transport over `links`, signalling shards through
    /// `signals`, scheduling its own tasks with `scheduler` and counting
    /// in `stats`.
    pub(crate) fn new(
        id: usize,
        links: Links,
        signals: Vec<Arc<dyn Signal>>,
        scheduler: Scheduler,
        stats: Rc<ReactorStats>,
    ) -> Transport {
        let n = links.to.len();
        Transport {
            id,
            backlog_limit: links.capacity * 8,
            to: RefCell::new(links.to),
            from: RefCell::new(links.from),
            outgoing: RefCell::new((0..n).map(|_| VecDeque::new()).collect()),
            calls: RefCell::new(VecDeque::new()),
            outgoing_dirty: Cell::new(false),
            activity: Cell::new(false),
            space_waiters: RefCell::new((0..n).map(|_| Vec::new()).collect()),
            signals,
            scheduler,
            stats,
            closed: Cell::new(false),
            peers_poll: false,
        }
    }

    /// With `on`, the transport of a runtime whose shards never sleep
    /// (poll mode): it never signals after publishing, as every shard
    /// looks at its rings on every iteration.
    pub(crate) fn peers_never_sleep(mut self, on: bool) -> Transport {
        self.peers_poll = on;
        self
    }

    /// The shard's schedule function.
    pub(crate) fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Queues `msg` for shard `dest` (not this one), published when
    /// [`PUBLISH_BATCH`] messages are pending or at the next
    /// [`flush`](Self::flush); leaks it once the shard stopped.
    #[inline]
    pub(crate) fn push(&self, dest: usize, msg: Message) {
        debug_assert_ne!(dest, self.id, "messages only go to other shards");
        if self.closed.get() {
            // Stopped: tasks bound for other shards may only be dropped
            // there, and call cells only freed by their origin.
            std::mem::forget(msg);
            return;
        }
        self.outgoing_dirty.set(true);
        // Straight into the ring's next slot (staged, not yet visible),
        // unless older messages still wait for room: they go first. Going
        // through the queue every time cost the origin of a call about 90
        // of its ~500 instructions (callgrind, 1024 calls in flight). The
        // rest (a full ring, a backlog) is out of line: with it inline,
        // saving and restoring registers cost each push a third of its
        // ~80 instructions.
        if self.outgoing.borrow()[dest].is_empty() {
            let mut to = self.to.borrow_mut();
            let ring = to[dest].as_mut().expect("a ring to every other shard");
            match ring.stage(msg) {
                Ok(()) => {
                    // A full batch leaves at once, so the destination
                    // starts on it while this shard goes on producing (a
                    // burst of calls overlaps on both cores instead of
                    // alternating).
                    if ring.staged() >= PUBLISH_BATCH {
                        self.publish_batch(ring, dest);
                    }
                    return;
                }
                Err(back) => {
                    drop(to);
                    return self.push_slow(dest, back);
                }
            }
        }
        self.push_slow(dest, msg)
    }

    /// [`push`](Self::push) when the ring was full or older messages wait:
    /// stages `msg` with the full ring's handshake, or queues it.
    #[inline(never)]
    fn push_slow(&self, dest: usize, mut msg: Message) {
        let stats = &*self.stats;
        let mut outgoing = self.outgoing.borrow_mut();
        let pending = &mut outgoing[dest];
        if pending.is_empty() {
            let mut to = self.to.borrow_mut();
            let ring = to[dest].as_mut().expect("a ring to every other shard");
            match stage(ring, dest, msg, stats) {
                Ok(()) => {
                    // A full batch leaves at once (as in `push`).
                    if ring.staged() >= PUBLISH_BATCH {
                        self.publish(ring, dest, pending, stats);
                    }
                    return;
                }
                Err(back) => msg = back,
            }
        }
        pending.push_back(msg);
        if pending.len() >= PUBLISH_BATCH {
            let mut to = self.to.borrow_mut();
            let ring = to[dest].as_mut().expect("a ring to every other shard");
            self.publish(ring, dest, pending, stats);
        }
    }

    /// Publishes the full batch staged in `ring` (to `dest`), nothing
    /// being queued behind it.
    #[inline(never)]
    fn publish_batch(&self, ring: &mut Producer<Message>, dest: usize) {
        self.publish_staged(ring, dest, &self.stats);
    }

    /// Moves what fits of `pending` into `ring` (to `dest`), publishes
    /// everything staged there and signals `dest` once; the rest stays
    /// queued (the consumer signals back when it has made room).
    fn publish(
        &self,
        ring: &mut Producer<Message>,
        dest: usize,
        pending: &mut VecDeque<Message>,
        stats: &ReactorStats,
    ) {
        while let Some(msg) = pending.pop_front() {
            if let Err(msg) = stage(ring, dest, msg, stats) {
                pending.push_front(msg);
                self.outgoing_dirty.set(true);
                break;
            }
        }
        self.publish_staged(ring, dest, stats);
    }

    /// Publishes everything staged in `ring` (to `dest`) and signals
    /// `dest` once.
    #[inline]
    fn publish_staged(&self, ring: &mut Producer<Message>, dest: usize, stats: &ReactorStats) {
        let sent = ring.publish();
        if sent > 0 {
            self.activity.set(true);
            stats::add(&stats.sent[dest], sent as u64);
            if !self.peers_poll {
                self.signals[dest].signal_if_sleeping();
            }
        }
    }

    /// Publishes what is queued for other shards into their rings and
    /// signals each destination once. What does not fit stays queued; the
    /// consumer signals back when it has made room. Wakes the callers
    /// waiting for room where there is some again.
    pub(crate) fn flush(&self) {
        let stats = &*self.stats;
        if !self.outgoing_dirty.replace(false) {
            return;
        }
        let mut wake = Vec::new();
        {
            let mut outgoing = self.outgoing.borrow_mut();
            let mut to = self.to.borrow_mut();
            let mut waiters = self.space_waiters.borrow_mut();
            for (dest, (pending, ring)) in outgoing.iter_mut().zip(to.iter_mut()).enumerate() {
                let Some(ring) = ring else { continue };
                self.publish(ring, dest, pending, stats);
                if pending.len() < self.backlog_limit && !waiters[dest].is_empty() {
                    wake.append(&mut waiters[dest]);
                }
            }
        }
        // Outside the borrows: a waker may schedule a task of another shard.
        wake.into_iter().for_each(Waker::wake);
    }

    /// Pops every incoming ring empty: tasks go to `run_task` (the run
    /// queue), the origin's side of a call (a flag and a wake-up) is
    /// handled at once, and the target's side, which runs user code, is
    /// queued for [`next_call`](Self::next_call). Signals the producers
    /// that wait for room. Called on every loop iteration: producers do
    /// not signal an awake shard.
    pub(crate) fn drain(&self, run_task: &mut dyn FnMut(Task)) {
        let mut from = self.from.borrow_mut();
        for (src, ring) in from.iter_mut().enumerate() {
            let Some(ring) = ring else { continue };
            let mut popped = false;
            while let Some(msg) = ring.pop() {
                popped = true;
                self.activity.set(true);
                match msg {
                    Message::Task(task) => run_task(task),
                    // The cell's second line is read soon, except by an
                    // inline reply (the origin reads its own line only) and
                    // an inline start (the target only writes it). The
                    // origin's side (a flag and a wake-up) is handled now.
                    Message::Call(msg) => match msg.op() {
                        Op::Reply => {
                            let m = msg.open();
                            m.call.replied(m.payload)
                        }
                        Op::Return | Op::CancelAck => {
                            msg.call().prefetch();
                            call::deliver(msg.open(), src, self)
                        }
                        Op::StartInline => self.calls.borrow_mut().push_back(Incoming(msg, src)),
                        Op::Start | Op::Cancel => {
                            msg.call().prefetch();
                            self.calls.borrow_mut().push_back(Incoming(msg, src))
                        }
                    },
                }
            }
            // Room was made only if something was popped (a producer that
            // raised its flag after this retries and finds that room). In
            // poll mode nobody waits: a producer never sleeps, it retries
            // its backlog at every flush; and the look costs a full fence
            // (`mfence`, the handshake's store-load order), which on a
            // one-call round trip sat on each hop's path.
            if popped && !self.peers_poll && ring.take_producer_waiting() {
                self.signals[src].signal();
            }
        }
    }

    /// For a shard about to sleep, after it raised its sleeping flag:
    /// whether a ring holds messages published before the producer could
    /// see that flag (the producer did not signal then; see
    /// `reactor/remote.rs`).
    pub(crate) fn has_incoming(&self) -> bool {
        if self.signals.len() < 2 {
            // A runtime of one shard has no rings (nor the fence's cost).
            return false;
        }
        // Pairs with the producer's fence between its publish and its look
        // at the flag.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.from.borrow().iter().flatten().any(|r| !r.is_empty())
    }

    /// The next call step received, to run now (in its group, if it
    /// [`starts`](Incoming::starts) one).
    pub(crate) fn next_call(&self) -> Option<Incoming> {
        self.calls.borrow_mut().pop_front()
    }

    /// Whether call steps wait to run.
    pub(crate) fn has_calls(&self) -> bool {
        !self.calls.borrow().is_empty()
    }

    /// Whether messages were sent or received since the last call.
    pub(crate) fn take_activity(&self) -> bool {
        self.activity.replace(false)
    }

    /// Whether the backlog towards `dest` has room for another call.
    pub(crate) fn has_space(&self, dest: usize) -> bool {
        self.outgoing.borrow()[dest].len() < self.backlog_limit
    }

    /// Back-pressure for cross-shard calls: whether `dest`'s backlog has
    /// room; if not, `waker` is woken once it has.
    pub(crate) fn poll_space(&self, dest: usize, waker: &Waker) -> bool {
        let stats = &*self.stats;
        if self.has_space(dest) {
            return true;
        }
        stats::add(&stats.space_waits, 1);
        self.space_waiters.borrow_mut()[dest].push(waker.clone());
        false
    }

    /// The shard stopped: leaks what is queued (tasks bound for other
    /// shards may only be dropped there, and call cells only freed by
    /// their origin) and sends nothing any more.
    pub(crate) fn close(&self) {
        self.closed.set(true);
        for pending in self.outgoing.borrow_mut().iter_mut() {
            pending.drain(..).for_each(std::mem::forget);
        }
        self.calls.borrow_mut().drain(..).for_each(std::mem::forget);
        self.space_waiters
            .borrow_mut()
            .iter_mut()
            .for_each(Vec::clear);
    }

    /// After [`close`](Self::close): pops every incoming ring empty, moving
    /// this shard's tasks into `tasks` (to be dropped here) and leaking
    /// call steps (their cells belong to other shards).
    pub(crate) fn drain_for_shutdown(&self, tasks: &mut Vec<Task>) {
        let mut from = self.from.borrow_mut();
        for ring in from.iter_mut().flatten() {
            while let Some(msg) = ring.pop() {
                match msg {
                    Message::Task(t) => tasks.push(t),
                    call @ Message::Call(..) => std::mem::forget(call),
                }
            }
        }
    }
}

/// Stages `msg` in `ring`; when full, announces that this shard waits for
/// room (then retries once, as the consumer may have just made some) and
/// hands `msg` back.
#[inline]
fn stage(
    ring: &mut Producer<Message>,
    dest: usize,
    msg: Message,
    stats: &ReactorStats,
) -> Result<(), Message> {
    ring.stage(msg).or_else(|msg| {
        stats::add(&stats.ring_full[dest], 1);
        ring.set_waiting();
        ring.stage(msg)
    })
}
