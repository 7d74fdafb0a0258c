//! `rpc server --admin-port`: the admin API beside the native and gRPC
//! ports, every shard reporting (native calls counted by outcome), and a
//! clean stop. Run on the backend named by `SEASTAR_REACTOR_BACKEND`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rpc::verbs::{ECHO, HELLO, HelloArgs};
use seastar_rpc::codec;
use seastar_rpc::frame::{
    DEFAULT_MAX_FRAME, Features, HEADER_LEN, Header, Kind, Negotiation, Status,
};

/// A running rpc server, killed when dropped.
struct Rpc {
    child: Child,
    admin: SocketAddr,
    native: SocketAddr,
    out: std::sync::mpsc::Receiver<String>,
}

impl Drop for Rpc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Rpc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args(["server", "--port", "0", "--grpc-port", "0", "--smp", "2"])
        .args(["--admin-port", "0", "--shutdown-timeout", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rpc");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin = None;
    let native = loop {
        let line = out.next().expect("a listening line").unwrap();
        if let Some(rest) = line.strip_prefix("rpc: admin API and dashboard at http://") {
            admin = Some(rest.trim_end_matches('/').parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("rpc: native on ") {
            break rest.split(',').next().unwrap().trim().parse().unwrap();
        }
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in out.map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    Rpc {
        child,
        admin: admin.expect("the admin line comes first"),
        native,
        out: rx,
    }
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
    let rt = api(r.admin, "/api/v1/runtime");
    assert_eq!(rt["app"], "rpc");
    assert_eq!(rt["shards"], 2);
    assert_eq!(rt["options"]["grpc-port"], "0");
    assert_eq!(rt["options"]["shutdown-timeout"], "2");
    let shards = api(r.admin, "/api/v1/shards");
    let list = shards["shards"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter().all(|s| s["tasks_run"].as_u64().unwrap() > 0),
        "{shards}"
    );
    let groups = api(r.admin, "/api/v1/groups");
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

/// A negotiated blocking native client.
fn native_client(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    let ours = Negotiation {
        features: Features::TIMEOUTS | Features::CANCELLATION,
        max_frame: DEFAULT_MAX_FRAME,
    };
    s.write_all(&ours.encode()).unwrap();
    let mut b = [0u8; 16];
    s.read_exact(&mut b).unwrap();
    Negotiation::decode(&b).unwrap();
    s
}

/// One call of `verb` with `arg` (already serialized); the answer's
/// status and payload.
fn call(s: &mut TcpStream, verb: u32, id: u64, arg: &[u8]) -> (Status, Vec<u8>) {
    let mut req = Vec::new();
    Header::request(verb, id, arg.len() as u32, None).encode(&mut req);
    req.extend_from_slice(arg);
    s.write_all(&req).unwrap();
    let mut h = [0u8; HEADER_LEN];
    s.read_exact(&mut h).unwrap();
    let h = Header::decode(&h, u32::MAX).unwrap();
    let mut body = vec![0; h.len as usize];
    s.read_exact(&mut body).unwrap();
    assert_eq!((h.kind, h.id), (Kind::Response, id));
    (Status::from_u16(h.status), body)
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
    let before = api(r.admin, "/api/v1/metrics");
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
    let after = api(r.admin, "/api/v1/metrics");
    assert_eq!(calls_total(&after, "ok"), N, "{after}");
    assert_eq!(calls_total(&after, "error"), 1, "{after}");
    assert_eq!(calls_total(&after, "cancelled"), 0, "{after}");
}
