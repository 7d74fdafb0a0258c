//! An in-process server on real sockets, and a byte-exact client.
//!
//! [`Server::start`] runs `memcached::server::serve` on its own runtime
//! (port 0, the backend named by `SEASTAR_REACTOR_BACKEND`, a manual clock)
//! in a background thread and returns once every socket is bound; dropping
//! it requests a stop and joins the thread. Time moves only through
//! [`Server::advance`]. Every blocking read has a generous timeout as a
//! hang guard; no test waits on time for correctness.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::thread::JoinHandle;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use memcached::server::{Bound, Config, Report, serve};
use memcached::shard_of;
use seastar_core::timer::ManualClock;
use seastar_core::{Runtime, smp, spawn_local};

/// How long a blocking read may take before the test fails (a hang guard).
pub const HANG_GUARD: Duration = Duration::from_secs(60);

enum Ctl {
    Advance(Duration, std::sync::mpsc::Sender<()>),
    Stop,
}

/// A server running in this process.
pub struct Server {
    pub tcp: SocketAddr,
    pub udp: Option<SocketAddr>,
    pub shards: usize,
    pub prometheus: Option<SocketAddr>,
    ctl: mpsc::UnboundedSender<Ctl>,
    thread: Option<JoinHandle<Report>>,
}

/// A small-footprint configuration on free loopback ports.
pub fn config() -> Config {
    Config {
        tcp: "127.0.0.1:0".parse().unwrap(),
        udp: None,
        memory_limit: 16 << 20,
        max_connections: 256,
        item_size_max: 1 << 20,
        ..Config::default()
    }
}

impl Server {
    /// Starts a server with `shards` shards.
    pub fn start(shards: usize, config: Config) -> Server {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Bound>();
        let (ctl, mut ctl_rx) = mpsc::unbounded::<Ctl>();
        let thread = std::thread::Builder::new()
            .name("memcached-test-server".into())
            .spawn(move || {
                let rt = Runtime::builder()
                    .shards(shards)
                    .pin(false)
                    .handle_signals(false)
                    .manual_clock()
                    .build()
                    .expect("runtime");
                rt.run(async move {
                    let server = spawn_local(serve(config, move |b| {
                        let _ = ready_tx.send(*b);
                    }));
                    while let Some(c) = ctl_rx.next().await {
                        match c {
                            Ctl::Advance(d, ack) => {
                                ManualClock::advance(d).await;
                                // Every shard's due timers have fired once
                                // its reactor completed a tick after the move.
                                smp::invoke_on_all(|| ManualClock::advance(Duration::ZERO))
                                    .await
                                    .expect("tick on every shard");
                                let _ = ack.send(());
                            }
                            Ctl::Stop => break,
                        }
                    }
                    seastar_core::request_stop();
                    server.await.expect("server task").expect("server")
                })
            })
            .expect("spawn server thread");
        let bound = match ready_rx.recv() {
            Ok(b) => b,
            Err(_) => {
                let r = thread.join();
                panic!("server did not start: {r:?}");
            }
        };
        Server {
            tcp: bound.tcp,
            udp: bound.udp,
            shards: bound.shards,
            prometheus: bound.prometheus,
            ctl,
            thread: Some(thread),
        }
    }

    /// Moves the server's clock forward and waits until every shard has
    /// fired the timers that became due.
    pub fn advance(&self, d: Duration) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.ctl
            .unbounded_send(Ctl::Advance(d, tx))
            .expect("server running");
        rx.recv().expect("clock advanced");
    }

    /// A new client connection.
    pub fn client(&self) -> Client {
        Client::connect(self.tcp)
    }

    /// Requests a stop and waits for the server to finish.
    pub fn stop(mut self) -> Report {
        self.stop_inner().expect("server thread")
    }

    fn stop_inner(&mut self) -> Option<Report> {
        let t = self.thread.take()?;
        let _ = self.ctl.unbounded_send(Ctl::Stop);
        match t.join() {
            Ok(r) => Some(r),
            Err(p) if !std::thread::panicking() => std::panic::resume_unwind(p),
            Err(_) => None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// The `i`-th key `{prefix}{n}` (in increasing `n`) that shard `shard` of
/// `shards` owns.
pub fn key_on(shard: usize, shards: usize, prefix: &str) -> String {
    (0..)
        .map(|n| format!("{prefix}{n}"))
        .find(|k| shard_of(k.as_bytes(), shards) == shard)
        .unwrap()
}

/// `count` distinct keys owned by `shard`.
pub fn keys_on(shard: usize, shards: usize, prefix: &str, count: usize) -> Vec<String> {
    (0..)
        .map(|n| format!("{prefix}{n}"))
        .filter(|k| shard_of(k.as_bytes(), shards) == shard)
        .take(count)
        .collect()
}

/// A blocking client that checks replies byte for byte.
pub struct Client {
    pub stream: TcpStream,
}

/// Sent after each request by [`Client::ask`]: its reply ends the answer.
const SENTINEL: &[u8] = b"mn\r\n";
const SENTINEL_REPLY: &[u8] = b"MN\r\n";

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream }
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads exactly `n` bytes.
    pub fn recv(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.stream.read_exact(&mut buf).expect("read");
        buf
    }

    /// Sends `request` followed by `mn` in one write and returns every
    /// byte answered before `MN` (so nothing extra can go unnoticed).
    pub fn ask_bytes(&mut self, request: &[u8]) -> Vec<u8> {
        let mut msg = request.to_vec();
        msg.extend_from_slice(SENTINEL);
        self.send(&msg);
        let mut got = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        while !got.ends_with(SENTINEL_REPLY) {
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(
                n > 0,
                "connection closed; got {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&chunk[..n]);
        }
        got.truncate(got.len() - SENTINEL_REPLY.len());
        got
    }

    /// [`ask_bytes`](Self::ask_bytes) for text.
    pub fn ask(&mut self, request: &str) -> String {
        String::from_utf8(self.ask_bytes(request.as_bytes())).expect("utf-8 reply")
    }

    /// Asserts the exact reply to `request`.
    #[track_caller]
    pub fn expect(&mut self, request: &str, reply: &str) {
        assert_eq!(self.ask(request), reply, "request {request:?}");
    }

    /// The value of `STAT name` in the general `stats`.
    pub fn stat(&mut self, name: &str) -> u64 {
        let text = self.ask("stats\r\n");
        stat_in(&text, name)
    }

    /// Reads until the server closes; returns what it sent meanwhile.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest).expect("read to close");
        rest
    }
}

/// The numeric value of `STAT name` in a stats reply.
#[track_caller]
pub fn stat_in(text: &str, name: &str) -> u64 {
    let prefix = format!("STAT {name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no stat {name} in {text}"))
        .parse()
        .expect("numeric stat")
}

/// A UDP client speaking memcached's frames.
pub struct UdpClient {
    pub sock: UdpSocket,
}

impl UdpClient {
    pub fn connect(addr: SocketAddr) -> UdpClient {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(addr).unwrap();
        sock.set_read_timeout(Some(HANG_GUARD)).unwrap();
        UdpClient { sock }
    }

    /// Sends `body` as one datagram with the given header fields.
    pub fn send(&self, request_id: u16, sequence: u16, count: u16, body: &[u8]) {
        let mut d = Vec::with_capacity(8 + body.len());
        d.extend_from_slice(&request_id.to_be_bytes());
        d.extend_from_slice(&sequence.to_be_bytes());
        d.extend_from_slice(&count.to_be_bytes());
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(body);
        self.sock.send(&d).unwrap();
    }

    /// Receives one datagram.
    pub fn recv(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = self.sock.recv(&mut buf).expect("datagram");
        buf.truncate(n);
        buf
    }

    /// Receives the datagrams of one reply (all with `request_id`), checks
    /// their headers and returns the reassembled payload and the count.
    pub fn recv_reply(&self, request_id: u16) -> (Vec<u8>, usize) {
        let first = self.recv();
        let count = u16::from_be_bytes([first[4], first[5]]) as usize;
        let mut parts: Vec<Option<Vec<u8>>> = vec![None; count];
        let mut d = first;
        loop {
            assert!(d.len() > 8, "short datagram {d:?}");
            assert_eq!(u16::from_be_bytes([d[0], d[1]]), request_id, "request id");
            let seq = u16::from_be_bytes([d[2], d[3]]) as usize;
            assert_eq!(u16::from_be_bytes([d[4], d[5]]) as usize, count, "count");
            assert_eq!(&d[6..8], &[0, 0], "reserved bytes");
            assert!(d.len() <= 1400, "datagram over 1400 bytes");
            assert!(parts[seq].is_none(), "sequence {seq} twice");
            parts[seq] = Some(d[8..].to_vec());
            if parts.iter().all(Option::is_some) {
                break;
            }
            d = self.recv();
        }
        (parts.into_iter().flatten().flatten().collect(), count)
    }

    /// One request in one datagram; the reassembled reply.
    pub fn ask(&self, request_id: u16, body: &str) -> String {
        self.send(request_id, 0, 1, body.as_bytes());
        String::from_utf8(self.recv_reply(request_id).0).unwrap()
    }
}
