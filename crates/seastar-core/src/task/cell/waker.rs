//! The task's wakers: two vtables over the same data pointer (the cell).
//! A *local* waker's reference is counted in `refs`, a *foreign* one's in
//! `foreign`. See the parent module's doc for what each does off home.

use super::*;

pub(super) fn local_vtable<H: Home>() -> &'static RawWakerVTable {
    &LocalWaker::<H>::VTABLE
}

fn foreign_vtable<H: Home>() -> &'static RawWakerVTable {
    &ForeignWaker::<H>::VTABLE
}

struct LocalWaker<H>(PhantomData<H>);
struct ForeignWaker<H>(PhantomData<H>);

/// Takes a foreign reference (any thread).
///
/// # Safety
///
/// `ptr` is live: the caller holds a reference.
unsafe fn add_foreign<H>(ptr: NonNull<Header<H>>) {
    // SAFETY: the caller's contract.
    let h = unsafe { header(ptr) };
    // Relaxed: the caller's reference keeps the cell alive; the count
    // reaches home through the request or waker that carries it.
    if h.foreign.fetch_add(1, Ordering::Relaxed) > u32::MAX / 2 {
        std::process::abort();
    }
}

pub(super) fn cell<H>(data: *const ()) -> NonNull<Header<H>> {
    // SAFETY: a waker's data pointer is its (non-null) cell.
    unsafe { NonNull::new_unchecked(data.cast_mut().cast()) }
}

impl<H: Home> LocalWaker<H> {
    const VTABLE: RawWakerVTable =
        RawWakerVTable::new(Self::clone, Self::wake, wake_by_ref::<H>, Self::drop);

    /// # Safety
    ///
    /// The `RawWakerVTable` contract: `data` is the cell of a live local
    /// waker (holding a local reference, or lent by `run`).
    unsafe fn clone(data: *const ()) -> RawWaker {
        let ptr = cell::<H>(data);
        // SAFETY: live (contract).
        let h = unsafe { header(ptr) };
        if h.home.is_home() {
            // SAFETY: home, live.
            unsafe { add_ref(ptr) };
            RawWaker::new(data, local_vtable::<H>())
        } else {
            // SAFETY: live (contract).
            unsafe { add_foreign(ptr) };
            RawWaker::new(data, foreign_vtable::<H>())
        }
    }

    /// # Safety
    ///
    /// As [`Self::clone`]; the waker's reference is given up.
    unsafe fn wake(data: *const ()) {
        let ptr = cell::<H>(data);
        // SAFETY: live (contract).
        let h = unsafe { header(ptr) };
        if h.home.is_home() {
            // SAFETY: home, live; the waker's reference is given up.
            unsafe { wake_owned(ptr) }
        } else {
            H::send(Request::new(ptr, true, false));
        }
    }

    /// # Safety
    ///
    /// As [`Self::clone`]; the waker's reference is given up.
    unsafe fn drop(data: *const ()) {
        let ptr = cell::<H>(data);
        // SAFETY: live (contract).
        if unsafe { header(ptr) }.home.is_home() {
            // SAFETY: home; the waker's reference is given up.
            unsafe { drop_local(ptr) };
        } else {
            H::send(Request::new(ptr, false, false));
        }
    }
}

impl<H: Home> ForeignWaker<H> {
    const VTABLE: RawWakerVTable =
        RawWakerVTable::new(Self::clone, Self::wake, wake_by_ref::<H>, Self::drop);

    /// # Safety
    ///
    /// The `RawWakerVTable` contract: `data` is the cell of a live foreign
    /// waker (holding a foreign reference).
    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: live (contract).
        unsafe { add_foreign(cell::<H>(data)) };
        RawWaker::new(data, foreign_vtable::<H>())
    }

    /// # Safety
    ///
    /// As [`Self::clone`]; the waker's reference is given up.
    unsafe fn wake(data: *const ()) {
        let ptr = cell::<H>(data);
        // SAFETY: live (contract).
        if unsafe { header(ptr) }.home.is_home() {
            // SAFETY: home, live; then the waker's reference is given up.
            let (woken, closed) = unsafe { (wake_local(ptr), release_foreign(ptr)) };
            if let Some(r) = woken.or(closed) {
                H::schedule(r);
            }
        } else {
            H::send(Request::new(ptr, true, true));
        }
    }

    /// # Safety
    ///
    /// As [`Self::clone`]; the waker's reference is given up.
    unsafe fn drop(data: *const ()) {
        let ptr = cell::<H>(data);
        // SAFETY: live (contract).
        if unsafe { header(ptr) }.home.is_home() {
            // SAFETY: home; the waker's reference is given up.
            if let Some(r) = unsafe { release_foreign(ptr) } {
                H::schedule(r);
            }
        } else {
            H::send(Request::new(ptr, false, true));
        }
    }
}

/// `wake_by_ref` of both vtables: the waker keeps its reference, whichever
/// count holds it, so the two kinds wake alike.
///
/// # Safety
///
/// The `RawWakerVTable` contract: `data` is the cell of a live waker.
unsafe fn wake_by_ref<H: Home>(data: *const ()) {
    let ptr = cell::<H>(data);
    // SAFETY: live (contract).
    if unsafe { header(ptr) }.home.is_home() {
        // SAFETY: home, live.
        if let Some(r) = unsafe { wake_local(ptr) } {
            H::schedule(r);
        }
    } else {
        // SAFETY: live (contract); the new reference goes with the
        // request.
        unsafe { add_foreign(ptr) };
        H::send(Request::new(ptr, true, true));
    }
}
