//! The server's call metrics: `seastar_rpc_calls_total` by outcome and
//! the answered calls' durations, read from the shard's registry.
//! Run on both backends (`SEASTAR_REACTOR_BACKEND=io_uring|epoll`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use seastar_core::metrics::{Value, local_snapshot};
use seastar_core::{Runtime, spawn_local, timer};
use seastar_rpc::{CallError, RpcClient, RpcServer, ServerOptions};

const OK: u32 = 1;
const FAIL: u32 = 2;
const HANG: u32 = 3;

/// `seastar_rpc_calls_total{outcome}` on this shard (0 if never counted).
fn calls(outcome: &str) -> u64 {
    let snap = local_snapshot();
    (snap.samples.iter())
        .find(|s| {
            s.name == "seastar_rpc_calls_total"
                && s.labels.contains(&("outcome".into(), outcome.into()))
        })
        .map_or(0, |s| match s.value {
            Value::Counter(n) => n,
            ref other => panic!("not a counter: {other:?}"),
        })
}

/// The answered calls' duration histogram: count and sum.
fn durations() -> (u64, f64) {
    let snap = local_snapshot();
    let s = (snap.samples.iter())
        .find(|s| s.name == "seastar_rpc_call_duration_seconds")
        .expect("the duration histogram");
    match &s.value {
        Value::Histogram(h) => (h.count, h.sum),
        other => panic!("not a histogram: {other:?}"),
    }
}

#[test]
fn calls_are_counted_by_outcome_and_answered_ones_timed() {
    Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .build()
        .unwrap()
        .run(async {
            let server = RpcServer::new(ServerOptions::default());
            server.register(OK, |n: u32| async move { Ok::<_, String>(n + 1) });
            server.register(
                FAIL,
                |_: u32| async move { Err::<u32, _>("no".to_string()) },
            );
            let started = Rc::new(Cell::new(false));
            let s = started.clone();
            server.register(HANG, move |_: u32| {
                s.set(true);
                async move {
                    std::future::pending::<()>().await;
                    Ok::<u32, String>(0)
                }
            });
            let addr = server
                .listen("127.0.0.1:0".parse().unwrap(), Default::default())
                .await
                .unwrap();
            let before = (calls("ok"), calls("error"), calls("cancelled"));
            let c = RpcClient::connect(addr).await.unwrap();
            for n in 0..2u32 {
                assert_eq!(c.call::<_, u32, String>(OK, &n).await.unwrap(), n + 1);
            }
            assert!(matches!(
                c.call::<_, u32, String>(FAIL, &0u32).await,
                Err(CallError::Handler(e)) if e == "no"
            ));
            // A call the client gives up on: no answer, counted cancelled.
            let hung = {
                let c = c.clone();
                spawn_local(async move { c.call::<_, u32, String>(HANG, &0u32).await })
            };
            for _ in 0..5000 {
                if started.get() {
                    break;
                }
                timer::sleep(Duration::from_millis(1)).await;
            }
            assert!(started.get(), "the hanging handler never started");
            hung.abort();
            let _ = hung.await;
            for _ in 0..5000 {
                if calls("cancelled") > before.2 {
                    break;
                }
                timer::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(
                (
                    calls("ok") - before.0,
                    calls("error") - before.1,
                    calls("cancelled") - before.2
                ),
                (2, 1, 1)
            );
            // Three answered calls timed, each well under a second.
            let (count, sum) = durations();
            assert_eq!(count, 3);
            assert!(sum > 0.0 && sum < 3.0, "{sum}");
            drop(c);
            server.stop().await;
        });
}
