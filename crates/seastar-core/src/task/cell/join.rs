//! [`JoinHandle`]: the home thread's handle to a task's output (see the
//! [module doc](super)).

use super::*;

/// The handle to a task's output (home thread only: `!Send`).
///
/// Owns one local reference and the `HANDLE` state.
pub(crate) struct JoinHandle<T, H: Home> {
    pub(super) ptr: NonNull<Header<H>>,
    /// `!Send`, `!Sync`; the output type.
    pub(super) _marker: PhantomData<(*const (), T)>,
}

// The handle is a pointer: moving it moves no output.
impl<T, H: Home> Unpin for JoinHandle<T, H> {}

impl<T, H: Home> JoinHandle<T, H> {
    /// The cell's output slot.
    fn output(&self) -> *mut Option<std::thread::Result<T>> {
        // SAFETY: the cell is a `Raw<H, F>` with `F::Output == T` (made so
        // by `spawn`), which starts with a `Head<H, T>` (`repr(C)`), and
        // is live (the handle holds a reference).
        unsafe { (*self.ptr.cast::<Head<H, T>>().as_ptr()).output.get() }
    }

    /// The output once the task completed: `Ready(Some(..))` once,
    /// `Ready(None)` if it was cancelled, and either way the handle is
    /// given up (`*slot` becomes `None`); otherwise registers `cx`'s waker.
    #[inline(always)]
    pub(crate) fn poll_take(
        slot: &mut Option<Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::thread::Result<T>>> {
        let Some(this) = slot else {
            return Poll::Ready(None);
        };
        // SAFETY: the handle holds a reference; it lives on the home
        // thread (`!Send`).
        let h = unsafe { header(this.ptr) };
        let st = h.state.get();
        if st & (COMPLETED | CLOSED) == 0 {
            this.register(h, cx);
            return Poll::Pending;
        }
        let out = if st & CLOSED == 0 {
            // SAFETY: home; nothing else refers to the output, which
            // `COMPLETED` (without `CLOSED`) says is there.
            unsafe { (*this.output()).take() }
        } else {
            None
        };
        let ptr = this.ptr;
        std::mem::forget(slot.take());
        h.state.set((st | CLOSED) & !HANDLE);
        // The awaiter was woken at the end (taken), unless the task was
        // aborted while awaited.
        let awaiter = h.awaiter.take();
        // SAFETY: home; the handle's reference is given up.
        unsafe { drop_local(ptr) };
        drop(awaiter);
        Poll::Ready(out)
    }

    /// Keeps `cx`'s waker as the awaiter (the task is not done).
    #[inline]
    fn register(&self, h: &Header<H>, cx: &mut Context<'_>) {
        let w = cx.waker();
        match h.awaiter.take() {
            Some(old) if old.will_wake(w) => h.awaiter.set(Some(old)),
            old => {
                let new = clone_at_home(w, h);
                // The slot is empty: taken above, and only this handle
                // (borrowed here) fills it. Nothing to drop, so no test.
                let none = h.awaiter.replace(Some(new));
                debug_assert!(none.is_none());
                std::mem::forget(none);
                drop(old);
            }
        }
    }

    /// Whether the task completed or was cancelled.
    pub(crate) fn is_finished(&self) -> bool {
        // SAFETY: as in `poll`.
        unsafe { header(self.ptr) }.state.get() & (COMPLETED | CLOSED) != 0
    }

    /// Cancels the task unless it completed: it is queued once more so
    /// that its future is dropped by the run loop.
    pub(crate) fn abort(&self) {
        // SAFETY: as in `poll`.
        let h = unsafe { header(self.ptr) };
        let st = h.state.get();
        if st & (COMPLETED | CLOSED) != 0 {
            return;
        }
        h.state.set(st | CLOSED);
        if st & (SCHEDULED | RUNNING) == 0 {
            h.state.set(st | CLOSED | SCHEDULED);
            // SAFETY: home thread (`!Send` handle), live.
            unsafe { add_ref(self.ptr) };
            H::schedule(Runnable { ptr: self.ptr });
        }
    }
}

impl<T, H: Home> Drop for JoinHandle<T, H> {
    /// Detaches the task (it keeps running; its output is dropped).
    fn drop(&mut self) {
        let ptr = self.ptr;
        // SAFETY: as in `poll`.
        let h = unsafe { header(ptr) };
        let st = h.state.get();
        let unread = st & (COMPLETED | CLOSED) == COMPLETED;
        h.state
            .set((st & !HANDLE) | if unread { CLOSED } else { 0 });
        let awaiter = h.awaiter.take();
        let output = if unread {
            // SAFETY: home; nothing else refers to the output.
            unsafe { (*self.output()).take() }
        } else {
            None
        };
        // SAFETY: home; the handle's reference is given up.
        unsafe { drop_local(ptr) };
        // (User code last, the cell settled.)
        drop(awaiter);
        drop(output);
    }
}
