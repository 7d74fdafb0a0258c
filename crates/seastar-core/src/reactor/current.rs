//! The thread-locals that find the calling thread's shard.
//!
//! Every I/O operation looks its shard up several times (submit, poll,
//! drop), so the lookup is kept to one thread-local load: [`PTR`] is a
//! plain pointer, const-initialised and without a destructor, which std
//! reads with no lazy-initialisation or teardown check. The shard itself is
//! owned by [`OWNER`] (an `Rc`, which has a destructor, so std checks that
//! thread-local's state on every access, and it needs a `RefCell` borrow:
//! about 30 instructions per lookup, measured with callgrind on memcached
//! at 4 lookups per request).
//!
//! The invariant that makes [`with`] sound: `PTR` is non-null only while
//! `OWNER` holds the `Rc` it points to. [`enter`] stores the `Rc` first,
//! then the pointer; [`leave`] and the owner's destructor (thread exit
//! without `leave`) clear the pointer before the `Rc` is released. So a
//! lookup during the shard's own teardown (an operation dropped with its
//! task) finds no shard, as it did before.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::Shard;

/// The installed shard; clears [`PTR`] before releasing it.
struct Installed(Rc<Shard>);

impl Drop for Installed {
    fn drop(&mut self) {
        PTR.set(std::ptr::null());
    }
}

thread_local! {
    static OWNER: RefCell<Option<Installed>> = const { RefCell::new(None) };
    static PTR: Cell<*const Shard> = const { Cell::new(std::ptr::null()) };
}

/// Installs `shard` as the calling thread's shard (replacing any other).
pub(crate) fn enter(shard: Rc<Shard>) {
    let ptr = Rc::as_ptr(&shard);
    let old = OWNER.with(|o| o.borrow_mut().take());
    drop(old);
    OWNER.with(|o| *o.borrow_mut() = Some(Installed(shard)));
    PTR.set(ptr);
}

/// Removes the calling thread's shard. Called by the runtime when a shard
/// thread ends, never from inside [`with`].
pub(crate) fn leave() -> Option<Rc<Shard>> {
    PTR.set(std::ptr::null());
    OWNER.with(|o| o.borrow_mut().take().map(|i| i.0.clone()))
}

/// The calling thread's shard, or `None`.
#[inline(always)]
fn current<'a>() -> Option<&'a Shard> {
    let ptr = PTR.get();
    if ptr.is_null() {
        return None;
    }
    // The reference does not outlive the caller's closure (`with`,
    // `try_with`), inside which nothing calls `leave`, the only release;
    // the shard is only ever accessed through shared references.
    // SAFETY: a non-null `PTR` points to the shard `OWNER` keeps alive on
    // this thread (module invariant), for as long as the closure runs.
    Some(unsafe { &*ptr })
}

/// Runs `f` with the calling thread's shard.
///
/// # Panics
///
/// If the thread is not a shard of a running runtime.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&Shard) -> R) -> R {
    match current() {
        Some(shard) => f(shard),
        None => not_a_shard(),
    }
}

#[cold]
#[inline(never)]
fn not_a_shard() -> ! {
    panic!("not on a seastar shard: call this from inside Runtime::run")
}

/// Like [`with`], but `Err(())` outside a shard (or during its teardown).
#[inline(always)]
pub(crate) fn try_with<R>(f: impl FnOnce(&Shard) -> R) -> Result<R, ()> {
    current().map(f).ok_or(())
}
