//! The cell against a test home: a thread-local queue on the test's
//! thread, a mutex inbox for the other threads. No reactor, no
//! syscall: these run under Miri (xtask's `miri` step), which also
//! checks that every cell is freed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};

use super::*;

type Inbox = Arc<Mutex<Vec<Request<TestHome>>>>;

struct TestHome {
    thread: std::thread::ThreadId,
    inbox: Inbox,
}

thread_local! {
    static QUEUE: RefCell<VecDeque<Runnable<TestHome>>> = const { RefCell::new(VecDeque::new()) };
}

impl Home for TestHome {
    fn is_home(&self) -> bool {
        std::thread::current().id() == self.thread
    }

    fn same(&self, other: &Self) -> bool {
        self.thread == other.thread
    }

    fn schedule(task: Runnable<Self>) {
        QUEUE.with(|q| q.borrow_mut().push_back(task));
    }

    fn send(request: Request<Self>) {
        let inbox = request.home().inbox.clone();
        inbox.lock().unwrap().push(request);
    }
}

/// The calling thread as a home, with its inbox.
fn home() -> (TestHome, Inbox) {
    let inbox = Inbox::default();
    let h = TestHome {
        thread: std::thread::current().id(),
        inbox: inbox.clone(),
    };
    (h, inbox)
}

fn spawn_here<F: Future + 'static>(inbox: &Inbox, future: F) -> JoinHandle<F::Output, TestHome> {
    let h = TestHome {
        thread: std::thread::current().id(),
        inbox: inbox.clone(),
    };
    let (r, handle) = spawn(h, 0, future);
    TestHome::schedule(r);
    handle
}

/// Applies the inbox's requests and runs queued tasks until none is
/// left; returns how many runs there were.
fn run_all(inbox: &Inbox) -> usize {
    let mut runs = 0;
    loop {
        let requests = std::mem::take(&mut *inbox.lock().unwrap());
        for r in requests {
            if let Some(t) = r.apply() {
                TestHome::schedule(t);
            }
        }
        let Some(t) = QUEUE.with(|q| q.borrow_mut().pop_front()) else {
            if inbox.lock().unwrap().is_empty() {
                return runs;
            }
            continue;
        };
        t.run();
        runs += 1;
    }
}

/// Polls the handle in `h` (given up, `None`, once ready).
fn poll_handle<T>(h: &mut Option<JoinHandle<T, TestHome>>) -> Poll<Option<std::thread::Result<T>>> {
    JoinHandle::poll_take(h, &mut Context::from_waker(Waker::noop()))
}

/// Whether the task of the handle in `h` is finished.
fn finished<T>(h: &Option<JoinHandle<T, TestHome>>) -> bool {
    h.as_ref().expect("a handle").is_finished()
}

/// Counts its drops.
struct Guard(Rc<Cell<usize>>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn task_runs_once_and_its_handle_yields_the_output() {
    let (_, inbox) = home();
    let mut h = Some(spawn_here(&inbox, async { 7 }));
    assert!(!finished(&h));
    assert_eq!(run_all(&inbox), 1);
    assert!(finished(&h));
    match poll_handle(&mut h) {
        Poll::Ready(Some(Ok(7))) => {}
        _ => panic!("no output"),
    }
    assert!(h.is_none(), "the handle was not given up");
    assert!(matches!(poll_handle(&mut h), Poll::Ready(None)));
}

#[test]
fn awaiting_task_is_woken_by_completion() {
    let (_, inbox) = home();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let i = inbox.clone();
    let outer = spawn_here(&inbox, async move {
        let inner = spawn_here(&i, async { 5 });
        l.borrow_mut().push("spawned");
        let v = std::future::poll_fn({
            let mut inner = Some(inner);
            move |cx| JoinHandle::poll_take(&mut inner, cx)
        })
        .await;
        l.borrow_mut().push("joined");
        v.unwrap().unwrap()
    });
    // outer, inner, outer again.
    assert_eq!(run_all(&inbox), 3);
    assert_eq!(*log.borrow(), ["spawned", "joined"]);
    drop(outer);
}

/// A waker that counts its wakes (not a task's: the handle's slow path).
struct CountingWaker(AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn handle_awaited_with_another_waker_wakes_it_once_and_lets_it_go() {
    let (_, inbox) = home();
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let mut h = Some(spawn_here(&inbox, async { 7 }));
    // Registered twice with the same waker: kept once.
    assert!(JoinHandle::poll_take(&mut h, &mut cx).is_pending());
    assert!(JoinHandle::poll_take(&mut h, &mut cx).is_pending());
    assert_eq!(Arc::strong_count(&counter), 3, "one clone as the awaiter");
    assert_eq!(run_all(&inbox), 1);
    let n = counter.0.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(n, 1, "the awaiter was woken {n} times");
    assert_eq!(
        Arc::strong_count(&counter),
        2,
        "the awaiter was not dropped"
    );
    let out = JoinHandle::poll_take(&mut h, &mut cx);
    assert!(matches!(out, Poll::Ready(Some(Ok(7)))));
    assert!(h.is_none());
}

#[test]
fn dropped_handle_detaches_and_the_output_is_dropped() {
    let (_, inbox) = home();
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let h = spawn_here(&inbox, async move { Guard(d) });
    drop(h);
    assert_eq!(run_all(&inbox), 1);
    assert_eq!(drops.get(), 1, "the unread output was not dropped");
}

#[test]
fn task_dropped_before_it_ran_is_cancelled() {
    let (_, inbox) = home();
    let drops = Rc::new(Cell::new(0));
    // Owned by the future before its first poll.
    let g = Guard(drops.clone());
    let mut h = Some(spawn_here(&inbox, async move {
        let _g = g;
        std::future::pending::<()>().await;
    }));
    let r = QUEUE.with(|q| q.borrow_mut().pop_front()).expect("queued");
    drop(r);
    assert_eq!(drops.get(), 1, "the future was not dropped");
    assert!(finished(&h));
    assert!(matches!(poll_handle(&mut h), Poll::Ready(None)));
    assert_eq!(run_all(&inbox), 0);
}

#[test]
fn pending_task_nobody_can_wake_is_dropped() {
    let (_, inbox) = home();
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let h = spawn_here(&inbox, async move {
        let _g = Guard(d);
        std::future::pending::<()>().await;
    });
    assert_eq!(run_all(&inbox), 1);
    assert_eq!(drops.get(), 0);
    // The handle was the last reference: the task is closed and run
    // once more to drop its future.
    drop(h);
    assert_eq!(run_all(&inbox), 1);
    assert_eq!(drops.get(), 1);
}

#[test]
fn panic_in_task_is_its_output() {
    let (_, inbox) = home();
    let mut h = Some(spawn_here(&inbox, async { panic!("boom") }));
    run_all(&inbox);
    match poll_handle(&mut h) {
        Poll::Ready(Some(Err(p))) => assert_eq!(p.downcast_ref::<&str>(), Some(&"boom")),
        _ => panic!("the panic was not the output"),
    }
}

#[test]
fn abort_drops_the_future_and_the_handle_sees_cancelled() {
    let (_, inbox) = home();
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let waker = Rc::new(RefCell::new(None::<Waker>));
    let w = waker.clone();
    let mut h = Some(spawn_here(&inbox, async move {
        let _g = Guard(d);
        std::future::poll_fn(|cx| {
            *w.borrow_mut() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })
        .await;
    }));
    run_all(&inbox);
    assert!(poll_handle(&mut h).is_pending());
    h.as_ref().unwrap().abort();
    assert!(matches!(poll_handle(&mut h), Poll::Ready(None)));
    assert_eq!(run_all(&inbox), 1);
    assert_eq!(drops.get(), 1);
    // A wake after the abort does nothing.
    waker.borrow_mut().take().unwrap().wake();
    assert_eq!(run_all(&inbox), 0);
}

#[test]
fn waking_itself_while_running_queues_it_once() {
    let (_, inbox) = home();
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    let _h = spawn_here(
        &inbox,
        std::future::poll_fn(move |cx| {
            p.set(p.get() + 1);
            if p.get() == 3 {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            // (A clone's wake, by value, as a combinator would.)
            #[allow(clippy::waker_clone_wake)]
            cx.waker().clone().wake();
            Poll::Pending
        }),
    );
    assert_eq!(run_all(&inbox), 3);
    assert_eq!(polls.get(), 3);
}

/// A future that is ready once `flag` is set, keeping the last waker
/// it was polled with in `slot`.
fn flag_future(
    flag: Arc<AtomicBool>,
    slot: Arc<Mutex<Option<Waker>>>,
) -> impl Future<Output = u32> {
    std::future::poll_fn(move |cx| {
        if flag.load(Ordering::Acquire) {
            return Poll::Ready(1);
        }
        *slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    })
}

#[test]
fn wake_from_another_thread_reaches_home() {
    let (_, inbox) = home();
    let flag = Arc::new(AtomicBool::new(false));
    let slot = Arc::new(Mutex::new(None));
    let mut h = Some(spawn_here(&inbox, flag_future(flag.clone(), slot.clone())));
    assert_eq!(run_all(&inbox), 1);
    let waker = slot.lock().unwrap().take().expect("a waker");
    std::thread::spawn(move || {
        flag.store(true, Ordering::Release);
        // Clones, wakes and drops off home all become requests.
        let other = waker.clone();
        other.wake_by_ref();
        drop(other);
        waker.wake();
    })
    .join()
    .unwrap();
    assert_eq!(inbox.lock().unwrap().len(), 3);
    assert_eq!(run_all(&inbox), 1, "two wakes ran the task once");
    assert!(matches!(poll_handle(&mut h), Poll::Ready(Some(Ok(1)))));
}

#[test]
fn foreign_waker_keeps_a_detached_pending_task_alive() {
    let (_, inbox) = home();
    let flag = Arc::new(AtomicBool::new(false));
    let slot = Arc::new(Mutex::new(None));
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let f = flag_future(flag.clone(), slot.clone());
    drop(spawn_here(&inbox, async move {
        f.await;
        d.fetch_add(1, Ordering::Relaxed);
    }));
    assert_eq!(run_all(&inbox), 1);
    let local = slot.lock().unwrap().take().expect("a waker");
    // A foreign clone, made off home, then the only local waker goes:
    // the task must stay (the foreign waker can still wake it).
    let (tx, rx) = std::sync::mpsc::channel::<Waker>();
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Waker>();
    let t = std::thread::spawn(move || {
        let w = rx.recv().unwrap();
        back_tx.send(w.clone()).unwrap();
        // Dropping the local waker here sends its release home.
        drop(w);
    });
    tx.send(local).unwrap();
    let foreign = back_rx.recv().unwrap();
    t.join().unwrap();
    assert_eq!(run_all(&inbox), 0);
    assert_eq!(done.load(Ordering::Relaxed), 0);
    std::thread::spawn(move || {
        flag.store(true, Ordering::Release);
        foreign.wake();
    })
    .join()
    .unwrap();
    assert_eq!(run_all(&inbox), 1);
    assert_eq!(done.load(Ordering::Relaxed), 1);
}

#[test]
fn foreign_waker_dropped_at_home_releases_the_task() {
    let (_, inbox) = home();
    let flag = Arc::new(AtomicBool::new(false));
    let slot = Arc::new(Mutex::new(None));
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let f = flag_future(flag, slot.clone());
    drop(spawn_here(&inbox, async move {
        let _g = Guard(d);
        f.await;
    }));
    assert_eq!(run_all(&inbox), 1);
    let local = slot.lock().unwrap().take().expect("a waker");
    let foreign = std::thread::spawn(move || local.clone()).join().unwrap();
    // The thread's clone is foreign; the local waker's drop there was
    // sent home.
    assert_eq!(run_all(&inbox), 0);
    assert_eq!(drops.get(), 0);
    // Back home, the last (foreign) waker goes: nobody can wake the
    // task, so its future is dropped.
    drop(foreign);
    assert_eq!(run_all(&inbox), 1);
    assert_eq!(drops.get(), 1);
}
