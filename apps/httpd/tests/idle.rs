//! What an idle keep-alive connection costs httpd: the child process (one
//! shard, on the backend named by `SEASTAR_REACTOR_BACKEND`, inherited)
//! is warmed up, then [`CONNECTIONS`] clients each send one request, read
//! its answer and stay connected without a word. The growth of the
//! server's resident memory (`VmRSS` in `/proc/PID/status`) divided by
//! the connections must stay under [`BUDGET`] bytes (issue 29: nginx holds
//! about 0.5 KB per such connection). Then a fresh client is served and
//! SIGTERM ends the server cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Idle connections measured.
const CONNECTIONS: usize = 10_000;
/// Most bytes of server RSS one idle connection may cost (the issue's
/// target): measured 0.9 to 1.6 KB on both backends, most runs 1.0 to
/// 1.3 (a parked connection holds no buffer and its task is the socket
/// and a few words, see `seastar-http`'s `server::http1`); the bound
/// leaves room for the heap's noise.
const BUDGET: u64 = 2048;
/// Connections opened, served and closed before the first measure, so
/// per-shard pools, lazily built state and the heap that a batch being
/// served uses for a moment (before its connections park) exist already.
const WARM_UP: usize = 2 * BATCH;
/// Connections that wait for their answers together.
const BATCH: usize = 500;
/// The shutdown timeout passed to httpd.
const SHUTDOWN_S: u64 = 2;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const BODY: &str = "Hello, world!\n";

/// A running httpd, killed if the test ends without stopping it.
struct Httpd {
    child: Option<Child>,
    addr: SocketAddr,
}

impl Drop for Httpd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start() -> Httpd {
    let mut child = Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args(["--port", "0", "--smp", "1"])
        .args(["--shutdown-timeout", &SHUTDOWN_S.to_string()])
        .args(["--max-connections", &(2 * CONNECTIONS).to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start httpd");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = loop {
        let line = out.next().expect("a listening line").unwrap();
        if !line.starts_with("httpd: prometheus") {
            break line;
        }
    };
    let addr = first
        .strip_prefix("httpd: listening on http://")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    // Drain the rest so the child never blocks on a full pipe.
    std::thread::spawn(move || out.for_each(drop));
    Httpd {
        child: Some(child),
        addr,
    }
}

impl Httpd {
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Resident memory now, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kib * 1024
    }

    /// SIGTERM; asserts the process exits 0 within the shutdown timeout
    /// plus 2 s.
    fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let t0 = Instant::now();
        let limit = Duration::from_secs(SHUTDOWN_S + 2);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("httpd still running {limit:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{status:?}");
    }
}

/// Raises this process's open-file limit to its hard limit (the child
/// inherits it); panics if that is too low for the test.
fn raise_nofile(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into the struct we pass.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(r, 0, "getrlimit");
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: setrlimit(2) reads the struct we pass.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(r, 0, "setrlimit");
    assert!(
        lim.rlim_cur >= need,
        "RLIMIT_NOFILE hard limit {} is below the {need} this test needs",
        lim.rlim_cur
    );
}

/// Reads one answer to [`REQUEST`] (its body ends the read) and checks it.
fn read_answer(s: &mut TcpStream) {
    let mut got = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while !got.ends_with(BODY.as_bytes()) {
        let n = s.read(&mut buf).expect("reading an answer");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
}

/// Opens `n` connections, one request answered on each, and keeps them.
fn open_served(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut all = Vec::with_capacity(n);
    while all.len() < n {
        let batch: Vec<TcpStream> = (0..BATCH.min(n - all.len()))
            .map(|_| {
                let mut s = TcpStream::connect(addr).expect("connect");
                // Hang guards only.
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(REQUEST).unwrap();
                s
            })
            .collect();
        for mut s in batch {
            read_answer(&mut s);
            all.push(s);
        }
    }
    all
}

/// The server's RSS once it has stopped moving (the last answers may
/// still be leaving when the client has read them).
fn settled_rss(h: &Httpd) -> u64 {
    let mut last = h.rss();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(50));
        let now = h.rss();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

#[test]
fn idle_keep_alive_connections_cost_under_2_kib_each() {
    raise_nofile(CONNECTIONS as u64 + 1000);
    let h = start();
    drop(open_served(h.addr, WARM_UP));
    let before = settled_rss(&h);
    let t0 = Instant::now();
    let mut idle = open_served(h.addr, CONNECTIONS);
    let after = settled_rss(&h);
    let per = after.saturating_sub(before) / CONNECTIONS as u64;
    eprintln!(
        "{CONNECTIONS} idle connections in {:?}: RSS {} KiB -> {} KiB, {per} bytes each",
        t0.elapsed(),
        before / 1024,
        after / 1024
    );
    assert!(
        per < BUDGET,
        "{per} bytes of RSS per idle keep-alive connection (budget {BUDGET})"
    );

    // Still served: an idle one answers again, and a fresh client too;
    // the others stay open through the stop (idle ones close at once).
    let mut again = idle.pop().unwrap();
    again.write_all(REQUEST).unwrap();
    read_answer(&mut again);
    let mut fresh = TcpStream::connect(h.addr).unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    fresh.write_all(REQUEST).unwrap();
    read_answer(&mut fresh);
    h.stop();
    drop(idle);
}
