//! The floor for apps/memcached: a bare, hand-written single-threaded epoll
//! server that answers memaslap's traffic with the least work a server can
//! do: no store, no statistics, no protocol beyond telling `get` from
//! `set`. Every `get <key>` is a hit with a fixed 100-byte value, every
//! `set` (its data block skipped) is `STORED`, anything else `ERROR`.
//!
//! Its syscalls are stock memcached's pattern at best: level-triggered
//! epoll, one `read` per readiness (a short read means the socket is
//! drained, so no `EAGAIN` read), all replies of that read in one `write`.
//! So its CPU per operation is what the kernel's TCP and loopback work
//! costs for this traffic, plus almost nothing: a real server cannot use
//! less per operation, whatever its event interface.

use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;

use bench_peers::epoll::{flush_pending, write_or_keep};
use clap::Parser;

/// Bare epoll responder for memcached get/set traffic.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    listen: bench_peers::Listen,
}

/// The value every `get` returns (memaslap's 100-byte values).
const VALUE: &[u8; 100] = &[b'x'; 100];

/// Longest command line kept waiting for its `\n`.
const MAX_LINE: usize = 2048;

struct Conn {
    stream: TcpStream,
    /// Bytes of an incomplete request.
    input: Vec<u8>,
    /// Replies not yet written (the socket buffer was full).
    pending: Vec<u8>,
}

/// Answers the complete requests at the front of `input`; returns the bytes
/// used, or `None` for a line too long to be a request (close).
fn answer(input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let mut pos = 0;
    while let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') {
        let line = &input[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut used = nl + 1;
        if let Some(key) = line.strip_prefix(b"get ") {
            out.extend_from_slice(b"VALUE ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" 0 100\r\n");
            out.extend_from_slice(VALUE);
            out.extend_from_slice(b"\r\nEND\r\n");
        } else if line.starts_with(b"set ") {
            let len = line
                .rsplit(|&b| b == b' ')
                .next()
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
            let Some(len) = len else {
                out.extend_from_slice(b"CLIENT_ERROR bad command line format\r\n");
                pos += used;
                continue;
            };
            if input.len() - pos < used + len + 2 {
                break;
            }
            used += len + 2;
            out.extend_from_slice(b"STORED\r\n");
        } else {
            out.extend_from_slice(b"ERROR\r\n");
        }
        pos += used;
    }
    (input.len() - pos <= MAX_LINE).then_some(pos)
}

/// Serves one readiness event; returns false when the connection is done.
fn serve(conn: &mut Conn, buf: &mut [u8], out: &mut Vec<u8>) -> bool {
    if let Some(open) = flush_pending(&mut conn.stream, &mut conn.pending) {
        return open;
    }
    let n = match conn.stream.read(buf) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
            return true;
        }
        Err(_) => return false,
    };
    out.clear();
    let used = if conn.input.is_empty() {
        let used = answer(&buf[..n], out);
        if let Some(u) = used {
            conn.input.extend_from_slice(&buf[u..n]);
        }
        used.is_some()
    } else {
        conn.input.extend_from_slice(&buf[..n]);
        let used = answer(&conn.input, out);
        if let Some(u) = used {
            conn.input.drain(..u);
        }
        used.is_some()
    };
    if !used {
        return false;
    }
    if out.is_empty() {
        return true;
    }
    write_or_keep(&mut conn.stream, out, &mut conn.pending)
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::with_capacity(16 * 1024);
    bench_peers::epoll::serve(
        args.listen,
        libc::EPOLLIN as u32,
        |stream| Conn {
            stream,
            input: Vec::new(),
            pending: Vec::new(),
        },
        |conn| serve(conn, &mut buf, &mut out),
        |conn| !conn.pending.is_empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::answer;

    #[test]
    fn answers_gets_and_sets_and_waits_for_data_blocks() {
        let mut out = Vec::new();
        let used = answer(
            b"get k1\r\nset k2 0 0 3\r\nabc\r\nset k3 0 0 5\r\nab",
            &mut out,
        );
        assert_eq!(used, Some(27));
        let mut want = b"VALUE k1 0 100\r\n".to_vec();
        want.extend_from_slice(&[b'x'; 100]);
        want.extend_from_slice(b"\r\nEND\r\nSTORED\r\n");
        assert_eq!(out, want);
        out.clear();
        assert_eq!(answer(b"bogus\r\n", &mut out), Some(7));
        assert_eq!(out, b"ERROR\r\n");
        assert_eq!(answer(&[b'a'; 4096], &mut out), None);
    }
}
