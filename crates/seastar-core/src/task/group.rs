//! Scheduling groups: CPU shares between classes of work on a shard.
//!
//! A scheduling group is a class of tasks (say, "queries" and
//! "compaction") with a number of shares. When several groups have ready
//! tasks, the reactor runs the one with the least virtual runtime, where a
//! group's virtual runtime grows by the time its tasks ran divided by its
//! shares. So two busy groups with shares 100 and 400 get the CPU in a 1:4
//! ratio, and a background group cannot starve a latency-sensitive one: as
//! soon as the latter has work, its lower virtual runtime puts it first.
//! A group that wakes up after being idle starts from the current minimum,
//! so it cannot bank credit while idle.
//!
//! Groups are process-wide (at most [`MAX_GROUPS`]); each shard keeps its
//! own queue and virtual runtime per group. Tasks inherit nothing: a task
//! runs in the group it was spawned in ([`spawn_local_in`]); plain
//! [`spawn_local`](crate::spawn_local) uses the group of the task that
//! calls it.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;

use crate::reactor;
use crate::task::JoinHandle;

/// The most scheduling groups a process may create (including `main`).
pub const MAX_GROUPS: usize = 32;

const _: () = assert!(MAX_GROUPS <= reactor::MAX_GROUPS);

struct Info {
    name: String,
    shares: u32,
}

static GROUPS: Mutex<Vec<Info>> = Mutex::new(Vec::new());

/// Shares of `main`, the default group.
pub(crate) const DEFAULT_SHARES: u32 = 1000;

/// A class of tasks with a CPU share. Cheap to copy.
///
/// ```
/// use seastar_core::{Runtime, task::{SchedulingGroup, spawn_local_in}};
///
/// Runtime::builder().shards(1).build().unwrap().run(async {
///     let background = SchedulingGroup::new("compaction", 100).unwrap();
///     let h = spawn_local_in(background, async {
///         seastar_core::task::current_scheduling_group().name()
///     });
///     assert_eq!(h.await.unwrap(), "compaction");
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SchedulingGroup(pub(crate) usize);

impl fmt::Debug for SchedulingGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SchedulingGroup({:?}, shares {})",
            self.name(),
            self.shares()
        )
    }
}

/// Why a group could not be created.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// All [`MAX_GROUPS`] groups exist.
    #[error("too many scheduling groups (at most {MAX_GROUPS})")]
    TooMany,
    /// Shares must be at least 1.
    #[error("scheduling group shares must be at least 1")]
    ZeroShares,
}

fn registry() -> std::sync::MutexGuard<'static, Vec<Info>> {
    let mut g = GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_empty() {
        g.push(Info {
            name: "main".into(),
            shares: DEFAULT_SHARES,
        });
    }
    g
}

impl SchedulingGroup {
    /// Creates a group named `name` with `shares` (e.g. 100 for background
    /// work against `main`'s 1000).
    pub fn new(name: &str, shares: u32) -> Result<SchedulingGroup, GroupError> {
        if shares == 0 {
            return Err(GroupError::ZeroShares);
        }
        let mut g = registry();
        if g.len() >= MAX_GROUPS {
            return Err(GroupError::TooMany);
        }
        g.push(Info {
            name: name.to_owned(),
            shares,
        });
        let id = g.len() - 1;
        // The run queues get the shares as data (under the registry's lock,
        // so ids and shares stay in step).
        reactor::set_group_shares(id, shares);
        Ok(SchedulingGroup(id))
    }

    /// The default group, `main`.
    pub fn main() -> SchedulingGroup {
        SchedulingGroup(0)
    }

    /// The group's name.
    pub fn name(&self) -> String {
        registry()[self.0].name.clone()
    }

    /// The group's shares.
    pub fn shares(&self) -> u32 {
        registry()[self.0].shares
    }
}

/// Shares of group `id` (for the reactor's run queue).
pub(crate) fn shares_of(id: usize) -> u32 {
    registry().get(id).map_or(DEFAULT_SHARES, |i| i.shares)
}

/// Name of group `id` (for logs).
pub(crate) fn name_of(id: usize) -> String {
    registry()
        .get(id)
        .map_or_else(|| format!("group-{id}"), |i| i.name.clone())
}

/// The group of the task running now (`main` outside a task).
pub fn current_scheduling_group() -> SchedulingGroup {
    SchedulingGroup(reactor::try_with(|s| s.current_group().get()).unwrap_or(0))
}

/// Spawns `future` on the calling shard in scheduling group `group`.
///
/// # Panics
///
/// Outside a shard.
pub fn spawn_local_in<F>(group: SchedulingGroup, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    super::spawn_in(group.0, future)
}
