//! Pollers in the loop: polled every iteration, keeping the shard awake,
//! refusing sleep, and waking it through an fd or from another thread.
//! Each test's shard would sleep forever without the behaviour it checks,
//! so a bounded wait turns a regression into a failure, not a hang.

use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Waker};
use std::time::Duration;

use super::{FdWatch, Poller, add_poller};
use crate::promise::{Promise, promise};

/// Waits for `done`, failing (not hanging) after a generous bound.
async fn within<T: 'static>(done: crate::promise::Future<T>) -> T {
    match crate::timer::timeout(Duration::from_secs(10), done).await {
        Ok(Ok(v)) => v,
        Ok(Err(_)) => panic!("promise dropped"),
        Err(_) => panic!("the shard slept through the poller's work"),
    }
}

/// Does `left` units of work, one per poll, then fulfils its promise.
struct Work {
    left: u32,
    polls: Rc<Cell<u32>>,
    done: Option<Promise<()>>,
}

impl Poller for Work {
    fn poll(&mut self) -> bool {
        self.polls.set(self.polls.get() + 1);
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        if self.left == 0 {
            if let Some(p) = self.done.take() {
                p.set_value(());
            }
        }
        true
    }
}

#[seastar_core::test]
async fn work_keeps_the_shard_awake() {
    let (p, f) = promise();
    let polls = Rc::new(Cell::new(0));
    let _h = add_poller(Work {
        left: 1000,
        polls: polls.clone(),
        done: Some(p),
    });
    within(f).await;
    assert!(polls.get() >= 1000, "polled {} times", polls.get());
}

/// Refuses to sleep `refusals` times, then fulfils its promise.
struct Refuse {
    refusals: u32,
    done: Option<Promise<u32>>,
    asked: u32,
}

impl Poller for Refuse {
    fn poll(&mut self) -> bool {
        false
    }
    fn try_sleep(&mut self, _cx: &mut Context<'_>) -> bool {
        self.asked += 1;
        if self.asked == self.refusals {
            if let Some(p) = self.done.take() {
                p.set_value(self.asked);
            }
        }
        false
    }
}

#[seastar_core::test]
async fn a_refused_sleep_keeps_the_loop_turning() {
    let (p, f) = promise();
    let _h = add_poller(Refuse {
        refusals: 50,
        done: Some(p),
        asked: 0,
    });
    assert_eq!(within(f).await, 50);
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded: both are fresh descriptors we own.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A device stand-in: a pipe whose bytes are "frames".
struct PipeDevice {
    rx: OwnedFd,
    watch: FdWatch,
    got: Rc<RefCell<Vec<u8>>>,
    want: usize,
    done: Option<Promise<()>>,
    sleeps: Rc<Cell<u32>>,
}

impl Poller for PipeDevice {
    fn poll(&mut self) -> bool {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a live stack buffer of the given length.
        let n = unsafe { libc::read(self.rx.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return false;
        }
        self.got.borrow_mut().extend_from_slice(&buf[..n as usize]);
        if self.got.borrow().len() >= self.want {
            if let Some(p) = self.done.take() {
                p.set_value(());
            }
        }
        true
    }
    fn try_sleep(&mut self, cx: &mut Context<'_>) -> bool {
        !self.watch.arm(cx)
    }
    fn woke(&mut self) {
        self.sleeps.set(self.sleeps.get() + 1);
    }
}

#[seastar_core::test]
async fn an_fd_watch_wakes_the_sleeping_shard() {
    let (rx, tx) = pipe();
    let (p, f) = promise();
    let got = Rc::new(RefCell::new(Vec::new()));
    let sleeps = Rc::new(Cell::new(0));
    let _h = add_poller(PipeDevice {
        watch: FdWatch::new(rx.as_raw_fd()),
        rx,
        got: got.clone(),
        want: 3,
        done: Some(p),
        sleeps: sleeps.clone(),
    });
    let writer = std::thread::spawn(move || {
        for b in [1u8, 2, 3] {
            std::thread::sleep(Duration::from_millis(30));
            // SAFETY: writes one byte from a live local.
            let n = unsafe { libc::write(tx.as_raw_fd(), (&b as *const u8).cast(), 1) };
            assert_eq!(n, 1);
        }
    });
    within(f).await;
    writer.join().unwrap();
    assert_eq!(*got.borrow(), [1, 2, 3]);
    assert!(sleeps.get() >= 1, "the shard slept between the writes");
}

/// Hands its sleep waker to another thread, which wakes it once.
struct Remote {
    flag: Arc<AtomicBool>,
    waker: Arc<std::sync::Mutex<Option<Waker>>>,
    done: Option<Promise<()>>,
}

impl Poller for Remote {
    fn poll(&mut self) -> bool {
        if self.flag.load(Ordering::Acquire) {
            if let Some(p) = self.done.take() {
                p.set_value(());
            }
        }
        false
    }
    fn try_sleep(&mut self, cx: &mut Context<'_>) -> bool {
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        true
    }
}

#[seastar_core::test]
async fn a_waker_from_another_thread_wakes_the_shard() {
    let flag = Arc::new(AtomicBool::new(false));
    let waker = Arc::new(std::sync::Mutex::new(None::<Waker>));
    let (p, f) = promise();
    let _h = add_poller(Remote {
        flag: flag.clone(),
        waker: waker.clone(),
        done: Some(p),
    });
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        flag.store(true, Ordering::Release);
        let w = waker
            .lock()
            .unwrap()
            .clone()
            .expect("armed before sleeping");
        w.wake();
    });
    within(f).await;
    t.join().unwrap();
}

/// Drops its own handle from inside `poll` (through a shared slot).
struct SelfRemoving {
    handle: Rc<RefCell<Option<super::PollerHandle>>>,
    polls: Rc<Cell<u32>>,
}

impl Poller for SelfRemoving {
    fn poll(&mut self) -> bool {
        self.polls.set(self.polls.get() + 1);
        self.handle.borrow_mut().take();
        // Adding a poller while running must work too.
        add_poller(Work {
            left: 0,
            polls: Rc::new(Cell::new(0)),
            done: None,
        })
        .detach();
        false
    }
}

#[seastar_core::test]
async fn a_poller_may_remove_itself_and_add_others_while_polled() {
    let slot = Rc::new(RefCell::new(None));
    let polls = Rc::new(Cell::new(0));
    *slot.borrow_mut() = Some(add_poller(SelfRemoving {
        handle: slot.clone(),
        polls: polls.clone(),
    }));
    for _ in 0..5 {
        crate::reactor::next_tick().await;
    }
    assert_eq!(polls.get(), 1, "removed after its first poll");
}

/// Reports `items` of work each time it agrees to sleep.
struct Handles(u32);

impl Poller for Handles {
    fn poll(&mut self) -> bool {
        false
    }

    fn handled(&mut self) -> u32 {
        self.0
    }
}

/// Sleeps of this shard that waited for a batch, while three timer sleeps
/// of 1 ms pass with a poller reporting `items` per sleep.
async fn batched_sleeps_with(items: u32) -> u64 {
    let batched = || crate::reactor::with(|s| s.stats().batched_sleeps.get());
    let _h = add_poller(Handles(items));
    let before = batched();
    for _ in 0..3 {
        crate::timer::sleep(Duration::from_millis(1)).await;
    }
    batched() - before
}

/// Whether this shard's sleeps may batch (io_uring on Linux 6.12+).
fn sleeps_batch() -> bool {
    crate::io::uring_features().is_some_and(|f| f.sleep_batch)
}

#[seastar_core::test]
async fn a_pollers_burst_makes_the_next_sleep_wait_for_a_batch() {
    let batched = batched_sleeps_with(20).await;
    if sleeps_batch() {
        // The first sleep may follow the poller's first poll only.
        assert!(batched >= 2, "{batched} batched sleeps");
    } else {
        assert_eq!(batched, 0, "epoll (or an old kernel) never batches");
    }
}

#[seastar_core::test]
async fn a_quiet_poller_leaves_sleeps_unbatched() {
    assert_eq!(batched_sleeps_with(0).await, 0);
}
