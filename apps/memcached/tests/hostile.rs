//! Hostile clients against the real binary (issue 29): each attack checks
//! that the server survives, that its peak RSS (`VmHWM`) grows far less
//! than the attack would cost unbounded, that a fresh client is served
//! during and after, that SIGTERM ends it within the shutdown timeout plus
//! 2 s with status 0, and that replies are memcached's, byte for byte.
//!
//! Run on each backend through `SEASTAR_REACTOR_BACKEND`.

mod spawned;

use std::io::Read;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use spawned::{Client, HANG_GUARD, Spawned, free_udp_port, set, value_block};

/// Peak RSS growth allowed for a reply attack (the target).
const GROWTH_MIB: f64 = 64.0;

/// Value size of the attacked items: 512 KiB.
const BIG: usize = 512 << 10;

/// One `get` line naming four 512 KiB items 100 times each (200 MiB of
/// replies, keys on both shards): read slowly while a fresh client is
/// served, the whole reply arrives byte for byte, and the peak RSS stays
/// far below the reply's size.
#[test]
fn one_multiget_naming_large_items_many_times() {
    let mut srv = Spawned::start(&["-t", "2", "-m", "64"]);
    let mut c = srv.client();
    let keys = ["k0", "k1", "k2", "k3"];
    for (i, k) in keys.iter().enumerate() {
        set(&mut c, k, BIG, b'a' + i as u8);
    }
    srv.assert_serves();
    let before = srv.peak_mib();
    let names: Vec<&str> = (0..100).flat_map(|_| keys).collect();
    c.send(format!("get {}\r\n", names.join(" ")).as_bytes());
    // Half the first value, then stall: the server waits, others are served.
    c.recv_exact(BIG / 2);
    std::thread::sleep(Duration::from_millis(300));
    srv.assert_serves();
    let mut expected_first = value_block("k0", BIG, b'a');
    let mut got = c.recv_exact(expected_first.len() - BIG / 2);
    let mut whole = vec![b'V'; 0];
    whole.extend_from_slice(&expected_first[..BIG / 2]);
    whole.append(&mut got);
    assert_eq!(whole, expected_first);
    expected_first.clear();
    for (i, name) in names.iter().enumerate().skip(1) {
        let want = value_block(name, BIG, b'a' + (i % 4) as u8);
        assert_eq!(c.recv_exact(want.len()), want, "value {i}");
    }
    assert_eq!(c.recv_exact(5), b"END\r\n");
    let growth = srv.peak_mib() - before;
    eprintln!("multi-get of 200 MiB: peak RSS grew {growth:.1} MiB");
    assert!(growth < GROWTH_MIB, "peak RSS grew {growth:.1} MiB");
    assert!(srv.alive());
    srv.assert_serves();
    srv.stop_cleanly();
}

/// One `get` line naming 100,000 keys of small (copied, not shared)
/// values, 200 MB of replies, on two shards: executed a budget at a time,
/// so the reply arrives whole and in order while the peak RSS stays flat
/// and other clients are served in between.
#[test]
fn one_get_line_naming_100k_small_keys() {
    let mut srv = Spawned::start(&["-t", "2"]);
    let mut c = srv.client();
    let keys = ["s0", "s1", "s2", "s3"];
    for (i, k) in keys.iter().enumerate() {
        set(&mut c, k, 2000, b'a' + i as u8);
    }
    let blocks: Vec<Vec<u8>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| value_block(k, 2000, b'a' + i as u8))
        .collect();
    let before = srv.peak_mib();
    let n = 100_000;
    let names: Vec<&str> = (0..n).map(|i| keys[i % 4]).collect();
    c.send(format!("get {}\r\n", names.join(" ")).as_bytes());
    for i in 0..n {
        let want = &blocks[i % 4];
        assert_eq!(&c.recv_exact(want.len()), want, "value {i}");
        if i == n / 2 {
            srv.assert_serves();
        }
    }
    assert_eq!(c.recv_exact(5), b"END\r\n");
    assert_eq!(c.ask(b"mn\r\n"), b"MN\r\n");
    let growth = srv.peak_mib() - before;
    eprintln!("get line of 100,000 keys (200 MB of replies): peak RSS grew {growth:.1} MiB");
    assert!(growth < GROWTH_MIB, "peak RSS grew {growth:.1} MiB");
    srv.assert_serves();
    srv.stop_cleanly();
}

/// A client writes `get k\r\n` over and over and never reads: the server
/// stops reading it once the replies it holds reach the budget, serves
/// others meanwhile, and SIGTERM still ends it (the client stays).
#[test]
fn pipeliner_that_never_reads_and_sigterm() {
    let mut srv = Spawned::start(&["-t", "1"]);
    let mut c = srv.client();
    set(&mut c, "k", BIG, b'x');
    let before = srv.peak_mib();
    let attacker = srv.client();
    attacker
        .s
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // 2,000 requests asking for 1,000 MiB, written until the server stops
    // taking them (the socket buffers fill) or all are sent.
    let batch = b"get k\r\n".repeat(2_000);
    let mut w = &attacker.s;
    let mut sent = 0;
    let t = Instant::now();
    while sent < batch.len() && t.elapsed() < Duration::from_secs(3) {
        match std::io::Write::write(&mut w, &batch[sent..]) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    srv.assert_serves();
    let growth = srv.peak_mib() - before;
    eprintln!("never-reading pipeliner ({sent} bytes of requests): peak RSS grew {growth:.1} MiB");
    assert!(growth < GROWTH_MIB, "peak RSS grew {growth:.1} MiB");
    // The same connection still gets the first replies, byte for byte.
    let mut r = Client { s: attacker.s };
    let want = value_block("k", BIG, b'x');
    let mut first = r.recv_exact(want.len());
    assert_eq!(first, want);
    first.clear();
    assert_eq!(r.recv_exact(5), b"END\r\n");
    assert!(srv.alive());
    // It stops reading again: SIGTERM must not wait for it.
    srv.stop_cleanly();
    drop(r);
}

/// One UDP datagram naming 30,000 keys of a large item: the reply stops at
/// the cap, ends with memcached's out-of-memory line, and costs little.
#[test]
fn udp_datagram_naming_many_keys() {
    let port = free_udp_port().to_string();
    let mut srv = Spawned::start(&["-t", "1", "-U", &port]);
    let udp_addr = srv.udp.expect("udp on");
    let mut c = srv.client();
    set(&mut c, "k", 100 << 10, b'u');
    set(&mut c, "s", 3, b's');
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let frame = |id: u16, body: &[u8]| {
        let mut d = vec![0, 0, 0, 0, 0, 1, 0, 0];
        d[..2].copy_from_slice(&id.to_be_bytes());
        d.extend_from_slice(body);
        d
    };
    // A reply that fits: exact bytes, one datagram.
    sock.send_to(&frame(7, b"get s nope s\r\n"), udp_addr)
        .unwrap();
    let mut buf = vec![0u8; 2048];
    let n = sock.recv(&mut buf).unwrap();
    let mut want = vec![0, 7, 0, 0, 0, 1, 0, 0];
    want.extend_from_slice(b"VALUE s 0 3\r\nsss\r\nVALUE s 0 3\r\nsss\r\nEND\r\n");
    assert_eq!(buf[..n], want[..]);
    let before = srv.peak_mib();
    let body = format!("get {}\r\n", vec!["k"; 30_000].join(" "));
    assert!(body.len() < 65_000);
    for id in 0..3u16 {
        sock.send_to(&frame(100 + id, body.as_bytes()), udp_addr)
            .unwrap();
    }
    // Read what arrives (loopback may drop some of a burst): every frame
    // names the same bounded count; the last one ends with the cut line.
    let max_frames = ((1 << 20) + (100 << 10) + 200) / 1392 + 1;
    let (mut frames, mut last_tail) = (0, None);
    while let Ok(n) = sock.recv(&mut buf) {
        let count = u16::from_be_bytes([buf[4], buf[5]]) as usize;
        let seq = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        assert!(count <= max_frames, "{count} datagrams");
        if seq + 1 == count {
            last_tail = Some(buf[8..n].to_vec());
        }
        frames += 1;
    }
    assert!(frames > 0);
    if let Some(tail) = last_tail {
        assert!(
            tail.ends_with(b"\r\nSERVER_ERROR out of memory writing get response\r\n"),
            "{:?}",
            String::from_utf8_lossy(&tail[tail.len().saturating_sub(80)..])
        );
    }
    let growth = srv.peak_mib() - before;
    eprintln!("UDP 3 x 30,000 keys of 100 KiB: peak RSS grew {growth:.1} MiB");
    assert!(growth < GROWTH_MIB, "peak RSS grew {growth:.1} MiB");
    assert!(srv.alive());
    srv.assert_serves();
    srv.stop_cleanly();
}

/// `append`/`prepend` and the meta append mode refuse to grow an item past
/// `-I`, as memcached does (`NOT_STORED` / `NS`), and the item is intact.
#[test]
fn append_past_the_item_size_limit() {
    let mut srv = Spawned::start(&["-t", "2", "-I", "64k"]);
    let mut c = srv.client();
    set(&mut c, "a", 40_000, b'a');
    let chunk = vec![b'b'; 30_000];
    for cmd in ["append", "prepend"] {
        let mut req = format!("{cmd} a 0 0 30000\r\n").into_bytes();
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
        c.send(&req);
        assert_eq!(c.recv_until(b"\r\n"), b"NOT_STORED\r\n", "{cmd}");
    }
    let mut req = b"ms a 30000 MA\r\n".to_vec();
    req.extend_from_slice(&chunk);
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    assert_eq!(c.recv_until(b"\r\n"), b"NS\r\n");
    // Appends that fit still work, up to the limit.
    let mut req = b"append a 0 0 20000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'c', 20_000));
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    assert_eq!(c.recv_until(b"\r\n"), b"STORED\r\n");
    c.send(b"get a\r\n");
    let mut want = b"VALUE a 0 60000\r\n".to_vec();
    want.extend(std::iter::repeat_n(b'a', 40_000));
    want.extend(std::iter::repeat_n(b'c', 20_000));
    want.extend_from_slice(b"\r\nEND\r\n");
    assert_eq!(c.recv_exact(want.len()), want);
    srv.assert_serves();
    srv.stop_cleanly();
}

/// `-o idle_timeout=1`: a silent connection is closed within a few
/// seconds, one that keeps asking is not.
#[test]
fn idle_connections_are_closed() {
    let mut srv = Spawned::start(&["-t", "1", "-o", "idle_timeout=1"]);
    let mut idle = srv.client();
    let mut busy = srv.client();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(2500) {
        assert_eq!(busy.ask(b"mn\r\n"), b"MN\r\n");
        std::thread::sleep(Duration::from_millis(200));
    }
    idle.s.set_read_timeout(Some(HANG_GUARD)).unwrap();
    assert!(idle.closed_by_server(), "idle connection still open");
    assert_eq!(busy.ask(b"mn\r\n"), b"MN\r\n");
    srv.assert_serves();
    srv.stop_cleanly();
}

/// A request line that never ends is not buffered without bound: past
/// memcached's 2048-byte limit the connection is closed.
#[test]
fn endless_line_is_cut() {
    let mut srv = Spawned::start(&["-t", "1"]);
    let mut c = srv.client();
    c.send(&vec![b'x'; 4096]);
    assert!(c.closed_by_server());
    srv.assert_serves();
    srv.stop_cleanly();
}

/// Over `-c`, a connection gets memcached's refusal and is closed; the
/// others are served, and a slot freed is usable again.
#[test]
fn too_many_connections() {
    let mut srv = Spawned::start(&["-t", "1", "-c", "3"]);
    let mut open: Vec<Client> = (0..3).map(|_| srv.client()).collect();
    for c in &mut open {
        assert_eq!(c.ask(b"mn\r\n"), b"MN\r\n");
    }
    let mut extra = srv.client();
    let mut got = Vec::new();
    extra.s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"ERROR Too many open connections\r\n");
    drop(open.pop());
    // The slot is released when the server sees the close.
    let t = Instant::now();
    loop {
        let mut c = srv.client();
        c.send(b"mn\r\n");
        let mut b = [0u8; 64];
        let n = c.s.read(&mut b).unwrap();
        if &b[..n] == b"MN\r\n" {
            break;
        }
        assert!(t.elapsed() < HANG_GUARD, "slot never released");
        std::thread::sleep(Duration::from_millis(50));
    }
    srv.stop_cleanly();
}

/// Idle connections hold no receive or send buffer: 10,000 connections
/// (as issue 29 measures, so that the shard's tables growing by doubling
/// average out) that each made a request and went quiet add under 2 KiB
/// each (the connection's task and socket state), where a 16 KiB receive
/// buffer each used to be held (14.4 KB a connection before). A debug
/// build measures about 1.86 KB on io_uring and 1.89 KB on epoll (the
/// connection task's future, about 1.2 KB, and the last reply's buffer,
/// kept until the next read); with 2,000 connections epoll read 1.97 to
/// 2.1 KB. The bound is issue 29's 2 KiB.
#[test]
fn idle_connections_hold_no_buffers() {
    let mut srv = Spawned::start(&["-t", "1", "-c", "20000"]);
    // Warm up: the shard's buffer ring and pools get touched first.
    for i in 0..300 {
        let mut c = srv.client();
        let reply = c.ask(format!("set k{i} 0 0 {}\r\n{}\r\n", 2000, "v".repeat(2000)).as_bytes());
        assert_eq!(reply, b"STORED\r\n");
    }
    std::thread::sleep(Duration::from_millis(200));
    let before = srv.status_kib("VmRSS:");
    const N: u64 = 10_000;
    let mut idle: Vec<Client> = (0..N).map(|_| srv.client()).collect();
    for c in &mut idle {
        assert_eq!(c.ask(b"mn\r\n"), b"MN\r\n");
    }
    let per_conn = (srv.status_kib("VmRSS:").saturating_sub(before)) * 1024 / N;
    eprintln!("{per_conn} bytes per idle connection");
    assert!(per_conn < 2 * 1024, "{per_conn} bytes per idle connection");
    assert_eq!(idle[0].ask(b"mn\r\n"), b"MN\r\n");
    drop(idle);
    srv.assert_serves();
    srv.stop_cleanly();
}
