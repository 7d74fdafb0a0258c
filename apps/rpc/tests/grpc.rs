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
use seastar_rpc::grpc::{GrpcChannel, GrpcServer};

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
