//! [`Request`]: what a waker off its home thread sends home (see the
//! [module doc](super), "References").

use super::*;

/// What a waker off its home thread asks of home: wake the task (or not)
/// and give up the reference carried (local or foreign).
///
/// One word (the queues that carry it stay two words per item): the
/// cell's address with [`WAKE`] and [`FOREIGN`] in its low bits (a cell is
/// aligned to at least 8).
pub(crate) struct Request<H: Home> {
    tagged: NonNull<Header<H>>,
}

/// [`Request`] bit: wake the task.
const WAKE: usize = 1;
/// [`Request`] bit: the reference carried is foreign (else local).
const FOREIGN: usize = 2;
const _: () = assert!(std::mem::align_of::<Header<()>>() > (WAKE | FOREIGN));

// SAFETY: made off home and moved home; applied or dropped only at home
// (`apply` and `drop` check `is_home` and leak it anywhere else). Off home
// only `home` (`Sync`) is read.
unsafe impl<H: Home> Send for Request<H> {}

impl<H: Home> std::fmt::Debug for Request<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ptr, wake, foreign) = self.parts();
        f.debug_struct("Request")
            .field("ptr", &ptr)
            .field("wake", &wake)
            .field("foreign", &foreign)
            .finish()
    }
}

impl<H: Home> Request<H> {
    /// A request about the cell at `ptr`, carrying a reference of the
    /// given kind.
    pub(super) fn new(ptr: NonNull<Header<H>>, wake: bool, foreign: bool) -> Self {
        let bits = if wake { WAKE } else { 0 } | if foreign { FOREIGN } else { 0 };
        Request {
            tagged: ptr.map_addr(|a| a | bits),
        }
    }

    /// The cell, whether to wake it, whether the reference is foreign.
    fn parts(&self) -> (NonNull<Header<H>>, bool, bool) {
        let a = self.tagged.addr().get();
        // SAFETY: the address with the tag bits cleared is the cell's
        // (non-null, aligned to more than the bits).
        let ptr = self.tagged.map_addr(|a| unsafe {
            std::num::NonZeroUsize::new_unchecked(a.get() & !(WAKE | FOREIGN))
        });
        (ptr, a & WAKE != 0, a & FOREIGN != 0)
    }

    /// Where the task lives (read it before handing the request over).
    pub(crate) fn home(&self) -> &H {
        // SAFETY: the request holds a reference; `home` is immutable.
        &unsafe { header(self.parts().0) }.home
    }

    /// Applies the request at home: `Some` is a task to queue. Off home
    /// the request is leaked.
    #[cold]
    pub(crate) fn apply(self) -> Option<Runnable<H>> {
        let (ptr, wake, foreign) = self.parts();
        std::mem::forget(self);
        // SAFETY: the request held a reference, now owned here.
        if !unsafe { header(ptr) }.home.is_home() {
            return None;
        }
        let woken = if wake {
            // SAFETY: home, live.
            unsafe { wake_local(ptr) }
        } else {
            None
        };
        // SAFETY: home; the request's reference, of its kind, given up.
        let closed = unsafe {
            if foreign {
                release_foreign(ptr)
            } else {
                release_local(ptr)
            }
        };
        // (Both cannot be `Some`: a wake adds a reference.)
        woken.or(closed)
    }
}

impl<H: Home> Drop for Request<H> {
    /// Gives up the reference without waking (at home); leaks it
    /// elsewhere.
    fn drop(&mut self) {
        let (ptr, _, foreign) = self.parts();
        // SAFETY: the request holds a reference.
        if !unsafe { header(ptr) }.home.is_home() {
            return;
        }
        // SAFETY: home; the request's reference is given up.
        let closed = unsafe {
            if foreign {
                release_foreign(ptr)
            } else {
                release_local(ptr)
            }
        };
        if let Some(r) = closed {
            H::schedule(r);
        }
    }
}
