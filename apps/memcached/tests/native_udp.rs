//! memcached over UDP on the native stack: the binary runs in one network
//! namespace with `--network-stack native --xdp-device` (or
//! `--tap-device`), a kernel UDP client in the other namespace talks the
//! memcached UDP frame protocol to it, and the replies are compared byte
//! for byte with stock memcached's (when installed) over the same kind of
//! veth. Needs root and `ip`; elsewhere the bed tests print `SKIPPED`.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use seastar_net::native::testbed::{BedOptions, TestBed};

const PORT: u16 = 11311;

/// A spawned server, killed on drop.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Spawns `cmd` and waits (at most 30 s) for a line containing `ready`
    /// on its stdout (stderr is echoed to ours).
    fn start(mut cmd: Command, ready: &str) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the server");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let ready = ready.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains(&ready) {
                    let _ = tx.send(line);
                }
            }
        });
        let mut s = Server { child };
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let status = s.child.try_wait();
            panic!("the server did not get ready in 30 s (status {status:?})");
        }
        s
    }

    /// SIGTERM; the exit status and how long the exit took.
    fn terminate(mut self) -> (ExitStatus, Duration) {
        let t = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let end = t + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st, t.elapsed());
            }
            assert!(Instant::now() < end, "no exit 10 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A memcached UDP client: one request datagram, the reply's datagrams
/// reassembled (retried on loss: the first datagrams wait for ARP).
struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    id: u16,
    /// Our server: datagrams numbered, the reply complete.
    strict: bool,
}

impl Client {
    fn new(bed: &TestBed, server: SocketAddr) -> Client {
        let addr_b = bed.addr_b;
        let sock = bed.run_in_b(|| UdpSocket::bind((addr_b, 0)).expect("bind in b"));
        Client {
            sock,
            server,
            id: 0,
            strict: true,
        }
    }

    fn request(&mut self, body: &[u8]) -> Vec<u8> {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            self.id = self.id.wrapping_add(1);
            let mut d = Vec::with_capacity(8 + body.len());
            for v in [self.id, 0, 1, 0] {
                d.extend_from_slice(&v.to_be_bytes());
            }
            d.extend_from_slice(body);
            self.sock.send_to(&d, self.server).unwrap();
            if let Some(r) = self.reply() {
                return r;
            }
        }
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        panic!("no reply to {shown:?}... in 10 s");
    }

    /// The reply's datagrams, reassembled. Ours number them (sequence
    /// `0..count`, all with the count) and the reply ends with the last;
    /// stock memcached 1.6.18 sends each value in a datagram of its own,
    /// every one numbered 0 of 1, so for it (`strict` off) the reply is
    /// what arrives, in order, until 100 ms pass without a datagram.
    fn reply(&mut self) -> Option<Vec<u8>> {
        let mut parts: Vec<(usize, usize, Vec<u8>)> = Vec::new();
        let mut buf = [0u8; 2048];
        let first = Duration::from_millis(300);
        self.sock.set_read_timeout(Some(first)).unwrap();
        loop {
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                if parts.is_empty() {
                    return None;
                }
                assert!(!self.strict, "a reply with datagrams missing: {parts:?}");
                break;
            };
            assert!(n >= 8, "a datagram shorter than the frame header");
            let h = |i: usize| u16::from_be_bytes([buf[2 * i], buf[2 * i + 1]]);
            if h(0) != self.id {
                continue; // a late reply to a retried request
            }
            parts.push((h(1) as usize, h(2) as usize, buf[8..n].to_vec()));
            if self.strict && parts.len() == h(2) as usize {
                break;
            }
            self.sock
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
        }
        if self.strict {
            parts.sort_by_key(|p| p.0);
            for (i, p) in parts.iter().enumerate() {
                assert_eq!((p.0, p.1), (i, parts.len()), "datagram sequence and count");
            }
        }
        Some(parts.into_iter().flat_map(|p| p.2).collect())
    }
}

/// The requests, in order; each reply is checked where it is fixed.
fn session(c: &mut Client) -> Vec<Vec<u8>> {
    // Requests fit one frame (the native stack drops IP fragments); the
    // reply to the triple get takes three datagrams.
    let big = "v".repeat(1300);
    let set_big = format!("set big 0 0 1300\r\n{big}\r\n");
    let reqs: Vec<&[u8]> = vec![
        b"set k 0 0 5\r\nhello\r\n",
        b"get k\r\n",
        b"get nope\r\n",
        b"incr n 1\r\n",
        b"set n 0 0 2\r\n41\r\n",
        b"incr n 1\r\n",
        b"delete k\r\n",
        b"get k n\r\n",
        set_big.as_bytes(),
        b"get big big big\r\n",
        b"bogus\r\n",
    ];
    let replies: Vec<Vec<u8>> = reqs.iter().map(|r| c.request(r)).collect();
    assert_eq!(replies[0], b"STORED\r\n");
    assert_eq!(replies[1], b"VALUE k 0 5\r\nhello\r\nEND\r\n");
    assert_eq!(replies[5], b"42\r\n");
    let value = format!("VALUE big 0 1300\r\n{big}\r\n");
    assert!(
        replies[9] == format!("{value}{value}{value}END\r\n").into_bytes(),
        "the reply of three datagrams: {} bytes",
        replies[9].len()
    );
    replies
}

fn ours(bed: &TestBed, device: &[&str], addr: Ipv4Addr) -> Server {
    let mut cmd = TestBed::command_in(&bed.ns_a, env!("CARGO_BIN_EXE_memcached"));
    cmd.args([
        "-p",
        "0",
        "-U",
        &PORT.to_string(),
        "-t",
        "1",
        "--shutdown-timeout",
        "2",
    ])
    .args(["--network-stack", "native"])
    .args(device)
    .args(["--host-ipv4-addr", &addr.to_string()]);
    Server::start(cmd, "listening on")
}

#[test]
fn memcached_udp_on_the_native_xdp_stack_answers_as_stock_memcached() {
    let Some(bed) = TestBed::new_or_skip("memcached native xdp", &BedOptions::default()) else {
        return;
    };
    let server = ours(&bed, &["--xdp-device", &bed.veth_a], bed.addr_a);
    let mut client = Client::new(&bed, SocketAddr::from((bed.addr_a, PORT)));
    let replies = session(&mut client);
    let (status, took) = server.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(4), "stop took {took:?}");

    // Stock memcached on the kernel's stack over another veth bed.
    if !std::path::Path::new("/usr/bin/memcached").exists() {
        // Past the harness's capture, so the skip shows.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: comparison with stock memcached: /usr/bin/memcached not installed"
        );
        return;
    }
    let opts = BedOptions {
        kernel_addr_a: true,
        ..BedOptions::default()
    };
    let stock_bed = TestBed::with(&opts).expect("a second bed");
    let mut cmd = TestBed::command_in(&stock_bed.ns_a, "/usr/bin/memcached");
    cmd.args([
        "-u",
        "root",
        "-p",
        "0",
        "-U",
        &PORT.to_string(),
        "-t",
        "1",
        "-vv",
    ])
    .args(["-l", &stock_bed.addr_a.to_string()]);
    // Stock memcached says nothing on stdout when ready: wait for its port.
    let _stock = Server {
        child: cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    let mut stock = Client::new(&stock_bed, SocketAddr::from((stock_bed.addr_a, PORT)));
    stock.strict = false;
    let want = session(&mut stock);
    for (i, (got, want)) in replies.iter().zip(&want).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(want),
            "reply {i} differs from stock memcached's"
        );
    }
}

#[test]
fn memcached_udp_on_the_native_tap_stack() {
    let opts = BedOptions {
        tap: true,
        ..BedOptions::default()
    };
    let Some(bed) = TestBed::new_or_skip("memcached native tap", &opts) else {
        return;
    };
    // The TAP interface lives in namespace b: the server opens it there.
    let tap = bed.tap.clone().unwrap();
    let mut cmd = TestBed::command_in(&bed.ns_b, env!("CARGO_BIN_EXE_memcached"));
    cmd.args([
        "-p",
        "0",
        "-U",
        &PORT.to_string(),
        "-t",
        "1",
        "--shutdown-timeout",
        "2",
    ])
    .args(["--network-stack", "native", "--tap-device", &tap])
    .args(["--host-ipv4-addr", &bed.tap_addr_a.to_string()]);
    let server = Server::start(cmd, "listening on");
    let tap_addr_b = bed.tap_addr_b;
    let mut client = Client {
        sock: bed.run_in_b(|| UdpSocket::bind((tap_addr_b, 0)).unwrap()),
        server: SocketAddr::from((bed.tap_addr_a, PORT)),
        id: 0,
        strict: true,
    };
    session(&mut client);
    let (status, took) = server.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(4), "stop took {took:?}");
}

fn run_to_exit(args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memcached"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st, err);
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tcp_on_the_native_stack_is_refused_with_a_clear_error() {
    let native = [
        "--network-stack",
        "native",
        "--tap-device",
        "t0",
        "--host-ipv4-addr",
        "10.9.9.9",
    ];
    let mut args = vec!["-U", "11211", "-p", "11211"];
    args.extend_from_slice(&native);
    let (st, err) = run_to_exit(&args);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(
        err.contains("-p 11211: TCP on the native stack is not supported yet; pass -p 0"),
        "{err}"
    );
}

#[test]
fn a_missing_native_device_is_a_clear_error() {
    let (st, err) = run_to_exit(&[
        "-p",
        "0",
        "-U",
        "11211",
        "-t",
        "1",
        "--network-stack",
        "native",
        "--xdp-device",
        "ssrs-nope0",
        "--host-ipv4-addr",
        "10.9.9.9",
    ]);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(
        err.contains("no such network interface `ssrs-nope0`"),
        "{err}"
    );
}

/// Reads `http://127.0.0.1:{port}/metrics` from inside namespace `ns`.
fn scrape_in(ns: &str, port: u16) -> String {
    use std::io::Write;
    seastar_net::native::testbed::run_in_ns(ns, || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("prometheus");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_owned()
    })
    .expect("entering the server's namespace")
}

/// The native stack's counter `name` with `label` (`("direction",
/// "in")`, ...) on each shard, in shard order.
fn per_shard(text: &str, name: &str, label: Option<(&str, &str)>) -> Vec<f64> {
    let fams = seastar_core::metrics::prometheus::parse(text).expect("metrics text");
    let fam = fams
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in the metrics"));
    let find = |s: &seastar_core::metrics::prometheus::ParsedSample, k: &str| {
        s.labels
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut v: Vec<(usize, f64)> = fam
        .samples
        .iter()
        .filter(|s| label.is_none_or(|(k, want)| find(s, k).as_deref() == Some(want)))
        .map(|s| {
            let shard = find(s, "shard").expect("a shard label").parse().unwrap();
            (shard, s.value)
        })
        .collect();
    v.sort_by_key(|p| p.0);
    v.into_iter().map(|p| p.1).collect()
}

/// memcached with `-t 2` on the two queues of a multi-queue device (queue
/// `i` on shard `i`): a client per source port in the kernel's namespace
/// stores and reads its key; every request is answered, both shards
/// receive from their queue and serve requests, flows that land on the
/// wrong queue are handed over, nothing is dropped.
fn two_shards_on_two_queues(
    bed: &TestBed,
    ns: &str,
    device: &[&str],
    ours: Ipv4Addr,
    theirs: Ipv4Addr,
) {
    const PROMETHEUS: u16 = 9180;
    // The prometheus endpoint listens on the kernel's loopback of the
    // server's namespace (a namespace of its own: the port is free).
    let mut cmd = TestBed::command_in(ns, env!("CARGO_BIN_EXE_memcached"));
    cmd.args(["-p", "0", "-U", &PORT.to_string(), "-t", "2"])
        .args(["--shutdown-timeout", "2"])
        .args(["--prometheus-port", &PROMETHEUS.to_string()])
        .args(["--network-stack", "native"])
        .args(device)
        .args(["--host-ipv4-addr", &ours.to_string()]);
    let server = Server::start(cmd, "listening on");
    let addr = SocketAddr::from((ours, PORT));
    let mut clients: Vec<Client> = (0..32)
        .map(|_| Client {
            sock: bed.run_in_b(|| UdpSocket::bind((theirs, 0)).unwrap()),
            server: addr,
            id: 0,
            strict: true,
        })
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let set = format!("set key{i} 0 0 3\r\nv{i:02}\r\n");
        assert_eq!(c.request(set.as_bytes()), b"STORED\r\n");
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let get = format!("get key{i}\r\n");
        let want = format!("VALUE key{i} 0 3\r\nv{i:02}\r\nEND\r\n");
        assert_eq!(c.request(get.as_bytes()), want.as_bytes());
    }
    let text = scrape_in(ns, PROMETHEUS);
    let udp_in = per_shard(
        &text,
        "seastar_net_native_udp_datagrams_total",
        Some(("direction", "in")),
    );
    let rx_in = per_shard(
        &text,
        "seastar_net_native_rss_handovers_total",
        Some(("direction", "rx_in")),
    );
    let rx_out = per_shard(
        &text,
        "seastar_net_native_rss_handovers_total",
        Some(("direction", "rx_out")),
    );
    let drops = per_shard(&text, "seastar_net_native_drops_total", None);
    assert_eq!(udp_in.len(), 2, "both shards run the stack");
    assert!(
        udp_in[0] > 0.0 && udp_in[1] > 0.0,
        "both shards served requests: {udp_in:?}"
    );
    // A shard's requests from its own queue: those it served that were
    // not handed to it, plus those it handed over.
    let from_queue: Vec<f64> = (0..2).map(|s| udp_in[s] - rx_in[s] + rx_out[s]).collect();
    assert!(
        from_queue[0] > 0.0 && from_queue[1] > 0.0,
        "both queues received: {from_queue:?}"
    );
    assert_eq!(rx_out[0], rx_in[1]);
    assert_eq!(rx_out[1], rx_in[0]);
    assert_eq!(drops.iter().sum::<f64>(), 0.0, "nothing dropped");
    let (status, took) = server.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(4), "stop took {took:?}");
}

#[test]
fn memcached_udp_with_two_shards_on_two_xdp_queues() {
    let opts = BedOptions {
        queues: Some(2),
        ..BedOptions::default()
    };
    let Some(bed) = TestBed::new_or_skip("memcached native xdp, 2 queues", &opts) else {
        return;
    };
    let device = ["--xdp-device", bed.veth_a.as_str()];
    two_shards_on_two_queues(&bed, &bed.ns_a, &device, bed.addr_a, bed.addr_b);
}

#[test]
fn memcached_udp_with_two_shards_on_two_tap_queues() {
    let opts = BedOptions {
        tap: true,
        ..BedOptions::default()
    };
    let Some(bed) = TestBed::new_or_skip("memcached native tap, 2 queues", &opts) else {
        return;
    };
    // The TAP interface lives in namespace b: the server opens it there.
    let tap = bed.tap.clone().unwrap();
    let device = ["--tap-device", tap.as_str()];
    two_shards_on_two_queues(&bed, &bed.ns_b, &device, bed.tap_addr_a, bed.tap_addr_b);
}
