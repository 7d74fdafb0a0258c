//! The `memcached` binary as a user runs it: memcached's flags, a free
//! port, the backend named by `SEASTAR_REACTOR_BACKEND` (inherited),
//! stopped by SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Running {
    child: Child,
    addr: SocketAddr,
    first: String,
    out: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

fn start(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memcached"))
        .args(["-p", "0", "-l", "127.0.0.1"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start memcached");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = match out.next() {
        Some(Ok(l)) => l,
        other => {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("no first line ({other:?}): {err}");
        }
    };
    // "memcached: listening on 127.0.0.1:PORT (tcp), udp ..., N shards, backend B"
    let addr = first
        .strip_prefix("memcached: listening on ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    Running {
        child,
        addr,
        first,
        out,
    }
}

impl Running {
    /// SIGTERM, then the exit status, the remaining stdout lines and stderr.
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

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    // A hang guard only: nothing here waits on time for correctness.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

fn ask(s: &mut TcpStream, req: &str, reply_len: usize) -> String {
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = vec![0; reply_len];
    s.read_exact(&mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

#[test]
fn serves_with_memcached_flags_and_stops_cleanly_on_sigterm() {
    // A free UDP port for -U (0 means "off" to memcached).
    let udp_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = start(&[
        "-t",
        "2",
        "-m",
        "8",
        "-c",
        "100",
        "-I",
        "2m",
        "-U",
        &udp_port.to_string(),
    ]);
    assert!(m.first.contains(", 2 shards, backend "), "{}", m.first);
    assert!(
        m.first.contains(&format!("udp 127.0.0.1:{udp_port}")),
        "{}",
        m.first
    );
    let mut clients: Vec<TcpStream> = (0..6).map(|_| connect(m.addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let reply = ask(c, &format!("set k{i} 0 0 1\r\n{}\r\n", i % 10), 8);
        assert_eq!(reply, "STORED\r\n");
    }
    let mut c = connect(m.addr);
    let want = "VALUE k5 0 1\r\n5\r\nEND\r\n";
    assert_eq!(ask(&mut c, "get k5\r\n", want.len()), want);
    c.write_all(b"stats settings\r\n").unwrap();
    let mut settings = String::new();
    let mut r = BufReader::new(c.try_clone().unwrap());
    while !settings.ends_with("END\r\n") {
        r.read_line(&mut settings).unwrap();
    }
    for line in [
        "STAT maxbytes 8388608\r\n",
        "STAT maxconns 100\r\n",
        "STAT num_threads 2\r\n",
        "STAT item_size_max 2097152\r\n",
        &format!("STAT udpport {udp_port}\r\n"),
        &format!("STAT tcpport {}\r\n", m.addr.port()),
    ] {
        assert!(settings.contains(line), "{line:?} missing in {settings}");
    }
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    udp.send_to(
        b"\x00\x01\x00\x00\x00\x01\x00\x00get k5\r\n",
        ("127.0.0.1", udp_port),
    )
    .unwrap();
    let mut d = [0u8; 2048];
    let n = udp.recv(&mut d).unwrap();
    assert_eq!(&d[8..n], want.as_bytes());
    // Stop with connections open: they are ended, not waited for.
    let (status, lines, err) = m.stop();
    assert!(status.success(), "{status:?}\n{lines:?}\n{err}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("memcached: stopped cleanly"),
        "{err}"
    );
    for mut c in clients {
        let mut rest = Vec::new();
        assert_eq!(c.read_to_end(&mut rest).unwrap(), 0, "closed by the server");
    }
}

#[test]
fn threads_and_smp_must_agree() {
    let out = Command::new(env!("CARGO_BIN_EXE_memcached"))
        .args(["-p", "0", "-t", "2", "--smp", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-t 2 and --smp 3 disagree"), "{err}");
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_memcached"))
        .args(["-p", &port, "-t", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on 127.0.0.1:"), "{err}");
}

/// libmemcached's conformance checker (`memcapable`, Debian's
/// `libmemcached-tools` ships it as `memccapable`), ASCII tests, when it is
/// installed; the test says so and passes when it is not.
#[test]
fn memcapable_ascii_suite_passes_when_installed() {
    let Some(tool) = ["memccapable", "memcapable"].into_iter().find(|t| {
        Command::new(t)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    }) else {
        eprintln!("memcapable not installed (apt-get install libmemcached-tools); skipped");
        return;
    };
    let m = start(&["-t", "2"]);
    let port = m.addr.port().to_string();
    // `timeout` bounds a hang; the checker itself takes well under a second.
    let out = Command::new("timeout")
        .args(["120", tool, "-a", "-h", "127.0.0.1", "-p", &port])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("All tests passed"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _, err) = m.stop();
    assert!(status.success(), "{err}");
}
