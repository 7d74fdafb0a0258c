//! The probe waker of a call's first poll and the driver task that takes
//! over a call whose future waits (see "The probe waker and other
//! threads" in the [parent module](super)).

use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::{CallPtr, OriginSide, Payload};
use crate::smp::transport::{Scheduler, Transport};

/// The target's transport, as the driver holds it.
#[derive(Clone, Copy)]
pub(super) struct TransportPtr(pub(super) *const Transport);

// SAFETY: only dereferenced by `Drive::poll`, which runs on the target
// shard only (the driver's schedule function sends it there), while the
// shard, which owns the transport, runs its tasks.
unsafe impl Send for TransportPtr {}

/// The target's task for a call whose future did not finish at its first
/// poll. Never polled after the call finished (`finish` drops its handle,
/// which closes it), so the cell is alive whenever it runs. `Send` only so
/// that a probe cloned off the target thread can build it; it runs on the
/// target only.
struct Drive {
    call: CallPtr,
    transport: TransportPtr,
}

impl Future for Drive {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let ptr = self.call.copy();
        let mut out = Payload::uninit();
        // SAFETY: target phase: the driver only runs while unfinished.
        match unsafe { (ptr.header().vtable.poll)(ptr.0, cx, &mut out) } {
            Poll::Ready(inline) => {
                let origin = ptr.header().origin as usize;
                // SAFETY: polled on the target shard, whose transport is
                // alive while it runs tasks (`TransportPtr`).
                let t = unsafe { &*self.transport.0 };
                ptr.finish(t, inline.then_some(out), origin, true);
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// What the probe waker of a call's first poll points to. Lives on the
/// stack of that poll; every field may be read from any thread (the
/// transport pointer is only copied, into the driver).
pub(super) struct Probe<'a> {
    pub(super) call: NonNull<OriginSide>,
    pub(super) transport: TransportPtr,
    pub(super) scheduler: &'a Scheduler,
    /// Whether the driver was made (then `finish` closes it; else it
    /// reads nothing of the driver slot, on the cell's second line).
    pub(super) spawned: AtomicBool,
}

static PROBE: RawWakerVTable =
    RawWakerVTable::new(probe_clone, probe_wake, probe_wake_by_ref, probe_drop);

impl Probe<'_> {
    /// The probe waker: cloning or waking it creates the call's driver and
    /// hands out (or wakes) the driver's waker instead. Never dropped as a
    /// `Waker` (it owns nothing).
    pub(super) fn waker(&self) -> std::mem::ManuallyDrop<Waker> {
        // The data pointer (this probe) is used only while the probe is
        // lent to the poll (`Context` borrows it, the borrow ends with the
        // poll), from any thread (`Probe` is read-only and its parts are
        // `Sync`, the driver slot a `OnceLock`); clones are real wakers of
        // the driver task.
        // SAFETY: so the vtable's functions uphold the `RawWaker` contract.
        std::mem::ManuallyDrop::new(unsafe {
            Waker::from_raw(RawWaker::new((self as *const Probe<'_>).cast(), &PROBE))
        })
    }

    /// The driver's waker, creating the driver on first use, on whichever
    /// thread this runs.
    fn driver_waker(&self) -> Waker {
        let call = CallPtr(self.call);
        let h = call.header();
        // SAFETY: during the probe's poll the driver slot is only reached
        // through shared references (here, from any thread: `OnceLock` is
        // `Sync`); `finish` and `free` take it mutably only after the poll.
        let slot = unsafe { &*h.driver.get() };
        let (_, waker) = &**slot.get_or_init(|| {
            let drive = Drive {
                call: call.copy(),
                transport: self.transport,
            };
            let schedule = self.scheduler.clone();
            let (runnable, task) = async_task::Builder::new()
                .metadata(crate::reactor::TaskMeta::group(h.group as usize))
                .spawn(
                    move |_| drive,
                    move |r| schedule(crate::reactor::Runnable::Shared(r)),
                );
            let waker = runnable.waker();
            // Runs once soon (a spurious poll is harmless), then when woken.
            runnable.schedule();
            self.spawned.store(true, Ordering::Relaxed);
            Box::new((task, waker))
        });
        waker.clone()
    }
}

/// # Safety
///
/// `data` is a live `Probe` (the `RawWaker` contract of [`Probe::waker`]).
unsafe fn probe<'a>(data: *const ()) -> &'a Probe<'a> {
    // SAFETY: the caller's contract.
    unsafe { &*data.cast::<Probe<'a>>() }
}

/// # Safety
///
/// The `RawWakerVTable` contract, for a waker made by [`Probe::waker`].
unsafe fn probe_clone(data: *const ()) -> RawWaker {
    // SAFETY: called on a live probe waker (vtable contract).
    let w = std::mem::ManuallyDrop::new(unsafe { probe(data) }.driver_waker());
    RawWaker::new(w.data(), w.vtable())
}

/// # Safety
///
/// As [`probe_clone`]. (Unreachable in practice: the probe is only lent.)
unsafe fn probe_wake(data: *const ()) {
    // SAFETY: same contract as `wake_by_ref`.
    unsafe { probe_wake_by_ref(data) }
}

/// # Safety
///
/// As [`probe_clone`].
unsafe fn probe_wake_by_ref(data: *const ()) {
    // SAFETY: called on a live probe waker (vtable contract).
    unsafe { probe(data) }.driver_waker().wake();
}

/// # Safety
///
/// None needed: the probe owns nothing.
unsafe fn probe_drop(_: *const ()) {}
