//! httpd against hostile clients: the child process on the backend named by
//! `SEASTAR_REACTOR_BACKEND` (inherited), raw HTTP/1.1 over std sockets.
//! Every test checks that a fresh client is served during and after the
//! attack, and that SIGTERM ends the process within its
//! `--shutdown-timeout` plus 2 s with status 0. Memory is the server's
//! peak RSS (`VmHWM` in `/proc/PID/status`). Times are generous bounds,
//! never speeds.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The shutdown timeout every test passes.
const SHUTDOWN_S: u64 = 2;

/// A running httpd, killed if the test ends without stopping it.
struct Httpd {
    child: Option<Child>,
    addr: SocketAddr,
    /// Where `--prometheus-port` serves, if given.
    prometheus: Option<SocketAddr>,
    out: Option<std::io::Lines<BufReader<std::process::ChildStdout>>>,
}

fn start(args: &[&str]) -> Httpd {
    let mut child = Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args(["--port", "0", "--smp", "1"])
        .args(["--shutdown-timeout", &SHUTDOWN_S.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start httpd");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut prometheus = None;
    let first = loop {
        let line = out.next().expect("a listening line").unwrap();
        match line.strip_prefix("httpd: prometheus metrics at http://") {
            Some(rest) => prometheus = Some(rest.trim_end_matches("/metrics").parse().unwrap()),
            None => break line,
        }
    };
    let addr = first
        .strip_prefix("httpd: listening on http://")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    Httpd {
        child: Some(child),
        addr,
        prometheus,
        out: Some(out),
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Httpd {
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Peak resident memory so far, in KiB.
    fn vm_hwm_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// A new client gets `GET /` answered.
    fn assert_serves_fresh_client(&self) {
        let r = request(
            self.addr,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nHello, world!\n"), "{r}");
    }

    /// SIGTERM; asserts the process ends within the shutdown timeout plus
    /// 2 s with status 0, and returns its remaining stdout.
    fn stop(mut self) -> Vec<String> {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let t0 = Instant::now();
        let limit = Duration::from_secs(SHUTDOWN_S + 2);
        let status: ExitStatus = loop {
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
        self.out.take().unwrap().map(Result::unwrap).collect()
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    // Hang guards only.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Everything the server sends until it closes.
fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading: {e} after {:?}", String::from_utf8_lossy(&out)),
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `raw` on a new connection and reads until the server closes.
fn request(addr: SocketAddr, raw: &str) -> String {
    let mut s = connect(addr);
    s.write_all(raw.as_bytes()).unwrap();
    read_to_close(&mut s)
}

/// The reply without its `date` header, which changes.
fn without_date(r: &str) -> String {
    r.split("\r\n")
        .filter(|l| !l.starts_with("date: "))
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// The count `N what` in httpd's per-shard summary line.
fn count(lines: &[String], what: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| l.split(", ").find_map(|p| p.strip_suffix(what)))
        .unwrap_or_else(|| panic!("no {what:?} count in {lines:?}"))
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// A fresh directory under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "httpd-hostile-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes pipelined `GET /` requests on `s` without reading, for at most
/// `n` requests or until the server stops taking them (a write blocks for
/// 1 s); returns how many were sent whole.
fn flood(s: &mut TcpStream, n: usize) -> usize {
    const REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let batch: Vec<u8> = REQ.repeat(256);
    let mut sent = 0;
    while sent < n {
        match s.write_all(&batch) {
            Ok(()) => sent += 256,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("flood: {e}"),
        }
    }
    sent
}

#[test]
fn a_pipelining_client_that_never_reads_holds_bounded_memory_and_sigterm_still_ends_it() {
    let h = start(&["--max-output-buffer", "65536"]);
    h.assert_serves_fresh_client();
    let base = h.vm_hwm_kib();
    // Small flood, then one four times as large: with the output budget
    // the server stops reading once its buffers are full, so both leave
    // the peak where the first put it.
    let mut small = connect(h.addr);
    let sent_small = flood(&mut small, 200_000);
    std::thread::sleep(Duration::from_millis(300));
    h.assert_serves_fresh_client();
    let after_small = h.vm_hwm_kib();
    let mut large = connect(h.addr);
    let sent_large = flood(&mut large, 800_000);
    std::thread::sleep(Duration::from_millis(300));
    h.assert_serves_fresh_client();
    let after_large = h.vm_hwm_kib();
    eprintln!(
        "VmHWM KiB: {base} at start, {after_small} after {sent_small} requests, {after_large} after {sent_large} more"
    );
    // Back-pressure reached the clients: the server stopped reading.
    assert!(sent_small < 200_000 && sent_large < 800_000);
    // Each request's answer is ~130 bytes: buffering the answers to the
    // small flood alone would take 20 MB; the budget keeps each
    // connection near a megabyte (hyper's and the socket's buffers) and
    // the second, larger flood adds no more than the first.
    assert!(
        after_large.saturating_sub(base) < 6 * 1024,
        "peak grew {} KiB",
        after_large - base
    );
    assert!(
        after_large.saturating_sub(after_small) < 3 * 1024,
        "a 4x larger flood grew the peak by {} KiB",
        after_large - after_small
    );
    // The clients still never read: SIGTERM must end the process anyway.
    let lines = h.stop();
    // Both flooders' connections were accounted for. Whether the stop had
    // to cut them (blocked mid-response) or hyper closed them at once
    // (back-pressure held them between two requests) depends on where the
    // budget caught them; either way the stop ended within its limit.
    let served: u64 = lines
        .iter()
        .filter_map(|l| {
            l.split(": ")
                .nth(1)?
                .split(" connections")
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(served >= 5, "{lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("httpd: stopped cleanly")
    );
    drop((small, large));
}

#[test]
fn a_bad_chunk_size_gets_400_and_the_connection_closes() {
    let h = start(&[]);
    // As nginx answers a chunk size that is not hex.
    let r = request(
        h.addr,
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
    assert!(r.contains("\r\nconnection: close\r\n"), "{r}");
    h.assert_serves_fresh_client();
    // The same after a good first chunk: the answer had already started,
    // so the connection is cut (nginx too cannot take back a 200).
    let r = request(
        h.addr,
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        !r.ends_with("0\r\n\r\n"),
        "a cut body must not look complete: {r}"
    );
    h.assert_serves_fresh_client();
    h.stop();
}

#[test]
fn a_body_that_does_not_come_gets_408() {
    let h = start(&["--body-read-timeout", "1"]);
    let t0 = Instant::now();
    let mut s = connect(h.addr);
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    // The first bytes start the echo; the rest never comes.
    let mut c = connect(h.addr);
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        .unwrap();
    h.assert_serves_fresh_client();
    let r = read_to_close(&mut c);
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(
        without_date(&r),
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 29\r\n\r\nno request body bytes for 1s\n"
    );
    // The started echo is cut: never a complete chunked body.
    let r = read_to_close(&mut s);
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(!r.ends_with("0\r\n\r\n"), "{r}");
    h.assert_serves_fresh_client();
    h.stop();
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let h = start(&["--idle-timeout", "1"]);
    let mut s = connect(h.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let t0 = Instant::now();
    let r = read_to_close(&mut s);
    let waited = t0.elapsed();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\nHello, world!\n"), "{r}");
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(8), "closed after {waited:?}");
    h.assert_serves_fresh_client();
    let lines = h.stop();
    assert!(
        lines.iter().any(|l| l.contains(" 1 closed idle")),
        "{lines:?}"
    );
}

fn set_mtime(path: &Path, t: SystemTime) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

#[test]
fn static_files_old_mtimes_empty_ranges_and_double_slash_redirects() {
    let root = temp_dir("static");
    std::fs::write(root.join("old.txt"), "old\n").unwrap();
    set_mtime(
        &root.join("old.txt"),
        SystemTime::UNIX_EPOCH - Duration::from_secs(315_619_200),
    );
    std::fs::write(root.join("empty"), "").unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/index.html"), "<p>sub</p>\n").unwrap();
    let h = start(&["--root", root.to_str().unwrap()]);

    let r = request(
        h.addr,
        "GET /old.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        r.contains("\r\nlast-modified: Thu, 01 Jan 1970 00:00:00 GMT\r\n"),
        "{r}"
    );
    assert!(r.ends_with("\r\n\r\nold\n"), "{r}");
    h.assert_serves_fresh_client();

    // RFC 9110 14.1.1: a representation shorter than the suffix is used
    // whole: 200 with the empty body, never a Content-Range that underflows.
    let r = request(
        h.addr,
        "GET /empty HTTP/1.1\r\nHost: x\r\nRange: bytes=-5\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(!r.contains("content-range"), "{r}");
    assert!(r.contains("\r\ncontent-length: 0\r\n"), "{r}");
    let r = request(
        h.addr,
        "GET /empty HTTP/1.1\r\nHost: x\r\nRange: bytes=0-\r\nConnection: close\r\n\r\n",
    );
    assert!(
        r.starts_with("HTTP/1.1 416 Range Not Satisfiable\r\n"),
        "{r}"
    );
    assert!(r.contains("\r\ncontent-range: bytes */0\r\n"), "{r}");

    let r = request(
        h.addr,
        "GET //sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"), "{r}");
    assert!(r.contains("\r\nlocation: /sub/\r\n"), "{r}");
    let r = request(
        h.addr,
        "GET /sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(r.contains("\r\nlocation: /sub/\r\n"), "{r}");
    h.assert_serves_fresh_client();
    h.stop();
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn symlinks_out_of_the_root_are_followed_by_default_and_refused_on_request() {
    let outside = temp_dir("outside");
    std::fs::write(outside.join("secret.txt"), "secret\n").unwrap();
    let root = temp_dir("root");
    std::fs::write(root.join("inside.txt"), "inside\n").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("out.txt")).unwrap();
    std::os::unix::fs::symlink(root.join("inside.txt"), root.join("in.txt")).unwrap();
    let get = |addr, p: &str| {
        request(
            addr,
            &format!("GET /{p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
    };

    // nginx's default (disable_symlinks off): followed.
    let h = start(&["--root", root.to_str().unwrap()]);
    let r = get(h.addr, "out.txt");
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("secret\n"),
        "{r}"
    );
    h.stop();

    let h = start(&[
        "--root",
        root.to_str().unwrap(),
        "--no-follow-symlinks-outside-root",
    ]);
    let r = get(h.addr, "out.txt");
    assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{r}");
    assert!(!r.contains("secret"), "{r}");
    let r = get(h.addr, "in.txt");
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("inside\n"),
        "{r}"
    );
    h.assert_serves_fresh_client();
    h.stop();
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&outside);
}

#[test]
fn connections_beyond_max_connections_are_closed_and_counted() {
    let h = start(&["--max-connections", "2", "--prometheus-port", "0"]);
    // Two connections, each answered once and kept open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect(h.addr);
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "HTTP/1.1 200 OK\r\n");
        held.push((s, r));
    }
    // A third is closed without an answer.
    let r = request(
        h.addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r, "", "beyond the cap: closed at once");
    // Freeing a place lets a fresh client in again.
    drop(held.pop());
    let t0 = Instant::now();
    loop {
        let r = request(
            h.addr,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        if r.starts_with("HTTP/1.1 200 OK\r\n") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "never served again: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Counted for Prometheus too.
    let metrics = request(
        h.prometheus.unwrap(),
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let refused: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("seastar_http_connections_closed_total{")
                && l.contains("reason=\"refused\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_else(|| panic!("no refused counter in {metrics}"))
        .parse()
        .unwrap();
    assert!(refused >= 1.0, "{refused}");
    let lines = h.stop();
    assert!(count(&lines, "refused") >= 1, "{lines:?}");
}
