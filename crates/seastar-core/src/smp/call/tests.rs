//! The call protocol between two transports, without a reactor: each side
//! is a [`Transport`] with a task list for a run queue, pumped by hand (on
//! one thread, or on two: the Miri data-race checks and the loom model).
//! No syscalls, so all of it runs under Miri
//! (`cargo +nightly miri test -p seastar-core --lib -- smp::`).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

#[cfg(loom)]
use loom::sync::Arc;
#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::sync::Arc;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{Outcome, Pending, new};
use crate::reactor::stats::ReactorStats;
use crate::smp::transport::{Links, Mesh, Signal, Task, Transport};

/// Counts the signals a side received.
#[derive(Default)]
struct Signals(AtomicUsize);

impl Signal for Signals {
    fn signal(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// These sides never sleep: they pump until done.
    fn signal_if_sleeping(&self) {}
}

/// One shard as far as calls go: its transport and its ready tasks.
struct Side {
    t: Rc<Transport>,
    ready: std::sync::Arc<Mutex<Vec<Task>>>,
}

impl Side {
    fn new(id: usize, links: Links) -> Side {
        let ready = std::sync::Arc::new(Mutex::new(Vec::<Task>::new()));
        let r = ready.clone();
        let signals: Vec<std::sync::Arc<dyn Signal>> = (0..2)
            .map(|_| std::sync::Arc::new(Signals::default()) as _)
            .collect();
        let scheduler = std::sync::Arc::new(move |task| r.lock().unwrap().push(task));
        let stats = Rc::new(ReactorStats::new(2));
        Side {
            t: Rc::new(Transport::new(id, links, signals, scheduler, stats)),
            ready,
        }
    }

    /// One loop iteration: drain the rings, run the call steps and the
    /// ready tasks, publish. Returns whether anything ran.
    fn pump(&self) -> bool {
        let mut got = Vec::new();
        self.t.drain(&mut |task| got.push(task));
        let mut ran = !got.is_empty();
        self.ready.lock().unwrap().extend(got);
        while let Some(call) = self.t.next_call() {
            call.run(&self.t);
            ran = true;
        }
        loop {
            let next = self.ready.lock().unwrap().pop();
            let Some(task) = next else { break };
            task.run();
            ran = true;
        }
        self.t.flush();
        ran
    }

    /// Starts a call of `f` from this side (shard 0) on shard 1.
    fn submit<F, Fut, T>(&self, f: F) -> Pending<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (ptr, start) = new(0, 1, 0, f);
        self.t.push(1, start);
        Pending::new(ptr, self.t.clone())
    }
}

/// One hop each way: `a` sends what it has, `b` runs it and answers, `a`
/// takes the answer.
#[cfg(not(loom))]
fn round_trip(a: &Side, b: &Side) {
    a.pump();
    b.pump();
    a.pump();
}

#[cfg(not(loom))]
fn pair() -> (Side, Side) {
    let mesh = Mesh::new(2, 4);
    (Side::new(0, mesh.take(0)), Side::new(1, mesh.take(1)))
}

/// A waker that counts its wakes.
fn counting_waker() -> (Waker, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    struct W(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl std::task::Wake for W {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref()
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    (Waker::from(std::sync::Arc::new(W(n.clone()))), n)
}

fn poll<T>(p: &mut Pending<T>, w: &Waker) -> Poll<Option<Outcome<T>>> {
    p.poll(&mut Context::from_waker(w))
}

/// Pending on its first poll, ready on the next.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(not(loom))]
mod single_thread {
    use super::*;

    #[test]
    fn a_call_that_finishes_at_once_returns_its_value_and_wakes_the_caller() {
        let (a, b) = pair();
        let (w, woken) = counting_waker();
        let mut p = a.submit(|| async { 7u32 });
        assert!(poll(&mut p, &w).is_pending());
        a.pump();
        assert!(b.pump(), "the start reached shard 1");
        assert!(b.ready.lock().unwrap().is_empty(), "no driver task");
        a.pump();
        assert_eq!(woken.load(std::sync::atomic::Ordering::Relaxed), 1);
        match poll(&mut p, &w) {
            Poll::Ready(Some(Ok(7))) => {}
            _ => panic!("expected the value 7"),
        }
    }

    #[test]
    fn a_panic_on_the_target_comes_back_as_the_outcome() {
        let (a, b) = pair();
        let (w, _) = counting_waker();
        let mut p = a.submit(|| async { panic!("boom") });
        round_trip(&a, &b);
        match poll(&mut p, &w) {
            Poll::Ready(Some(Err(e))) => assert_eq!(e.downcast_ref::<&str>(), Some(&"boom")),
            _ => panic!("expected the panic"),
        }
    }

    #[test]
    fn a_waiting_future_gets_a_driver_that_finishes_it() {
        let (a, b) = pair();
        let (w, _) = counting_waker();
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let mut p = a.submit(move || async move { rx.await.unwrap() + 1 });
        round_trip(&a, &b);
        assert!(poll(&mut p, &w).is_pending());
        tx.send(41).unwrap();
        assert_eq!(b.ready.lock().unwrap().len(), 1, "the driver was woken");
        b.pump();
        a.pump();
        assert!(matches!(poll(&mut p, &w), Poll::Ready(Some(Ok(42)))));
    }

    #[test]
    fn the_probe_may_be_woken_from_another_thread_during_the_poll() {
        let (a, b) = pair();
        let (w, _) = counting_waker();
        let mut p = a.submit(|| {
            let mut first = true;
            std::future::poll_fn(move |cx| {
                if !first {
                    return Poll::Ready(5u8);
                }
                first = false;
                // The probe, cloned and woken on another thread while the
                // first poll runs (a `Waker` must allow it).
                let waker = cx.waker();
                std::thread::scope(|s| {
                    s.spawn(|| {
                        let clone = waker.clone();
                        waker.wake_by_ref();
                        clone.wake();
                    });
                });
                Poll::Pending
            })
        });
        a.pump();
        b.pump();
        b.pump();
        a.pump();
        assert!(matches!(poll(&mut p, &w), Poll::Ready(Some(Ok(5)))));
    }

    #[test]
    fn dropping_a_running_call_drops_its_future_on_the_target_and_frees_the_cell() {
        thread_local!(static DROPPED: Cell<bool> = const { Cell::new(false) });
        struct Guard;
        impl Drop for Guard {
            fn drop(&mut self) {
                DROPPED.with(|d| d.set(true));
            }
        }
        let (a, b) = pair();
        let (w, _) = counting_waker();
        let (_tx, rx) = futures::channel::oneshot::channel::<u32>();
        let mut p = a.submit(move || async move {
            let _g = Guard;
            rx.await.unwrap()
        });
        a.pump();
        b.pump();
        assert!(poll(&mut p, &w).is_pending());
        drop(p);
        assert!(!DROPPED.with(Cell::get));
        a.pump();
        b.pump();
        assert!(
            DROPPED.with(Cell::get),
            "the future was dropped on the target"
        );
        // The return, then the acknowledgement (which frees the cell: Miri
        // reports a leak otherwise).
        while a.pump() | b.pump() {}
    }

    /// The step of the start message `new` makes for `f` in `group`.
    fn start_op<F, Fut, T>(group: usize, f: F) -> crate::smp::call_msg::Op
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (ptr, start) = new(0, 1, group, f);
        let crate::smp::transport::Message::Call(msg) = start else {
            panic!("a call message")
        };
        let m = msg.open();
        assert_eq!(m.call.raw(), ptr.raw(), "the message names the cell");
        // Never sent: give the closure back to the cell, then free it as
        // a returned, unwanted call.
        if m.op == crate::smp::call_msg::Op::StartInline {
            // SAFETY: the payload holds the call's closure (an `F`).
            drop(unsafe { m.payload.as_ptr().cast::<F>().read() });
        }
        let op = m.op;
        let mut p = Pending::<T>::new(ptr, pair().0.t.clone());
        p.force_returned();
        drop(p);
        op
    }

    #[test]
    fn a_word_sized_closure_in_the_default_group_starts_inline() {
        use crate::smp::call_msg::Op;
        let i = 7u64;
        assert_eq!(start_op(0, move || async move { i }), Op::StartInline);
        assert_eq!(start_op(1, move || async move { i }), Op::Start, "group 1");
        let big = [1u64; 4];
        assert_eq!(start_op(0, move || async move { big[3] }), Op::Start);
    }

    #[test]
    fn a_closure_too_big_to_travel_inline_runs_from_the_cell() {
        let (a, b) = pair();
        let (w, _) = counting_waker();
        let big = [3u64; 4];
        let mut p = a.submit(move || async move { big.iter().sum::<u64>() });
        round_trip(&a, &b);
        assert!(matches!(poll(&mut p, &w), Poll::Ready(Some(Ok(12)))));
    }

    #[test]
    fn an_inline_closure_that_panics_comes_back_as_the_outcome() {
        let (a, b) = pair();
        let (w, _) = counting_waker();
        let i = 3u64;
        let mut p = a.submit(move || -> std::future::Ready<u64> { panic!("closure {i}") });
        round_trip(&a, &b);
        match poll(&mut p, &w) {
            Poll::Ready(Some(Err(e))) => {
                assert_eq!(
                    e.downcast_ref::<String>().map(String::as_str),
                    Some("closure 3")
                )
            }
            _ => panic!("expected the panic"),
        }
    }

    /// A word-sized output with a destructor, counting its drops.
    struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn drops() -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0))
    }

    #[test]
    fn a_word_sized_output_comes_back_inline_and_is_dropped_once() {
        assert!(super::super::fits_payload::<Counted>());
        let (a, b) = pair();
        let (w, _) = counting_waker();
        let n = drops();
        let n2 = n.clone();
        let mut p = a.submit(move || async move { Counted(n2) });
        round_trip(&a, &b);
        match poll(&mut p, &w) {
            Poll::Ready(Some(Ok(c))) => {
                assert_eq!(n.load(std::sync::atomic::Ordering::Relaxed), 0);
                drop(c);
            }
            _ => panic!("expected the output"),
        }
        drop(p);
        assert_eq!(n.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn an_inline_output_nobody_takes_is_dropped_with_the_cell() {
        let (a, b) = pair();
        let n = drops();
        let n2 = n.clone();
        let p = a.submit(move || async move { Counted(n2) });
        round_trip(&a, &b);
        let freed = super::super::FREED.with(Cell::get);
        drop(p);
        assert_eq!(n.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(super::super::FREED.with(Cell::get), freed + 1);
    }

    #[test]
    fn an_inline_output_of_a_cancelled_call_is_dropped_at_the_acknowledgement() {
        let (a, b) = pair();
        let n = drops();
        let n2 = n.clone();
        let p = a.submit(move || async move { Counted(n2) });
        a.pump();
        // Cancelled before the target ran it: the target runs the start
        // (the output comes back inline) and then the cancel.
        drop(p);
        a.pump();
        b.pump();
        assert_eq!(n.load(std::sync::atomic::Ordering::Relaxed), 0);
        let freed = super::super::FREED.with(Cell::get);
        while a.pump() | b.pump() {}
        assert_eq!(n.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(super::super::FREED.with(Cell::get), freed + 1);
    }

    #[test]
    fn dropping_after_the_return_frees_the_unread_outcome() {
        let (a, b) = pair();
        let p = a.submit(|| async { vec![1u8; 16] });
        round_trip(&a, &b);
        drop(p);
    }
}

/// Origin and target on two threads: `calls` calls, the first `cancel`
/// of which are dropped right after their start. Every call comes back
/// exactly once and every cell is freed (the harness loops until both
/// sides are idle and every caller saw its outcome).
fn two_threads(calls: usize, cancel: usize) {
    let mesh = Mesh::new(2, 2);
    let (la, lb) = (mesh.take(0), mesh.take(1));
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let target = spawn(move || {
        let b = Side::new(1, lb);
        while !d.load(Ordering::Acquire) {
            if !b.pump() {
                yield_now();
            }
        }
        // Whatever the origin sent last (acknowledgements) is answered.
        while b.pump() {}
    });
    let a = Side::new(0, la);
    let freed_before = super::FREED.with(Cell::get);
    let (w, _) = counting_waker();
    let mut pending: Vec<_> = (0..calls)
        .map(|i| {
            a.submit(move || async move {
                YieldOnce(false).await;
                i
            })
        })
        .collect();
    pending.drain(..cancel).for_each(drop);
    let mut got = vec![None; calls];
    while got[cancel..].iter().any(Option::is_none) {
        if !a.pump() {
            yield_now();
        }
        for (i, p) in pending.iter_mut().enumerate() {
            let slot = &mut got[cancel + i];
            if slot.is_none() {
                if let Poll::Ready(out) = poll(p, &w) {
                    *slot = Some(out.expect("an outcome").expect("no panic"));
                }
            }
        }
    }
    drop(pending);
    // The cancelled calls' acknowledgements free their cells.
    while super::FREED.with(Cell::get) < freed_before + calls {
        if !a.pump() {
            yield_now();
        }
    }
    done.store(true, Ordering::Release);
    target.join().unwrap();
    a.pump();
    assert_eq!(
        got[cancel..],
        (cancel..calls).map(Some).collect::<Vec<_>>()[..]
    );
}

#[cfg(not(loom))]
use std::thread::{spawn, yield_now};

#[cfg(loom)]
use loom::thread::{spawn, yield_now};

#[cfg(not(loom))]
#[test]
fn calls_and_cancels_between_two_threads() {
    two_threads(if cfg!(miri) { 4 } else { 64 }, 2);
}

/// The cross-thread protocol of `call/` under loom: a call that waits
/// once (so it gets a driver) and a cancelled one, over rings of two
/// slots, in every interleaving loom explores.
#[cfg(loom)]
#[test]
fn loom_call_return_and_cancel() {
    loom::model(|| two_threads(2, 1));
}

/// The layout that keeps a small call to two cache-line crossings: the
/// origin's fields alone on the first line, the target's fields and a
/// small stage together on the second (see `Header`).
#[cfg(not(loom))]
#[test]
fn a_small_calls_target_side_fits_one_line() {
    use std::mem::{align_of, offset_of, size_of};
    // The shape of `submit_to(1, move || async move { i })` with `i: u64`.
    fn shape(i: u64) -> impl FnOnce() -> std::future::Ready<u64> + Send {
        move || std::future::ready(i)
    }
    fn cell_of<F: FnOnce() -> Fut, Fut: Future<Output = T>, T>(
        _: &F,
    ) -> (usize, usize, usize, usize) {
        type C<F, Fut, T> = super::CallCell<F, Fut, T>;
        (
            align_of::<C<F, Fut, T>>(),
            offset_of!(C<F, Fut, T>, head),
            offset_of!(C<F, Fut, T>, stage),
            size_of::<C<F, Fut, T>>(),
        )
    }
    let (align, target_side, stage, size) = cell_of(&shape(7));
    assert_eq!(align, 64);
    assert_eq!(target_side, 64, "the origin's fields fill line 0");
    assert!(
        stage >= 64 && size <= 128,
        "stage at {stage}, cell of {size} bytes"
    );
}
