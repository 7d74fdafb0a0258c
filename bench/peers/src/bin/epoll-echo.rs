//! The floor for apps/echo: a bare, hand-written single-threaded epoll TCP
//! echo server (no runtime, no allocation per message): edge-triggered
//! readiness, `read` until `EAGAIN`, `write` back, `EPOLLOUT` only while the
//! socket buffer is full. It is what a framework's CPU per message is
//! compared with to see its own overhead.

use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;

use bench_peers::epoll::{flush_pending, write_or_keep};
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
    if let Some(open) = flush_pending(&mut conn.stream, &mut conn.pending) {
        return open;
    }
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        if !write_or_keep(&mut conn.stream, &buf[..n], &mut conn.pending) {
            return false;
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
