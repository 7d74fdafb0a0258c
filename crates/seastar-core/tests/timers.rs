//! Timers under the manual clock: order, cancellation, timeouts, periodic.
//! Runs on the backend chosen by `SEASTAR_REACTOR_BACKEND`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use seastar_core::spawn_local;
use seastar_core::timer::{self, Elapsed, ManualClock, Timer};

#[seastar_core::test(manual_clock)]
async fn timer_fires_in_deadline_order() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let mut handles = Vec::new();
    for ms in [30u64, 10, 20, 50, 40] {
        let o = order.clone();
        handles.push(spawn_local(async move {
            timer::sleep(Duration::from_millis(ms)).await;
            o.borrow_mut().push(ms);
        }));
    }
    seastar_core::yield_now().await; // let every task arm its sleep
    ManualClock::advance(Duration::from_millis(25)).await;
    assert_eq!(*order.borrow(), vec![10, 20]);
    ManualClock::advance(Duration::from_millis(25)).await;
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(*order.borrow(), vec![10, 20, 30, 40, 50]);
}

#[seastar_core::test(manual_clock)]
async fn cancelled_sleep_never_fires_and_others_do() {
    let fired = Rc::new(RefCell::new(Vec::new()));
    let f = fired.clone();
    let doomed = spawn_local(async move {
        timer::sleep(Duration::from_secs(1)).await;
        f.borrow_mut().push("doomed");
    });
    let f = fired.clone();
    let kept = spawn_local(async move {
        timer::sleep(Duration::from_secs(2)).await;
        f.borrow_mut().push("kept");
    });
    seastar_core::yield_now().await;
    doomed.abort();
    ManualClock::advance(Duration::from_secs(3)).await;
    kept.await.unwrap();
    assert!(doomed.await.unwrap_err().is_cancelled());
    assert_eq!(*fired.borrow(), vec!["kept"]);
}

#[seastar_core::test(manual_clock)]
async fn timeout_of_never_ready_future_elapses() {
    let t = spawn_local(timer::timeout(
        Duration::from_secs(5),
        std::future::pending::<()>(),
    ));
    ManualClock::advance(Duration::from_secs(4)).await;
    assert!(!t.is_finished());
    ManualClock::advance(Duration::from_secs(1)).await;
    assert_eq!(t.await.unwrap(), Err(Elapsed));
}

#[seastar_core::test(manual_clock)]
async fn timeout_passes_through_a_ready_value() {
    assert_eq!(
        timer::timeout(Duration::from_secs(1), async { 9 }).await,
        Ok(9)
    );
}

#[seastar_core::test(manual_clock)]
async fn callback_timer_rearm_cancel_and_periodic() {
    let hits = Rc::new(RefCell::new(Vec::new()));
    let h = hits.clone();
    let t = Timer::new(move || h.borrow_mut().push(timer::now()));
    let start = timer::now();
    t.arm(Duration::from_secs(10));
    t.rearm(Duration::from_secs(2));
    assert!(t.armed());
    ManualClock::advance(Duration::from_secs(2)).await;
    assert_eq!(*hits.borrow(), vec![start + Duration::from_secs(2)]);
    assert!(!t.armed());
    t.arm(Duration::from_secs(1));
    assert!(t.cancel());
    assert!(!t.cancel());
    ManualClock::advance(Duration::from_secs(5)).await;
    assert_eq!(hits.borrow().len(), 1);
    t.arm_periodic(Duration::from_secs(1));
    ManualClock::advance(Duration::from_millis(3500)).await;
    assert_eq!(hits.borrow().len(), 4);
    drop(t);
    ManualClock::advance(Duration::from_secs(10)).await;
    assert_eq!(hits.borrow().len(), 4, "a dropped timer must not fire");
}

#[seastar_core::test(manual_clock)]
async fn many_armed_timers_fire_in_order() {
    const N: u64 = 100_000;
    let fired = Rc::new(RefCell::new(Vec::with_capacity(N as usize)));
    let mut timers = Vec::new();
    for i in 0..N {
        // A scattered but deterministic order of deadlines.
        let d = (i * 7919) % N;
        let f = fired.clone();
        let t = Timer::new(move || f.borrow_mut().push(d));
        t.arm(Duration::from_micros(d + 1));
        timers.push(t);
    }
    ManualClock::advance(Duration::from_micros(N + 1)).await;
    let fired = fired.borrow();
    assert_eq!(fired.len(), N as usize);
    assert!(fired.windows(2).all(|w| w[0] < w[1]));
}

#[seastar_core::test(shards = 2, manual_clock)]
async fn manual_clock_reaches_other_shards() {
    let remote = seastar_core::smp::submit_to(1, || async {
        timer::sleep(Duration::from_secs(60)).await;
        seastar_core::shard_id()
    });
    let remote = spawn_local(remote);
    // Let shard 1 arm its timer before time moves.
    let armed = seastar_core::smp::submit_to(1, || async {}).await;
    armed.unwrap();
    ManualClock::advance(Duration::from_secs(60)).await;
    assert_eq!(remote.await.unwrap().unwrap(), 1);
}

#[seastar_core::test]
async fn real_clock_sleep_and_lowres_clock_advance() {
    let before = timer::lowres_now();
    let t0 = timer::now();
    timer::sleep(Duration::from_millis(2)).await;
    assert!(timer::now() - t0 >= Duration::from_millis(2));
    seastar_core::yield_now().await;
    timer::sleep(Duration::ZERO).await;
    assert!(timer::lowres_now() >= before);
}
