//! `sync::AbortSource`: callbacks, subscriptions, the `aborted` future,
//! `abortable` and `abortable_sleep`. Manual clock; runs on the backend
//! chosen by `SEASTAR_REACTOR_BACKEND`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures::poll;
use seastar_core::sync::{AbortSource, Error, Semaphore, abortable, abortable_sleep};
use seastar_core::timer::ManualClock;
use seastar_core::{spawn_local, yield_now};

async fn settle() {
    for _ in 0..4 {
        yield_now().await;
    }
}

#[seastar_core::test(manual_clock)]
async fn abort_runs_each_callback_once_in_subscription_order() {
    let abort = AbortSource::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let subs: Vec<_> = (0..3)
        .map(|i| {
            let l = log.clone();
            abort.subscribe(move || l.borrow_mut().push(i)).unwrap()
        })
        .collect();
    abort.request_abort();
    abort.request_abort();
    assert_eq!(*log.borrow(), vec![0, 1, 2]);
    drop(subs); // dropping fired subscriptions is fine
    assert!(abort.abort_requested());
}

#[seastar_core::test(manual_clock)]
async fn abort_dropped_subscription_never_runs() {
    let abort = AbortSource::new();
    let hit = Rc::new(Cell::new(0));
    let h = hit.clone();
    let gone = abort.subscribe(move || h.set(h.get() + 1)).unwrap();
    let h = hit.clone();
    let _kept = abort.subscribe(move || h.set(h.get() + 10)).unwrap();
    drop(gone);
    abort.request_abort();
    assert_eq!(hit.get(), 10);
}

#[seastar_core::test(manual_clock)]
async fn abort_subscribe_after_request_returns_none_and_never_runs() {
    let abort = AbortSource::new();
    abort.request_abort();
    let hit = Rc::new(Cell::new(false));
    let h = hit.clone();
    assert!(abort.subscribe(move || h.set(true)).is_none());
    assert!(!hit.get());
}

#[seastar_core::test(manual_clock)]
async fn abort_callback_may_drop_a_later_subscription() {
    let abort = AbortSource::new();
    let hit = Rc::new(Cell::new(false));
    let later: Rc<RefCell<Option<_>>> = Rc::new(RefCell::new(None));
    let l = later.clone();
    let _first = abort
        .subscribe(move || drop(l.borrow_mut().take()))
        .unwrap();
    let h = hit.clone();
    *later.borrow_mut() = abort.subscribe(move || h.set(true));
    abort.request_abort();
    assert!(!hit.get(), "an unsubscribed callback ran");
}

#[seastar_core::test(manual_clock)]
async fn abort_aborted_future_resolves_on_request() {
    let abort = AbortSource::new();
    let a = abort.clone();
    let waiter = spawn_local(async move { a.aborted().await });
    settle().await;
    assert!(!waiter.is_finished());
    abort.request_abort();
    waiter.await.unwrap();
    abort.aborted().await; // already requested: ready at once
}

#[seastar_core::test(manual_clock)]
async fn abort_check_fails_once_requested() {
    let abort = AbortSource::new();
    assert!(abort.check().is_ok());
    abort.request_abort();
    assert!(matches!(abort.check(), Err(Error::Aborted)));
}

#[seastar_core::test(manual_clock)]
async fn abortable_sleep_fails_when_aborted_before_its_deadline() {
    let abort = AbortSource::new();
    let a = abort.clone();
    let sleeper = spawn_local(async move { abortable_sleep(Duration::from_secs(3600), &a).await });
    settle().await;
    ManualClock::advance(Duration::from_secs(1)).await;
    abort.request_abort();
    assert!(matches!(sleeper.await.unwrap(), Err(Error::Aborted)));
}

#[seastar_core::test(manual_clock)]
async fn abortable_sleep_completes_when_not_aborted() {
    let abort = AbortSource::new();
    let a = abort.clone();
    let sleeper = spawn_local(async move { abortable_sleep(Duration::from_secs(5), &a).await });
    settle().await;
    ManualClock::advance(Duration::from_secs(5)).await;
    assert!(sleeper.await.unwrap().is_ok());
    abort.request_abort(); // too late to matter
}

#[seastar_core::test(manual_clock)]
async fn abortable_fails_at_once_without_polling_when_already_aborted() {
    let abort = AbortSource::new();
    abort.request_abort();
    let polled = Rc::new(Cell::new(false));
    let p = polled.clone();
    let r = abortable(async move { p.set(true) }, &abort).await;
    assert!(matches!(r, Err(Error::Aborted)));
    assert!(!polled.get());
}

#[seastar_core::test(manual_clock)]
async fn abortable_passes_the_output_through() {
    let abort = AbortSource::new();
    assert_eq!(abortable(async { "done" }, &abort).await.unwrap(), "done");
}

#[seastar_core::test(manual_clock)]
async fn abortable_acquire_leaves_the_semaphore_queue_on_abort() {
    let sem = Semaphore::new(0);
    let abort = AbortSource::new();
    let mut acquire = abortable(sem.acquire(1), &abort);
    assert!(poll!(&mut acquire).is_pending());
    assert_eq!(sem.waiters(), 1);
    abort.request_abort();
    assert!(matches!(acquire.await, Err(Error::Aborted)));
    assert_eq!(sem.waiters(), 0);
    sem.signal(1);
    assert_eq!(sem.available_units(), 1, "the aborted acquire kept a unit");
}

#[seastar_core::test(manual_clock)]
async fn abort_dropped_aborted_future_is_not_woken() {
    let abort = AbortSource::new();
    let mut first = abort.aborted();
    assert!(poll!(&mut first).is_pending());
    drop(first);
    let mut second = abort.aborted();
    assert!(poll!(&mut second).is_pending());
    abort.request_abort();
    assert!(poll!(&mut second).is_ready());
}
