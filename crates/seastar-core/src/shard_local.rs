//! Values owned by the calling shard, kept in a typed map on the shard
//! itself and dropped with it.
//!
//! A crate that keeps per-shard state (a listener registry, a connection
//! pool, a service instance) keeps it here rather than in a
//! `thread_local!`: a thread-local outlives its runtime (every
//! [`block_on`](crate::block_on) runs on the calling thread, so runtimes
//! follow each other there) and is shared by all of them, so its state
//! leaks from one runtime into the next and is dropped, if ever, off any
//! reactor. A shard's slots belong to that shard of that runtime: the next
//! runtime on the same thread starts empty, and the values are dropped on
//! the shard's thread while its reactor still runs, before its tasks.
//!
//! Values are keyed by their type and a [`SlotKey`]: one per type
//! ([`SlotKey::SINGLETON`], for a crate-private type used as the key), or
//! one per instance ([`SlotKey::unique`]), e.g. one per `Sharded` service.
//!
//! ```
//! use std::cell::Cell;
//! use seastar_core::shard_local::{self, SlotKey};
//!
//! #[derive(Default)]
//! struct Hits(Cell<u64>);
//!
//! seastar_core::block_on(async {
//!     let hits = shard_local::get_or_init(SlotKey::SINGLETON, Hits::default);
//!     hits.0.set(hits.0.get() + 1);
//!     let again = shard_local::get::<Hits>(SlotKey::SINGLETON).unwrap();
//!     assert_eq!(again.0.get(), 1);
//! });
//! // A new runtime on the same thread starts empty.
//! seastar_core::block_on(async {
//!     assert!(shard_local::get::<Hits>(SlotKey::SINGLETON).is_none());
//! });
//! ```

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::reactor;

/// Names one value of a type among a shard's slots.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotKey(u64);

impl fmt::Debug for SlotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotKey({})", self.0)
    }
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

impl SlotKey {
    /// The one value of its type on each shard.
    pub const SINGLETON: SlotKey = SlotKey(0);

    /// A key no other call returns (process-wide), for one value per
    /// instance of something (a service, a server) on each shard.
    pub fn unique() -> SlotKey {
        SlotKey(NEXT_KEY.fetch_add(1, Ordering::Relaxed))
    }

    /// The key's number (for logs).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A shard's typed map (a field of the shard).
#[derive(Default)]
pub(crate) struct Slots {
    map: RefCell<HashMap<(TypeId, SlotKey), Rc<dyn Any>>>,
}

impl Slots {
    /// Drops every value, each outside the map's borrow (a value's drop may
    /// use other slots). Repeats while drops insert new values.
    pub(crate) fn clear(&self) {
        for _ in 0..16 {
            let all: Vec<_> = self.map.borrow_mut().drain().collect();
            if all.is_empty() {
                break;
            }
            drop(all);
        }
    }
}

fn with_map<R>(f: impl FnOnce(&RefCell<HashMap<(TypeId, SlotKey), Rc<dyn Any>>>) -> R) -> R {
    reactor::with(|s| f(&s.slots().map))
}

/// The calling shard's value of type `T` under `key`, if any.
///
/// # Panics
/// Outside a shard.
pub fn get<T: 'static>(key: SlotKey) -> Option<Rc<T>> {
    let any = with_map(|m| m.borrow().get(&(TypeId::of::<T>(), key)).cloned())?;
    any.downcast::<T>().ok()
}

/// The calling shard's value of type `T` under `key`, made with `init`
/// when there is none (`init` runs outside the map, so it may use other
/// slots).
///
/// # Panics
/// Outside a shard.
pub fn get_or_init<T: 'static>(key: SlotKey, init: impl FnOnce() -> T) -> Rc<T> {
    if let Some(v) = get::<T>(key) {
        return v;
    }
    let v = Rc::new(init());
    with_map(|m| {
        m.borrow_mut()
            .entry((TypeId::of::<T>(), key))
            .or_insert_with(|| v.clone() as Rc<dyn Any>)
            .clone()
    })
    .downcast::<T>()
    .unwrap_or(v)
}

/// Stores `value` as the calling shard's `T` under `key`; returns the
/// value it replaces.
///
/// # Panics
/// Outside a shard.
pub fn insert<T: 'static>(key: SlotKey, value: T) -> Option<Rc<T>> {
    let old = with_map(|m| {
        m.borrow_mut()
            .insert((TypeId::of::<T>(), key), Rc::new(value))
    })?;
    old.downcast::<T>().ok()
}

/// Takes the calling shard's `T` under `key` out of its slots.
///
/// # Panics
/// Outside a shard.
pub fn remove<T: 'static>(key: SlotKey) -> Option<Rc<T>> {
    let old = with_map(|m| m.borrow_mut().remove(&(TypeId::of::<T>(), key)))?;
    old.downcast::<T>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            // Dropped on the shard, while its reactor is still there.
            assert!(reactor::try_with(|_| ()).is_ok(), "dropped off the shard");
            self.0.set(true);
        }
    }

    #[seastar_core::test]
    async fn values_are_per_type_and_key() {
        let a = SlotKey::unique();
        let b = SlotKey::unique();
        assert_ne!(a, b);
        assert!(insert(a, 1u32).is_none());
        insert(b, 2u32);
        insert(a, "text");
        assert_eq!(*get::<u32>(a).unwrap(), 1);
        assert_eq!(*get::<u32>(b).unwrap(), 2);
        assert_eq!(*get::<&str>(a).unwrap(), "text");
        assert_eq!(*insert(a, 3u32).unwrap(), 1);
        assert_eq!(*remove::<u32>(a).unwrap(), 3);
        assert!(get::<u32>(a).is_none());
        assert_eq!(*get_or_init(a, || 7u32), 7);
        assert_eq!(*get_or_init(a, || 8u32), 7, "init runs once");
    }

    #[test]
    fn values_are_dropped_with_their_shard() {
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        crate::block_on(async move {
            insert(SlotKey::SINGLETON, Flag(d));
        });
        assert!(dropped.get());
    }

    #[seastar_core::test(shards = 2)]
    async fn each_shard_has_its_own_slots() {
        let key = SlotKey::unique();
        crate::smp::invoke_on_all(move || async move {
            insert(key, crate::shard_id());
        })
        .await
        .unwrap();
        let seen = crate::smp::invoke_on_all(move || async move { *get::<usize>(key).unwrap() })
            .await
            .unwrap();
        assert_eq!(seen, vec![0, 1]);
    }
}
