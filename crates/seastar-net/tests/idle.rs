//! A listener's oldest idle connection: measured on the reactor's coarse
//! clock (here the manual clock, so the ages are exact), reset by bytes
//! moving either way, forgotten when the connection closes; with both
//! listener policies; and the counters are per runtime. Run on both backends
//! (`SEASTAR_REACTOR_BACKEND=io_uring|epoll`).

use std::time::Duration;

use seastar_core::Runtime;
use seastar_core::timer::ManualClock;
use seastar_net::{ListenOptions, Policy, TcpListener, TcpStream};

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn check(policy: Policy) {
    Runtime::builder()
        .shards(1)
        .manual_clock()
        .handle_signals(false)
        .pin(false)
        .build()
        .unwrap()
        .run(async move {
            let l = TcpListener::bind(
                "127.0.0.1:0".parse().unwrap(),
                ListenOptions::default().policy(policy),
            )
            .await
            .unwrap();
            let addr = l.local_addr().unwrap();
            assert_eq!(l.stats().oldest_idle, None, "no connection open");

            let c1 = TcpStream::connect(addr).await.unwrap();
            let (s1, _) = l.accept().await.unwrap();
            assert_eq!(l.stats().oldest_idle, secs(0));
            ManualClock::advance(Duration::from_secs(3)).await;
            let c2 = TcpStream::connect(addr).await.unwrap();
            let (s2, _) = l.accept().await.unwrap();
            ManualClock::advance(Duration::from_secs(2)).await;
            // s1 has been silent since it was accepted, 5 s ago.
            assert_eq!(l.stats().oldest_idle, secs(5));

            // s1 receives a byte: s2 (2 s) is now the oldest.
            c1.write_all(b"x".to_vec()).await.0.unwrap();
            let (n, _) = s1.read(vec![0; 8]).await;
            assert_eq!(n.unwrap(), 1);
            assert_eq!(l.stats().oldest_idle, secs(2));

            // s2 sends a byte: both are fresh; then 7 s of silence.
            s2.write_all(b"y".to_vec()).await.0.unwrap();
            assert_eq!(l.stats().oldest_idle, secs(0));
            ManualClock::advance(Duration::from_secs(7)).await;
            assert_eq!(l.stats().oldest_idle, secs(7));

            // Closed connections are forgotten.
            drop(s1);
            assert_eq!(l.stats().oldest_idle, secs(7));
            drop(s2);
            assert_eq!(l.stats().oldest_idle, None);
            drop((c1, c2));
        });
}

#[test]
fn oldest_idle_follows_the_longest_silent_connection_per_shard_listener() {
    check(Policy::PerShard);
}

#[test]
fn oldest_idle_follows_the_longest_silent_connection_distributed() {
    check(Policy::default());
}

/// Connects, moves `n` bytes each way and closes; returns this shard's
/// counters seen at the start and at the end.
async fn one_connection(n: usize) -> (seastar_net::stats::NetStats, seastar_net::stats::NetStats) {
    let before = seastar_net::stats::local();
    let l = TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
        .await
        .unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    c.write_all(vec![1; n]).await.0.unwrap();
    let (r, _) = s.read(vec![0; n]).await;
    assert_eq!(r.unwrap(), n);
    s.write_all(vec![2; n]).await.0.unwrap();
    let (r, _) = c.read(vec![0; n]).await;
    assert_eq!(r.unwrap(), n);
    drop((s, c));
    (before, seastar_net::stats::local())
}

/// The counters belong to the runtime's shard, not to the thread: a
/// runtime run after another on the same thread starts from zero.
#[test]
fn a_runtime_after_another_on_the_same_thread_starts_with_fresh_counters() {
    let run = |n| {
        Runtime::builder()
            .shards(1)
            .handle_signals(false)
            .pin(false)
            .build()
            .unwrap()
            .run(one_connection(n))
    };
    let (before, after) = run(3);
    assert_eq!(before, Default::default(), "a fresh runtime counts nothing");
    assert_eq!((after.accepted, after.open), (1, 0));
    assert_eq!((after.bytes_received, after.bytes_sent), (6, 6));
    let (before, after) = run(5);
    assert_eq!(
        before,
        Default::default(),
        "nothing left from the first runtime"
    );
    assert_eq!((after.accepted, after.open), (1, 0));
    assert_eq!((after.bytes_received, after.bytes_sent), (10, 10));
    // Outside a runtime there is no shard to count on.
    assert_eq!(seastar_net::stats::local(), Default::default());
}
