//! `rpc server --listener`: native connections reach every shard, handed
//! out by shard 0 (`distribute`, least-loaded first) or spread by the
//! kernel (`per-shard`). Run on the backend named by
//! `SEASTAR_REACTOR_BACKEND`.

mod common;

use std::net::TcpStream;

use common::{Server, call, native_client};
use rpc::verbs::{ECHO, STATS, Stats};
use seastar_rpc::codec;
use seastar_rpc::frame::Status;

/// `rpc server --smp 2 --listener MODE`.
fn start(mode: &str) -> Server {
    Server::start(&["--smp", "2", "--listener", mode])
}

/// One call; the answer's payload (the status must be `Ok`).
fn ok_call(s: &mut TcpStream, verb: u32, id: u64, arg: &[u8]) -> Vec<u8> {
    let (status, body) = call(s, verb, id, arg);
    assert_eq!(status, Status::Ok);
    body
}

/// Connections open on the shard that serves `s`.
fn shard_connections(s: &mut TcpStream) -> u64 {
    let stats: Stats = codec::decode(&ok_call(s, STATS, 7, &codec::encode(&()).unwrap())).unwrap();
    stats.connections
}

#[test]
fn distribute_hands_connections_to_the_least_loaded_shard() {
    let srv = start("distribute");
    let mut conns: Vec<TcpStream> = (0..4).map(|_| native_client(srv.native)).collect();
    // Two shards, four connections, least-loaded first: two each.
    for c in &mut conns {
        assert_eq!(shard_connections(c), 2);
    }
}

#[test]
fn per_shard_listeners_serve_native_calls() {
    let srv = start("per-shard");
    let mut conns: Vec<TcpStream> = (0..4).map(|_| native_client(srv.native)).collect();
    let arg = codec::encode(&b"hi".to_vec()).unwrap();
    let mut open = 0;
    for (i, c) in conns.iter_mut().enumerate() {
        assert_eq!(ok_call(c, ECHO, i as u64 + 1, &arg), arg);
        open += shard_connections(c);
    }
    // Each connection sees its own shard's count, so the counts add up to
    // the sum of the squares of the shards' loads: 8 (2 and 2), 10 (3 and
    // 1) or 16 (4 and 0), the four connections all open.
    assert!([8, 10, 16].contains(&open), "{open}");
}
