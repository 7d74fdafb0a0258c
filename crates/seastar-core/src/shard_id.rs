//! Which shard of which runtime: the identity shard-bound handles carry.
//!
//! A shard index alone does not name a shard: every
//! [`block_on`](crate::block_on) thread is a shard 0, and a process may run
//! several runtimes at once (tests do). A [`ShardId`] adds the runtime, so
//! a handle can tell whether the calling thread is really its owner.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::reactor;

/// One shard of one runtime.
///
/// ```
/// use seastar_core::ShardId;
///
/// let first = seastar_core::block_on(async { ShardId::current() });
/// let second = seastar_core::block_on(async { ShardId::current() });
/// assert_eq!((first.index(), second.index()), (0, 0));
/// assert_ne!(first, second, "two runtimes, two shards 0");
/// assert!(ShardId::try_current().is_none(), "not on a shard here");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardId {
    runtime: u64,
    index: usize,
}

static NEXT_RUNTIME: AtomicU64 = AtomicU64::new(1);

/// A number no other runtime of this process gets.
pub(crate) fn next_runtime_id() -> u64 {
    NEXT_RUNTIME.fetch_add(1, Ordering::Relaxed)
}

impl ShardId {
    /// The calling shard.
    ///
    /// # Panics
    /// Outside a shard.
    pub fn current() -> ShardId {
        Self::try_current().expect("ShardId::current() called outside a shard")
    }

    /// The calling shard, or `None` on a thread that is not one.
    pub fn try_current() -> Option<ShardId> {
        reactor::try_with(|s| ShardId {
            runtime: s.shared().runtime_id,
            index: s.id(),
        })
        .ok()
    }

    /// Whether the calling thread is this shard.
    #[inline]
    pub fn is_current(self) -> bool {
        reactor::try_with(|s| s.id() == self.index && s.shared().runtime_id == self.runtime)
            .unwrap_or(false)
    }

    /// Whether the calling thread is a shard of the same runtime.
    pub fn same_runtime(self) -> bool {
        reactor::try_with(|s| s.shared().runtime_id == self.runtime).unwrap_or(false)
    }

    /// The shard's index in its runtime, `0..shard_count()`.
    pub fn index(self) -> usize {
        self.index
    }

    /// The runtime's number (unique in the process).
    pub fn runtime(self) -> u64 {
        self.runtime
    }
}

impl fmt::Debug for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShardId({}:{})", self.runtime, self.index)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {} of runtime {}", self.index, self.runtime)
    }
}
