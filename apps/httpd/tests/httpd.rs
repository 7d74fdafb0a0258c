//! httpd as a user runs it: a child process on the backend named by
//! `SEASTAR_REACTOR_BACKEND` (inherited), spoken to with raw HTTP/1.1 over
//! std sockets, stopped by SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running httpd and the lines it printed.
struct Httpd {
    child: Child,
    addr: SocketAddr,
    /// Where `--prometheus-port` serves, if given.
    prometheus: Option<SocketAddr>,
    out: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

fn start(args: &[&str]) -> Httpd {
    let mut child = Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args(["--port", "0", "--smp", "2"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
    // "httpd: listening on http://127.0.0.1:PORT/ (2 shards, backend B, ...)"
    let addr = first
        .strip_prefix("httpd: listening on http://")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    assert!(first.contains("(2 shards, backend "), "{first}");
    Httpd {
        child,
        addr,
        prometheus,
        out,
    }
}

impl Httpd {
    /// SIGTERM, then the exit status and the remaining stdout lines.
    fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let lines: Vec<String> = self.out.by_ref().map(Result::unwrap).collect();
        (self.child.wait().unwrap(), lines)
    }
}

/// One parsed response: status, headers (lower-case names), body.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    // A hang guard only: nothing here waits on time for correctness.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    BufReader::new(s)
}

/// Reads one response (Content-Length or chunked body) off `r`.
fn read_reply(r: &mut BufReader<TcpStream>, head_only: bool) -> Reply {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .unwrap_or_else(|| panic!("bad status line {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').unwrap();
        headers.push((n.to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only {
        return reply;
    }
    if let Some(len) = reply.header("content-length") {
        let mut body = vec![0; len.parse().unwrap()];
        r.read_exact(&mut body).unwrap();
        reply.body = body;
    } else if reply.header("transfer-encoding") == Some("chunked") {
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim_end(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            reply.body.extend_from_slice(&chunk[..n]);
        }
    }
    reply
}

fn request(addr: SocketAddr, raw: &str) -> Reply {
    let mut c = connect(addr);
    c.get_mut().write_all(raw.as_bytes()).unwrap();
    read_reply(&mut c, raw.starts_with("HEAD "))
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

#[test]
fn hello_echo_and_demo_routes_then_a_clean_stop() {
    let h = start(&[]);
    let r = get(h.addr, "/");
    assert_eq!((r.status, &r.body[..]), (200, &b"Hello, world!\n"[..]));
    assert_eq!(r.header("content-length"), Some("14"));

    // Keep-alive and pipelining: three requests in one write, three replies in order.
    let mut c = connect(h.addr);
    let three = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\
                 POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde\
                 GET /api/numbers?n=5 HTTP/1.1\r\nHost: x\r\n\r\n";
    c.get_mut().write_all(three.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut c, false).body, b"Hello, world!\n");
    assert_eq!(read_reply(&mut c, false).body, b"abcde");
    let numbers = read_reply(&mut c, false);
    assert_eq!(numbers.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&numbers.body).unwrap();
    assert_eq!(v, serde_json::json!([0, 1, 2, 3, 4]));

    // A chunked upload comes back whole.
    let r = request(
        h.addr,
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nfoo\r\n4\r\nbar!\r\n0\r\n\r\n",
    );
    assert_eq!((r.status, &r.body[..]), (200, &b"foobar!"[..]));

    let r = get(h.addr, "/api/shard");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["shards"], 2);
    assert!(v["shard"].as_u64().unwrap() < 2, "{v}");
    assert_eq!(get(h.addr, "/api/numbers?n=many").status, 400);
    assert_eq!(get(h.addr, "/no/such/page").status, 404);
    let r = get(h.addr, "/demo");
    assert_eq!(
        (r.status / 100, r.header("location")),
        (3, Some("/index.html"))
    );
    let r = get(h.addr, "/index.html");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    // A wrong method on a known path: 405 naming what is allowed.
    let r = request(h.addr, "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 405);
    assert!(r.header("allow").unwrap().contains("GET"), "{r:?}");
    // Garbage gets a 400 and the server keeps serving others.
    let r = request(h.addr, "NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(r.status, 400);
    assert_eq!(get(h.addr, "/").status, 200);

    let (status, lines) = h.stop();
    assert!(status.success(), "{status:?} {lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("httpd: stopped cleanly")
    );
    assert_eq!(lines.iter().filter(|l| l.starts_with("shard ")).count(), 2);
}

/// A fresh directory, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn serves_a_root_directory_with_ranges_and_no_way_out() {
    let dir = Dir(std::env::temp_dir().join(format!("httpd-root-{}", std::process::id())));
    std::fs::create_dir_all(dir.0.join("sub")).unwrap();
    std::fs::write(dir.0.join("sub/data.txt"), "0123456789").unwrap();
    std::fs::write(dir.0.join("index.html"), "<p>home</p>").unwrap();
    let h = start(&["--root", dir.0.to_str().unwrap()]);

    let r = get(h.addr, "/sub/data.txt");
    assert_eq!((r.status, &r.body[..]), (200, &b"0123456789"[..]));
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let etag = r.header("etag").unwrap().to_owned();
    let r = request(
        h.addr,
        &format!("GET /sub/data.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n"),
    );
    assert_eq!(r.status, 304);
    let r = request(
        h.addr,
        "GET /sub/data.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=2-4\r\n\r\n",
    );
    assert_eq!((r.status, &r.body[..]), (206, &b"234"[..]));
    assert_eq!(r.header("content-range"), Some("bytes 2-4/10"));
    let r = request(h.addr, "HEAD /sub/data.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.header("content-length")), (200, Some("10")));
    assert_eq!(get(h.addr, "/").body, b"Hello, world!\n");
    assert_eq!(get(h.addr, "/index.html").body, b"<p>home</p>");
    for evil in [
        "/../../etc/passwd",
        "/sub/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
    ] {
        let r = get(h.addr, evil);
        assert!(matches!(r.status, 400 | 403 | 404), "{evil}: {r:?}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("root:"),
            "{evil}"
        );
    }
    let (status, _) = h.stop();
    assert!(status.success());
}

#[test]
fn a_missing_root_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_httpd"))
        .args(["--port", "0", "--root", "/no/such/dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "httpd: --root /no/such/dir is not a directory"
    );
}

#[test]
fn metrics_are_served_to_prometheus_and_pushed_to_collectd() {
    let collectd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    collectd
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let to = collectd.local_addr().unwrap().to_string();
    let h = start(&[
        "--prometheus-port",
        "0",
        "--collectd-address",
        &to,
        "--collectd-interval",
        "0.05",
    ]);
    for _ in 0..3 {
        assert_eq!(get(h.addr, "/").status, 200);
    }
    assert_eq!(get(h.addr, "/no/such/page").status, 404);
    let prom = h.prometheus.expect("the prometheus line");
    let r = get(prom, "/metrics");
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    // Every shard reports its own counter; the GETs add up over shards.
    let sum = |status: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with("seastar_http_requests_total{")
                    && l.contains("method=\"GET\"")
                    && l.contains(&format!("status=\"{status}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!((sum("2xx"), sum("4xx")), (3.0, 1.0), "{text}");
    for shard in ["shard=\"0\"", "shard=\"1\""] {
        assert!(text.contains(shard), "{shard} missing:\n{text}");
    }
    assert!(text.contains("# TYPE seastar_http_requests_total counter"));
    // collectd's binary protocol: packets start with a part header; the
    // plugin part (type 0x0002) names the app.
    let mut buf = [0u8; 1500];
    let n = collectd.recv(&mut buf).unwrap();
    assert!(n > 4 && n <= 1452, "{n}");
    let plugin = b"\x00\x02\x00\x0ahttpd\x00";
    assert!(
        buf[..n].windows(plugin.len()).any(|w| w == plugin),
        "no plugin part `httpd` in {:?}",
        &buf[..n]
    );
    let (status, lines) = h.stop();
    assert!(status.success(), "{status:?} {lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("httpd: stopped cleanly")
    );
}

#[test]
fn bad_collectd_flags_are_clear_errors() {
    for (flags, want) in [
        (
            ["--collectd-address", "no-port-here"],
            "httpd: --collectd-address no-port-here: ",
        ),
        (
            ["--collectd-interval", "0"],
            "httpd: --collectd-interval must be a positive number of seconds",
        ),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_httpd"));
        cmd.args(["--port", "0"]).args(flags);
        if flags[0] != "--collectd-address" {
            cmd.args(["--collectd-address", "127.0.0.1:1"]);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{flags:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with(want), "{flags:?}: {err}");
    }
}
