//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::SocketAddr;

use seastar_core::{Runtime, spawn_local};
use seastar_net::TcpStream;

/// A runtime with `shards` shards on the backend `SEASTAR_REACTOR_BACKEND` names.
pub fn rt(shards: usize) -> Runtime {
    Runtime::builder()
        .shards(shards)
        .handle_signals(false)
        .build()
        .unwrap()
}

pub fn localhost0() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Echoes everything read on `conn` until end of stream or an error.
pub async fn echo(conn: TcpStream) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (n, b) = conn.read(buf).await;
        if !matches!(n, Ok(1..)) {
            return;
        }
        // The read set the buffer's length to the count received.
        let (r, mut b) = conn.write_all(b).await;
        if r.is_err() {
            return;
        }
        b.clear();
        buf = b;
    }
}

/// Spawns an accept loop echoing every connection; the task ends when the
/// listener is dropped (abort the handle).
pub fn spawn_echo_server(listener: seastar_net::TcpListener) -> seastar_core::JoinHandle<()> {
    spawn_local(async move {
        while let Ok((conn, _)) = listener.accept().await {
            spawn_local(echo(conn)).detach();
        }
    })
}
