//! The admin server and idle connections, on a one-shard runtime with the
//! manual clock (so ages and timeouts are exact, and the test waits for no
//! real time): a named listener's oldest idle connection as the API reports
//! it, and a silent client that is closed at the admin's header timeout
//! without keeping anyone else from being served.
//! Run on both backends (`SEASTAR_REACTOR_BACKEND=io_uring|epoll`).
#![cfg(feature = "admin")]

mod support;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use seastar_core::timer::ManualClock;
use seastar_core::{JoinHandle, Runtime, spawn_local};
use seastar_http::admin::{Admin, AdminServer, HEADER_READ_TIMEOUT, register_listener};
use seastar_net::{ListenOptions, TcpListener, TcpStream};
use serde_json::Value;
use support::{Raw, exchange};

fn run(f: impl std::future::Future<Output = ()> + 'static) {
    Runtime::builder()
        .shards(1)
        .manual_clock()
        .handle_signals(false)
        .pin(false)
        .build()
        .unwrap()
        .run(f);
}

async fn api(addr: SocketAddr, path: &str) -> Value {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = exchange(addr, req.as_bytes()).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

/// Waits (in real time, at most 5 s) for `task` to finish.
async fn finished_soon<T>(task: &JoinHandle<T>) -> bool {
    let t0 = Instant::now();
    while !task.is_finished() {
        if t0.elapsed() > Duration::from_secs(5) {
            return false;
        }
        seastar_core::yield_now().await;
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

#[test]
fn connections_report_a_listeners_oldest_idle_connection() {
    run(async {
        let server = AdminServer::start("127.0.0.1:0".parse().unwrap(), Admin::new("idle", "1"))
            .await
            .unwrap();
        let l = Rc::new(
            TcpListener::bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default())
                .await
                .unwrap(),
        );
        let weak = Rc::downgrade(&l);
        register_listener("idle-listener", move || weak.upgrade().map(|l| l.stats()));
        let listener = |v: &Value| v["listeners"][0].clone();

        let none = api(server.addr(), "/api/v1/connections").await;
        assert_eq!(
            listener(&none)["oldest_idle_seconds"],
            Value::Null,
            "{none}"
        );

        let c1 = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s1, _) = l.accept().await.unwrap();
        ManualClock::advance(Duration::from_secs(42)).await;
        let c2 = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s2, _) = l.accept().await.unwrap();
        ManualClock::advance(Duration::from_secs(3)).await;
        let v = api(server.addr(), "/api/v1/connections").await;
        let e = listener(&v);
        assert_eq!(e["name"], "idle-listener");
        assert_eq!(e["open"], 2);
        assert_eq!(e["oldest_idle_seconds"].as_f64(), Some(45.0), "{v}");

        // The silent one speaks: the other (3 s) is now the oldest.
        s1.write_all(b"hi".to_vec()).await.0.unwrap();
        let v = api(server.addr(), "/api/v1/connections").await;
        assert_eq!(
            listener(&v)["oldest_idle_seconds"].as_f64(),
            Some(3.0),
            "{v}"
        );

        drop((s1, s2, c1, c2));
        let v = api(server.addr(), "/api/v1/connections").await;
        assert_eq!(listener(&v)["oldest_idle_seconds"], Value::Null, "{v}");
        seastar_core::request_stop();
        server.stopped().await.unwrap();
    });
}

#[test]
fn a_silent_client_is_closed_at_the_header_timeout_and_blocks_nobody() {
    run(async {
        let server = AdminServer::start("127.0.0.1:0".parse().unwrap(), Admin::new("silent", "1"))
            .await
            .unwrap();
        let addr = server.addr();
        // Connects, sends nothing, waits for the server to hang up.
        let mut silent = Raw::connect(addr).await;
        let hung_up = spawn_local(async move { silent.closed().await });

        // Others are served meanwhile, on the same shard.
        assert_eq!(api(addr, "/api/v1/runtime").await["app"], "silent");
        ManualClock::advance(HEADER_READ_TIMEOUT - Duration::from_secs(1)).await;
        assert_eq!(api(addr, "/api/v1/runtime").await["app"], "silent");
        assert!(!hung_up.is_finished(), "closed before the header timeout");

        // Past the timeout: closed, having been sent nothing.
        ManualClock::advance(Duration::from_secs(2)).await;
        assert!(
            finished_soon(&hung_up).await,
            "the silent client is still connected past the header timeout"
        );
        assert!(
            hung_up.await.unwrap(),
            "the server sent the silent client bytes"
        );
        assert_eq!(api(addr, "/api/v1/runtime").await["app"], "silent");

        seastar_core::request_stop();
        server.stopped().await.unwrap();
    });
}

/// The admin's registrations belong to the runtime, not to the thread: a
/// runtime run after another on the same thread lists only its own
/// listeners (the readers here never report theirs gone, so only the end
/// of the runtime forgets them).
#[test]
fn a_runtime_after_another_on_the_same_thread_lists_only_its_own_listeners() {
    for name in ["first", "second"] {
        run(async move {
            let server =
                AdminServer::start("127.0.0.1:0".parse().unwrap(), Admin::new("fresh", "1"))
                    .await
                    .unwrap();
            register_listener(name, || Some(seastar_net::ListenerStats::default()));
            let v = api(server.addr(), "/api/v1/connections").await;
            let names: Vec<&str> = v["listeners"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, [name], "{v}");
            seastar_core::request_stop();
            server.stopped().await.unwrap();
        });
    }
}
