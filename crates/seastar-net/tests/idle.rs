//! A listener's oldest idle connection: measured on the reactor's coarse
//! clock (here the manual clock, so the ages are exact), reset by bytes
//! moving either way, forgotten when the connection closes; with both
//! listener policies. Run on both backends
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
