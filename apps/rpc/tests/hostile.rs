//! `rpc server` against hostile clients, as a child process on the backend
//! named by `SEASTAR_REACTOR_BACKEND`: each attack is bounded (memory from
//! `/proc/<pid>/status`, time, connections), and a fresh native and gRPC
//! client is served during and after it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rpc::proto::helloworld::HelloRequest;
use rpc::proto::helloworld::greeter_client::GreeterClient;
use rpc::verbs::{ECHO, HELLO, HelloArgs, STATS, Stats};
use seastar_rpc::codec;
use seastar_rpc::frame::{
    DEFAULT_MAX_FRAME, Features, HEADER_LEN, Header, Kind, Negotiation, Status,
};

/// A spawned `rpc server --smp 1`, killed when dropped.
struct Server {
    child: Child,
    native: SocketAddr,
    grpc: SocketAddr,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rpc"))
            .args(["server", "--port", "0", "--grpc-port", "0", "--smp", "1"])
            .args(["--shutdown-timeout", "2"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = |tag: &str| -> SocketAddr {
            let rest = line.split(tag).nth(1).unwrap_or_else(|| panic!("{line:?}"));
            rest.split(',').next().unwrap().trim().parse().unwrap()
        };
        let (native, grpc) = (addr("native on "), addr("grpc on "));
        child.stdout = Some(out.into_inner());
        Server {
            child,
            native,
            grpc,
        }
    }

    /// A field of `/proc/<pid>/status`, in kB.
    fn status_kb(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = s
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
    }

    /// Waits at most `limit` for the process to exit.
    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The native port's counters (one more connection for the asking;
    /// retried while a connection slot frees up).
    fn stats(&self) -> Stats {
        let end = Instant::now() + Duration::from_secs(10);
        let mut c = loop {
            if let Some(c) = Native::try_connect(self.native) {
                break c;
            }
            assert!(Instant::now() < end, "no connection for STATS");
            std::thread::sleep(Duration::from_millis(20));
        };
        let (h, body) = c.call(STATS, 1, &codec::encode(&()).unwrap());
        assert_eq!(h.status, Status::Ok as u16);
        codec::decode(&body).unwrap()
    }

    /// Polls [`stats`](Self::stats) until `cond` holds (at most 10 s).
    fn stats_until(&self, what: &str, cond: impl Fn(&Stats) -> bool) -> Stats {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.stats();
            if cond(&s) {
                return s;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}: {s:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new native client and a new gRPC client are both served.
    fn serves_fresh_clients(&self) {
        let mut c = Native::connect(self.native);
        let arg = codec::encode(&b"fresh".to_vec()).unwrap();
        let (h, body) = c.call(ECHO, 1, &arg);
        assert_eq!((h.kind, h.status, body), (Kind::Response, 0, arg));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let grpc = self.grpc;
        rt.block_on(async move {
            let mut c = GreeterClient::new(tonic_channel(grpc).await.unwrap());
            let r = c.say_hello(hello("fresh", 0)).await.unwrap();
            assert_eq!(r.into_inner().message, "Hello fresh!");
        });
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stock tonic channel (on tokio) to `addr`.
async fn tonic_channel(
    addr: SocketAddr,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::try_from(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
}

fn hello(name: &str, delay_ms: i32) -> HelloRequest {
    HelloRequest {
        name: name.into(),
        num_greetings: 0,
        delay_ms,
    }
}

/// A blocking native client speaking raw frames (no lz4).
struct Native(TcpStream);

impl Native {
    fn connect(addr: SocketAddr) -> Native {
        Native::try_connect(addr).expect("negotiated")
    }

    /// A negotiated connection, or `None` if the server closed it.
    fn try_connect(addr: SocketAddr) -> Option<Native> {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let ours = Negotiation {
            features: Features::TIMEOUTS | Features::CANCELLATION,
            max_frame: DEFAULT_MAX_FRAME,
        };
        s.write_all(&ours.encode()).ok()?;
        let mut b = [0u8; 16];
        s.read_exact(&mut b).ok()?;
        Negotiation::decode(&b).unwrap();
        Some(Native(s))
    }

    fn send(&mut self, verb: u32, id: u64, payload: &[u8]) {
        self.0.write_all(&request(verb, id, payload)).unwrap();
    }

    fn read(&mut self) -> (Header, Vec<u8>) {
        let mut b = [0u8; HEADER_LEN];
        self.0.read_exact(&mut b).unwrap();
        let h = Header::decode(&b, u32::MAX).unwrap();
        let mut p = vec![0; h.len as usize];
        self.0.read_exact(&mut p).unwrap();
        (h, p)
    }

    fn call(&mut self, verb: u32, id: u64, payload: &[u8]) -> (Header, Vec<u8>) {
        self.send(verb, id, payload);
        self.read()
    }
}

fn request(verb: u32, id: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Header::request(verb, id, payload.len() as u32, None).encode(&mut out);
    out.extend_from_slice(payload);
    out
}

fn slow_hello(ms: u32) -> Vec<u8> {
    codec::encode(&HelloArgs {
        name: "slow".into(),
        delay_ms: ms,
    })
    .unwrap()
}

/// Whether the server closed `s` (end of stream or reset) within `limit`;
/// bytes it sends first (an HTTP/2 server's SETTINGS) are skipped.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    let mut b = [0u8; 1024];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// Incompressible bytes.
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_client_that_never_reads_its_echo_replies_holds_only_the_budget() {
    const N: usize = 320;
    const SIZE: usize = 256 << 10;
    let server = Server::start(&["--conn-output-budget", "262144"]);
    server.serves_fresh_clients();
    let base = server.status_kb("VmHWM");
    let attacker = Native::connect(server.native);
    let payload = codec::encode(&noise(SIZE)).unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let (mut w, n) = (attacker.0.try_clone().unwrap(), written.clone());
    // 80 MiB of echo requests, never a read.
    let writer = std::thread::spawn(move || {
        for id in 1..=N as u64 {
            if w.write_all(&request(ECHO, id, &payload)).is_err() {
                return;
            }
            n.fetch_add(1, Ordering::Relaxed);
        }
    });
    // The server stops reading: the writer makes no progress for 500 ms.
    let (mut last, mut since) = (0, Instant::now());
    let end = Instant::now() + Duration::from_secs(15);
    while since.elapsed() < Duration::from_millis(500) {
        assert!(Instant::now() < end, "the writer never stalled");
        let now = written.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(last < N, "the server read all {N} requests");
    server.serves_fresh_clients();
    let grew_mb = server.status_kb("VmHWM").saturating_sub(base) / 1024;
    eprintln!("peak RSS grew {grew_mb} MiB; {last} of {N} x 256 KiB requests written");
    assert!(
        grew_mb < 24,
        "peak RSS grew {grew_mb} MiB for a client that read nothing (80 MiB sent)"
    );
    attacker.0.shutdown(std::net::Shutdown::Both).unwrap();
    writer.join().unwrap();
    server.serves_fresh_clients();
}

#[test]
fn sigterm_during_slow_calls_exits_within_the_shutdown_timeout() {
    let mut server = Server::start(&[]);
    let mut native = Native::connect(server.native);
    native.send(HELLO, 1, &slow_hello(60_000));
    let grpc = server.grpc;
    let grpc_call = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut c = GreeterClient::new(tonic_channel(grpc).await.unwrap());
            c.say_hello(hello("slow", 60_000)).await.is_ok()
        })
    });
    server.stats_until("both calls to start", |s| s.hello_started == 2);
    server.serves_fresh_clients();
    let t0 = Instant::now();
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(4));
    let took = t0.elapsed();
    let status = status.unwrap_or_else(|| panic!("still running {took:?} after SIGTERM"));
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_millis(1500),
        "did not wait for the calls: {took:?}"
    );
    assert!(
        !grpc_call.join().unwrap(),
        "the 60 s gRPC call cannot have succeeded"
    );
    assert!(closed_within(&mut native.0, Duration::from_secs(1)));
}

#[test]
fn a_client_closing_its_connection_cancels_its_call() {
    let server = Server::start(&[]);
    let mut c = Native::connect(server.native);
    c.send(HELLO, 1, &slow_hello(60_000));
    server.stats_until("the call to start", |s| s.hello_started == 1);
    server.serves_fresh_clients();
    c.0.shutdown(std::net::Shutdown::Write).unwrap();
    let s = server.stats_until("the call to be cancelled", |s| s.hello_cancelled == 1);
    assert_eq!(s.server.cancelled_calls, 1);
    assert!(closed_within(&mut c.0, Duration::from_secs(5)));
    server.serves_fresh_clients();
}

#[test]
fn silent_connections_are_closed_after_the_first_bytes_timeout_on_both_ports() {
    let server = Server::start(&["--first-bytes-timeout", "1"]);
    let t0 = Instant::now();
    let mut silent: Vec<TcpStream> = (0..100)
        .flat_map(|_| [server.native, server.grpc])
        .map(|a| TcpStream::connect(a).unwrap())
        .collect();
    server.serves_fresh_clients();
    for s in &mut silent {
        assert!(closed_within(s, Duration::from_secs(8)), "still open");
    }
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(9), "{took:?}");
    let s = server.stats();
    assert_eq!(s.server.first_bytes_timeouts, 100, "{s:?}");
    server.serves_fresh_clients();
}

#[test]
fn a_duplicate_request_id_is_a_protocol_error() {
    let server = Server::start(&[]);
    let mut c = Native::connect(server.native);
    c.send(HELLO, 7, &slow_hello(60_000));
    server.stats_until("the call to start", |s| s.hello_started == 1);
    c.send(HELLO, 7, &slow_hello(0));
    let mut got = Vec::new();
    c.0.read_to_end(&mut got).unwrap();
    let msg = b"duplicate message id 7: that call is in flight";
    let mut h = Header::new(Kind::Response, 7);
    h.status = Status::BadRequest as u16;
    h.len = msg.len() as u32;
    let mut expect = Vec::new();
    h.encode(&mut expect);
    expect.extend_from_slice(msg);
    assert_eq!(got, expect, "one BadRequest reply, then end of stream");
    let s = server.stats_until("the first call to be cancelled", |s| s.hello_cancelled == 1);
    assert_eq!(s.server.duplicate_ids, 1);
    server.serves_fresh_clients();
}

#[test]
fn frames_announcing_16_mib_then_trickling_do_not_pin_16_mib() {
    const CONNS: usize = 20;
    let server = Server::start(&[]);
    server.serves_fresh_clients();
    let (hwm, peak) = (server.status_kb("VmHWM"), server.status_kb("VmPeak"));
    let mut conns: Vec<Native> = (0..CONNS).map(|_| Native::connect(server.native)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let mut h = Vec::new();
        Header::request(ECHO, i as u64 + 1, DEFAULT_MAX_FRAME, None).encode(&mut h);
        h.extend_from_slice(&[0xff; 100]);
        c.0.write_all(&h).unwrap();
    }
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(50));
        for c in &mut conns {
            c.0.write_all(&[0xff; 10]).unwrap();
        }
    }
    server.serves_fresh_clients();
    let grew_rss = server.status_kb("VmHWM").saturating_sub(hwm) / 1024;
    let grew_virt = server.status_kb("VmPeak").saturating_sub(peak) / 1024;
    eprintln!(
        "{CONNS} x 16 MiB announced: peak RSS +{grew_rss} MiB, peak virtual +{grew_virt} MiB"
    );
    // Reserving the announced length would be 320 MiB of address space.
    assert!(grew_rss < 16, "peak RSS grew {grew_rss} MiB");
    assert!(grew_virt < 64, "peak virtual size grew {grew_virt} MiB");
    drop(conns);
    server.serves_fresh_clients();
}

#[test]
fn connections_over_max_connections_are_refused_on_both_ports() {
    let server = Server::start(&["--max-connections", "3", "--first-bytes-timeout", "30"]);
    let mut native: Vec<Native> = (0..3).map(|_| Native::connect(server.native)).collect();
    let mut over = TcpStream::connect(server.native).unwrap();
    let _ = over.write_all(
        &Negotiation {
            features: Features::default(),
            max_frame: 1024,
        }
        .encode(),
    );
    assert!(closed_within(&mut over, Duration::from_secs(5)));
    // The connections already open are still served.
    let arg = codec::encode(&vec![1u8]).unwrap();
    assert_eq!(native[0].call(ECHO, 1, &arg).1, arg);
    let mut grpc: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(server.grpc).unwrap())
        .collect();
    let mut over = TcpStream::connect(server.grpc).unwrap();
    assert!(closed_within(&mut over, Duration::from_secs(5)));
    // One of each goes: the slots free up, fresh clients are served.
    drop(native.pop());
    drop(grpc.pop());
    let s = server.stats();
    // The one over the limit, and maybe the stats query itself while the
    // dropped connection's slot was not yet free.
    assert!(s.server.refused >= 1, "{s:?}");
    let end = Instant::now() + Duration::from_secs(10);
    while Native::try_connect(server.native).is_none() || !grpc_serves(server.grpc) {
        assert!(Instant::now() < end, "no slot freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop((native, grpc));
    server.serves_fresh_clients();
}

/// Whether a new gRPC client is served (false if its connection is refused).
fn grpc_serves(grpc: SocketAddr) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let Ok(ch) = tonic_channel(grpc).await else {
            return false;
        };
        let mut c = GreeterClient::new(ch);
        c.say_hello(hello("again", 0)).await.is_ok()
    })
}
