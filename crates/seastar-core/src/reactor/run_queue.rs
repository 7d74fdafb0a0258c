//! A shard's run queue: one FIFO per scheduling group, served by least
//! virtual runtime (see `task/group.rs` for the policy).
//!
//! With one group in use (the common case) it is a plain `VecDeque` and no
//! clock is read. With several, the reactor runs a slice of up to
//! [`SLICE_TASKS`] tasks of the chosen group, reads the thread's CPU clock
//! around the slice (CPU time, so time the thread spent preempted is not
//! charged), and charges it divided by the group's shares.

use std::collections::VecDeque;

use super::Runnable;
use crate::task::group;

/// Most tasks of one group run back to back before groups are compared.
pub(crate) const SLICE_TASKS: usize = 16;

struct GroupQueue {
    tasks: VecDeque<Runnable>,
    /// Nanoseconds of runtime scaled by `1000 / shares`.
    vruntime: u64,
    shares: u64,
    /// CPU nanoseconds charged (timed slices only; see `charge`).
    runtime_ns: u64,
}

impl GroupQueue {
    fn new(id: usize) -> GroupQueue {
        GroupQueue {
            tasks: VecDeque::new(),
            vruntime: 0,
            runtime_ns: 0,
            shares: u64::from(group::shares_of(id).max(1)),
        }
    }
}

/// The ready tasks of one shard.
pub(crate) struct RunQueue {
    groups: Vec<GroupQueue>,
    len: usize,
}

impl RunQueue {
    pub(crate) fn new() -> RunQueue {
        let mut main = GroupQueue::new(0);
        main.tasks.reserve(1024);
        RunQueue {
            groups: vec![main],
            len: 0,
        }
    }

    /// Queues a task at the back of its group.
    #[inline]
    pub(crate) fn push(&mut self, task: Runnable) {
        let g = *task.metadata();
        if g >= self.groups.len() {
            self.grow(g);
        }
        let min =
            (self.groups.len() > 1 && self.groups[g].tasks.is_empty()).then(|| self.min_vruntime());
        let q = &mut self.groups[g];
        if let Some(Some(min)) = min {
            // Waking after idling: no banked credit.
            q.vruntime = q.vruntime.max(min);
        }
        q.tasks.push_back(task);
        self.len += 1;
    }

    fn grow(&mut self, g: usize) {
        while self.groups.len() <= g {
            let id = self.groups.len();
            self.groups.push(GroupQueue::new(id));
        }
    }

    fn min_vruntime(&self) -> Option<u64> {
        self.groups
            .iter()
            .filter(|q| !q.tasks.is_empty())
            .map(|q| q.vruntime)
            .min()
    }

    /// The group to serve next: the non-empty one with the least virtual
    /// runtime; `None` when nothing is ready.
    pub(crate) fn pick(&self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        if self.groups.len() == 1 {
            return Some(0);
        }
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, q)| !q.tasks.is_empty())
            .min_by_key(|(_, q)| q.vruntime)
            .map(|(i, _)| i)
    }

    /// Whether more than one group has been used (so slices are timed).
    pub(crate) fn multi_group(&self) -> bool {
        self.groups.len() > 1
    }

    /// The next task of group `g`.
    #[inline]
    pub(crate) fn pop(&mut self, g: usize) -> Option<Runnable> {
        let t = self.groups[g].tasks.pop_front();
        if t.is_some() {
            self.len -= 1;
        }
        t
    }

    /// Charges `nanos` of runtime to group `g`.
    pub(crate) fn charge(&mut self, g: usize, nanos: u64) {
        let q = &mut self.groups[g];
        q.runtime_ns = q.runtime_ns.saturating_add(nanos);
        q.vruntime = q
            .vruntime
            .saturating_add(nanos.saturating_mul(1000) / q.shares);
    }

    /// Per group in use: its id, ready tasks and CPU nanoseconds charged.
    #[cfg(feature = "metrics")]
    pub(crate) fn groups(&self) -> impl Iterator<Item = (usize, usize, u64)> + '_ {
        (self.groups.iter().enumerate()).map(|(i, q)| (i, q.tasks.len(), q.runtime_ns))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every task (at shutdown).
    pub(crate) fn drain_all(&mut self) -> Vec<Runnable> {
        self.len = 0;
        self.groups
            .iter_mut()
            .flat_map(|q| q.tasks.drain(..))
            .collect()
    }
}

impl Extend<Runnable> for RunQueue {
    fn extend<I: IntoIterator<Item = Runnable>>(&mut self, iter: I) {
        iter.into_iter().for_each(|t| self.push(t));
    }
}
