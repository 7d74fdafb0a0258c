//! memcached with `--admin-port`: each shard's items, hit ratio and
//! evictions in `/api/v1/shards`, gets and sets as its requests, and the
//! admin server stopping with the app.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running memcached, killed when dropped.
struct Memcached {
    child: Child,
    tcp: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Memcached {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memcached"))
        .args([
            "-p",
            "0",
            "-t",
            "2",
            "--admin-port",
            "0",
            "--shutdown-timeout",
            "2",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start memcached");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin = None;
    let tcp = loop {
        let line = out.next().expect("a listening line").unwrap();
        if let Some(rest) = line.strip_prefix("memcached: admin API and dashboard at http://") {
            admin = Some(rest.trim_end_matches('/').parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("memcached: listening on ") {
            break rest.split(' ').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in out {});
    Memcached {
        child,
        tcp,
        admin: admin.expect("the admin line comes first"),
    }
}

/// `GET path` on the admin port, as JSON.
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

/// Sends `cmd` and reads until a line equal to `end`.
fn call(c: &mut BufReader<TcpStream>, cmd: &[u8], end: &str) {
    c.get_mut().write_all(cmd).unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        c.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "connection closed");
        if line.trim_end() == end {
            return;
        }
        assert!(
            !line.starts_with("SERVER_ERROR") && !line.starts_with("ERROR"),
            "{line}"
        );
    }
}

/// `/api/v1/shards` once every shard has taken a sample after `since`.
fn shards_after(admin: SocketAddr, since_ms: u64) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = api(admin, "/api/v1/shards");
        let shards = v["shards"].as_array().unwrap().clone();
        if shards
            .iter()
            .all(|s| s["sampled_at_unix_ms"].as_u64().unwrap_or(0) > since_ms)
        {
            return shards;
        }
        assert!(Instant::now() < deadline, "no fresh samples: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn app(s: &serde_json::Value, key: &str) -> f64 {
    s["app"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing: {s}"))
}

#[test]
fn shards_show_items_hit_ratio_and_requests_of_memcached() {
    let m = start(&[]);
    let mut c = BufReader::new(TcpStream::connect(m.tcp).unwrap());
    c.get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    for i in 0..20 {
        call(
            &mut c,
            format!("set key{i} 0 0 5\r\nvalue\r\n").as_bytes(),
            "STORED",
        );
    }
    // 20 hits and 10 misses.
    for i in 0..30 {
        call(&mut c, format!("get key{i}\r\n").as_bytes(), "END");
    }
    let shards = shards_after(m.admin, now_ms());
    assert_eq!(shards.len(), 2);
    let items: f64 = shards.iter().map(|s| app(s, "items")).sum();
    assert_eq!(items, 20.0);
    // Per shard: hits / (hits + misses) of that shard's keys; overall the
    // gets split 20 / 10, so the ratios straddle 2/3.
    let ratios: Vec<f64> = shards.iter().map(|s| app(s, "hit_ratio")).collect();
    assert!(ratios.iter().all(|r| (0.0..=1.0).contains(r)), "{ratios:?}");
    let (lo, hi) = (ratios[0].min(ratios[1]), ratios[0].max(ratios[1]));
    assert!(
        lo <= 2.0 / 3.0 + 1e-9 && hi >= 2.0 / 3.0 - 1e-9,
        "{ratios:?}"
    );
    assert!(shards.iter().all(|s| app(s, "evictions") == 0.0));
    assert!(shards.iter().map(|s| app(s, "bytes")).sum::<f64>() > 0.0);
    // Requests are gets (per key) and sets: 30 + 20.
    let requests: u64 = shards
        .iter()
        .map(|s| s["requests_total"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 50);
    let runtime = api(m.admin, "/api/v1/runtime");
    assert_eq!(runtime["app"], "memcached");
    assert_eq!(runtime["options"]["conn-limit"], "1024");
    drop(c);
    // SIGTERM: the app and its admin server stop, exit 0, within bounds.
    let t = Instant::now();
    let mut m = m;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(m.child.id() as libc::pid_t, libc::SIGTERM) };
    let status = m.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
}

#[test]
fn evictions_show_per_shard_when_memory_runs_out() {
    // 1 MiB across 2 shards, 1.5 MiB of values offered.
    let m = start(&["-m", "1"]);
    let mut c = BufReader::new(TcpStream::connect(m.tcp).unwrap());
    c.get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let value = vec![b'x'; 1024];
    for i in 0..1536 {
        let mut cmd = format!("set k{i} 0 0 {}\r\n", value.len()).into_bytes();
        cmd.extend_from_slice(&value);
        cmd.extend_from_slice(b"\r\n");
        call(&mut c, &cmd, "STORED");
    }
    let shards = shards_after(m.admin, now_ms());
    let evictions: f64 = shards.iter().map(|s| app(s, "evictions")).sum();
    let items: f64 = shards.iter().map(|s| app(s, "items")).sum();
    assert!(evictions > 0.0, "{shards:?}");
    assert_eq!(items + evictions, 1536.0);
}
