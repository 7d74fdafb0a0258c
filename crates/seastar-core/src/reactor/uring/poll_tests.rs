//! The non-blocking poll of a spinning shard: it leaves the kernel alone
//! when nothing has completed (nothing in flight, or with `TASKRUN_FLAG`
//! no deferred work flagged), and a wake is not lost by it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{opcode, types};

use super::Uring;
use crate::reactor::backend::Backend;

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn write(fd: &OwnedFd, bytes: &[u8]) {
    // SAFETY: `bytes` is valid for `bytes.len()` bytes.
    let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(n, bytes.len() as isize);
}

#[test]
fn a_spinning_poll_enters_the_kernel_when_an_operation_in_flight_completes() {
    let wake = crate::sys::eventfd().unwrap();
    let mut u = Uring::new(wake.as_raw_fd(), 32).unwrap();
    assert!(
        !u.must_enter(),
        "a fresh ring has nothing to ask the kernel"
    );
    u.poll(Some(Duration::ZERO)).unwrap();

    let (r, w) = pipe();
    let mut buf = [0u8; 8];
    let entry = opcode::Read::new(types::Fd(r.as_raw_fd()), buf.as_mut_ptr(), 8).build();
    // SAFETY: `buf` outlives the operation: the loop below collects its
    // completion (or the test fails, and `u`, dropped first, cancels it).
    let key = unsafe { u.submit(entry) };
    assert!(u.must_enter(), "an entry is queued");
    u.poll(Some(Duration::ZERO)).unwrap();
    assert_eq!(u.queued(), 0, "the zero poll submitted it");
    if u.features.taskrun_flag {
        // A read that only waits has no deferred work behind it.
        assert!(!u.must_enter(), "the waiting read costs the spins no enter");
    } else {
        assert!(u.must_enter(), "the read is in flight");
    }

    // The read completes only if the spinning polls enter the kernel (with
    // DEFER_TASKRUN, only an enter posts the completion).
    write(&w, b"ping");
    assert!(
        u.must_enter(),
        "the kernel flagged the read's deferred completion"
    );
    let waker = Waker::noop();
    let mut got = None;
    for _ in 0..100_000 {
        u.poll(Some(Duration::ZERO)).unwrap();
        if let Poll::Ready(cqe) = u.poll_op(&key, waker, None) {
            got = Some(cqe.res);
            break;
        }
    }
    assert_eq!(got, Some(4), "the read completed with the 4 bytes written");
    assert_eq!(&buf[..4], b"ping");
    assert!(!u.must_enter(), "nothing in flight once it is collected");
}

#[test]
fn a_wake_during_spinning_polls_ends_the_next_sleep() {
    let wake = crate::sys::eventfd().unwrap();
    let mut u = Uring::new(wake.as_raw_fd(), 32).unwrap();
    // A sleep that times out leaves the wake poll armed.
    u.poll(Some(Duration::from_millis(1))).unwrap();
    assert!(u.wake_armed);
    assert!(
        !u.must_enter(),
        "the wake poll alone does not make spins enter"
    );
    // Another thread wakes the shard while it spins without entering.
    crate::sys::eventfd_write(wake.as_raw_fd());
    for _ in 0..10 {
        u.poll(Some(Duration::ZERO)).unwrap();
    }
    if !u.wake_armed {
        // Without DEFER_TASKRUN the completion was posted at once and the
        // spins reaped it (the shard's state word carries the wake).
        assert!(!u.features.defer_taskrun);
        return;
    }
    // With DEFER_TASKRUN the completion waits for an enter: the next sleep
    // returns at once instead of waiting its timeout out.
    let t = Instant::now();
    u.poll(Some(Duration::from_secs(10))).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the sleep waited {:?} despite the wake",
        t.elapsed()
    );
    assert!(!u.wake_armed, "the wake poll's completion was reaped");
}

/// A batched sleep (after a busy one) still returns with a single
/// completion once its bounded wait is over, and a sleep after a quiet
/// wake-up does not batch.
#[test]
fn a_batched_sleep_returns_with_one_completion_after_its_wait() {
    use super::SleepBatch;
    use super::sleep_batch::MIN_BATCH;

    let wake = crate::sys::eventfd().unwrap();
    let mut u = Uring::new(wake.as_raw_fd(), 64).unwrap();
    let wait = Duration::from_millis(20);
    u.set_sleep_batch(SleepBatch::new(64, wait));
    if !u.features.sleep_batch {
        eprintln!("SKIPPED: this kernel has no IORING_FEAT_MIN_TIMEOUT (Linux 6.12)");
        return;
    }
    // As after a wake-up that brought a burst.
    u.sleep_batch.woke(MIN_BATCH);
    assert!(u.sleep_batch.next().is_some());

    let (r, w) = pipe();
    let mut buf = [0u8; 8];
    let entry = opcode::Read::new(types::Fd(r.as_raw_fd()), buf.as_mut_ptr(), 8).build();
    // SAFETY: `buf` outlives the operation: the sleep below collects its
    // completion before the test ends (or `u`, dropped first, cancels it).
    let key = unsafe { u.submit(entry) };
    write(&w, b"ping");
    let t = Instant::now();
    u.poll(Some(Duration::from_secs(10))).unwrap();
    let waker = Waker::noop();
    match u.poll_op(&key, waker, None) {
        Poll::Ready(cqe) => assert_eq!(cqe.res, 4),
        Poll::Pending => panic!("the sleep returned without the read's completion"),
    }
    // One completion is not a batch: it waited (nearly) its bounded time
    // for more, and not the ten seconds of the timeout.
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "slept {took:?}");
    assert!(
        u.sleep_batch.next().is_none(),
        "one completion: the next sleep does not batch"
    );
}
