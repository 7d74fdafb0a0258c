//! echo with `--admin-port`: its listener named on every shard in
//! `/api/v1/connections`, the connections and bytes counted per shard,
//! and the admin server stopping with the app.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running echo, killed when dropped.
struct Echo {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Echo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_echo"))
        .args([
            "--port",
            "0",
            "--smp",
            "2",
            "--admin-port",
            "0",
            "--shutdown-timeout",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start echo");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin = None;
    let addr = loop {
        let line = out.next().expect("a listening line").unwrap();
        if let Some(rest) = line.strip_prefix("echo: admin API and dashboard at http://") {
            admin = Some(rest.trim_end_matches('/').parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("echo: listening on ") {
            break rest.split(',').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in out {});
    Echo {
        child,
        addr,
        admin: admin.expect("the admin line comes first"),
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
fn connections_show_the_echo_listener_on_every_shard() {
    let e = start();
    let mut clients = Vec::new();
    for i in 0..3u8 {
        let mut c = TcpStream::connect(e.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let msg = [b'a' + i; 100];
        c.write_all(&msg).unwrap();
        let mut back = [0u8; 100];
        c.read_exact(&mut back).unwrap();
        assert_eq!(back, msg);
        clients.push(c);
    }
    let v = api(e.admin, "/api/v1/connections");
    let listeners = v["listeners"].as_array().unwrap();
    let mut shards: Vec<u64> = listeners
        .iter()
        .map(|l| {
            assert_eq!(l["name"], "echo");
            l["shard"].as_u64().unwrap()
        })
        .collect();
    shards.sort_unstable();
    assert_eq!(shards, vec![0, 1], "{v}");
    let sum = |key: &str| -> u64 { listeners.iter().map(|l| l[key].as_u64().unwrap()).sum() };
    assert_eq!(
        (sum("accepted"), sum("open"), sum("backoffs")),
        (3, 3, 0),
        "{v}"
    );
    // Per shard: the bytes echoed (and the admin request's). (Sent bytes
    // are not asserted: seastar-net counts no bytes for echo's quiet
    // sends on io_uring.)
    let per_shard = v["shards"].as_array().unwrap();
    assert_eq!(per_shard.len(), 2);
    let received: u64 = per_shard
        .iter()
        .map(|s| s["bytes_received"].as_u64().unwrap())
        .sum();
    assert!(received >= 300, "{v}");
    let accepted: u64 = per_shard
        .iter()
        .map(|s| s["accepted"].as_u64().unwrap())
        .sum();
    assert!(
        accepted >= 4,
        "3 echo connections and the admin request's: {v}"
    );
    let r = api(e.admin, "/api/v1/runtime");
    assert_eq!(r["app"], "echo");
    assert_eq!(r["options"]["listener"], "distribute");
    drop(clients);
    let t = Instant::now();
    let mut e = e;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(e.child.id() as libc::pid_t, libc::SIGTERM) };
    let status = e.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
}
