//! `rpc server --admin-port`: the admin API beside the native and gRPC
//! ports, every shard reporting, and a clean stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running rpc server, killed when dropped.
struct Rpc {
    child: Child,
    admin: SocketAddr,
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
    loop {
        let line = out.next().expect("a listening line").unwrap();
        if let Some(rest) = line.strip_prefix("rpc: admin API and dashboard at http://") {
            admin = Some(rest.trim_end_matches('/').parse().unwrap());
        } else if line.starts_with("rpc: native on ") {
            break;
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in out.map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    Rpc {
        child,
        admin: admin.expect("the admin line comes first"),
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
