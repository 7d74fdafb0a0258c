//! The gRPC services on a shard, called through tonic's generated clients
//! over our `GrpcChannel` (no tokio runtime on either side), on the backend
//! named by `SEASTAR_REACTOR_BACKEND`.

use std::net::SocketAddr;
use std::time::Duration;

use rpc::proto::echo::Payload;
use rpc::proto::echo::echo_client::EchoClient;
use rpc::proto::helloworld::HelloRequest;
use rpc::proto::helloworld::greeter_client::GreeterClient;
use seastar_core::timer::ManualClock;
use seastar_core::{Runtime, spawn_local};
use seastar_rpc::grpc::{GrpcChannel, GrpcOptions, GrpcServer};

fn run<F: std::future::Future + 'static>(manual: bool, f: F) -> F::Output {
    let b = Runtime::builder().shards(1).handle_signals(false);
    let b = if manual { b.manual_clock() } else { b };
    b.build().unwrap().run(f)
}

async fn serve() -> (GrpcServer, SocketAddr) {
    let server = GrpcServer::new(rpc::greeter::routes());
    let addr = server
        .listen("127.0.0.1:0".parse().unwrap(), Default::default())
        .await
        .unwrap();
    (server, addr)
}

async fn greeter(addr: SocketAddr) -> GreeterClient<GrpcChannel> {
    let ch = GrpcChannel::connect(addr).await.unwrap();
    let origin = ch.origin();
    GreeterClient::with_origin(ch, origin)
}

fn hello(name: &str, num_greetings: i32, delay_ms: i32) -> HelloRequest {
    HelloRequest {
        name: name.into(),
        num_greetings,
        delay_ms,
    }
}

async fn collect(
    c: &mut GreeterClient<GrpcChannel>,
    req: HelloRequest,
) -> Result<Vec<String>, tonic::Status> {
    let mut s = c.say_hello_stream_reply(req).await?.into_inner();
    let mut out = Vec::new();
    while let Some(r) = s.message().await? {
        out.push(r.message);
    }
    Ok(out)
}

async fn settle() {
    for _ in 0..200 {
        seastar_core::yield_now().await;
        std::thread::sleep(Duration::from_micros(20));
    }
}

#[test]
fn say_hello_and_the_stream_follow_the_proto_contract() {
    run(false, async {
        let (server, addr) = serve().await;
        let mut c = greeter(addr).await;
        let r = c.say_hello(hello("seastar", 0, 0)).await.unwrap();
        assert_eq!(r.into_inner().message, "Hello seastar!");
        assert_eq!(
            collect(&mut c, hello("x", 3, 0)).await.unwrap(),
            ["Hello x!", "Hello x!", "Hello x!"]
        );
        // max(num_greetings, 1)
        assert_eq!(
            collect(&mut c, hello("y", 0, 0)).await.unwrap(),
            ["Hello y!"]
        );
        assert_eq!(
            collect(&mut c, hello("z", -5, 0)).await.unwrap(),
            ["Hello z!"]
        );
        // Many concurrent calls on one HTTP/2 connection.
        let calls = (0..100).map(|i| {
            let mut c = c.clone();
            async move {
                c.say_hello(hello(&format!("n{i}"), 0, 0))
                    .await
                    .unwrap()
                    .into_inner()
                    .message
            }
        });
        let out = futures::future::join_all(calls).await;
        for (i, m) in out.iter().enumerate() {
            assert_eq!(m, &format!("Hello n{i}!"));
        }
        let ch = GrpcChannel::connect(addr).await.unwrap();
        let origin = ch.origin();
        let mut e = EchoClient::with_origin(ch, origin);
        let data: Vec<u8> = (0..=255).collect();
        let r = e.echo(Payload { data: data.clone() }).await.unwrap();
        assert_eq!(r.into_inner().data, data);
        server.stop().await;
    });
}

#[test]
fn delays_follow_the_manual_clock() {
    run(true, async {
        let (server, addr) = serve().await;
        let mut c = greeter(addr).await;
        let call = {
            let mut c = c.clone();
            spawn_local(async move { c.say_hello(hello("slow", 0, 50)).await })
        };
        settle().await;
        ManualClock::advance(Duration::from_millis(49)).await;
        settle().await;
        assert!(!call.is_finished(), "replied before delay_ms");
        ManualClock::advance(Duration::from_millis(1)).await;
        let r = call.await.unwrap().unwrap();
        assert_eq!(r.into_inner().message, "Hello slow!");

        // The stream waits delay_ms before each reply.
        let mut s = c
            .say_hello_stream_reply(hello("s", 2, 10))
            .await
            .unwrap()
            .into_inner();
        let first = spawn_local(async move {
            let m = s.message().await;
            (m, s)
        });
        settle().await;
        assert!(!first.is_finished());
        ManualClock::advance(Duration::from_millis(10)).await;
        let (m, mut s) = first.await.unwrap();
        assert_eq!(m.unwrap().unwrap().message, "Hello s!");
        let second = spawn_local(async move { s.message().await });
        ManualClock::advance(Duration::from_millis(10)).await;
        assert_eq!(second.await.unwrap().unwrap().unwrap().message, "Hello s!");
        server.stop().await;
    });
}

#[test]
fn grpc_timeout_answers_deadline_exceeded() {
    run(true, async {
        let (server, addr) = serve().await;
        let c = greeter(addr).await;
        let call = {
            let mut c = c.clone();
            spawn_local(async move {
                let mut req = tonic::Request::new(hello("late", 0, 1000));
                req.set_timeout(Duration::from_millis(20));
                c.say_hello(req).await
            })
        };
        settle().await;
        ManualClock::advance(Duration::from_millis(20)).await;
        let status = call.await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        server.stop().await;
    });
}

#[test]
fn the_channel_reconnects_after_the_server_restarts() {
    run(false, async {
        let (server, addr) = serve().await;
        let mut c = greeter(addr).await;
        assert!(c.say_hello(hello("a", 0, 0)).await.is_ok());
        server.stop().await;
        let server = GrpcServer::new(rpc::greeter::routes());
        server.listen(addr, Default::default()).await.unwrap();
        // The old connection got GOAWAY; a call may fail once, then reconnects.
        let mut ok = false;
        for _ in 0..50 {
            if c.say_hello(hello("b", 0, 0)).await.is_ok() {
                ok = true;
                break;
            }
            settle().await;
        }
        assert!(ok, "never reconnected");
        server.stop().await;
    });
}

/// Whether the server closed `s` (read on a helper thread while the shard runs).
async fn closed_by_server(s: &std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut s = s.try_clone().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let h = std::thread::spawn(move || {
        let mut b = [0u8; 1024];
        loop {
            match s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue, // the server's SETTINGS, GOAWAY
                Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        }
    });
    while !h.is_finished() {
        seastar_core::yield_now().await;
        std::thread::sleep(Duration::from_micros(200));
    }
    h.join().unwrap()
}

#[test]
fn silent_and_idle_connections_are_closed_but_not_during_a_call() {
    run(true, async {
        let opts = GrpcOptions::default()
            .first_bytes_timeout(Duration::from_secs(2))
            .idle_timeout(Some(Duration::from_secs(5)));
        let server = GrpcServer::with_options(rpc::greeter::routes(), opts);
        let addr = server
            .listen("127.0.0.1:0".parse().unwrap(), Default::default())
            .await
            .unwrap();
        let silent = std::net::TcpStream::connect(addr).unwrap();
        let mut c = greeter(addr).await;
        let r = c.say_hello(hello("idle", 0, 0)).await.unwrap();
        assert_eq!(r.into_inner().message, "Hello idle!");
        let mut busy = greeter(addr).await;
        let call = spawn_local(async move { busy.say_hello(hello("slow", 0, 60_000)).await });
        settle().await;
        assert_eq!(server.connections(), 3);
        ManualClock::advance(Duration::from_millis(1999)).await;
        settle().await;
        assert_eq!(
            server.connections(),
            3,
            "closed before the first-bytes timeout"
        );
        ManualClock::advance(Duration::from_millis(1)).await;
        assert!(closed_by_server(&silent).await);
        assert_eq!(server.stats().first_bytes_timeouts, 1);
        // The idle client goes 5 s after its call; the one with a call in
        // flight stays, however long the call.
        ManualClock::advance(Duration::from_secs(3)).await;
        settle().await;
        ManualClock::advance(Duration::from_secs(1)).await;
        for _ in 0..50 {
            settle().await;
        }
        assert_eq!(server.stats().idle_closed, 1);
        assert_eq!(server.connections(), 1);
        ManualClock::advance(Duration::from_secs(60)).await;
        let r = call.await.unwrap().unwrap();
        assert_eq!(r.into_inner().message, "Hello slow!");
        // A fresh client is served.
        let mut fresh = greeter(addr).await;
        let r = fresh.say_hello(hello("fresh", 0, 0)).await.unwrap();
        assert_eq!(r.into_inner().message, "Hello fresh!");
        drop((c, fresh));
        server.stop().await;
    });
}

#[test]
fn a_stop_closes_connections_without_calls_at_once_and_finishes_calls_in_flight() {
    run(true, async {
        let server = GrpcServer::with_options(
            rpc::greeter::routes(),
            GrpcOptions::default().grace(Duration::from_secs(30)),
        );
        let addr = server
            .listen("127.0.0.1:0".parse().unwrap(), Default::default())
            .await
            .unwrap();
        // Preface, empty SETTINGS, half a HEADERS frame header; it never
        // acknowledges anything (the GOAWAY's ping included).
        let mut partial = std::net::TcpStream::connect(addr).unwrap();
        let mut hello_bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello_bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 16, 1]);
        std::io::Write::write_all(&mut partial, &hello_bytes).unwrap();
        let mut busy = greeter(addr).await;
        let call = spawn_local(async move { busy.say_hello(hello("slow", 0, 1_000)).await });
        settle().await;
        assert_eq!(server.connections(), 2);
        let stopping = server.clone();
        let stop = spawn_local(async move { stopping.stop().await });
        settle().await;
        // No time passes: the connection that never made a call is closed.
        assert!(closed_by_server(&partial).await);
        assert!(!stop.is_finished(), "the call in flight was not waited for");
        ManualClock::advance(Duration::from_secs(1)).await;
        let r = call.await.unwrap().unwrap();
        assert_eq!(r.into_inner().message, "Hello slow!");
        stop.await.unwrap();
    });
}
