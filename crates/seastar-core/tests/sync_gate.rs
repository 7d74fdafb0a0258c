//! `sync::Gate`: close waits for holders and refuses new entries. Manual
//! clock; runs on the backend chosen by `SEASTAR_REACTOR_BACKEND`.

use std::time::Duration;

use futures::poll;
use seastar_core::sync::{Error, Gate, GateClosed, with_gate};
use seastar_core::timer::{self, ManualClock};
use seastar_core::{spawn_local, yield_now};

#[seastar_core::test(manual_clock)]
async fn gate_close_waits_for_every_holder() {
    let gate = Gate::new();
    let a = gate.enter().unwrap();
    let b = gate.enter().unwrap();
    let mut closing = gate.close();
    assert!(poll!(&mut closing).is_pending());
    drop(a);
    assert!(
        poll!(&mut closing).is_pending(),
        "closed with a holder left"
    );
    drop(b);
    assert!(poll!(&mut closing).is_ready());
}

#[seastar_core::test(manual_clock)]
async fn gate_refuses_entry_as_soon_as_close_is_called() {
    let gate = Gate::new();
    let held = gate.enter().unwrap();
    let closing = gate.close(); // not polled yet: closing takes effect now
    assert!(gate.is_closed());
    assert_eq!(gate.enter().unwrap_err(), GateClosed);
    assert_eq!(gate.holders(), 1);
    drop(held);
    closing.await;
    assert!(gate.enter().is_err(), "a drained gate reopened");
}

#[seastar_core::test(manual_clock)]
async fn gate_close_without_holders_resolves_at_once() {
    let gate = Gate::new();
    assert!(poll!(gate.close()).is_ready());
}

#[seastar_core::test(manual_clock)]
async fn gate_holders_counts_live_guards() {
    let gate = Gate::new();
    let guards: Vec<_> = (0..3).map(|_| gate.enter().unwrap()).collect();
    assert_eq!(gate.holders(), 3);
    drop(guards);
    assert_eq!(gate.holders(), 0);
}

#[seastar_core::test(manual_clock)]
async fn gate_close_waits_for_background_work_in_with_gate() {
    let gate = Gate::new();
    let work = spawn_local(with_gate(&gate, async {
        timer::sleep(Duration::from_secs(5)).await;
        42
    }));
    yield_now().await;
    let g = gate.clone();
    let closer = spawn_local(async move { g.close().await });
    ManualClock::advance(Duration::from_secs(4)).await;
    yield_now().await;
    assert!(!closer.is_finished(), "close finished before the work did");
    assert_eq!(gate.holders(), 1);
    ManualClock::advance(Duration::from_secs(1)).await;
    closer.await.unwrap();
    assert_eq!(work.await.unwrap(), Ok(42));
    assert_eq!(with_gate(&gate, async { 1 }).await, Err(GateClosed));
}

#[seastar_core::test(manual_clock)]
async fn gate_with_gate_enters_when_called_not_when_polled() {
    let gate = Gate::new();
    let pending = with_gate(&gate, async { 7 });
    let mut closing = gate.close();
    assert!(
        poll!(&mut closing).is_pending(),
        "call-time entry not counted"
    );
    assert_eq!(pending.await, Ok(7));
    assert!(poll!(&mut closing).is_ready());
}

#[seastar_core::test(manual_clock)]
async fn gate_dropped_close_future_keeps_the_gate_closed() {
    let gate = Gate::new();
    let held = gate.enter().unwrap();
    let mut first = gate.close();
    assert!(poll!(&mut first).is_pending());
    drop(first);
    assert!(gate.is_closed());
    let mut second = gate.close(); // closing again is allowed
    assert!(poll!(&mut second).is_pending());
    drop(held);
    assert!(poll!(&mut second).is_ready());
}

#[seastar_core::test(manual_clock)]
async fn gate_every_close_future_resolves() {
    let gate = Gate::new();
    let held = gate.enter().unwrap();
    let (g1, g2) = (gate.clone(), gate.clone());
    let c1 = spawn_local(async move { g1.close().await });
    let c2 = spawn_local(async move { g2.close().await });
    yield_now().await;
    drop(held);
    c1.await.unwrap();
    c2.await.unwrap();
}

#[seastar_core::test(manual_clock)]
async fn gate_check_lets_holders_notice_the_shutdown() {
    let gate = Gate::new();
    let guard = gate.enter().unwrap();
    assert!(guard.gate().check().is_ok());
    let closing = gate.close();
    assert_eq!(guard.gate().check(), Err(GateClosed));
    drop(guard);
    closing.await;
}

#[seastar_core::test(manual_clock)]
async fn gate_closed_converts_into_the_sync_error() {
    fn enter(gate: &Gate) -> Result<(), Error> {
        let _guard = gate.enter()?;
        Ok(())
    }

    let gate = Gate::new();
    assert!(enter(&gate).is_ok());
    gate.close().await;
    let err = enter(&gate).unwrap_err();
    assert!(matches!(err, Error::GateClosed(GateClosed)));
    assert_eq!(err.to_string(), "gate closed");
}
