//! `sync::ConditionVariable`: signal, broadcast, predicates, timeouts,
//! broken, cancellation. Manual clock; runs on the backend chosen by
//! `SEASTAR_REACTOR_BACKEND`.

use std::cell::{Cell, RefCell};
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures::poll;
use seastar_core::sync::{ConditionVariable, Error};
use seastar_core::timer::ManualClock;
use seastar_core::{spawn_local, yield_now};

async fn settle() {
    for _ in 0..4 {
        yield_now().await;
    }
}

#[seastar_core::test(manual_clock)]
async fn condvar_signal_wakes_one_waiter_in_fifo_order() {
    let cv = ConditionVariable::new();
    let mut a = cv.wait();
    let mut b = cv.wait();
    assert!(poll!(&mut a).is_pending());
    assert!(poll!(&mut b).is_pending());
    cv.signal();
    assert!(poll!(&mut b).is_pending(), "signal woke the later waiter");
    assert!(matches!(poll!(&mut a), std::task::Poll::Ready(Ok(()))));
    assert_eq!(cv.waiters(), 1);
    cv.signal();
    assert!(poll!(&mut b).is_ready());
}

#[seastar_core::test(manual_clock)]
async fn condvar_broadcast_wakes_every_waiter() {
    let cv = ConditionVariable::new();
    let woken = Rc::new(Cell::new(0));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (cv, woken) = (cv.clone(), woken.clone());
            spawn_local(async move {
                cv.wait().await.unwrap();
                woken.set(woken.get() + 1);
            })
        })
        .collect();
    settle().await;
    assert_eq!(cv.waiters(), 4);
    cv.broadcast();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(woken.get(), 4);
}

#[seastar_core::test(manual_clock)]
async fn condvar_signal_without_waiters_is_kept_for_the_next_wait_only() {
    let cv = ConditionVariable::new();
    cv.signal();
    cv.signal();
    assert!(poll!(cv.wait()).is_ready());
    assert!(poll!(pin!(cv.wait())).is_pending(), "two signals were kept");
}

#[seastar_core::test(manual_clock)]
async fn condvar_broadcast_without_waiters_is_not_kept() {
    let cv = ConditionVariable::new();
    cv.broadcast();
    assert!(poll!(pin!(cv.wait())).is_pending());
}

#[seastar_core::test(manual_clock)]
async fn condvar_wait_until_rechecks_the_predicate_after_each_wakeup() {
    let cv = ConditionVariable::new();
    let value = Rc::new(Cell::new(0));
    let checks = Rc::new(Cell::new(0));
    let (c, v, n) = (cv.clone(), value.clone(), checks.clone());
    let waiter = spawn_local(async move {
        c.wait_until(|| {
            n.set(n.get() + 1);
            v.get() == 3
        })
        .await
    });
    for i in 1..=3 {
        settle().await;
        assert!(
            !waiter.is_finished(),
            "returned while the predicate was false"
        );
        value.set(i);
        cv.broadcast();
    }
    waiter.await.unwrap().unwrap();
    assert_eq!(checks.get(), 4);
}

#[seastar_core::test(manual_clock)]
async fn condvar_wait_until_with_true_predicate_keeps_the_pending_signal() {
    let cv = ConditionVariable::new();
    cv.signal();
    cv.wait_until(|| true).await.unwrap();
    assert!(
        poll!(cv.wait()).is_ready(),
        "the pending signal was consumed"
    );
}

#[seastar_core::test(manual_clock)]
async fn condvar_wait_timeout_times_out_and_leaves_the_list() {
    let cv = ConditionVariable::new();
    let c = cv.clone();
    let waiter = spawn_local(async move { c.wait_timeout(Duration::from_secs(2)).await });
    settle().await;
    assert_eq!(cv.waiters(), 1);
    ManualClock::advance(Duration::from_secs(2)).await;
    assert!(matches!(waiter.await.unwrap(), Err(Error::Timeout)));
    assert_eq!(cv.waiters(), 0);
    cv.signal(); // nobody waits: kept, not delivered to the timed-out waiter
    assert!(poll!(cv.wait()).is_ready());
}

#[seastar_core::test(manual_clock)]
async fn condvar_wait_timeout_returns_ok_when_signalled_in_time() {
    let cv = ConditionVariable::new();
    let c = cv.clone();
    let waiter = spawn_local(async move { c.wait_timeout(Duration::from_secs(2)).await });
    settle().await;
    ManualClock::advance(Duration::from_secs(1)).await;
    cv.signal();
    assert!(waiter.await.unwrap().is_ok());
}

#[seastar_core::test(manual_clock)]
async fn condvar_wait_until_timeout_keeps_one_deadline_across_wakeups() {
    let cv = ConditionVariable::new();
    let c = cv.clone();
    let waiter = spawn_local(async move {
        c.wait_until_timeout(|| false, Duration::from_secs(10))
            .await
    });
    settle().await;
    ManualClock::advance(Duration::from_secs(6)).await;
    cv.broadcast(); // a wake-up with the predicate still false
    settle().await;
    assert!(!waiter.is_finished());
    ManualClock::advance(Duration::from_secs(4)).await;
    assert!(
        matches!(waiter.await.unwrap(), Err(Error::Timeout)),
        "deadline restarted"
    );
}

#[seastar_core::test(manual_clock)]
async fn condvar_wait_until_timeout_succeeds_when_predicate_turns_true() {
    let cv = ConditionVariable::new();
    let flag = Rc::new(Cell::new(false));
    let (c, f) = (cv.clone(), flag.clone());
    let waiter = spawn_local(async move {
        c.wait_until_timeout(|| f.get(), Duration::from_secs(10))
            .await
    });
    settle().await;
    flag.set(true);
    cv.signal();
    assert!(waiter.await.unwrap().is_ok());
    let r = cv.wait_until_timeout(|| true, Duration::ZERO).await;
    assert!(r.is_ok(), "a predicate that holds timed out");
}

#[seastar_core::test(manual_clock)]
async fn condvar_broken_fails_current_and_future_waiters() {
    let cv = ConditionVariable::new();
    let mut w = cv.wait();
    assert!(poll!(&mut w).is_pending());
    cv.broken();
    assert_eq!(cv.waiters(), 0);
    for r in [w.await, cv.wait().await, cv.wait_until(|| false).await] {
        assert_eq!(
            r.unwrap_err().to_string(),
            "broken: condition variable broken"
        );
    }
}

#[seastar_core::test(manual_clock)]
async fn condvar_signalled_waiter_cancelled_before_running_passes_the_signal_on() {
    let cv = ConditionVariable::new();
    let mut a = cv.wait();
    let mut b = cv.wait();
    assert!(poll!(&mut a).is_pending());
    assert!(poll!(&mut b).is_pending());
    cv.signal();
    drop(a);
    assert!(
        poll!(&mut b).is_ready(),
        "the signal was lost with the dropped waiter"
    );
    // With nobody left, a dropped signalled waiter's signal is kept.
    let mut c = cv.wait();
    assert!(poll!(&mut c).is_pending());
    cv.signal();
    drop(c);
    assert!(poll!(cv.wait()).is_ready());
}

#[seastar_core::test(manual_clock)]
async fn condvar_dropped_waiter_leaves_the_list() {
    let cv = ConditionVariable::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut gone = cv.wait();
    assert!(poll!(&mut gone).is_pending());
    let (c, l) = (cv.clone(), log.clone());
    let stays = spawn_local(async move {
        c.wait().await.unwrap();
        l.borrow_mut().push("stays");
    });
    settle().await;
    assert_eq!(cv.waiters(), 2);
    drop(gone);
    assert_eq!(cv.waiters(), 1);
    cv.signal();
    stays.await.unwrap();
    assert_eq!(*log.borrow(), vec!["stays"]);
}
