//! The operation table on its own: no ring, no syscall, so these run under
//! Miri (`reactor::uring::table::` in xtask's Miri filters).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, Wake, Waker};

use super::{Cqe, OpTable};

/// `IORING_CQE_F_MORE`: more completions follow for this submission.
const MORE: u32 = 1 << 1;

/// Counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn waker() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count::default());
    (c.clone(), Waker::from(c))
}

fn cqe(res: i32, flags: u32) -> Cqe {
    Cqe { res, flags }
}

/// Sets its flag when dropped (an abandoned operation's resources).
struct Resource(Arc<AtomicUsize>);

impl Drop for Resource {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_one_shot_completion_wakes_its_waiter_then_is_collected_once() {
    let mut t = OpTable::new();
    let (count, w) = waker();
    let key = t.insert();
    assert_eq!(t.poll(&key, &w, None), Poll::Pending);
    assert_eq!(t.poll(&key, &w, None), Poll::Pending, "same waker kept");

    let mut woken = Vec::new();
    assert!(
        t.complete(key.user_data() as usize, cqe(42, 0), &mut woken)
            .is_none()
    );
    assert_eq!(woken.len(), 1);
    woken.drain(..).for_each(Waker::wake);
    assert_eq!(count.0.load(Ordering::Relaxed), 1);

    assert_eq!(t.poll(&key, &w, None), Poll::Ready(cqe(42, 0)));
    assert_eq!(t.len(), 0, "collecting frees the slot");
    assert_eq!(t.poll(&key, &w, None), Poll::Ready(cqe(-libc::EBADF, 0)));
}

#[test]
fn a_completion_before_the_first_poll_waits_in_the_slot() {
    let mut t = OpTable::new();
    let key = t.insert();
    let mut woken = Vec::new();
    t.complete(key.user_data() as usize, cqe(7, 0), &mut woken);
    assert!(woken.is_empty(), "nobody polled yet");
    let (_, w) = waker();
    assert_eq!(t.poll(&key, &w, None), Poll::Ready(cqe(7, 0)));
}

#[test]
fn a_quiet_operation_wakes_only_for_an_unexpected_result() {
    let mut t = OpTable::new();
    let (_, w) = waker();
    let mut woken = Vec::new();

    let expected = t.insert();
    assert_eq!(t.poll(&expected, &w, Some(100)), Poll::Pending);
    t.complete(expected.user_data() as usize, cqe(100, 0), &mut woken);
    assert!(woken.is_empty(), "the whole buffer went: nobody to wake");
    assert_eq!(t.poll(&expected, &w, None), Poll::Ready(cqe(100, 0)));

    let short = t.insert();
    assert_eq!(t.poll(&short, &w, Some(100)), Poll::Pending);
    t.complete(short.user_data() as usize, cqe(60, 0), &mut woken);
    assert_eq!(woken.len(), 1, "a short send wakes its task");
    assert_eq!(t.poll(&short, &w, Some(100)), Poll::Ready(cqe(60, 0)));

    // Switching modes keeps exactly one registration.
    let k = t.insert();
    assert_eq!(t.poll(&k, &w, Some(5)), Poll::Pending);
    assert_eq!(t.poll(&k, &w, None), Poll::Pending);
    woken.clear();
    t.complete(k.user_data() as usize, cqe(5, 0), &mut woken);
    assert_eq!(woken.len(), 1, "no longer quiet");
}

#[test]
fn an_abandoned_operation_keeps_its_resources_until_the_kernel_is_done() {
    let mut t = OpTable::new();
    let (_, w) = waker();
    let dropped = Arc::new(AtomicUsize::new(0));
    let key = t.insert();
    assert_eq!(t.poll(&key, &w, None), Poll::Pending);

    let mut taken = Vec::new();
    let data = Box::new(Resource(dropped.clone()));
    assert!(
        t.abandon(&key, data, None, &mut taken),
        "in flight: cancel it"
    );
    assert!(taken.is_empty());
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        0,
        "the kernel may still write"
    );
    assert!(t.unfinished().is_empty(), "its cancel is already asked for");
    assert!(!t.sweep_finished(), "but the slot is held");

    let mut woken = Vec::new();
    let orphan = t.complete(
        key.user_data() as usize,
        cqe(-libc::ECANCELED, 0),
        &mut woken,
    );
    assert_eq!(orphan, Some(None), "nobody collects: the caller releases");
    assert!(woken.is_empty());
    assert_eq!(dropped.load(Ordering::Relaxed), 1, "released at completion");
    assert_eq!(t.len(), 0);
}

#[test]
fn abandoning_a_completed_operation_hands_back_its_result() {
    let mut t = OpTable::new();
    let key = t.insert();
    let mut woken = Vec::new();
    t.complete(key.user_data() as usize, cqe(9, 0), &mut woken);
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut taken = Vec::new();
    let data = Box::new(Resource(dropped.clone()));
    assert!(
        !t.abandon(&key, data, None, &mut taken),
        "nothing to cancel"
    );
    assert_eq!(taken, [cqe(9, 0)], "e.g. an accepted fd to close");
    assert_eq!(dropped.load(Ordering::Relaxed), 1, "nothing in flight");
    assert_eq!(t.len(), 0);
}

#[test]
fn a_multishot_operation_queues_completions_until_the_last() {
    let mut t = OpTable::new();
    let (count, w) = waker();
    let key = t.insert_multi();
    let slot = key.user_data() as usize;
    assert_eq!(t.poll_multi(&key, &w), Poll::Pending);

    let mut woken = Vec::new();
    t.complete(slot, cqe(1, MORE), &mut woken);
    t.complete(slot, cqe(2, MORE), &mut woken);
    assert_eq!(woken.len(), 1, "one registration, one wake");
    woken.drain(..).for_each(Waker::wake);
    assert_eq!(count.0.load(Ordering::Relaxed), 1);
    t.complete(slot, cqe(3, 0), &mut woken);
    assert!(t.unfinished().is_empty(), "the kernel ended it");

    assert_eq!(t.poll_multi(&key, &w), Poll::Ready(Some(cqe(1, MORE))));
    assert_eq!(t.poll_multi(&key, &w), Poll::Ready(Some(cqe(2, MORE))));
    assert_eq!(t.poll_multi(&key, &w), Poll::Ready(Some(cqe(3, 0))));
    assert_eq!(t.len(), 1, "the slot lives until the end is seen");
    assert_eq!(t.poll_multi(&key, &w), Poll::Ready(None));
    assert_eq!(t.len(), 0);
}

#[test]
fn an_abandoned_multishot_slot_lives_until_its_last_completion() {
    let mut t = OpTable::new();
    let key = t.insert_multi();
    let slot = key.user_data() as usize;
    let mut woken = Vec::new();
    t.complete(slot, cqe(10, MORE), &mut woken);

    let dropped = Arc::new(AtomicUsize::new(0));
    let mut taken = Vec::new();
    let data = Box::new(Resource(dropped.clone()));
    assert!(t.abandon(&key, data, None, &mut taken));
    assert_eq!(taken, [cqe(10, MORE)], "queued completions handed back");

    assert_eq!(t.complete(slot, cqe(11, MORE), &mut woken), Some(None));
    assert_eq!(t.len(), 1, "more to come: resources kept");
    assert_eq!(dropped.load(Ordering::Relaxed), 0);
    assert_eq!(t.complete(slot, cqe(0, 0), &mut woken), Some(None));
    assert_eq!(t.len(), 0);
    assert_eq!(dropped.load(Ordering::Relaxed), 1);
    assert!(woken.is_empty());
}

#[test]
#[should_panic(expected = "polled under a runtime other than the one that started it")]
fn a_key_of_another_table_is_refused() {
    let mut first = OpTable::new();
    let mut second = OpTable::new();
    let key = first.insert();
    let _same_slot = second.insert();
    let (_, w) = waker();
    let _ = second.poll(&key, &w, None);
}

#[test]
fn abandoning_a_key_of_another_table_touches_nothing() {
    let mut first = OpTable::new();
    let mut second = OpTable::new();
    let key = first.insert();
    let theirs = second.insert();
    let mut taken = Vec::new();
    // A zero-sized resource: leaked without an allocation (Miri checks leaks).
    assert!(!second.abandon(&key, Box::new(()), None, &mut taken));
    assert!(taken.is_empty());
    let (_, w) = waker();
    assert_eq!(
        second.poll(&theirs, &w, None),
        Poll::Pending,
        "slot untouched"
    );
}

#[test]
fn shutdown_takes_wakers_and_sweeps_finished_slots() {
    let mut t = OpTable::new();
    let (_, w) = waker();
    let waiting = t.insert();
    let quiet = t.insert();
    let multi = t.insert_multi();
    let done = t.insert();
    assert_eq!(t.poll(&waiting, &w, None), Poll::Pending);
    assert_eq!(t.poll(&quiet, &w, Some(1)), Poll::Pending);
    assert_eq!(t.poll_multi(&multi, &w), Poll::Pending);
    let mut woken = Vec::new();
    t.complete(done.user_data() as usize, cqe(0, 0), &mut woken);

    assert_eq!(t.take_wakers().len(), 3);
    assert_eq!(t.unfinished().len(), 3, "the done one is finished");
    assert!(!t.sweep_finished(), "three still in flight");
    assert_eq!(t.len(), 3);
    for k in [&waiting, &quiet] {
        t.complete(k.user_data() as usize, cqe(0, 0), &mut woken);
    }
    t.complete(multi.user_data() as usize, cqe(0, 0), &mut woken);
    assert!(woken.is_empty(), "wakers were taken");
    assert!(t.sweep_finished(), "everything finished");
}
