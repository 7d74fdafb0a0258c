//! One cross-shard call as a work item that travels (as Seastar's
//! `smp_message_queue` work items do): built on the origin shard, sent to
//! the target through the SPSC ring, run there, and sent back through the
//! reverse ring, where the caller's [`Submit`](super::Submit) takes the
//! result.
//!
//! # Why not a task per call
//!
//! Spawning the call as an `async-task` task on the target (the first
//! design) cost about 1000 instructions per call (callgrind, 1024 calls in
//! flight): the task header's atomic state bounced between the two cores
//! (scheduled on the origin, run on the target, its output read and the
//! handle dropped on the origin), and 1024 task allocations freed in a
//! burst overflowed the allocator's thread cache on every batch. A cell
//! has no atomic state at all: each field is owned by one side, and the
//! ring's release/acquire publication hands the cell over. It is
//! allocated and freed on the origin shard only, from a shard-local free
//! list (`pool.rs`).
//!
//! # Protocol
//!
//! Messages about a call (`Op`) carry its pointer: `Start` (origin to
//! target), `Return` (target to origin, exactly once per call), `Cancel`
//! (origin to target, when the caller dropped its `Submit` before the
//! return) and `CancelAck` (target to origin, once per `Cancel`). The
//! target polls the call's future in place, inside the cell, first with a
//! *probe* waker: a future that completes at once (the common case) costs
//! no task at all. A future that keeps a waker (it clones the probe) or
//! wakes itself gets a *driver*: a local task of the target, in the call's
//! scheduling group, that polls the cell again when woken. The origin
//! frees the cell once it has the return and the caller is done with it
//! (took the result, or dropped its `Submit` after the return); a caller
//! that left before the return sent a cancel, and then the cell is freed
//! at the acknowledgement (which follows the return on the same ring), so
//! the target never sees a freed cell.
//!
//! Ownership of the fields: the origin touches `waker`, `returned` and
//! `abandoned`; the target touches `stage` (between `Start` and
//! `Return`), `driver` and `finished`. The origin reads `stage` only
//! after the return (the ring's acquire makes the target's writes
//! visible).

use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::pool;
use crate::reactor::{self, Runnable};

/// What travels through a ring between two shards.
pub(crate) enum Message {
    /// A task of the destination shard woken elsewhere.
    Task(Runnable),
    /// A step of a cross-shard call.
    Call(CallPtr, Op),
}

/// The step of a call a [`Message::Call`] carries; see the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Start,
    Return,
    Cancel,
    CancelAck,
}

/// A pointer to a call cell, as sent between its two shards.
pub(crate) struct CallPtr(NonNull<Header>);

// SAFETY: a cell's fields are each touched by one shard only (module doc);
// the pointer moves between the two shards through the SPSC rings, whose
// release/acquire publication orders each side's accesses.
unsafe impl Send for CallPtr {}

/// The type-erased operations of a cell.
struct VTable {
    /// Target: runs the closure if not yet run and polls the future with `cx`;
    /// `Ready` once the outcome is stored.
    poll: unsafe fn(NonNull<Header>, &mut Context<'_>) -> Poll<()>,
    /// Target: drops the closure or the future (the outcome, if any, stays).
    cancel: unsafe fn(NonNull<Header>),
    /// Origin: moves the outcome into `*out` (an `Option<Outcome<T>>`),
    /// then frees the cell as `free` does.
    take: unsafe fn(NonNull<Header>, *mut ()),
    /// Origin: drops the cell and gives its memory back to the pool.
    free: unsafe fn(NonNull<Header>),
}

/// The start of every cell (`repr(C)`: a cell pointer is a header pointer).
#[repr(C)]
pub(crate) struct Header {
    vtable: &'static VTable,
    origin: usize,
    target: usize,
    group: usize,
    // Origin side.
    waker: UnsafeCell<Option<Waker>>,
    returned: Cell<bool>,
    abandoned: Cell<bool>,
    // Target side.
    driver: UnsafeCell<Option<(async_task::Task<(), usize>, Waker)>>,
    finished: Cell<bool>,
}

/// The output of a call, or the panic that ended it.
pub(crate) type Outcome<T> = std::thread::Result<T>;

enum Stage<F, Fut, T> {
    Closure(F),
    Running(Fut),
    Done(Outcome<T>),
    Empty,
}

#[repr(C)]
struct CallCell<F, Fut, T> {
    head: Header,
    stage: UnsafeCell<Stage<F, Fut, T>>,
}

impl<F, Fut, T> CallCell<F, Fut, T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    const VTABLE: VTable = VTable {
        poll: Self::poll,
        cancel: Self::cancel,
        take: Self::take,
        free: Self::free,
    };

    /// # Safety
    /// On the target, between `Start` and `Return`, not re-entered.
    unsafe fn stage<'a>(ptr: NonNull<Header>) -> &'a mut Stage<F, Fut, T> {
        // SAFETY: `ptr` points to a live `CallCell<F, Fut, T>` (it was made
        // by `new` with this vtable); only the target touches `stage` in
        // this phase and no other reference to it is alive (caller).
        unsafe { &mut *(*ptr.cast::<Self>().as_ptr()).stage.get() }
    }

    unsafe fn poll(ptr: NonNull<Header>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: called by the target in its phase (vtable contract).
        let stage = unsafe { Self::stage(ptr) };
        if let Stage::Closure(_) = stage {
            let Stage::Closure(f) = std::mem::replace(stage, Stage::Empty) else {
                unreachable!()
            };
            match std::panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(fut) => *stage = Stage::Running(fut),
                Err(p) => {
                    *stage = Stage::Done(Err(p));
                    return Poll::Ready(());
                }
            }
        }
        let Stage::Running(fut) = stage else {
            return Poll::Ready(());
        };
        // SAFETY: the future lives inside the heap cell, which does not
        // move until freed, and is dropped in place (by the assignment
        // below or by `cancel`/`free`).
        let fut = unsafe { Pin::new_unchecked(fut) };
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => {
                *stage = Stage::Done(Ok(v));
                Poll::Ready(())
            }
            Err(p) => {
                *stage = Stage::Done(Err(p));
                Poll::Ready(())
            }
        }
    }

    unsafe fn cancel(ptr: NonNull<Header>) {
        // SAFETY: called by the target in its phase (vtable contract).
        let stage = unsafe { Self::stage(ptr) };
        if matches!(stage, Stage::Closure(_) | Stage::Running(_)) {
            *stage = Stage::Empty;
        }
    }

    unsafe fn take(ptr: NonNull<Header>, out: *mut ()) {
        // SAFETY: called by the origin after the return: the target is done
        // with `stage` and the ring's acquire made its writes visible.
        let stage = unsafe { &mut *(*ptr.cast::<Self>().as_ptr()).stage.get() };
        let outcome = match std::mem::replace(stage, Stage::Empty) {
            Stage::Done(o) => Some(o),
            _ => None,
        };
        // SAFETY: `out` is the caller's `Option<Outcome<T>>` for this `T`;
        // then the cell is unused, as `free` requires.
        unsafe {
            *out.cast::<Option<Outcome<T>>>() = outcome;
            Self::free(ptr);
        }
    }

    unsafe fn free(ptr: NonNull<Header>) {
        let cell = ptr.cast::<Self>();
        // Of the header only the two options own anything, and both are
        // empty by now (the waker was taken by the return or the abandon,
        // the driver by `finish`): only the stage needs dropping.
        // SAFETY: written by `new` into a pool block of this layout; freed
        // once, by the origin, when nobody uses the cell (module doc).
        unsafe {
            let c = cell.as_ptr();
            debug_assert!((*(*c).head.waker.get()).is_none());
            debug_assert!((*(*c).head.driver.get()).is_none());
            std::ptr::drop_in_place((*c).stage.get());
            pool::free(cell.cast(), std::alloc::Layout::new::<Self>());
        }
    }
}

/// Origin: a new call of `f` from shard `origin` to `target`, in `group`.
pub(crate) fn new<F, Fut, T>(origin: usize, target: usize, group: usize, f: F) -> CallPtr
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let cell = CallCell {
        head: Header {
            vtable: &CallCell::<F, Fut, T>::VTABLE,
            origin,
            target,
            group,
            waker: UnsafeCell::new(None),
            returned: Cell::new(false),
            abandoned: Cell::new(false),
            driver: UnsafeCell::new(None),
            finished: Cell::new(false),
        },
        stage: UnsafeCell::new(Stage::Closure(f)),
    };
    let block = pool::alloc(std::alloc::Layout::new::<CallCell<F, Fut, T>>());
    let ptr = block.cast::<CallCell<F, Fut, T>>();
    // SAFETY: the block is fresh, of this type's layout.
    unsafe { ptr.as_ptr().write(cell) };
    CallPtr(ptr.cast())
}

impl CallPtr {
    fn header(&self) -> &Header {
        // SAFETY: the cell is alive while a `CallPtr` to it is in use
        // (module doc: the origin frees it only when nobody needs it). Only
        // `Cell`/`UnsafeCell` fields are mutated through this reference.
        unsafe { self.0.as_ref() }
    }

    /// The call's scheduling group.
    pub(crate) fn group(&self) -> usize {
        self.header().group
    }

    pub(crate) fn copy(&self) -> CallPtr {
        CallPtr(self.0)
    }

    /// Handles one message about this call on the shard it arrived at.
    pub(crate) fn deliver(self, op: Op) {
        match op {
            Op::Start => self.start(),
            Op::Return => self.returned(),
            Op::Cancel => self.cancelled(),
            Op::CancelAck => {
                // SAFETY: the return came first on this ring and the caller
                // is gone: nobody uses the cell any more.
                unsafe { (self.header().vtable.free)(self.0) }
            }
        }
    }

    // --- target side ---

    fn start(self) {
        let waker = ProbeWaker::probe(self.0);
        let mut cx = Context::from_waker(waker.waker());
        // SAFETY: target phase: between Start and Return, not re-entered.
        if unsafe { (self.header().vtable.poll)(self.0, &mut cx) }.is_ready() {
            self.finish();
        }
    }

    /// Target: sends the call back (the outcome, if any, is in the cell).
    fn finish(self) {
        let h = self.header();
        h.finished.set(true);
        // SAFETY: target-side field, no other reference alive.
        let driver = unsafe { (*h.driver.get()).take() };
        // Dropping the handle closes the driver: it is never polled again
        // (it may be running this very call, returning `Ready` now).
        drop(driver);
        let origin = h.origin;
        reactor::send(origin, Message::Call(self, Op::Return));
    }

    fn cancelled(self) {
        let h = self.header();
        if !h.finished.get() {
            // SAFETY: target phase (not finished); the driver, if any, is
            // not running (we are, on its thread).
            unsafe { (h.vtable.cancel)(self.0) };
            self.copy().finish();
        }
        let origin = h.origin;
        reactor::send(origin, Message::Call(self, Op::CancelAck));
    }

    /// Target: the driver's waker, creating the driver on first use.
    fn driver_waker(&self) -> Waker {
        let h = self.header();
        // SAFETY: target-side field; no other reference to it is alive
        // (the future being polled only holds the stage).
        let slot = unsafe { &mut *h.driver.get() };
        if let Some((_, w)) = slot {
            return w.clone();
        }
        let ptr = self.copy();
        let (shared, id) = reactor::with(|s| (s.shared.clone(), s.id));
        let (runnable, task) = async_task::Builder::new().metadata(h.group).spawn_local(
            move |_| Drive(ptr),
            move |r| reactor::schedule(r, &shared, id),
        );
        let waker = runnable.waker();
        // Runs once soon (a spurious poll is harmless), then when woken.
        runnable.schedule();
        *slot = Some((task, waker.clone()));
        waker
    }

    // --- origin side ---

    /// Origin: the call came back.
    fn returned(self) {
        let h = self.header();
        h.returned.set(true);
        if h.abandoned.get() {
            // The caller left and sent a cancel: its ack frees the cell.
            return;
        }
        // SAFETY: origin-side field, no other reference alive.
        if let Some(w) = unsafe { (*h.waker.get()).take() } {
            w.wake();
        }
    }
}

/// The origin's handle on a call in flight, owned by [`Submit`](super::Submit).
/// `!Send`: it touches the origin's side of the cell, so it stays there.
pub(crate) struct Pending<T> {
    ptr: Option<CallPtr>,
    _out: PhantomData<fn() -> T>,
    _not_send: PhantomData<*const ()>,
}

impl<T> Pending<T> {
    pub(crate) fn new(ptr: CallPtr) -> Pending<T> {
        Pending {
            ptr: Some(ptr),
            _out: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// The outcome once the call is back; `None` if it has none (the
    /// target dropped it).
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outcome<T>>> {
        let ptr = self.ptr.as_ref().expect("polled after completion").copy();
        let h = ptr.header();
        if !h.returned.get() {
            // SAFETY: origin-side field, no other reference alive.
            let slot = unsafe { &mut *h.waker.get() };
            match slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        let mut out: Option<Outcome<T>> = None;
        self.ptr = None;
        // SAFETY: returned; the vtable's `T` is this `T` (built by `new`
        // for the `Submit<T>` that owns this handle); then nobody needs
        // the cell (the caller is done, no cancel was sent).
        unsafe { (h.vtable.take)(ptr.0, (&mut out as *mut Option<Outcome<T>>).cast()) };
        Poll::Ready(out)
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        let Some(ptr) = self.ptr.take() else { return };
        let h = ptr.header();
        if h.returned.get() {
            // SAFETY: back and unwanted: nobody needs the cell.
            unsafe { (h.vtable.free)(ptr.0) };
            return;
        }
        h.abandoned.set(true);
        // SAFETY: origin-side field.
        drop(unsafe { (*h.waker.get()).take() });
        let target = h.target;
        // Off its shard (the runtime has stopped: say a `Submit` inside the
        // value `run` returned) nobody answers a cancel: the cell leaks, as
        // everything a stopped shard held does.
        let _ = reactor::try_with(|s| s.push_outgoing(target, Message::Call(ptr, Op::Cancel)));
    }
}

/// The target's local task for a call whose future did not finish at its
/// first poll. Never polled after the call finished (`finish` drops its
/// handle, which closes it), so the cell is alive whenever it runs.
struct Drive(CallPtr);

impl Future for Drive {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let ptr = self.0.copy();
        // SAFETY: target phase: the driver only runs while unfinished.
        if unsafe { (ptr.header().vtable.poll)(ptr.0, cx) }.is_ready() {
            ptr.finish();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// The probe waker of a call's first poll: cloning or waking it creates
/// the call's driver and hands out (or wakes) the driver's waker instead.
/// It lives on the stack of that poll only.
struct ProbeWaker {
    waker: std::mem::ManuallyDrop<Waker>,
}

static PROBE: RawWakerVTable =
    RawWakerVTable::new(probe_clone, probe_wake, probe_wake_by_ref, probe_drop);

impl ProbeWaker {
    fn probe(ptr: NonNull<Header>) -> ProbeWaker {
        // SAFETY: the vtable's functions uphold the RawWaker contract: the
        // data pointer is only used during the poll this waker is lent to
        // (clones are real wakers of the driver task).
        let waker = unsafe { Waker::from_raw(RawWaker::new(ptr.as_ptr().cast(), &PROBE)) };
        ProbeWaker {
            waker: std::mem::ManuallyDrop::new(waker),
        }
    }

    fn waker(&self) -> &Waker {
        &self.waker
    }
}

fn probe_ptr(data: *const ()) -> CallPtr {
    CallPtr(NonNull::new(data.cast_mut().cast()).expect("non-null probe"))
}

unsafe fn probe_clone(data: *const ()) -> RawWaker {
    let w = std::mem::ManuallyDrop::new(probe_ptr(data).driver_waker());
    RawWaker::new(w.data(), w.vtable())
}

unsafe fn probe_wake(data: *const ()) {
    // SAFETY: same contract as `wake_by_ref`.
    unsafe { probe_wake_by_ref(data) }
}

unsafe fn probe_wake_by_ref(data: *const ()) {
    probe_ptr(data).driver_waker().wake();
}

unsafe fn probe_drop(_: *const ()) {}
