//! The echo app as a user runs it: started as a child process on the
//! backend named by `SEASTAR_REACTOR_BACKEND` (inherited), stopped by
//! SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running echo server and the lines it printed.
struct Echo {
    child: Child,
    addr: SocketAddr,
    out: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

fn start(args: &[&str], nofile: Option<u64>) -> Echo {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_echo"));
    cmd.args(["--port", "0", "--address", "127.0.0.1"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(limit) = nofile {
        // SAFETY: the closure runs in the forked child before exec and only
        // calls setrlimit, which is async-signal-safe, on a local struct.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().expect("start echo");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = out.next().expect("a first line").unwrap();
    // "echo: listening on 127.0.0.1:PORT, N shards, backend B, listener L"
    let addr = first
        .strip_prefix("echo: listening on ")
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    assert!(first.contains("backend "), "{first}");
    Echo { child, addr, out }
}

impl Echo {
    /// SIGTERM, then the exit status, stdout lines and stderr.
    fn stop(mut self) -> (std::process::ExitStatus, Vec<String>, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let lines: Vec<String> = self.out.by_ref().map(Result::unwrap).collect();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (self.child.wait().unwrap(), lines, err)
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    // A hang guard only: nothing here waits on time for correctness.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

fn round_trip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
}

fn accepted_total(lines: &[String]) -> u64 {
    lines
        .iter()
        .filter_map(|l| l.split("accepted ").nth(1))
        .map(|r| r.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

fn serves_and_stops_cleanly(listener: &str) {
    let echo = start(&["--smp", "2", "--listener", listener], None);
    let mut clients: Vec<TcpStream> = (0..20).map(|_| connect(echo.addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        round_trip(c, format!("hello {i}").as_bytes());
        round_trip(c, &vec![i as u8; 100_000]);
    }
    // Stop with the connections still open: they are ended, not waited for.
    let (status, lines, err) = echo.stop();
    assert!(status.success(), "{status:?}\n{lines:?}\n{err}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("echo: stopped cleanly"),
        "{err}"
    );
    assert_eq!(accepted_total(&lines), 20, "{lines:?}");
    for mut c in clients {
        let mut rest = Vec::new();
        assert_eq!(c.read_to_end(&mut rest).unwrap(), 0, "closed by the server");
    }
}

#[test]
fn echoes_on_every_shard_with_per_shard_listeners_and_stops_on_sigterm() {
    serves_and_stops_cleanly("per-shard");
}

#[test]
fn echoes_with_a_distributing_listener_and_stops_on_sigterm() {
    serves_and_stops_cleanly("distribute");
}

#[test]
fn accept_survives_emfile() {
    // With 48 descriptors, the server runs out after a few dozen
    // connections; it must back off, and serve the rest once clients leave.
    let echo = start(&["--smp", "1"], Some(48));
    const N: usize = 100;
    // Every connection completes its handshake in the kernel backlog,
    // accepted or not; the server keeps each accepted one open until its
    // client closes, so it runs out of descriptors before any closes.
    let mut clients: Vec<TcpStream> = (0..N).map(|_| connect(echo.addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        round_trip(c, format!("message {i}").as_bytes());
        c.shutdown(std::net::Shutdown::Both).unwrap();
    }
    drop(clients);
    let (status, lines, err) = echo.stop();
    assert!(status.success(), "{status:?}\n{lines:?}\n{err}");
    assert_eq!(accepted_total(&lines), N as u64, "{lines:?}");
    let warnings = err.matches("out of file descriptors").count();
    assert!(warnings >= 1, "no warning logged:\n{err}");
    assert!(
        warnings < 10,
        "logged {warnings} times, not at most once per 10 s:\n{err}"
    );
}

/// `VmRSS` of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmRSS line");
    kb * 1024
}

/// A client that sends and never reads its echo fills both socket buffers
/// and blocks the server's send for good; the stop still ends within
/// `--shutdown-timeout`, exit status 0, and others are served meanwhile.
#[test]
fn a_client_that_never_reads_cannot_hold_the_stop_past_its_timeout() {
    let echo = start(&["--smp", "1", "--shutdown-timeout", "1"], None);
    let hostile = connect(echo.addr);
    hostile.set_nonblocking(true).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // Write until the kernel takes no more: the server is blocked on us.
    let mut stalls = 0;
    while stalls < 50 && std::time::Instant::now() < deadline {
        match (&hostile).write(&chunk) {
            Ok(n) => {
                sent += n;
                stalls = 0;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                stalls += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(
        sent > 1 << 20,
        "the server stopped reading after {sent} bytes"
    );
    // Somebody else is still served.
    round_trip(&mut connect(echo.addr), b"still here");
    let t0 = std::time::Instant::now();
    let (status, lines, err) = echo.stop();
    let took = t0.elapsed();
    assert!(status.success(), "{status:?}\n{lines:?}\n{err}");
    assert!(
        took < Duration::from_secs(3),
        "stop took {took:?} with a 1 s shutdown timeout"
    );
    assert!(err.contains("shutdown timeout"), "{err}");
    assert!(
        !err.contains('\x1b'),
        "no colour codes in piped logs: {err:?}"
    );
    drop(hostile);
}

/// Idle connections hold no buffer of their own: 2,000 connections that
/// each made one round trip and went quiet cost under 2 KiB each.
#[test]
fn idle_connections_cost_under_two_kib_each() {
    let echo = start(&["--smp", "1"], None);
    let pid = echo.child.id();
    // Warm up: every buffer of the shard's pools and ring gets touched.
    for i in 0..300 {
        round_trip(&mut connect(echo.addr), &vec![i as u8; 2000]);
    }
    std::thread::sleep(Duration::from_millis(200));
    let before = rss(pid);
    const N: usize = 2000;
    let mut idle: Vec<TcpStream> = (0..N).map(|_| connect(echo.addr)).collect();
    for (i, c) in idle.iter_mut().enumerate() {
        round_trip(c, format!("hello {i}").as_bytes());
    }
    let per_conn = rss(pid).saturating_sub(before) / N as u64;
    assert!(per_conn < 2048, "{per_conn} bytes per idle connection");
    // They are all still served.
    round_trip(&mut idle[N - 1], b"last");
    let (status, _, err) = echo.stop();
    assert!(status.success(), "{err}");
}
