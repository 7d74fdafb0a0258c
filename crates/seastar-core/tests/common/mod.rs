//! Helpers shared by the socket tests.
#![allow(dead_code)]

use std::os::unix::net::UnixStream;

use seastar_core::Runtime;

/// A one-shard runtime on the backend `SEASTAR_REACTOR_BACKEND` names.
pub fn rt() -> Runtime {
    Runtime::builder()
        .shards(1)
        .handle_signals(false)
        .build()
        .unwrap()
}

/// A connected pair of non-blocking Unix stream sockets.
pub fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}
