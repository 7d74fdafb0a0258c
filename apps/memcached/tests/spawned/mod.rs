//! The real `memcached` binary as a child process, for attacks whose
//! measure is the process: its peak RSS (`VmHWM`), whether it survives,
//! how it ends on SIGTERM.
//!
//! [`Spawned::start`] runs the binary on port 0 with the backend named by
//! `SEASTAR_REACTOR_BACKEND` and reads the bound address from its first
//! line; dropping it kills the child. Every socket operation has a hang
//! guard; timing assertions are generous bounds, never speeds.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a blocking socket operation may take before the test fails.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

/// The shutdown timeout the attacked servers run with.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// A running server process, killed when dropped.
pub struct Spawned {
    child: Child,
    pub tcp: SocketAddr,
    pub udp: Option<SocketAddr>,
}

impl Spawned {
    /// Starts the binary with `args` (after `-p 0 -l 127.0.0.1` and a
    /// 2-second shutdown timeout) and waits until it listens.
    pub fn start(args: &[&str]) -> Spawned {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_memcached"));
        cmd.args(["-p", "0", "-l", "127.0.0.1", "--shutdown-timeout", "2"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // The child inherits SEASTAR_REACTOR_BACKEND: the backend under test.
        let mut child = cmd.spawn().expect("spawn memcached");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("first line");
        // Keep draining: the exit report must not meet a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        // memcached: listening on ADDR (tcp), udp ADDR|off, ...
        let word = |after: &str| {
            let rest = &line[line.find(after).unwrap_or_else(|| panic!("{line}")) + after.len()..];
            rest.split([' ', ',']).next().unwrap().to_owned()
        };
        let tcp = word("listening on ").parse().expect("tcp address");
        let udp = word("udp ").parse().ok();
        Spawned { child, tcp, udp }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `/proc/<pid>/status` field in KiB (`VmHWM`, `VmRSS`).
    pub fn status_kib(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Peak resident memory so far, in MiB.
    pub fn peak_mib(&self) -> f64 {
        self.status_kib("VmHWM:") as f64 / 1024.0
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends SIGTERM and waits for the exit, failing after
    /// [`SHUTDOWN_TIMEOUT`] plus 2 s.
    pub fn sigterm(&mut self) -> (ExitStatus, Duration) {
        let t = Instant::now();
        // SAFETY: kill(2) on our own child's pid, with a valid signal.
        let r = unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(r, 0, "kill");
        let limit = SHUTDOWN_TIMEOUT + Duration::from_secs(2);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, t.elapsed());
            }
            assert!(t.elapsed() < limit, "still running {limit:?} after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then asserts a clean exit (status 0) within the bound.
    pub fn stop_cleanly(&mut self) {
        let (status, took) = self.sigterm();
        assert!(status.success(), "exit status {status:?} after {took:?}");
    }

    /// A fresh client connection.
    pub fn client(&self) -> Client {
        Client::connect(self.tcp)
    }

    /// Asserts a fresh client is served: `version` answers.
    pub fn assert_serves(&self) {
        let mut c = self.client();
        let v = c.ask(b"version\r\n");
        assert!(
            v.starts_with(b"VERSION "),
            "{:?}",
            String::from_utf8_lossy(&v)
        );
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking client with hang guards.
pub struct Client {
    pub s: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(HANG_GUARD)).unwrap();
        s.set_write_timeout(Some(HANG_GUARD)).unwrap();
        s.set_nodelay(true).unwrap();
        Client { s }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("send");
    }

    /// Reads exactly `n` bytes.
    pub fn recv_exact(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        self.s.read_exact(&mut b).expect("recv");
        b
    }

    /// Reads until the reply ends with `end` (a whole-line terminator).
    pub fn recv_until(&mut self, end: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while !got.ends_with(end) {
            let n = self.s.read(&mut chunk).expect("recv");
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        }
        got
    }

    /// Sends a one-line request and reads its one-line reply.
    pub fn ask(&mut self, req: &[u8]) -> Vec<u8> {
        self.send(req);
        self.recv_until(b"\r\n")
    }

    /// True once the server closed the connection (reads end of stream).
    pub fn closed_by_server(&mut self) -> bool {
        let mut b = [0u8; 64];
        matches!(self.s.read(&mut b), Ok(0))
    }
}

/// A UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `set <key> 0 0 <len>` of `len` bytes of `fill`, answered `STORED`.
pub fn set(c: &mut Client, key: &str, len: usize, fill: u8) {
    let mut req = format!("set {key} 0 0 {len}\r\n").into_bytes();
    req.extend(std::iter::repeat_n(fill, len));
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    assert_eq!(c.recv_until(b"\r\n"), b"STORED\r\n");
}

/// The `VALUE` block a `get` of such an item answers.
pub fn value_block(key: &str, len: usize, fill: u8) -> Vec<u8> {
    let mut v = format!("VALUE {key} 0 {len}\r\n").into_bytes();
    v.extend(std::iter::repeat_n(fill, len));
    v.extend_from_slice(b"\r\n");
    v
}
