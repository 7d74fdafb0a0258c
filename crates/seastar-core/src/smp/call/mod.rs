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
//! Ownership of the fields: the origin touches `waker`, `returned`,
//! `abandoned`, `reply` and `inline`; the target touches `stage` (between
//! `Start` and `Return`), `driver` and `finished`. The origin reads
//! `stage` only after the return (the ring's acquire makes the target's
//! writes visible).
//!
//! # Small outputs travel in the return
//!
//! A call whose output fits a word (`T` of at most 8 bytes, the common
//! `submit_to(.., || async { n })`) returns it inside the message, as
//! `Op::Reply` (the `Return` step with the value): the target moves
//! the value out of the future into the message and leaves the stage
//! empty, and the origin keeps it on its own line (`reply`) for the
//! caller. So the origin never reads the cell's second line, which the
//! target wrote last: with one call in flight that read was a second
//! cache-line crossing after the reply's own, on the critical path (the
//! caller waits for it), and the next call's writes to that line no
//! longer wait for a read first. A panic, or a bigger output, stays in the
//! stage and returns as before (`Op::Return`).
//!
//! Likewise a closure that fits a word, of a call in the default
//! scheduling group, travels inside its start (`Op::StartInline`, with the
//! monomorphic entry point that runs it, a [`StartFn`]; the message
//! encoding is `call_msg.rs`): the origin leaves the stage empty, and the
//! target builds the future straight into it, polls it there and leaves
//! it empty again. So the target only *writes* the cell's second line on
//! such a call (the stage, `finished`; it reads the header only if the
//! future waits), and those writes do not stall it the way a read of a
//! line last written on the other core does: the start no longer costs a
//! second crossing before the call can run. The origin shard comes from
//! the ring the start arrived on, not from the header.
//!
//! # The probe waker and other threads
//!
//! A `Waker` must be usable from any thread, and the probe is a `Waker`:
//! a future may hand `cx.waker()` to a scoped thread that clones or wakes
//! it while the first poll runs. So the probe touches nothing that is not
//! thread-safe: its data points to a [`Probe`] on the poll's stack (the
//! call and the target's schedule function, both `Sync`), and the driver
//! slot is a `OnceLock`, initialised by whichever thread clones or wakes
//! first (the driver is an `async-task` task built with the `Send`
//! `spawn`, so building it off the target thread is fine: its schedule
//! function sends it to the target, and it only ever runs there). The
//! slot is taken (by `finish`) only after the poll returned, when no
//! reference to the probe can be alive.
//!
//! Calls need no shard lookup: every step gets the shard's [`Transport`]
//! from whoever delivers it (the transport itself, or the origin's
//! [`Pending`], which holds it), so this module uses nothing of the
//! reactor.

use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use super::call_msg::{CallMsg, Op, Opened};
use super::pool;
use super::transport::{Message, Transport};

#[cfg(test)]
thread_local! {
    /// Cells freed by this thread (tests).
    static FREED: Cell<usize> = const { Cell::new(0) };
}

mod probe;
#[cfg(test)]
mod tests;

use probe::{Probe, TransportPtr};

/// A pointer to a call cell, as sent between its two shards.
pub(crate) struct CallPtr(NonNull<OriginSide>);

/// Target: runs a call whose closure came inline (`closure`, an `F`), in
/// the empty stage of the cell, polling its future with `cx`; returns as
/// [`VTable::poll`] does.
pub(crate) type StartFn =
    unsafe fn(NonNull<OriginSide>, Payload, &mut Context<'_>, &mut Payload) -> Poll<bool>;

// SAFETY: a cell's fields are each touched by one shard only (module doc);
// the pointer moves between the two shards through the SPSC rings, whose
// release/acquire publication orders each side's accesses.
unsafe impl Send for CallPtr {}

/// A call's output carried inside its return message (see the module
/// doc): room for a `T` of at most 8 bytes and alignment 8.
pub(crate) type Payload = MaybeUninit<u64>;

/// Whether a `T` travels in a [`Payload`].
const fn fits_payload<T>() -> bool {
    std::mem::size_of::<T>() <= std::mem::size_of::<Payload>()
        && std::mem::align_of::<T>() <= std::mem::align_of::<Payload>()
}

/// The type-erased operations of a cell.
struct VTable {
    /// Target: runs the closure if not yet run and polls the future with `cx`;
    /// `Ready(true)` once the output was moved into `*out` (the stage left
    /// empty: outputs that [fit](fits_payload), when the call did not
    /// panic), `Ready(false)` once the outcome is stored in the stage.
    poll: unsafe fn(NonNull<OriginSide>, &mut Context<'_>, out: &mut Payload) -> Poll<bool>,
    /// Target: drops the closure or the future (the outcome, if any, stays).
    cancel: unsafe fn(NonNull<OriginSide>),
    /// Origin: moves the outcome (the reply's, or the stage's) into `*out`
    /// (an `Option<Outcome<T>>`), then frees the cell as `free` does.
    take: unsafe fn(NonNull<OriginSide>, *mut ()),
    /// Origin: drops the cell (and a reply not taken) and gives its memory
    /// back to the pool.
    free: unsafe fn(NonNull<OriginSide>),
}

/// The call's driver task and its waker (see [`Probe`]), boxed: only a
/// call whose future waits has one, and the slot stays one word.
type Driver = Box<(async_task::Task<(), crate::reactor::TaskMeta>, Waker)>;

/// The target's view of a cell, after the origin's line (see [`CallCell`]).
#[repr(C)]
pub(crate) struct Header {
    vtable: &'static VTable,
    origin: u32,
    group: u32,
    // Target side (the driver slot also by other threads during the
    // probe's poll, through the `OnceLock`: see the module doc).
    finished: Cell<bool>,
    driver: UnsafeCell<OnceLock<Driver>>,
}

/// The origin's side of a cell, on a line of its own. A cell pointer
/// points here (the cell's first field).
#[repr(C, align(64))]
pub(crate) struct OriginSide {
    waker: UnsafeCell<Option<Waker>>,
    returned: Cell<bool>,
    abandoned: Cell<bool>,
    /// `reply` holds the output (a `T`), which the stage does not.
    inline: Cell<bool>,
    target: usize,
    /// The header's vtable, for the origin's steps: the origin reads
    /// nothing of the target's line when the output came inline.
    vtable: &'static VTable,
    /// The output, when it came in an `Op::Reply`.
    reply: UnsafeCell<Payload>,
}

/// Where [`Header`] starts in every cell: right after the origin's line
/// (`repr(C)`, and the header's alignment divides the line's).
const HEADER_AT: usize = std::mem::size_of::<OriginSide>();
const _: () = assert!(HEADER_AT == 64 && std::mem::align_of::<Header>() <= 64);

/// The output of a call, or the panic that ended it.
pub(crate) type Outcome<T> = std::thread::Result<T>;

enum Stage<F, Fut, T> {
    Closure(F),
    Running(Fut),
    Done(Outcome<T>),
    Empty,
}

/// A call: laid out by cache line, since its cost is the lines that cross
/// between the two cores. The origin's fields fill the first line, which
/// the target never touches; the target's fields (and the vtable) open the
/// second, and the stage (closure, future, outcome) follows them there, so
/// a small call's target reads and writes one line and the origin reads
/// that line back once (`pool.rs` aligns cells to lines).
#[repr(C)]
struct CallCell<F, Fut, T> {
    origin_side: OriginSide,
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
    unsafe fn stage<'a>(ptr: NonNull<OriginSide>) -> &'a mut Stage<F, Fut, T> {
        // SAFETY: `ptr` points to a live `CallCell<F, Fut, T>` (it was made
        // by `new` with this vtable); only the target touches `stage` in
        // this phase and no other reference to it is alive (caller).
        unsafe { &mut *(*ptr.cast::<Self>().as_ptr()).stage.get() }
    }

    /// [`VTable::poll`].
    ///
    /// # Safety
    ///
    /// `ptr` is a live cell made by [`new`] for these types; called on the
    /// target, between `Start` and `Return`, not re-entered.
    unsafe fn poll(
        ptr: NonNull<OriginSide>,
        cx: &mut Context<'_>,
        out: &mut Payload,
    ) -> Poll<bool> {
        // SAFETY: called by the target in its phase (vtable contract).
        let stage = unsafe { Self::stage(ptr) };
        if let Stage::Closure(_) = stage {
            let Stage::Closure(f) = std::mem::replace(stage, Stage::Empty) else {
                unreachable!()
            };
            // SAFETY: the stage was just emptied.
            if !unsafe { Self::run_closure(stage, f) } {
                return Poll::Ready(false);
            }
        }
        // SAFETY: the target's phase, as for this function.
        unsafe { Self::poll_running(stage, cx, out) }
    }

    /// Polls the future in `stage`, if it is still running (the rest of
    /// [`poll`](Self::poll)).
    ///
    /// # Safety
    ///
    /// `stage` is a live cell's, in the target's phase.
    #[inline(always)]
    unsafe fn poll_running(
        stage: &mut Stage<F, Fut, T>,
        cx: &mut Context<'_>,
        out: &mut Payload,
    ) -> Poll<bool> {
        let Stage::Running(fut) = stage else {
            return Poll::Ready(false);
        };
        // SAFETY: the future lives inside the heap cell, which does not
        // move until freed, and is dropped in place (by the assignment
        // below or by `cancel`/`free`).
        let fut = unsafe { Pin::new_unchecked(fut) };
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) if fits_payload::<T>() => {
                // (Dropping the finished future first, as the stage's
                // assignment does below; a panic in that drop would
                // unwind out of the target's loop either way.)
                *stage = Stage::Empty;
                // SAFETY: a `T` fits the payload (size and alignment).
                unsafe { out.as_mut_ptr().cast::<T>().write(v) };
                Poll::Ready(true)
            }
            Ok(Poll::Ready(v)) => {
                *stage = Stage::Done(Ok(v));
                Poll::Ready(false)
            }
            Err(p) => {
                *stage = Stage::Done(Err(p));
                Poll::Ready(false)
            }
        }
    }

    /// The [`StartFn`] of these types.
    ///
    /// # Safety
    ///
    /// `ptr` is a live cell made by [`new`] for these types with its
    /// closure inline (its stage empty), and `closure` is that closure;
    /// called once, on the target, after the `StartInline`.
    unsafe fn start_inline(
        ptr: NonNull<OriginSide>,
        closure: Payload,
        cx: &mut Context<'_>,
        out: &mut Payload,
    ) -> Poll<bool> {
        // SAFETY: `new` wrote an `F` into the payload (it fits), moved here
        // once.
        let f = unsafe { closure.as_ptr().cast::<F>().read() };
        // SAFETY: the target's phase (contract); only the target touches
        // the stage now.
        let stage: *mut Stage<F, Fut, T> = unsafe { Self::stage(ptr) };
        // SAFETY: the stage is valid for writes, and empty (`new` left it so).
        if !unsafe { Self::run_closure(stage, f) } {
            return Poll::Ready(false);
        }
        // SAFETY: as above; the future is pinned in the heap cell.
        unsafe { Self::poll_running(&mut *stage, cx, out) }
    }

    /// Runs the closure `f` into `stage`: its future, or its panic as the
    /// outcome. Returns whether a future is there to poll. (Written, not
    /// assigned: the stage holds `Empty`, nothing to drop, and an
    /// assignment would read the line first.)
    ///
    /// # Safety
    ///
    /// `stage` is valid for writes and holds `Stage::Empty`.
    #[inline(always)]
    unsafe fn run_closure(stage: *mut Stage<F, Fut, T>, f: F) -> bool {
        let (next, runs) = match std::panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(fut) => (Stage::Running(fut), true),
            Err(p) => (Stage::Done(Err(p)), false),
        };
        // SAFETY: valid for writes, and nothing in it to drop (contract).
        unsafe { stage.write(next) };
        runs
    }

    /// [`VTable::cancel`].
    ///
    /// # Safety
    ///
    /// As [`poll`](Self::poll), and the driver (if any) is not running.
    unsafe fn cancel(ptr: NonNull<OriginSide>) {
        // SAFETY: called by the target in its phase (vtable contract).
        let stage = unsafe { Self::stage(ptr) };
        if matches!(stage, Stage::Closure(_) | Stage::Running(_)) {
            *stage = Stage::Empty;
        }
    }

    /// [`VTable::take`].
    ///
    /// # Safety
    ///
    /// `ptr` is a live cell made by [`new`] for these types, back on its
    /// origin (the `Return` was received) and wanted by nobody else after
    /// this; `out` points to an `Option<Outcome<T>>` for this `T`.
    unsafe fn take(ptr: NonNull<OriginSide>, out: *mut ()) {
        // SAFETY: the cell is live and back (contract); origin-side fields.
        let o = unsafe { ptr.as_ref() };
        if o.inline.get() {
            // (The stage is empty: nothing of the target's line is read,
            // and the block goes back as is.)
            // SAFETY: `reply` holds a `T` (`inline`: written, not taken),
            // taken once here; `out` is the caller's `Option<Outcome<T>>`.
            unsafe {
                let v = (*o.reply.get()).as_ptr().cast::<T>().read();
                *out.cast::<Option<Outcome<T>>>() = Some(Ok(v));
                pool::free(ptr.cast(), std::alloc::Layout::new::<Self>());
            }
            #[cfg(test)]
            FREED.with(|n| n.set(n.get() + 1));
            return;
        }
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

    /// [`VTable::free`].
    ///
    /// # Safety
    ///
    /// `ptr` is a live cell made by [`new`] for these types, on its origin,
    /// used by nobody any more (its `Return`, and its `CancelAck` if a
    /// cancel was sent, received); it is freed once.
    unsafe fn free(ptr: NonNull<OriginSide>) {
        let cell = ptr.cast::<Self>();
        // Of the header only the two options own anything, and both are
        // empty by now (the waker was taken by the return or the abandon,
        // the driver by `finish`): only the stage needs dropping.
        // SAFETY: written by `new` into a pool block of this layout; freed
        // once, by the origin, when nobody uses the cell (module doc).
        unsafe {
            let c = cell.as_ptr();
            debug_assert!((*(*c).origin_side.waker.get()).is_none());
            debug_assert!((*(*c).head.driver.get()).get().is_none());
            if (*c).origin_side.inline.get() {
                // The output came inline and was not taken; the stage is
                // empty (and on the target's line: not read).
                std::ptr::drop_in_place((*(*c).origin_side.reply.get()).as_mut_ptr().cast::<T>());
            } else {
                std::ptr::drop_in_place((*c).stage.get());
            }
            pool::free(cell.cast(), std::alloc::Layout::new::<Self>());
        }
        #[cfg(test)]
        FREED.with(|n| n.set(n.get() + 1));
    }
}

/// Origin: a new call of `f` from shard `origin` to `target`, in `group`,
/// and the message that starts it.
pub(crate) fn new<F, Fut, T>(origin: usize, target: usize, group: usize, f: F) -> (CallPtr, Message)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    // The closure inline (see the module doc): the default group only, as
    // the target enters the call's group before it reads any of the cell.
    let inline = fits_payload::<F>() && group == 0;
    let mut closure = Payload::uninit();
    let stage = if inline {
        // SAFETY: an `F` fits the payload (size and alignment); it is read
        // once, by `start_inline` on the target (or leaked with the
        // message if the target stopped).
        unsafe { closure.as_mut_ptr().cast::<F>().write(f) };
        Stage::Empty
    } else {
        Stage::Closure(f)
    };
    let block = pool::alloc(std::alloc::Layout::new::<CallCell<F, Fut, T>>());
    let ptr = block.cast::<CallCell<F, Fut, T>>();
    // (The block taken first, so that the cell can be built in place
    // rather than on the stack and then copied.)
    let cell = CallCell {
        origin_side: OriginSide {
            waker: UnsafeCell::new(None),
            returned: Cell::new(false),
            abandoned: Cell::new(false),
            inline: Cell::new(false),
            target,
            vtable: &CallCell::<F, Fut, T>::VTABLE,
            reply: UnsafeCell::new(MaybeUninit::uninit()),
        },
        head: Header {
            vtable: &CallCell::<F, Fut, T>::VTABLE,
            origin: u32::try_from(origin).expect("shard index fits u32"),
            group: u32::try_from(group).expect("group index fits u32"),
            finished: Cell::new(false),
            driver: UnsafeCell::new(OnceLock::new()),
        },
        stage: UnsafeCell::new(stage),
    };
    // SAFETY: the block is fresh, of this type's layout.
    unsafe { ptr.as_ptr().write(cell) };
    let call = CallPtr(ptr.cast());
    let start = if inline {
        CallMsg::start_inline(call.copy(), CallCell::<F, Fut, T>::start_inline, closure)
    } else {
        CallMsg::step(call.copy(), Op::Start)
    };
    (call, Message::Call(start))
}

/// Handles one message about a call on the shard it arrived at, whose
/// transport is `t`, from shard `from`.
pub(crate) fn deliver(m: Opened, from: usize, t: &Transport) {
    let call = m.call;
    match m.op {
        Op::Start => call.start(t, None, from),
        Op::StartInline => {
            let start = m.start.expect("an inline start has its entry point");
            call.start(t, Some((start, m.payload)), from)
        }
        Op::Return => call.returned(),
        Op::Reply => call.replied(m.payload),
        Op::Cancel => call.cancelled(t, from),
        Op::CancelAck => {
            // SAFETY: the return came first on this ring and the caller
            // is gone: nobody uses the cell any more.
            unsafe { (call.origin_side().vtable.free)(call.0) }
        }
    }
}

impl CallPtr {
    /// The target's fields (and the vtable).
    fn header(&self) -> &Header {
        // Every cell has its `Header` at `HEADER_AT`; only its `Cell` and
        // `UnsafeCell` fields are mutated through this reference.
        // SAFETY: the cell lives while a `CallPtr` to it is in use (module doc).
        unsafe { &*self.0.cast::<u8>().as_ptr().add(HEADER_AT).cast::<Header>() }
    }

    /// Starts loading the cell's target line (the header and a small
    /// stage) into this core's cache, without waiting: the caller reads it
    /// soon (the target to run the call, the origin to take its outcome),
    /// and it was last written on the other core, so the miss overlaps the
    /// loop's work until then.
    #[inline]
    pub(crate) fn prefetch(&self) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let line = self.0.as_ptr().cast::<i8>().wrapping_add(HEADER_AT);
            // SAFETY: a prefetch never faults and changes nothing observable.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line) };
        }
    }

    /// The origin's fields: only the origin calls this.
    fn origin_side(&self) -> &OriginSide {
        // SAFETY: as in `header`; the cell starts with its `OriginSide`.
        unsafe { self.0.as_ref() }
    }

    /// The call's scheduling group.
    pub(crate) fn group(&self) -> usize {
        self.header().group as usize
    }

    pub(crate) fn copy(&self) -> CallPtr {
        CallPtr(self.0)
    }

    /// The cell's address (for `call_msg.rs`).
    pub(crate) fn raw(&self) -> NonNull<OriginSide> {
        self.0
    }

    /// The pointer [`raw`](Self::raw) gave.
    pub(crate) fn from_raw(ptr: NonNull<OriginSide>) -> CallPtr {
        CallPtr(ptr)
    }

    /// Origin: the call came back with its output inline, `out` (see the
    /// module doc).
    #[inline]
    pub(crate) fn replied(self, out: Payload) {
        let o = self.origin_side();
        // SAFETY: origin-side field, no other reference alive; the payload
        // holds the call's `T`, which `inline` hands to `take` or `free`.
        unsafe { *o.reply.get() = out };
        o.inline.set(true);
        self.returned();
    }

    // --- target side ---

    /// Target: the first poll of the call from shard `origin`, its
    /// closure in the cell or, with `inline`, in the message.
    fn start(self, t: &Transport, inline: Option<(StartFn, Payload)>, origin: usize) {
        let probe = Probe {
            call: self.0,
            transport: TransportPtr(t),
            scheduler: t.scheduler(),
            spawned: AtomicBool::new(false),
        };
        let waker = probe.waker();
        let mut out = Payload::uninit();
        let mut cx = Context::from_waker(&waker);
        // SAFETY: target phase: between Start and Return, not re-entered;
        // an inline closure is the one `new` put in this call's start.
        let ready = unsafe {
            match inline {
                Some((start, closure)) => start(self.0, closure, &mut cx, &mut out),
                None => (self.header().vtable.poll)(self.0, &mut cx, &mut out),
            }
        };
        // The poll is over: nobody holds the probe any more (a thread that
        // used it did so within the poll, which synchronised with it).
        if let Poll::Ready(inline) = ready {
            let driver = probe.spawned.load(Ordering::Relaxed);
            self.finish(t, inline.then_some(out), origin, driver);
        }
    }

    /// Target: sends the call back to shard `origin`, with its output
    /// `out` if it came inline, else with the outcome (if any) in the cell;
    /// closes its driver if it `may_have_driver`.
    fn finish(self, t: &Transport, out: Option<Payload>, origin: usize, may_have_driver: bool) {
        let h = self.header();
        h.finished.set(true);
        if may_have_driver {
            // SAFETY: target-side field; the probe's poll (the only time
            // other threads may reach the slot) is over, so no other
            // reference to it is alive.
            let driver = unsafe { (*h.driver.get()).take() };
            // Dropping the handle closes the driver: it is never polled
            // again (it may be running this very call, returning `Ready`).
            drop(driver);
        }
        let msg = match out {
            Some(out) => CallMsg::reply(self, out),
            None => CallMsg::step(self, Op::Return),
        };
        t.push(origin, Message::Call(msg));
    }

    fn cancelled(self, t: &Transport, origin: usize) {
        let h = self.header();
        if !h.finished.get() {
            // SAFETY: target phase (not finished); the driver, if any, is
            // not running (we are, on its thread).
            unsafe { (h.vtable.cancel)(self.0) };
            self.copy().finish(t, None, origin, true);
        }
        t.push(origin, Message::Call(CallMsg::step(self, Op::CancelAck)));
    }

    // --- origin side ---

    /// Origin: the call came back.
    fn returned(self) {
        let h = self.origin_side();
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
/// `!Send` (it holds an `Rc`): it touches the origin's side of the cell,
/// so it stays there.
pub(crate) struct Pending<T> {
    ptr: Option<CallPtr>,
    /// The origin shard's transport, for a cancel.
    transport: Rc<Transport>,
    _out: PhantomData<fn() -> T>,
}

impl<T> Pending<T> {
    /// The handle on the call `ptr`, sent from the shard of `transport`.
    pub(crate) fn new(ptr: CallPtr, transport: Rc<Transport>) -> Pending<T> {
        Pending {
            ptr: Some(ptr),
            transport,
            _out: PhantomData,
        }
    }

    /// Marks the call returned without a return (tests: a call that was
    /// never sent, so that dropping the handle frees its cell).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn force_returned(&mut self) {
        let o = self.ptr.as_ref().expect("a call").origin_side();
        o.returned.set(true);
    }

    /// The outcome once the call is back; `None` if it has none (the
    /// target dropped it).
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outcome<T>>> {
        let ptr = self.ptr.as_ref().expect("polled after completion").copy();
        let o = ptr.origin_side();
        if !o.returned.get() {
            // SAFETY: origin-side field, no other reference alive.
            let slot = unsafe { &mut *o.waker.get() };
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
        unsafe { (o.vtable.take)(ptr.0, (&mut out as *mut Option<Outcome<T>>).cast()) };
        Poll::Ready(out)
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        let Some(ptr) = self.ptr.take() else { return };
        let o = ptr.origin_side();
        if o.returned.get() {
            // SAFETY: back and unwanted: nobody needs the cell.
            unsafe { (o.vtable.free)(ptr.0) };
            return;
        }
        o.abandoned.set(true);
        // SAFETY: origin-side field.
        drop(unsafe { (*o.waker.get()).take() });
        // Once the shard stopped (say a `Submit` inside the value `run`
        // returned) nobody answers a cancel: the transport sends nothing
        // and the cell leaks, as everything a stopped shard held does.
        let target = o.target;
        self.transport
            .push(target, Message::Call(CallMsg::step(ptr, Op::Cancel)));
    }
}
