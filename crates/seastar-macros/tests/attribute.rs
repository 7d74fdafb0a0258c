//! `#[seastar_core::test]` end to end: shards, backend, manual clock,
//! results, timeouts, and the shuffled order of ready tasks.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use seastar_core::timer::{self, ManualClock};
use seastar_core::{BackendKind, shard_count, shard_id, spawn_local, yield_now};

#[seastar_core::test]
async fn runs_on_shard_0_of_one_shard_by_default() {
    assert_eq!((shard_id(), shard_count()), (0, 1));
}

#[seastar_core::test(shards = 3)]
async fn shards_sets_the_shard_count() {
    assert_eq!(shard_count(), 3);
    let id = seastar_core::smp::submit_to(2, || async { shard_id() }).await;
    assert_eq!(id.unwrap(), 2);
}

#[seastar_core::test(backend = "epoll")]
async fn backend_epoll_wins_over_the_environment() {
    assert_eq!(seastar_core::runtime::backend(), BackendKind::Epoll);
}

#[seastar_core::test(backend = "io_uring")]
async fn backend_io_uring_wins_over_the_environment() {
    assert_eq!(seastar_core::runtime::backend(), BackendKind::IoUring);
}

#[seastar_core::test(manual_clock)]
async fn manual_clock_moves_only_when_advanced() {
    let t0 = timer::now();
    let sleeper = spawn_local(timer::sleep(Duration::from_secs(3600)));
    yield_now().await;
    assert_eq!(timer::now(), t0, "the manual clock moved by itself");
    ManualClock::advance(Duration::from_secs(3600)).await;
    sleeper.await.unwrap();
    assert_eq!(timer::now() - t0, Duration::from_secs(3600));
}

#[seastar_core::test]
async fn ok_passes() -> Result<(), String> {
    Ok(())
}

#[seastar_core::test]
#[should_panic(expected = "test returned Err: \"no luck\"")]
async fn err_fails_with_its_debug_form() -> Result<(), String> {
    Err("no luck".into())
}

#[seastar_core::test]
#[should_panic(expected = "boom on shard 0")]
async fn a_panic_fails_the_test_with_its_message() {
    panic!("boom on shard {}", shard_id());
}

#[seastar_core::test(timeout_secs = 1)]
#[should_panic(expected = "still running after 1s")]
async fn timeout_fails_a_stuck_test() {
    std::future::pending::<()>().await;
}

/// Spawns `n` tasks that log their index when they run, yields once (which
/// lets every ready task run first), and returns the log.
async fn run_order(n: usize) -> Vec<usize> {
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..n {
        let log = log.clone();
        drop(spawn_local(async move { log.borrow_mut().push(i) }));
    }
    yield_now().await;
    log.borrow().clone()
}

#[seastar_core::test]
async fn ready_tasks_run_in_a_shuffled_order_in_debug_builds() {
    let order = run_order(32).await;
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..32).collect::<Vec<_>>(),
        "yield_now resumed before every ready task ran"
    );
    if cfg!(debug_assertions) {
        assert_ne!(order, sorted, "32 tasks ran first come, first served");
    } else {
        assert_eq!(order, sorted, "release builds keep the FIFO");
    }
}

#[seastar_core::test(shards = 2)]
async fn every_shard_shuffles() {
    let on_1 = seastar_core::smp::submit_to(1, || async { spawn_local(run_order(32)).await });
    let order = on_1.await.unwrap().unwrap();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..32).collect::<Vec<_>>());
    assert_eq!(order != sorted, cfg!(debug_assertions));
}

#[seastar_core::test]
#[ignore = "run by the_seed_is_printed_and_replays_the_order, in a child process"]
async fn print_run_order() {
    println!("order: {:?}", run_order(32).await);
}

/// Runs `print_run_order` in a child process with `SEASTAR_TEST_SEED=seed`:
/// whether it passed, its stdout and its stderr.
fn run_with_seed(seed: &str) -> (bool, String, String) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "print_run_order", "--ignored", "--nocapture"])
        .env("SEASTAR_TEST_SEED", seed)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn order_line(stdout: &str) -> String {
    let line = stdout.lines().find(|l| l.starts_with("order: "));
    line.unwrap_or_else(|| panic!("no order in {stdout:?}"))
        .to_owned()
}

#[test]
fn the_seed_is_printed_and_replays_the_order() {
    let (ok, out, err) = run_with_seed("12345");
    assert!(ok, "{out}\n{err}");
    assert!(
        err.contains("seastar test seed: 12345 (replay with SEASTAR_TEST_SEED=12345)\n"),
        "{err}"
    );
    let first = order_line(&out);
    for _ in 0..2 {
        assert_eq!(order_line(&run_with_seed("12345").1), first);
    }
    let (ok, out, _) = run_with_seed("0x3039"); // 12345 in hex
    assert!(ok);
    assert_eq!(order_line(&out), first);
    if cfg!(debug_assertions) {
        let others = ["1", "2", "3"].map(|s| order_line(&run_with_seed(s).1));
        assert!(others.iter().any(|o| *o != first), "{first} for every seed");
    }
}

#[test]
fn a_malformed_seed_fails_the_test_and_says_why() {
    let (ok, out, err) = run_with_seed("twelve");
    assert!(!ok, "{out}");
    assert!(
        err.contains("SEASTAR_TEST_SEED=\"twelve\" is not a u64"),
        "{err}"
    );
}
