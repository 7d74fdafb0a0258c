//! Cross-thread wakes and cross-shard calls, against reactors that sleep
//! between them. A lost wake-up hangs these tests (nextest's timeout
//! reports it).

use std::sync::mpsc;
use std::thread;

use futures::channel::oneshot;
use seastar_core::{Runtime, shard_id, smp, spawn_local};

fn rt(shards: usize) -> Runtime {
    Runtime::builder()
        .shards(shards)
        .handle_signals(false)
        .build()
        .unwrap()
}

#[test]
fn hundred_thousand_cross_thread_wakes_lose_none() {
    const N: u64 = 100_000;
    let (tx, rx) = mpsc::channel::<(u64, oneshot::Sender<u64>)>();
    let helper = thread::spawn(move || {
        for (i, reply) in rx {
            reply.send(i * 2).unwrap();
        }
    });
    rt(1).run(async move {
        for i in 0..N {
            let (rtx, rrx) = oneshot::channel();
            tx.send((i, rtx)).unwrap();
            // The shard has nothing else to do: it sleeps until the helper
            // thread's wake arrives.
            assert_eq!(rrx.await.unwrap(), i * 2);
        }
    });
    helper.join().unwrap();
}

#[seastar_core::test(shards = 2)]
async fn submit_to_every_shard_round_trips() {
    for round in 0..2_000u64 {
        for s in 0..seastar_core::shard_count() {
            let got = smp::submit_to(s, move || async move { (shard_id(), round) })
                .await
                .unwrap();
            assert_eq!(got, (s, round));
        }
    }
}

#[seastar_core::test(shards = 2)]
async fn submit_to_runs_non_send_futures_on_the_target() {
    let v = smp::submit_to(1, || async {
        let rc = std::rc::Rc::new(21);
        let h = spawn_local({
            let rc = rc.clone();
            async move { *rc }
        });
        h.await.unwrap() * 2
    })
    .await
    .unwrap();
    assert_eq!(v, 42);
}

#[seastar_core::test(shards = 2)]
async fn panic_in_submitted_call_surfaces_as_error() {
    let r = smp::submit_to(1, || async { panic!("remote boom") }).await;
    assert!(matches!(r, Err(smp::SubmitError::Panicked(_))));
    assert_eq!(smp::submit_to(1, || async { 1 }).await.unwrap(), 1);
    assert!(matches!(
        smp::submit_to(9, || async {}).await,
        Err(smp::SubmitError::NoSuchShard(9))
    ));
}

#[seastar_core::test(shards = 2)]
async fn many_concurrent_cross_shard_calls() {
    let calls: Vec<_> = (0..10_000u64)
        .map(|i| smp::submit_to(1, move || async move { i + 1 }))
        .collect();
    let results = futures::future::join_all(calls).await;
    let sum: u64 = results.into_iter().map(Result::unwrap).sum();
    assert_eq!(sum, (1..=10_000).sum());
}
