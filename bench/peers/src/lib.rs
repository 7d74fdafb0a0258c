//! Benchmark peers and load clients for `cargo xtask bench`.
//!
//! Binaries: `tokio-echo` (the peer of apps/echo: a tokio current_thread TCP
//! echo server), `epoll-echo` (a bare hand-written epoll echo: the floor) and
//! `echo-load` (ping-pong echo load with an HDR histogram).
//! This package is never published; it exists only to be measured against.

use std::net::SocketAddr;

/// A current_thread tokio runtime with IO and timers, as the peers use.
pub fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Parses `host:port`, with a clear message.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| format!("bad address `{s}`: {e}"))
}
