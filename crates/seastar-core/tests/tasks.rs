//! Tasks, join handles, panics, promises and preemption.

use std::cell::Cell;
use std::rc::Rc;

use seastar_core::promise::{BrokenPromise, promise};
use seastar_core::{Runtime, spawn_local, yield_now};

fn rt(shards: usize) -> Runtime {
    Runtime::builder()
        .shards(shards)
        .handle_signals(false)
        .build()
        .unwrap()
}

#[test]
fn run_returns_main_output_and_reports_shards() {
    let (id, n) = rt(2).run(async { (seastar_core::shard_id(), seastar_core::shard_count()) });
    assert_eq!((id, n), (0, 2));
}

#[seastar_core::test]
async fn join_handle_yields_output() {
    let h = spawn_local(async { "done" });
    assert_eq!(h.await.unwrap(), "done");
}

#[seastar_core::test]
async fn panic_in_task_is_isolated_and_reported() {
    let bad = spawn_local(async { panic!("task exploded") });
    let good = spawn_local(async { 5 });
    let err = bad.await.unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("task exploded"));
    assert_eq!(good.await.unwrap(), 5);
    // The shard still runs new tasks after the panic.
    assert_eq!(spawn_local(async { 6 }).await.unwrap(), 6);
}

#[seastar_core::test]
async fn abort_cancels_and_drops_the_future_on_its_shard() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }

    let dropped = Rc::new(Cell::new(false));
    let flag = Flag(dropped.clone());
    let h = spawn_local(async move {
        let _f = flag;
        std::future::pending::<()>().await
    });
    yield_now().await;
    h.abort();
    yield_now().await;
    assert!(dropped.get(), "aborted future must be dropped");
    assert!(h.await.unwrap_err().is_cancelled());
}

#[seastar_core::test]
async fn abort_after_finish_keeps_the_output() {
    let h = spawn_local(async { 3 });
    yield_now().await;
    assert!(h.is_finished());
    h.abort();
    assert_eq!(h.await.unwrap(), 3);
}

#[seastar_core::test]
async fn detached_task_runs_to_completion() {
    let (p, f) = promise::<u8>();
    spawn_local(async move {
        yield_now().await;
        p.set_value(1);
    })
    .detach();
    assert_eq!(f.await, Ok(1));
    // Dropping a handle also detaches.
    let (p, f) = promise::<u8>();
    drop(spawn_local(async move { p.set_value(2) }));
    assert_eq!(f.await, Ok(2));
}

#[seastar_core::test]
async fn broken_promise_resolves_instead_of_hanging() {
    let (p, f) = promise::<String>();
    spawn_local(async move {
        yield_now().await;
        drop(p);
    })
    .detach();
    assert_eq!(f.await, Err(BrokenPromise));
}

#[seastar_core::test]
async fn shared_future_gives_every_waiter_the_value() {
    let (p, f) = promise::<u32>();
    let shared = f.shared();
    let waiters: Vec<_> = (0..10).map(|_| spawn_local(shared.clone())).collect();
    yield_now().await;
    p.set_value(77);
    for w in waiters {
        assert_eq!(w.await.unwrap(), Ok(77));
    }
    assert_eq!(shared.await, Ok(77));
}

#[seastar_core::test]
async fn shared_future_of_broken_promise_fails_every_waiter() {
    let (p, f) = promise::<u32>();
    let shared = f.shared();
    let w = spawn_local(shared.clone());
    yield_now().await;
    drop(p);
    assert_eq!(w.await.unwrap(), Err(BrokenPromise));
}

#[seastar_core::test]
async fn yield_lets_other_tasks_run_in_fifo_order() {
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut hs = Vec::new();
    for id in 0..3 {
        let log = log.clone();
        hs.push(spawn_local(async move {
            for step in 0..2 {
                log.borrow_mut().push((id, step));
                yield_now().await;
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    // The tasks start in an unspecified order, but each yield waits for
    // every task ready when it yielded: the second round repeats the first.
    let log = log.borrow();
    let first: Vec<_> = log[..3].iter().map(|&(id, step)| (id, step + 1)).collect();
    assert!(log[..3].iter().all(|&(_, step)| step == 0), "{log:?}");
    assert_eq!(log[3..], first[..], "{log:?}");
    let mut ids: Vec<_> = log[..3].iter().map(|&(id, _)| id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2]);
}

#[seastar_core::test]
async fn need_preempt_turns_true_in_a_busy_loop() {
    let mut spins = 0u64;
    while !seastar_core::need_preempt() {
        spins += 1;
        std::hint::black_box(spins);
    }
    yield_now().await;
    // A fresh batch starts with the quota unspent or spent again later;
    // maybe_yield must return either way.
    seastar_core::maybe_yield().await;
}

#[test]
fn panic_in_main_is_resumed_after_shards_stop() {
    let r = std::panic::catch_unwind(|| rt(2).run(async { panic!("main failed") }));
    assert!(r.is_err());
    // A new runtime starts fine afterwards.
    assert_eq!(rt(2).run(async { 1 }), 1);
}

#[test]
fn block_on_runs_a_future() {
    assert_eq!(
        seastar_core::block_on(async { spawn_local(async { 4 }).await.unwrap() }),
        4
    );
}

#[test]
fn need_preempt_is_false_outside_a_shard() {
    assert!(!seastar_core::need_preempt());
}

#[test]
fn poll_mode_and_idle_poll_runtimes_run_timers_and_cross_shard_calls() {
    for builder in [
        Runtime::builder().poll_mode(true),
        Runtime::builder().idle_poll(std::time::Duration::from_micros(100)),
    ] {
        let v = builder
            .shards(2)
            .handle_signals(false)
            .build()
            .unwrap()
            .run(async {
                seastar_core::timer::sleep(std::time::Duration::from_millis(1)).await;
                seastar_core::smp::submit_to(1, || async { seastar_core::shard_id() })
                    .await
                    .unwrap()
            });
        assert_eq!(v, 1);
    }
}

#[test]
fn backend_env_override_is_honoured() {
    // The suite runs once per backend with SEASTAR_REACTOR_BACKEND set;
    // the runtime must really use the one asked for.
    let want = std::env::var("SEASTAR_REACTOR_BACKEND").ok();
    let got = rt(1).run(async { seastar_core::runtime::backend() });
    match want.as_deref() {
        Some("epoll") => assert_eq!(got, seastar_core::BackendKind::Epoll),
        Some("io_uring") => assert_eq!(got, seastar_core::BackendKind::IoUring),
        _ => {}
    }
}
