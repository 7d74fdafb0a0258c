//! `rpc server --listener`: native connections reach every shard, handed
//! out by shard 0 (`distribute`, least-loaded first) or spread by the
//! kernel (`per-shard`). Run on the backend named by
//! `SEASTAR_REACTOR_BACKEND`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rpc::verbs::{ECHO, STATS, Stats};
use seastar_rpc::codec;
use seastar_rpc::frame::{
    DEFAULT_MAX_FRAME, Features, HEADER_LEN, Header, Kind, Negotiation, Status,
};

/// A spawned `rpc server --smp 2 --listener MODE`, killed when dropped.
struct Server {
    child: Child,
    native: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(mode: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args(["server", "--port", "0", "--grpc-port", "0", "--smp", "2"])
        .args(["--listener", mode, "--shutdown-timeout", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let rest = line
        .split("native on ")
        .nth(1)
        .unwrap_or_else(|| panic!("{line:?}"));
    let native = rest.split(',').next().unwrap().trim().parse().unwrap();
    child.stdout = Some(out.into_inner());
    Server { child, native }
}

/// A negotiated blocking native client.
fn client(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let ours = Negotiation {
        features: Features::TIMEOUTS,
        max_frame: DEFAULT_MAX_FRAME,
    };
    s.write_all(&ours.encode()).unwrap();
    let mut b = [0u8; 16];
    s.read_exact(&mut b).unwrap();
    Negotiation::decode(&b).unwrap();
    s
}

/// One call; the answer's payload (the status must be `Ok`).
fn call(s: &mut TcpStream, verb: u32, id: u64, arg: &[u8]) -> Vec<u8> {
    let mut req = Vec::new();
    Header::request(verb, id, arg.len() as u32, None).encode(&mut req);
    req.extend_from_slice(arg);
    s.write_all(&req).unwrap();
    let mut h = [0u8; HEADER_LEN];
    s.read_exact(&mut h).unwrap();
    let h = Header::decode(&h, u32::MAX).unwrap();
    let mut body = vec![0; h.len as usize];
    s.read_exact(&mut body).unwrap();
    assert_eq!((h.kind, h.id), (Kind::Response, id));
    assert_eq!(Status::from_u16(h.status), Status::Ok);
    body
}

/// Connections open on the shard that serves `s`.
fn shard_connections(s: &mut TcpStream) -> u64 {
    let stats: Stats = codec::decode(&call(s, STATS, 7, &codec::encode(&()).unwrap())).unwrap();
    stats.connections
}

#[test]
fn distribute_hands_connections_to_the_least_loaded_shard() {
    let srv = start("distribute");
    let mut conns: Vec<TcpStream> = (0..4).map(|_| client(srv.native)).collect();
    // Two shards, four connections, least-loaded first: two each.
    for c in &mut conns {
        assert_eq!(shard_connections(c), 2);
    }
}

#[test]
fn per_shard_listeners_serve_native_calls() {
    let srv = start("per-shard");
    let mut conns: Vec<TcpStream> = (0..4).map(|_| client(srv.native)).collect();
    let arg = codec::encode(&b"hi".to_vec()).unwrap();
    let mut open = 0;
    for (i, c) in conns.iter_mut().enumerate() {
        assert_eq!(call(c, ECHO, i as u64 + 1, &arg), arg);
        open += shard_connections(c);
    }
    // Each connection sees its own shard's count, so the counts add up to
    // the sum of the squares of the shards' loads: 8 (2 and 2), 10 (3 and
    // 1) or 16 (4 and 0), the four connections all open.
    assert!([8, 10, 16].contains(&open), "{open}");
}
