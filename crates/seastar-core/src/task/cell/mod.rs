//! The task cell: one allocation per task holding its state, its future
//! and then its output, owned by one thread (its *home*).
//!
//! # Why not `async-task`
//!
//! `async-task` makes a cell that any thread may run, wake and drop, so
//! every state change and reference count is an atomic read-modify-write
//! (about ten per spawn+await). A shard's tasks are run, completed and
//! awaited on one thread; only wakers cross threads, rarely. So this cell
//! keeps its state and its reference count in plain `Cell`s that only the
//! home thread touches, and gives other threads a separate atomic count and
//! a message to send home instead.
//!
//! # Who may touch what
//!
//! | field | home thread | any other thread |
//! |---|---|---|
//! | `vtable`, `group`, `home` | read | read (while holding a reference) |
//! | `state`, `refs`, `awaiter`, the future, the output | read, write | never |
//! | `foreign` | read, increment, decrement | increment (while holding a reference) |
//!
//! "Home" is decided by [`Home::is_home`] on the calling thread. Every entry
//! point that another thread can reach (the waker functions, dropping or
//! running a [`Runnable`] or a [`Request`]) asks it first, except
//! [`Runnable::run_at_home`], whose caller vouches for it (the reactor,
//! running its own queue); the [`JoinHandle`] is `!Send`, so it never
//! leaves the home thread. Code at home may act on another task's waker
//! directly (no vtable call, no lookup) when that task has the same home
//! ([`Home::same`]): the handle's awaiter, cloned and woken in place.
//!
//! # References
//!
//! The cell lives while references to it exist. Local references, counted
//! in `refs`: the [`Runnable`] (exactly one exists while `SCHEDULED`), the
//! [`JoinHandle`] (while `HANDLE`), and every waker of the *local* kind.
//! Foreign references, counted in `foreign`: wakers of the *foreign* kind
//! (cloned off home) and [`Request`]s carrying one.
//!
//! A waker that reaches another thread keeps the kind it had. There it
//! cannot change `refs`, so what it would do to the cell becomes a
//! [`Request`] sent home ([`Home::send`]) carrying its reference: waking
//! by value sends `wake + release`, dropping sends `release`, waking by
//! reference first takes a foreign reference (`foreign += 1`) for the
//! request to carry. Cloning off home takes a foreign reference. Home
//! applies each request ([`Request::apply`]): it wakes the task and drops
//! the reference carried.
//!
//! Only home frees the cell, when `refs == 0` and `foreign == 0`. No other
//! thread can then hold a reference, so none can raise `foreign` again
//! (raising it needs a reference), and none can be using the cell: the
//! last message it sent has been applied. Decrements of `foreign` happen
//! only at home, so home reading 0 is final.
//!
//! # States
//!
//! - `SCHEDULED`: a [`Runnable`] exists (queued, or being run and woken
//!   while it ran: then it is queued again after the poll).
//! - `RUNNING`: the future is being polled (home only, not re-entered).
//! - `COMPLETED`: the future returned (or panicked) and was dropped; the
//!   output waits in the cell for the handle unless `CLOSED`.
//! - `CLOSED`: cancelled (by [`JoinHandle::abort`], by losing every
//!   reference while pending, or by dropping the [`Runnable`]), or the
//!   output was taken or dropped. A closed task is never polled again; its
//!   future is dropped by the next run (or at once when the runnable is
//!   dropped).
//! - `HANDLE`: the [`JoinHandle`] exists.
//! - `FUTURE`: the future is alive (it is dropped in place, once).
//!
//! The cell is the header, then the output slot, then the future
//! (`repr(C)`), so the handle, which knows the output's type but not the
//! future's, reads the output directly.
//!
//! When the last reference of a task whose future is still alive goes
//! (nothing can wake it any more), the task is closed and queued once more
//! so that its future is dropped by the run loop, not inside whatever
//! dropped that last waker (which may hold borrows the future's drop
//! needs). That is what `async-task` does too.
//!
//! Panics in the future (polling or dropping it) are caught at this
//! boundary: the output becomes the panic.

use std::alloc::Layout;
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// Where a task lives: the reactor's shard, or a test's thread.
///
/// Implementations are shared by every thread that holds a waker (so
/// `Send + Sync`); they decide which thread is home and carry work there.
pub(crate) trait Home: Send + Sync + Sized + 'static {
    /// Whether the calling thread is this task's home: the only thread
    /// that may touch the cell's non-atomic state. Must be `true` on at
    /// most one thread at a time, and stay `false` on a thread once the
    /// home thread has let go of its tasks.
    fn is_home(&self) -> bool;

    /// Whether `self` and `other` are the same home: [`is_home`](Self::is_home)
    /// answers alike for both on every thread. (Lets a task's home thread
    /// wake and clone the wakers of its neighbours without asking.)
    fn same(&self, other: &Self) -> bool;

    /// Queues `task` to be run (called on the home thread).
    fn schedule(task: Runnable<Self>);

    /// Carries `request` home from another thread, to be applied there
    /// ([`Request::apply`]) or dropped there. If home is gone, the request
    /// must be leaked (`mem::forget`), never dropped here.
    ///
    /// Once the request is handed over, home may apply it and free the
    /// cell at once: take what is needed from [`Request::home`] first.
    fn send(request: Request<Self>);
}

const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
const COMPLETED: u8 = 4;
const CLOSED: u8 = 8;
const HANDLE: u8 = 16;
const FUTURE: u8 = 32;

/// The first part of every cell (`repr(C)`: a cell pointer is a header
/// pointer). [`Raw::dealloc`] drops the fields that need it one by one
/// (`awaiter`, `home`): a new such field must be dropped there too.
#[repr(C)]
struct Header<H> {
    vtable: &'static VTable,
    state: Cell<u8>,
    refs: Cell<u32>,
    foreign: AtomicU32,
    group: usize,
    /// The waker of the task awaiting the [`JoinHandle`].
    awaiter: Cell<Option<Waker>>,
    home: H,
}

/// The operations that depend on the future's type.
struct VTable {
    /// Runs the task once, giving up the runnable's reference: what
    /// [`Runnable::run`] does after its home check (one function per
    /// future type, so that the poll and what follows it are one call).
    run: unsafe fn(NonNull<()>),
    /// Drops the future if it is still alive (`FUTURE`).
    drop_future: unsafe fn(NonNull<()>),
    /// Drops the cell's fields and frees it.
    dealloc: unsafe fn(NonNull<()>),
}

/// What the [`JoinHandle`] knows of a cell: the header, then the output
/// (`repr(C)`: its offset depends on `H` and `T` only, not on the future).
#[repr(C)]
struct Head<H, T> {
    header: Header<H>,
    /// The output, from completion until the handle takes it.
    output: UnsafeCell<Option<std::thread::Result<T>>>,
}

#[repr(C)]
struct Raw<H, F: Future> {
    head: Head<H, F::Output>,
    /// Alive while `FUTURE`; pinned (dropped in place).
    future: UnsafeCell<ManuallyDrop<F>>,
}

/// Drops `v`, swallowing a panic of its destructor (the task boundary
/// catches panics; the shard keeps running).
fn drop_quietly<T>(v: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(v))) {
        // A payload whose own drop panics would abort; so be it.
        std::mem::forget(payload);
    }
}

impl<H: Home, F: Future + 'static> Raw<H, F> {
    const VTABLE: VTable = VTable {
        run: Self::run,
        drop_future: Self::drop_future,
        dealloc: Self::dealloc,
    };

    const LAYOUT: Layout = Layout::new::<Self>();

    /// [`VTable::run`].
    ///
    /// # Safety
    ///
    /// `ptr` is a live `Raw<H, F>`, `SCHEDULED` and not `RUNNING`, whose
    /// runnable's reference the caller gives up here; home thread.
    unsafe fn run(ptr: NonNull<()>) {
        let raw = ptr.cast::<Self>().as_ptr();
        let cell = ptr.cast::<Header<H>>();
        // SAFETY: live (caller); the header is only used through shared
        // references.
        let h = unsafe { &(*raw).head.header };
        let st = h.state.get();
        if st & CLOSED != 0 {
            // SAFETY: the caller's contract.
            unsafe { run_closed(cell) };
            return;
        }
        h.state.set((st & !SCHEDULED) | RUNNING);
        // A waker lent to the poll, owning no reference (never dropped):
        // its clones take their own.
        // SAFETY: the data pointer is this live cell and the vtable's
        // functions uphold the `RawWaker` contract for it (module doc).
        let waker = ManuallyDrop::new(unsafe {
            Waker::from_raw(RawWaker::new(
                ptr.as_ptr().cast_const(),
                local_vtable::<H>(),
            ))
        });
        let mut cx = Context::from_waker(&waker);
        // The future is alive (not `CLOSED`), in the heap cell, which does
        // not move until freed, and is only dropped in place
        // (`drop_future_at`).
        // SAFETY: pinned in the cell as above; unaliased while polled
        // (home, `RUNNING`, not re-entered).
        let fut = unsafe { Pin::new_unchecked(&mut **(*raw).future.get()) };
        let out = match catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx))) {
            Ok(Poll::Pending) => {
                // SAFETY: the caller's contract; the poll is over.
                unsafe { after_pending(cell) };
                return;
            }
            Ok(Poll::Ready(v)) => Ok(v),
            Err(p) => Err(p),
        };
        // SAFETY: live, the future alive and not referenced any more.
        unsafe { Self::drop_future_at(raw) };
        // (Read after the future's drop, which may have changed it.)
        let st = h.state.get() & !(RUNNING | SCHEDULED);
        if st & (HANDLE | CLOSED) == HANDLE {
            // SAFETY: home; the handle reads the output only once
            // `COMPLETED` is set, below. The slot is `None` (only this
            // completion fills it): a write, no drop of the old value.
            unsafe { (*raw).head.output.get().write(Some(out)) };
            h.state.set(st | COMPLETED);
        } else {
            h.state.set(st | COMPLETED | CLOSED);
            drop_quietly(out);
        }
        notify(h);
        // SAFETY: home; the runnable's reference is given up.
        unsafe { drop_local(cell) };
    }

    /// [`VTable::drop_future`].
    ///
    /// # Safety
    ///
    /// `ptr` is a live `Raw<H, F>`; home thread; not while it is polled.
    unsafe fn drop_future(ptr: NonNull<()>) {
        let raw = ptr.cast::<Self>().as_ptr();
        // SAFETY: live (caller).
        if unsafe { &(*raw).head.header }.state.get() & FUTURE != 0 {
            // SAFETY: live, the future alive and not referenced.
            unsafe { Self::drop_future_at(raw) };
        }
    }

    /// Clears `FUTURE` and drops the future where it lies (it is pinned),
    /// swallowing a panic of its destructor.
    ///
    /// # Safety
    ///
    /// `raw` is live, its future alive (`FUTURE`) and not referenced; home
    /// thread.
    unsafe fn drop_future_at(raw: *mut Self) {
        // SAFETY: live (caller).
        let h = unsafe { &(*raw).head.header };
        h.state.set(h.state.get() & !FUTURE);
        let dropped = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: alive and unreferenced (caller); never dropped again
            // (`FUTURE` is clear; after a panic the drop glue still
            // dropped the remaining fields).
            unsafe { ManuallyDrop::drop(&mut *(*raw).future.get()) }
        }));
        if let Err(payload) = dropped {
            // A payload whose own drop panics would abort; so be it.
            std::mem::forget(payload);
        }
    }

    /// [`VTable::dealloc`].
    ///
    /// # Safety
    ///
    /// `ptr` is a live `Raw<H, F>` with no reference left (see the module
    /// doc), on the home thread; its future was dropped.
    unsafe fn dealloc(ptr: NonNull<()>) {
        let raw = ptr.cast::<Self>();
        let p = raw.as_ptr();
        // The head's fields that need a drop (the awaiter, the home, any
        // output left) go one by one: a drop of the whole head was an
        // out-of-line call. The future is `ManuallyDrop` and already gone.
        // SAFETY: live and unreferenced (caller): each is dropped once, here.
        unsafe {
            std::ptr::drop_in_place(&raw mut (*p).head.header.awaiter);
            std::ptr::drop_in_place(&raw mut (*p).head.header.home);
            std::ptr::drop_in_place(&raw mut (*p).head.output);
        }
        // SAFETY: allocated by `spawn` from the pool with this layout, on
        // this thread (home), and not used afterwards.
        unsafe { crate::smp::pool::free(raw.cast(), Self::LAYOUT) };
    }
}

/// Makes a task of `future` in scheduling group `group`, living at
/// `home`, scheduled once: queue the returned [`Runnable`] to start it.
pub(crate) fn spawn<H, F>(
    home: H,
    group: usize,
    future: F,
) -> (Runnable<H>, JoinHandle<F::Output, H>)
where
    H: Home,
    F: Future + 'static,
{
    let block = crate::smp::pool::alloc(Raw::<H, F>::LAYOUT).cast::<Raw<H, F>>();
    let raw = Raw {
        head: Head {
            header: Header {
                vtable: &Raw::<H, F>::VTABLE,
                state: Cell::new(SCHEDULED | HANDLE | FUTURE),
                refs: Cell::new(2),
                foreign: AtomicU32::new(0),
                group,
                awaiter: Cell::new(None),
                home,
            },
            output: UnsafeCell::new(None),
        },
        future: UnsafeCell::new(ManuallyDrop::new(future)),
    };
    // SAFETY: the block is fresh, sized and aligned for `Raw<H, F>`.
    unsafe { block.as_ptr().write(raw) };
    let ptr = block.cast::<Header<H>>();
    (
        Runnable { ptr },
        JoinHandle {
            ptr,
            _marker: PhantomData,
        },
    )
}

/// # Safety
///
/// `ptr` is a live cell (the caller holds a reference).
unsafe fn header<'a, H>(ptr: NonNull<Header<H>>) -> &'a Header<H> {
    // SAFETY: live (caller); the header is only accessed through shared
    // references (its mutable fields are `Cell`s and an atomic).
    unsafe { ptr.as_ref() }
}

/// Wakes the task at home. `Some` when it must be queued (with a new
/// reference). Home thread, holding a reference.
///
/// # Safety
///
/// `ptr` is live; home thread.
unsafe fn wake_local<H: Home>(ptr: NonNull<Header<H>>) -> Option<Runnable<H>> {
    // SAFETY: the caller's contract.
    let h = unsafe { header(ptr) };
    let st = h.state.get();
    if st & (SCHEDULED | COMPLETED | CLOSED) != 0 {
        return None;
    }
    h.state.set(st | SCHEDULED);
    if st & RUNNING != 0 {
        // Queued again by `run` once the poll returns.
        return None;
    }
    // SAFETY: home thread, live.
    unsafe { add_ref(ptr) };
    Some(Runnable { ptr })
}

/// # Safety
///
/// `ptr` is live; home thread.
#[inline]
unsafe fn add_ref<H>(ptr: NonNull<Header<H>>) {
    // SAFETY: the caller's contract.
    let h = unsafe { header(ptr) };
    let n = h.refs.get();
    if n == u32::MAX {
        std::process::abort();
    }
    h.refs.set(n + 1);
}

/// Drops a local reference. `Some`: a closed task to queue (see
/// [`last_ref`]).
///
/// # Safety
///
/// `ptr` is live and the caller owns one of its local references, given
/// up here; home thread.
#[inline]
unsafe fn release_local<H: Home>(ptr: NonNull<Header<H>>) -> Option<Runnable<H>> {
    // SAFETY: the caller's contract.
    let h = unsafe { header(ptr) };
    let n = h.refs.get() - 1;
    h.refs.set(n);
    if n == 0 {
        // SAFETY: home, and no local reference is left.
        unsafe { last_ref(ptr) }
    } else {
        None
    }
}

/// [`release_local`], queuing the task if that closed it (rare: the
/// queue's push out of line).
///
/// # Safety
///
/// As for [`release_local`].
#[inline(always)]
unsafe fn drop_local<H: Home>(ptr: NonNull<Header<H>>) {
    // SAFETY: the caller's contract.
    if let Some(r) = unsafe { release_local(ptr) } {
        schedule_cold(r);
    }
}

/// [`Home::schedule`] off the hot path.
#[cold]
#[inline(never)]
fn schedule_cold<H: Home>(r: Runnable<H>) {
    H::schedule(r);
}

/// Drops a foreign reference (at home).
///
/// # Safety
///
/// `ptr` is live and the caller owns one of its foreign references, given
/// up here; home thread.
unsafe fn release_foreign<H: Home>(ptr: NonNull<Header<H>>) -> Option<Runnable<H>> {
    // SAFETY: the caller's contract.
    let h = unsafe { header(ptr) };
    if h.foreign.fetch_sub(1, Ordering::AcqRel) == 1 && h.refs.get() == 0 {
        // SAFETY: home, and no reference of either kind is left.
        unsafe { last_ref(ptr) }
    } else {
        None
    }
}

/// `refs` just reached 0: frees the cell if no foreign reference is left
/// either, unless its future is still alive: then the task is closed and
/// returned to be queued once more, so that the run loop drops the future.
///
/// # Safety
///
/// `ptr` is live with `refs == 0`; home thread.
#[cold]
unsafe fn last_ref<H: Home>(ptr: NonNull<Header<H>>) -> Option<Runnable<H>> {
    // SAFETY: the caller's contract.
    let h = unsafe { header(ptr) };
    // Only home decrements `foreign`; an increment needs a reference, and
    // with both counts at 0 nobody holds one: a 0 read here is final
    // (module doc).
    if h.foreign.load(Ordering::Acquire) != 0 {
        return None;
    }
    let st = h.state.get();
    if st & (COMPLETED | CLOSED) == 0 {
        h.state.set(st | SCHEDULED | CLOSED);
        h.refs.set(1);
        return Some(Runnable { ptr });
    }
    // SAFETY: no reference is left and the future was dropped: at
    // completion, or when the task closed (`run`, or the runnable's drop).
    // An output left unread is dropped with the cell.
    unsafe { (h.vtable.dealloc)(ptr.cast()) };
    None
}

/// Wakes the [`JoinHandle`]'s awaiter, if any. Home thread.
///
/// The usual awaiter is the waker of a task of the same home (the task
/// awaiting the handle): that one is woken here, without the waker's
/// indirect call and its home check.
#[inline(always)]
fn notify<H: Home>(h: &Header<H>) {
    let Some(w) = h.awaiter.take() else { return };
    match neighbour(&w, h) {
        Some(ptr) => {
            std::mem::forget(w);
            // SAFETY: home (the caller is at `h`'s, the same); the waker's
            // reference, now owned here, is given up.
            unsafe { wake_owned(ptr) }
        }
        None => w.wake(),
    }
}

/// The cell of `w` if it is a local waker of a task whose home is the
/// same as `h`'s (so a caller at `h`'s home is at that task's home too).
#[inline]
fn neighbour<H: Home>(w: &Waker, h: &Header<H>) -> Option<NonNull<Header<H>>> {
    if !std::ptr::eq(w.vtable(), local_vtable::<H>()) {
        return None;
    }
    let ptr = waker::cell::<H>(w.data());
    // SAFETY: a waker with this vtable is a local waker of a cell of home
    // type `H` (`waker.rs`), live while the waker holds its reference.
    unsafe { header(ptr) }.home.same(&h.home).then_some(ptr)
}

/// Wakes the task at home, giving up a local reference that the caller
/// owns: it becomes the runnable's if the task gets queued.
///
/// # Safety
///
/// `ptr` is live and the caller owns one of its local references; home
/// thread.
#[inline(always)]
unsafe fn wake_owned<H: Home>(ptr: NonNull<Header<H>>) {
    // SAFETY: the caller's contract.
    let h = unsafe { header(ptr) };
    let st = h.state.get();
    if st & (SCHEDULED | RUNNING | COMPLETED | CLOSED) == 0 {
        // The common case: the reference becomes the runnable's.
        h.state.set(st | SCHEDULED);
        H::schedule(Runnable { ptr });
    } else {
        // SAFETY: the caller's contract.
        unsafe { wake_owned_busy(ptr) }
    }
}

/// [`wake_owned`] of a task that is queued, running or done.
///
/// # Safety
///
/// As for [`wake_owned`].
#[cold]
#[inline(never)]
unsafe fn wake_owned_busy<H: Home>(ptr: NonNull<Header<H>>) {
    // SAFETY: home, live; then the caller's reference is given up.
    let (woken, closed) = unsafe { (wake_local(ptr), release_local(ptr)) };
    if let Some(r) = woken.or(closed) {
        H::schedule(r);
    }
}

/// Clones `w` at `h`'s home: the waker of a task of the same home (the
/// task awaiting a handle, usually) takes its local reference here, without
/// the waker's indirect call and its home check.
#[inline(always)]
fn clone_at_home<H: Home>(w: &Waker, h: &Header<H>) -> Waker {
    let Some(ptr) = neighbour(w, h) else {
        return w.clone();
    };
    // SAFETY: home (the caller is at `h`'s, the same); live (`w` holds a
    // reference).
    unsafe { add_ref(ptr) };
    // SAFETY: a local waker of that live cell, owning the reference just
    // taken (the vtable's contract, module doc).
    unsafe { Waker::from_raw(RawWaker::new(w.data(), local_vtable::<H>())) }
}

/// A task that is scheduled: run it (on its home) with [`Runnable::run`].
///
/// Owns one local reference and the `SCHEDULED` state.
pub(crate) struct Runnable<H: Home> {
    ptr: NonNull<Header<H>>,
}

// SAFETY: a runnable may be moved between threads inside queues (as a
// pointer); it is only run or dropped on its home thread: `run` and `drop`
// check `is_home` and leak it anywhere else, touching nothing
// (`run_at_home`'s caller guarantees it is home). The fields
// other threads read (`home`) are `Sync`.
unsafe impl<H: Home> Send for Runnable<H> {}

impl<H: Home> std::fmt::Debug for Runnable<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runnable").field("ptr", &self.ptr).finish()
    }
}

impl<H: Home> Runnable<H> {
    /// The task's scheduling group.
    #[inline]
    pub(crate) fn group(&self) -> usize {
        // SAFETY: the runnable holds a reference; `group` is immutable.
        unsafe { header(self.ptr) }.group
    }

    /// The task's identity (its cell's address, the same for every waker;
    /// the debug run queue's shuffle tells tasks apart by it).
    #[cfg(debug_assertions)]
    pub(crate) fn id(&self) -> *const () {
        self.ptr.as_ptr().cast_const().cast()
    }

    /// Where the task lives.
    #[inline]
    pub(crate) fn home(&self) -> &H {
        // SAFETY: the runnable holds a reference; `home` is immutable.
        &unsafe { header(self.ptr) }.home
    }

    /// Polls the task once (if not closed) and gives up the runnable:
    /// queued again if it woke itself while polled, freed if it was the
    /// last reference. Off its home thread it is leaked instead.
    #[inline]
    pub(crate) fn run(self) {
        if !self.home().is_home() {
            // Never happens in the reactor (it runs only its own queue,
            // which only its own tasks enter); leaking is the safe answer.
            std::mem::forget(self);
            return;
        }
        // SAFETY: home, just checked.
        unsafe { self.run_at_home() }
    }

    /// [`run`](Self::run) without the home check.
    ///
    /// # Safety
    ///
    /// The calling thread is the task's home (the thread its non-atomic
    /// state belongs to).
    #[inline(always)]
    pub(crate) unsafe fn run_at_home(self) {
        let ptr = self.ptr;
        std::mem::forget(self);
        // SAFETY: the runnable held a reference, now owned here.
        let h = unsafe { header(ptr) };
        // SAFETY: live, home (caller), `SCHEDULED` (a runnable exists) and
        // not `RUNNING` (the run in progress consumed its runnable); the
        // runnable's reference is given up.
        unsafe { (h.vtable.run)(ptr.cast()) }
    }
}

/// [`Runnable::run`] of a closed task: drops its future (if alive) and
/// gives up the runnable's reference.
///
/// # Safety
///
/// `ptr` is live, `SCHEDULED` and `CLOSED`, not `RUNNING`; the caller
/// gives up the runnable's reference; home thread.
#[cold]
unsafe fn run_closed<H: Home>(ptr: NonNull<Header<H>>) {
    // SAFETY: the caller's contract.
    let h = unsafe { header(ptr) };
    h.state.set(h.state.get() & !SCHEDULED);
    // SAFETY: home, not polling: the future (if any) may be dropped.
    unsafe { (h.vtable.drop_future)(ptr.cast()) };
    notify(h);
    // SAFETY: home; the runnable's reference is given up.
    unsafe { drop_local(ptr) };
}

/// What [`Runnable::run`] does after a poll returned `Pending`.
///
/// # Safety
///
/// `ptr` is live and `RUNNING`, its poll over; the caller gives up the
/// runnable's reference; home thread.
#[inline(always)]
unsafe fn after_pending<H: Home>(ptr: NonNull<Header<H>>) {
    // SAFETY: the caller's contract.
    let h = unsafe { header(ptr) };
    let st = h.state.get() & !RUNNING;
    if st & (CLOSED | SCHEDULED) == 0 {
        h.state.set(st);
        // SAFETY: home; the runnable's reference is given up.
        unsafe { drop_local(ptr) };
    } else if st & CLOSED == 0 {
        // Woke itself (or was woken) while it ran: queue it again, with
        // this runnable's reference.
        h.state.set(st);
        H::schedule(Runnable { ptr });
    } else {
        // SAFETY: the caller's contract.
        unsafe { aborted_while_running(ptr, st) };
    }
}

/// [`after_pending`] of a task aborted while it ran (`st`: its state
/// without `RUNNING`).
///
/// # Safety
///
/// As for [`after_pending`].
#[cold]
#[inline(never)]
unsafe fn aborted_while_running<H: Home>(ptr: NonNull<Header<H>>, st: u8) {
    // SAFETY: the caller's contract.
    let h = unsafe { header(ptr) };
    h.state.set(st & !SCHEDULED);
    // SAFETY: home, not polling.
    unsafe { (h.vtable.drop_future)(ptr.cast()) };
    notify(h);
    // SAFETY: home; the runnable's reference is given up.
    unsafe { drop_local(ptr) };
}

impl<H: Home> Drop for Runnable<H> {
    /// Cancels the task: its future is dropped (at home) and its handle
    /// resolves to cancelled. Off its home thread the task is leaked.
    fn drop(&mut self) {
        let ptr = self.ptr;
        // SAFETY: the runnable holds a reference.
        let h = unsafe { header(ptr) };
        if !h.home.is_home() {
            return;
        }
        h.state.set((h.state.get() & !SCHEDULED) | CLOSED);
        // SAFETY: home, not polling (a runnable being run was consumed).
        unsafe { (h.vtable.drop_future)(ptr.cast()) };
        notify(h);
        // SAFETY: home; the runnable's reference is given up.
        unsafe { drop_local(ptr) };
    }
}

mod join;
mod request;
mod waker;
pub(crate) use join::JoinHandle;
pub(crate) use request::Request;
use waker::local_vtable;

#[cfg(all(test, not(loom)))]
mod tests;
