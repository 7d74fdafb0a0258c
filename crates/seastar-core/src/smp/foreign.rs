//! `ForeignPtr`: hand an object to another shard, have it dropped at home.

use std::fmt;

use crate::ShardId;

/// Owns a value that belongs to shard `owner`, and may travel to other
/// shards without being touched there: it can be read only on its owner,
/// and dropping it elsewhere sends it home to be dropped there. Use it to
/// lend shard-local state (an `Rc`, a buffer from a shard's allocator) to
/// another shard for the duration of a call.
///
/// ```
/// use std::rc::Rc;
/// use seastar_core::{Runtime, smp::{self, ForeignPtr}};
///
/// Runtime::builder().shards(2).build().unwrap().run(async {
///     let local = Rc::new(String::from("shard 0 data"));
///     let p = ForeignPtr::new(local.clone());
///     // The Rc travels to shard 1 and back; it is never touched there.
///     let p = smp::submit_to(1, move || async move { p }).await.unwrap();
///     assert_eq!(p.get().unwrap().as_str(), "shard 0 data");
///     drop(p);
///     assert_eq!(Rc::strong_count(&local), 1);
/// });
/// ```
pub struct ForeignPtr<T: 'static> {
    value: Option<T>,
    /// The owner, runtime included: every `block_on` thread is a shard 0,
    /// so an index alone would take another runtime's shard 0 for home.
    owner: ShardId,
}

// SAFETY: the value is only read (`get`, `into_inner`) or dropped on the
// thread of its owner shard, checked with the runtime-qualified `ShardId`
// (`Drop` sends it home otherwise, or leaks it when home is in another
// runtime); on any other thread it is inert bytes that are only moved.
unsafe impl<T: 'static> Send for ForeignPtr<T> {}

/// Moves a value between threads without touching it (see `ForeignPtr`).
struct Inert<T>(T);
// SAFETY: constructed only by `ForeignPtr::drop` to carry its value home,
// where it is dropped; never accessed on the way.
unsafe impl<T> Send for Inert<T> {}

impl<T: 'static> fmt::Debug for ForeignPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForeignPtr")
            .field("owner", &self.owner)
            .finish()
    }
}

impl<T: 'static> ForeignPtr<T> {
    /// Wraps `value`, owned by the calling shard.
    ///
    /// # Panics
    ///
    /// Outside a shard.
    pub fn new(value: T) -> Self {
        ForeignPtr {
            value: Some(value),
            owner: ShardId::current(),
        }
    }

    /// The owner shard's index in its runtime.
    pub fn owner(&self) -> usize {
        self.owner.index()
    }

    /// The owner shard, runtime included.
    pub fn owner_shard(&self) -> ShardId {
        self.owner
    }

    /// The value, when called on its owner shard.
    pub fn get(&self) -> Option<&T> {
        if self.on_owner() {
            self.value.as_ref()
        } else {
            None
        }
    }

    /// Unwraps the value on its owner shard; elsewhere returns `self`.
    pub fn into_inner(mut self) -> Result<T, Self> {
        if self.on_owner() {
            Ok(self.value.take().expect("present until dropped"))
        } else {
            Err(self)
        }
    }

    fn on_owner(&self) -> bool {
        self.owner.is_current()
    }
}

impl<T: 'static> Drop for ForeignPtr<T> {
    fn drop(&mut self) {
        let Some(value) = self.value.take() else {
            return;
        };
        if self.on_owner() {
            return drop(value);
        }
        let inert = Inert(value);
        if self.owner.same_runtime() {
            let home = super::submit_to(self.owner.index(), move || async move { drop(inert) });
            crate::spawn_local(home).detach();
        } else {
            // No way home from here: leaking is the only sound choice.
            std::mem::forget(inert);
            tracing::warn!(
                owner = %self.owner,
                "ForeignPtr dropped outside its runtime; leaking its value"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::mpsc;

    /// Counts its drops, and checks each happens on its home thread.
    struct Home(Rc<Cell<u32>>, std::thread::ThreadId);
    impl Drop for Home {
        fn drop(&mut self) {
            assert_eq!(
                std::thread::current().id(),
                self.1,
                "dropped away from home"
            );
            self.0.set(self.0.get() + 1);
        }
    }

    /// Two runtimes on two threads, each a shard 0: a pointer made on one
    /// is not "on its owner" on the other, and its drop there leaks the
    /// value instead of dropping an `Rc` on the wrong thread.
    #[test]
    fn another_runtimes_shard_0_is_not_the_owner() {
        let (to_b, from_a) = mpsc::channel::<ForeignPtr<Home>>();
        let (back, from_b) = mpsc::channel::<(bool, bool, ForeignPtr<Home>)>();
        let b = std::thread::spawn(move || {
            crate::block_on(async move {
                let p = from_a.recv().unwrap();
                let seen = p.get().is_some();
                let p = match p.into_inner() {
                    Ok(_) => panic!("unwrapped on another runtime's shard 0"),
                    Err(p) => p,
                };
                back.send((seen, p.owner_shard().is_current(), p)).unwrap();
            })
        });
        crate::block_on(async move {
            let drops = Rc::new(Cell::new(0));
            let p = ForeignPtr::new(Home(drops.clone(), std::thread::current().id()));
            assert!(p.owner_shard().is_current());
            to_b.send(p).unwrap();
            b.join().unwrap();
            let (seen, owner_there, p) = from_b.recv().unwrap();
            assert!(!seen, "get() on another runtime's shard 0");
            assert!(!owner_there);
            assert_eq!(p.get().map(|h| h.0.get()), Some(0), "home again: readable");
            drop(p);
            assert_eq!(drops.get(), 1, "dropped at home");
        });
    }

    #[test]
    fn a_pointer_dropped_in_another_runtime_is_leaked_not_dropped() {
        let (tx, rx) = mpsc::channel::<ForeignPtr<Home>>();
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        crate::block_on(async move {
            tx.send(ForeignPtr::new(Home(d, std::thread::current().id())))
                .unwrap();
        });
        // Another runtime on another thread drops it: `Home::drop` would
        // assert on the wrong thread; the value must be leaked instead.
        std::thread::spawn(move || crate::block_on(async move { drop(rx.recv().unwrap()) }))
            .join()
            .expect("the drop left the value alone");
        assert_eq!(drops.get(), 0);
    }
}
