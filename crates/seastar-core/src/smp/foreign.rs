//! `ForeignPtr`: hand an object to another shard, have it dropped at home.

use std::fmt;

use crate::reactor;

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
    owner: usize,
}

// SAFETY: the value is only read (`get`, `into_inner`) or dropped on the
// thread of its owner shard (`Drop` sends it home otherwise); on any other
// thread it is inert bytes that are only moved.
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
            owner: crate::shard_id(),
        }
    }

    /// The owner shard.
    pub fn owner(&self) -> usize {
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
        reactor::try_with(|s| s.id == self.owner).unwrap_or(false)
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
        let sent = reactor::try_with(|_| {
            let home = super::submit_to(self.owner, move || async move { drop(inert) });
            crate::spawn_local(home).detach();
        });
        if sent.is_err() {
            tracing::warn!(
                owner = self.owner,
                "ForeignPtr dropped outside its runtime; leaking its value"
            );
        }
    }
}
