//! The floor for apps/echo: a bare, hand-written single-threaded epoll TCP
//! echo server (no runtime, no allocation per message): edge-triggered
//! readiness, `read` until `EAGAIN`, `write` back, `EPOLLOUT` only while the
//! socket buffer is full. It is what a framework's CPU per message is
//! compared with to see its own overhead.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;

use clap::Parser;

/// Bare epoll TCP echo server.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    listen: bench_peers::Listen,
}

/// Edge-triggered read interest.
const READ: u32 = (libc::EPOLLIN | libc::EPOLLET) as u32;

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet written back (the socket buffer was full).
    pending: Vec<u8>,
}

/// Echoes what is readable; returns false when the connection is done.
fn serve(conn: &mut Conn, buf: &mut [u8]) -> bool {
    if !conn.pending.is_empty() {
        match conn.stream.write(&conn.pending) {
            Ok(n) => drop(conn.pending.drain(..n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
        if !conn.pending.is_empty() {
            return true;
        }
    }
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        match conn.stream.write(&buf[..n]) {
            Ok(w) if w == n => {}
            Ok(w) => conn.pending.extend_from_slice(&buf[w..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                conn.pending.extend_from_slice(&buf[..n])
            }
            Err(_) => return false,
        }
    }
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let mut buf = vec![0u8; 64 * 1024];
    bench_peers::epoll::serve(
        args.listen,
        READ,
        |stream| Conn {
            stream,
            pending: Vec::new(),
        },
        |conn| serve(conn, &mut buf),
        |conn| !conn.pending.is_empty(),
    )
}
