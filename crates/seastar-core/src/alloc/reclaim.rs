//! Shard-local reclaimers: callbacks that free memory when the shard would
//! cross its limit.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::account::LOCAL;

type Callback = Box<dyn FnMut(usize) -> usize>;

/// Id given to an entry whose callback panicked: dropped after the run.
const DEAD: u64 = u64::MAX;

struct Registry {
    next_id: u64,
    list: Vec<(u64, Callback)>,
    /// While the callbacks run, `list` is moved out; unregistrations of
    /// entries in it are recorded here.
    running: bool,
    removed: Vec<u64>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = const {
        RefCell::new(Registry { next_id: 0, list: Vec::new(), running: false, removed: Vec::new() })
    };
}

/// A registered reclaimer; dropping it unregisters the callback.
///
/// ```
/// let handle = seastar_core::alloc::register_reclaimer(|_wanted| 0);
/// drop(handle); // no longer called
/// ```
#[must_use = "dropping the handle unregisters the reclaimer"]
pub struct Reclaimer {
    id: u64,
    /// Shard-local: unregisters from the thread that registered.
    _local: PhantomData<*const ()>,
}

impl std::fmt::Debug for Reclaimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reclaimer").field("id", &self.id).finish()
    }
}

impl Reclaimer {
    /// Keeps the reclaimer registered for the rest of the thread's life.
    ///
    /// ```
    /// seastar_core::alloc::register_reclaimer(|_wanted| 0).leak();
    /// ```
    pub fn leak(self) {
        std::mem::forget(self);
    }
}

impl Drop for Reclaimer {
    fn drop(&mut self) {
        let id = self.id;
        let victim = REGISTRY.try_with(|r| {
            let mut r = r.try_borrow_mut().ok()?;
            match r.list.iter().position(|(i, _)| *i == id) {
                Some(pos) => Some(r.list.remove(pos)),
                None => {
                    if r.running {
                        r.removed.push(id);
                    }
                    None
                }
            }
        });
        // Dropped outside the borrow: the callback may own other handles.
        drop(victim);
    }
}

/// Registers `f` on the calling shard: when an allocation on this shard
/// would take it over its limit (see [`set_shard_limit`](super::set_shard_limit)),
/// `f(wanted)` is asked to free about `wanted` bytes and returns how many
/// it freed (a hint for [`Stats::reclaimed`](super::Stats::reclaimed); the
/// shard's own counters are what decide whether more is needed).
///
/// Reclaimers run in registration order, inside the allocation that hit
/// the limit, until the shard is back under it; then the allocation
/// proceeds whatever they freed. A reclaimer may allocate and free (those
/// allocations never trigger reclaim again) but runs in the middle of
/// arbitrary code: use `try_borrow_mut` on state it shares and return 0 if
/// it is busy. A reclaimer that panics is dropped.
///
/// ```
/// use std::cell::RefCell;
/// use std::collections::VecDeque;
/// use std::rc::Rc;
///
/// let cache: Rc<RefCell<VecDeque<Vec<u8>>>> = Rc::default();
/// let evict = cache.clone();
/// let _reclaimer = seastar_core::alloc::register_reclaimer(move |wanted| {
///     let Ok(mut cache) = evict.try_borrow_mut() else { return 0 };
///     let mut freed = 0;
///     while freed < wanted {
///         match cache.pop_front() {
///             Some(item) => freed += item.capacity(),
///             None => break,
///         }
///     }
///     freed
/// });
/// cache.borrow_mut().push_back(vec![0; 4096]);
/// ```
pub fn register_reclaimer(f: impl FnMut(usize) -> usize + 'static) -> Reclaimer {
    let f: Callback = Box::new(f);
    let id = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        let id = r.next_id;
        r.next_id += 1;
        r.list.push((id, f));
        id
    });
    LOCAL.with(|l| l.has_reclaimers.set(true));
    Reclaimer {
        id,
        _local: PhantomData,
    }
}

/// Runs the reclaimers while `wanted()` is non-zero. Returns the bytes
/// they report freed, or `None` if none ran. Called by the allocator with
/// its re-entrance flag set.
pub(super) fn run(wanted: &dyn Fn() -> usize) -> Option<usize> {
    let mut list = REGISTRY
        .try_with(|r| {
            let mut r = r.try_borrow_mut().ok()?;
            if r.running || r.list.is_empty() {
                return None;
            }
            r.running = true;
            Some(std::mem::take(&mut r.list))
        })
        .ok()
        .flatten()?;
    let mut freed = 0usize;
    for (id, f) in &mut list {
        let w = wanted();
        if w == 0 {
            break;
        }
        match catch_unwind(AssertUnwindSafe(|| f(w))) {
            Ok(n) => freed = freed.saturating_add(n),
            Err(payload) => {
                *id = DEAD;
                drop(payload);
            }
        }
    }
    // Drop dead and unregistered entries (still "running", so drops that
    // unregister further entries of `list` are recorded too), then put the
    // list back ahead of any registered meanwhile.
    loop {
        let removed = REGISTRY
            .try_with(|r| {
                r.try_borrow_mut()
                    .map(|mut r| std::mem::take(&mut r.removed))
            })
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let before = list.len();
        list.retain(|(id, _)| *id != DEAD && !removed.contains(id));
        if removed.is_empty() && before == list.len() {
            break;
        }
    }
    // Nothing holds the registry here (it was free when this run began and
    // borrows of it are never held across a callback), so this succeeds;
    // if it did not, the reclaimers would just be dropped.
    let _ = REGISTRY.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            r.running = false;
            let added = std::mem::replace(&mut r.list, list);
            r.list.extend(added);
        }
    });
    Some(freed)
}
