//! `rpc server` as a user runs it (a child process on the backend named by
//! `SEASTAR_REACTOR_BACKEND`): a stock tonic client on tokio calls the
//! Greeter, `rpc bench` drives both protocols, SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use rpc::proto::helloworld::HelloRequest;
use rpc::proto::helloworld::greeter_client::GreeterClient;

struct Server {
    child: Child,
    native: SocketAddr,
    grpc: SocketAddr,
}

fn start() -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args(["server", "--port", "0", "--grpc-port", "0", "--smp", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // "rpc: native on A, grpc on B, N shards, backend X"
    let addr = |tag: &str| -> SocketAddr {
        let rest = line.split(tag).nth(1).unwrap_or_else(|| panic!("{line:?}"));
        rest.split(',').next().unwrap().trim().parse().unwrap()
    };
    let (native, grpc) = (addr("native on "), addr("grpc on "));
    assert!(line.contains("2 shards"), "{line}");
    child.stdout = Some(out.into_inner());
    Server {
        child,
        native,
        grpc,
    }
}

impl Server {
    /// SIGTERM, then the exit status and stdout; a clean stop logs no
    /// error (with the distributing listener, shard 1's accept ends when
    /// shard 0's listener closes: that is not an error).
    fn stop(self) -> (std::process::ExitStatus, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let out = self.child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("ERROR"), "a clean stop logged errors:\n{err}");
        (out.status, String::from_utf8(out.stdout).unwrap())
    }
}

fn bench(addr: SocketAddr, protocol: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args(["bench", "--addr", &addr.to_string(), "--protocol", protocol])
        .args(["--in-flight", "4", "--duration", "0.3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_stock_tonic_client_calls_the_greeter() {
    let server = start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::try_from(format!("http://{}", server.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut c = GreeterClient::new(channel);
        let r = c
            .say_hello(HelloRequest {
                name: "tokio".into(),
                num_greetings: 0,
                delay_ms: 0,
            })
            .await
            .unwrap();
        assert_eq!(r.into_inner().message, "Hello tokio!");
        let mut s = c
            .say_hello_stream_reply(HelloRequest {
                name: "stream".into(),
                num_greetings: 4,
                delay_ms: 1,
            })
            .await
            .unwrap()
            .into_inner();
        let mut n = 0;
        while let Some(m) = s.message().await.unwrap() {
            assert!(m.message.contains("stream"), "{m:?}");
            n += 1;
        }
        assert_eq!(n, 4);
        // delay_ms: the reply takes at least that long.
        let t = std::time::Instant::now();
        c.say_hello(HelloRequest {
            name: "d".into(),
            num_greetings: 0,
            delay_ms: 30,
        })
        .await
        .unwrap();
        assert!(t.elapsed() >= std::time::Duration::from_millis(30));
    });
    // The client's connection closes with its runtime.
    drop(rt);
    let (status, out) = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(out.contains("rpc: stopped cleanly"), "{out}");
}

#[test]
fn bench_drives_both_protocols_and_auto_detects() {
    let server = start();
    for (addr, proto, expect) in [
        (server.native, "native", "\"Native\""),
        (server.grpc, "grpc", "\"Grpc\""),
        (server.native, "auto", "\"Native\""),
        (server.grpc, "auto", "\"Grpc\""),
    ] {
        let out = bench(addr, proto);
        assert!(out.contains(expect), "{proto}: {out}");
        assert!(out.contains("\"errors\":0"), "{proto}: {out}");
        assert!(!out.contains("\"calls\":0,"), "{proto}: {out}");
    }
    let (status, out) = server.stop();
    assert!(status.success());
    assert!(out.contains("rpc: stopped cleanly"), "{out}");
}
