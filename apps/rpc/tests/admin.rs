//! `rpc server --admin-port`: the admin API beside the native and gRPC
//! ports, every shard reporting (native calls counted by outcome), and a
//! clean stop. Run on the backend named by `SEASTAR_REACTOR_BACKEND`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Server, call, native_client};
use rpc::verbs::{ECHO, HELLO, HelloArgs};
use seastar_rpc::codec;
use seastar_rpc::frame::Status;

/// `rpc server --smp 2 --admin-port 0`.
fn start() -> Server {
    Server::start(&["--smp", "2", "--admin-port", "0"])
}

fn api(addr: SocketAddr, path: &str) -> serde_json::Value {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap()
}

#[test]
fn admin_api_runs_beside_the_rpc_ports_and_stops_with_them() {
    let r = start();
    let rt = api(r.admin.expect("an admin port"), "/api/v1/runtime");
    assert_eq!(rt["app"], "rpc");
    assert_eq!(rt["shards"], 2);
    assert_eq!(rt["options"]["grpc-port"], "0");
    assert_eq!(rt["options"]["shutdown-timeout"], "2");
    let shards = api(r.admin.expect("an admin port"), "/api/v1/shards");
    let list = shards["shards"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter().all(|s| s["tasks_run"].as_u64().unwrap() > 0),
        "{shards}"
    );
    let groups = api(r.admin.expect("an admin port"), "/api/v1/groups");
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "main")
    );
    let t = Instant::now();
    let mut r = r;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGTERM) };
    let status = r.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let rest: Vec<String> = r.out.try_iter().collect();
    assert!(rest.iter().any(|l| l == "rpc: stopped cleanly"), "{rest:?}");
}

/// `seastar_rpc_calls_total{outcome}` summed over the shards of
/// `/api/v1/metrics` (0 if no shard counted it yet).
fn calls_total(metrics: &serde_json::Value, outcome: &str) -> u64 {
    let shards = metrics["shards"].as_array().expect("shards");
    (shards.iter())
        .flat_map(|s| s["samples"].as_array().expect("samples"))
        .filter(|m| m["name"] == "seastar_rpc_calls_total" && m["labels"]["outcome"] == outcome)
        .map(|m| m["value"].as_u64().expect("a counter"))
        .sum()
}

#[test]
fn the_metrics_api_counts_native_calls_by_outcome() {
    let r = start();
    let before = api(r.admin.expect("an admin port"), "/api/v1/metrics");
    assert_eq!(calls_total(&before, "ok"), 0, "{before}");
    assert_eq!(calls_total(&before, "error"), 0, "{before}");
    // Calls on several connections (spread over both shards).
    const N: u64 = 25;
    let mut conns: Vec<TcpStream> = (0..4).map(|_| native_client(r.native)).collect();
    for i in 0..N {
        let arg = codec::encode(&vec![i as u8; 3]).unwrap();
        let (status, body) = call(&mut conns[i as usize % 4], ECHO, i + 1, &arg);
        assert_eq!((status, body), (Status::Ok, arg));
    }
    // A handler's error counts as an error.
    let empty = codec::encode(&HelloArgs {
        name: String::new(),
        delay_ms: 0,
    })
    .unwrap();
    assert_eq!(call(&mut conns[0], HELLO, 1000, &empty).0, Status::Handler);
    // A verb no handler serves is answered at once and counts as no call.
    assert_eq!(call(&mut conns[1], 999, 1001, &[]).0, Status::UnknownVerb);
    let after = api(r.admin.expect("an admin port"), "/api/v1/metrics");
    assert_eq!(calls_total(&after, "ok"), N, "{after}");
    assert_eq!(calls_total(&after, "error"), 1, "{after}");
    assert_eq!(calls_total(&after, "cancelled"), 0, "{after}");
}
