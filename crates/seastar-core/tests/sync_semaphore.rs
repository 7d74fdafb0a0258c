//! `sync::Semaphore` and `SemaphoreUnits`: FIFO service, timeouts, broken
//! state, cancellation. Manual clock, so no test sleeps; runs on the backend
//! chosen by `SEASTAR_REACTOR_BACKEND`.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use futures::poll;
use seastar_core::sync::{Cause, Error, Semaphore};
use seastar_core::timer::ManualClock;
use seastar_core::{spawn_local, yield_now};

async fn settle() {
    for _ in 0..4 {
        yield_now().await;
    }
}

#[seastar_core::test(manual_clock)]
async fn semaphore_units_return_on_drop() {
    let sem = Semaphore::new(3);
    let a = sem.acquire(2).await.unwrap();
    assert_eq!((a.count(), sem.available_units()), (2, 1));
    drop(a);
    assert_eq!(sem.available_units(), 3);
}

#[seastar_core::test(manual_clock)]
async fn semaphore_is_fifo_even_when_later_waiter_fits() {
    let sem = Semaphore::new(1);
    let mut big = sem.acquire(3);
    let mut small = sem.acquire(1);
    assert!(poll!(&mut big).is_pending());
    assert!(
        poll!(&mut small).is_pending(),
        "small request overtook the head"
    );
    assert_eq!((sem.waiters(), sem.available_units()), (2, 1));
    sem.signal(2);
    let Poll::Ready(Ok(big_units)) = poll!(&mut big) else {
        panic!("head not served")
    };
    assert!(poll!(&mut small).is_pending());
    drop(big_units);
    let Poll::Ready(Ok(small_units)) = poll!(&mut small) else {
        panic!("not served")
    };
    assert_eq!((small_units.count(), sem.available_units()), (1, 2));
}

#[seastar_core::test(manual_clock)]
async fn semaphore_serves_waiters_in_arrival_order() {
    let sem = Semaphore::new(0);
    let arrivals = Rc::new(RefCell::new(Vec::new()));
    let order = Rc::new(RefCell::new(Vec::new()));
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let (sem, arrivals, order) = (sem.clone(), arrivals.clone(), order.clone());
            spawn_local(async move {
                // Tasks start in an unspecified order: note when this one
                // queues (its first poll of `acquire`, right after).
                arrivals.borrow_mut().push(i);
                sem.acquire(1).await.unwrap().forget(); // keep it: one unit, one waiter
                order.borrow_mut().push(i);
            })
        })
        .collect();
    settle().await;
    assert_eq!(sem.waiters(), 5);
    for served in 1..=5 {
        sem.signal(1);
        settle().await;
        assert_eq!(order.borrow().len(), served);
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.borrow(), *arrivals.borrow());
}

#[seastar_core::test(manual_clock)]
async fn semaphore_try_acquire_does_not_jump_the_queue() {
    let sem = Semaphore::new(1);
    let mut head = sem.acquire(2);
    assert!(poll!(&mut head).is_pending());
    assert!(
        sem.try_acquire(1).is_none(),
        "try_acquire overtook a waiter"
    );
    drop(head);
    assert!(sem.try_acquire(1).is_some());
}

#[seastar_core::test(manual_clock)]
async fn semaphore_acquire_timeout_fails_and_leaves_the_line() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let waiter = spawn_local(async move { s.acquire_timeout(1, Duration::from_secs(10)).await });
    settle().await;
    assert_eq!(sem.waiters(), 1);
    ManualClock::advance(Duration::from_secs(9)).await;
    settle().await;
    assert!(!waiter.is_finished());
    ManualClock::advance(Duration::from_secs(1)).await;
    assert!(matches!(waiter.await.unwrap(), Err(Error::Timeout)));
    assert_eq!((sem.waiters(), sem.available_units()), (0, 0));
    sem.signal(1);
    assert!(
        sem.try_acquire(1).is_some(),
        "timed-out waiter kept the unit"
    );
}

#[seastar_core::test(manual_clock)]
async fn semaphore_acquire_timeout_succeeds_when_units_come_in_time() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let waiter = spawn_local(async move { s.acquire_timeout(2, Duration::from_secs(10)).await });
    settle().await;
    ManualClock::advance(Duration::from_secs(5)).await;
    sem.signal(2);
    let units = waiter.await.unwrap().unwrap();
    assert_eq!((units.count(), sem.available_units()), (2, 0));
    ManualClock::advance(Duration::from_secs(10)).await; // the timer is gone
    drop(units);
    assert_eq!(sem.available_units(), 2);
}

#[seastar_core::test(manual_clock)]
async fn semaphore_timed_out_head_unblocks_smaller_waiters_behind_it() {
    let sem = Semaphore::new(1);
    let s = sem.clone();
    let head = spawn_local(async move { s.acquire_timeout(5, Duration::from_secs(1)).await });
    settle().await;
    let s = sem.clone();
    let small = spawn_local(async move { s.acquire(1).await.map(|u| u.forget()) });
    settle().await;
    assert!(!small.is_finished(), "small request overtook the head");
    ManualClock::advance(Duration::from_secs(1)).await;
    assert!(matches!(head.await.unwrap(), Err(Error::Timeout)));
    assert_eq!(small.await.unwrap().unwrap(), 1);
}

#[seastar_core::test(manual_clock)]
async fn semaphore_dropped_waiter_gives_its_place_to_the_next() {
    let sem = Semaphore::new(0);
    let mut a = sem.acquire(1);
    let mut b = sem.acquire(1);
    assert!(poll!(&mut a).is_pending());
    assert!(poll!(&mut b).is_pending());
    drop(a);
    assert_eq!(sem.waiters(), 1);
    sem.signal(1);
    assert!(matches!(poll!(&mut b), Poll::Ready(Ok(_))));
}

#[seastar_core::test(manual_clock)]
async fn semaphore_waiter_cancelled_after_grant_passes_units_to_next() {
    let sem = Semaphore::new(0);
    let mut a = sem.acquire(2);
    let mut b = sem.acquire(2);
    assert!(poll!(&mut a).is_pending());
    assert!(poll!(&mut b).is_pending());
    sem.signal(2); // granted to `a`, which is dropped before it runs
    assert_eq!((sem.waiters(), sem.available_units()), (1, 0));
    drop(a);
    let Poll::Ready(Ok(units)) = poll!(&mut b) else {
        panic!("units leaked")
    };
    drop(units);
    assert_eq!(sem.available_units(), 2);
}

#[seastar_core::test(manual_clock)]
async fn semaphore_aborted_task_neither_leaks_units_nor_blocks_the_queue() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let doomed = spawn_local(async move { s.acquire(1).await.map(|u| u.forget()) });
    let s = sem.clone();
    let next = spawn_local(async move { s.acquire(1).await.map(|u| u.forget()) });
    settle().await;
    assert_eq!(sem.waiters(), 2);
    doomed.abort();
    settle().await;
    assert_eq!(sem.waiters(), 1);
    sem.signal(1);
    assert_eq!(next.await.unwrap().unwrap(), 1);
}

#[seastar_core::test(manual_clock)]
async fn semaphore_broken_fails_current_and_future_waiters() {
    let sem = Semaphore::new(1);
    let held = sem.acquire(1).await.unwrap();
    let mut a = sem.acquire(1);
    let mut b = sem.acquire(5);
    assert!(poll!(&mut a).is_pending());
    assert!(poll!(&mut b).is_pending());
    sem.broken(Cause::msg("shutting down"));
    assert!(sem.is_broken());
    assert_eq!(sem.waiters(), 0);
    for r in [a.await, b.await, sem.acquire(1).await] {
        let err = r.unwrap_err();
        assert!(matches!(err, Error::Broken(_)));
        assert_eq!(err.to_string(), "broken: shutting down");
    }
    assert!(sem.try_acquire(0).is_none());
    drop(held); // held units still go back
    assert_eq!(sem.available_units(), 1);
}

#[seastar_core::test(manual_clock)]
async fn semaphore_broken_cause_keeps_its_type() {
    let sem = Semaphore::new(0);
    sem.broken(std::io::Error::other("disk gone"));
    let Err(Error::Broken(cause)) = sem.acquire(1).await else {
        panic!("not broken")
    };
    assert_eq!(
        cause.downcast_ref::<std::io::Error>().unwrap().to_string(),
        "disk gone"
    );
    // The error crosses threads like any other.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Error::Broken(cause).into();
    assert_eq!(boxed.to_string(), "broken: disk gone");
}

#[seastar_core::test(manual_clock)]
async fn semaphore_consume_overdraws_and_waiters_wait_for_repayment() {
    let sem = Semaphore::new(1);
    sem.consume(3);
    assert_eq!(sem.available_units(), -2);
    let mut w = sem.acquire(1);
    assert!(poll!(&mut w).is_pending());
    sem.signal(2);
    assert!(poll!(&mut w).is_pending());
    sem.signal(1);
    assert!(matches!(poll!(&mut w), Poll::Ready(Ok(_))));
}

#[seastar_core::test(manual_clock)]
async fn semaphore_units_split_return_and_forget() {
    let sem = Semaphore::new(10);
    let mut all = sem.acquire(10).await.unwrap();
    let part = all.split(4);
    assert_eq!((all.count(), part.count()), (6, 4));
    all.return_units(1);
    assert_eq!((all.count(), sem.available_units()), (5, 1));
    assert_eq!(part.forget(), 4);
    drop(all);
    assert_eq!(sem.available_units(), 6, "forgotten units came back");
    let mut a = sem.try_acquire(2).unwrap();
    a.adopt(sem.try_acquire(3).unwrap());
    assert_eq!((a.count(), sem.available_units()), (5, 1));
}

#[seastar_core::test(manual_clock)]
async fn semaphore_return_units_serves_a_waiter_early() {
    let sem = Semaphore::new(4);
    let mut held = sem.acquire(4).await.unwrap();
    let mut w = sem.acquire(3);
    assert!(poll!(&mut w).is_pending());
    held.return_units(3);
    assert!(matches!(poll!(&mut w), Poll::Ready(Ok(_))));
}

#[seastar_core::test(manual_clock)]
#[should_panic(expected = "split 3 of 2 units")]
async fn semaphore_units_split_more_than_held_panics() {
    let sem = Semaphore::new(2);
    let mut u = sem.try_acquire(2).unwrap();
    let _ = u.split(3);
}

#[seastar_core::test(manual_clock)]
async fn semaphore_acquire_zero_waits_behind_earlier_waiters() {
    let sem = Semaphore::new(0);
    assert!(sem.acquire(0).await.is_ok());
    let mut head = sem.acquire(1);
    assert!(poll!(&mut head).is_pending());
    let mut zero = sem.acquire(0);
    assert!(poll!(&mut zero).is_pending());
    sem.signal(1);
    assert!(poll!(&mut head).is_ready());
    assert!(poll!(&mut zero).is_ready());
}
