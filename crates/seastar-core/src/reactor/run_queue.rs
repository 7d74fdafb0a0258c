//! A shard's run queue: one FIFO per scheduling group, served by least
//! virtual runtime (see `task/group.rs` for the policy).
//!
//! With one group in use (the common case) it is a plain FIFO and no
//! clock is read. With several, the reactor runs a slice of up to
//! [`SLICE_TASKS`] tasks of the chosen group, reads the thread's CPU clock
//! around the slice (CPU time, so time the thread spent preempted is not
//! charged), and charges it divided by the group's shares.
//!
//! # Shuffling (debug builds, tests)
//!
//! Within a group the order in which ready tasks run is unspecified, but a
//! FIFO makes it look fixed, and code comes to rely on it. In debug builds
//! a seed (set by `#[seastar_core::test]` on each shard) makes [`RunQueue::pop`]
//! take a random ready task of the group instead of the oldest, drawn from a
//! splitmix64 generator, so the same seed replays the same choices (I/O
//! completions and other shards' messages may still arrive at other times).
//!
//! What is shuffled is what tasks do to each other: tasks spawned or woken
//! by a running task run in any order. Two documented orders are kept:
//!
//! - [`yield_now`](crate::yield_now) "yields to the other ready tasks of the
//!   shard once": a task that wakes itself while it runs is not taken while
//!   any task is queued ahead of it, so every task ready when it yielded
//!   still runs first, as with the FIFO;
//! - the reactor's own wakes keep their order ("timers fire in deadline
//!   order"): of the tasks queued while no task runs (woken by a timer, an
//!   I/O completion, another shard, or a cross-shard call's first
//!   continuation), only the first queued may be taken.
//!
//! Tasks queued after a held-back task may still pass it. A draw that lands
//! on a held-back task is redrawn (four times, then the oldest task runs).
//!
//! The queue knows a task runs from [`RunQueue::pop`] until the next
//! [`RunQueue::pick`] or [`RunQueue::is_empty`], which the reactor calls
//! between task slices and after the batch.
//!
//! Release builds compile all of this out: the queue is the plain FIFO.

#[cfg(debug_assertions)]
use std::collections::{HashSet, VecDeque};

use std::sync::atomic::{AtomicU32, Ordering};

use super::TaskMeta;
use super::ring::Ring;
use crate::task::cell;
use crate::task::home::ShardHome;

/// What the run queue, the remote inbox and the cross-shard rings carry.
pub(crate) enum Runnable {
    /// A task spawned on this shard (`task::cell`), ready to run.
    Local(cell::Runnable<ShardHome>),
    /// An `async-task` task (a cross-shard call's driver, made on
    /// whichever thread first cloned its waker), ready to run.
    Shared(async_task::Runnable<TaskMeta>),
    /// A wake (or a waker's drop) of a local task from another thread, to
    /// apply at home: [`RunQueue::push`] turns it into a `Local` or nothing.
    Wake(cell::Request<ShardHome>),
}

impl Runnable {
    /// The scheduling group to run it in.
    #[inline]
    fn group(&self) -> usize {
        match self {
            Runnable::Local(t) => t.group(),
            Runnable::Shared(t) => t.metadata().group,
            Runnable::Wake(_) => 0,
        }
    }

    /// Runs it by `shard`'s reactor (whose queue it was taken from):
    /// [`run`](Self::run), the home check of a local task a compare.
    #[inline(always)]
    pub(crate) fn run_on(self, shard: &super::Shard) {
        match self {
            Runnable::Local(t) => t.run_on(shard),
            t => t.run(),
        }
    }

    /// Runs it (on its shard): polls the task once.
    #[inline]
    pub(crate) fn run(self) {
        match self {
            Runnable::Local(t) => t.run(),
            Runnable::Shared(t) => {
                t.run();
            }
            Runnable::Wake(r) => {
                if let Some(t) = r.apply() {
                    t.run();
                }
            }
        }
    }
}

impl std::fmt::Debug for Runnable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Runnable::Local(t) => t.fmt(f),
            Runnable::Shared(_) => f.write_str("Shared"),
            Runnable::Wake(r) => r.fmt(f),
        }
    }
}

/// The most scheduling groups a run queue serves (ids are process-wide).
pub(crate) const MAX_GROUPS: usize = 64;

/// Shares of a group nobody described (`main`'s).
const DEFAULT_SHARES: u32 = 1000;

/// Each group's shares by id, handed to the run queues as data by whoever
/// creates the group ([`set_group_shares`]; `task::group` does), so the
/// queue depends on no group registry. A group's shares never change and
/// its id reaches another shard only through a message (whose
/// release/acquire orders this store before that shard's load), so relaxed
/// accesses suffice.
static SHARES: [AtomicU32; MAX_GROUPS] = [const { AtomicU32::new(DEFAULT_SHARES) }; MAX_GROUPS];

/// Records that group `id` has `shares` (before any task of it is queued).
pub(crate) fn set_group_shares(id: usize, shares: u32) {
    SHARES[id].store(shares, Ordering::Relaxed);
}

/// Most tasks of one group run back to back before groups are compared.
pub(crate) const SLICE_TASKS: usize = 16;

struct GroupQueue {
    tasks: Ring<Runnable>,
    /// Nanoseconds of runtime scaled by `1000 / shares`.
    vruntime: u64,
    shares: u64,
    /// CPU nanoseconds charged (timed slices only; see `charge`).
    runtime_ns: u64,
}

impl GroupQueue {
    fn new(id: usize) -> GroupQueue {
        GroupQueue {
            tasks: Ring::with_capacity(8),
            vruntime: 0,
            runtime_ns: 0,
            shares: u64::from(
                SHARES
                    .get(id)
                    .map_or(DEFAULT_SHARES, |s| s.load(Ordering::Relaxed))
                    .max(1),
            ),
        }
    }
}

/// The ready tasks of one shard.
pub(crate) struct RunQueue {
    /// Group 0's queue (`main`), in place: the one-group path (a push, a
    /// pop) reaches its ring without going through a `Vec`.
    main: GroupQueue,
    /// Groups 1 and up, once used.
    others: Vec<GroupQueue>,
    #[cfg(debug_assertions)]
    shuffle: Option<Shuffle>,
}

impl RunQueue {
    pub(crate) fn new() -> RunQueue {
        let mut main = GroupQueue::new(0);
        main.tasks = Ring::with_capacity(1024);
        RunQueue {
            main,
            others: Vec::new(),
            #[cfg(debug_assertions)]
            shuffle: None,
        }
    }

    /// Runs ready tasks in an order drawn from `seed` (see the module doc);
    /// `None` goes back to FIFO. Debug builds only.
    #[cfg(debug_assertions)]
    pub(crate) fn set_shuffle(&mut self, seed: Option<u64>) {
        self.shuffle = seed.map(Shuffle::new);
    }

    /// Group `g`'s queue (`g` below [`group_count`](Self::group_count)).
    fn group_mut(&mut self, g: usize) -> &mut GroupQueue {
        match g {
            0 => &mut self.main,
            _ => &mut self.others[g - 1],
        }
    }

    /// How many groups have been used (their ids are below it).
    fn group_count(&self) -> usize {
        1 + self.others.len()
    }

    /// Every group's queue, by id.
    fn all(&self) -> impl Iterator<Item = &GroupQueue> {
        std::iter::once(&self.main).chain(&self.others)
    }

    /// Queues a task at the back of its group.
    ///
    /// One group in use, no shuffling: a push onto that group's FIFO, with
    /// the rest out of line (inlined whole, the cold paths made every push
    /// save and restore a handful of registers: about 18 of its 36
    /// instructions, callgrind, 2 pushes per spawn+await).
    ///
    /// A [`Runnable::Wake`] is applied here (the task queued if it needs
    /// to run).
    #[inline]
    pub(crate) fn push(&mut self, task: Runnable) {
        match task {
            Runnable::Local(t) => self.push_local(t),
            Runnable::Wake(r) => self.apply(r),
            t => {
                let g = t.group();
                self.push_in(t, g);
            }
        }
    }

    /// [`push`](Self::push) of a local task.
    #[inline(always)]
    pub(crate) fn push_local(&mut self, task: cell::Runnable<ShardHome>) {
        let g = task.group();
        self.push_in(Runnable::Local(task), g);
    }

    /// [`push_local`](Self::push_local) of a task of group `g` (its
    /// spawner knows it: no read of the cell).
    #[inline(always)]
    pub(crate) fn push_local_in(&mut self, task: cell::Runnable<ShardHome>, g: usize) {
        debug_assert_eq!(task.group(), g);
        self.push_in(Runnable::Local(task), g);
    }

    /// Applies a wake request from another thread.
    #[cold]
    #[inline(never)]
    fn apply(&mut self, request: cell::Request<ShardHome>) {
        if let Some(t) = request.apply() {
            self.push_local(t);
        }
    }

    #[inline(always)]
    fn push_in(&mut self, task: Runnable, g: usize) {
        #[cfg(debug_assertions)]
        let plain = self.shuffle.is_none();
        #[cfg(not(debug_assertions))]
        let plain = true;
        if g == 0 && plain && self.others.is_empty() {
            self.main.tasks.push_back(task);
            return;
        }
        self.push_slow(task, g);
    }

    /// [`push`](Self::push) with several groups or a shuffle.
    #[inline(never)]
    fn push_slow(&mut self, task: Runnable, g: usize) {
        if g >= self.group_count() {
            self.grow(g);
        }
        let min = (!self.others.is_empty() && self.group_mut(g).tasks.is_empty())
            .then(|| self.min_vruntime());
        #[cfg(debug_assertions)]
        if let Some(s) = &mut self.shuffle {
            s.pushed(&task, g);
        }
        let q = self.group_mut(g);
        if let Some(Some(min)) = min {
            // Waking after idling: no banked credit.
            q.vruntime = q.vruntime.max(min);
        }
        q.tasks.push_back(task);
    }

    fn grow(&mut self, g: usize) {
        while self.group_count() <= g {
            let id = self.group_count();
            self.others.push(GroupQueue::new(id));
        }
    }

    fn min_vruntime(&self) -> Option<u64> {
        self.all()
            .filter(|q| !q.tasks.is_empty())
            .map(|q| q.vruntime)
            .min()
    }

    /// The group to serve next: the non-empty one with the least virtual
    /// runtime; `None` when nothing is ready.
    pub(crate) fn pick(&self) -> Option<usize> {
        #[cfg(debug_assertions)]
        if let Some(s) = &self.shuffle {
            // Between slices no task runs.
            s.running.set(std::ptr::null());
        }
        if self.others.is_empty() {
            return (!self.main.tasks.is_empty()).then_some(0);
        }
        self.all()
            .enumerate()
            .filter(|(_, q)| !q.tasks.is_empty())
            .min_by_key(|(_, q)| q.vruntime)
            .map(|(i, _)| i)
    }

    /// Whether more than one group has been used (so slices are timed).
    pub(crate) fn multi_group(&self) -> bool {
        !self.others.is_empty()
    }

    /// The next task of group `g`.
    #[inline]
    pub(crate) fn pop(&mut self, g: usize) -> Option<Runnable> {
        #[cfg(debug_assertions)]
        if let Some(s) = &mut self.shuffle {
            let tasks = match g {
                0 => &mut self.main.tasks,
                _ => &mut self.others[g - 1].tasks,
            };
            return s.take(g, tasks);
        }
        self.group_mut(g).tasks.pop_front()
    }

    /// [`pop`](Self::pop) of the main group (group 0): its ring in place.
    #[inline(always)]
    pub(crate) fn pop_main(&mut self) -> Option<Runnable> {
        #[cfg(debug_assertions)]
        if self.shuffle.is_some() {
            return self.pop(0);
        }
        self.main.tasks.pop_front()
    }

    /// Charges `nanos` of runtime to group `g`.
    pub(crate) fn charge(&mut self, g: usize, nanos: u64) {
        let q = self.group_mut(g);
        q.runtime_ns = q.runtime_ns.saturating_add(nanos);
        q.vruntime = q
            .vruntime
            .saturating_add(nanos.saturating_mul(1000) / q.shares);
    }

    /// Per group in use: its id, ready tasks and CPU nanoseconds charged.
    pub(crate) fn groups(&self) -> impl Iterator<Item = (usize, usize, u64)> + '_ {
        self.all()
            .enumerate()
            .map(|(i, q)| (i, q.tasks.len(), q.runtime_ns))
    }

    pub(crate) fn is_empty(&self) -> bool {
        #[cfg(debug_assertions)]
        if let Some(s) = &self.shuffle {
            s.running.set(std::ptr::null());
        }
        self.all().all(|q| q.tasks.is_empty())
    }

    /// Removes every task (at shutdown).
    pub(crate) fn drain_all(&mut self) -> Vec<Runnable> {
        #[cfg(debug_assertions)]
        if let Some(s) = &mut self.shuffle {
            s.clear();
        }
        let mut tasks = self.main.tasks.drain_all();
        for q in &mut self.others {
            tasks.extend(q.tasks.drain_all());
        }
        tasks
    }
}

/// The state of a shuffling queue (see the module doc).
#[cfg(debug_assertions)]
struct Shuffle {
    /// splitmix64 state.
    state: u64,
    /// The task last taken by `take`, until the next slice or the end of
    /// the batch; null while no task runs.
    running: std::cell::Cell<*const ()>,
    /// Queued tasks that yielded: taken only from the front of their group.
    yielded: HashSet<*const ()>,
    /// Per group, the queued tasks the reactor woke, in the order it woke
    /// them: only the first may be taken.
    woken: Vec<VecDeque<*const ()>>,
    /// The tasks in `woken`.
    woken_ids: HashSet<*const ()>,
}

#[cfg(debug_assertions)]
impl Shuffle {
    fn new(seed: u64) -> Shuffle {
        Shuffle {
            state: seed,
            running: std::cell::Cell::new(std::ptr::null()),
            yielded: HashSet::new(),
            woken: Vec::new(),
            woken_ids: HashSet::new(),
        }
    }

    /// The next splitmix64 output.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Notes how `task`, queued in group `g`, is held back: a yield if it
    /// is the running task waking itself, a reactor wake if no task runs.
    fn pushed(&mut self, task: &Runnable, g: usize) {
        let id = id(task);
        let running = self.running.get();
        if id == running {
            self.yielded.insert(id);
        } else if running.is_null() {
            if self.woken.len() <= g {
                self.woken.resize_with(g + 1, VecDeque::new);
            }
            self.woken[g].push_back(id);
            self.woken_ids.insert(id);
        }
    }

    /// Whether the task at `i` of group `g`'s queue may run now.
    fn may_take(&self, g: usize, i: usize, id: *const ()) -> bool {
        if i == 0 {
            // Nothing is ahead of it; and a woken task at the front is the
            // first woken one (taking keeps their relative order).
            return true;
        }
        if self.yielded.contains(&id) {
            return false;
        }
        !self.woken_ids.contains(&id) || self.woken[g].front() == Some(&id)
    }

    /// Removes a random task of group `g`'s `tasks` that may run now (a
    /// few draws, then the oldest).
    fn take(&mut self, g: usize, tasks: &mut Ring<Runnable>) -> Option<Runnable> {
        let n = tasks.len();
        if n == 0 {
            return None;
        }
        let mut i = 0;
        for _ in 0..4 {
            let draw = (self.next() % n as u64) as usize;
            if self.may_take(g, draw, id(tasks.get(draw))) {
                i = draw;
                break;
            }
        }
        let task = tasks.remove(i);
        let id = id(&task);
        if !self.yielded.remove(&id) && self.woken_ids.remove(&id) {
            // At the front of `woken[g]`: see `may_take`.
            self.woken[g].pop_front();
        }
        self.running.set(id);
        Some(task)
    }

    /// Forgets every queued task (at shutdown).
    fn clear(&mut self) {
        self.yielded.clear();
        self.woken.clear();
        self.woken_ids.clear();
    }
}

/// A task's identity: its cell's address (every waker of a task points at
/// the same cell).
#[cfg(debug_assertions)]
fn id(task: &Runnable) -> *const () {
    match task {
        Runnable::Local(t) => t.id(),
        Runnable::Shared(t) => t.waker().data(),
        Runnable::Wake(_) => std::ptr::null(),
    }
}

impl Extend<Runnable> for RunQueue {
    fn extend<I: IntoIterator<Item = Runnable>>(&mut self, iter: I) {
        iter.into_iter().for_each(|t| self.push(t));
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use crate::{block_on, spawn_local, yield_now};

    /// Shuffles the calling shard's queue with `seed`, then goes through
    /// the queue once so that it knows the calling task runs.
    async fn shuffle(seed: u64) {
        crate::reactor::with(|s| s.queue.borrow_mut().set_shuffle(Some(seed)));
        yield_now().await;
    }

    /// With the shard's queue shuffled by `seed`: spawns `n` tasks that log
    /// their index, yields once, and returns the log.
    fn order(seed: u64, n: usize) -> Vec<usize> {
        block_on(async move {
            shuffle(seed).await;
            let log = Rc::new(RefCell::new(Vec::new()));
            for i in 0..n {
                let log = log.clone();
                drop(spawn_local(async move { log.borrow_mut().push(i) }));
            }
            yield_now().await;
            log.borrow().clone()
        })
    }

    #[test]
    fn same_seed_same_order_other_seed_other_order() {
        let a = order(7, 16);
        assert_eq!(a, order(7, 16), "a seed did not replay its order");
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..16).collect::<Vec<_>>());
        assert_ne!(a, sorted, "16 tasks ran in FIFO order");
        assert!(
            (8..12).any(|seed| order(seed, 16) != a),
            "four other seeds all gave seed 7's order"
        );
    }

    #[test]
    fn yielding_tasks_alternate_as_with_fifo() {
        for seed in 0..20 {
            let log = block_on(async move {
                shuffle(seed).await;
                let log = Rc::new(RefCell::new(Vec::new()));
                let tasks: Vec<_> = ['a', 'b', 'c']
                    .into_iter()
                    .map(|name| {
                        let log = log.clone();
                        spawn_local(async move {
                            for _ in 0..4 {
                                log.borrow_mut().push(name);
                                yield_now().await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                log.borrow().clone()
            });
            // Each round every task runs once before any runs again: a
            // yield waits for every task ready when it yielded.
            for round in log.chunks(3) {
                let mut r = round.to_vec();
                r.sort_unstable();
                assert_eq!(r, ['a', 'b', 'c'], "seed {seed}: {log:?}");
            }
        }
    }

    #[test]
    fn without_a_seed_the_queue_is_fifo() {
        let order = block_on(async {
            let log = Rc::new(RefCell::new(Vec::new()));
            for i in 0..16 {
                let log = log.clone();
                drop(spawn_local(async move { log.borrow_mut().push(i) }));
            }
            yield_now().await;
            log.borrow().clone()
        });
        assert_eq!(order, (0..16).collect::<Vec<_>>());
    }
}
