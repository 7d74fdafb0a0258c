//! `Policy::Distribute`: shard 0 accepts and hands connections to shards,
//! on the backend named by `SEASTAR_REACTOR_BACKEND`.

mod common;

use std::cell::RefCell;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::rc::Rc;

use common::{localhost0, rt};
use seastar_core::{shard_id, smp, spawn_local};
use seastar_net::{Balance, ListenOptions, ListenerStats, Policy, TcpListener, TcpStream};

thread_local! {
    static LISTENER: RefCell<Option<Rc<TcpListener>>> = const { RefCell::new(None) };
}

/// Binds a listener with `opts` on every shard; each accepted connection
/// is told its shard id (one byte) and then echoed.
async fn start(opts: ListenOptions) -> SocketAddr {
    let addrs = smp::invoke_on_all(move || {
        let opts = opts.clone();
        async move {
            let l = Rc::new(TcpListener::bind(localhost0(), opts).await.unwrap());
            let addr = l.local_addr().unwrap();
            LISTENER.with(|s| *s.borrow_mut() = Some(l.clone()));
            spawn_local(async move {
                while let Ok((conn, _)) = l.accept().await {
                    spawn_local(async move {
                        conn.write_all(vec![shard_id() as u8]).await.0.unwrap();
                        common::echo(conn).await;
                    })
                    .detach();
                }
            })
            .detach();
            addr
        }
    })
    .await
    .unwrap();
    assert!(addrs.iter().all(|a| *a == addrs[0]), "{addrs:?}");
    addrs[0]
}

async fn stop() {
    smp::invoke_on_all(|| async { LISTENER.with(|s| s.borrow_mut().take()).map(drop) })
        .await
        .unwrap();
}

async fn stats() -> Vec<ListenerStats> {
    smp::invoke_on_all(|| async {
        LISTENER.with(|s| s.borrow().as_ref().map(|l| l.stats()).unwrap_or_default())
    })
    .await
    .unwrap()
}

/// Connects and returns the stream and the shard serving it.
async fn connect(addr: SocketAddr) -> (TcpStream, usize) {
    let c = TcpStream::connect(addr).await.unwrap();
    let (n, buf) = c.read(vec![0u8; 1]).await;
    assert_eq!(n.unwrap(), 1);
    (c, buf[0] as usize)
}

#[test]
fn round_robin_alternates_shards() {
    rt(2).run(async {
        let addr =
            start(ListenOptions::default().policy(Policy::Distribute(Balance::RoundRobin))).await;
        let mut shards = Vec::new();
        for _ in 0..10 {
            let (c, shard) = connect(addr).await;
            shards.push(shard);
            drop(c);
        }
        assert_eq!(shards, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        let s = stats().await;
        assert_eq!((s[0].accepted, s[1].accepted), (5, 5));
        stop().await;
    });
}

#[test]
fn least_connections_fills_the_emptier_shard() {
    rt(2).run(async {
        // The default policy: distribute to the shard with the fewest open.
        let addr = start(ListenOptions::default()).await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(connect(addr).await);
        }
        let on =
            |s: usize, held: &Vec<(TcpStream, usize)>| held.iter().filter(|c| c.1 == s).count();
        assert_eq!((on(0, &held), on(1, &held)), (2, 2), "ties alternate");
        // Close shard 0's connections and wait until it has none open.
        held.retain(|c| c.1 != 0);
        while stats().await[0].open != 0 {
            seastar_core::yield_now().await;
        }
        // Shard 0 now has 0 open against shard 1's 2: it gets the next two.
        let a = connect(addr).await;
        let b = connect(addr).await;
        assert_eq!((a.1, b.1), (0, 0));
        held.push(a);
        held.push(b);
        let s = stats().await;
        assert_eq!((s[0].open, s[1].open), (2, 2));
        // Connections work end to end on both shards.
        for (c, _) in &held {
            c.write_all(b"ping".to_vec()).await.0.unwrap();
            let (n, buf) = c.read(vec![0u8; 4]).await;
            assert_eq!(&buf[..n.unwrap()], b"ping");
        }
        drop(held);
        stop().await;
    });
}

#[test]
fn closing_shard_0_ends_accept_on_the_other_shards() {
    rt(2).run(async {
        let addrs = smp::invoke_on_all(|| async {
            let opts = ListenOptions::default().policy(Policy::Distribute(Balance::RoundRobin));
            let l = TcpListener::bind(localhost0(), opts).await.unwrap();
            let addr = l.local_addr().unwrap();
            LISTENER.with(|s| *s.borrow_mut() = Some(Rc::new(l)));
            addr
        })
        .await
        .unwrap();
        let waiting = smp::submit_to(1, || async {
            let l = LISTENER.with(|s| s.borrow().clone()).unwrap();
            l.accept().await.map(drop).unwrap_err().kind()
        });
        LISTENER.with(|s| s.borrow_mut().take());
        assert_eq!(waiting.await.unwrap(), ErrorKind::NotConnected);
        let refused = TcpStream::connect(addrs[0]).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
        stop().await;
    });
}
